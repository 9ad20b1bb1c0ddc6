"""`gaverify run`: verify scenarios and exit 0/1 on their expectations (2: could not run)."""

from __future__ import annotations

import os
import shlex
import sys

import typer

from gaverify.cli.friendly import friendly_errors
from gaverify.cli.options import (
    DebugOpt,
    DeviceOpt,
    JsonOpt,
    JunitOpt,
    LayersOpt,
    MarkdownOpt,
    NprocOpt,
    PlotOpt,
    QuietOpt,
    ScenariosArg,
    SetOpt,
)


@friendly_errors
def run(
    scenarios: ScenariosArg = None,
    set_: SetOpt = None,
    device: DeviceOpt = None,
    nproc: NprocOpt = None,
    layers: LayersOpt = None,
    json_path: JsonOpt = None,
    junit_path: JunitOpt = None,
    markdown_path: MarkdownOpt = None,
    plot_path: PlotOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run full-batch vs accumulated training and judge every step."""
    from gaverify import allocator
    from gaverify.report import terminal as render
    from gaverify.report.formats import write_report
    from gaverify.runner import run_scenarios
    from gaverify.spec.loading import load_all

    shorthands = {"device": device, "distributed.processes": nproc, "layers": layers}
    specs = load_all(scenarios, set_, **shorthands)
    bar = render.ProgressBar(enabled=not quiet)
    if _command_line():  # gaverify is the program, not a host calling it
        allocator.keep_freed_memory()
    alone = len(specs) == 1 or debug  # then an error is the command's error
    try:
        runset = run_scenarios(
            specs,
            bar,
            on_result=bar.printing(render.print_result),
            on_error=None if alone else bar.printing(render.print_run_error),
            command=_command_line(),
        )
    finally:
        bar.close()
    if len(specs) > 1:
        render.print_summary(runset)
    if runset.interrupted:
        render.print_notice("interrupted (Ctrl-C): results so far kept; reports hold only those")
    reports = {"json": json_path, "junit": junit_path, "markdown": markdown_path, "plot": plot_path}
    for fmt, path in reports.items():
        for written in write_report(fmt, runset, path) if path else []:
            if written != path:  # a name derived for one of several scenarios
                render.print_notice(f"wrote {written}")
    raise typer.Exit(runset.exit_code)


def _command_line() -> str | None:
    """The command as typed (for reports), when gaverify is the running program."""
    if not os.path.basename(sys.argv[0]).startswith("gaverify"):
        return None
    return shlex.join(["gaverify", *sys.argv[1:]])
