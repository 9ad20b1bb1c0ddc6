"""The trainer backend: the installed transformers.Trainer, GA off vs on.

Every run trains a fresh copy of the initial model with a real Trainer for
`steps` optimizer steps, on the same samples in the same order (a sequential
sampler and gaverify's collator, one micro-batch at a time), with the same
optimizer and a constant learning rate. A variant's reference is the same
Trainer set-up with per-device batch B and gradient_accumulation_steps=1;
each (N, variant) run uses batch B/N and N accumulation steps.

Per optimizer step a run records the loss and grad_norm the Trainer logs,
the gradient handed to the optimizer (a pre-step hook on the optimizer: the
same point, after clipping, in every release) and the parameters after the
step. Runs are compared as the reference backend's trajectory mode compares
them, into the same Measurements. Release differences: trainer_compat.py;
the same runs on several processes: trainer_ddp.py.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import transformers
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from gaverify.backends import Interrupted, Progress
from gaverify.backends import trainer_compat as compat
from gaverify.backends.trainer_variants import (
    TRAINER_VARIANTS,
    TrainerVariant,
    resolve_trainer_variant,
)
from gaverify.collate import model_batch
from gaverify.compare import (
    GradComparison,
    compare_gradients,
    gradients,
    max_abs_difference,
    snapshot,
    top_layers,
    trainable,
)
from gaverify.errors import GaverifyError
from gaverify.models import keep_eval_mode
from gaverify.optim import build_optimizer
from gaverify.prepare import Setup
from gaverify.results import Measurement, Trace
from gaverify.sketch import GradientFitter
from gaverify.variants import call_user_loss


class _SequentialTrainer(Trainer):
    """The installed Trainer, reading the data set in order (a shuffled
    order would differ between batch sizes) and keeping what each training
    step returns, which is what its logged loss is summed from."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gaverify_returned: list[float] = []

    def _get_train_sampler(self, *args: Any, **kwargs: Any):
        return SequentialSampler(args[0] if args and args[0] is not None else self.train_dataset)

    def training_step(self, *args: Any, **kwargs: Any):
        loss = super().training_step(*args, **kwargs)
        self.gaverify_returned.append(float(loss))
        return loss


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


@dataclass
class TrainedRun:
    """One Trainer run's per-step records."""

    losses: list[float] = field(default_factory=list)
    grad_norms: list[float | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class KeepReference:
    """Watches the reference run: keeps each step's gradient and parameters."""

    def __init__(self):
        self.grads: list[list[Any]] = []
        self.params: list[list[Any]] = []

    def gradient(self, model: Any) -> None:
        self.grads.append(snapshot(gradients(model)))

    def parameters(self, params: list[Any]) -> None:
        self.params.append(snapshot(params))


class NoFit:
    """Stands in for the GradientFitter where nothing can be fitted (several
    ranks; a LightningModule gaverify cannot call as the model)."""

    def wants(self, *args: Any) -> bool:
        return False


class CompareWithReference:
    """Watches an accumulated run: compares each step with the reference's,
    and has a diverging gradient fitted (at the run's own parameters)."""

    def __init__(self, ref: KeepReference, fitter: GradientFitter, n: int, variant: str):
        self.ref, self.fitter, self.n, self.variant = ref, fitter, n, variant
        self.comparisons: list[GradComparison] = []
        self.param_diffs: list[float] = []

    def gradient(self, model: Any) -> None:
        grads = gradients(model)
        comparison = compare_gradients(self.ref.grads[len(self.comparisons)], grads)
        self.comparisons.append(comparison)
        if self.fitter.wants(self.n, self.variant, comparison):
            self.fitter.fit(len(self.comparisons), self.n, self.variant, model, grads)

    def parameters(self, params: list[Any]) -> None:
        ref = self.ref.params[len(self.param_diffs)]
        self.param_diffs.append(max_abs_difference(ref, params))


def run(scenario, progress: Progress | None = None) -> Trace:
    """Train with the Trainer at N=1 and at every N, per variant, and measure each step."""
    progress = progress or Progress()
    if scenario.distributed.processes > 1:
        from gaverify.backends.trainer_ddp import run_distributed

        return run_distributed(scenario, progress)
    setup = Setup(scenario, resolve_trainer_variant)
    variants, plan, references = plan_runs(setup)
    progress.start(scenario.steps * (len(references) + len(plan)))
    notes: list[str] = []
    measurements: list[Measurement] = []  # filled run by run, so Ctrl-C keeps finished runs
    refs: dict[str, tuple[TrainedRun, KeepReference]] = {}
    fitter = GradientFitter(setup)

    def trace() -> Trace:
        order = {key: i for i, key in enumerate(plan)}  # rows grouped by step, as reference's
        rows = sorted(measurements, key=lambda m: (m.step, order[(m.n, m.variant)]))
        ref_notes = [note for ref, _ in refs.values() for note in ref.notes]
        return Trace(
            measurements=rows,
            device=setup.device,
            parameters=setup.parameters,
            notes=[
                f"backend: transformers {compat.installed_version()} Trainer; reference: "
                f"gradient_accumulation_steps=1, batch {scenario.batch.size}",
                *setup.run_notes(),
                *dict.fromkeys(notes + ref_notes),  # each note once, in order
            ],
            fits=fitter.records(),
        )

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the Trainer's info chatter is not ours to print
    try:
        for key, variant in references.items():
            keep = KeepReference()
            refs[key] = (_train(setup, variant, 1, keep, progress, f"reference ({key})"), keep)
        counts = {n: item_counts(setup, n) for n in scenario.batch.accumulation}
        for n, name in plan:
            variant = variants[name]
            ref, keep = refs[variant.reference]
            watch = CompareWithReference(keep, fitter, n, name)
            got = _train(setup, variant, n, watch, progress, f"N={n} {name}")
            measurements.extend(measure_runs(setup, n, name, counts[n], ref, got, watch))
            notes.extend(got.notes)
    except KeyboardInterrupt:
        raise Interrupted(trace()) from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    return trace()


def plan_runs(setup: Setup) -> tuple[dict[str, TrainerVariant], list, dict[str, TrainerVariant]]:
    """The variants, the (N, variant) runs, and the reference runs they need:
    the built-ins share one, the Trainer as installed at N=1."""
    variants: dict[str, TrainerVariant] = setup.variants
    if any(v.compute_loss_func for v in variants.values()) and not compat.takes_compute_loss_func():
        raise GaverifyError(
            f"variants: a compute_loss_func needs transformers >= 4.46 (the Trainer's "
            f"compute_loss_func argument); transformers {compat.installed_version()} is installed"
        )
    scenario = setup.scenario
    plan = [(n, name) for n in scenario.batch.accumulation for name in scenario.variants]
    installed = TRAINER_VARIANTS.get("installed")
    references = {v.reference: v if v.compute_loss_func else installed for v in variants.values()}
    return variants, plan, references


def _train(
    setup: Setup,
    variant: TrainerVariant,
    n: int,
    watch: KeepReference | CompareWithReference,
    progress: Progress,
    label: str,
    world: int = 1,
    combine: Callable[[list[float]], list[float]] = list,
) -> TrainedRun:
    """Train a fresh copy of the model with the Trainer at accumulation `n`
    (on `world` processes when run by a rank); `watch` sees the gradient
    before and the parameters after every step. `combine` turns this
    process's returned losses of a step into what the log is computed from."""
    scenario = setup.scenario
    model = copy.deepcopy(setup.built.model)
    if not scenario.model.dropout:
        keep_eval_mode(model)
    params = trainable(model)
    optimizer = build_optimizer(scenario.optimizer, params)
    optimizer.register_step_pre_hook(lambda *_: watch.gradient(model))
    optimizer.register_step_post_hook(lambda *_: watch.parameters(params))
    logs = _Logs(progress, label)
    out = TrainedRun()
    with tempfile.TemporaryDirectory(prefix="gaverify-trainer-") as tmp:
        cpu = setup.device == "cpu"
        args = compat.training_arguments(scenario, n, tmp, cpu, world, variant.args)
        extra = {}
        if variant.compute_loss_func:
            extra["compute_loss_func"] = partial(
                call_user_loss, variant.name, variant.compute_loss_func
            )
        trainer = _SequentialTrainer(
            model=model,
            args=args,
            train_dataset=[sample for step in setup.steps for sample in step],
            # model-ready batches: a QA head's labels are start and end positions,
            # and the Trainer counts items only in a `labels` key, as with real data
            data_collator=lambda samples: model_batch(setup.task, setup.collate(samples)),
            optimizers=(optimizer, None),
            callbacks=[logs],
            **extra,
        )
        for quiet in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(quiet)
        if variant.accepts_loss_kwargs is not None:
            out.notes.append(compat.force_loss_kwargs(trainer, variant.accepts_loss_kwargs))
        try:
            trainer.train()
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise GaverifyError(
                f"trainer: transformers.Trainer failed ({label}): {type(exc).__name__}: {exc}"
            ) from exc
    if len(logs.logs) != scenario.steps:
        raise GaverifyError(
            f"trainer: the Trainer logged {len(logs.logs)} steps, not {scenario.steps} ({label})"
        )
    returned = trainer.gaverify_returned
    for step, log in enumerate(logs.logs):
        loss, note = compat.logged_loss(
            log.get("loss"), combine(returned[step * n : (step + 1) * n])
        )
        out.losses.append(loss)
        out.grad_norms.append(log.get("grad_norm"))
        if note:
            out.notes.append(note)
    return out


def item_counts(setup: Setup, n: int) -> list[list[int]]:
    """Per step, the counted items of each of its n micro-batches (as the Trainer sees them)."""
    return [
        [setup.task.count_items(mb["labels"]) for mb in setup.micro_batches(samples, n)]
        for samples in setup.steps
    ]


def measure_runs(
    setup: Setup,
    n: int,
    name: str,
    step_counts: list[list[int]],
    ref: TrainedRun,
    got: TrainedRun,
    watch: CompareWithReference,
) -> list[Measurement]:
    """Each step of an accumulated run against its reference run (the
    trainer and lightning backends; a logged grad_norm wins when there is one)."""
    k, names = setup.scenario.layers, setup.parameter_names
    out = []
    for step, counts in enumerate(step_counts):
        comparison = watch.comparisons[step]
        out.append(
            Measurement(
                step=step + 1,
                n=n,
                variant=name,
                items_full=sum(counts),
                items_micro=counts,
                loss_full=ref.losses[step],
                loss_ga=got.losses[step],
                # The Trainer's logged grad_norm when it logs one (pre-clipping).
                grad_norm_full=_or(ref.grad_norms[step], comparison.norm_ref),
                grad_norm_ga=_or(got.grad_norms[step], comparison.norm_got),
                grad_rel_l2=comparison.rel_l2,
                grad_cosine=comparison.cosine,
                param_max_abs=watch.param_diffs[step],
                layers=top_layers(names, comparison, k) if k else None,
            )
        )
    return out


def _or(logged: float | None, measured: float) -> float:
    return measured if logged is None else float(logged)
