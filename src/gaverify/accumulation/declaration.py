"""What every variant declares, whichever engine runs it.

A variant is a way of accumulating (a normalisation rule, a Trainer set-up,
a LightningModule, a data-parallel count) plus what a scenario needs to know
about it before anything runs: the verdict a correct tool gives it, the
fewest processes it means anything on, the scenario key it reads, and any
other constraint on the scenario. The scenario schema reads these fields
and nothing else, so a new variant never needs a branch in the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (scenario) -> what is wrong with it for this variant, or None
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Declaration:
    """The fields every variant has (the engines' variant types extend it)."""

    name: str
    summary: str
    expected: str  # "pass" or "fail", on data whose micro-batches hold different counts
    # With equal counts per micro-batch a pure normalisation bug is invisible.
    expected_when_equal: str = "pass"
    origin: str = ""  # for user code: which function, from which file
    processes: int = 1  # the fewest processes it means anything on
    reads: str | None = None  # a scenario key (section.field) that it needs and only it uses
    check: Check | None = None  # other constraints on the scenario
    # Its loss is the model's own (or read from the model's outputs), so it
    # carries the terms a model adds beyond the token loss (MoE router losses).
    model_loss: bool = False
    # Made once the model exists (loss-type names user code in loss.loss_type):
    # (scenario, search path, model) -> the declaration to run.
    build: Callable[[Any, list[Path], Any], Declaration] | None = None
