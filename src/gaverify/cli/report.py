"""`gaverify report`: re-render a saved result (`run --json`) in any format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gaverify.cli.friendly import friendly_errors
from gaverify.cli.options import DebugOpt
from gaverify.errors import GaverifyError

ResultArg = Annotated[Path, typer.Argument(help="A JSON file written by `gaverify run --json`.")]
FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="table, json, junit, markdown or plot.")
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write here instead of stdout (needed for plot).",
                 dir_okay=False),
]  # fmt: skip


@friendly_errors
def report(
    result: ResultArg, fmt: FormatOpt = "table", output: OutputOpt = None, debug: DebugOpt = False
) -> None:
    """Render a saved result as a table, Markdown, JUnit XML, JSON or a PNG plot."""
    from gaverify.report import terminal as render
    from gaverify.report.formats import FORMATS, load_results, render_report, write_report

    if fmt != "table":
        FORMATS.get(fmt)  # a mistyped format is reported before any reading
    runset = load_results(result)
    if fmt == "table":
        render.print_results(runset)
    elif output is not None:
        for written in write_report(fmt, runset, output):
            if written != output:  # a name derived for one of several scenarios
                render.print_notice(f"wrote {written}")
    elif FORMATS.get(fmt).binary:
        raise GaverifyError(f"--format {fmt} writes an image: give --output PATH")
    else:
        render.print_text("".join(render_report(fmt, runset)))
