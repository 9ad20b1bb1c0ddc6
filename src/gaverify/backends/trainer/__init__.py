"""The trainer backend: the installed transformers.Trainer, GA off vs on.

classes.py resolves trainer.class and trainer.config (checked before any
model is built); families.py holds what TRL's trainers need beyond the
Trainer's; engine.py trains one watched run (shared); single.py compares
runs in one process; ranks.py runs the accumulated ones on W processes;
fitting.py fits a trainer's own micro-batches; compat.py holds what
differs between transformers releases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gaverify.measure.results import Trace
    from gaverify.progress import Progress
    from gaverify.spec.schema import Scenario


def run(scenario: Scenario, progress: Progress) -> Trace:
    """The Trainer in one process, or on distributed.processes of them."""
    # imported here: the engines load torch and transformers, and importing this
    # package must stay light (classes.check runs before any of that)
    from gaverify.backends.trainer import ranks, single

    if scenario.distributed.processes > 1:
        return ranks.run(scenario, progress)
    return single.run(scenario, progress)
