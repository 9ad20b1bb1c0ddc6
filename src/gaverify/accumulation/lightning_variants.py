"""The variants of the lightning backend: which LightningModule trains.

    installed        the scenario's model in a minimal LightningModule whose
                     training_step returns the model's own loss, trained by
                     the installed Lightning Trainer with
                     accumulate_grad_batches=N: what most Lightning users run.
                     Expected to pass, as accumulation should; what Lightning
                     really does is measured, not assumed (docs/lightning.md).
    module:Class     your LightningModule: called as Class(model) with the
                     scenario's model; its configure_optimizers is used if it
                     defines one, else the scenario's optimizer.

Each variant is compared with the same module at accumulate_grad_batches=1
and batch B. Light module: no torch, no lightning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaverify.accumulation.declaration import Declaration
from gaverify.imports import describe, is_import_path, load_object
from gaverify.registry import Registry


@dataclass(frozen=True)
class LightningVariant(Declaration):
    """A LightningModule to train."""

    module: Callable[..., Any] | None = None  # None: gaverify's wrapper of the scenario's model


LIGHTNING_VARIANTS: Registry[LightningVariant] = Registry("lightning variant")
LIGHTNING_VARIANTS.add(
    "installed",
    LightningVariant(
        "installed",
        "the scenario's model in a LightningModule returning its own loss; the installed "
        "Lightning Trainer with accumulate_grad_batches=N",
        "pass",
        model_loss=True,
    ),
)


def resolve_lightning_variant(name: str, search: list[Path]) -> LightningVariant:
    """A registered variant, or your LightningModule for `module:Class`."""
    if not is_import_path(name):
        return LIGHTNING_VARIANTS.get(name)
    module = load_object(name, "variants", search)
    return LightningVariant(
        name, "your LightningModule, Class(model)", "pass", module=module,
        origin=describe(module, name),
    )  # fmt: skip
