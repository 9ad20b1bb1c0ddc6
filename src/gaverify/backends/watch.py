"""Comparing whole trained runs, step by step: the engines that train on their own.

The Trainer and Lightning backends cannot stop an engine between steps, so
they train a reference run (no accumulation) and each accumulated run to the
end, and watch every optimizer step as it happens: `KeepReference` keeps the
reference's gradient and parameters of each step (on disk), `CompareWithReference`
compares an accumulated run's with them (and has a diverging gradient
fitted at the run's own parameters), and `add_rows` turns the two runs'
records into the Run's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gaverify.backends.kit import Run
from gaverify.backends.tape import Recorded, Tape
from gaverify.measure.compare import (
    GradComparison,
    compare_gradients,
    gradients,
    max_abs_difference,
)
from gaverify.measure.extras import Split
from gaverify.measure.fit import GradientFitter


@dataclass
class TrainedRun:
    """One engine run's per-step records."""

    losses: list[float] = field(default_factory=list)
    grad_norms: list[float | None] = field(default_factory=list)  # as logged, when logged
    counts: list[list[int]] = field(default_factory=list)  # items per micro-batch, when counted
    loss_scale: float | None = None  # a zero-mean loss's scale (Measurement.loss_scale)
    notes: list[str] = field(default_factory=list)


class KeepReference:
    """Watches the reference run: keeps each step's gradient and parameters,
    on a tape on disk (tape.py), read back tensor by tensor when compared."""

    def __init__(self):
        self.tape = Tape()  # unlinked: its disk is freed when the tape is collected
        self.grads: list[Recorded] = []
        self.params: list[Recorded] = []

    def gradient(self, model: Any) -> None:
        self.grads.append(self._keep(("grad", len(self.grads)), gradients(model)))

    def parameters(self, params: list[Any]) -> None:
        self.params.append(self._keep(("params", len(self.params)), params))

    def _keep(self, key: tuple[str, int], tensors: list[Any]) -> Recorded:
        self.tape.write(key, tensors)
        return self.tape.read(key)


class NoFit:
    """Stands in for the GradientFitter where nothing can be fitted (several
    ranks; a LightningModule gaverify cannot call as the model)."""

    def wants(self, *args: Any) -> bool:
        return False


class Ignore:
    """The watch of a process that only trains (ranks other than 0)."""

    def gradient(self, model: Any) -> None:
        pass

    def parameters(self, params: list[Any]) -> None:
        pass


@dataclass
class SplitStep:
    """A step of a loss with extra terms, judged at the run's own parameters:
    the token part of its full-batch loss there, the extra terms' share of
    the logged loss, and their weight (measure/extras.py)."""

    ref_loss: float
    got_extra: float
    weight: float


class CompareWithReference:
    """Watches an accumulated run: compares each step with the reference's,
    and has a diverging gradient fitted (at the run's own parameters). With
    `split` (a loss with MoE router terms, which drifts from the reference
    run by design) each step is judged at the run's own parameters instead:
    `split(model, grads, step)` gives the token parts and the terms' weight."""

    def __init__(
        self,
        ref: KeepReference,
        fitter: GradientFitter | NoFit,
        n: int,
        variant: str,
        split: Callable[[Any, list[Any], int], Split] | None = None,
    ):
        self.ref, self.fitter, self.n, self.variant = ref, fitter, n, variant
        self.split = split
        self.comparisons: list[GradComparison] = []
        self.param_diffs: list[float | None] = []
        self.splits: list[SplitStep] = []

    def gradient(self, model: Any) -> None:
        grads, step, basis = gradients(model), len(self.comparisons) + 1, None
        if self.split is None:
            comparison = compare_gradients(self.ref.grads[step - 1], grads)
        else:
            done = self.split(model, grads, step)
            grads, basis = done.got[1], done.basis
            comparison = compare_gradients(done.ref[1], grads)
            self.splits.append(SplitStep(done.ref[0], done.got_extra, done.fit.weight))
        self.comparisons.append(comparison)
        if self.fitter.wants(self.n, self.variant, comparison):
            self.fitter.fit(step, self.n, self.variant, model, grads, basis=basis)

    def parameters(self, params: list[Any]) -> None:
        ref = self.ref.params[len(self.param_diffs)]
        drifts = self.split is not None  # by design: not judged
        self.param_diffs.append(None if drifts else max_abs_difference(ref, params))


def add_rows(
    run: Run,
    n: int,
    name: str,
    step_counts: list[list[int]],
    ref: TrainedRun,
    got: TrainedRun,
    watch: CompareWithReference,
) -> None:
    """Each step of an accumulated run against its reference run, as rows of
    `run` (`step_counts`: each step's micro-batch counts)."""
    for step, counts in enumerate(step_counts):
        if watch.splits:  # the token parts at the run's own parameters
            at = watch.splits[step]
            run.row(
                step + 1, n, name, counts, at.ref_loss, got.losses[step] - at.got_extra,
                watch.comparisons[step], extra_weight=at.weight, loss_scale=got.loss_scale,
            )  # fmt: skip
            continue
        run.row(
            step + 1, n, name, counts, ref.losses[step], got.losses[step],
            watch.comparisons[step], watch.param_diffs[step],
            logged_norms=(ref.grad_norms[step], got.grad_norms[step]), loss_scale=got.loss_scale,
        )  # fmt: skip
