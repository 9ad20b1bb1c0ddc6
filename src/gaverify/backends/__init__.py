"""Backends: the engines that run a scenario's paired training passes.

Every backend takes a validated Scenario and a Progress and returns the same
Trace of Measurements, so comparison, verdicts and reports never know which
one ran. What each backend accepts is declared in spec/backends.py; here
live the engines themselves, one module each, and the kit they share
(kit.py: a run's set-up, rows, trace and interruption; watch.py: comparing
whole trained runs step by step; setup.py, sweep.py, memory.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from gaverify.spec.backends import BACKENDS

if TYPE_CHECKING:
    from gaverify.measure.results import Trace
    from gaverify.progress import Progress
    from gaverify.spec.schema import Scenario


def check_backend(scenario: Scenario) -> None:
    """What the scenario's backend checks before anything is built (its
    declared `check`: trainer.class for the trainer); exit 2 on a problem."""
    check = BACKENDS.get(scenario.backend).check
    if check:
        module, _, func = check.partition(":")
        getattr(importlib.import_module(module), func)(scenario)


def load_backend(name: str) -> Callable[[Scenario, Progress], Trace]:
    """The run function of backend `name`."""
    module, _, func = BACKENDS.get(name).run.partition(":")
    return getattr(importlib.import_module(module), func)
