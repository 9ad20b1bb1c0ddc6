"""Loss terms a model adds to its token loss from the statistics of a batch.

An MoE router's load-balancing loss (`aux_loss`) and z-loss are computed from
how the batch in hand was routed. Under accumulation each micro-batch has its
own routing, so the sum of their terms can never equal the full batch's term
exactly (ModuleFormer#5); what can be right or wrong is their *weight*. A mean
over the N micro-batches (1/N each) carries the term with the weight it has
on the full batch; a sum carries it N times; transformers#48690 multiplies it
by the world size as well.

TERMS maps each output a model returns to the config coefficient it is added
to the loss with; `extra_loss` reads what a model added, from one forward.
measure/extras.py fits the weight. No torch at import.
"""

from __future__ import annotations

from typing import Any

# output attribute -> the config coefficient the model adds it to its loss with.
# The decoder-only MoE models of transformers return one aux_loss; a z-loss
# (Switch Transformers, NLLB-MoE: encoder-decoders) is not read yet.
TERMS = {"aux_loss": "router_aux_loss_coef"}


def extra_terms(model: Any) -> dict[str, float]:
    """{output: coefficient} of the terms this model adds to its loss: its
    router logits are on (`output_router_logits`) and the coefficient is not 0."""
    config = getattr(model, "config", None)
    if config is None or not getattr(config, "output_router_logits", False):
        return {}
    coefficients = {term: getattr(config, coef, None) for term, coef in TERMS.items()}
    return {term: float(c) for term, c in coefficients.items() if c}


def extra_loss(model: Any, outputs: Any):
    """sum of coefficient x term over the model's extra terms in `outputs`,
    as the model adds them to its loss; None when it returned none."""
    total = None
    for term, coefficient in extra_terms(model).items():
        value = getattr(outputs, term, None)
        if value is not None:
            total = coefficient * value if total is None else total + coefficient * value
    return total


def describe_terms(model: Any) -> str:
    """'aux_loss x 0.02' (and the others), as reports name the extra terms."""
    return ", ".join(f"{term} x {coef:g}" for term, coef in extra_terms(model).items())


# The names of a right weight: the terms keep their full-batch weight.
CORRECT = frozenset({"extra-mean", "extra-weighted-mean", "extra-left-out"})
# A fitted weight below this is none: the loss leaves the terms out.
ABSENT = 1e-3


def weigh(
    weights: list[float], full: float, n: int, world: int = 1, rtol: float = 1e-2
) -> tuple[float, str, str]:
    """(total, pattern, words) for how an accumulated gradient weights the
    extra terms: `weights` one per micro-batch (W x N on W processes), `full`
    their weight on the full batch; `total` is sum(weights) / full. Correct is
    a total of 1: a mean over the micro-batches (1/N each, or any weights
    summing to 1, such as T_i/T), or the terms left out everywhere."""
    if abs(full) < ABSENT:
        if all(abs(w) < ABSENT for w in weights):
            return 1.0, "extra-left-out", "left out, on the full batch and in every micro-batch"
        words = "added in the micro-batches but absent from the full batch's loss"
        return float("inf"), "extra-weight", words
    total, pieces = sum(weights) / full, len(weights)
    if abs(total - 1.0) <= rtol:
        if all(abs(w / full - 1 / pieces) <= rtol / pieces for w in weights):
            return (
                total,
                "extra-mean",
                "a mean over the micro-batches (1/N each), as on the full batch",
            )
        return (
            total,
            "extra-weighted-mean",
            (
                "a weighted mean over the micro-batches (weights summing to 1, e.g. their items "
                "T_i/T), as on the full batch"
            ),
        )
    summed = (float(n), "extra-summed", f"summed over the {n} micro-batches instead of averaged")
    candidates = [summed, (1.0 / n, "extra-divided-twice", "divided by N twice")]
    if world > 1:  # N x W first; with N = W a sum is read before a world-size factor
        candidates = [
            (float(n * world), "extra-summed-times-world",
             f"summed over each process's {n} micro-batches and multiplied by the world "
             f"size {world} (transformers#48690)"),
            summed,
            (float(world), "extra-times-world",
             f"multiplied by the world size {world} (transformers#48690)"),
            candidates[1],
        ]  # fmt: skip
    for value, pattern, words in candidates:
        if abs(total - value) <= rtol * value:
            return total, pattern, words
    return total, "extra-weight", "neither a mean, a sum nor a multiple of the world size"
