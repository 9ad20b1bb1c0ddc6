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

import copy
from typing import Any

from gaverify.accumulation.accelerate_variants import ACCELERATE_VARIANTS
from gaverify.backends.parallel import ParallelRun, accumulate, broadcast_gradient, launch
from gaverify.backends.reference import full_batch
from gaverify.distributed.rank import RankContext
from gaverify.errors import GaverifyError
from gaverify.measure.compare import compare_gradients, gradients, max_abs_difference, trainable
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
    loop = _lockstep if scenario.mode == "lockstep" else _trajectory
    with torch.enable_grad():
        loop(run, accelerator)
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


def _lockstep(run: ParallelRun, accelerator: Any) -> None:
    setup, ctx = run.setup, run.ctx
    scenario, model = setup.scenario, setup.built.model
    prepared = accelerator.prepare(model)
    optimizer = build_optimizer(scenario.optimizer, trainable(model))
    for step, samples in enumerate(setup.steps, start=1):
        optimizer.zero_grad(set_to_none=True)
        ref_loss = full_batch(setup, model, samples) if ctx.rank == 0 else 0.0
        ref_grads = broadcast_gradient(model, ctx)
        ctx.advance(f"step {step} full batch")
        for n, name in scenario.plan:
            optimizer.zero_grad(set_to_none=True)
            loss, counts = _window(run, accelerator, prepared, samples, n, name)
            if ctx.rank == 0:
                comparison = compare_gradients(ref_grads, gradients(model))
                if run.fitter.wants(n, name, comparison):
                    run.fitter.fit(step, n, name, model, gradients(model), ctx.world * n)
                run.row(step, n, name, counts, ref_loss, loss, comparison)
            ctx.advance(f"step {step} N={n} {name}")
        for p, g in zip(trainable(model), ref_grads, strict=True):
            p.grad = g
        optimizer.step()
        run.publish()


def _trajectory(run: ParallelRun, accelerator: Any) -> None:
    setup, ctx = run.setup, run.ctx
    scenario, model = setup.scenario, setup.built.model
    runs = {}
    for key in scenario.plan:
        twin = copy.deepcopy(model)
        prepared, twin_optimizer = accelerator.prepare(
            twin, build_optimizer(scenario.optimizer, trainable(twin))
        )
        runs[key] = (prepared, twin, twin_optimizer)
    optimizer = build_optimizer(scenario.optimizer, trainable(model))
    for step, samples in enumerate(setup.steps, start=1):
        ref_loss, ref_grads, ref_params = 0.0, [], []
        if ctx.rank == 0:  # the reference trains in rank 0 alone
            optimizer.zero_grad(set_to_none=True)
            ref_loss = full_batch(setup, model, samples)
            optimizer.step()
            ref_grads, ref_params = gradients(model), list(model.parameters())
        ctx.advance(f"step {step} full batch")
        for (n, name), (prepared, twin, twin_optimizer) in runs.items():
            for p in twin.parameters():
                p.grad = None
            loss, counts = _window(run, accelerator, prepared, samples, n, name)
            comparison = None
            if ctx.rank == 0:
                comparison = compare_gradients(ref_grads, gradients(twin))
                if run.fitter.wants(n, name, comparison):
                    run.fitter.fit(step, n, name, twin, gradients(twin), ctx.world * n)
            twin_optimizer.step()  # the prepared optimizer: it steps once the window synced
            if comparison is not None:
                diff = max_abs_difference(ref_params, list(twin.parameters()))
                run.row(step, n, name, counts, ref_loss, loss, comparison, diff)
            ctx.advance(f"step {step} N={n} {name}")
        run.publish()
