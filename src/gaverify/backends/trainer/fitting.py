"""Fitting a diverging gradient of a trainer that prepares its own inputs (TRL).

gaverify's GradientFitter backpropagates its own micro-batches with the
task's summed loss. A TRL trainer tokenizes, packs, pairs or generates its
micro-batches itself, so `InputsFitter` uses what it prepared instead: the
inputs of the step's micro-batches as the trainer's compute_loss saw them
(engine.py records them), each backpropagated with the family's summed loss
(the micro-batch's loss summed over its items: tokens, pairs) at the run's
own parameters. The fitted weights are then read against the known patterns
exactly as for every other backend. A loss with no per-item sum (GRPO's
sapo) is not fitted, and the report says so.
"""

from __future__ import annotations

import copy
from typing import Any

from gaverify.measure.compare import grads_kept
from gaverify.measure.fit import GradientFitter


class InputsFitter:
    """A GradientFitter whose basis is the trainer's own prepared micro-batches."""

    def __init__(self, fitter: GradientFitter, family: Any):
        self.fitter, self.family = fitter, family
        self.trainer: Any = None  # bound by engine.train before the run trains
        self.unfitted: list[str] = []  # variants whose loss has no per-item sum

    def bind(self, trainer: Any) -> None:
        self.trainer = trainer

    def wants(self, n: int, variant: str, comparison: Any) -> bool:
        return self.fitter.wants(n, variant, comparison)

    def fit(self, step: int, n: int, variant: str, model: Any, grads: Any, **_: Any) -> None:
        """Fit `grads` over this step's n recorded micro-batches."""
        import torch

        trainer, family = self.trainer, self.family
        inputs = list(trainer.gaverify_inputs)
        metrics = copy.deepcopy(getattr(trainer, "_metrics", None))  # what the log averages
        trainer.gaverify_fitting = True
        rows = []
        try:
            with grads_kept(model) as params, torch.enable_grad():
                for micro in inputs:
                    for p in params:
                        p.grad = None
                    summed = family.summed(trainer, model, micro)
                    if summed is None:
                        self.unfitted.append(variant)
                        return
                    summed.backward()
                    rows.append(self.fitter.sketch.project([p.grad for p in params]))
        finally:
            trainer.gaverify_fitting = False
            if metrics is not None:
                trainer._metrics = metrics
        counts = [family.count(trainer, micro) for micro in inputs]
        self.fitter.fit(step, n, variant, model, grads, basis=(counts, torch.stack(rows)))
