"""The scenario schema: every field a scenario file may hold, typed and checked.

A scenario is validated completely (all problems at once) before anything
heavy is imported; every field has a default, so `Scenario()` is the built-in
tiny scenario that `gaverify run` uses with no file. Names (variants,
optimizers, backends) are checked against their registries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gaverify.backends import BACKENDS
from gaverify.imports import is_import_path
from gaverify.optim import OPTIMIZERS
from gaverify.tasks import TASKS
from gaverify.tolerances import DEFAULT_TOLERANCES, Tolerance
from gaverify.variants import VARIANTS

Verdict = Literal["pass", "fail"]
Dtype = Literal["float32", "float64", "bfloat16"]

TINY_LLAMA: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 256,
    "max_position_embeddings": 512,
}


class Section(BaseModel):
    """A scenario section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


__all__ = ["DEFAULT_TOLERANCES", "Scenario", "Section", "Tolerance"]


class ModelSpec(Section):
    source: Literal["config", "pretrained", "factory"] = Field(
        "config",
        description="config: random init from model.type + model.config; pretrained: weights "
        "from model.path; factory: a torch module from model.factory",
    )
    type: str = Field("llama", description="transformers model type (source: config)")
    path: str | None = Field(
        None,
        description="source: pretrained: a directory, a hub id already in the local cache, "
        "or package:NAME/DIR for a model shipped inside an installed Python package",
    )
    factory: str | None = Field(
        None, description="source: factory: module:function returning a torch module"
    )
    task: str = Field("causal-lm", description="what the model is trained to do")
    config: dict[str, Any] = Field(
        default_factory=lambda: dict(TINY_LLAMA),
        description="config keyword arguments (overrides for pretrained; factory arguments)",
    )
    trust_remote_code: bool = Field(
        False, description="let transformers run code shipped with a pretrained model"
    )
    dropout: bool = Field(
        False,
        description="keep dropout active (its masks differ between full and micro-batches, "
        "so the runs cannot agree)",
    )

    @model_validator(mode="before")
    @classmethod
    def _own_config(cls, data: Any) -> Any:
        # The tiny default config describes the default random-init model;
        # pretrained and factory models start from no overrides at all.
        if isinstance(data, dict) and data.get("source", "config") != "config":
            return {"config": {}, **data}  # a copy: the caller's mapping is left alone
        return data

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        TASKS.get(value)
        return value

    @field_validator("factory")
    @classmethod
    def _import_path(cls, value: str | None) -> str | None:
        if value is not None and not is_import_path(value):
            raise ValueError(f"'{value}' is not an import path of the form module:function")
        return value

    @model_validator(mode="after")
    def _source_fields(self) -> ModelSpec:
        needs = {"pretrained": "path", "factory": "factory"}
        for source, key in needs.items():
            given = getattr(self, key) is not None
            if self.source == source and not given:
                raise ValueError(f"source '{source}' needs model.{key}")
            if self.source != source and given:
                raise ValueError(f"model.{key} is only used with source: {source}")
        return self


class LengthSpec(Section):
    min: int = Field(4, ge=1, description="shortest sequence (shorter file rows are skipped)")
    max: int = Field(64, ge=1, description="longest sequence (longer file rows are truncated)")
    distribution: str = Field(
        "uniform", description="synthetic lengths: uniform, long-tail or fixed"
    )

    @model_validator(mode="after")
    def _ordered(self) -> LengthSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self

    @field_validator("distribution")
    @classmethod
    def _known(cls, value: str) -> str:
        from gaverify.synthetic import LENGTHS

        LENGTHS.get(value)
        return value


class DataSpec(Section):
    source: Literal["synthetic", "text", "jsonl", "datasets"] = "synthetic"
    path: str | None = Field(
        None,
        description="text/jsonl: a file (relative to the scenario file); datasets: a local "
        "file or directory, or a data set in the local Hugging Face cache",
    )
    split: str = Field("train", description="datasets: which split to read")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="the task's column -> the column in the data (e.g. text: review)",
    )
    samples: int = Field(
        64, ge=1, description="synthetic data set size, or the most samples read from data"
    )
    length: LengthSpec = Field(default_factory=LengthSpec)
    padding: Literal["right", "left"] = "right"
    packed: bool = Field(
        False, description="padding-free: each (micro-)batch is one row with position_ids"
    )

    @model_validator(mode="after")
    def _path_for_files(self) -> DataSpec:
        if self.source == "synthetic" and self.path is not None:
            raise ValueError("data.path is not used with source: synthetic")
        if self.source != "synthetic" and self.path is None:
            raise ValueError(f"source '{self.source}' needs data.path")
        return self


class BatchSpec(Section):
    size: int = Field(8, ge=1, description="full batch size B (the reference)")
    accumulation: list[int] = Field(
        default_factory=lambda: [2, 4, 8],
        min_length=1,
        description="accumulation steps N to compare; B/N samples per micro-batch",
    )

    @field_validator("accumulation")
    @classmethod
    def _divides(cls, value: list[int], info: ValidationInfo) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"repeated values in {value}")
        size = info.data.get("size")
        if size is None:  # size itself is invalid and reported on its own
            return value
        for n in value:
            if n < 1 or n > size or size % n:
                raise ValueError(
                    f"{n} does not divide batch.size {size}: each N must be a divisor "
                    f"of the batch size, from 1 to {size}"
                )
        return value


class OptimizerSpec(Section):
    name: str = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    options: dict[str, Any] = Field(
        default_factory=dict, description="further keyword arguments for the torch optimizer"
    )

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        OPTIMIZERS.get(value)
        return value


class LossSpec(Section):
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="label smoothing of the cross-entropy (all runs)"
    )


class Scenario(Section):
    _source_dir: Path | None = PrivateAttr(None)

    name: str = "default"
    description: str = ""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Dtype = "float32"
    backend: str = "reference"
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    batch: BatchSpec = Field(default_factory=BatchSpec)
    steps: int = Field(4, ge=1)
    mode: Literal["lockstep", "trajectory"] = "lockstep"
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    variants: list[str] = Field(
        default_factory=lambda: ["naive", "fixed"],
        min_length=1,
        description="built-in names, or module:function for your own compute_loss_func",
    )
    tolerance: Tolerance = Field(default_factory=Tolerance)
    expect: dict[str, Verdict] = Field(
        default_factory=dict,
        description="verdict per variant; unlisted variants expect their usual verdict",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        BACKENDS.get(value)
        return value

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, value: list[str]) -> list[str]:
        for name in value:
            if not is_import_path(name):
                VARIANTS.get(name)
        if len(set(value)) != len(value):
            raise ValueError(f"repeated variants in {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        strays = sorted(set(self.expect) - set(self.variants))
        if strays:
            raise ValueError(
                f"expect names {', '.join(strays)}, which is not among variants {self.variants}"
            )
        problem = _task_problem(self)
        if problem:
            raise ValueError(problem)
        if self.data.source == "synthetic" and self.data.samples < self.batch.size:
            raise ValueError(
                f"data.samples ({self.data.samples}) cannot fill one batch of "
                f"batch.size ({self.batch.size})"
            )
        defaults = DEFAULT_TOLERANCES[self.dtype]
        for metric, value in defaults.items():
            if getattr(self.tolerance, metric) is None:
                setattr(self.tolerance, metric, value)
        return self

    def expected(self, variant: str, equal_counts: bool = False) -> str:
        """The verdict this scenario expects of `variant` (your own loss: pass).
        With equal item counts in every micro-batch no normalisation rule can
        differ from another, so a built-in bug is then expected to pass."""
        if variant in self.expect:
            return self.expect[variant]
        if is_import_path(variant):
            return "pass"
        known = VARIANTS.get(variant)
        return known.expected_when_equal if equal_counts else known.expected

    @property
    def source_dir(self) -> Path | None:
        """The directory of the scenario file (None for the built-in scenario):
        relative data paths and user modules are looked up there."""
        return self._source_dir


def _task_problem(scenario: Scenario) -> str | None:
    """What the task cannot do with this data or these variants, if anything."""
    task = TASKS.get(scenario.model.task)
    data = scenario.data
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
    if "label-smoother" in scenario.variants and not task.smoothable:
        return f"variants: label-smoother needs a cross-entropy task, not {task.name}"
    if smoothing and "model" in scenario.variants:
        return "variants: 'model' uses the model's own loss, which has no label smoothing"
    return None
