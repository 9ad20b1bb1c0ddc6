"""Fitting an accumulated gradient as a weighted sum of micro-batch gradients.

A loop that accumulates N micro-batches produces G = sum_i c_i g_i, where g_i
is the gradient of micro-batch i's summed loss S_i; a correct loop has
c_i = 1/T (T the window's item count). Given G, the fit recovers the c_i,
which diagnosis.py then names.

Gradients are never stored: each is projected to `dim` numbers by a count
sketch (a random sign per coordinate, coordinates summed into dim buckets).
The sketch is linear, so G = sum c_i g_i holds exactly between the sketches,
and it keeps norms on average, so the fit's residual is meaningful. Memory:
one int8 sign per parameter (cached) and cache-sized temporaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gaverify.accumulation.variants import Window, weighted_loss
from gaverify.measure.compare import grads_kept
from gaverify.measure.results import GradientFit
from gaverify.measure.verdict import gradient_diverges

SKETCH_DIM = 256
CHUNK = 1 << 18  # elements per temporary: cache-sized, 20x faster than whole tensors


class Sketch:
    """A seeded count sketch of parameter-list gradients into `dim` numbers."""

    def __init__(self, dim: int = SKETCH_DIM, seed: int = 0):
        self.dim, self.seed = dim, seed
        self._signs: dict[int, Any] = {}

    def _signs_of(self, index: int, tensor: Any):
        signs = self._signs.get(index)
        if signs is None:
            import torch

            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            bits = torch.randint(0, 2, (tensor.numel(),), generator=gen, dtype=torch.int8)
            signs = (bits * 2 - 1).to(tensor.device)
            self._signs[index] = signs
        return signs

    def add(self, index: int, grad: Any, out: Any, scale: float = 1.0) -> None:
        """Add the sketch of parameter `index`'s gradient tensor, times
        `scale`, to `out` (float64 of `dim`, on the CPU). Chunk by chunk: the
        sign flips are exact in the gradient's dtype, the sums are float64."""
        import torch

        flat = grad.detach().reshape(-1)
        signs = self._signs_of(index, flat)
        dim, size = self.dim, flat.numel()
        main, step = size - size % dim, max(CHUNK // dim, 1) * dim
        # on the CPU straight into `out`; elsewhere on the device, copied once
        total = out if flat.device.type == "cpu" else out.new_zeros(dim, device=flat.device)
        for start in range(0, main, step):
            end = min(start + step, main)
            part = (flat[start:end] * signs[start:end]).view(-1, dim).sum(0, dtype=torch.float64)
            total.add_(part, alpha=scale)
        if main < size:
            total[: size - main].add_((flat[main:] * signs[main:]).double(), alpha=scale)
        if total is not out:
            out += total.cpu()

    def sharing(self, dim: int) -> Sketch:
        """A sketch into `dim` buckets with this one's signs (and their cache)."""
        other = Sketch(dim, self.seed)
        other._signs = self._signs
        return other

    def forget(self) -> None:
        """Drop the cached signs (1 byte per parameter); they are seeded, so
        the next use draws the same ones again."""
        self._signs.clear()

    def project(self, grads: Sequence[Any]):
        """The sketch (float64 tensor of `dim`, on the CPU) of one gradient
        list in parameter order; None entries count as zeros."""
        import torch

        out = torch.zeros(self.dim, dtype=torch.float64)
        for index, grad in enumerate(grads):
            if grad is not None:
                self.add(index, grad, out)
        return out


def micro_batch_sketches(
    model: Any, task: Any, micro_batches: Sequence[Any], counts: Sequence[int], smoothing, sketch
):
    """The sketches (N x dim) of each micro-batch's summed-loss gradient at
    the model's current parameters (`counts`: their items). The model's
    .grad is left as it was."""
    import torch

    rows = []
    with grads_kept(model) as params, torch.enable_grad():
        for mb in micro_batches:
            for p in params:
                p.grad = None
            weighted_loss(Window(model, task, mb, counts, smoothing), 1.0).backward()
            rows.append(sketch.project([p.grad for p in params]))
    return torch.stack(rows)


def fit_weights(basis, target, total: int) -> tuple[list[float], float]:
    """Least-squares c with target ~ sum_i c_i basis_i: the weights c_i * total
    (1.0 everywhere: the full batch's) and the relative residual
    |target - sum c_i basis_i| / |target|."""
    import torch

    solution = torch.linalg.lstsq(basis.T, target.unsqueeze(1), driver="gelsd").solution
    coef = solution.squeeze(1)
    norm = float(target.norm())
    residual = float((basis.T @ coef - target).norm()) / norm if norm else 0.0
    return [float(c) * total for c in coef], residual


def _scale(rows: Any, reference: Any, total: int) -> tuple[float, float]:
    """(c, residual): c when a full-batch gradient is c times the token
    loss's (fitted weights all c, to 1e-3), else 1.0 (S/T itself, or nothing
    uniform to read the weights against); and how far that gradient lies
    outside the micro-batches' token-loss gradients."""
    weights, residual = fit_weights(rows, reference, total)
    c = sum(weights) / len(weights)
    uniform = c and residual < 1e-3 and all(abs(w - c) <= 1e-3 * abs(c) for w in weights)
    return (c if uniform and abs(c - 1.0) > 1e-3 else 1.0), residual


class GradientFitter:
    """What a backend calls when a gradient diverges: fit it once per
    (N, variant), from the micro-batches of the step where it first did."""

    def __init__(self, setup: Any, dim: int = SKETCH_DIM):
        self.setup = setup
        self.sketch = Sketch(dim, setup.scenario.seed)
        self.fits: dict[tuple[int, str], GradientFit] = {}

    def wants(self, n: int, variant: str, comparison: Any) -> bool:
        """Whether to fit: this gradient diverges beyond the scenario's
        tolerance (finitely) and this (N, variant) has no fit yet."""
        if (n, variant) in self.fits:
            return False
        return gradient_diverges(comparison, self.setup.scenario.tolerance_for(variant))

    def pending(self, n: int, variants: Sequence[Any]) -> bool:
        """Whether a shared sweep at N should sketch its micro-batch gradients
        as it goes: some variant expected to diverge has no fit at N yet.
        Sketching costs little, but every step; a variant expected to pass
        that diverges anyway is fitted by running its micro-batches again."""
        return any(v.expected == "fail" and (n, v.name) not in self.fits for v in variants)

    def fit(
        self,
        step: int,
        n: int,
        variant: str,
        model: Any,
        grads: Sequence[Any],
        pieces: int = 0,
        basis: tuple[Sequence[int], Any] | None = None,
        reference: Sequence[Any] | None = None,
        target: Any = None,
    ) -> None:
        """Fit `grads` (the accumulated gradient of `model` at step `step`)
        over its `pieces` micro-batches (default n; W x n for W ranks).
        `basis`: (counts, sketches) of those micro-batch gradients at the
        same parameters when a sweep already made them; otherwise each
        micro-batch is backpropagated again here. `reference`: for a variant
        judged on its own loss, that loss's full-batch gradient at the same
        parameters (computed only when a fit is due); when it is a multiple of
        S/T's, the weights are read in its units (a loss x4 that ignores the
        count is a sum of means). `target`: the sketch of `grads`, when only
        that was kept (the sketched lockstep plan; `grads` is then None)."""
        setup = self.setup
        if basis is None:
            micro = setup.micro_batches(setup.steps[step - 1], pieces or n)
            smoothing = setup.scenario.loss.label_smoothing
            counts = [setup.task.count_items(mb["labels"]) for mb in micro]
            rows = micro_batch_sketches(model, setup.task, micro, counts, smoothing, self.sketch)
        else:
            counts, rows = list(basis[0]), basis[1]
        if target is None:
            target = self.sketch.project(grads)
        weights, residual = fit_weights(rows, target, sum(counts))
        scale, outside = 1.0, None
        if reference is not None:
            scale, outside = _scale(rows, self.sketch.project(reference), sum(counts))
        self.fits[(n, variant)] = GradientFit(
            step=step, n=n, variant=variant, counts=counts, weights=[w / scale for w in weights],
            residual=residual, ranks=(pieces or n) // n, scale=scale, reference_residual=outside,
        )  # fmt: skip

    def sort(self, key: Any) -> None:
        """Order the fits made so far by `key(fit)` (the Trace lists them so)."""
        self.fits = dict(sorted(self.fits.items(), key=lambda item: key(item[1])))

    def records(self) -> list[GradientFit]:
        """Every fit made, for the Trace."""
        return list(self.fits.values())
