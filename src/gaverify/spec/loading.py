"""Turning files and `--set key=value` overrides into a validated Scenario.

Owns the user-facing wording of scenario errors: every problem becomes one
line naming the file (or the --set option), the key and what was expected,
and all problems are reported together.
"""

from __future__ import annotations

import copy
import re
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


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `data` with each 'a.b=value' override set (sections created)."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for i, part in enumerate(path[:-1]):
            if part not in node:
                node[part] = _mapping_default(path[: i + 1])
            child = node[part]
            if not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ScenarioError(f"--set {text}", [f"'{where}' is a value, not a section"])
            node = child
        node[path[-1]] = value
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


def load_scenario(path: Path | None = None, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario; `path=None` is the built-in one."""
    data = read_yaml(path) if path is not None else {}
    overrides = overrides or []
    data = apply_overrides(data, overrides)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        source = str(path) if path is not None else BUILTIN
        overridden = {parse_override(o)[0][0] for o in overrides}
        problems = [_problem(err, overridden) for err in exc.errors()]
        raise ScenarioError(source, problems) from None
    if path is not None:
        scenario._source_dir = Path(path).resolve().parent
    return scenario


def _problem(err: dict[str, Any], overridden: set[str]) -> str:
    loc = [str(p) for p in err["loc"]]
    msg = err["msg"].removeprefix("Value error, ")
    named = re.match(r"([a-z_]+)[.:\s(]", msg)
    if not loc and named and named[1] in Scenario.model_fields:
        # a check across fields names its key first: "loop.step: backend ..."
        return f"{msg}{' (from --set)' if named[1] in overridden else ''}"
    key = ".".join(loc) or "(top level)"
    via = " (from --set)" if loc and loc[0] in overridden else ""
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
