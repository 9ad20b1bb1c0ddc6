"""Comparing whole trained runs, step by step: the engines that train on their own.

The Trainer and Lightning backends cannot stop an engine between steps, so
they train a reference run (no accumulation) and each accumulated run to the
end, and watch every optimizer step as it happens: `KeepReference` keeps the
reference's gradient and parameters of each step, `CompareWithReference`
compares an accumulated run's with them (and has a diverging gradient
fitted at the run's own parameters), and `add_rows` turns the two runs'
records into the Run's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gaverify.backends.kit import Run
from gaverify.measure.compare import (
    GradComparison,
    compare_gradients,
    gradients,
    max_abs_difference,
    snapshot,
)
from gaverify.measure.fit import GradientFitter


@dataclass
class TrainedRun:
    """One engine run's per-step records."""

    losses: list[float] = field(default_factory=list)
    grad_norms: list[float | None] = field(default_factory=list)  # as logged, when logged
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


class Ignore:
    """The watch of a process that only trains (ranks other than 0)."""

    def gradient(self, model: Any) -> None:
        pass

    def parameters(self, params: list[Any]) -> None:
        pass


class CompareWithReference:
    """Watches an accumulated run: compares each step with the reference's,
    and has a diverging gradient fitted (at the run's own parameters)."""

    def __init__(self, ref: KeepReference, fitter: GradientFitter | NoFit, n: int, variant: str):
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
        run.row(
            step + 1, n, name, counts, ref.losses[step], got.losses[step],
            watch.comparisons[step], watch.param_diffs[step],
            logged_norms=(ref.grad_norms[step], got.grad_norms[step]),
        )  # fmt: skip
