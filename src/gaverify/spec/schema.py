"""The scenario schema: every field a scenario file may hold, typed and checked.

A scenario is validated completely (all problems at once) before anything
heavy is imported; every field has a default, so `Scenario()` is the built-in
tiny scenario that `gaverify run` uses with no file. Its sections are in
sections.py and the checks that span sections in constraints.py; here are
the top-level fields. Names (variants, modes, backends) are checked against
the declarations in backends.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gaverify.accumulation.trainer_variants import is_setting, parse_setting
from gaverify.imports import is_import_path
from gaverify.spec.backends import BACKENDS, DEFAULT
from gaverify.spec.constraints import (
    other_backends_keys,
    plan_problem,
    process_problem,
    task_problem,
    value_at,
)
from gaverify.spec.sections import (
    TINY_LLAMA,
    BatchSpec,
    DataSpec,
    DistributedSpec,
    LoopSpec,
    LossSpec,
    ModelSpec,
    OptimizerSpec,
    Section,
    TrainerSpec,
)
from gaverify.spec.settings import precision_name, settings_problem
from gaverify.spec.tolerances import (
    DEFAULT_TOLERANCES,
    FLOAT32_LOSS,
    FLOOR,
    Tolerance,
    profile,
)

Verdict = Literal["pass", "fail"]
Dtype = Literal["float32", "float64", "bfloat16"]
Mode = Literal["lockstep", "trajectory"]
MemoryPlan = Literal["auto", "shared", "in-turn", "sketched"]

__all__ = [
    "DEFAULT_TOLERANCES",
    "TINY_LLAMA",
    "DataSpec",
    "ModelSpec",
    "Scenario",
    "Section",
    "Tolerance",
]


class Scenario(Section):
    _source_dir: Path | None = PrivateAttr(None)
    _notes: list[str] = PrivateAttr(default_factory=list)

    name: str = "default"
    description: str = ""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Dtype = "float32"
    precision: Annotated[str, BeforeValidator(precision_name)] = Field(
        "32",
        description="32: no autocast; bf16-mixed or fp16-mixed: autocast over float32 master "
        "weights, as each backend's engine spells it (the Trainer's bf16/fp16, Lightning's "
        "precision, torch.autocast); tolerances follow it",
    )
    backend: str = DEFAULT
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    batch: BatchSpec = Field(default_factory=BatchSpec)
    steps: int = Field(4, ge=1, le=10_000)  # bounded: the order of every step is drawn up front
    distributed: DistributedSpec = Field(default_factory=DistributedSpec)
    mode: Mode | None = Field(
        None, description="default: the backend's first mode (reference: lockstep)"
    )
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    variants: list[str] | None = Field(
        None,
        min_length=1,
        description="built-in names of the backend, or module:function for your own "
        "compute_loss_func (default: the backend's defaults)",
    )
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    loop: LoopSpec = Field(default_factory=LoopSpec)
    tolerance: Tolerance = Field(default_factory=Tolerance)
    layers: int = Field(
        0, ge=0, description="show the k parameters whose gradients diverge most (0: off)"
    )
    memory_check: bool = Field(
        True, description="refuse a run whose memory estimate exceeds the free memory"
    )
    memory_plan: MemoryPlan = Field(
        "auto",
        description="lockstep on the reference backend: shared (one backward serves the "
        "weight variants, a gradient buffer each), in-turn (a backward per variant, one "
        "buffer), sketched (one backward, no buffer: rel-L2 and |g| estimated from sketches, "
        "error stated); auto: the first that fits in memory",
    )
    expect: Verdict | dict[str, Verdict] | None = Field(
        None,
        description="pass or fail: the verdict a correct tool reports for the whole scenario "
        "(exit 0 or 1; unset: pass). A mapping of variants here is read as variant_expect",
    )
    variant_expect: dict[str, Verdict] = Field(
        default_factory=dict,
        description="the verdict each variant should get; unlisted variants expect their usual "
        "one, and the scenario passes (exit 0) when every variant gets its verdict",
    )

    @field_validator("expect", mode="before")
    @classmethod
    def _verdicts(cls, value: object) -> object:
        # one plain message, not pydantic's attempt at each member of the union
        verdicts = ("pass", "fail")
        if isinstance(value, dict):
            bad = {k: v for k, v in value.items() if v not in verdicts}
            if bad:
                raise ValueError(f"a variant's verdict is pass or fail, not {bad}")
        elif value is not None and value not in verdicts:
            raise ValueError(
                f"expected pass, fail, or a mapping of variants to pass or fail, not {value!r}"
            )
        return value

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        BACKENDS.get(value)
        return value

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        backend = info.data.get("backend")
        if value is None or backend is None:  # a bad backend is reported on its own
            return value
        known = BACKENDS.get(backend)
        if known.own_variant:  # set aside in _consistent, with a note
            return value
        for name in value:
            if known.setting_variants and is_setting(name):
                parse_setting(name)  # a bad value is reported here, naming the variant
            elif not is_import_path(name):
                known.variants.get(name)
            elif not known.custom_variants:
                raise ValueError(f"backend '{backend}' runs only its own variants, not {name}")
        if len(set(value)) != len(value):
            raise ValueError(f"repeated variants in {value}")
        return value

    @field_validator("mode")
    @classmethod
    def _backend_mode(cls, value: str | None, info: ValidationInfo) -> str | None:
        backend = info.data.get("backend")
        if value is None or backend is None:
            return value
        modes = BACKENDS.get(backend).modes
        if value not in modes:
            raise ValueError(f"backend '{backend}' runs {' or '.join(modes)}, not {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if isinstance(self.expect, dict):  # the older spelling of variant_expect
            if self.variant_expect:
                raise ValueError("expect: a mapping of variants belongs in variant_expect")
            self.expect, self.variant_expect = None, self.expect
        backend = BACKENDS.get(self.backend)
        if backend.own_variant:
            self._own_variant(backend.own_variant)
        if self.variants is None:
            self.variants = list(backend.default_variants)
        if self.mode is None:
            self.mode = backend.modes[0]
        problem = (
            other_backends_keys(self)
            or process_problem(self)
            or settings_problem(self)
            or plan_problem(self)
        )
        if problem:
            raise ValueError(problem)
        strays = sorted(set(self.variant_expect) - set(self.variants))
        if strays:
            raise ValueError(
                f"variant_expect names {', '.join(strays)}, which is not among variants "
                f"{self.variants}"
            )
        problem = task_problem(self)
        if problem:
            raise ValueError(problem)
        if self.data.source == "synthetic" and self.data.samples < self.batch.size:
            raise ValueError(
                f"data.samples ({self.data.samples}) cannot fill one batch of "
                f"batch.size ({self.batch.size})"
            )
        if not self.tolerance.auto:  # auto ones are measured by the run
            defaults = DEFAULT_TOLERANCES[profile(self.dtype, self.precision)]
            self.tolerance = self.tolerance.filled(defaults)
        return self

    def _own_variant(self, key: str) -> None:
        """A backend that measures one named function (loop.step): that is the
        only variant. Variants and per-variant expectations written for another
        backend are set aside, so `--set backend=loop` works on any scenario."""
        path = value_at(self, key)
        if path is None:
            raise ValueError(
                f"{key}: backend '{self.backend}' needs {key}: module:function "
                "(see the README's 'Your own training loop')"
            )
        if self.variants not in (None, [path]):
            self._notes.append(
                f"variants: {', '.join(self.variants)} set aside: backend '{self.backend}' "
                f"measures {key} ({path}) only"
            )
        stray = sorted(set(self.variant_expect) - {path})
        if stray:
            self._notes.append(f"variant_expect: {', '.join(stray)} set aside (not measured)")
            self.variant_expect = {k: v for k, v in self.variant_expect.items() if k == path}
        self.variants = [path]

    @property
    def plan(self) -> list[tuple[int, str]]:
        """Every accumulated run, (N, variant), N-major: the order rows are
        listed in, after their step."""
        return [(n, v) for n in self.batch.accumulation for v in self.variants or ()]

    @property
    def outcome(self) -> str:
        """The verdict a correct tool reports for the whole scenario: pass
        (exit 0: every variant got its expected verdict) or fail (exit 1)."""
        return self.expect or "pass"

    @property
    def notes(self) -> list[str]:
        """What validation changed and a report should say (e.g. variants set aside)."""
        return list(self._notes)

    def loss_in_float32(self, variant: str) -> bool:
        """Whether `variant` is judged on a loss transformers computes in a
        float64 run: its loss functions compute in float32 (logits.float())."""
        own = BACKENDS.get(self.backend).judged_on_own_loss(variant)
        return own and self.dtype == "float64" and self.precision == "32"

    def tolerance_for(self, variant: str) -> Tolerance:
        """The tolerances `variant` is judged by: the run's, or, for a loss
        computed in float32 in a float64 run, float32's (the metrics the user
        set are kept as given)."""
        if not self.loss_in_float32(variant):
            return self.tolerance
        table = FLOOR if self.tolerance.auto else DEFAULT_TOLERANCES
        return self.tolerance.at_least(table[FLOAT32_LOSS])

    def expected(self, variant: str, equal_counts: bool = False) -> str:
        """The verdict this scenario expects of `variant` (your own loss or a
        key=value setting: pass).
        With equal item counts in every micro-batch no normalisation rule can
        differ from another, so a built-in bug is then expected to pass."""
        if variant in self.variant_expect:
            return self.variant_expect[variant]
        if is_import_path(variant) or is_setting(variant):
            return "pass"
        known = BACKENDS.get(self.backend).variants.get(variant)
        return known.expected_when_equal if equal_counts else known.expected

    @property
    def source_dir(self) -> Path | None:
        """The directory of the scenario file (None for the built-in scenario):
        relative data paths and user modules are looked up there."""
        return self._source_dir
