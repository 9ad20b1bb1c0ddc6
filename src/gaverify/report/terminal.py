"""All terminal output: tables, summaries, errors and the progress bar (rich).

Core modules return values; this module turns them into text. Results go to
stdout, errors and progress to stderr, so `gaverify run > out.txt` captures
the report alone.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gaverify.errors import GaverifyError
from gaverify.measure.results import Diagnosis, Row, RunResult, RunSet, VariantSummary
from gaverify.progress import Progress

# Rich falls back to 80 columns when stdout is not a terminal; reports piped
# to a file or a CI log get 100, so the trajectory table does not wrap.
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 100
out = Console(highlight=False, width=_PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one problem, one line

_STYLE = {"pass": "bold green", "fail": "bold red", "non-finite": "bold magenta"}


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def _verdict(v: str) -> str:
    return f"[{_STYLE[v]}]{v.upper()}[/]"


def _short(variant: str) -> str:
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
    table = Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    for header, right in _COLUMNS + ([("max\n|Δp|", True)] if trajectory else []):
        table.add_column(header, justify="right" if right else "left", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for i, row in enumerate(result.rows):
        if i and row.step != result.rows[i - 1].step:
            table.add_section()
        cells = [
            str(row.step),
            str(row.n),
            escape(_short(row.variant)),
            f"{row.loss_full:.5f}",
            f"{row.loss_ga:.5f}",
            _cell(row, "loss_rel", _sci(row.loss_rel)),
            f"{row.grad_norm_full:.4g}",
            f"{row.grad_norm_ga:.4g}",
            _cell(row, "grad_norm_rel", _sci(row.grad_norm_rel)),
            _cell(row, "grad_rel_l2", _sci(row.grad_rel_l2)),
        ]
        if trajectory:
            cells.append(_cell(row, "param_max_abs", _sci(row.param_max_abs)))
        table.add_row(*cells, _verdict(row.verdict))
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
                escape(_short(row.variant)) if first else "",
                str(row.n) if first else "",
                str(row.step) if first else "",
                escape(layer.name),
                _sci(layer.rel_l2),
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
        f"{label} {_sci(s.worst[k])} (tol {_sci(tolerance[k])})"
        for k, label in [("grad_rel_l2", "grad rel-L2"), ("loss_rel", "loss rel Δ")]
        if k in s.worst
    )
    lines = [
        f"{escape(s.variant)}: {_verdict(s.verdict)}, {mark} (expect {s.expected}): "
        f"{s.rows_failed}/{s.rows} rows over tolerance",
        f"  worst {figures}",
    ]
    return lines + ([f"  over tolerance: {escape(', '.join(over))}"] if over else [])


def calibration_line(result: RunResult) -> str:
    """How tolerance: auto set the tolerances (noise floor x factor)."""
    cal = result.calibration
    assert cal is not None
    parts = ", ".join(
        f"{k} {_sci(result.tolerance[k])} (noise {_sci(v)})" for k, v in cal.noise.items()
    )
    return f"tolerance: auto ({cal.factor:g} x the noise of {cal.method}): {parts}"


def diagnosis_line(d: Diagnosis) -> str:
    """One line: which pattern explains a failing (N, variant), and its evidence."""
    also = f" (also consistent: {', '.join(d.also)})" if d.also else ""
    weights = ""
    if d.fit:
        shown = ", ".join(f"{w:.4g}" for w in d.fit.weights)
        weights = f"; fitted weights x1/T {shown} for items {', '.join(map(str, d.fit.counts))}"
    return f"N={d.n}: {d.pattern} (step {d.step}): {d.detail}{weights}{also}"


def print_result(result: RunResult, console: Console = out) -> None:
    """The whole report of a run: header, notes, table, warnings, summaries."""
    sc = result.scenario
    console.print(
        f"[bold]{escape(sc['name'])}[/]: backend {sc['backend']}, mode {sc['mode']}, "
        f"B={sc['batch']['size']}, N in {sc['batch']['accumulation']}, {sc['steps']} steps, "
        f"{sc['dtype']} on {result.device}"
    )
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(result_table(result))
    if result.worst_layer_rows():
        console.print(layer_table(result))
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}")
    if result.calibration:
        console.print(f"[dim]{escape(calibration_line(result))}[/]")
    for summary in result.variants:
        for line in summary_lines(summary, result.rows, result.tolerance):
            console.print(line)
        for diagnosis in result.diagnoses:
            if diagnosis.variant == summary.variant:
                console.print(f"  {escape(diagnosis_line(diagnosis))}")
    if result.interrupted:
        console.print(
            f"[bold yellow]INTERRUPTED[/]: stopped by Ctrl-C after {len(result.rows)} rows "
            f"(exit {result.exit_code}) in {result.timings['total_s']:.1f} s; the groups above "
            "are judged on those rows only"
        )
        return
    outcome = "[bold green]OK[/]" if result.ok else "[bold red]FAILED[/]"
    console.print(
        f"{outcome}: {sum(s.met for s in result.variants)}/{len(result.variants)} variants "
        f"as expected (exit {result.exit_code}) in {result.timings['total_s']:.1f} s"
    )
    if isinstance(sc.get("expect"), str):  # a catalog scenario states the verdict it shows
        got = "pass" if result.ok else "fail"
        agrees = "as the scenario states" if got == sc["expect"] else "NOT as the scenario states"
        console.print(f"[dim]verdict {got}: {agrees} (expect: {sc['expect']})[/]")


def print_results(runset: RunSet, console: Console = out) -> None:
    """Every result of a run set, then the summary when there are several."""
    for result in runset.results:
        print_result(result, console)
    if len(runset.results) + len(runset.errors) > 1:
        print_summary(runset, console)


def print_text(text: str, console: Console = out) -> None:
    """Text as it is (a report on stdout): no markup, no wrapping."""
    console.print(text, end="", markup=False, highlight=False, soft_wrap=True)


def print_run_error(label: str, exc: GaverifyError) -> None:
    """A scenario of several that could not run (the others go on)."""
    print_error([f"{label}: could not run: {line}" for line in exc.lines()])


def print_summary(runset: RunSet, console: Console = out) -> None:
    """The closing table of a multi-scenario run: one line per scenario."""
    table = Table(title="summary", title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("scenario", "backend", "variants as expected", "failing groups", "time", "exit"):
        table.add_column(header)
    for r in runset.results:
        failing = [f"{g.variant} N={g.n}" for g in r.groups if not g.met]
        table.add_row(
            escape(r.scenario["name"]),
            r.scenario["backend"],
            f"{sum(s.met for s in r.variants)}/{len(r.variants)}",
            escape(", ".join(failing)) or "-",
            f"{r.timings['total_s']:.1f} s",
            f"[{_STYLE['pass' if r.ok else 'fail']}]{r.exit_code}[/]",
        )
    for e in runset.errors:
        table.add_row(escape(e.scenario), "-", "-", escape(e.message), "-", "[bold magenta]2[/]")
    console.print(table)
    ok = "[bold green]OK[/]" if runset.exit_code == 0 else "[bold red]FAILED[/]"
    if runset.interrupted:
        ok = "[bold yellow]INTERRUPTED[/]"
    console.print(
        f"{ok}: {sum(r.ok for r in runset.results)}/{len(runset.results) + len(runset.errors)} "
        f"scenarios as expected (exit {runset.exit_code})"
    )


def print_yaml(data: dict[str, Any], console: Console = out) -> None:
    """A resolved scenario as YAML (what `validate` shows)."""
    import yaml

    console.print(yaml.safe_dump(data, sort_keys=False), end="", markup=False)


def print_environment(info: dict[str, str], console: Console = out) -> None:
    """Environment lines ready to paste into a bug report."""
    console.print("Copy-and-paste the text below into your issue:\n")
    for key, value in info.items():
        console.print(f"- {key}: {value}", markup=False)


def print_listing(sections: dict[str, list[tuple[str, str]]], console: Console = out) -> None:
    """Named things (scenarios, variants, ...) with a one-line description each."""
    for title, entries in sections.items():
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column(style="bold cyan")
        table.add_column()
        for name, summary in entries:
            table.add_row(escape(name), escape(summary))
        console.print(table)
        console.print()


def print_error(lines: list[str]) -> None:
    """Each problem as one `error:` line on stderr."""
    for line in lines:
        err.print(f"[bold red]error:[/] {escape(line)}")


def print_notice(text: str) -> None:
    """A status line on stderr, kept out of the report on stdout."""
    err.print(escape(text))


class ProgressBar(Progress):
    """A progress bar on stderr, drawn only on a terminal, and only once the
    run has taken longer than a moment (quick runs stay uncluttered)."""

    DELAY_S = 0.5

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = None
        self._task = None
        self._total = 0
        self._done = 0
        self._t0 = time.monotonic()

    def start(self, total: int) -> None:
        self._total, self._done = total, 0
        if self._bar is None:
            self._t0 = time.monotonic()
        else:  # a second phase (calibration, then the run) reuses the bar
            self._bar.update(self._task, total=total, completed=0)

    def advance(self, label: str = "") -> None:
        self._done += 1
        if not self.enabled:
            return
        if self._bar is None and time.monotonic() - self._t0 > self.DELAY_S:
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(console=err, transient=True)
            self._bar.start()
            self._task = self._bar.add_task("verifying", total=self._total)
        if self._bar is not None:
            self._bar.update(self._task, completed=self._done, description=escape(label))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def printing(self, show: Callable[..., None]) -> Callable[..., None]:
        """`show`, run with the bar taken down first (it would garble the text)."""

        def shown(*args: Any) -> None:
            self.close()
            show(*args)

        return shown
