"""The loss variants of the ddp backend: how a data-parallel loop counts items.

W ranks each accumulate N micro-batches under DistributedDataParallel, which
averages the ranks' gradients (divides their sum by W) at the last
micro-batch. With S_i a micro-batch's summed loss, T_r its rank's item count
over the window and T the count of the whole batch (all ranks):

    local-count            S_i / T_r      each rank normalises by its own count: the
                                          bug; differs when the ranks' counts differ
    global-count           W * S_i / T    the count all-reduced across ranks, times W
                                          to undo DDP's averaging (the Trainer's
                                          average_tokens_across_devices): the full batch
    global-count-unscaled  S_i / T        all-reduced count, DDP's averaging left in:
                                          the gradient is W times too small
    naive                  S_i / (N*T_i)  per-micro-batch mean / N: mean of means

Weights are computed on each rank from its own counts and every rank's
(gathered before the first backward). Light module: no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gaverify.registry import Registry

# (this rank's counts, every rank's counts) -> this rank's micro-batch weights
RankWeights = Callable[[Sequence[int], Sequence[Sequence[int]]], list[float]]


@dataclass(frozen=True)
class DdpVariant:
    """A data-parallel normalisation rule and the verdict a correct tool
    gives it when micro-batches (and ranks) hold different item counts."""

    name: str
    summary: str
    expected: str  # "pass" or "fail"
    weights: RankWeights
    expected_when_equal: str = "pass"
    origin: str = ""


def _inverse(x: float) -> float:
    return 1.0 / x if x else math.nan  # 0/0 as a real loop gets it: NaN


def _local(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    return [_inverse(sum(mine))] * len(mine)


def _global(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    total = sum(sum(r) for r in ranks)
    return [len(ranks) * _inverse(total)] * len(mine)


def _global_unscaled(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    return [_inverse(sum(sum(r) for r in ranks))] * len(mine)


def _naive(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    return [_inverse(len(mine) * t) for t in mine]


DDP_VARIANTS: Registry[DdpVariant] = Registry("ddp variant")
DDP_VARIANTS.add(
    "local-count",
    DdpVariant(
        "local-count", "each rank divides by its own item count (count not all-reduced)",
        "fail", _local,
    ),
)  # fmt: skip
DDP_VARIANTS.add(
    "global-count",
    DdpVariant(
        "global-count", "item count all-reduced across ranks, loss x W against DDP's averaging",
        "pass", _global,
    ),
)  # fmt: skip
DDP_VARIANTS.add(
    "global-count-unscaled",
    DdpVariant(
        "global-count-unscaled", "item count all-reduced, but DDP's averaging over W left in",
        "fail", _global_unscaled, expected_when_equal="fail",
    ),
)  # fmt: skip
DDP_VARIANTS.add(
    "naive",
    DdpVariant(
        "naive", "per-micro-batch mean loss / N on every rank (mean of means)", "fail", _naive
    ),
)


def resolve_ddp_variant(name: str, search: object = None) -> DdpVariant:
    """A registered ddp variant (the ddp backend runs no user loss code)."""
    return DDP_VARIANTS.get(name)
