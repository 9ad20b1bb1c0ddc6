"""The trainer backend in one process: the installed Trainer, GA off vs on.

A variant's reference is the Trainer at per-device batch B and
gradient_accumulation_steps=1 (the built-ins share one; your
compute_loss_func gets its own, so it is measured against itself on the
full batch); each (N, variant) run uses batch B/N and N accumulation steps.
Runs are compared step by step as they train (backends/watch.py), into the
same Measurements as every other backend.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

from gaverify.accumulation.trainer_variants import resolve_trainer_variant
from gaverify.backends.kit import Run, drift_note
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
from gaverify.backends.trainer.fitting import InputsFitter
from gaverify.backends.trainer.quiet import quiet
from gaverify.backends.watch import CompareWithReference, KeepReference, TrainedRun, add_rows
from gaverify.measure.results import Trace
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario


def run(scenario: Scenario, progress: Progress) -> Trace:
    """Train with the Trainer at N=1 and at every N, per variant, and measure each step."""
    search = [scenario.source_dir] if scenario.source_dir else []
    classes = resolve(scenario, search)  # before any model is built
    refs: dict[str, tuple[TrainedRun, KeepReference]] = {}
    run = Run(
        scenario,
        progress,
        resolve_trainer_variant,
        header=header(scenario, classes),
        late_notes=lambda: [note for ref, _ in refs.values() for note in ref.notes],
    )
    refuse_unsplittable(run.setup, classes)
    with tempfile.TemporaryDirectory(prefix="gaverify-trainer-") as tmp:
        job = Job(run.setup, classes, save_initial(run.setup, classes, Path(tmp)))
        _compare(run, job, refs, progress)
    return run.trace()


def _compare(
    run: Run, job: Job, refs: dict[str, tuple[TrainedRun, KeepReference]], progress: Progress
) -> None:
    """The reference runs, then every (N, variant) run measured against its own."""
    scenario, classes = run.scenario, job.classes
    variants, plan, references = plan_runs(job.setup)
    own_inputs = classes.family.count is not None  # TRL: fitted on its own micro-batches
    progress.start(scenario.steps * (len(references) + len(plan)))
    with run.recording(), quiet():
        for key, variant in references.items():
            keep = KeepReference()
            refs[key] = (train(job, variant, 1, keep, progress, f"reference ({key})"), keep)
        for n, name in plan:
            variant = variants[name]
            ref, keep = refs[variant.reference]
            split = partial(split_at_own_parameters, run, variant, n) if run.splits(name) else None
            fitter = InputsFitter(run.fitter, classes.family) if own_inputs else run.fitter
            watch = CompareWithReference(keep, fitter, n, name, split)
            bind = fitter.bind if own_inputs else None
            got = train(job, variant, n, watch, progress, f"N={n} {name}", bind=bind)
            counts = got.counts or job.setup.item_counts(n)
            add_rows(run, n, name, counts, ref, got, watch)
            run.notes.extend(got.notes + ([drift_note(name)] if split else []))
            if own_inputs and name in fitter.unfitted:
                run.notes.append(f"{name}: its loss is no sum over items, so it is not fitted")
