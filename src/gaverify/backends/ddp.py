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

import copy
from contextlib import nullcontext
from typing import Any

from gaverify.backends.parallel import ParallelRun, accumulate, broadcast_gradient, launch
from gaverify.backends.reference import full_batch
from gaverify.distributed.rank import RankContext
from gaverify.measure.compare import compare_gradients, gradients, max_abs_difference, trainable
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
    run = ParallelRun(scenario, ctx, header)
    loop = _lockstep if scenario.mode == "lockstep" else _trajectory
    with torch.enable_grad():
        loop(run)
    return run.result()


def _wrap(model: Any, ctx) -> Any:
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.local_rank] if ctx.device.startswith("cuda") else None
    # Unused parameters (a pooler a task never reads) would stall DDP's reducer.
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def _no_sync(ddp: Any):
    return lambda i, last: nullcontext() if last else ddp.no_sync()


def _lockstep(run: ParallelRun) -> None:
    setup, ctx = run.setup, run.ctx
    scenario, model = setup.scenario, setup.built.model
    ddp = _wrap(model, ctx)
    optimizer = build_optimizer(scenario.optimizer, trainable(model))
    for step, samples in enumerate(setup.steps, start=1):
        optimizer.zero_grad(set_to_none=True)
        ref_loss = full_batch(setup, model, samples) if ctx.rank == 0 else 0.0
        ref_grads = broadcast_gradient(model, ctx)
        ctx.advance(f"step {step} full batch")
        for n, name in scenario.plan:
            optimizer.zero_grad(set_to_none=True)
            variant = setup.variants[name]
            loss, counts = accumulate(ddp, setup, samples, n, variant, ctx, _no_sync(ddp))
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


def _trajectory(run: ParallelRun) -> None:
    setup, ctx = run.setup, run.ctx
    scenario, model = setup.scenario, setup.built.model
    runs = {}
    for key in scenario.plan:
        twin = copy.deepcopy(model)
        runs[key] = (_wrap(twin, ctx), twin, build_optimizer(scenario.optimizer, trainable(twin)))
    optimizer = build_optimizer(scenario.optimizer, trainable(model))
    for step, samples in enumerate(setup.steps, start=1):
        ref_loss, ref_grads, ref_params = 0.0, [], []
        if ctx.rank == 0:  # the reference trains in rank 0 alone
            optimizer.zero_grad(set_to_none=True)
            ref_loss = full_batch(setup, model, samples)
            optimizer.step()
            ref_grads, ref_params = gradients(model), list(model.parameters())
        ctx.advance(f"step {step} full batch")
        for (n, name), (ddp, twin, twin_optimizer) in runs.items():
            twin_optimizer.zero_grad(set_to_none=True)
            variant = setup.variants[name]
            loss, counts = accumulate(ddp, setup, samples, n, variant, ctx, _no_sync(ddp))
            comparison = None
            if ctx.rank == 0:
                comparison = compare_gradients(ref_grads, gradients(twin))
                if run.fitter.wants(n, name, comparison):
                    run.fitter.fit(step, n, name, twin, gradients(twin), ctx.world * n)
            twin_optimizer.step()
            if comparison is not None:
                diff = max_abs_difference(ref_params, list(twin.parameters()))
                run.row(step, n, name, counts, ref_loss, loss, comparison, diff)
            ctx.advance(f"step {step} N={n} {name}")
        run.publish()
