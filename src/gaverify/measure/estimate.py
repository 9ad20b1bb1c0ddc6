"""Comparing gradients that are never stored: the sketched lockstep plan.

Lockstep holds the reference gradient and, for exact comparisons, one
accumulation buffer per variant. When they do not fit, a shared sweep can
keep none: each micro-batch gradient g_i (of its summed loss, times 1/T) is
reduced, tensor by tensor as the backward produces it, to two things and
then dropped:

- its dot product with the reference gradient, exact (float64 sums);
- a count sketch of BUCKETS numbers per tensor (fit.Sketch: a seeded random
  sign per coordinate, coordinate j into bucket j mod BUCKETS).

A variant's gradient G = sum_i r_i g_i is linear in both, so per tensor

    <G, ref>    = sum_i r_i <g_i, ref>                 exact
    |G - ref|^2 ~ |sum_i r_i S(g_i) - S(ref)|^2        an estimate
    |G|^2       = |ref|^2 + 2 (<G, ref> - |ref|^2) + |G - ref|^2

and rel-L2, the gradient norm and the cosine follow (G is summed in float64
here, where a loop's .grad sums in the model's dtype). The estimate is
unbiased; spread over many coordinates its relative standard error is
sqrt(2 / BUCKETS) for |G - ref|^2, half that (ERROR) for rel-L2. A tensor
smaller than BUCKETS is sketched exactly. The bucket count is prime so the
columns of a matrix whose rows are a power of two long do not share buckets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gaverify.measure.compare import GradComparison, dot, from_sums
from gaverify.measure.fit import Sketch

BUCKETS = 4099
ERROR = math.sqrt(0.5 / BUCKETS)  # relative standard error of an estimated rel-L2 (1 sigma)


class Probe:
    """The per-tensor dot products and sketches of a window's micro-batch
    gradients against one reference gradient."""

    def __init__(self, reference: Sequence[Any], pieces: int, sketch: Sketch):
        import torch

        self.reference, self.sketch = list(reference), sketch
        count = len(self.reference)
        self.ref_sq = [0.0 if g is None else dot(g, g) for g in self.reference]
        self.ref_rows = torch.zeros(count, sketch.dim, dtype=torch.float64)
        for index, grad in enumerate(self.reference):
            if grad is not None:
                sketch.add(index, grad, self.ref_rows[index])
        self.dots = torch.zeros(pieces, count, dtype=torch.float64)
        self.rows = torch.zeros(pieces, count, sketch.dim, dtype=torch.float64)

    def add(self, piece: int, index: int, grad: Any) -> None:
        """Take micro-batch `piece`'s gradient of parameter `index` (it may be dropped after)."""
        ref = self.reference[index]
        if ref is not None:
            self.dots[piece, index] += dot(grad, ref)
        self.sketch.add(index, grad, self.rows[piece, index])

    def compare(self, ratios: Sequence[float]) -> GradComparison:
        """The comparison of sum_i ratios[i] g_i with the reference, as
        compare_gradients would give it, with |G - ref| estimated."""
        import torch

        r = torch.tensor(list(ratios), dtype=torch.float64)
        dots = (r @ self.dots).tolist()
        diff = torch.einsum("i,itd->td", r, self.rows) - self.ref_rows
        diff_sq = (diff * diff).sum(1).tolist()
        sums = []
        for ref_sq, got_ref, d_sq in zip(self.ref_sq, dots, diff_sq, strict=True):
            got_sq = max(ref_sq + 2 * (got_ref - ref_sq) + d_sq, 0.0)
            sums.append((ref_sq, got_sq, got_ref, d_sq))
        comparison = from_sums(sums)  # |G| derives from an estimate: keep |cos| <= 1
        return replace(comparison, cosine=max(min(comparison.cosine, 1.0), -1.0))


def estimate_note() -> str:
    """What the sketched plan's report says about its numbers."""
    return (
        f"memory: gradients compared through {BUCKETS}-bucket sketches per tensor, "
        f"never stored: rel-L2 and |g| are estimates, within about {ERROR:.1%} of the "
        f"exact value (1 sigma; {4 * ERROR:.1%} at 4 sigma); the loss is exact. Micro-batch "
        "gradients are summed in float64, not in the model's dtype as .grad is: for a "
        "variant as close as rounding (rel-L2 ~1e-7) that alone moves rel-L2 by a few percent"
    )
