"""Backends: the engines that run a scenario's paired training passes.

Every backend takes a validated Scenario (and a Progress) and returns the
same Trace of Measurements, so comparison, verdicts and reports never know
which one ran. Each backend declares the loss variants it understands and
the modes it can run; its run function is an import path, resolved only when
it runs, so naming a backend in a scenario (and validating it) imports
nothing heavy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gaverify.backends.ddp_variants import DDP_VARIANTS
from gaverify.backends.lightning_variants import LIGHTNING_VARIANTS
from gaverify.backends.trainer_variants import TRAINER_VARIANTS
from gaverify.registry import Registry
from gaverify.variants import VARIANTS

if TYPE_CHECKING:
    from gaverify.results import Trace
    from gaverify.scenario import Scenario


@dataclass(frozen=True)
class Backend:
    """A backend: where its run function lives and what a scenario may ask of it."""

    run: str  # module:function
    summary: str
    variants: Registry[Any]  # the variant names it understands (module:function besides)
    default_variants: tuple[str, ...]
    modes: tuple[str, ...]  # the first is the default
    processes: tuple[int, int, int]  # worker processes: (default, least, most)
    custom_variants: bool = True  # whether module:function variants (your loss) can run
    custom_summary: str = "your compute_loss_func(outputs, labels, num_items_in_batch)"
    # The scenario key whose import path is the one thing this backend measures
    # (loop: "loop.step"): it is the only variant, and a scenario's own
    # variants, written for another backend, are set aside with a note.
    own_variant: str | None = None


BACKENDS: Registry[Backend] = Registry("backend")
BACKENDS.add(
    "reference",
    Backend(
        "gaverify.backends.reference:run",
        "gaverify's own explicit accumulation loop (the core)",
        VARIANTS,
        ("naive", "fixed"),
        ("lockstep", "trajectory"),
        (1, 1, 1),
    ),
)
BACKENDS.add(
    "trainer",
    Backend(
        "gaverify.backends.trainer:run",
        "the installed transformers.Trainer, gradient_accumulation_steps 1 vs N (on W "
        "processes with distributed.processes: W)",
        TRAINER_VARIANTS,
        ("installed", "pre-fix"),
        ("trajectory",),
        (1, 1, 64),
    ),
)
BACKENDS.add(
    "ddp",
    Backend(
        "gaverify.backends.ddp:run",
        "DistributedDataParallel over W processes (torchrun's launcher; gloo on CPU, NCCL on "
        "CUDA), full batch in one process vs W ranks x N micro-batches",
        DDP_VARIANTS,
        ("local-count", "global-count"),
        ("lockstep", "trajectory"),
        (2, 2, 64),
        custom_variants=False,
    ),
)
BACKENDS.add(
    "loop",
    Backend(
        "gaverify.backends.loop:run",
        "your own accumulation step (loop.step: module:function), called with the full batch "
        "as one micro-batch and with N micro-batches",
        Registry("loop variant"),
        (),
        ("lockstep", "trajectory"),
        (1, 1, 1),
        custom_variants=False,
        own_variant="loop.step",
    ),
)
BACKENDS.add(
    "lightning",
    Backend(
        "gaverify.backends.lightning:run",
        "the installed PyTorch Lightning Trainer (extra: gaverify[lightning]), "
        "accumulate_grad_batches 1 vs N",
        LIGHTNING_VARIANTS,
        ("installed",),
        ("trajectory",),
        (1, 1, 1),
        custom_summary="your LightningModule, built as Class(model)",
    ),
)


def load_backend(name: str) -> Callable[[Scenario, Progress | None], Trace]:
    """The run function of backend `name`."""
    module, _, func = BACKENDS.get(name).run.partition(":")
    return getattr(importlib.import_module(module), func)


__all__ = ["BACKENDS", "Backend", "Interrupted", "Progress", "load_backend"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a backend; `trace` holds the rows it measured so far
    (None when it has nothing to give back)."""

    def __init__(self, trace: Trace | None = None):
        super().__init__()
        self.trace = trace


class Progress:
    """Where a backend reports how far it got; this base class ignores it.
    The CLI passes a subclass that draws a progress bar."""

    def start(self, total: int) -> None:
        """`total` training passes are about to run."""

    def advance(self, label: str = "") -> None:
        """One more training pass is done."""
