"""The accelerate backend: loops written with `Accelerator.accumulate` vs the full batch.

gaverify launches W ranks (W may be 1), or joins the ranks that `accelerate
launch` started (distributed/join.py); each runs `work` below with an
`Accelerator(gradient_accumulation_steps=N)` on its own process group. Each
rank cuts its shard of the batch into N micro-batches
(backends/parallel.py) and runs each one's forward and
`accelerator.backward(loss)` inside `accelerator.accumulate(model)`: the
Accelerator divides the loss by N, and with W > 1 the model is its DDP
wrapper, which syncs only at the window's last micro-batch. A variant is
what the loop multiplies each micro-batch's summed loss by first
(accumulation/accelerate_variants.py).

The reference is the single-process full batch on rank 0, as for ddp.
Lockstep: every rank then steps its model with the reference gradient.
Trajectory: each (N, variant) trains its own prepared copy with its own
prepared optimizer, stepped once the window syncs.
"""

from __future__ import annotations

from typing import Any

from gaverify.accumulation.accelerate_variants import ACCELERATE_VARIANTS
from gaverify.backends.parallel import ParallelRun, accumulate, launch, lockstep, trajectory
from gaverify.distributed.rank import RankContext
from gaverify.errors import GaverifyError
from gaverify.measure.compare import trainable
from gaverify.measure.results import Trace
from gaverify.model.optim import build_optimizer
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario


def run(scenario: Scenario, progress: Progress) -> Trace:
    """Launch the scenario's W ranks, wait for them, and return rank 0's Trace."""
    return launch(scenario, progress, "gaverify.backends.accelerator:work")


def work(scenario: Scenario, ctx: RankContext) -> str:
    """One rank's part of the run. Rank 0 returns the Trace as JSON; the
    other ranks return an empty string."""
    import accelerate
    import torch
    import torch.distributed as dist
    from accelerate.utils import DistributedDataParallelKwargs

    # Unused parameters (a pooler a task never reads) would stall DDP's reducer.
    unused = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = accelerate.Accelerator(cpu=not ctx.device.startswith("cuda"),
                                         kwargs_handlers=[unused])  # fmt: skip
    header = (
        f"accelerate {accelerate.__version__}: Accelerator(gradient_accumulation_steps=N) on "
        f"{ctx.world} process(es) ({accelerator.distributed_type.value}, {dist.get_backend()}), "
        "each micro-batch's forward and accelerator.backward inside accelerator.accumulate(model) "
        "(the loss / N, gradients synced at the last); N is per rank, so a window holds "
        f"{ctx.world} x N micro-batches (counts listed rank by rank); reference: the full batch "
        "in one process"
    )
    run = ParallelRun(scenario, ctx, header, ACCELERATE_VARIANTS)

    def window(prepared: Any, samples: list, n: int, name: str) -> tuple[float, list[int]]:
        return _window(run, accelerator, prepared, samples, n, name)

    def replicate(twin: Any) -> tuple[Any, Any]:
        # the prepared optimizer steps only once a window has synced, as in a user's loop
        return accelerator.prepare(twin, build_optimizer(scenario.optimizer, trainable(twin)))

    with torch.enable_grad():
        if scenario.mode == "lockstep":
            lockstep(run, accelerator.prepare(run.setup.built.model), window)
        else:
            trajectory(run, replicate, window)
    return run.result()


def _window(run: ParallelRun, accelerator: Any, prepared: Any, samples: list, n: int, name: str):
    """One (N, variant) window on this rank, as an accumulate loop runs it."""
    accelerator.gradient_accumulation_steps = n
    accelerator.step = 0  # a window starts a count of N (N changes between windows)

    def backward(loss: Any) -> float:
        accelerator.backward(loss)
        return float(loss.detach()) / n  # what accelerator.backward backpropagated

    def sync(i: int, last: bool) -> Any:
        return accelerator.accumulate(prepared)  # it counts the micro-batches itself

    variant = run.setup.variants[name]
    out = accumulate(prepared, run.setup, samples, n, variant, run.ctx, sync, backward)
    if not accelerator.sync_gradients:  # the Accelerator must agree the window ended
        raise GaverifyError(f"accelerate did not sync after N={n} micro-batches")
    return out
