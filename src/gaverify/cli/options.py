"""Options shared by several commands, defined once as Annotated aliases,
and the command line as typed (recorded in reports)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

ScenarioArg = Annotated[
    str | None,
    typer.Argument(
        help="Scenario file, or the name of a bundled scenario (see `gaverify list`). "
        "Omitted: the built-in default scenario.",
        show_default=False,
    ),
]
ScenariosArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Scenario files, folders of them, or names of bundled scenarios (see "
        "`gaverify list`); several run in turn and end with a summary. Omitted: the "
        "built-in default scenario.",
        show_default=False,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a scenario field: key=value, e.g. --set batch.size=16 "
        "--set batch.accumulation=[2,4]. Repeatable.",
        show_default=False,
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device", help="cpu, cuda or auto (shorthand for --set device=...).", show_default=False
    ),
]
NprocOpt = Annotated[
    int | None,
    typer.Option(
        "--nproc",
        min=1,
        help="worker processes (ranks) for backends ddp, fsdp, accelerate and trainer "
        "(shorthand for --set distributed.processes=...).",
        show_default=False,
    ),
]
LayersOpt = Annotated[
    int | None,
    typer.Option(
        "--layers",
        min=1,
        help="Show the K parameters whose gradients diverge most (shorthand for --set layers=K).",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    Path | None,
    typer.Option("--json", help="Write every number of the run to this JSON file.", dir_okay=False),
]
JunitOpt = Annotated[
    Path | None,
    typer.Option(
        "--junit",
        help="Write a JUnit XML report for CI (a test per scenario x N x variant).",
        dir_okay=False,
    ),
]
MarkdownOpt = Annotated[
    Path | None,
    typer.Option(
        "--markdown",
        help="Write a Markdown bug report (environment, scenario, table, diagnosis, command).",
        dir_okay=False,
    ),
]
PlotOpt = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        help="Write a PNG of loss curves and divergence per step (one per scenario).",
        dir_okay=False,
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="Print each variant's summary and the final line only; no bar."
    ),
]
NoProgressOpt = Annotated[
    bool,
    typer.Option("--no-progress", help="No progress bar (it is off anyway when not a TTY)."),
]
DebugOpt = Annotated[
    bool,
    typer.Option("--debug", help="Show the full traceback of an error (or set GAVERIFY_DEBUG=1)."),
]


def with_shorthands(overrides: list[str] | None, **shorthands: object) -> list[str]:
    """The --set overrides plus options that stand for one, e.g. --device cuda
    for --set device=cuda (`nproc` sets distributed.processes)."""
    keys = {"nproc": "distributed.processes"}
    given = [f"{keys.get(k, k)}={v}" for k, v in shorthands.items() if v is not None]
    return [*(overrides or []), *given]


def command_line() -> str | None:
    """The command as typed (for reports), when gaverify is the running program."""
    if not os.path.basename(sys.argv[0]).startswith("gaverify"):
        return None
    return shlex.join(["gaverify", *sys.argv[1:]])
