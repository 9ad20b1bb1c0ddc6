"""Every backend a scenario can name, declared once: what it runs and what it accepts.

A backend is one module in gaverify/backends (how it trains, where it reads
gradients) plus one entry here that declares everything else: its variants,
default variants, modes, process counts, the memory it holds, and the
scenario keys only it reads. The schema, the memory guard, `gaverify list`
and the runner all read these entries; none of them names a backend. The
run function is an import path, resolved only when a run starts, so naming
a backend in a scenario (and validating it) imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gaverify.accumulation.accelerate_variants import ACCELERATE_VARIANTS
from gaverify.accumulation.ddp_variants import DDP_VARIANTS, FSDP_VARIANTS
from gaverify.accumulation.lightning_variants import LIGHTNING_VARIANTS
from gaverify.accumulation.trainer_variants import TRAINER_VARIANTS
from gaverify.accumulation.variants import VARIANTS
from gaverify.imports import is_import_path
from gaverify.registry import Registry

# (scenario, the optimizer's state slots per parameter) -> parameter-sized
# tensors one process holds at its peak beyond the model itself
Copies = Callable[[Any, int], int]


@dataclass(frozen=True)
class Backend:
    """A backend: where its run function lives and what a scenario may ask of it."""

    run: str  # module:function, (scenario, progress) -> Trace
    summary: str
    variants: Registry[Any]  # the variant names it understands (module:function besides)
    default_variants: tuple[str, ...]
    modes: tuple[str, ...]  # the first is the default
    processes: tuple[int, int, int]  # worker processes: (default, least, most)
    copies: Copies  # what the memory guard counts
    copies_summary: str
    custom_variants: bool = True  # whether module:function variants (your loss) can run
    custom_summary: str = "your compute_loss_func(outputs, labels, num_items_in_batch)"
    # The scenario key whose import path is the one thing this backend measures
    # (loop: "loop.step"): it is the only variant, and a scenario's own
    # variants, written for another backend, are set aside with a note.
    own_variant: str | None = None
    reads: tuple[str, ...] = ()  # scenario keys (section.field) only this backend uses
    # whether `key=value` variants run: the engine with that config argument set,
    # judged against itself at N=1 (trainer: variants [loss_type=dapo, loss_type=bnpo])
    setting_variants: bool = False
    # module:function (scenario) -> None, run before anything is built or calibrated
    # (the trainer's classes); it imports only what the scenario names
    check: str | None = None
    # settings the engine applies through its own switches (the Trainer's bf16,
    # Lightning's precision); gaverify puts the others on the model itself
    switches: tuple[str, ...] = ()
    # whether every loss it judges is computed by the engine or the model (not
    # by gaverify): in float64 that loss is transformers' float32 one
    engine_losses: bool = False
    # lockstep plans it can run, in the order memory_plan: auto tries them
    # (reference: shared buffers, a pass per variant, sketches); () for none
    plans: tuple[str, ...] = ()
    # (scenario) -> model-sized copies it records on disk (a trajectory tape)
    tape: Callable[[Any], int] | None = None
    # whether it runs as the ranks of a launcher that started gaverify
    # (torchrun, accelerate launch, srun) instead of starting its own
    joins: bool = False

    def judged_on_own_loss(self, variant: str) -> bool:
        """Whether `variant` is judged on a loss gaverify does not compute: the
        engine's, the model's (own_reference variants) or your function's."""
        if self.engine_losses or is_import_path(variant):
            return True
        return variant in self.variants and getattr(
            self.variants.get(variant), "own_reference", False
        )


def _own_references(scenario: Any) -> int:
    """Reference variants judged against their own loss on the full batch
    (the model's loss, a loss type, your compute_loss_func): each keeps a
    full-batch gradient (lockstep) or trains a reference copy (trajectory)."""
    own = BACKENDS.get("reference").judged_on_own_loss
    return sum(own(v) for v in scenario.variants or ())


def _reference_copies(scenario: Any, k: int) -> int:
    own = _own_references(scenario)
    if scenario.mode != "trajectory":
        # the step's gradient and optimizer state, then what the plan keeps: shared
        # sweeps the reference + 2 buffers, in-turn the reference + .grad, sketched
        # the reference alone (the gradients are dropped as they arrive)
        kept = {"in-turn": 1, "sketched": 0}.get(scenario.memory_plan, 1 + 2)
        return (1 + k + kept) + own
    # one run at a time against the tape: a tensor read back, a fit's full batch
    return (1 + k) + 1 + min(own, 1)


def _reference_tape(scenario: Any) -> int:
    # trajectory: per step each reference run's gradient and parameters, and the start
    if scenario.mode != "trajectory":
        return 0
    return 2 * scenario.steps * (1 + _own_references(scenario)) + 1


def _trained_runs(scenario: Any, k: int) -> int:
    # the run's model copy, gradient and optimizer state, a tensor read back
    return 3 + k


def _replicated_copies(scenario: Any, k: int) -> int:
    # per rank (ddp, accelerate): gradient, DDP buckets, optimizer state, the reference;
    # trajectory: the reference run and a wrapped copy per (N, variant)
    return (2 + k + 1) if scenario.mode != "trajectory" else (2 + k) * (1 + len(scenario.plan))


def _sharded_copies(scenario: Any, k: int) -> int:
    # rank 0, the busiest: the unsharded reference with its gradient and optimizer
    # state, its gradient kept, the gathered one, and the unsharded gradients
    # FSDP accumulates while sync is off (the shards are small next to these)
    runs = 1 if scenario.mode != "trajectory" else len(scenario.plan)
    return (1 + k) + 1 + 1 + 1 + runs


def _trained_tape(scenario: Any) -> int:
    # the reference run's gradient and parameters per step, on disk
    return 2 * scenario.steps


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
        _reference_copies,
        "gradient + optimizer state + the reference + 2 shared buffers (memory_plan: "
        "in-turn 1, sketched 0) + a full-batch gradient per variant judged on its own loss; "
        "trajectory: one run at a time against the reference's tape on disk (2 x parameters "
        "x steps)",
        plans=("shared", "in-turn", "sketched"),
        tape=_reference_tape,
    ),
)
BACKENDS.add(
    "trainer",
    Backend(
        "gaverify.backends.trainer.dispatch:run",
        "the installed transformers.Trainer, gradient_accumulation_steps 1 vs N (on W "
        "processes with distributed.processes: W)",
        TRAINER_VARIANTS,
        ("installed", "pre-fix"),
        ("trajectory",),
        (1, 1, 64),
        _trained_runs,
        "the Trainer's model copy; the reference run's gradients and parameters per step "
        "on a tape on disk",
        reads=("trainer.class", "trainer.config", "trainer.args", "trainer.reward_funcs"),
        setting_variants=True,
        check="gaverify.backends.trainer.classes:check",
        switches=("precision", "gradient_checkpointing", "compile"),
        engine_losses=True,
        tape=_trained_tape,
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
        _replicated_copies,
        "per rank: gradient + DDP buckets + optimizer state + the reference",
        custom_variants=False,
        joins=True,
    ),
)
BACKENDS.add(
    "fsdp",
    Backend(
        "gaverify.backends.fsdp:run",
        "FSDP2 fully_shard over W processes (gloo on CPU, NCCL on CUDA), full batch in one "
        "process vs W ranks x N micro-batches with gradient sync off until the last",
        FSDP_VARIANTS,
        ("local-count", "global-count"),
        ("lockstep", "trajectory"),
        (2, 2, 64),
        _sharded_copies,
        "rank 0: an unsharded reference (gradient + optimizer state) + the gathered gradient; "
        "per rank: 1/W of the model, gradient and optimizer state + unsharded gradients "
        "between micro-batches; trajectory: a sharded copy per run",
        custom_variants=False,
        joins=True,
    ),
)
BACKENDS.add(
    "accelerate",
    Backend(
        "gaverify.backends.accelerator:run",
        "loops written with accelerate: Accelerator(gradient_accumulation_steps=N) and "
        "accelerator.accumulate(model), on W processes (W=1: no DDP)",
        ACCELERATE_VARIANTS,
        ("plain", "variable-size-recipe"),
        ("lockstep", "trajectory"),
        (1, 1, 64),
        _replicated_copies,
        "per rank: gradient + DDP buckets + optimizer state + the reference; trajectory: a "
        "prepared copy per run",
        custom_variants=False,
        joins=True,
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
        lambda s, k: (
            (4 + 3 * k)
            if s.mode != "trajectory"
            else (1 + k) + 1 + (2 + k) * len(s.batch.accumulation)
        ),
        "gradient + optimizer state + two saved states (before and after the step) + the "
        "reference's gradient; trajectory: a copy per N",
        custom_variants=False,
        own_variant="loop.step",
        engine_losses=True,
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
        _trained_runs,
        "the run's model copy; the reference run's gradients and parameters per step on a "
        "tape on disk",
        custom_summary="your LightningModule, built as Class(model)",
        switches=("precision",),
        engine_losses=True,
        tape=_trained_tape,
    ),
)

DEFAULT = "reference"  # what a scenario runs on when it names no backend
# tolerance: auto calibrates on this backend's correct loop, reordered
CALIBRATION = (DEFAULT, "fixed-reordered")
