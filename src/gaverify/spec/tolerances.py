"""Tolerances: the largest divergence each metric may show and still pass.

Unset tolerances come from the precision the run computes in (its dtype, or
its mixed precision: DEFAULT_TOLERANCES), or, with `tolerance: auto`, from
the run's own rounding noise (calibrate.py); how both were measured is in
docs/tolerances.md. A variant judged on a loss that transformers computes
(in float32 even in a float64 run) is held to the float32 loss's profile.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

# tolerance: auto sets each unset tolerance this many times above the noise
# of a second correct loop (see docs/tolerances.md for the measurements).
AUTO_FACTOR = 10.0

# Default tolerances by profile (dtype, mixed precision, or a float32 loss in
# a float64 run): well above the rounding noise of a correct loop
# and far below the error of the mean-of-means bug on variable-length data
# (both measured; see docs/tolerances.md). An explicit value always wins.
FLOAT32_LOSS = "float64, float32 loss"
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "float64": {
        "loss_rel": 1e-10,
        "grad_norm_rel": 1e-10,
        "grad_rel_l2": 1e-9,
        "cosine_distance": 1e-12,
        "param_max_abs": 1e-9,
        "extra_weight_rel": 1e-3,
    },
    "float32": {
        "loss_rel": 1e-5,
        "grad_norm_rel": 1e-4,
        "grad_rel_l2": 1e-4,
        "cosine_distance": 1e-6,
        "param_max_abs": 1e-4,
        "extra_weight_rel": 1e-2,
    },
    "bfloat16": {
        "loss_rel": 2e-2,
        "grad_norm_rel": 5e-2,
        "grad_rel_l2": 5e-2,
        "cosine_distance": 5e-3,
        "param_max_abs": 5e-2,
        "extra_weight_rel": 5e-2,
    },
    # autocast over float32 weights: each micro-batch's weight gradient is
    # rounded to the autocast dtype (unit roundoff 3.9e-3 in bfloat16) before
    # float32 sums them, so a correct loop shows rel-L2 ~5e-3 on the gradient
    # but ~1e-5 on the loss, which is reduced in float32
    "bf16-mixed": {
        "loss_rel": 1e-3,
        "grad_norm_rel": 5e-3,
        "grad_rel_l2": 2e-2,
        "cosine_distance": 2e-4,
        "param_max_abs": 2e-2,
        "extra_weight_rel": 5e-2,
    },
    # float16's unit roundoff is 8x smaller (4.9e-4), yet a correct loop still
    # drifted to rel-L2 1.9e-3 in trajectory mode on the quickstart
    "fp16-mixed": {
        "loss_rel": 1e-4,
        "grad_norm_rel": 1e-3,
        "grad_rel_l2": 1e-2,
        "cosine_distance": 5e-5,
        "param_max_abs": 2e-2,
        "extra_weight_rel": 2e-2,
    },
    # float64, judged on a loss transformers computes: its loss functions cast
    # the logits to float32 (`logits.float()`), so the loss carries float32's
    # rounding and some models' gradients part of it (up to 4e-8 measured)
    FLOAT32_LOSS: {
        "loss_rel": 1e-5,
        "grad_norm_rel": 1e-6,
        "grad_rel_l2": 1e-6,
        "cosine_distance": 1e-12,
        "param_max_abs": 1e-6,
        "extra_weight_rel": 1e-3,
    },
}

# Auto tolerances never go below 10 units of the precision their metric is
# computed in: a noise floor of exactly zero (e.g. float64 with equal
# lengths) must not make the next run's rounding a failure. Losses of
# 16-bit runs are reduced in float32, so float32's unit is theirs: a bfloat16
# unit (7.8e-3) would let a 5 % loss error pass. Cosine distances are float64.
_EPS = {"float64": 2.2e-16} | dict.fromkeys(set(DEFAULT_TOLERANCES) - {"float64"}, 1.2e-7)
FLOOR = {
    profile: {
        m: 10 * (_EPS["float64"] if m == "cosine_distance" else eps)
        for m in DEFAULT_TOLERANCES["float64"]
    }
    for profile, eps in _EPS.items()
}


def profile(dtype: str, precision: str) -> str:
    """The tolerance profile of a run: its mixed precision, else its dtype."""
    return dtype if precision == "32" else precision


class Tolerance(BaseModel):
    """Largest allowed divergence per metric; unset ones come from the run's
    precision profile (DEFAULT_TOLERANCES) or from `auto`."""

    model_config = ConfigDict(extra="forbid")

    auto: bool = Field(
        False,
        description="calibrate unset tolerances from this run's rounding noise "
        "(`tolerance: auto` is short for {auto: true})",
    )
    factor: float = Field(AUTO_FACTOR, gt=1, description="with auto: tolerance = factor x noise")

    loss_rel: float | None = Field(None, ge=0)
    grad_norm_rel: float | None = Field(None, ge=0)
    grad_rel_l2: float | None = Field(None, ge=0)
    cosine_distance: float | None = Field(None, ge=0, description="1 - cosine similarity")
    param_max_abs: float | None = Field(None, ge=0, description="trajectory mode only")
    extra_weight_rel: float | None = Field(
        None, ge=0, description="|w - 1|, w the weight of an MoE router loss (models with one)"
    )

    # the metrics the user set: kept as given wherever the others are filled in
    _given: frozenset[str] = PrivateAttr(frozenset())

    @model_validator(mode="before")
    @classmethod
    def _auto_shorthand(cls, value: Any) -> Any:
        return {"auto": True} if value == "auto" else value

    @model_validator(mode="after")
    def _remember_given(self) -> Tolerance:
        self._given = frozenset(k for k, v in self.limits().items() if v is not None)
        return self

    def filled(self, values: dict[str, float], **update: Any) -> Tolerance:
        """A copy with each metric the user did not set taken from `values`."""
        unset = {k: v for k, v in values.items() if k not in self._given}
        return self.model_copy(update={**unset, **update})

    def at_least(self, minimum: dict[str, float]) -> Tolerance:
        """A copy with each metric the user did not set raised to `minimum`."""
        return self.filled({k: max(v, minimum[k]) for k, v in self.limits().items()})

    def limits(self) -> dict[str, float]:
        """Metric -> tolerance (all set once the scenario is resolved)."""
        return self.model_dump(exclude={"auto", "factor"})
