"""What a result looks like in a terminal: the per-step table and the summary lines.

Builds rich Tables and one-line strings from a typed RunResult; printing
them is terminal.py's job, so the layout is tested without a console.
"""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from gaverify.measure.results import Diagnosis, Row, RunResult, VariantSummary

STYLE = {"pass": "bold green", "fail": "bold red", "non-finite": "bold magenta"}


def sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def verdict_markup(v: str) -> str:
    return f"[{STYLE[v]}]{v.upper()}[/]"


def short_name(variant: str) -> str:
    """A user loss `module:function` is shown by its function name in the
    table (to keep it narrow); summaries and JSON carry the full path."""
    return variant.rpartition(":")[2]


def _cell(row: Row, metric: str, text: str) -> str:
    return f"[red]{text}[/]" if metric in row.exceeded else text


# (header, right-aligned) per column; two-line headers keep the table narrow
# enough for an 80-column terminal.
_COLUMNS = [
    ("step", True),
    ("N", True),
    ("variant", False),
    ("loss\nfull", True),
    ("loss\nGA", True),
    ("loss\nrel Δ", True),
    ("|g|\nfull", True),
    ("|g|\nGA", True),
    ("|g|\nrel Δ", True),
    ("grad\nrel-L2", True),
]


def result_table(result: RunResult) -> Table:
    """The per-step table: one row per step x N x variant. Cells over their
    tolerance are red; cosine is judged too but lives in the JSON."""
    trajectory = result.scenario["mode"] == "trajectory"
    extras = any(r.extra_weight is not None for r in result.rows)
    table = Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    optional = [("max\n|Δp|", True)] if trajectory else []
    for header, right in _COLUMNS + optional + ([("extra\nweight", True)] if extras else []):
        table.add_column(header, justify="right" if right else "left", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for i, row in enumerate(result.rows):
        if i and row.step != result.rows[i - 1].step:
            table.add_section()
        cells = [
            str(row.step),
            str(row.n),
            escape(short_name(row.variant)),
            f"{row.loss_full:.5f}",
            f"{row.loss_ga:.5f}",
            _cell(row, "loss_rel", sci(row.loss_rel)),
            f"{row.grad_norm_full:.4g}",
            f"{row.grad_norm_ga:.4g}",
            _cell(row, "grad_norm_rel", sci(row.grad_norm_rel)),
            _cell(row, "grad_rel_l2", sci(row.grad_rel_l2)),
        ]
        if trajectory:
            cells.append(_cell(row, "param_max_abs", sci(row.param_max_abs)))
        if extras:
            weight = "-" if row.extra_weight is None else f"{row.extra_weight:.4g}"
            cells.append(_cell(row, "extra_weight_rel", weight))
        table.add_row(*cells, verdict_markup(row.verdict))
    return table


def layer_table(result: RunResult) -> Table:
    """The layer view: the parameters whose gradients diverge most, at each
    (N, variant)'s worst step."""
    table = Table(title="layers diverging most (worst step of each N x variant)",
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))  # fmt: skip
    for header in ("variant", "N", "step", "parameter", "rel-L2", "|g| full", "|g| GA"):
        table.add_column(header, no_wrap=header != "parameter")
    for row in result.worst_layer_rows():
        for i, layer in enumerate(row.layers or []):
            first = i == 0
            table.add_row(
                escape(short_name(row.variant)) if first else "",
                str(row.n) if first else "",
                str(row.step) if first else "",
                escape(layer.name),
                sci(layer.rel_l2),
                f"{layer.norm_full:.3g}",
                f"{layer.norm_ga:.3g}",
            )
        table.add_section()
    return table


def summary_lines(s: VariantSummary, rows: list[Row], tolerance: dict[str, float]) -> list[str]:
    """A few lines per variant: verdict against expectation, the headline
    figures (worst gradient and loss divergence), the metrics over tolerance."""
    mark = "as expected" if s.met else "[bold red]NOT as expected[/]"
    over = sorted({m for r in rows if r.variant == s.variant for m in r.exceeded})
    figures = ", ".join(
        f"{label} {sci(s.worst[k])} (tol {sci(tolerance[k])})"
        for k, label in [("grad_rel_l2", "grad rel-L2"), ("loss_rel", "loss rel Δ")]
        if k in s.worst
    )
    lines = [
        f"{escape(s.variant)}: {verdict_markup(s.verdict)}, {mark} (expect {s.expected}): "
        f"{s.rows_failed}/{s.rows} rows over tolerance",
        f"  worst {figures}",
    ]
    return lines + ([f"  over tolerance: {escape(', '.join(over))}"] if over else [])


def settings_text(result: RunResult) -> str:
    """The numeric settings in force, as the report header names them:
    "float32, bf16-mixed, gradient checkpointing, compile aot_eager"."""
    settings = result.settings
    parts = [result.scenario["dtype"]]
    if settings.get("precision", "32") != "32":
        parts.append(settings["precision"])
    if settings.get("gradient_checkpointing"):
        parts.append("gradient checkpointing")
    if settings.get("compile"):
        parts.append(f"compile {settings['compile']}")
    return ", ".join(parts)


def variant_tolerance_line(variant: str, tolerance: dict[str, float]) -> str:
    """Why a variant has tolerances of its own, and the ones it differs by."""
    parts = ", ".join(f"{k} {sci(tolerance[k])}" for k in ("loss_rel", "grad_rel_l2"))
    return (
        f"{variant}: judged on a loss transformers computes in float32 (logits.float()), "
        f"so by float32's loss tolerances: {parts}"
    )


def calibration_line(result: RunResult) -> str:
    """How tolerance: auto set the tolerances (noise floor x factor)."""
    cal = result.calibration
    assert cal is not None
    parts = ", ".join(
        f"{k} {sci(result.tolerance[k])} (noise {sci(v)})" for k, v in cal.noise.items()
    )
    return f"tolerance: auto ({cal.factor:g} x the noise of {cal.method}): {parts}"


def diagnosis_line(d: Diagnosis) -> str:
    """One line: which pattern explains a failing (N, variant), and its evidence."""
    also = f" (also consistent: {', '.join(d.also)})" if d.also else ""
    weights = ""
    if d.fit:
        shown = ", ".join(f"{w:.4g}" for w in d.fit.weights)
        unit = "x1/T" if d.fit.scale == 1.0 else f"x1/T of its own loss (S/T x{d.fit.scale:.4g})"
        weights = f"; fitted weights {unit} {shown} for items {', '.join(map(str, d.fit.counts))}"
    return f"N={d.n}: {d.pattern} (step {d.step}): {d.detail}{weights}{also}"
