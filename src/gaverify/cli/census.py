"""`gaverify census`: judge every model head of the installed transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gaverify.cli.friendly import friendly_errors, sigterm_as_interrupt
from gaverify.cli.options import DebugOpt, JsonOpt, MarkdownOpt, NoProgressOpt, command_line

Names = Annotated[str | None, typer.Option(help="Comma-separated names (default: all).")]


@friendly_errors
def census(
    types: Names = None,
    heads: Names = None,
    json_path: JsonOpt = None,
    markdown_path: MarkdownOpt = None,
    baseline: Annotated[
        Path | None, typer.Option(help="An earlier census JSON: exit 1 if any verdict changed.")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds a pair may run.")] = 120.0,
    fresh: Annotated[bool, typer.Option(help="Judge again even pairs already cached.")] = False,
    no_progress: NoProgressOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Which (model type, head) pairs of the installed transformers train exactly with GA."""
    from gaverify.census import read_census, run_census
    from gaverify.census.cache import default_root
    from gaverify.output import check_writable, write_atomic
    from gaverify.report import terminal as render
    from gaverify.report.census import census_markdown

    outputs = {"--json": json_path, "--markdown": markdown_path}
    for option, path in outputs.items():
        if path is not None:
            check_writable(path, option)
    bar = render.ProgressBar(enabled=not no_progress)
    try:
        with sigterm_as_interrupt():
            result = run_census(
                _names(types),
                _names(heads),
                jobs=jobs,
                timeout=timeout,
                cache=default_root(),
                fresh=fresh,
                baseline=read_census(baseline) if baseline else None,
                progress=bar,
                command=command_line(),
            )
    finally:
        bar.close()
    render.print_census(result)
    texts = {
        "--json": result.model_dump_json(indent=1) + "\n",
        "--markdown": census_markdown(result),
    }
    for option, path in outputs.items():
        if path is not None:
            write_atomic(path, texts[option])
            render.print_notice(f"wrote {path}")
    raise typer.Exit(result.exit_code)


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None
