"""`gaverify init`: write a commented starter scenario to edit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gaverify.cli.friendly import friendly_errors
from gaverify.cli.options import DebugOpt


@friendly_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("gaverify.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Write a commented starter scenario (every field, with its default)."""
    from gaverify.report import terminal as render
    from gaverify.spec.starter import write_starter

    write_starter(path, overwrite=force)
    render.print_notice(f"wrote {path}; run it with: gaverify run {path}")
