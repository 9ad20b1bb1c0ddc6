"""Loss variants: how an accumulation loop normalises each micro-batch's loss.

For token-level losses a micro-batch i has a summed loss S_i over T_i counted
items (non-ignored label tokens). Every built-in variant backpropagates
w_i * S_i for micro-batch i and logs sum_i w_i * S_i, so a variant is fully
described by its weights:

    full batch (reference)  w = 1 / T                  T = sum_i T_i
    fixed                   w_i = 1 / T                (num_items_in_batch)
    naive                   w_i = 1 / (N * T_i)        (mean of means)

`fixed` equals the full batch for any counts; `naive` only when all T_i are
equal. This module is pure Python (no torch) so scenarios validate fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gaverify.registry import Registry

Weights = Callable[[Sequence[int]], list[float]]


@dataclass(frozen=True)
class Variant:
    """A loss normalisation rule and the verdict a correct tool gives it on
    data whose micro-batches hold different item counts."""

    name: str
    summary: str
    expected: str  # "pass" or "fail"
    weights: Weights


def _inverse(x: float) -> float:
    # A zero count makes the loss 0/0: real loops produce NaN there, so do we.
    return 1.0 / x if x else math.nan


def naive_weights(counts: Sequence[int]) -> list[float]:
    """Mean of means: each micro-batch's own mean loss, divided by N."""
    n = len(counts)
    return [_inverse(n * t) for t in counts]


def fixed_weights(counts: Sequence[int]) -> list[float]:
    """Each micro-batch's summed loss over the whole accumulated batch's count."""
    total = sum(counts)
    return [_inverse(total)] * len(counts)


VARIANTS: Registry[Variant] = Registry("variant")
VARIANTS.add(
    "naive",
    Variant(
        "naive",
        "per-micro-batch mean loss / N (mean of means; the classic bug)",
        "fail",
        naive_weights,
    ),
)
VARIANTS.add(
    "fixed",
    Variant(
        "fixed",
        "per-micro-batch summed loss / item count of the whole batch (num_items_in_batch)",
        "pass",
        fixed_weights,
    ),
)
