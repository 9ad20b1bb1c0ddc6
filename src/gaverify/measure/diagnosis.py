"""Naming how a diverging variant got accumulation wrong.

Each failing (N, variant) gets one Diagnosis. Where its gradient diverged,
the backend fitted it as sum_i c_i g_i over the micro-batch gradients
(fit.py), and the weights are named by patterns.py. Then what one fit cannot
tell is read across the run: a factor that is the same at every N is a
constant (not N, not a count), and with dropout on any divergence is
dropout's. Rows with nothing to fit get their own names (logged-loss,
non-finite). No match is "unrecognised", with the fitted weights shown:
never a guess. Pure Python, no torch: a saved result can be re-diagnosed
anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gaverify.accumulation.extras import CORRECT
from gaverify.measure.patterns import PRECISION, close, name_weights, uniform
from gaverify.measure.results import Diagnosis, ExtraFit, GradientFit, Row

# A diverging gradient is diagnosed only from a fit; a backend that fits none
# (the Trainer on several processes) leaves its rows undiagnosed.
GRADIENT_METRICS = frozenset({"grad_norm_rel", "grad_rel_l2", "cosine_distance"})


def _ratio(x: float, n: int) -> str:
    for label, value in ((f"x{n} (N)", n), (f"/{n} (1/N)", 1 / n)):
        if math.isclose(x, value, rel_tol=1e-3):
            return label
    return f"x{x:.4g}"


def diagnose(
    rows: Sequence[Row],
    fits: Sequence[GradientFit],
    precision_name: str,
    dropout: bool = False,
    extra_fits: Sequence[ExtraFit] = (),
) -> list[Diagnosis]:
    """One Diagnosis per (N, variant) with a failing row, in row order
    (none for a diverging gradient its backend did not fit). With dropout on,
    a fitted divergence is named as dropout's: its masks differ between runs.
    Extra loss terms (MoE router losses) weighted wrongly are named by their
    fitted weight, after the token part's diagnosis when that fails too.
    `precision_name`: the run's tolerance profile (its dtype, or its mixed
    precision), which sets how closely weights must match a pattern."""
    precision = PRECISION[precision_name]
    fitted = {(f.n, f.variant): f for f in fits}
    extras = {(f.n, f.variant): f for f in extra_fits}
    out: dict[tuple[int, str], Diagnosis] = {}
    for row in rows:
        key = (row.n, row.variant)
        if row.verdict == "pass" or key in out:
            continue
        fit = fitted.get(key)
        if "extra_weight_rel" in row.exceeded and key in extras:
            if row.exceeded == ["extra_weight_rel"]:  # the token part is right
                out[key] = _extra_diagnosis(extras[key], row.n)
                continue
            token_only = [m for m in row.exceeded if m != "extra_weight_rel"]
            row = row.model_copy(update={"exceeded": token_only})
        if fit is not None:
            pattern, detail, also = name_weights(fit, precision)
            out[key] = Diagnosis(
                n=row.n, variant=row.variant, step=fit.step, pattern=pattern,
                detail=detail, also=also, fit=fit,
            )  # fmt: skip
        elif row.verdict == "non-finite":
            detail = f"step {row.step}: a loss or gradient is NaN or infinite; nothing to fit"
            out[key] = Diagnosis(
                n=row.n, variant=row.variant, step=row.step, pattern="non-finite", detail=detail
            )
        elif row.exceeded == ["loss_rel"]:
            ratio = row.loss_ga / row.loss_full if row.loss_full else math.inf
            detail = (
                f"step {row.step}: the gradient matches the full batch, but the logged loss is "
                f"{_ratio(ratio, row.n)} the full batch's"
            )
            out[key] = Diagnosis(
                n=row.n, variant=row.variant, step=row.step, pattern="logged-loss", detail=detail
            )
        elif not set(row.exceeded) & GRADIENT_METRICS:
            detail = (
                f"step {row.step}: over tolerance on {', '.join(row.exceeded)} while the "
                "gradient is within it; no weights to fit"
            )
            out[key] = Diagnosis(
                n=row.n, variant=row.variant, step=row.step, pattern="unrecognised", detail=detail
            )
    for (n, variant), extra in extras.items():  # wrong extra terms beside a failing token part
        if extra.pattern in CORRECT or not any(
            r.n == n and r.variant == variant and "extra_weight_rel" in r.exceeded for r in rows
        ):
            continue
        d = out.get((n, variant))
        if d is None:  # the token part has no fit to name (several processes)
            out[(n, variant)] = _extra_diagnosis(extra, n, token_fails=True)
        elif not d.pattern.startswith("extra-"):
            d.detail += f"; and the extra loss terms ({extra.terms}): {extra.detail}"
    found = list(out.values())
    _constant_across_n(found, precision)
    if dropout:
        for d in found:
            if d.fit is not None:
                d.detail = f"model.dropout is on: {_DROPOUT[d.pattern == 'full-batch']}" + (
                    "" if d.pattern == "full-batch" else f" (the fit alone says {d.pattern})"
                )
                d.also, d.pattern = [], "dropout"
    return found


def _extra_diagnosis(extra: ExtraFit, n: int, token_fails: bool = False) -> Diagnosis:
    """Extra loss terms (MoE router losses) weighted wrongly, in words a
    maintainer can paste: the weight, what it means, each micro-batch's."""
    weights = ", ".join(f"{w:.4g}" for w in extra.weights)
    detail = (
        f"the extra loss terms ({extra.terms}) weigh {extra.weight:.4g}x their full-batch "
        f"weight in the accumulated gradient: {extra.detail}; per micro-batch {weights} "
        f"(a mean: {1 / (n * extra.ranks):.4g} each)"
    )
    if token_fails:
        detail += "; the token part diverges too (not fitted on several processes)"
    return Diagnosis(n=n, variant=extra.variant, step=extra.step, pattern=extra.pattern,
                     detail=detail)  # fmt: skip


_DROPOUT = {
    True: "the full batch and its micro-batches draw different dropout masks, so they cannot "
    "agree; the fitted weights are the full batch's (1/T), so the accumulation itself looks "
    "right: turn dropout off to judge it",
    False: "the full batch and its micro-batches draw different dropout masks, so they cannot "
    "agree; turn dropout off to judge the accumulation",
}

# names a uniform factor gets at one N that a constant at every N overrides
# (a more specific one, such as unscaled-by-W's 1/W, stands)
_N_SCALES = frozenset({"scaled-by-N", "scaled-by-1/N", "scaled-by-constant"})


def _constant_across_n(found: list[Diagnosis], precision: float) -> None:
    """A factor that is the same at every N is a constant, not a count or N:
    renamed scaled-by-constant (with two or more N to tell them apart)."""
    by_variant: dict[str, list[Diagnosis]] = {}
    for d in found:
        if d.fit is not None and d.pattern != "unrecognised":
            by_variant.setdefault(d.variant, []).append(d)
    for ds in by_variant.values():
        factors = [uniform(d.fit, precision) for d in ds]
        named = all(
            d.pattern in _N_SCALES and "scaled-by-constant" in (d.pattern, *d.also) for d in ds
        )
        if len(ds) < 2 or not named or any(c is None for c in factors):
            continue
        c = factors[0]
        if close(factors, [c] * len(factors), precision) and not close([c], [1.0], precision):
            for d in ds:
                d.also = [p for p in (d.pattern, *d.also) if p != "scaled-by-constant"]
                d.pattern = "scaled-by-constant"
                d.detail = (
                    f"weights {c:.4g}/T at every N ({', '.join(str(x.n) for x in ds)}): the "
                    f"loss is {c:.4g} times the full batch's whatever N, a constant factor"
                )
