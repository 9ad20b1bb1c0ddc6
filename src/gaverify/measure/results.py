"""The typed results of a run: what a backend measured and what was judged.

Backends produce a Trace (Measurements plus facts about the run); verdicts
turn it into a RunResult. The RunResult is the one source for every report:
the terminal table, JSON (versioned by SCHEMA_VERSION) and later formats.
Pure pydantic, no torch, so a saved result can be re-read anywhere.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

# 3: `interrupted` on results and run sets; 4: `scale` on fits; 5: `extra_weight`
# on rows and `extra_fits` on results (models whose loss has MoE router terms)
SCHEMA_VERSION = 5
READABLE_VERSIONS = (2, 3, 4, 5)  # 2 lacks `interrupted` (False), 2 and 3 `scale` (1.0)

RowVerdict = Literal["pass", "fail", "non-finite"]

# Metric name -> what it measures. Each is a Measurement attribute and a
# Tolerance field of the same name; a row passes when every metric it has is
# at or below its tolerance.
METRICS: dict[str, str] = {
    "loss_rel": "|loss GA - loss full| / |loss full| (at least loss_scale, where a loss is "
    "zero-mean by construction)",
    "grad_norm_rel": "| |g GA| - |g full| | / |g full|",
    "grad_rel_l2": "|g GA - g full| / |g full|",
    "cosine_distance": "1 - cos(g GA, g full)",
    "param_max_abs": "max |p GA - p full| after the optimizer step (trajectory mode)",
    "extra_weight_rel": "|w - 1|: w the weight of the extra loss terms (an MoE router's aux "
    "loss) against their full-batch weight; 1 is a mean over micro-batches",
}


def _rel(diff: float, ref: float) -> float:
    if ref == 0:
        return 0.0 if diff == 0 else math.inf
    return diff / abs(ref)


class LayerDivergence(BaseModel):
    """One parameter's gradient against the full batch's (the layer view)."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    name: str
    rel_l2: float
    norm_full: float
    norm_ga: float


class Measurement(BaseModel):
    """One step x N x variant: the accumulated run against the full batch."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    step: int
    n: int
    variant: str
    items_full: int = Field(description="counted items (label tokens) in the full batch")
    items_micro: list[int] = Field(description="counted items per micro-batch")
    loss_full: float
    loss_ga: float
    grad_norm_full: float
    grad_norm_ga: float
    grad_rel_l2: float
    grad_cosine: float
    param_max_abs: float | None = None
    layers: list[LayerDivergence] | None = Field(
        None, description="the parameters diverging most (scenario field `layers`)"
    )
    extra_weight: float | None = Field(
        None,
        description="a loss with extra terms (MoE router losses): their weight in the "
        "accumulated gradient, in units of their full-batch weight; the loss and gradient "
        "figures are then the token parts",
    )

    loss_scale: float | None = Field(
        None,
        description="a floor under |loss full| in loss_rel, for a loss that is zero-mean by "
        "construction (GRPO's: advantages centred per group, its terms of unit scale)",
    )

    @computed_field
    @property
    def loss_abs(self) -> float:
        return abs(self.loss_ga - self.loss_full)

    @computed_field
    @property
    def loss_rel(self) -> float:
        return _rel(self.loss_abs, max(abs(self.loss_full), self.loss_scale or 0.0))

    @computed_field
    @property
    def grad_norm_rel(self) -> float:
        return _rel(abs(self.grad_norm_ga - self.grad_norm_full), self.grad_norm_full)

    @computed_field
    @property
    def cosine_distance(self) -> float:
        return 1.0 - self.grad_cosine

    @computed_field
    @property
    def extra_weight_rel(self) -> float | None:
        return None if self.extra_weight is None else abs(self.extra_weight - 1.0)

    def metric_values(self) -> dict[str, float]:
        """The judged metrics this row has (param_max_abs only in trajectory
        mode, extra_weight_rel only for a loss with extra terms)."""
        values = {name: getattr(self, name) for name in METRICS}
        return {k: v for k, v in values.items() if v is not None}


class GradientFit(BaseModel):
    """A diverging gradient fitted as sum_i c_i g_i over its micro-batches'
    summed-loss gradients (see fit.py), at the first step it diverged."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    step: int
    n: int
    variant: str
    counts: list[int] = Field(description="items per micro-batch, T_i")
    weights: list[float] = Field(description="fitted c_i in units of 1/T (1.0: full batch)")
    residual: float = Field(description="|G - sum c_i g_i| / |G|, in the sketch")
    ranks: int = Field(1, description="W: counts and weights are listed rank by rank")
    scale: float = Field(
        1.0,
        description="a variant judged on its own loss: that loss on the full batch as a "
        "multiple of the token loss S/T; the weights are divided by it (1.0: S/T itself)",
    )
    reference_residual: float | None = Field(
        None,
        description="a variant judged on its own loss: how far that loss's full-batch gradient "
        "lies outside the micro-batches' token-loss gradients (large: no weights can be read)",
    )


class ExtraFit(BaseModel):
    """The weight of a loss's extra terms (an MoE router's aux loss) in an
    accumulated gradient, fitted at the first step: G = sum_i c_i g_i +
    sum_i a_i e_i over the micro-batches' token and extra-term gradients."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    step: int
    n: int
    variant: str
    terms: str = Field(description="the terms and their coefficients, e.g. aux_loss x 0.02")
    weights: list[float] = Field(description="a_i: each micro-batch's extra terms' weight")
    full_weight: float = Field(description="b: their weight in the loss on the full batch")
    weight: float = Field(description="sum_i a_i / b: 1 a mean over micro-batches, N summed")
    pattern: str = Field(description="extra-mean, extra-summed, ... (accumulation/extras.py)")
    detail: str
    residual: float = Field(description="|G - fit| / |G|, in the sketch")
    ranks: int = Field(1, description="W: weights listed rank by rank")


class Diagnosis(BaseModel):
    """How one failing (N, variant) diverged: a pattern name and its evidence."""

    n: int
    variant: str
    step: int
    pattern: str = Field(
        description="a diagnosis.PATTERNS name, logged-loss, non-finite or unrecognised"
    )
    detail: str
    also: list[str] = Field(default_factory=list, description="other patterns that fit too")
    fit: GradientFit | None = None


class Trace(BaseModel):
    """Everything a backend measured, before any judgement."""

    measurements: list[Measurement]
    device: str
    parameters: int
    notes: list[str] = Field(default_factory=list)
    fits: list[GradientFit] = Field(default_factory=list)
    extra_fits: list[ExtraFit] = Field(default_factory=list)


class Row(Measurement):
    verdict: RowVerdict
    exceeded: list[str] = Field(default_factory=list, description="metrics over tolerance")


class GroupSummary(BaseModel):
    """One (N, variant) over all steps: the unit a CI test case reports."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    n: int | None = Field(description="None in a variant's summary over every N")
    variant: str
    verdict: RowVerdict
    expected: Literal["pass", "fail"]
    met: bool
    rows: int
    rows_failed: int
    worst: dict[str, float] = Field(description="largest value of each metric over all rows")


class VariantSummary(GroupSummary):
    """One variant over every N: met when each of its (N, variant) groups is."""


class Calibration(BaseModel):
    """How `tolerance: auto` set the tolerances: a second correct loop's
    divergence from the full batch (the noise floor), times a factor."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    method: str
    factor: float
    noise: dict[str, float] = Field(description="largest divergence of the correct loop")
    floor: dict[str, float] = Field(description="smallest tolerance allowed, per metric")


class Power(BaseModel):
    """What a PASS of this run rules out: normalisation weights off by a
    common factor 1 + e scale the gradient (and the loss) by 1 + e, so the
    run fails for any |e| above these (the loosest over the variants)."""

    gradient: float = Field(description="smallest detectable e in the gradient")
    loss: float = Field(description="smallest detectable e in the logged loss")


class RunResult(BaseModel):
    """A whole run: scenario, environment, judged rows and the outcome."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    schema_version: int = SCHEMA_VERSION
    gaverify_version: str
    command: str | None = Field(None, description="the command line that ran it, when known")
    scenario: dict[str, Any]
    environment: dict[str, str]
    device: str
    parameters: int
    notes: list[str]
    warnings: list[str]
    tolerance: dict[str, float] = Field(description="the tolerances the rows were judged by")
    variant_tolerance: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="variants judged by other tolerances: a float32 loss in a float64 run",
    )
    calibration: Calibration | None = None
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="precision, gradient checkpointing and compile settings in force",
    )
    power: Power | None = None
    rows: list[Row]
    groups: list[GroupSummary]
    variants: list[VariantSummary]
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    extra_fits: list[ExtraFit] = Field(
        default_factory=list, description="the extra loss terms' fitted weight per N x variant"
    )
    exit_code: int
    interrupted: bool = Field(False, description="stopped by Ctrl-C: the rows measured so far")
    timings: dict[str, float] = Field(description="seconds; the only non-repeatable numbers")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tolerance_of(self, variant: str) -> dict[str, float]:
        """The tolerances `variant`'s rows were judged by."""
        return self.variant_tolerance.get(variant, self.tolerance)

    def worst_layer_rows(self) -> list[Row]:
        """Per (N, variant), its row with the largest gradient divergence among
        those with a layer view (scenario field `layers`): what reports show."""
        worst: dict[tuple[int, str], Row] = {}
        for row in self.rows:
            key = (row.n, row.variant)
            if row.layers and (key not in worst or row.grad_rel_l2 > worst[key].grad_rel_l2):
                worst[key] = row
        return list(worst.values())


class RunError(BaseModel):
    """A scenario of a multi-scenario run that could not run, and why."""

    scenario: str
    message: str


class RunSet(BaseModel):
    """Several scenarios run by one command: their results, the ones that
    could not run, and the one exit code that covers them all."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    schema_version: int = SCHEMA_VERSION
    gaverify_version: str
    results: list[RunResult]
    errors: list[RunError] = Field(default_factory=list)
    exit_code: int
    interrupted: bool = Field(False, description="stopped by Ctrl-C before every scenario ran")
