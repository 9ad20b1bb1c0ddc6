"""All terminal output: results, summaries, errors and the progress bar (rich).

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

from gaverify.errors import GaverifyError, stop_name
from gaverify.measure.census import Census
from gaverify.measure.power import power_line
from gaverify.measure.results import RunResult, RunSet
from gaverify.progress import Progress
from gaverify.report.census import census_table
from gaverify.report.census import summary_lines as census_summary
from gaverify.report.failures import extra_line
from gaverify.report.table import (
    STYLE,
    calibration_line,
    diagnosis_line,
    layer_table,
    result_table,
    settings_text,
    summary_lines,
    variant_tolerance_line,
)

# Rich falls back to 80 columns when stdout is not a terminal; reports piped
# to a file or a CI log get 100, so the trajectory table does not wrap.
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 100
out = Console(highlight=False, width=_PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one problem, one line


def print_result(result: RunResult, console: Console = out, brief: bool = False) -> None:
    """The whole report of a run: header, notes, table, warnings, summaries
    (`brief`, for -q: the summaries and the final line only)."""
    sc = result.scenario
    if not brief:
        _print_details(result, console)
    for summary in result.variants:
        for line in summary_lines(summary, result.rows, result.tolerance_of(summary.variant)):
            console.print(line)
        if extra := extra_line(result, summary.variant):
            console.print(f"  {escape(extra)}")
        for diagnosis in result.diagnoses:
            if diagnosis.variant == summary.variant:
                console.print(f"  {escape(diagnosis_line(diagnosis))}")
    if result.interrupted:
        console.print(
            f"[bold yellow]INTERRUPTED[/]: stopped by {stop_name(result.exit_code)} after "
            f"{len(result.rows)} rows "
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


def _print_details(result: RunResult, console: Console) -> None:
    """What -q leaves out: header, notes, the per-step table, warnings."""
    sc = result.scenario
    console.print(
        f"[bold]{escape(sc['name'])}[/]: backend {sc['backend']}, mode {sc['mode']}, "
        f"B={sc['batch']['size']}, N in {sc['batch']['accumulation']}, {sc['steps']} steps, "
        f"{escape(settings_text(result))} on {result.device}"
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
    for variant, tolerance in result.variant_tolerance.items():
        console.print(f"[dim]{escape(variant_tolerance_line(variant, tolerance))}[/]")
    if result.power:
        console.print(f"[dim]{escape(power_line(result.power))}[/]")


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
            f"[{STYLE['pass' if r.ok else 'fail']}]{r.exit_code}[/]",
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


def print_outcome(runset: RunSet, several: bool) -> None:
    """What closes a run: the summary table when several scenarios were
    named, and a notice when Ctrl-C or SIGTERM stopped it."""
    if several:
        print_summary(runset)
    if runset.interrupted:
        stopped = f"interrupted ({stop_name(runset.exit_code)})"
        print_notice(f"{stopped}: results so far kept; reports hold only those")


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


def silence() -> None:
    """Print nothing from now on: a rank other than 0 of a launcher's job
    (rank 0 prints for all of them)."""
    out.quiet = err.quiet = True


def print_error(lines: list[str]) -> None:
    """Each problem as one `error:` line on stderr."""
    for line in lines:
        err.print(f"[bold red]error:[/] {escape(line)}")


def print_notice(text: str) -> None:
    """A status line on stderr, kept out of the report on stdout."""
    err.print(escape(text))


def print_census(census: Census, console: Console = out) -> None:
    """The census table, then its counts (and changes against a baseline)."""
    console.print(census_table(census, console.width))
    for line in census_summary(census):
        console.print(escape(line))


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
