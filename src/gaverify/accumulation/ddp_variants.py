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

FSDP2 (the fsdp backend) reduce-scatters the gradients, averaging over W
by default as DDP does, so the rules above mean the same there; it also
lets a loop sum instead (a gradient divide factor of 1), which its variants
add (FSDP_VARIANTS):

    global-count-reduce-sum       S_i / T        the count all-reduced, ranks' gradients
                                                 summed: the full batch, no x W needed
    global-count-reduce-sum-x-W   W * S_i / T    summed, and the DDP recipe's x W kept:
                                                 W times too large

Weights are computed on each rank from its own counts and every rank's
(gathered before the first backward). Light module: no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gaverify.accumulation import rules
from gaverify.accumulation.declaration import Declaration
from gaverify.registry import Registry

# (this rank's counts, every rank's counts) -> this rank's micro-batch weights
RankWeights = Callable[[Sequence[int], Sequence[Sequence[int]]], list[float]]


@dataclass(frozen=True, kw_only=True)
class DdpVariant(Declaration):
    """A data-parallel normalisation rule (weights from accumulation/rules.py)."""

    weights: RankWeights
    # the engine's reduction sums the ranks' gradients instead of averaging them
    # (FSDP2's gradient divide factor 1); only the fsdp backend offers it
    summed: bool = False


DDP_VARIANTS: Registry[DdpVariant] = Registry("ddp variant")
DDP_VARIANTS.add(
    "local-count",
    DdpVariant(
        "local-count", "each rank divides by its own item count (count not all-reduced)",
        "fail", weights=rules.local_count,
    ),
)  # fmt: skip
DDP_VARIANTS.add(
    "global-count",
    DdpVariant(
        "global-count", "item count all-reduced across ranks, loss x W against DDP's averaging",
        "pass", weights=rules.global_count,
    ),
)  # fmt: skip
DDP_VARIANTS.add(
    "global-count-unscaled",
    DdpVariant(
        "global-count-unscaled", "item count all-reduced, but DDP's averaging over W left in",
        "fail", expected_when_equal="fail", weights=rules.global_count_unscaled,
    ),
)  # fmt: skip
DDP_VARIANTS.add(
    "naive",
    DdpVariant(
        "naive", "per-micro-batch mean loss / N on every rank (mean of means)", "fail",
        weights=rules.naive_per_rank,
    ),
)  # fmt: skip


FSDP_VARIANTS: Registry[DdpVariant] = Registry("fsdp variant")
for _name, _variant in DDP_VARIANTS.items():
    FSDP_VARIANTS.add(_name, _variant)
FSDP_VARIANTS.add(
    "global-count-reduce-sum",
    DdpVariant(
        "global-count-reduce-sum",
        "item count all-reduced, reduce-scatter summing (gradient divide factor 1), no x W",
        "pass", weights=rules.global_count_unscaled, summed=True,
    ),
)  # fmt: skip
FSDP_VARIANTS.add(
    "global-count-reduce-sum-x-W",
    DdpVariant(
        "global-count-reduce-sum-x-W",
        "reduce-scatter summing, and the loss still x W as for an averaging reduction",
        "fail", expected_when_equal="fail", weights=rules.global_count, summed=True,
    ),
)  # fmt: skip
