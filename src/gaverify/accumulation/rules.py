"""Every normalisation rule, as the weight each micro-batch's summed loss gets.

A window of N micro-batches has summed losses S_i over T_i counted items
(T = sum T_i). A loop that backpropagates w_i * S_i for each i accumulates
the gradient sum_i w_i dS_i; the full batch's is w_i = 1/T for every i.

    fixed          1/T              num_items_in_batch: the full batch
    naive          1/(N T_i)        mean of means: differs when the T_i differ

On W data-parallel ranks (DDP averages the ranks' gradients, dividing their
sum by W), rank r with its own count T_r over its N micro-batches:

    local-count            1/T_r          each rank's own count: the bug
    global-count           W/T            the count all-reduced, x W against DDP's mean
    global-count-unscaled  1/T            all-reduced, DDP's mean left in: W times too small
    naive (per rank)       1/(N T_i)      mean of means on every rank

A zero count makes a loss 0/0: real loops produce NaN there, and so do these.
Pure Python: no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def inverse(x: float) -> float:
    """1/x, or NaN for a zero count (0/0, as a real loop gets it)."""
    return 1.0 / x if x else math.nan


def fixed_weights(counts: Sequence[int]) -> list[float]:
    """Each micro-batch's summed loss over the whole accumulated batch's count."""
    return [inverse(sum(counts))] * len(counts)


def naive_weights(counts: Sequence[int]) -> list[float]:
    """Mean of means: each micro-batch's own mean loss, divided by N."""
    return [inverse(len(counts) * t) for t in counts]


def local_count(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    """Each rank divides by its own count (the count not all-reduced)."""
    return [inverse(sum(mine))] * len(mine)


def global_count(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    """The count all-reduced across ranks, times W to undo DDP's averaging."""
    return [len(ranks) * inverse(sum(map(sum, ranks)))] * len(mine)


def global_count_unscaled(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    """The count all-reduced, DDP's averaging over W left in."""
    return [inverse(sum(map(sum, ranks)))] * len(mine)


def naive_per_rank(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    """Mean of means on every rank."""
    return naive_weights(mine)
