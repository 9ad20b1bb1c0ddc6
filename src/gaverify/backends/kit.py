"""The backend kit: what every backend does the same way, written once.

A backend module holds only what is its own: how it trains and where it
reads gradients. Everything else is a `Run`:

- its Setup (model, task, variants, the samples of every step) and the
  GradientFitter that names a diverging gradient;
- `row`: one Measurement of an accumulated run against its reference;
- `trace`: the rows so far, in one order (step, then N, then variant, as the
  scenario lists them), with the notes every report shows;
- `recording`: a block whose Ctrl-C (KeyboardInterrupt) becomes Interrupted,
  carrying the trace of everything measured before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gaverify.accumulation.variants import resolve
from gaverify.backends.setup import Setup
from gaverify.measure.compare import GradComparison, top_layers
from gaverify.measure.fit import GradientFitter
from gaverify.measure.results import Measurement, Trace
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a backend; `trace` holds the rows it measured so far
    (None when it has nothing to give back)."""

    def __init__(self, trace: Trace | None = None):
        super().__init__()
        self.trace = trace


class Run:
    """One backend run: its set-up, its rows and what its report says."""

    def __init__(
        self,
        scenario: Scenario,
        progress: Progress,
        resolve_variant: Callable[[str, list[Path]], Any] = resolve,
        *,
        guard: bool = True,
        header: list[str] | None = None,
        late_notes: Callable[[], list[str]] | None = None,
    ):
        self.scenario, self.progress = scenario, progress
        self.setup = Setup(scenario, resolve_variant, guard)
        self.fitter = GradientFitter(self.setup)
        self.device = self.setup.device  # as the report names it
        self.rows: list[Measurement] = []  # filled as they come, so Ctrl-C keeps them
        self.header = header or []  # which engine ran, and what its reference is
        self.notes: list[str] = []  # found while running; each shown once
        self._late_notes = late_notes  # notes only known at the end (the loop's step counts)

    def row(
        self,
        step: int,
        n: int,
        variant: str,
        counts: list[int],
        ref_loss: float,
        loss: float,
        comparison: GradComparison,
        param_diff: float | None = None,
        logged_norms: tuple[float | None, float | None] = (None, None),
    ) -> Measurement:
        """Record one (step, N, variant) against its reference. A gradient
        norm the engine logged (the Trainer's grad_norm) wins over the measured one."""
        k = self.scenario.layers
        ref_norm, got_norm = logged_norms
        measurement = Measurement(
            step=step,
            n=n,
            variant=variant,
            items_full=sum(counts),
            items_micro=counts,
            loss_full=ref_loss,
            loss_ga=loss,
            grad_norm_full=comparison.norm_ref if ref_norm is None else float(ref_norm),
            grad_norm_ga=comparison.norm_got if got_norm is None else float(got_norm),
            grad_rel_l2=comparison.rel_l2,
            grad_cosine=comparison.cosine,
            param_max_abs=param_diff,
            layers=top_layers(self.setup.parameter_names, comparison, k) if k else None,
        )
        self.rows.append(measurement)
        return measurement

    def trace(self) -> Trace:
        """Everything measured so far, in step, N, variant order."""
        ns = {n: i for i, n in enumerate(self.scenario.batch.accumulation)}
        variants = {name: i for i, name in enumerate(self.scenario.variants)}
        late = self._late_notes() if self._late_notes else []
        return Trace(
            measurements=sorted(self.rows, key=lambda m: (m.step, ns[m.n], variants[m.variant])),
            device=self.device,
            parameters=self.setup.parameters,
            notes=[
                *self.header,
                *self.setup.run_notes(),
                *dict.fromkeys([*self.notes, *late]),
            ],
            fits=self.fitter.records(),
        )

    @contextmanager
    def recording(self) -> Iterator[Run]:
        """Run the block; on Ctrl-C raise Interrupted with the trace so far."""
        try:
            yield self
        except KeyboardInterrupt:
            raise Interrupted(self.trace()) from None
