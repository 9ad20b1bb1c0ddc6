"""Which Trainer a scenario runs: trainer.class, trainer.config and their arguments.

`resolve` imports trainer.class (default transformers:Trainer) and checks,
before any model is built, that it is a transformers.Trainer subclass, that
its config class (trainer.config, else the one its __init__ annotates
`args` with, else its family's) is a TrainingArguments subclass, and that
every key of trainer.args and of the variants' key=value settings is one of
that config class's fields. Each problem is one line naming the key (exit 2).
A package that is not installed names the extra that installs it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from gaverify.accumulation.trainer_variants import is_setting, parse_setting
from gaverify.backends.trainer.families import Family, family_of
from gaverify.errors import GaverifyError
from gaverify.imports import load_object
from gaverify.spec.schema import Scenario

DEFAULT_CLASS = "transformers:Trainer"
EXTRAS = {"trl": "trl"}  # a missing top-level package -> the gaverify extra that installs it


@dataclass(frozen=True)
class Classes:
    """The trainer and config classes a scenario runs, and the trainer's family."""

    trainer: type
    config: type
    family_name: str
    family: Family

    def describe(self) -> str:
        """`module.Class (config module.Class)`, for the report's header."""
        return f"{_name(self.trainer)} (config {_name(self.config)})"


def _name(cls: type) -> str:
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


def _released(cls: type) -> str:
    """`Class of package version`: an argument may exist in another release."""
    package = cls.__module__.split(".")[0]
    try:
        return f"{cls.__qualname__} of {package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:  # your own module
        return _name(cls)


def _derives(cls: Any, base: str) -> bool:
    """Whether `cls` is a class deriving from transformers' `base` (by MRO, so
    checking a class that is not one imports nothing more)."""
    return inspect.isclass(cls) and any(
        c.__name__ == base and c.__module__.startswith("transformers.") for c in cls.__mro__
    )


def _load(path: str, key: str, search: list[Path]) -> Any:
    package = path.partition(":")[0].split(".")[0]
    try:
        return load_object(path, key, search)
    except GaverifyError as exc:
        if package in EXTRAS and _missing(package):
            raise GaverifyError(
                f"{key}: {path} needs {package}, which is not installed: "
                f"pip install 'gaverify[{EXTRAS[package]}]' (make install installs it)"
            ) from exc
        raise


def _missing(package: str) -> bool:
    return importlib.util.find_spec(package) is None


def _annotated_config(cls: type) -> type | None:
    """The TrainingArguments subclass a trainer's __init__ annotates `args` with."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        param = inspect.signature(init).parameters.get("args") if init else None
        if param is None or param.annotation is inspect.Parameter.empty:
            continue
        names = param.annotation if isinstance(param.annotation, str) else repr(param.annotation)
        space = vars(sys.modules[klass.__module__])
        for word in re.findall(r"[A-Za-z_]\w*", names):
            if _derives(space.get(word), "TrainingArguments"):
                return space[word]
    return None


def check(scenario: Scenario) -> None:
    """The backend's check before anything is built (spec/backends.py)."""
    resolve(scenario, [scenario.source_dir] if scenario.source_dir else [])


def resolve(scenario: Scenario, search: list[Path]) -> Classes:
    """The scenario's trainer and config classes, checked (exit 2 on a problem)."""
    spec = scenario.trainer
    path = spec.class_ or DEFAULT_CLASS
    trainer = _load(path, "trainer.class", search)
    if not _derives(trainer, "Trainer"):
        raise GaverifyError(
            f"trainer.class: '{path}' is not a subclass of transformers.Trainer "
            f"({type(trainer).__name__} {getattr(trainer, '__qualname__', trainer)})"
        )
    family_name, family = family_of(trainer)
    if spec.reward_funcs and not family.rewards:
        raise GaverifyError(
            f"trainer.reward_funcs: {family_name} takes no reward functions (trl:GRPOTrainer does)"
        )
    if family.one_process and scenario.distributed.processes > 1:
        raise GaverifyError(
            f"distributed.processes: {family_name} on {scenario.distributed.processes} "
            f"processes: {family.one_process}; run it on one process"
        )
    if spec.config:
        config = _load(spec.config, "trainer.config", search)
    else:
        config = _annotated_config(trainer) or _load(family.config, "trainer.config", search)
    if not _derives(config, "TrainingArguments"):
        raise GaverifyError(
            f"trainer.config: '{spec.config or _name(config)}' is not a subclass of "
            "transformers.TrainingArguments"
        )
    known = {f.name for f in dataclasses.fields(config)}
    settings = [(f"variants: {v}", k) for v in scenario.variants if is_setting(v)
                for k, _ in parse_setting(v)]  # fmt: skip
    for where, key in [*((f"trainer.args.{k}", k) for k in spec.args), *settings]:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise GaverifyError(f"{where}: {_released(config)} has no argument '{key}'{hint}")
    return Classes(trainer, config, family_name, family)
