"""The loss variants of the trainer backend: ways to set up transformers.Trainer.

    installed   the Trainer exactly as installed: what users run
    pre-fix     the model told it takes no loss kwargs (accepts_loss_kwargs =
                False), so every micro-batch returns its own mean and the
                Trainer divides by N: the mean of means that releases before
                4.46 applied. It proves the scenario can see the bug.
    local-count on W processes: average_tokens_across_devices=False, so
                each process divides by its own item count (needs
                distributed.processes of 2 or more)
    module:function   your compute_loss_func, passed to Trainer(compute_loss_func=...)
    key=value   the trainer as installed with this config argument set (several:
                key=value,key2=value2; values read as YAML), e.g. loss_type=dapo
                for TRL's trainers

Each variant is compared with the same Trainer set-up at
gradient_accumulation_steps=1 (its `reference`), so a custom loss is measured
against itself on the full batch. Light module: no torch, no transformers
(accumulation/variants.py, which it reads the own-loss variants from, loads
neither until a loss is computed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaverify.accumulation.declaration import Declaration
from gaverify.accumulation.variants import VARIANTS, custom_variant
from gaverify.imports import describe, is_import_path, load_object
from gaverify.registry import Registry


@dataclass(frozen=True)
class TrainerVariant(Declaration):
    """A Trainer configuration (the verdict a correct release earns with it
    is its declared `expected`)."""

    model_loss: bool = True  # every Trainer set-up trains on the model's outputs
    accepts_loss_kwargs: bool | None = None  # None: leave the model as it is
    compute_loss_func: Callable[..., Any] | None = None
    args: tuple[tuple[str, Any], ...] = ()  # TrainingArguments this variant sets
    own_reference: bool = False  # its args define the loss: its own full-batch run

    @property
    def reference(self) -> str:
        """Runs with the same reference key share one full-batch run: the two
        built-ins both train on the model's own loss; a loss of your own and a
        key=value setting (a loss type) are each judged against themselves."""
        return self.name if self.compute_loss_func or self.own_reference else "model loss"


TRAINER_VARIANTS: Registry[TrainerVariant] = Registry("trainer variant")
TRAINER_VARIANTS.add(
    "installed",
    TrainerVariant(
        "installed",
        "the installed transformers.Trainer, as users run it",
        "pass",
    ),
)
TRAINER_VARIANTS.add(
    "pre-fix",
    TrainerVariant(
        "pre-fix",
        "the Trainer with the model's loss kwargs switched off: mean of means, as before 4.46",
        "fail",
        accepts_loss_kwargs=False,
    ),
)
TRAINER_VARIANTS.add(
    "local-count",
    TrainerVariant(
        "local-count",
        "on W processes, average_tokens_across_devices=False: each process divides by its "
        "own item count",
        "fail",
        args=(("average_tokens_across_devices", False),),
        processes=2,
    ),
)


def own_loss(variant: TrainerVariant, search: list[Path]) -> Any:
    """The reference backend's Variant for what this Trainer set-up
    backpropagates on a full batch: the model's own loss given the batch's
    count, or the compute_loss_func. It is how the loss is computed at a
    run's own parameters where whole trained runs cannot be compared (a loss
    with MoE router terms drifts from its reference by design)."""
    return (
        custom_variant(variant.name, search) if variant.compute_loss_func else VARIANTS.get("model")
    )


# key=value, several joined by commas (a comma only splits before the next key=)
SETTING = re.compile(r"^[A-Za-z_]\w*=.*$")
_NEXT_KEY = re.compile(r",(?=\s*[A-Za-z_]\w*=)")


def is_setting(name: str) -> bool:
    """True for a `key=value` variant (the trainer with a config argument set)."""
    return bool(SETTING.match(name))


def parse_setting(name: str) -> tuple[tuple[str, Any], ...]:
    """The (key, value) pairs of `key=value[,key2=value2]`, values read as YAML."""
    import yaml

    pairs = []
    for part in _NEXT_KEY.split(name):
        key, _, text = part.partition("=")
        try:
            pairs.append((key.strip(), yaml.safe_load(text) if text.strip() else None))
        except yaml.YAMLError as exc:
            raise ValueError(f"variant {name}: {key.strip()}={text} is not a YAML value") from exc
    return tuple(pairs)


def resolve_trainer_variant(name: str, search: list[Path]) -> TrainerVariant:
    """A registered Trainer variant, your compute_loss_func for `module:function`,
    or the installed trainer with config arguments set for `key=value`."""
    if is_setting(name):
        return TrainerVariant(
            name,
            f"the trainer as installed with {name}, against itself at N=1",
            "pass",
            args=parse_setting(name),
            own_reference=True,
        )
    if not is_import_path(name):
        return TRAINER_VARIANTS.get(name)
    func = load_object(name, "variants", search)
    summary = "your compute_loss_func, passed to Trainer(compute_loss_func=...)"
    return TrainerVariant(
        name, summary, "pass", compute_loss_func=func, origin=describe(func, name)
    )
