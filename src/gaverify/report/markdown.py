"""A RunResult as a Markdown bug report, pasteable into a GitHub issue.

It reads on its own: what was asked, the verdict per (N, variant), the
diagnosis, the per-step numbers, the tolerances and where they came from,
the exact command and the resolved scenario to reproduce it, and the
environment (what `gaverify env` prints). Rendered from the result alone,
so `gaverify report result.json --format markdown` gives the same text.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from gaverify.measure.power import power_line
from gaverify.measure.results import METRICS, RunResult
from gaverify.report.failures import extra_line
from gaverify.report.table import settings_text, variant_tolerance_line

_COLUMNS = ["step", "N", "variant", "loss full", "loss GA", "loss rel Δ", "‖g‖ full", "‖g‖ GA",
            "grad rel-L2", "verdict"]  # fmt: skip


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def _cell(text: str, over: bool) -> str:
    return f"**{text}**" if over else text


def _measurements(result: RunResult) -> list[str]:
    trajectory = result.scenario.get("mode") == "trajectory"
    extras = any(r.extra_weight is not None for r in result.rows)
    header = _COLUMNS[:-1] + (["max \\|Δp\\|"] if trajectory else [])
    header += (["extra weight"] if extras else []) + ["verdict"]
    rows = []
    for r in result.rows:
        cells = [
            str(r.step),
            str(r.n),
            f"`{r.variant}`",
            f"{r.loss_full:.6g}",
            f"{r.loss_ga:.6g}",
            _cell(_sci(r.loss_rel), "loss_rel" in r.exceeded),
            f"{r.grad_norm_full:.4g}",
            f"{r.grad_norm_ga:.4g}",
            _cell(_sci(r.grad_rel_l2), "grad_rel_l2" in r.exceeded),
        ]
        if trajectory:
            cells.append(_cell(_sci(r.param_max_abs), "param_max_abs" in r.exceeded))
        if extras:
            weight = "-" if r.extra_weight is None else f"{r.extra_weight:.4g}"
            cells.append(_cell(weight, "extra_weight_rel" in r.exceeded))
        rows.append([*cells, r.verdict.upper()])
    return _table(header, rows)


def _verdicts(result: RunResult) -> list[str]:
    rows = [
        [
            f"`{g.variant}`",
            str(g.n),
            g.verdict.upper(),
            g.expected,
            "yes" if g.met else "**NO**",
            f"{g.rows_failed}/{g.rows}",
            _sci(g.worst.get("grad_rel_l2")),
            _sci(g.worst.get("loss_rel")),
        ]
        for g in result.groups
    ]
    header = ["variant", "N", "verdict", "expected", "as expected", "rows over tol.",
              "worst grad rel-L2", "worst loss rel Δ"]  # fmt: skip
    return _table(header, rows)


def _diagnoses(result: RunResult) -> list[str]:
    if not result.diagnoses:
        return ["No variant diverged, so there is nothing to diagnose."]
    lines = []
    for d in result.diagnoses:
        line = f"- **`{d.variant}`, N={d.n}**: `{d.pattern}` (step {d.step}): {d.detail}"
        if d.fit:
            weights = ", ".join(f"{w:.4g}" for w in d.fit.weights)
            counts = ", ".join(map(str, d.fit.counts))
            line += f". Fitted weights ×1/T: {weights} for micro-batches of {counts} items"
        if d.also:
            line += f" (also consistent: {', '.join(d.also)})"
        lines.append(line)
    for variant in dict.fromkeys(f.variant for f in result.extra_fits):
        lines.append(f"- **`{variant}`**: {extra_line(result, variant)}")
    return lines


def _layers(result: RunResult) -> list[str]:
    rows = [
        [
            f"`{row.variant}`",
            str(row.n),
            str(row.step),
            f"`{layer.name}`",
            _sci(layer.rel_l2),
            f"{layer.norm_full:.3g}",
            f"{layer.norm_ga:.3g}",
        ]  # fmt: skip
        for row in result.worst_layer_rows()
        for layer in row.layers or []
    ]
    header = ["variant", "N", "step", "parameter", "rel-L2", "‖g‖ full", "‖g‖ GA"]
    return [] if not rows else ["", "## Layers diverging most", "", *_table(header, rows)]


def _tolerances(result: RunResult) -> list[str]:
    cal = result.calibration
    header = ["metric", "meaning", "tolerance"] + (["measured noise"] if cal else [])
    rows = [
        [f"`{m}`", METRICS[m].replace("|", "\\|"), _sci(result.tolerance.get(m))]
        + ([_sci(cal.noise.get(m))] if cal else [])
        for m in METRICS
        if m in result.tolerance
    ]
    intro = (
        f"`tolerance: auto`: {cal.factor:g} × the largest divergence of {cal.method}."
        if cal
        else "Explicit or by the run's precision (see docs/tolerances.md)."
    )
    others = [f"- {variant_tolerance_line(v, t)}" for v, t in result.variant_tolerance.items()]
    power = [power_line(result.power) + "."] if result.power else []
    return [intro, "", *_table(header, rows), *(["", *others] if others else []), "", *power]


def _reproduce(result: RunResult) -> list[str]:
    sc = result.scenario
    lines = [
        f"With gaverify {result.gaverify_version}, save the resolved scenario below as "
        "`scenario.yaml` and run:",
        "",
        "```sh",
        "gaverify run scenario.yaml",
        "```",
    ]
    if result.command:
        lines += ["", f"Original command: `{result.command}`"]
    if sc.get("data", {}).get("source") != "synthetic":
        lines += ["", f"It reads `{sc['data'].get('path')}` relative to the scenario file."]
    code = [n for n in result.notes if n.startswith("user code ran:")]
    lines += [f"- {n}" for n in code]
    dumped = yaml.safe_dump(sc, sort_keys=False).rstrip()
    return [*lines, "", "```yaml", dumped, "```"]


def markdown_report(result: RunResult) -> str:
    """The whole bug report for one result."""
    sc = result.scenario
    outcome = "OK" if result.ok else "FAILED"
    title = f"# gaverify: `{sc['name']}` {outcome} (exit {result.exit_code})"
    question = (
        f"Is training with gradient accumulation (N in {sc['batch']['accumulation']}, "
        f"micro-batches of B/N) equivalent to the full batch (B={sc['batch']['size']})? Backend "
        f"`{sc['backend']}`, mode `{sc['mode']}`, {sc['steps']} steps, {settings_text(result)} on "
        f"{result.device}, {result.parameters:,} parameters."
    )
    parts = [title, "", question, "", "## Verdict", "", *_verdicts(result)]
    parts += ["", "## Diagnosis", "", *_diagnoses(result)]
    parts += ["", "## Per step", "", *_measurements(result), *_layers(result)]
    if result.warnings or result.notes:
        parts += ["", "## Notes", ""]
        parts += [f"- **warning**: {w}" for w in result.warnings] + [f"- {n}" for n in result.notes]
    parts += ["", "## Tolerances", "", *_tolerances(result)]
    parts += ["", "## Reproduce", "", *_reproduce(result)]
    parts += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in result.environment.items()]
    return "\n".join(parts) + "\n"


def markdown_reports(results: Sequence[RunResult]) -> str:
    """One report, or several separated by rules."""
    return "\n---\n\n".join(markdown_report(r) for r in results)
