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

from gaverify.distributed.join import launched
from gaverify.errors import GaverifyError, ScenarioError
from gaverify.spec.backends import BACKENDS
from gaverify.spec.loading import load

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


def as_launched(scenario: Scenario) -> Scenario:
    """The scenario as the launcher that started this process runs it (torchrun,
    accelerate launch, srun): on its W ranks. Without one, `scenario` itself;
    exit 2 for a backend that cannot join it, or a batch W cannot split."""
    launcher = launched()
    if launcher is None:
        return scenario
    if not BACKENDS.get(scenario.backend).joins:
        joining = ", ".join(name for name, b in BACKENDS.items() if b.joins)
        raise GaverifyError(
            f"backend: {scenario.backend} starts its own processes and cannot run as "
            f"{launcher.name}'s {launcher.world} ranks; run it without the launcher, or use "
            f"backend {joining}"
        )
    if scenario.distributed.processes == launcher.world:
        return scenario
    try:
        return load(scenario, [f"distributed.processes={launcher.world}"])
    except ScenarioError as exc:
        why = "; ".join(exc.problems)
        raise GaverifyError(f"{launcher.name} started {launcher.world} ranks: {why}") from None


def load_backend(name: str) -> Callable[[Scenario, Progress], Trace]:
    """The run function of backend `name`."""
    module, _, func = BACKENDS.get(name).run.partition(":")
    return getattr(importlib.import_module(module), func)
