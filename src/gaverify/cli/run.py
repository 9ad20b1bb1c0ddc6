"""`gaverify run`: verify scenarios and exit 0/1 on their expectations (2: could not run)."""

from __future__ import annotations

import os
import shlex
import sys
from functools import partial

import typer

from gaverify.cli.friendly import friendly_errors, sigterm_as_interrupt
from gaverify.cli.options import (
    DebugOpt,
    DeviceOpt,
    JsonOpt,
    JunitOpt,
    LayersOpt,
    MarkdownOpt,
    NoProgressOpt,
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
    no_progress: NoProgressOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run full-batch vs accumulated training and judge every step."""
    from gaverify import allocator
    from gaverify.errors import stop_name
    from gaverify.output import check_writable
    from gaverify.report import terminal as render
    from gaverify.report.formats import write_report
    from gaverify.runner import run_scenarios
    from gaverify.spec.loading import load_all

    shorthands = {"device": device, "distributed.processes": nproc, "layers": layers}
    specs = load_all(scenarios, set_, **shorthands)
    reports = {"json": json_path, "junit": junit_path, "markdown": markdown_path, "plot": plot_path}
    for fmt, path in reports.items():
        if path:  # before any model is built: a long run must not be lost to a bad path
            check_writable(path, f"--{fmt}")
    bar = render.ProgressBar(enabled=not (quiet or no_progress))
    if _command_line():  # gaverify is the program, not a host calling it
        allocator.keep_freed_memory()
    alone = len(specs) == 1 or debug  # then an error is the command's error
    try:
        with sigterm_as_interrupt():
            runset = run_scenarios(
                specs,
                bar,
                on_result=bar.printing(partial(render.print_result, brief=quiet)),
                on_error=None if alone else bar.printing(render.print_run_error),
                command=_command_line(),
            )
    finally:
        bar.close()
    if len(specs) > 1:
        render.print_summary(runset)
    if runset.interrupted:
        stopped = f"interrupted ({stop_name(runset.exit_code)})"
        render.print_notice(f"{stopped}: results so far kept; reports hold only those")
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
