"""Turning a command line's scenario argument and overrides into a Scenario."""

from __future__ import annotations

from gaverify.bundled import resolve
from gaverify.loading import load_scenario
from gaverify.scenario import Scenario


def load(arg: str | None, overrides: list[str] | None, device: str | None = None) -> Scenario:
    """The scenario a command names (file, bundled name or none), overridden."""
    overrides = list(overrides or [])
    if device:
        overrides.append(f"device={device}")
    return load_scenario(resolve(arg) if arg else None, overrides)
