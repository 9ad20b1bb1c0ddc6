"""Plain-text explanations of what missed its expectation.

One wording for every place a failure is read outside the terminal table: a
JUnit <failure> (one per N x variant) and the AssertionError of
`gaverify.assert_equivalent` and the pytest plugin (one per result). Each
names the verdict against the expectation, the worst metrics against their
tolerances, the steps over tolerance and the diagnosis.
"""

from __future__ import annotations

from gaverify.measure.results import GroupSummary, RunResult


def worst_line(worst: dict[str, float], tolerance: dict[str, float]) -> str:
    """'metric value (tol t), ...' for the worst value of each metric."""
    return ", ".join(
        f"{metric} {value:.1e} (tol {tolerance.get(metric, float('nan')):.1e})"
        for metric, value in worst.items()
    )


def group_failure(result: RunResult, group: GroupSummary) -> tuple[str, list[str]]:
    """(headline, detail lines) for one (N, variant) that missed its expectation."""
    headline = (
        f"N={group.n} {group.variant}: {group.verdict}, expected {group.expected}; "
        f"{group.rows_failed}/{group.rows} rows over tolerance"
    )
    rows = [
        f"step {r.step}: {r.verdict}" + (f" ({', '.join(r.exceeded)})" if r.exceeded else "")
        for r in result.rows
        if (r.n, r.variant) == (group.n, group.variant) and r.verdict != "pass"
    ]
    diagnoses = [
        f"diagnosis: {d.pattern} (step {d.step}): {d.detail}"
        for d in result.diagnoses
        if (d.n, d.variant) == (group.n, group.variant)
    ]
    tolerance = result.tolerance_of(group.variant)
    return headline, [f"worst: {worst_line(group.worst, tolerance)}", *rows, *diagnoses]


def extra_line(result: RunResult, variant: str) -> str | None:
    """The weight fitted to a variant's extra loss terms (MoE router losses)
    at each N, in units of their full-batch weight; None without any."""
    fits = [f for f in result.extra_fits if f.variant == variant]
    if not fits:
        return None
    weights = ", ".join(f"N={f.n} {f.weight:.4g}" for f in fits)
    return (
        f"extra loss terms ({fits[0].terms}) fitted weight {weights} "
        "(1: a mean over micro-batches, as on the full batch; N: summed)"
    )


def explain(result: RunResult) -> str:
    """Why a result is not as its scenario expects, variant by variant (its
    worst metrics over every N, then each N's diagnosis); '' when it is."""
    name = result.scenario.get("name", "default")
    missed = [v for v in result.variants if not v.met]
    if not missed:
        return ""
    lines = [f"gaverify {name}: {len(missed)}/{len(result.variants)} variants not as expected"]
    for summary in missed:
        lines.append(
            f"{summary.variant}: {summary.verdict.upper()}, expected {summary.expected} "
            f"({summary.rows_failed}/{summary.rows} rows over tolerance)"
        )
        lines.append(f"  worst: {worst_line(summary.worst, result.tolerance_of(summary.variant))}")
        if summary.verdict == "pass":
            lines.append("  it passed where a failure was expected: the scenario cannot tell")
        lines += [
            f"  N={d.n}: {d.pattern} (step {d.step}): {d.detail}"
            for d in result.diagnoses
            if d.variant == summary.variant
        ]
        if extra := extra_line(result, summary.variant):
            lines.append(f"  {extra}")
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
