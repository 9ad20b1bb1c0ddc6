"""The backend kit: what every backend does the same way, written once.

A backend module holds only what is its own: how it trains and where it
reads gradients. Everything else is a `Run`:

- its Setup (model, task, variants, the samples of every step) and the
  GradientFitter that names a diverging gradient;
- `row`: one Measurement of an accumulated run against its reference;
- `splits` / `split_extras`: for a loss with extra terms (MoE router
  losses), the token parts to compare and the terms' weight;
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

from gaverify.accumulation.extras import describe_terms
from gaverify.accumulation.variants import Window, resolve, weighted_loss
from gaverify.backends.setup import Setup
from gaverify.errors import GaverifyError
from gaverify.measure.compare import GradComparison, grads_kept, top_layers
from gaverify.measure.extras import Split, has_extras, split
from gaverify.measure.fit import GradientFitter
from gaverify.measure.results import ExtraFit, Measurement, Trace
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario

Pair = tuple[float, Any]  # (loss, gradient list)


def drift_note(name: str) -> str:
    """Why a loss with extra terms is judged at its run's own parameters."""
    return (
        f"{name}: its loss carries extra terms (MoE router losses) that no accumulation "
        "can make equal to the full batch's, so its parameters drift from the full-batch "
        "run by design: each step is judged at its own parameters, param_max_abs is not"
    )


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
        self.extra_fits: dict[tuple[int, str], ExtraFit] = {}  # the first step's, per N x variant
        self._late_notes = late_notes  # notes only known at the end (the loop's step counts)
        if scenario.dtype == "float64" and any(map(self.splits, self.setup.variants)):
            # transformers computes router statistics in float32 whatever the model's
            # dtype: one backward of token loss + aux differs from two at 1e-8
            raise GaverifyError(
                f"dtype: float64 cannot judge {scenario.model.type}'s extra loss terms "
                f"({describe_terms(self.setup.built.model)}): its router statistics are "
                "computed in float32, so its gradients split into token part and extra "
                "terms to float32 precision only; run it in float32"
            )

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
        extra_weight: float | None = None,
        loss_scale: float | None = None,
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
            extra_weight=extra_weight,
            loss_scale=loss_scale,
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
            extra_fits=list(self.extra_fits.values()),
        )

    def splits(self, variant: str) -> bool:
        """Whether `variant`'s loss carries extra terms (an MoE router's aux
        loss) to be split off its gradients before they are compared."""
        return self.setup.variants[variant].model_loss and has_extras(self.setup.built.model)

    def unsplit_extras(self) -> None:
        """For a backend that compares whole losses: a variant known to carry
        the model's extra terms (MoE router losses) cannot be judged there
        (exit 2); any other gets a note that its loss may carry them."""
        model = self.setup.built.model
        if not has_extras(model):
            return
        terms = describe_terms(model)
        known = [name for name in self.setup.variants if self.splits(name)]
        if known:
            raise GaverifyError(
                f"variants: {', '.join(known)} trains on the model's own loss, which adds "
                f"{terms} (MoE router losses) per micro-batch; backend "
                f"{self.scenario.backend} compares whole losses and cannot judge them by their "
                "weight: use backend reference or trainer, or model.config.output_router_logits: "
                "false (docs/moe.md)"
            )
        self.notes.append(
            f"model: adds {terms} (MoE router losses) to its own loss; backend "
            f"{self.scenario.backend} compares whole losses, so a loss that includes them "
            "differs from the full batch's by design (backends reference and trainer judge "
            "them by their weight: docs/moe.md)"
        )

    def split_extras(
        self, model: Any, micro: list, samples: list, got: Pair, ref: Pair,
        where: tuple[int, int, str], ranks: int = 1,
    ) -> Split:  # fmt: skip
        """The token parts of `got` (the accumulated run's loss and gradient
        over `micro`) and `ref` (the same loss on the full batch of `samples`),
        both at `model`'s parameters, and the extra terms' weight
        (measure/extras.py); the first step's fit is kept per N x variant."""
        done = split(self.setup, model, micro, self.setup.collate(samples), got, ref, where,
                     self.fitter.sketch, ranks)  # fmt: skip
        self.extra_fits.setdefault((where[1], where[2]), done.fit)
        return done

    def own_full_batch(self, model: Any, samples: list, variant: Any) -> Pair:
        """`variant`'s loss (a reference Variant) on the full batch of
        `samples` and its gradient at `model`'s parameters (not copied);
        the model's .grad is put back as it was."""
        import torch

        full = self.setup.collate(samples)
        window = Window(model, self.setup.task, full, [self.setup.task.count_items(full["labels"])],
                        self.scenario.loss.label_smoothing)  # fmt: skip
        with grads_kept(model) as params, torch.enable_grad():
            for p in params:
                p.grad = None
            rule = variant.loss or (lambda w: weighted_loss(w, variant.weights(w.counts)[0]))
            loss = rule(window)
            loss.backward()
            grads = [p.grad for p in params]
        return float(loss.detach()), grads

    @contextmanager
    def recording(self) -> Iterator[Run]:
        """Run the block; on Ctrl-C raise Interrupted with the trace so far."""
        try:
            yield self
        except KeyboardInterrupt:
            raise Interrupted(self.trace()) from None
