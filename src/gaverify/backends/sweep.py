"""One backward pass per micro-batch, shared by every weight-only variant.

naive and fixed differ only in the weight w_i that micro-batch i's summed loss
S_i gets, and a gradient is linear in it: G_v = sum_i w_vi g_i, g_i = dS_i/dθ.
So one sweep over the N micro-batches serves them all: each micro-batch is
backpropagated once, scaled by 1/T (the full batch's own weight), and a hook
on every parameter hands each variant its share (w_vi T) of the arriving
gradient: into the model's .grad for one variant, into a buffer of its own for
each other. The scale matters: models that compute parts of their backward
in float32 whatever their dtype (Llama's RMSNorm and eager softmax) round
differently at different scales, so only a variant backpropagated at the
full batch's scale reproduces the full batch to float64 precision. So every
variant whose weights equal 1/T (fixed; naive on equal counts) gets exactly
what its own loop computes; the others differ from their own loop by that
rounding (~1e-7 relative in float32), far below what makes them differ. The
same hook adds each g_i's sketch to row i for the diagnosis, so a diverging
variant is fitted without another backward pass.

Memory: one parameter-sized buffer per variant beyond the first, and at most
`per_sweep` variants per sweep (the lockstep plan: shared sweeps MAX_SHARED,
in-turn 1), so with the lockstep reference gradient a run holds at most
three parameter-sized buffers besides the model's own. Given a Probe (the
sketched plan, measure/estimate.py) a sweep keeps no buffer at all: each
gradient is reduced to the probe's numbers as it arrives and dropped.
Variants that run their own loss code, or backpropagate in another order
(whose point is that order's rounding), keep a pass of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gaverify.accumulation.variants import Variant, Window, summed_loss
from gaverify.data.collate import Batch
from gaverify.measure.compare import trainable

MAX_SHARED = 3  # variants per sweep: the reference + 2 buffers = 3 extra


@dataclass
class Swept:
    """One variant's result from a shared sweep."""

    name: str
    loss: float  # the loss its loop would log: sum_i w_i S_i
    grads: list[Any] | None  # its accumulated gradient, in trainable-parameter order
    comparison: Any = None  # with a probe: its estimated comparison (no gradient kept)


@dataclass
class Sweep:
    """What one sweep over a window's micro-batches produced."""

    counts: list[int]  # items of each micro-batch
    results: list[Swept]  # in the order the variants were given
    basis: Any = None  # N x dim sketches of each g_i, when a sketch was given


def shareable(variant: Variant) -> bool:
    """Whether a variant is a pure weight rule that a sweep can serve."""
    return variant.weights is not None and not variant.reverse


def groups(variants: dict[str, Variant], per_sweep: int = MAX_SHARED) -> list[list[str]]:
    """The variant names run together: the shareable ones in sweeps of at
    most `per_sweep`, every other one alone (scenario order kept within)."""
    shared = [name for name, v in variants.items() if shareable(v)]
    alone = [[name] for name, v in variants.items() if not shareable(v)]
    chunks = [shared[i : i + per_sweep] for i in range(0, len(shared), per_sweep)]
    return chunks + alone


def _in_grad(ratios: list[list[float]]) -> int:
    """Which variant accumulates in the model's .grad: one that takes every
    gradient as it arrives (all ratios 1) if any, so no copy is made."""
    for k, rs in enumerate(ratios):
        if all(r == 1.0 for r in rs):
            return k
    return 0


def sweep(
    model: Any,
    micro_batches: Sequence[Batch],
    variants: Sequence[Variant],
    task: Any,
    smoothing: float = 0.0,
    sketch: Any = None,
    probe: Any = None,
) -> Sweep:
    """Accumulate every variant (all shareable) over `micro_batches` with
    one forward and backward each. One variant's gradient (fixed's, when it
    is there) is the model's .grad, which is not zeroed here: zero it first.
    With a `probe` no gradient is kept: each variant gets its comparison."""
    import torch

    most = len(variants) if probe is not None else MAX_SHARED
    if not all(shareable(v) for v in variants) or not 0 < len(variants) <= most:
        raise ValueError(f"a sweep serves 1 to {most} weight-only variants")
    params = trainable(model)
    counts = [task.count_items(mb["labels"]) for mb in micro_batches]
    scale = 1.0 / sum(counts) if sum(counts) else 1.0  # all padding: NaN weights flow
    weights = [v.weights(counts) for v in variants]
    ratios = [[w / scale for w in ws] for ws in weights]  # per variant, per micro-batch
    own = _in_grad(ratios) if probe is None else None  # with a probe: no .grad
    others = [k for k in range(len(variants)) if k != own and probe is None]
    # allocated up front, in one go: grown piecemeal during the backward they
    # interleave with the activations being freed and fragment the heap
    buffers = {k: [torch.zeros_like(p) for p in params] for k in others}
    rows = torch.zeros(len(micro_batches), sketch.dim, dtype=torch.float64) if sketch else None
    at = [0]  # the micro-batch in flight

    def hook_for(index: int):
        def hook(grad):
            i = at[0]
            for k in others:
                buffers[k][index].add_(grad, alpha=ratios[k][i])
            if sketch is not None:
                sketch.add(index, grad, rows[i], 1.0 / scale)
            if probe is not None:
                probe.add(i, index, grad)
            return grad if own is None or ratios[own][i] == 1.0 else grad * ratios[own][i]

        return hook

    handles = [p.register_hook(hook_for(index)) for index, p in enumerate(params)]
    if probe is not None:  # dropped as soon as it lands: the probe has what it needs
        handles += [p.register_post_accumulate_grad_hook(_drop) for p in params]
    logged = [0.0] * len(variants)
    try:
        for i, mb in enumerate(micro_batches):
            at[0] = i
            summed = summed_loss(Window(model, task, mb, counts, smoothing))
            (summed * scale).backward()
            value = summed.detach()
            for k, ws in enumerate(weights):
                logged[k] += float(value * ws[i])  # rounds as the variant's own loop does
    finally:
        for handle in handles:
            handle.remove()
    if probe is not None:
        results = [Swept(v.name, logged[k], None, probe.compare(ratios[k]))
                   for k, v in enumerate(variants)]  # fmt: skip
        return Sweep(counts=counts, results=results, basis=rows)
    grads = {own: [p.grad for p in params], **buffers}
    results = [Swept(v.name, logged[k], grads[k]) for k, v in enumerate(variants)]
    return Sweep(counts=counts, results=results, basis=rows)


def _drop(param: Any) -> None:
    param.grad = None
