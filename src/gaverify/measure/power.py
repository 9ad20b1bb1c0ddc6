"""Power: what a run could have detected at its precision and tolerances.

A loop whose normalisation weights are all off by a factor 1 + e (a wrong
divisor, a count off by a fraction) scales the accumulated gradient and loss
by exactly 1 + e: grad_norm_rel, grad_rel_l2 and loss_rel all read |e|. So a
run fails for any |e| above its tolerances, and a PASS rules that out; the
figures come from the tolerances alone, not from the data.

Mean of means is not a common factor: micro-batch i gets weight T/(N T_i),
off by e_i = T/(N T_i) - 1. When counts differ by less than the detectable
error, the bug may hide under the tolerance: `hidden_warnings` says so, as
the equal-counts warning does when they do not differ at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gaverify.measure.results import Measurement, Power

GRADIENT_METRICS = ("grad_norm_rel", "grad_rel_l2")


def power(tolerances: Iterable[dict[str, float]]) -> Power:
    """The smallest common-factor weight error every variant's tolerances
    detect: each variant fails above the smallest of its gradient (or loss)
    tolerances; a PASS of the run rules out what the loosest variant detects."""
    tolerances = list(tolerances)
    gradient = max(min(t[m] for m in GRADIENT_METRICS) for t in tolerances)
    return Power(gradient=gradient, loss=max(t["loss_rel"] for t in tolerances))


def weight_spread(counts: Sequence[int]) -> float:
    """max_i |T / (N T_i) - 1|: how far mean of means moves any micro-batch's
    weight from the full batch's (0 when every count is equal)."""
    n, total = len(counts), sum(counts)
    if not all(counts):
        return float("inf")  # a micro-batch with no items: its mean is undefined
    return max(abs(total / (n * c) - 1.0) for c in counts)


def hidden_warnings(measurements: Sequence[Measurement], detectable: Power) -> list[str]:
    """Per N > 1 whose micro-batch counts differ in some step, but never by
    more than the detectable weight error: mean of means may pass there."""
    spread: dict[int, float] = {}
    for m in measurements:
        if m.n > 1:
            spread[m.n] = max(spread.get(m.n, 0.0), weight_spread(m.items_micro))
    limit = detectable.gradient
    close = sorted(n for n, s in spread.items() if 0 < s <= limit)
    return [
        f"N={n}: the micro-batches' counts differ so little that mean of means moves no weight "
        f"by more than {spread[n]:.2%}, while this run detects weight errors above {limit:.2%} "
        "in the gradient: the mean-of-means bug may hide in the noise here; use data with "
        "more varied lengths, or a finer precision"
        for n in close
    ]


def power_line(detectable: Power) -> str:
    """One sentence for the reports."""
    return (
        f"power: normalisation weights off by a common factor above "
        f"{detectable.gradient:.2g} ({_percent(detectable.gradient)}) in the gradient, or "
        f"{detectable.loss:.2g} ({_percent(detectable.loss)}) in the logged loss, would have failed"
    )


def _percent(x: float) -> str:
    return f"{x * 100:.2g} %"
