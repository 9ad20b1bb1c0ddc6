"""Splitting a gradient into its token part and its extra terms' part.

For a model whose loss carries extra terms (an MoE router's aux loss, see
accumulation/extras.py) an accumulated gradient is fitted, at the parameters
it was taken at, as

    G = sum_i c_i g_i + sum_i a_i e_i

over each micro-batch's token gradient g_i (its summed loss S_i) and
extra-term gradient e_i, and the same loss on the full batch as
G_full = c g + b e. Then:

- the token parts, G - sum_i a_i e_i and G_full - b e, are compared like
  any other gradient (to the tolerances: exactly);
- the terms' weight, sum_i a_i / b, is judged on its own: 1 is a mean over
  the micro-batches (correct), N a sum, W times that transformers#48690.

The split costs two more forwards of every micro-batch and of the full batch,
and four gradient-sized buffers while it runs (the token parts and the extra
terms' weighted gradients); the model's .grad is left as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gaverify.accumulation.extras import describe_terms, extra_loss, extra_terms, weigh
from gaverify.measure.compare import grads_kept
from gaverify.measure.fit import Sketch, fit_weights
from gaverify.measure.results import ExtraFit
from gaverify.model.calls import forward, logits_of


def has_extras(model: Any) -> bool:
    """Whether the model's own loss carries extra terms to split off."""
    return bool(extra_terms(model))


@dataclass
class Split:
    """The token parts of a variant's loss and gradient (`got`) and of the
    same loss on the full batch (`ref`), each (loss, gradients); the extra
    terms' value in the logged loss (`got_extra`, as fitted); the fit; and
    the token gradients' sketches it was made on."""

    got: tuple[float, list[Any]]
    ref: tuple[float, list[Any]]
    got_extra: float
    fit: ExtraFit
    # (counts, sketches) of the micro-batches' token gradients, as the
    # GradientFitter takes them: a failing token part is fitted without redoing them
    basis: tuple[list[int], Any]


def _pieces(model: Any, task: Any, batch: dict[str, Any], smoothing: float):
    """(S, e): one forward's summed token loss and extra terms."""
    outputs = forward(model, task, batch)
    summed = task.summed_loss(logits_of(outputs), batch["labels"], smoothing)
    extra = extra_loss(model, outputs)
    if extra is None:
        extra = summed * 0.0  # the model returned none this time: a zero term
    return summed, extra


def _sketches(params, model, task, batches, smoothing, sketch: Sketch):
    """Per batch: the sketches of its token gradient and its extra-term
    gradient, and the extra terms' value."""
    token, extra, values = [], [], []
    for batch in batches:
        summed, term = _pieces(model, task, batch, smoothing)
        for loss, out in ((summed, token), (term, extra)):
            for p in params:
                p.grad = None
            loss.backward(retain_graph=loss is summed)
            out.append(sketch.project([p.grad for p in params]))
        values.append(float(term.detach()))
    return token, extra, values


def _weighted_extra(params, model, task, batches, weights, smoothing) -> list[Any]:
    """The gradient of sum_i w_i e_i (one backward per batch, summed in .grad)."""
    for p in params:
        p.grad = None
    for batch, weight in zip(batches, weights, strict=True):
        _, term = _pieces(model, task, batch, smoothing)
        (term * weight).backward()
    return [p.grad for p in params]


def _minus(grads: Sequence[Any], part: Sequence[Any]) -> list[Any]:
    out = []
    for g, e in zip(grads, part, strict=True):
        out.append(g if e is None else (-e if g is None else g - e))
    return out


def split(
    setup: Any,
    model: Any,
    micro: Sequence[dict[str, Any]],
    full: dict[str, Any],
    got: tuple[float, Sequence[Any]],
    ref: tuple[float, Sequence[Any]],
    where: tuple[int, int, str],
    sketch: Sketch,
    ranks: int = 1,
) -> Split:
    """Split `got` (the logged loss and accumulated gradient over the
    micro-batches `micro`) and `ref` (the same loss on the `full` batch), both
    taken at `model`'s current parameters; `where` is (step, N, variant)."""
    import torch

    task, smoothing = setup.task, setup.scenario.loss.label_smoothing
    pieces = len(micro)  # W x N on W processes
    with grads_kept(model) as params, torch.enable_grad():
        token, extra, values = _sketches(params, model, task, micro, smoothing, sketch)
        whole = _sketches(params, model, task, [full], smoothing, sketch)
        coef, residual = fit_weights(torch.stack([*token, *extra]), sketch.project(got[1]), 1)
        alphas = coef[pieces:]
        beta = fit_weights(torch.stack([*whole[0], *whole[1]]), sketch.project(ref[1]), 1)[0][1]
        fitted = _weighted_extra(params, model, task, micro, alphas, smoothing)
        got_grads = _minus(got[1], fitted)
        ref_grads = _minus(ref[1], _weighted_extra(params, model, task, [full], [beta], smoothing))
    weight, pattern, detail = weigh(alphas, beta, pieces // ranks, ranks)
    step, n, variant = where
    fit = ExtraFit(
        step=step, n=n, variant=variant, terms=describe_terms(model), weights=alphas,
        full_weight=beta, weight=weight, pattern=pattern, detail=detail, residual=residual,
        ranks=ranks,
    )  # fmt: skip
    got_extra = sum(a * v for a, v in zip(alphas, values, strict=True))
    ref_token = (ref[0] - beta * whole[2][0], ref_grads)
    counts = [task.count_items(mb["labels"]) for mb in micro]
    basis = (counts, torch.stack(token))
    return Split((got[0] - got_extra, got_grads), ref_token, got_extra, fit, basis)
