"""`gaverify validate`: check a scenario and print it with every default filled in."""

from __future__ import annotations

from gaverify.cli.friendly import friendly_errors
from gaverify.cli.options import DebugOpt, ScenarioArg, SetOpt


@friendly_errors
def validate(scenario: ScenarioArg = None, set_: SetOpt = None, debug: DebugOpt = False) -> None:
    """Validate a scenario (no torch, nothing runs) and print the resolved form."""
    from gaverify.report import terminal as render
    from gaverify.spec.loading import load

    spec = load(scenario, set_)
    render.print_yaml(spec.model_dump(mode="json"))
    render.print_notice(f"{scenario or 'built-in default scenario'}: valid")
