"""The ddp backend: DistributedDataParallel on W processes vs the full batch in one.

gaverify launches W ranks through torch's elastic launcher (or joins the
launcher that started it: distributed/join.py); each runs `work` below.
Each rank accumulates N micro-batches of its shard of the batch
(backends/parallel.py); the first N-1 backwards run under DDP's no_sync,
the last one all-reduces (averages) the accumulated gradients. Each variant
weights each micro-batch's summed loss by a rule on the ranks' item counts,
gathered before the first backward (accumulation/ddp_variants.py).

The reference is the single-process full batch: rank 0 computes it on the
bare model and, in lockstep mode, broadcasts its gradient so every rank
takes the same optimizer step. Modes as the reference backend's: lockstep
(each step restarts from the reference parameters) and trajectory (each
(N, variant) trains its own DDP copy). The logged loss is the ranks' mean,
as a data-parallel loop logs it. Rank 0 measures, fits a diverging gradient
over all W x N micro-batches, and returns the Trace.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from gaverify.accumulation.ddp_variants import DDP_VARIANTS
from gaverify.backends.parallel import ParallelRun, accumulate, launch, lockstep, trajectory
from gaverify.distributed.rank import RankContext
from gaverify.measure.compare import trainable
from gaverify.measure.results import Trace
from gaverify.model.optim import build_optimizer
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario


def run(scenario: Scenario, progress: Progress) -> Trace:
    """Launch the scenario's W ranks, wait for them, and return rank 0's Trace."""
    return launch(scenario, progress, "gaverify.backends.ddp:work")


def work(scenario: Scenario, ctx: RankContext) -> str:
    """One rank's part of the run. Rank 0 returns the Trace as JSON; the
    other ranks return an empty string."""
    import torch
    import torch.distributed as dist

    header = (
        f"distributed: {ctx.world} processes ({dist.get_backend()}, torch "
        f"{torch.__version__}), DistributedDataParallel with no_sync on the first N-1 "
        f"micro-batches; N is per rank, so a window holds {ctx.world} x N micro-batches "
        "(counts listed rank by rank); reference: the full batch in one process"
    )
    run = ParallelRun(scenario, ctx, header, DDP_VARIANTS)

    def window(ddp: Any, samples: list, n: int, name: str) -> tuple[float, list[int]]:
        def sync(i: int, last: bool) -> Any:
            return nullcontext() if last else ddp.no_sync()

        return accumulate(ddp, run.setup, samples, n, run.setup.variants[name], ctx, sync)

    def replicate(twin: Any) -> tuple[Any, Any]:
        return _wrap(twin, ctx), build_optimizer(scenario.optimizer, trainable(twin))

    with torch.enable_grad():
        if scenario.mode == "lockstep":
            lockstep(run, _wrap(run.setup.built.model, ctx), window)
        else:
            trajectory(run, replicate, window)
    return run.result()


def _wrap(model: Any, ctx: RankContext) -> Any:
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.local_rank] if ctx.device.startswith("cuda") else None
    # Unused parameters (a pooler a task never reads) would stall DDP's reducer.
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
