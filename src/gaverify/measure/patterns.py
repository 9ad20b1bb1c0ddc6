"""The known ways to weight micro-batches, and matching fitted weights to them.

A diverging gradient fitted as sum_i c_i g_i (fit.py) has weights c_i in
units of 1/T (1.0 everywhere: the full batch). Each Pattern below says when
such weights fit it; `name_weights` tries them in order and returns the
first that fits, with the others that fit too (with equal counts mean of
means *is* correct). Rules given as absolute weights come from
accumulation/rules.py. Pure Python, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gaverify.accumulation.rules import fixed_weights, naive_weights
from gaverify.measure.results import GradientFit
from gaverify.registry import Registry

# How closely fitted weights must match a pattern, by the run's precision (its
# dtype or mixed precision): far looser than the fit's own error (~1e-6 in
# float32), far tighter than patterns differ.
PRECISION = {
    "float64": 1e-6,
    "float32": 1e-3,
    "bfloat16": 5e-2,
    "bf16-mixed": 5e-2,
    "fp16-mixed": 1e-2,
}

Matcher = Callable[[GradientFit, float], "str | None"]


@dataclass(frozen=True)
class Pattern:
    """A known way to weight micro-batches: `match` returns a one-line
    description when the fitted weights (units of 1/T) fit it, else None."""

    summary: str
    match: Matcher


def close(got: Sequence[float], want: Sequence[float], precision: float) -> bool:
    if not all(math.isfinite(w) for w in want):  # a pattern undefined here (a zero count)
        return False
    scale = max(1.0, *(abs(w) for w in want))
    return all(abs(g - w) <= precision * scale for g, w in zip(got, want, strict=True))


def _rule(weights: Callable[[Sequence[int]], list[float]], text: str) -> Matcher:
    """A matcher for a rule given in absolute weights (accumulation/rules.py):
    fitted weights are in units of 1/T, so the rule's are multiplied by T."""

    def match(fit: GradientFit, precision: float) -> str | None:
        want = [w * sum(fit.counts) for w in weights(fit.counts)]
        return text if close(fit.weights, want, precision) else None

    return match


def _count_off(fit: GradientFit, precision: float) -> str | None:
    got, counts = fit.weights, fit.counts
    mean = sum(got) / len(got)
    if mean <= 0 or not close(got, [mean] * len(got), precision):
        return None
    total = sum(counts)
    off = total / mean - total
    k = round(off)
    # an off count is near the true one; a factor far from 1 is a scale (c/T)
    if k == 0 or abs(off - k) > min(0.25, 50 * precision) or abs(k) >= total / 2:
        return None
    return f"normalised by {total + k} items where the window holds {total} ({k:+d})"


def _dropped_or_repeated(fit: GradientFit, precision: float) -> str | None:
    got, counts = fit.weights, fit.counts
    top = max(abs(w) for w in got)
    nonzero = [w for w in got if abs(w) > precision * top]
    if not nonzero or min(nonzero) <= 0:
        return None
    unit = min(nonzero)
    times = [round(w / unit) for w in got]
    if times == [1] * len(got) or not close([w / unit for w in got], times, precision):
        return None
    parts = [
        f"micro-batch {i} {'dropped' if t == 0 else f'counted {t}x'}"
        for i, t in enumerate(times, start=1)
        if t != 1
    ]
    norm = f"the rest weighted 1/{sum(counts) / unit:.6g} (the window holds {sum(counts)} items)"
    return f"{', '.join(parts)}; {norm}"


def uniform(fit: GradientFit, precision: float) -> float | None:
    """The common weight (units of 1/T) when every micro-batch has the same one."""
    got = fit.weights
    mean = sum(got) / len(got)
    return mean if close(got, [mean] * len(got), precision) else None


def _constant(fit: GradientFit, precision: float) -> str | None:
    c = uniform(fit, precision)
    if c is None or close([c], [1.0], precision) or abs(c) <= precision:
        return None
    if _count_off(fit, precision):  # a count off by a whole number explains it better
        return None
    return f"weights {c:.4g}/T: the gradient {c:.4g} times the full batch's"


def _per_rank(fit: GradientFit) -> list[list[int]]:
    n = len(fit.counts) // fit.ranks
    return [list(fit.counts[r * n : (r + 1) * n]) for r in range(fit.ranks)]


def _rank_count(fit: GradientFit, precision: float) -> str | None:
    if fit.ranks < 2:
        return None
    total, ranks = sum(fit.counts), _per_rank(fit)
    want = [total / (fit.ranks * sum(r)) if sum(r) else math.inf for r in ranks for _ in r]
    if not close(fit.weights, want, precision):
        return None
    counts = ", ".join(str(sum(r)) for r in ranks)
    return (
        f"weights 1/(W*T_r): each rank divided by its own item count ({counts}), "
        f"not the {total} of all {fit.ranks} ranks"
    )


def _unscaled(fit: GradientFit, precision: float) -> str | None:
    if fit.ranks < 2 or not close(fit.weights, [1 / fit.ranks] * len(fit.counts), precision):
        return None
    return (
        f"weights 1/(W*T): the count is all-reduced, but DDP's average over the "
        f"{fit.ranks} ranks is not undone (loss not multiplied by W)"
    )


def _times_w(fit: GradientFit, precision: float) -> str | None:
    if fit.ranks < 2 or not close(fit.weights, [fit.ranks] * len(fit.counts), precision):
        return None
    return (
        f"weights W/T: the gradient {fit.ranks} (W) times the full batch's: the ranks' "
        "gradients are summed and the loss is multiplied by W as well (a data-parallel "
        "recipe's x W kept under a reduction that does not average)"
    )


PATTERNS: Registry[Pattern] = Registry("pattern")
PATTERNS.add(
    "full-batch",
    Pattern(
        "weights 1/T, as the full batch: no normalisation error; what diverges is rounding",
        _rule(
            fixed_weights,
            "the full batch's weights (1/T), to the fit's precision: the divergence is "
            "rounding, not normalisation (see tolerance: auto)",
        ),
    ),
)
PATTERNS.add(
    "per-rank-count",
    Pattern("weights 1/(W*T_r): each of W ranks normalised by its own count", _rank_count),
)
PATTERNS.add(
    "unscaled-by-W",
    Pattern("weights 1/(W*T): global count, DDP's averaging over W ranks left in", _unscaled),
)
PATTERNS.add(
    "scaled-by-W",
    Pattern("weights W/T: ranks' gradients summed and the loss x W as well", _times_w),
)
PATTERNS.add(
    "mean-of-means",
    Pattern(
        "weights 1/(N*T_i): each micro-batch's mean loss divided by N",
        _rule(
            naive_weights,
            "weights 1/(N*T_i): each micro-batch's mean loss / N",
        ),
    ),
)
PATTERNS.add(
    "sum-of-means",
    Pattern(
        "weights 1/T_i: micro-batch mean losses summed, not divided by N",
        _rule(
            lambda c: [w * len(c) for w in naive_weights(c)],
            "weights 1/T_i: micro-batch mean losses summed, no / N",
        ),
    ),
)
PATTERNS.add(
    "scaled-by-N",
    Pattern(
        "weights N/T: the whole gradient N times too large",
        _rule(
            lambda c: [w * len(c) for w in fixed_weights(c)],
            "weights N/T: the gradient N times too large",
        ),
    ),
)
PATTERNS.add(
    "scaled-by-1/N",
    Pattern(
        "weights 1/(N*T): the whole gradient N times too small",
        _rule(
            lambda c: [w / len(c) for w in fixed_weights(c)],
            "weights 1/(N*T): the gradient N times too small",
        ),
    ),
)
PATTERNS.add(
    "count-off", Pattern("weights 1/(T+k): the item count off by a constant k", _count_off)
)
PATTERNS.add(
    "scaled-by-constant",
    Pattern("weights c/T: the whole gradient c times the full batch's, c not 1", _constant),
)
PATTERNS.add(
    "dropped-or-repeated",
    Pattern("some micro-batches weighted 0 or 2x the others", _dropped_or_repeated),
)


def name_weights(fit: GradientFit, precision: float) -> tuple[str, str, list[str]]:
    """(pattern, one-line detail, other patterns also consistent) for a fit;
    reports show the fitted weights beside the detail."""
    outside = fit.reference_residual
    if not fit.residual <= 10 * precision and outside is not None and outside > 10 * precision:
        return (
            "unrecognised",
            f"the model's own loss is not built from the micro-batches' token losses S_i "
            f"(its full-batch gradient lies outside theirs too, residual {outside:.1e}; e.g. "
            "labels not shifted), so no weights can be read: compare the logged loss",
            [],
        )
    if not fit.residual <= 10 * precision:
        return (
            "unrecognised",
            f"the gradient is no weighted sum of this step's micro-batch gradients (fit "
            f"residual {fit.residual:.1e}): something changes with the split besides the "
            "weights, such as dropout or other randomness in the forward, a batch-dependent "
            "layer (BatchNorm), or an extra loss term computed per micro-batch (an MoE "
            "router's load-balancing loss, a z-loss)",
            [],
        )
    found = [
        (name, text)
        for name, pattern in PATTERNS.items()
        if (text := pattern.match(fit, precision))
    ]
    if not found:
        return "unrecognised", "the fitted weights match no known pattern", []
    (name, text), others = found[0], [name for name, _ in found[1:]]
    return name, text, others
