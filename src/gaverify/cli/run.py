"""`gaverify run`: verify scenarios and exit 0/1 on their expectations (2: could not run)."""

from __future__ import annotations

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
    command_line,
    with_shorthands,
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
    from gaverify.api import verify_all
    from gaverify.distributed.join import launched
    from gaverify.report import terminal as render
    from gaverify.report.formats import check_report_paths, write_reports

    reports = {"json": json_path, "junit": junit_path, "markdown": markdown_path, "plot": plot_path}
    check_report_paths(reports)
    launcher = launched()
    if launcher and launcher.rank != 0:  # one of torchrun's ranks: rank 0 reports for all
        render.silence()
        reports = {}
    bar = render.ProgressBar(enabled=not (quiet or no_progress))
    if command_line():  # gaverify is the program, not a host calling it
        allocator.keep_freed_memory()
    try:
        with sigterm_as_interrupt():
            outcome = verify_all(
                scenarios or [],
                with_shorthands(set_, device=device, nproc=nproc, layers=layers),
                progress=bar,
                on_result=bar.printing(lambda r: render.print_result(r.run, brief=quiet)),
                on_error=_raise if debug else bar.printing(render.print_run_error),
                command=command_line(),
            )
    finally:
        bar.close()
    render.print_outcome(outcome.run_set, several=outcome.planned > 1)
    for written in write_reports(outcome.run_set, reports):
        render.print_notice(f"wrote {written}")
    raise typer.Exit(outcome.exit_code)


def _raise(label: str, exc: Exception) -> None:
    """--debug: a scenario that cannot run stops the set, with its traceback."""
    raise exc
