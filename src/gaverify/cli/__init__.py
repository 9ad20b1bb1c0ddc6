"""The `gaverify` command line: one small module per verb, wired up here.

Commands parse, call one function of the package, render, and pick the exit
code. Nothing here imports torch: `gaverify --help` stays fast.
"""

from __future__ import annotations

import typer

from gaverify import __version__
from gaverify.cli.census import census
from gaverify.cli.env import env
from gaverify.cli.init import init
from gaverify.cli.listing import list_
from gaverify.cli.report import report
from gaverify.cli.run import run
from gaverify.cli.validate import validate

app = typer.Typer(
    name="gaverify",
    help="Is gradient-accumulated training really equivalent to full-batch training? "
    "Run paired training passes and see, step by step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(run)
app.command()(validate)
app.command()(init)
app.command()(report)
app.command(name="list")(list_)
app.command()(env)
app.command()(census)


def _version(value: bool) -> None:
    if value:
        print(f"gaverify {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    pass


def main() -> None:
    """Console-script entry point."""
    app()
