"""The fsdp backend: FSDP2 (`fully_shard`) on W processes vs the full batch in one.

Each rank shards the model with torch's FSDP2: every block the model names
in `_no_split_modules` (its decoder layers), then the root, so each rank
holds 1/W of every parameter, gradient and optimizer state. Each rank
accumulates N micro-batches of its shard of the batch (backends/parallel.py)
with `set_requires_gradient_sync(False)` until the last one, whose backward
reduce-scatters the accumulated gradients: averaged over W by default,
summed for the variants that set a gradient divide factor of 1
(accumulation/ddp_variants.py). Every rank then gathers each gradient
(`full_tensor`) and rank 0 compares it with the reference.

The reference is the single-process full batch: rank 0 keeps an unsharded
copy of the model and trains it. Lockstep: after each step rank 0 scatters
the reference's parameters into every rank's shards, so every (N, variant)
starts from them. Trajectory: each (N, variant) trains its own sharded copy
with an optimizer on its shards, as FSDP training does; its parameters are
gathered after each step and compared with the reference's.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Any

from gaverify.accumulation.ddp_variants import FSDP_VARIANTS
from gaverify.backends.parallel import ParallelRun, accumulate, decided, launch
from gaverify.backends.reference import full_batch
from gaverify.distributed.rank import RankContext
from gaverify.measure.compare import compare_gradients, gradients, max_abs_difference, trainable
from gaverify.measure.results import Trace
from gaverify.model.optim import build_optimizer
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario


def run(scenario: Scenario, progress: Progress) -> Trace:
    """Launch the scenario's W ranks, wait for them, and return rank 0's Trace."""
    return launch(scenario, progress, "gaverify.backends.fsdp:work")


def work(scenario: Scenario, ctx: RankContext) -> str:
    """One rank's part of the run. Rank 0 returns the Trace as JSON; the
    other ranks return an empty string."""
    import torch
    import torch.distributed as dist

    run = ParallelRun(scenario, ctx, "", FSDP_VARIANTS)
    blocks = _blocks(run.setup.built.model)
    where = f"each {blocks} and the root" if blocks else "the root alone"
    run.header[0] = (
        f"distributed: {ctx.world} processes ({dist.get_backend()}, torch {torch.__version__}), "
        f"FSDP2 fully_shard on {where}, "
        "set_requires_gradient_sync(False) on the first N-1 micro-batches, reduce-scatter "
        f"averaging over W (summing where a variant says so); N is per rank, so a window holds "
        f"{ctx.world} x N micro-batches (counts listed rank by rank); reference: the full "
        "batch in one process (rank 0, unsharded)"
    )
    loop = _lockstep if scenario.mode == "lockstep" else _trajectory
    with torch.enable_grad():
        loop(run)
    return run.result()


def _blocks(model: Any) -> str:
    """The block classes sharded one by one (the model's _no_split_modules)."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    found = sorted({type(m).__name__ for m in model.modules() if type(m).__name__ in names})
    return ", ".join(found)


def _shard(model: Any) -> Any:
    """`model`, sharded in place: each block, then the root."""
    from torch.distributed.fsdp import fully_shard

    names = set(getattr(model, "_no_split_modules", None) or ())
    for module in list(model.modules())[1:]:
        if type(module).__name__ in names:
            fully_shard(module)
    return fully_shard(model)


def _sync(sharded: Any):
    def sync(i: int, last: bool):
        sharded.set_requires_gradient_sync(last)
        return nullcontext()

    return sync


def _reduce(sharded: Any, summed: bool, world: int) -> None:
    """Sum the ranks' gradients or average them in every sharded module's
    reduce-scatter. A divide factor of W takes FSDP's default path (ReduceOp.AVG);
    a factor of 1 alone would ask for PREMUL_SUM, which gloo lacks, so summing
    also forces sum-only collectives (SUM, then a division by 1)."""
    from torch.distributed.fsdp import FSDPModule

    for module in sharded.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0 if summed else float(world))
            module.set_force_sum_reduction_for_comms(summed)


def _accumulate(run: ParallelRun, sharded: Any, samples: list, n: int, name: str):
    """One (N, variant) window on the shards; every rank gets the full gradient."""
    setup, ctx = run.setup, run.ctx
    variant = setup.variants[name]
    for p in sharded.parameters():
        p.grad = None
    _reduce(sharded, variant.summed, ctx.world)
    loss, counts = accumulate(sharded, setup, samples, n, variant, ctx, _sync(sharded))
    return loss, counts, _full(gradients(sharded), keep=ctx.rank == 0)


def _full(tensors: list[Any], keep: bool = True) -> list[Any]:
    """Each sharded tensor gathered whole (a collective: every rank calls it);
    with keep=False each is dropped once gathered (a rank that does not measure)."""
    out = []
    for t in tensors:
        whole = None if t is None else t.full_tensor()
        out.append(whole if keep else None)
    return out


def _scatter(reference: Any, sharded: Any, ctx: RankContext) -> None:
    """Rank 0's reference parameters into every rank's shards."""
    import torch
    from torch.distributed.tensor import distribute_tensor

    mine = list(reference.parameters()) if ctx.rank == 0 else None
    with torch.no_grad():
        for i, p in enumerate(sharded.parameters()):
            local = p.to_local()
            whole = mine[i].detach() if mine else local.new_empty(p.shape)
            part = distribute_tensor(whole, p.device_mesh, p.placements, src_data_rank=0)
            local.copy_(part.to_local())


def _reference(run: ParallelRun) -> Any:
    """Rank 0's unsharded copy of the starting model (None on the other ranks)."""
    model = run.setup.built.model
    return copy.deepcopy(model) if run.ctx.rank == 0 else None


def _lockstep(run: ParallelRun) -> None:
    setup, ctx = run.setup, run.ctx
    scenario = setup.scenario
    reference = _reference(run)
    sharded = _shard(setup.built.model)  # no full copy on ranks other than 0
    optimizer = build_optimizer(scenario.optimizer, trainable(reference)) if reference else None
    for step, samples in enumerate(setup.steps, start=1):
        ref_loss, ref_grads = 0.0, []
        if reference is not None:
            optimizer.zero_grad(set_to_none=True)
            ref_loss = full_batch(setup, reference, samples)
            ref_grads = gradients(reference)
        ctx.advance(f"step {step} full batch")
        for n, name in scenario.plan:
            loss, counts, grads = _accumulate(run, sharded, samples, n, name)
            if reference is not None:
                comparison = compare_gradients(ref_grads, grads)
                if run.fitter.wants(n, name, comparison):  # at the same parameters
                    run.fitter.fit(step, n, name, reference, grads, ctx.world * n)
                run.row(step, n, name, counts, ref_loss, loss, comparison)
            ctx.advance(f"step {step} N={n} {name}")
        if reference is not None:
            for p, g in zip(trainable(reference), ref_grads, strict=True):
                p.grad = g
            optimizer.step()
        _scatter(reference, sharded, ctx)
        run.publish()


def _trajectory(run: ParallelRun) -> None:
    setup, ctx = run.setup, run.ctx
    scenario, model = setup.scenario, setup.built.model
    runs = {}
    for key in scenario.plan:
        twin = _shard(copy.deepcopy(model))
        runs[key] = (twin, build_optimizer(scenario.optimizer, trainable(twin)))
    reference = model if ctx.rank == 0 else None
    optimizer = build_optimizer(scenario.optimizer, trainable(reference)) if reference else None
    for step, samples in enumerate(setup.steps, start=1):
        ref_loss, ref_grads, ref_params = 0.0, [], []
        if reference is not None:  # the reference trains in rank 0 alone
            optimizer.zero_grad(set_to_none=True)
            ref_loss = full_batch(setup, reference, samples)
            optimizer.step()
            ref_grads, ref_params = gradients(reference), list(reference.parameters())
        ctx.advance(f"step {step} full batch")
        for (n, name), (twin, twin_optimizer) in runs.items():
            loss, counts, grads = _accumulate(run, twin, samples, n, name)
            comparison = compare_gradients(ref_grads, grads) if reference is not None else None
            if decided(comparison is not None and run.fitter.wants(n, name, comparison)):
                _fit(run, twin, step, n, name, grads)
            twin_optimizer.step()
            params = _full(list(twin.parameters()), keep=ctx.rank == 0)
            if comparison is not None:
                diff = max_abs_difference(ref_params, params)
                run.row(step, n, name, counts, ref_loss, loss, comparison, diff)
            ctx.advance(f"step {step} N={n} {name}")
        run.publish()


def _fit(run: ParallelRun, twin: Any, step: int, n: int, name: str, grads: list) -> None:
    """Fit a diverging run's gradient at its own parameters: gathered from
    its shards into an unsharded scratch copy on rank 0, for this fit only."""
    import torch

    params = _full(list(twin.parameters()), keep=run.ctx.rank == 0)
    if run.ctx.rank != 0:
        return
    scratch = copy.deepcopy(run.setup.built.model)
    with torch.no_grad():
        for p, whole in zip(scratch.parameters(), params, strict=True):
            p.copy_(whole)
    run.fitter.fit(step, n, name, scratch, grads, run.ctx.world * n)
