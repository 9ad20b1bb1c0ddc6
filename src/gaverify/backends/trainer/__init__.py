"""The trainer backend: the installed transformers.Trainer, GA off vs on.

engine.py trains one watched Trainer run (shared); single.py compares runs
in one process; ranks.py runs the accumulated ones on W processes; compat.py
holds what differs between transformers releases.
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
