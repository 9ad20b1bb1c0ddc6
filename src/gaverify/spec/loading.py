"""Turning files and `--set key=value` overrides into a validated Scenario.

Owns the user-facing wording of scenario errors: every problem becomes one
line naming the file (or the --set option), the key and what was expected,
and all problems are reported together.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gaverify.errors import GaverifyError, ScenarioError, did_you_mean
from gaverify.spec.bundled import resolve
from gaverify.spec.schema import Scenario

BUILTIN = "<built-in default scenario>"


class _Loader(yaml.SafeLoader):
    """The safe loader, reading 1e-4 as a float as YAML 1.2 does (YAML 1.1,
    and so plain PyYAML, wants 1.0e-4 and would give the string '1e-4')."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML file (a safe loader: no language tags)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, ["no such file"]) from None
    except IsADirectoryError:
        raise ScenarioError(source, ["is a directory, expected a scenario .yaml file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, [f"cannot read file: {exc}"]) from None
    try:
        data = _parse(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc)]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(source, [f"expected a mapping of keys at the top, got {_kind(data)}"])
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{where}invalid YAML: {problem}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b=value' into (['a', 'b'], value); the value is read as YAML,
    so numbers, booleans and lists ([2, 4]) get their natural types."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise ScenarioError("--set", [f"'{text}': expected key=value, e.g. batch.size=16"])
    try:
        value = _parse(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ScenarioError(f"--set {key}", [_yaml_problem(exc)]) from None
    return path, value


# Overrides as the CLI gives them ('a.b=value' texts, values read as YAML) or
# as the Python API does (a mapping of dotted keys to values).
Overrides = Sequence[str] | Mapping[str, Any]


@dataclass(frozen=True)
class _Override:
    path: list[str]
    value: Any
    where: str  # how an error names it: "--set a.b=1" or "overrides['a.b']"
    via: str  # "--set" or "overrides"


def _overrides(overrides: Overrides | None) -> list[_Override]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        found = []
        for key, value in overrides.items():
            path = str(key).split(".")
            if not all(path):
                expected = "expected a dotted key, e.g. 'batch.size'"
                raise ScenarioError("overrides", [f"{key!r}: {expected}"])
            found.append(_Override(path, value, f"overrides[{str(key)!r}]", "overrides"))
        return found
    texts = [overrides] if isinstance(overrides, str) else list(overrides)
    return [_Override(*parse_override(t), f"--set {t}", "--set") for t in texts]


def apply_overrides(data: dict[str, Any], overrides: Overrides | None) -> dict[str, Any]:
    """A copy of `data` with each override set (sections created on the way)."""
    data = copy.deepcopy(data)
    for override in _overrides(overrides):
        path, node = override.path, data
        for i, part in enumerate(path[:-1]):
            if part not in node:
                node[part] = _mapping_default(path[: i + 1])
            child = node[part]
            if not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ScenarioError(override.where, [f"'{where}' is a value, not a section"])
            node = child
        node[path[-1]] = copy.deepcopy(override.value)
    return data


def _mapping_default(path: list[str]) -> dict[str, Any]:
    """What an absent section at `path` starts as before an override is set in
    it: a free-form mapping field keeps its default entries, so
    `--set model.config.num_hidden_layers=4` changes one key of the default
    model config instead of replacing the whole config."""
    parent = _section_at(path[:-1])
    field = parent.model_fields.get(path[-1]) if parent else None
    if field is None or field.default_factory is None or _section_at(path):
        return {}
    default = field.default_factory()
    return dict(default) if isinstance(default, dict) else {}


def load_scenario(path: Path | None = None, overrides: Overrides | None = None) -> Scenario:
    """Read, override and validate a scenario; `path=None` is the built-in one."""
    data = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else BUILTIN
    return _validate(data, source, overrides, Path(path).resolve().parent if path else None)


def _validate(
    data: dict[str, Any], source: str, overrides: Overrides | None, source_dir: Path | None
) -> Scenario:
    """`data` with the overrides set, validated; every problem names `source`."""
    data = apply_overrides(data, overrides)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        overridden = {o.path[0]: o.via for o in _overrides(overrides)}
        problems = [_problem(err, overridden) for err in exc.errors()]
        raise ScenarioError(source, problems) from None
    scenario._source_dir = source_dir
    return scenario


def _problem(err: dict[str, Any], overridden: dict[str, str]) -> str:
    """One line for one validation error; `overridden`: top-level key -> the
    option that set it ("--set" or "overrides")."""
    loc = [str(p) for p in err["loc"]]
    msg = err["msg"].removeprefix("Value error, ")
    named = re.match(r"([a-z_]+)[.:\s(]", msg)
    if not loc and named and named[1] in Scenario.model_fields:
        # a check across fields names its key first: "loop.step: backend ..."
        return f"{msg}{f' (from {overridden[named[1]]})' if named[1] in overridden else ''}"
    key = ".".join(loc) or "(top level)"
    via = f" (from {overridden[loc[0]]})" if loc and loc[0] in overridden else ""
    if err["type"] == "extra_forbidden":
        section = _section_at(err["loc"][:-1])
        hint = did_you_mean(loc[-1], section.model_fields) if section else ""
        return f"{key}: unknown key{hint}{via}"
    if err["type"] == "missing":
        return f"{key}: required{via}"
    if err["type"] in {"value_error", "assertion_error"}:
        return f"{key}: {msg}{via}"
    return f"{key}: {msg[0].lower()}{msg[1:]}, got {_show(err.get('input'))}{via}"


def _section_at(loc: tuple | list) -> type[BaseModel] | None:
    """The schema class of the section at `loc`, or None if it is no section."""
    model: type[BaseModel] = Scenario
    for part in loc:
        annotation = getattr(model.model_fields.get(part), "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# What names a scenario: a file or folder path, a bundled name, a mapping of
# its keys, a Scenario, or None (the built-in default).
ScenarioLike = str | os.PathLike[str] | Mapping[str, Any] | Scenario | None


def load(arg: ScenarioLike, overrides: Overrides | None = None) -> Scenario:
    """The scenario `arg` names, with `overrides` set and everything validated."""
    if arg is None or isinstance(arg, str | os.PathLike):
        return load_scenario(resolve(os.fspath(arg)) if arg else None, overrides)
    if isinstance(arg, Scenario):
        if not overrides:
            return arg
        return _validate(arg.model_dump(), f"scenario {arg.name!r}", overrides, arg.source_dir)
    if isinstance(arg, Mapping):
        name = arg.get("name")
        source = f"scenario mapping {name!r}" if name else "scenario mapping"
        return _validate(dict(arg), source, overrides, None)
    expected = "a path, a bundled name, a mapping or a Scenario"
    raise GaverifyError(f"scenario: expected {expected}, got {type(arg).__name__}")


def _label(arg: ScenarioLike) -> str:
    """How a scenario is named in a run set's errors and summary."""
    if arg is None:
        return "default"
    if isinstance(arg, str | os.PathLike):
        return os.fspath(arg)
    name = arg.name if isinstance(arg, Scenario) else arg.get("name")
    return str(name or "scenario")


def _expand(args: Sequence[ScenarioLike]) -> list[ScenarioLike]:
    """Folders become the *.yaml files in them (sorted); no argument is the default."""
    out: list[ScenarioLike] = []
    for arg in args:
        if isinstance(arg, str | os.PathLike) and Path(arg).is_dir():
            found = sorted(str(p) for p in Path(arg).glob("*.yaml"))
            if not found:
                raise ScenarioError(os.fspath(arg), ["no *.yaml scenario files in this folder"])
            out += found
        else:
            out.append(arg)
    return out or [None]


def load_all(
    args: Sequence[ScenarioLike] | None, overrides: Overrides | None = None
) -> list[tuple[str, Scenario]]:
    """(label, scenario) for every scenario the arguments name. All are
    validated before any runs, and every problem of every file is reported."""
    loaded, problems = [], []
    for arg in _expand(list(args or [])):
        try:
            scenario = load(arg, overrides)  # a name of the wrong type stops here
            loaded.append((_label(arg), scenario))
        except GaverifyError as exc:
            problems += exc.lines()
    if problems:
        raise GaverifyError("\n".join(problems))
    return loaded
