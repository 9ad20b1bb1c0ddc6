"""The trainer backend's entry point: one process, or W of them.

Its own module, so that importing the package (classes.py, checked before
anything is built) does not load the engines, which import torch and
transformers.
"""

from __future__ import annotations

from gaverify.backends.trainer import ranks, single
from gaverify.measure.results import Trace
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario


def run(scenario: Scenario, progress: Progress) -> Trace:
    """The Trainer in one process, or on distributed.processes of them."""
    if scenario.distributed.processes > 1:
        return ranks.run(scenario, progress)
    return single.run(scenario, progress)
