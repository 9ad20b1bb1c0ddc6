"""`gaverify census`: judge every model head of the installed transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gaverify.cli.friendly import friendly_errors, sigterm_as_interrupt
from gaverify.cli.options import DebugOpt, NoProgressOpt, command_line

Types = Annotated[
    str | None, typer.Option(help="Model types, comma-separated, e.g. bert,llama (default: all).")
]
Heads = Annotated[
    str | None,
    typer.Option(
        help="Heads, comma-separated: causal-lm, masked-lm, token-classification, "
        "sequence-classification, question-answering, seq2seq (default: all)."
    ),
]


@friendly_errors
def census(
    types: Types = None,
    heads: Heads = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Write every row to this JSON file.", dir_okay=False),
    ] = None,
    markdown_path: Annotated[
        Path | None,
        typer.Option(
            "--markdown",
            help="Write the census as Markdown: pairs grouped by verdict, each FAIL's command.",
            dir_okay=False,
        ),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="An earlier census JSON: exit 1 if any verdict changed.")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds a pair may run before it is stopped.")
    ] = 120.0,  # census.DEFAULT_TIMEOUT_S, not imported here: --help stays fast
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Judge again even the pairs already cached.")
    ] = False,
    no_progress: NoProgressOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Which (model type, head) pairs of the installed transformers train exactly with GA."""
    from gaverify.census import read_census, run_census
    from gaverify.census.cache import default_root
    from gaverify.report import terminal as render
    from gaverify.report.census import write_census
    from gaverify.report.formats import check_report_paths

    outputs = {"json": json_path, "markdown": markdown_path}
    check_report_paths(outputs)
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
    for path in write_census(result, outputs):
        render.print_notice(f"wrote {path}")
    raise typer.Exit(result.exit_code)


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None
