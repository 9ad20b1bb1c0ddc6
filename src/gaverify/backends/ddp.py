"""The ddp backend: DistributedDataParallel on W processes vs the full batch in one.

gaverify launches W ranks through torch's elastic launcher
(distributed/launch.py); each runs `work` below. Rank r takes the r-th of W
equal, consecutive shards of each step's batch (a DistributedSampler's
split, without shuffling) and cuts it into N micro-batches, so W x N
micro-batches cover the full batch. The first N-1 backwards run under DDP's
no_sync; the last one all-reduces (averages) the accumulated gradients. Each
variant weights each micro-batch's summed loss by a rule on the ranks'
item counts, gathered before the first backward (accumulation/ddp_variants.py).

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
import math
import time
from contextlib import nullcontext
from typing import Any

from gaverify.accumulation.ddp_variants import DdpVariant, resolve_ddp_variant
from gaverify.accumulation.variants import Window, weighted_loss
from gaverify.backends.kit import Interrupted, Run
from gaverify.backends.reference import full_batch
from gaverify.backends.setup import Setup
from gaverify.distributed.launch import RanksInterrupted, run_ranks
from gaverify.distributed.rank import RankContext, mean_over_ranks, partial_path
from gaverify.measure.compare import compare_gradients, gradients, max_abs_difference, trainable
from gaverify.measure.results import Trace
from gaverify.model.build import resolve_device
from gaverify.model.optim import build_optimizer
from gaverify.output import write_atomic
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario

PUBLISH_S = 1.0  # rank 0 hands its rows so far to the parent at most this often


def run(scenario: Scenario, progress: Progress) -> Trace:
    """Launch the scenario's W ranks, wait for them, and return rank 0's Trace."""
    on_cuda = resolve_device(scenario.device) == "cuda"
    progress.start(scenario.steps * (1 + len(scenario.plan)))
    try:
        text = run_ranks(scenario, "gaverify.backends.ddp:work", progress, on_cuda)
    except RanksInterrupted as stop:  # rank 0 reports its rows after a step, at most once a second
        partial = Trace.model_validate_json(stop.partial) if stop.partial else None
        raise Interrupted(partial) from None
    return Trace.model_validate_json(text)


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
    run = Run(scenario, ctx, resolve_ddp_variant, guard=ctx.rank == 0, header=[header])
    run.device = f"{run.setup.device} x {ctx.world} ({dist.get_backend()})"
    published = [-math.inf]

    def publish() -> None:
        """What Ctrl-C keeps: the rows of the steps finished so far. Each write
        holds every row, so at most one a second keeps long runs linear."""
        if ctx.rank == 0 and time.monotonic() - published[0] >= PUBLISH_S:
            write_atomic(partial_path(ctx.folder), run.trace().model_dump_json())
            published[0] = time.monotonic()

    loop = _lockstep if scenario.mode == "lockstep" else _trajectory
    with torch.enable_grad():
        loop(run, ctx, publish)
    return run.trace().model_dump_json() if ctx.rank == 0 else ""


def _wrap(model: Any, ctx) -> Any:
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.local_rank] if ctx.device.startswith("cuda") else None
    # Unused parameters (a pooler a task never reads) would stall DDP's reducer.
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def _ddp_accumulate(
    ddp: Any, setup: Setup, samples: list, n: int, variant: DdpVariant, ctx
) -> tuple[float, list[int]]:
    """This rank's N micro-batches, forward and backward, the last one
    synchronising. Returns the ranks' mean logged loss and every rank's
    counts (rank by rank)."""
    import torch.distributed as dist

    size = len(samples) // ctx.world
    shard = samples[ctx.rank * size : (ctx.rank + 1) * size]
    micro = setup.micro_batches(shard, n)
    mine = [setup.task.count_items(mb["labels"]) for mb in micro]
    ranks: list[Any] = [None] * ctx.world
    dist.all_gather_object(ranks, mine)
    weights = variant.weights(mine, ranks)
    smoothing = setup.scenario.loss.label_smoothing
    logged = 0.0
    for i, mb in enumerate(micro):
        with nullcontext() if i == n - 1 else ddp.no_sync():
            loss = weighted_loss(Window(ddp, setup.task, mb, mine, smoothing), weights[i])
            loss.backward()
        logged += float(loss.detach())
    return mean_over_ranks(logged), [c for counts in ranks for c in counts]


def _broadcast_gradient(model: Any, ctx) -> list[Any]:
    """Rank 0's .grad on every rank (None where rank 0 has none)."""
    import torch
    import torch.distributed as dist

    params = trainable(model)
    mask = [[p.grad is not None for p in params]] if ctx.rank == 0 else [None]
    dist.broadcast_object_list(mask, src=0)
    out = []
    for p, has in zip(params, mask[0], strict=True):
        if not has:
            out.append(None)
            continue
        t = p.grad.detach().clone() if ctx.rank == 0 else torch.empty_like(p)
        dist.broadcast(t, src=0)
        out.append(t)
    return out


def _lockstep(run: Run, ctx: RankContext, publish) -> None:
    setup = run.setup
    scenario, model = setup.scenario, setup.built.model
    ddp = _wrap(model, ctx)
    optimizer = build_optimizer(scenario.optimizer, trainable(model))
    for step, samples in enumerate(setup.steps, start=1):
        optimizer.zero_grad(set_to_none=True)
        ref_loss = full_batch(setup, model, samples) if ctx.rank == 0 else 0.0
        ref_grads = _broadcast_gradient(model, ctx)
        ctx.advance(f"step {step} full batch")
        for n, name in scenario.plan:
            optimizer.zero_grad(set_to_none=True)
            loss, counts = _ddp_accumulate(ddp, setup, samples, n, setup.variants[name], ctx)
            if ctx.rank == 0:
                comparison = compare_gradients(ref_grads, gradients(model))
                if run.fitter.wants(n, name, comparison):
                    run.fitter.fit(step, n, name, model, gradients(model), ctx.world * n)
                run.row(step, n, name, counts, ref_loss, loss, comparison)
            ctx.advance(f"step {step} N={n} {name}")
        for p, g in zip(trainable(model), ref_grads, strict=True):
            p.grad = g
        optimizer.step()
        publish()


def _trajectory(run: Run, ctx: RankContext, publish) -> None:
    setup = run.setup
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
            loss, counts = _ddp_accumulate(ddp, setup, samples, n, setup.variants[name], ctx)
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
        publish()
