"""The lightning backend: the installed PyTorch Lightning Trainer, GA off vs on.

Each run trains a fresh copy of the initial model, inside a LightningModule
(gaverify's minimal wrapper, or yours), with a real `lightning.Trainer` for
`steps` optimizer steps: the reference at batch B with
accumulate_grad_batches=1, each N at batch B/N with accumulate_grad_batches=N,
on the same samples in the same order (a DataLoader without shuffling over
gaverify's collator) and the same seed. Lightning's automatic optimization
divides each micro-batch's loss by N before its backward.

Per optimizer step a run records, through a Callback: the gradient in
`on_before_optimizer_step` (after the last backward of the window, before
Lightning clips), the parameters once the step is taken, and the loss of the
window (the sum of the N scaled losses Lightning backpropagated). Runs are
compared step by step as they train (backends/watch.py), into the same Measurements.
"""

from __future__ import annotations

import copy
import logging
import signal
import tempfile
import warnings
from contextlib import contextmanager

from gaverify.accumulation.lightning_variants import LightningVariant, resolve_lightning_variant
from gaverify.backends.kit import Run
from gaverify.backends.setup import Setup
from gaverify.backends.watch import CompareWithReference, KeepReference, NoFit, TrainedRun, add_rows
from gaverify.data.collate import model_batch
from gaverify.errors import GaverifyError
from gaverify.measure.compare import trainable
from gaverify.measure.results import Trace
from gaverify.model.calls import keep_eval_mode
from gaverify.model.optim import build_optimizer
from gaverify.model.precision import PRECISIONS
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario

PRECISION = {"float32": "32-true", "float64": "64-true", "bfloat16": "bf16-true"}


def _precision(scenario: Scenario, device: str) -> str:
    """Lightning's precision flag for the scenario's dtype and precision."""
    mixed = PRECISIONS.get(scenario.precision)
    if mixed.lightning is None:
        return PRECISION[scenario.dtype]
    if device == "cpu" and not mixed.cpu_engines:
        raise GaverifyError(
            f"precision: {scenario.precision}: Lightning runs it on CUDA only (on the CPU it "
            "switches to bf16-mixed); use precision: bf16-mixed or device: cuda"
        )
    return mixed.lightning


def lightning():
    """The installed Lightning's `pytorch` package, or exit 2 naming the extra."""
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl
        except ImportError:
            raise GaverifyError(
                "backend: lightning needs PyTorch Lightning: pip install 'gaverify[lightning]' "
                "(make install installs it)"
            ) from None
    return pl


def run(scenario: Scenario, progress: Progress) -> Trace:
    """Train with Lightning at N=1 and at every N, per variant, and measure each step."""
    pl = lightning()
    header = (
        f"backend: Lightning {pl.__version__} Trainer; reference: accumulate_grad_batches=1, "
        f"batch {scenario.batch.size}; gradients taken in on_before_optimizer_step"
    )
    run = Run(scenario, progress, resolve_lightning_variant, header=[header])
    run.unsplit_extras()
    setup, ns = run.setup, scenario.batch.accumulation
    progress.start(scenario.steps * len(setup.variants) * (1 + len(ns)))
    counts = {n: setup.item_counts(n) for n in ns}  # each micro-batch's items, per step
    with run.recording(), _quiet(pl):
        for name, variant in setup.variants.items():
            keep = KeepReference()
            ref = _fit(pl, setup, variant, 1, keep, progress, f"reference ({name})")
            wants_fit = variant.module is None  # yours is not called as the model
            for n in ns:
                watch = CompareWithReference(keep, run.fitter if wants_fit else NoFit(), n, name)
                got = _fit(pl, setup, variant, n, watch, progress, f"N={n} {name}")
                add_rows(run, n, name, counts[n], ref, got, watch)
                if not wants_fit:
                    run.notes.append(f"{name}: failing gradients are not fitted (your own module)")
    return run.trace()


@contextmanager
def _quiet(pl):
    """Lightning's info lines and its advice on workers and logging are not ours to print."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric",
                                              "pytorch_lightning", "lightning_fabric")]  # fmt: skip
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _module(pl, setup: Setup, variant: LightningVariant):
    """A fresh LightningModule around a fresh copy of the initial model, and that model."""
    model = copy.deepcopy(setup.built.model)
    if not setup.scenario.model.dropout:
        keep_eval_mode(model)
    if variant.module is not None:
        try:
            module = variant.module(model)
        except Exception as exc:  # the user's code: report it, do not crash
            raise GaverifyError(f"variants: {variant.name}(model) raised {type(exc).__name__}: "
                                f"{exc}") from exc  # fmt: skip
        if not isinstance(module, pl.LightningModule):
            raise GaverifyError(
                f"variants: {variant.name}(model) returned {type(module).__name__}, not a "
                "LightningModule"
            )
        if type(module).configure_optimizers is pl.LightningModule.configure_optimizers:
            module.configure_optimizers = lambda: build_optimizer(
                setup.scenario.optimizer, trainable(module)
            )
        return module, module
    spec = setup.scenario.optimizer

    class Wrapped(pl.LightningModule):
        """What a Lightning user writes: the model's own loss from training_step."""

        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            return self.model(**batch).loss

        def configure_optimizers(self):
            return build_optimizer(spec, trainable(self.model))

    return Wrapped(), model


def _fit(pl, setup: Setup, variant, n: int, watch, progress: Progress, label: str) -> TrainedRun:
    """Train with accumulate_grad_batches=n; `watch` sees each step's gradient
    and parameters. Returns every step's window loss (Lightning logs no grad norm)."""
    import torch
    from torch.utils.data import DataLoader

    scenario = setup.scenario
    module, model = _module(pl, setup, variant)
    losses: list[float] = []
    window: list[float] = []

    class Watch(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            watch.gradient(model)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            window.append(float(outputs["loss"]))
            if (batch_idx + 1) % n == 0:  # the window's optimizer step has been taken
                watch.parameters(trainable(model))
                losses.append(sum(window))
                window.clear()
                progress.advance(f"{label} step {len(losses)}")

    samples = [sample for step in setup.steps for sample in step]
    loader = DataLoader(  # model-ready batches, as a Lightning data module would give
        samples, batch_size=scenario.batch.size // n, shuffle=False,
        collate_fn=lambda chunk: model_batch(setup.task, setup.collate(chunk)),
    )  # fmt: skip
    torch.manual_seed(scenario.seed)
    with tempfile.TemporaryDirectory(prefix="gaverify-lightning-") as tmp:
        trainer = pl.Trainer(
            accelerator="cpu" if setup.device == "cpu" else "gpu", devices=1,
            precision=_precision(scenario, setup.device), max_steps=scenario.steps, max_epochs=1,
            accumulate_grad_batches=n, callbacks=[Watch()], default_root_dir=tmp, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, limit_val_batches=0,
        )  # fmt: skip
        handler = signal.getsignal(signal.SIGINT)
        try:
            trainer.fit(module, train_dataloaders=loader)
        except SystemExit:
            if not trainer.interrupted:
                raise
            # Lightning turns Ctrl-C into exit(1) and ignores SIGINT from then on
            signal.signal(signal.SIGINT, handler)
            raise KeyboardInterrupt from None
        except GaverifyError:
            raise
        except Exception as exc:  # Lightning or the module refused: name it
            raise GaverifyError(
                f"lightning: the Trainer failed ({label}): {type(exc).__name__}: {exc}"
            ) from exc
    if len(losses) != scenario.steps:
        raise GaverifyError(
            f"lightning: the Trainer took {len(losses)} steps, not {scenario.steps} ({label})"
        )
    return TrainedRun(losses, [None] * len(losses))
