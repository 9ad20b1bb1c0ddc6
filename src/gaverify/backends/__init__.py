"""Backends: the engines that run a scenario's paired training passes.

Every backend takes a validated Scenario (and a Progress) and returns the
same Trace of Measurements, so comparison, verdicts and reports never know which one ran.
Entries are import paths, resolved only when a backend runs, so naming one in
a scenario (and validating it) imports nothing heavy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from gaverify.registry import Registry

if TYPE_CHECKING:
    from gaverify.results import Trace
    from gaverify.scenario import Scenario

BACKENDS: Registry[str] = Registry("backend")
BACKENDS.add(
    "reference",
    "gaverify.backends.reference:run",
    "gaverify's own explicit accumulation loop (the core)",
)


def load_backend(name: str) -> Callable[[Scenario, Progress | None], Trace]:
    """The run function of backend `name`."""
    module, _, func = BACKENDS.get(name).partition(":")
    return getattr(importlib.import_module(module), func)


__all__ = ["BACKENDS", "load_backend"]


class Progress:
    """Where a backend reports how far it got; this base class ignores it.
    The CLI passes a subclass that draws a progress bar."""

    def start(self, total: int) -> None:
        """`total` training passes are about to run."""

    def advance(self, label: str = "") -> None:
        """One more training pass is done."""
