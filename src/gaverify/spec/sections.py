"""The sections of a scenario: model, data, batch, distributed, optimizer, loss, trainer, loop.

Each is a pydantic model that forbids unknown keys and checks what it can on
its own; checks that span sections live in constraints.py. Names are
checked against their registries, which import nothing heavy.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gaverify.data.synthetic import LENGTHS
from gaverify.imports import is_import_path
from gaverify.model.optim import OPTIMIZERS
from gaverify.tasks.heads import TASKS

TINY_LLAMA: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 256,
    "max_position_embeddings": 512,
}


def _import_path(value: str | None) -> str | None:
    if value is not None and not is_import_path(value):
        raise ValueError(f"'{value}' is not an import path of the form module:function")
    return value


ImportPath = Annotated[str | None, AfterValidator(_import_path)]  # module:function, or unset


class Section(BaseModel):
    """A scenario section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


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
    factory: ImportPath = Field(
        None, description="source: factory: module:function returning a torch module"
    )
    task: str = Field("causal-lm", description="what the model is trained to do")
    config: dict[str, Any] = Field(
        default_factory=lambda: dict(TINY_LLAMA),
        description="config keyword arguments (overrides for pretrained; factory arguments)",
    )
    tiny: bool = Field(
        False,
        description="source: config: shrink model.type's own default config (width, depth, "
        "heads, experts, vocabulary) as gaverify census does; model.config goes on top",
    )
    trust_remote_code: bool = Field(
        False, description="let transformers run code shipped with a pretrained model"
    )
    dropout: bool = Field(
        False,
        description="keep dropout active (its masks differ between full and micro-batches, "
        "so the runs cannot agree)",
    )
    gradient_checkpointing: bool = Field(
        False,
        description="recompute each layer in backward (transformers' gradient checkpointing, "
        "non-reentrant); the trainer backend also reads trainer.args.gradient_checkpointing",
    )
    compile: Literal["aot_eager", "inductor"] | None = Field(
        None,
        description="run the model's forward through torch.compile with this backend "
        "(inductor needs a C/C++ compiler); the trainer backend also reads "
        "trainer.args.torch_compile",
    )

    @model_validator(mode="before")
    @classmethod
    def _own_config(cls, data: Any) -> Any:
        # The tiny default config describes the default random-init model;
        # pretrained and factory models start from no overrides at all.
        # A tiny model starts from its type's own defaults, shrunk.
        if isinstance(data, dict) and (
            data.get("source", "config") != "config" or data.get("tiny")
        ):
            return {"config": {}, **data}  # a copy: the caller's mapping is left alone
        return data

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        TASKS.get(value)
        return value

    @model_validator(mode="after")
    def _source_fields(self) -> ModelSpec:
        if self.tiny and self.source != "config":
            raise ValueError("model.tiny is only used with source: config")
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
    pad_to_max: bool = Field(
        False,
        description="pad every (micro-)batch to length.max, as padding='max_length' does, "
        "not to its own longest sequence",
    )

    @model_validator(mode="after")
    def _path_for_files(self) -> DataSpec:
        if self.source == "synthetic" and self.path is not None:
            raise ValueError("data.path is not used with source: synthetic")
        if self.source != "synthetic" and self.path is None:
            raise ValueError(f"source '{self.source}' needs data.path")
        if self.packed and self.pad_to_max:
            raise ValueError("pad_to_max: packed rows have no padding")
        return self


class BatchSpec(Section):
    size: int = Field(8, ge=1, le=4096, description="full batch size B (the reference)")
    accumulation: list[int] = Field(
        default_factory=lambda: [2, 4, 8],
        min_length=1,
        description="accumulation steps N to compare; B/N samples per micro-batch",
        validate_default=True,  # the default [2, 4, 8] must divide a user's batch.size too
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


class DistributedSpec(Section):
    processes: int | None = Field(
        None, ge=1, le=64, description="worker processes (ranks) W; default: the backend's (ddp: 2)"
    )
    timeout: float = Field(
        300.0,
        gt=0,
        description="seconds with no progress from any rank before the run is stopped as hung "
        "(also the collective timeout of every rank)",
    )


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
    loss_type: ImportPath = Field(
        None,
        description="variant loss-type: module:function registered in transformers' "
        "LOSS_MAPPING and dispatched to by the model's loss_type",
    )


# TrainingArguments that gaverify sets itself: they define the paired runs.
TRAINER_OWNED_ARGS = frozenset(
    {
        "output_dir",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_steps",
        "num_train_epochs",
        "seed",
        "data_seed",
        "logging_steps",
        "logging_strategy",
        "learning_rate",
        "weight_decay",
        "lr_scheduler_type",
        "label_smoothing_factor",
        "use_cpu",
        "no_cuda",
        "report_to",
        "save_strategy",
        "remove_unused_columns",
        "disable_tqdm",
    }
)


class TrainerSpec(Section):
    # `class` is a Python keyword: the field is class_, read and written as `class`
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    class_: ImportPath = Field(
        None,
        alias="class",
        description="backend: trainer: module:Class, a transformers.Trainer subclass, e.g. "
        "trl:SFTTrainer or your own (unset: transformers:Trainer)",
    )
    config: ImportPath = Field(
        None,
        description="backend: trainer: module:Class of the arguments trainer.args go to "
        "(unset: the one that goes with trainer.class, e.g. trl:SFTConfig)",
    )
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="backend: trainer: further arguments of trainer.config (TrainingArguments "
        "or its subclass), e.g. max_grad_norm: 1.0",
    )
    reward_funcs: list[ImportPath] = Field(
        default_factory=list,
        description="backend: trainer, trl:GRPOTrainer: reward functions by import path "
        "(unset: a deterministic bundled one, gaverify.backends.trainer.rewards:even_tokens)",
    )

    @field_validator("args")
    @classmethod
    def _not_owned(cls, value: dict[str, Any]) -> dict[str, Any]:
        owned = sorted(set(value) & TRAINER_OWNED_ARGS)
        if owned:
            raise ValueError(
                f"{', '.join(owned)}: set by gaverify from the scenario (batch, steps, "
                "optimizer, seed, loss), not in trainer.args"
            )
        return value


class LoopSpec(Section):
    step: ImportPath = Field(
        None,
        description="backend: loop: module:function, your accumulation step "
        "step(model, optimizer, micro_batches) -> logged loss",
    )
