"""Judging measurements against tolerances and the scenario's expectations.

A row passes when every metric it has is within tolerance, and is
`non-finite` when any is NaN or infinite (never a pass). A variant's verdict
(and each (N, variant) group's) is its worst row; the run succeeds (exit 0)
when every group's verdict is the one the scenario expects.
"""

from __future__ import annotations

import math
from collections import defaultdict

from gaverify.errors import EXIT_EXPECTATION_FAILED, EXIT_OK
from gaverify.measure.compare import GradComparison
from gaverify.measure.results import GroupSummary, Measurement, Row, VariantSummary
from gaverify.spec.schema import Scenario, Tolerance

_SEVERITY = {"pass": 0, "fail": 1, "non-finite": 2}


def judge_row(m: Measurement, tolerance: Tolerance) -> Row:
    """The verdict of one measurement."""
    values = m.metric_values()
    if not all(math.isfinite(v) for v in [m.loss_full, m.loss_ga, *values.values()]):
        return Row(**m.model_dump(), verdict="non-finite")
    exceeded = [k for k, v in values.items() if v > getattr(tolerance, k)]
    return Row(**m.model_dump(), verdict="fail" if exceeded else "pass", exceeded=exceeded)


def gradient_diverges(comparison: GradComparison, tolerance: Tolerance) -> bool:
    """Whether a gradient is finitely over tolerance on a gradient metric
    (what makes a backend fit it for the diagnosis)."""
    values = {
        "grad_norm_rel": abs(comparison.norm_got - comparison.norm_ref) / comparison.norm_ref
        if comparison.norm_ref
        else math.inf,
        "grad_rel_l2": comparison.rel_l2,
        "cosine_distance": 1.0 - comparison.cosine,
    }
    finite = all(math.isfinite(v) for v in values.values())
    return finite and any(v > getattr(tolerance, k) for k, v in values.items())


def _group(rows: list[Row], scenario: Scenario, n: int | None, variant: str) -> GroupSummary:
    verdict = max((r.verdict for r in rows), key=_SEVERITY.__getitem__, default="pass")
    worst: dict[str, float] = {}
    for row in rows:
        for k, v in row.metric_values().items():
            # NaN must win, so it is never hidden behind a finite maximum.
            worst[k] = v if math.isnan(v) or k not in worst else max(worst[k], v)
    equal = all(len(set(r.items_micro)) <= 1 for r in rows)
    expected = scenario.expected(variant, equal_counts=equal)
    return GroupSummary(
        n=n,
        variant=variant,
        verdict=verdict,
        expected=expected,
        met=verdict == expected,
        rows=len(rows),
        rows_failed=sum(r.verdict != "pass" for r in rows),
        worst=worst,
    )


def summarise(
    rows: list[Row], scenario: Scenario
) -> tuple[list[GroupSummary], list[VariantSummary]]:
    """Per (N, variant) groups, then one summary per variant (in the
    scenario's order): a variant meets its expectation when every N does,
    so a bug that shows at N=4 but hides at N=2 is still reported. A group
    with no rows (a run stopped by Ctrl-C) is left out, never a pass."""
    by_key: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for row in rows:
        by_key[(row.n, row.variant)].append(row)
    groups = [
        _group(by_key[(n, v)], scenario, n, v)
        for n in scenario.batch.accumulation
        for v in scenario.variants
        if by_key[(n, v)]
    ]
    summaries = []
    for variant in scenario.variants:
        mine = [g for g in groups if g.variant == variant]
        if not mine:
            continue
        whole = _group([r for r in rows if r.variant == variant], scenario, None, variant)
        met = all(g.met for g in mine)
        summaries.append(VariantSummary(**whole.model_dump(exclude={"met"}), met=met))
    return groups, summaries


def discrimination_warnings(measurements: list[Measurement]) -> list[str]:
    """Warn for each N whose micro-batches always hold equal item counts: there
    naive and fixed normalisation agree, so the scenario cannot tell them apart."""
    equal: dict[int, bool] = {}
    for m in measurements:
        equal[m.n] = equal.get(m.n, True) and len(set(m.items_micro)) <= 1
    blind = sorted(n for n, same in equal.items() if same and n > 1)
    if not blind:
        return []
    ns = ", ".join(f"N={n}" for n in blind)
    return [
        f"{ns}: every micro-batch holds the same number of counted items in every step, "
        "so mean-of-means (naive) and num_items_in_batch (fixed) give identical results; "
        "counts that differ between micro-batches (variable-length data, where items are "
        "tokens) are needed to detect the difference"
    ]


def exit_code(groups: list[GroupSummary]) -> int:
    """0 when every (N, variant) group met its expectation, else 1."""
    return EXIT_OK if all(g.met for g in groups) else EXIT_EXPECTATION_FAILED
