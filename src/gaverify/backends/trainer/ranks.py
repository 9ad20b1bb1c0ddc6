"""The trainer backend on W processes: the installed Trainer under torch.distributed.

The reference is the Trainer in this one process at batch B and
gradient_accumulation_steps=1 (engine.py's run); its per-step
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
no diagnosis. A loss with extra terms (MoE router losses) is split on rank 0
at its own parameters over all W x N micro-batches (their set does not
depend on which rank had which): the token part is judged, and the terms'
weight named (W x N: transformers#48690).
"""

from __future__ import annotations

import math
import tempfile
from functools import partial
from pathlib import Path

from gaverify.accumulation.trainer_variants import resolve_trainer_variant
from gaverify.backends.kit import Run, drift_note
from gaverify.backends.setup import Setup
from gaverify.backends.trainer.classes import resolve
from gaverify.backends.trainer.engine import (
    Job,
    header,
    plan_runs,
    refuse_unsplittable,
    save_initial,
    split_at_own_parameters,
    train,
)
from gaverify.backends.trainer.quiet import quiet
from gaverify.backends.watch import (
    CompareWithReference,
    Ignore,
    KeepReference,
    NoFit,
    TrainedRun,
    add_rows,
)
from gaverify.distributed.launch import run_ranks
from gaverify.distributed.rank import RankContext, gathered, mean_over_ranks
from gaverify.measure.results import Trace
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario

REFERENCE_FILE = "reference.pt"
INITIAL = "initial-model"  # TRL: the initial model, for its reference model


def run(scenario: Scenario, progress: Progress) -> Trace:
    """The reference here, then every (N, variant) on the scenario's W ranks."""
    import torch

    search = [scenario.source_dir] if scenario.source_dir else []
    setup, classes = Setup(scenario, resolve_trainer_variant), resolve(scenario, search)
    refuse_unsplittable(setup, classes)  # before the reference trains
    with tempfile.TemporaryDirectory(prefix="gaverify-trainer-") as tmp:
        job = Job(setup, classes, save_initial(setup, classes, Path(tmp)))
        _, plan, references = plan_runs(setup)
        progress.start(scenario.steps * (len(references) + len(plan)))
        refs = {}
        with quiet():
            for key, variant in references.items():
                keep = KeepReference()
                ref = train(job, variant, 1, keep, progress, f"reference ({key})")
                refs[key] = {
                    "losses": ref.losses, "grad_norms": ref.grad_norms, "notes": ref.notes,
                    # read back from the tape: the ranks load them from one file
                    "grads": [list(g) for g in keep.grads],
                    "params": [list(p) for p in keep.params],
                }  # fmt: skip

        def prepare(folder: Path) -> None:
            torch.save(refs, folder / REFERENCE_FILE)
            if job.initial:  # the ranks read the one saved here while it lives
                (folder / INITIAL).symlink_to(job.initial, target_is_directory=True)

        worker = "gaverify.backends.trainer.ranks:work"
        on_cuda = setup.device == "cuda"
        return Trace.model_validate_json(run_ranks(scenario, worker, progress, on_cuda, prepare))


def _logged_over_ranks(values: list[float]) -> list[float]:
    """The ranks' mean of this step's summed returned losses (as the Trainer logs it)."""
    return [mean_over_ranks(math.fsum(values))]


def work(scenario: Scenario, ctx: RankContext) -> str:
    """One rank: every (N, variant) Trainer run; rank 0 returns the Trace as JSON."""
    import torch

    refs = torch.load(ctx.folder / REFERENCE_FILE, weights_only=True)
    search = [scenario.source_dir] if scenario.source_dir else []
    classes = resolve(scenario, search)
    lines = [
        *header(scenario, classes, ctx.world),
        f"distributed: N is per process; a step's counts are listed in data order (the "
        f"Trainer deals its batches to the {ctx.world} processes in turn)",
    ]
    ref_notes = [note for ref in refs.values() for note in ref["notes"]]
    # the memory guard was the parent's; failing gradients are not fitted here
    run = Run(scenario, ctx, resolve_trainer_variant, guard=False, header=lines,
              late_notes=lambda: ref_notes)  # fmt: skip
    run.device = f"{run.setup.device} x {ctx.world}"
    setup = run.setup
    job = Job(setup, classes, ctx.folder / INITIAL if classes.family.trl else None)
    variants, plan, _ = plan_runs(setup)
    with quiet():
        for n, name in plan:
            variant = variants[name]
            ref = refs[variant.reference]
            keep = KeepReference()
            keep.grads, keep.params = ref["grads"], ref["params"]
            split = None
            if run.splits(name):  # MoE router losses: judged at rank 0's own parameters
                split = partial(split_at_own_parameters, run, variant, n, world=ctx.world)
            watch = Ignore()
            if ctx.rank == 0:
                watch = CompareWithReference(keep, NoFit(), n, name, split)
            label = f"N={n} {name}"
            got = train(job, variant, n, watch, ctx, label, ctx.world, _logged_over_ranks)
            counted = gathered(got.counts)  # what each rank's trainer prepared (TRL)
            if ctx.rank == 0:
                counts = setup.item_counts(ctx.world * n)
                if got.counts:  # per step: rank 0's micro-batches, then rank 1's, ...
                    counts = [sum((c[s] for c in counted), []) for s in range(scenario.steps)]
                ref_run = TrainedRun(ref["losses"], ref["grad_norms"])
                add_rows(run, n, name, counts, ref_run, got, watch)
                run.notes += got.notes + ([drift_note(name)] if split else [])
    return run.trace().model_dump_json() if ctx.rank == 0 else ""
