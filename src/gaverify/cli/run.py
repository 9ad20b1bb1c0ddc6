"""`gaverify run`: verify a scenario and exit 0/1 on its expectations."""

from __future__ import annotations

import typer

from gaverify.cli.errors import friendly_errors
from gaverify.cli.options import (
    DebugOpt,
    DeviceOpt,
    JsonOpt,
    JunitOpt,
    QuietOpt,
    ScenarioArg,
    SetOpt,
)


@friendly_errors
def run(
    scenario: ScenarioArg = None,
    set_: SetOpt = None,
    device: DeviceOpt = None,
    json_path: JsonOpt = None,
    junit_path: JunitOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run full-batch vs accumulated training and judge every step."""
    from gaverify import render
    from gaverify.cli.scenarios import load
    from gaverify.output import write_json, write_junit
    from gaverify.runner import run_scenario

    spec = load(scenario, set_, device)
    bar = render.ProgressBar(enabled=not quiet)
    try:
        result = run_scenario(spec, bar)
    finally:
        bar.close()
    render.print_result(result)
    if json_path:
        write_json(result, json_path)
    if junit_path:
        write_junit(result, junit_path)
    raise typer.Exit(result.exit_code)
