"""One run of the scenario's Trainer (transformers.Trainer or a subclass), watched step by step.

`train` trains a fresh copy of the initial model with a real Trainer for
`steps` optimizer steps, on the same samples in the same order (a sequential
sampler and gaverify's collator, one micro-batch at a time; TRL's trainers
get rows of text they prepare themselves: families.py), with the same
optimizer and a constant learning rate, at per-device batch B/(W*n) and n
accumulation steps. A pre-step hook on the optimizer hands the gradient the
Trainer applies (after clipping, in every release) to a watch, and a
post-step hook the parameters; the losses and grad_norm it logs, and the
items of each micro-batch it prepared, come back in a TrainedRun.
`plan_runs` says which runs a scenario needs. Shared by the one-process
(single.py) and W-process (ranks.py) backends; release differences live in
compat.py.
"""

from __future__ import annotations

import copy
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from torch.utils.data import SequentialSampler
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from gaverify.accumulation.extras import describe_terms
from gaverify.accumulation.trainer_variants import TRAINER_VARIANTS, TrainerVariant, own_loss
from gaverify.accumulation.variants import call_user_loss
from gaverify.backends.setup import Setup
from gaverify.backends.trainer import compat
from gaverify.backends.trainer.classes import Classes
from gaverify.backends.trainer.families import Family, row_text
from gaverify.backends.watch import TrainedRun
from gaverify.data.collate import model_batch
from gaverify.errors import GaverifyError
from gaverify.measure.compare import trainable
from gaverify.measure.extras import Split, has_extras
from gaverify.model.calls import keep_eval_mode, zero_dropout
from gaverify.model.optim import build_optimizer
from gaverify.progress import Progress


class Watch(Protocol):
    """What sees each optimizer step of a run (backends/watch.py)."""

    def gradient(self, model: Any) -> None: ...

    def parameters(self, params: list[Any]) -> None: ...


class _Watched:
    """Mixed into the scenario's Trainer class: reads the data set in order
    (a shuffled order would differ between batch sizes) unless the family
    keeps its own sampler, keeps what each training step returns (what its
    logged loss is summed from), and records each micro-batch's prepared
    inputs (their item count; the last step's, for a fit)."""

    gaverify_family: Family

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gaverify_returned: list[float] = []
        self.gaverify_counts: list[int] = []
        # the current optimizer step's micro-batches (this process's), for a fit
        self.gaverify_inputs: deque[dict[str, Any]] = deque(
            maxlen=self.args.gradient_accumulation_steps
        )
        self.gaverify_fitting = False

    def _get_train_sampler(self, *args: Any, **kwargs: Any):
        if self.gaverify_family.keeps_sampler:
            return super()._get_train_sampler(*args, **kwargs)
        return SequentialSampler(args[0] if args and args[0] is not None else self.train_dataset)

    def training_step(self, *args: Any, **kwargs: Any):
        loss = super().training_step(*args, **kwargs)
        self.gaverify_returned.append(float(loss))
        return loss

    def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any):
        count = self.gaverify_family.count
        if count is not None and not self.gaverify_fitting:
            self.gaverify_counts.append(count(self, inputs))
            self.gaverify_inputs.append(dict(inputs))
        return super().compute_loss(model, inputs, *args, **kwargs)


def _watched(classes: Classes) -> type:
    """The scenario's Trainer class with gaverify's watch mixed in."""
    name = f"Gaverify{classes.trainer.__name__}"
    return type(name, (_Watched, classes.trainer), {"gaverify_family": classes.family})


class _Logs(TrainerCallback):
    """Keeps every per-step log (the ones with a loss) and reports progress."""

    def __init__(self, progress: Progress, label: str):
        self.logs: list[dict[str, float]] = []
        self.progress, self.label = progress, label

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.logs.append(dict(logs))

    def on_step_end(self, args, state, control, **kwargs):
        self.progress.advance(f"{self.label} step {state.global_step}")


@dataclass(frozen=True)
class Job:
    """What every Trainer run of a scenario shares: its set-up and its classes."""

    setup: Setup
    classes: Classes
    # where TRL builds its reference model from (config._name_or_path): the initial
    # model, saved once per backend run (save_initial); None for the plain Trainer
    initial: Path | None = None

    def __post_init__(self):
        family = self.classes.family
        if family.count is not None:  # the report's items are the ones TRL counts
            self.setup.unit = family.items
        if family.trl:
            self.setup.dropout_off = "every dropout rate 0, the model in train mode as TRL reads it"


def header(scenario: Any, classes: Classes, world: int = 1) -> list[str]:
    """The report's first lines: which trainer ran, on what, against what."""
    versions = f"transformers {compat.installed_version()}"
    if classes.family.trl:
        import trl

        versions += f", trl {trl.__version__}"
    where = f" on {world} processes (torch.distributed, per-device batch B/(W*N))"
    lines = [
        f"backend: {classes.describe()}{where if world > 1 else ''} ({versions}); reference: "
        f"{'one process, ' if world > 1 else ''}gradient_accumulation_steps=1, "
        f"batch {scenario.batch.size}"
    ]
    if classes.family.trl:
        lines.append(
            f"data: the samples as text rows, prepared and collated by {classes.family_name} "
            "itself; items counted from the inputs it prepared"
        )
    return lines


def refuse_unsplittable(setup: Setup, classes: Classes) -> None:
    """A loss with MoE router terms is judged by splitting them off on
    gaverify's own micro-batches; TRL prepares its own, so it is refused."""
    if classes.family.rows is None or not has_extras(setup.built.model):
        return
    split = [name for name, variant in setup.variants.items() if variant.model_loss]
    if split:
        raise GaverifyError(
            f"model: {', '.join(split)} would train on {describe_terms(setup.built.model)} "
            f"(MoE router losses), which gaverify splits off on its own micro-batches; "
            f"{classes.family_name} prepares its own: use transformers:Trainer (trainer-moe) or "
            "model.config.output_router_logits: false"
        )


def plan_runs(setup: Setup) -> tuple[dict[str, TrainerVariant], list, dict[str, TrainerVariant]]:
    """The variants, the (N, variant) runs, and the reference runs they need:
    the built-ins share one, the Trainer as installed at N=1; a loss of your
    own or a key=value setting has its own."""
    variants: dict[str, TrainerVariant] = setup.variants
    if any(v.compute_loss_func for v in variants.values()) and not compat.takes_compute_loss_func():
        raise GaverifyError(
            f"variants: a compute_loss_func needs transformers >= 4.46 (the Trainer's "
            f"compute_loss_func argument); transformers {compat.installed_version()} is installed"
        )
    installed = TRAINER_VARIANTS.get("installed")
    references = {
        v.reference: v if v.compute_loss_func or v.own_reference else installed
        for v in variants.values()
    }
    return variants, setup.scenario.plan, references


def _data(job: Job, args: Any) -> dict[str, Any]:
    """The train set and what goes with it: gaverify's samples and collator,
    or (TRL) rows of text and the processing class (and GRPO's rewards)."""
    setup, family = job.setup, job.classes.family
    if family.rows is None:
        return {
            "train_dataset": [sample for step in setup.steps for sample in step],
            # model-ready batches: a QA head's labels are start and end positions,
            # and the Trainer counts items only in a `labels` key, as with real data
            "data_collator": lambda samples: model_batch(setup.task, setup.collate(samples)),
        }
    from datasets import Dataset

    config = {f.name: getattr(args, f.name) for f in fields(args)}
    rows = family.rows(setup, config, row_text(setup.built.tokenizer))
    return {"train_dataset": Dataset.from_list(rows), **family.kwargs(setup)}


def save_initial(setup: Setup, classes: Classes, folder: Path) -> Path | None:
    """For a TRL trainer, the initial model saved under `folder` once, where
    TRL builds a reference model from (Job.initial); None otherwise. The
    caller saves it where every run (every rank: transformers saves on rank 0
    only) reads it."""
    if not classes.family.trl:
        return None
    initial = folder / "initial-model"
    setup.built.model.save_pretrained(initial)
    return initial


def _check_rows(job: Job, trainer: Any) -> None:
    """A trainer that prepares its own rows (TRL: packing) must have a
    batch for every step: an epoch ending inside a step changes its split."""
    scenario = job.setup.scenario
    need = scenario.steps * scenario.batch.size
    family = job.classes.family
    if family.rows is not None and not family.keeps_sampler and len(trainer.train_dataset) < need:
        raise GaverifyError(
            f"data: {job.classes.family_name} prepared {len(trainer.train_dataset)} rows, fewer "
            f"than steps x batch.size = {need}: raise data.samples or lower steps"
        )


def train(
    job: Job,
    variant: TrainerVariant,
    n: int,
    watch: Watch,
    progress: Progress,
    label: str,
    world: int = 1,
    combine: Callable[[list[float]], list[float]] = list,
    bind: Callable[[Any], None] | None = None,
) -> TrainedRun:
    """Train a fresh copy of the model with the scenario's Trainer at
    accumulation `n` (on `world` processes when run by a rank); `watch` sees
    the gradient before and the parameters after every step. `combine` turns
    this process's returned losses of a step into what the log is computed
    from; `bind` is handed the trainer before it trains (a fit reads it)."""
    setup = job.setup
    scenario = setup.scenario
    model = copy.deepcopy(setup.built.model)
    if not scenario.model.dropout:
        (zero_dropout if job.classes.family.trl else keep_eval_mode)(model)
    params = trainable(model)
    optimizer = build_optimizer(scenario.optimizer, params)
    optimizer.register_step_pre_hook(lambda *_: watch.gradient(model))
    optimizer.register_step_post_hook(lambda *_: watch.parameters(params))
    logs = _Logs(progress, label)
    out = TrainedRun(loss_scale=job.classes.family.loss_scale)
    name = job.classes.trainer.__qualname__
    with tempfile.TemporaryDirectory(prefix="gaverify-trainer-") as tmp:
        cpu = setup.device == "cpu"
        args = compat.training_arguments(scenario, job.classes, n, tmp, cpu, world, variant.args)
        extra = {}
        if variant.compute_loss_func:
            extra["compute_loss_func"] = partial(
                call_user_loss, variant.name, variant.compute_loss_func
            )
        try:
            data = _data(job, args)
            if job.initial:  # TRL builds a reference model from this path
                model.config._name_or_path = str(job.initial)
            trainer = _watched(job.classes)(
                model=model, args=args, optimizers=(optimizer, None), callbacks=[logs],
                **data, **extra,
            )  # fmt: skip
            _check_rows(job, trainer)
            for quiet in (PrinterCallback, ProgressCallback):
                trainer.remove_callback(quiet)
            if variant.accepts_loss_kwargs is not None:
                out.notes.append(compat.force_loss_kwargs(trainer, variant.accepts_loss_kwargs))
            if bind:
                bind(trainer)
            trainer.train()
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise GaverifyError(
                f"trainer: {name} failed ({label}): {type(exc).__name__}: {exc}"
            ) from exc
    if len(logs.logs) != scenario.steps:
        raise GaverifyError(
            f"trainer: {name} logged {len(logs.logs)} steps, not {scenario.steps} ({label})"
        )
    returned, counts = trainer.gaverify_returned, trainer.gaverify_counts
    for step, log in enumerate(logs.logs):
        loss, note = compat.logged_loss(
            log.get("loss"), combine(returned[step * n : (step + 1) * n])
        )
        out.losses.append(loss)
        out.grad_norms.append(log.get("grad_norm"))
        if counts:
            out.counts.append(counts[step * n : (step + 1) * n])
        if note:
            out.notes.append(note)
    return out


def split_at_own_parameters(
    run: Any, variant: TrainerVariant, n: int, model: Any, grads: list, step: int, world: int = 1
) -> Split:
    """A step of a loss with extra terms (MoE router losses), judged where the
    run is: its token part against the same loss's on the full batch at these
    parameters, over the step's W x N micro-batches (backends/kit.py)."""
    setup = run.setup
    samples = setup.steps[step - 1]
    own = run.own_full_batch(model, samples, own_loss(variant, setup.search))
    micro = setup.micro_batches(samples, world * n)
    return run.split_extras(
        model, micro, samples, (0.0, grads), own, (step, n, variant.name), world
    )
