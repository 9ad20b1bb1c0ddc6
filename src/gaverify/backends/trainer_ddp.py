"""The trainer backend on W processes: the installed Trainer under torch.distributed.

The reference is the Trainer in this one process at batch B and
gradient_accumulation_steps=1 (trainer.py's own run); its per-step
gradients and parameters go to the job folder. Then W ranks are launched
(distributed/launch.py), each running the Trainer at per-device batch
B/(W*N) with N accumulation steps: the Trainer (through accelerate) wraps
the model in DistributedDataParallel and shards each step's batches across
the ranks, so one optimizer step covers the reference step's B samples.
Rank 0 compares every step with the reference, as the one-process backend
does. Variants: installed (average_tokens_across_devices as installed: the
count all-reduced), local-count (switched off), pre-fix, your own loss.

The logged loss is the mean over ranks of what each rank's training steps
returned, which is what the Trainer logs. A diverging gradient is not
fitted here (the Trainer interleaves the ranks' batches), so failures carry
no diagnosis.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gaverify.backends import Progress
from gaverify.backends import trainer as single
from gaverify.backends import trainer_compat as compat
from gaverify.backends.trainer_variants import resolve_trainer_variant
from gaverify.distributed.rank import mean_over_ranks
from gaverify.prepare import Setup
from gaverify.results import Trace

REFERENCE_FILE = "reference.pt"


class _RankProgress(Progress):
    def __init__(self, ctx):
        self.ctx = ctx

    def advance(self, label: str = "") -> None:
        self.ctx.advance(label)


class _Ignore:
    """The watch of ranks other than 0: they only train."""

    def gradient(self, model: Any) -> None:
        pass

    def parameters(self, params: list[Any]) -> None:
        pass


def run_distributed(scenario, progress: Progress) -> Trace:
    """The reference here, then every (N, variant) on the scenario's W ranks."""
    import torch
    import transformers

    from gaverify.distributed.launch import run_ranks

    setup = Setup(scenario, resolve_trainer_variant)
    _, plan, references = single.plan_runs(setup)
    progress.start(scenario.steps * (len(references) + len(plan)))
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        refs = {}
        for key, variant in references.items():
            keep = single.KeepReference()
            run = single._train(setup, variant, 1, keep, progress, f"reference ({key})")
            refs[key] = {
                "losses": run.losses, "grad_norms": run.grad_norms, "notes": run.notes,
                "grads": keep.grads, "params": keep.params,
            }  # fmt: skip
    finally:
        transformers.logging.set_verbosity(verbosity)

    def prepare(folder: Path) -> None:
        torch.save(refs, folder / REFERENCE_FILE)

    on_cuda = setup.device == "cuda"
    return Trace.model_validate_json(
        run_ranks(scenario, "gaverify.backends.trainer_ddp:work", progress, on_cuda, prepare)
    )


def _logged_over_ranks(values: list[float]) -> list[float]:
    """The ranks' mean of this step's summed returned losses (as the Trainer logs it)."""
    return [mean_over_ranks(math.fsum(values))]


def work(scenario, ctx) -> str:
    """One rank: every (N, variant) Trainer run; rank 0 returns the Trace as JSON."""
    import torch
    import transformers

    setup = Setup(scenario, resolve_trainer_variant, guard=False)  # checked by the parent
    variants, plan, _ = single.plan_runs(setup)
    refs = torch.load(ctx.folder / REFERENCE_FILE, weights_only=True)
    progress = _RankProgress(ctx)
    transformers.logging.set_verbosity_error()
    measurements, notes = [], []
    for n, name in plan:
        variant = variants[name]
        ref = refs[variant.reference]
        keep = single.KeepReference()
        keep.grads, keep.params = ref["grads"], ref["params"]
        watch = (
            single.CompareWithReference(keep, single.NoFit(), n, name)
            if ctx.rank == 0
            else _Ignore()
        )
        label = f"N={n} {name}"
        got = single._train(
            setup, variant, n, watch, progress, label, ctx.world, _logged_over_ranks
        )
        if ctx.rank == 0:
            counts = single.item_counts(setup, ctx.world * n)
            ref_run = single.TrainedRun(ref["losses"], ref["grad_norms"])
            measurements += single.measure_runs(setup, n, name, counts, ref_run, got, watch)
            notes += got.notes
    if ctx.rank != 0:
        return ""
    order = {key: i for i, key in enumerate(plan)}
    measurements.sort(key=lambda m: (m.step, order[(m.n, m.variant)]))
    ref_notes = [note for ref in refs.values() for note in ref["notes"]]
    return Trace(
        measurements=measurements,
        device=f"{setup.device} x {ctx.world}",
        parameters=setup.parameters,
        notes=[
            f"backend: transformers {compat.installed_version()} Trainer on {ctx.world} "
            f"processes (torch.distributed, per-device batch B/(W*N)); reference: one process, "
            f"gradient_accumulation_steps=1, batch {scenario.batch.size}",
            f"distributed: N is per process; a step's counts are listed in data order (the "
            f"Trainer deals its batches to the {ctx.world} processes in turn)",
            *setup.run_notes(),
            *dict.fromkeys([*notes, *ref_notes]),
        ],
    ).model_dump_json()
