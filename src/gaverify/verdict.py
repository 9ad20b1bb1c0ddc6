"""Judging measurements against tolerances and the scenario's expectations.

A row passes when every metric it has is within tolerance, and is
`non-finite` when any is NaN or infinite (never a pass). A variant's verdict
is its worst row; the run succeeds (exit 0) when every variant's verdict is
the one the scenario expects.
"""

from __future__ import annotations

import math
from collections import defaultdict

from gaverify.errors import EXIT_EXPECTATION_FAILED, EXIT_OK
from gaverify.results import Measurement, Row, VariantSummary
from gaverify.scenario import Scenario, Tolerance

_SEVERITY = {"pass": 0, "fail": 1, "non-finite": 2}


def judge_row(m: Measurement, tolerance: Tolerance) -> Row:
    """The verdict of one measurement."""
    values = m.metric_values()
    if not all(math.isfinite(v) for v in [m.loss_full, m.loss_ga, *values.values()]):
        return Row(**m.model_dump(), verdict="non-finite")
    exceeded = [k for k, v in values.items() if v > getattr(tolerance, k)]
    return Row(**m.model_dump(), verdict="fail" if exceeded else "pass", exceeded=exceeded)


def summarise(rows: list[Row], scenario: Scenario) -> list[VariantSummary]:
    """One summary per variant, in the scenario's order."""
    by_variant: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_variant[row.variant].append(row)
    summaries = []
    for variant in scenario.variants:
        mine = by_variant[variant]
        verdict = max((r.verdict for r in mine), key=_SEVERITY.__getitem__, default="pass")
        worst: dict[str, float] = {}
        for row in mine:
            for k, v in row.metric_values().items():
                # NaN must win, so it is never hidden behind a finite maximum.
                worst[k] = v if math.isnan(v) or k not in worst else max(worst[k], v)
        equal = all(len(set(r.items_micro)) <= 1 for r in mine)
        expected = scenario.expected(variant, equal_counts=equal)
        summaries.append(
            VariantSummary(
                variant=variant,
                verdict=verdict,
                expected=expected,
                met=verdict == expected,
                rows=len(mine),
                rows_failed=sum(r.verdict != "pass" for r in mine),
                worst=worst,
            )
        )
    return summaries


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
        "use variable-length data to detect the difference"
    ]


def exit_code(summaries: list[VariantSummary]) -> int:
    """0 when every variant met its expectation, else 1."""
    return EXIT_OK if all(s.met for s in summaries) else EXIT_EXPECTATION_FAILED
