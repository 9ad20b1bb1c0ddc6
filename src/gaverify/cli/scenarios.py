"""Turning a command line's scenario arguments and overrides into Scenarios."""

from __future__ import annotations

from pathlib import Path

from gaverify.bundled import resolve
from gaverify.errors import GaverifyError, ScenarioError
from gaverify.loading import load_scenario
from gaverify.scenario import Scenario


def load(arg: str | None, overrides: list[str] | None, **shorthands: object) -> Scenario:
    """The scenario a command names (file, bundled name or none), overridden;
    `shorthands` are options such as --device that stand for --set field=value."""
    overrides = list(overrides or [])
    overrides += [f"{key}={value}" for key, value in shorthands.items() if value is not None]
    return load_scenario(resolve(arg) if arg else None, overrides)


def _expand(args: list[str]) -> list[str | None]:
    """Folders become the *.yaml files in them (sorted); no argument is the default."""
    out: list[str | None] = []
    for arg in args:
        if Path(arg).is_dir():
            found = sorted(str(p) for p in Path(arg).glob("*.yaml"))
            if not found:
                raise ScenarioError(arg, ["no *.yaml scenario files in this folder"])
            out += found
        else:
            out.append(arg)
    return out or [None]


def load_all(
    args: list[str] | None, overrides: list[str] | None, **shorthands: object
) -> list[tuple[str, Scenario]]:
    """(label, scenario) for every scenario the arguments name. All are
    validated before any runs, and every problem of every file is reported."""
    loaded, problems = [], []
    for arg in _expand(list(args or [])):
        try:
            loaded.append((arg or "default", load(arg, overrides, **shorthands)))
        except GaverifyError as exc:
            problems += exc.lines()
    if problems:
        raise GaverifyError("\n".join(problems))
    return loaded
