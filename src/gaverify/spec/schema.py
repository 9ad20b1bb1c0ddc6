"""The scenario schema: every field a scenario file may hold, typed and checked.

A scenario is validated completely (all problems at once) before anything
heavy is imported; every field has a default, so `Scenario()` is the built-in
tiny scenario that `gaverify run` uses with no file. Its sections are in
sections.py; here are the top-level fields and the checks that span
sections. Names (variants, modes, backends) are checked against the
backend's registries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from gaverify.imports import is_import_path
from gaverify.spec.backends import BACKENDS
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
from gaverify.spec.tolerances import DEFAULT_TOLERANCES, Tolerance
from gaverify.tasks.heads import TASKS

Verdict = Literal["pass", "fail"]
Dtype = Literal["float32", "float64", "bfloat16"]
Mode = Literal["lockstep", "trajectory"]

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
    backend: str = "reference"
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
            if not is_import_path(name):
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
        problem = _other_backends_keys(self) or _process_problem(self)
        if problem:
            raise ValueError(problem)
        strays = sorted(set(self.variant_expect) - set(self.variants))
        if strays:
            raise ValueError(
                f"variant_expect names {', '.join(strays)}, which is not among variants "
                f"{self.variants}"
            )
        problem = _task_problem(self)
        if problem:
            raise ValueError(problem)
        if self.data.source == "synthetic" and self.data.samples < self.batch.size:
            raise ValueError(
                f"data.samples ({self.data.samples}) cannot fill one batch of "
                f"batch.size ({self.batch.size})"
            )
        if not self.tolerance.auto:  # auto ones are measured by the run
            for metric, value in DEFAULT_TOLERANCES[self.dtype].items():
                if getattr(self.tolerance, metric) is None:
                    setattr(self.tolerance, metric, value)
        return self

    def _own_variant(self, key: str) -> None:
        """A backend that measures one named function (loop.step): that is the
        only variant. Variants and per-variant expectations written for another
        backend are set aside, so `--set backend=loop` works on any scenario."""
        path = _value(self, key)
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
    def outcome(self) -> str:
        """The verdict a correct tool reports for the whole scenario: pass
        (exit 0: every variant got its expected verdict) or fail (exit 1)."""
        return self.expect or "pass"

    @property
    def notes(self) -> list[str]:
        """What validation changed and a report should say (e.g. variants set aside)."""
        return list(self._notes)

    def expected(self, variant: str, equal_counts: bool = False) -> str:
        """The verdict this scenario expects of `variant` (your own loss: pass).
        With equal item counts in every micro-batch no normalisation rule can
        differ from another, so a built-in bug is then expected to pass."""
        if variant in self.variant_expect:
            return self.variant_expect[variant]
        if is_import_path(variant):
            return "pass"
        known = BACKENDS.get(self.backend).variants.get(variant)
        return known.expected_when_equal if equal_counts else known.expected

    @property
    def source_dir(self) -> Path | None:
        """The directory of the scenario file (None for the built-in scenario):
        relative data paths and user modules are looked up there."""
        return self._source_dir


def _process_problem(scenario: Scenario) -> str | None:
    """What is wrong with the number of processes for this backend and batch, if anything."""
    default, least, most = BACKENDS.get(scenario.backend).processes
    spec = scenario.distributed
    if spec.processes is None:
        spec.processes = default
    w = spec.processes
    if most == 1 and w > 1:
        return (
            f"distributed.processes: backend '{scenario.backend}' runs in one process; "
            "use backend: ddp for several"
        )
    if w < least:
        return f"distributed.processes: backend '{scenario.backend}' needs {least} or more, not {w}"
    known = BACKENDS.get(scenario.backend).variants
    for name in scenario.variants or []:
        if name in known and known.get(name).processes > w:
            return f"variants: {name} compares counts across processes: set distributed.processes"
    for n in scenario.batch.accumulation:
        if scenario.batch.size % (w * n):
            return (
                f"batch.accumulation: N={n} on {w} processes needs batch.size divisible by "
                f"{w * n} (W x N micro-batches), not {scenario.batch.size}"
            )
    return None


def _task_problem(scenario: Scenario) -> str | None:
    """What the task cannot do with this data or these variants, if anything."""
    task = TASKS.get(scenario.model.task)
    data = scenario.data
    if not task.columns and data.source != "synthetic":
        return f"data.source: {task.name} runs on synthetic data only, not {data.source}"
    strays = sorted(set(data.columns) - set(task.columns))
    if data.source == "synthetic" and data.columns:
        return "data.columns is not used with source: synthetic"
    if strays:
        return f"data.columns: {task.name} reads columns {list(task.columns)}, not {strays}"
    if data.source == "text" and task.columns != ("text",):
        return (
            f"data.source: a text file has no {' or '.join(task.columns[1:])} column for "
            f"{task.name}; use source: jsonl or datasets"
        )
    if data.packed and not task.packable:
        return f"data.packed: {task.name} cannot be packed (its attention sees every token)"
    smoothing = scenario.loss.label_smoothing
    if smoothing and not task.smoothable:
        return f"loss.label_smoothing: {task.name} has no cross-entropy to smooth"
    return _variant_problem(scenario)


def _value(scenario: Scenario, key: str) -> object:
    """The value at a dotted scenario key (section.field)."""
    section, _, field = key.partition(".")
    return getattr(getattr(scenario, section), field)


def _other_backends_keys(scenario: Scenario) -> str | None:
    """A key set that only another backend reads (declared in spec/backends.py)."""
    for name, backend in BACKENDS.items():
        keys = [*backend.reads, *([backend.own_variant] if backend.own_variant else [])]
        for key in keys:
            if name != scenario.backend and _value(scenario, key):
                return f"{key} is only used with backend: {name}"
    return None


def _variant_problem(scenario: Scenario) -> str | None:
    """What a chosen variant's declaration refuses, or a key set that only a
    variant not chosen reads."""
    known = BACKENDS.get(scenario.backend).variants
    for name in scenario.variants or []:
        if name not in known:
            continue
        variant = known.get(name)
        if variant.reads and not _value(scenario, variant.reads):
            return f"variants: {name} needs {variant.reads}: module:function"
        problem = variant.check(scenario) if variant.check else None
        if problem:
            return problem
    for backend_name, backend in BACKENDS.items():
        for name, variant in backend.variants.items():
            chosen = backend_name == scenario.backend and name in (scenario.variants or [])
            if variant.reads and _value(scenario, variant.reads) and not chosen:
                return (
                    f"{variant.reads} is only used by the {name} variant of backend {backend_name}"
                )
    return None
