"""The scenarios shipped with gaverify, found by name.

They live in the repository's top-level `scenarios/` folder; an installed
wheel carries them as `gaverify/_bundled_scenarios`. `gaverify run quickstart`
and `gaverify run scenarios/quickstart.yaml` name the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from gaverify.errors import ScenarioError, did_you_mean

_PACKAGED = Path(__file__).parents[1] / "_bundled_scenarios"
_CHECKOUT = Path(__file__).resolve().parents[3] / "scenarios"


@dataclass(frozen=True)
class Bundled:
    name: str
    path: Path
    description: str


def bundled_dir() -> Path:
    """Where the bundled scenarios are (the wheel's copy, else the checkout's)."""
    return _PACKAGED if _PACKAGED.is_dir() else _CHECKOUT


def bundled() -> list[Bundled]:
    """Every bundled scenario, by name, with its `description` field."""
    found = []
    for path in sorted(bundled_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found.append(Bundled(path.stem, path, str(data.get("description", "")).strip()))
    return found


def resolve(arg: str) -> Path:
    """The scenario file `arg` names: an existing path, or a bundled name."""
    path = Path(arg)
    if path.exists():
        return path
    by_name = {b.name: b.path for b in bundled()}
    if arg in by_name:
        return by_name[arg]
    hint = "" if path.suffix or "/" in arg else did_you_mean(arg, by_name)
    raise ScenarioError(
        arg, [f"no such file or bundled scenario{hint}; bundled: {', '.join(sorted(by_name))}"]
    )
