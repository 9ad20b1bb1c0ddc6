"""The loss variants of the accelerate backend: loops written with `Accelerator.accumulate`.

Inside `accelerator.accumulate(model)`, `accelerator.backward(loss)`
divides the loss by N (gradient_accumulation_steps) and DDP averages the W
ranks' gradients at the last micro-batch. A variant is what the loop
multiplies each micro-batch's summed loss S_i by before that (T_i: the
micro-batch's item count, T_r: its rank's over the window, T: the whole
batch's, gathered across processes):

    plain                         S_i / T_i          the loss as the model returns it (a
                                                     mean): mean of means after the / N
    variable-size-recipe          N * W * S_i / T    accelerate's documented recipe for
                                                     variable-size batches: the full batch
    recipe-without-num-processes  N * S_i / T        the recipe without x num_processes:
                                                     W times too small under DDP's average

Light module: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from gaverify.accumulation.ddp_variants import DdpVariant
from gaverify.accumulation.rules import inverse
from gaverify.registry import Registry


def _plain(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    return [inverse(t) for t in mine]


def _recipe(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    return [len(mine) * len(ranks) * inverse(sum(map(sum, ranks)))] * len(mine)


def _without_processes(mine: Sequence[int], ranks: Sequence[Sequence[int]]) -> list[float]:
    return [len(mine) * inverse(sum(map(sum, ranks)))] * len(mine)


ACCELERATE_VARIANTS: Registry[DdpVariant] = Registry("accelerate variant")
ACCELERATE_VARIANTS.add(
    "plain",
    DdpVariant(
        "plain", "model's mean loss into accelerator.backward under accumulate (mean of means)",
        "fail", weights=_plain,
    ),
)  # fmt: skip
ACCELERATE_VARIANTS.add(
    "variable-size-recipe",
    DdpVariant(
        "variable-size-recipe",
        "accelerate's recipe: summed loss x N x num_processes / gathered item count",
        "pass", weights=_recipe,
    ),
)  # fmt: skip
ACCELERATE_VARIANTS.add(
    "recipe-without-num-processes",
    DdpVariant(
        "recipe-without-num-processes",
        "the recipe without x num_processes: DDP's average over W left in", "fail",
        expected_when_equal="fail", processes=2, weights=_without_processes,
    ),
)  # fmt: skip
