"""The scenario schema: every field a scenario file may hold, typed and checked.

A scenario is validated completely (all problems at once) before anything
heavy is imported; every field has a default, so `Scenario()` is the built-in
tiny scenario that `gaverify run` uses with no file. Names (variants,
optimizers, backends) are checked against their registries.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gaverify.backends import BACKENDS
from gaverify.optim import OPTIMIZERS
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

# Default tolerances by dtype: well above the rounding noise of a correct loop
# and far below the error of the mean-of-means bug on variable-length data
# (both measured; see docs/tolerances.md). An explicit value always wins.
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "float64": {
        "loss_rel": 1e-10,
        "grad_norm_rel": 1e-10,
        "grad_rel_l2": 1e-9,
        "cosine_distance": 1e-12,
        "param_max_abs": 1e-9,
    },
    "float32": {
        "loss_rel": 1e-5,
        "grad_norm_rel": 1e-4,
        "grad_rel_l2": 1e-4,
        "cosine_distance": 1e-6,
        "param_max_abs": 1e-4,
    },
    "bfloat16": {
        "loss_rel": 2e-2,
        "grad_norm_rel": 5e-2,
        "grad_rel_l2": 5e-2,
        "cosine_distance": 5e-3,
        "param_max_abs": 5e-2,
    },
}


class Section(BaseModel):
    """A scenario section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ModelSpec(Section):
    source: Literal["config"] = Field("config", description="where the model comes from")
    type: str = Field("llama", description="transformers model type, e.g. llama, gpt2")
    task: Literal["causal-lm"] = "causal-lm"
    config: dict[str, Any] = Field(
        default_factory=lambda: dict(TINY_LLAMA),
        description="keyword arguments for AutoConfig.for_model",
    )
    dropout: bool = Field(
        False,
        description="keep dropout active (its masks differ between full and micro-batches, "
        "so the runs cannot agree)",
    )


class LengthSpec(Section):
    min: int = Field(4, ge=1)
    max: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> LengthSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class DataSpec(Section):
    source: Literal["synthetic"] = "synthetic"
    samples: int = Field(64, ge=1, description="size of the synthetic data set")
    length: LengthSpec = Field(default_factory=LengthSpec)
    padding: Literal["right"] = "right"


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


class Tolerance(Section):
    """Largest allowed divergence per metric; unset ones come from the dtype."""

    loss_rel: float | None = Field(None, ge=0)
    grad_norm_rel: float | None = Field(None, ge=0)
    grad_rel_l2: float | None = Field(None, ge=0)
    cosine_distance: float | None = Field(None, ge=0, description="1 - cosine similarity")
    param_max_abs: float | None = Field(None, ge=0, description="trajectory mode only")


class Scenario(Section):
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
    variants: list[str] = Field(default_factory=lambda: ["naive", "fixed"], min_length=1)
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
        if self.data.samples < self.batch.size:
            raise ValueError(
                f"data.samples ({self.data.samples}) cannot fill one batch of "
                f"batch.size ({self.batch.size})"
            )
        defaults = DEFAULT_TOLERANCES[self.dtype]
        for metric, value in defaults.items():
            if getattr(self.tolerance, metric) is None:
                setattr(self.tolerance, metric, value)
        return self

    def expected(self, variant: str) -> str:
        """The verdict this scenario expects of `variant`."""
        return self.expect.get(variant) or VARIANTS.get(variant).expected
