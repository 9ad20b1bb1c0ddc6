"""What the data-parallel backends (ddp, fsdp) share: launching, accumulating, publishing.

- `launch`: start the scenario's W ranks on a worker function (or join the
  launcher that started this process) and return rank 0's Trace;
- `ParallelRun`: a kit Run on one rank, plus `publish`: rank 0 hands its
  rows so far to the parent at most once a second, for Ctrl-C to keep;
- `accumulate`: one rank's N micro-batches of its shard, forward and
  backward, weighted by a rank-aware variant (accumulation/ddp_variants.py),
  the engine's gradient sync off until the last one;
- `broadcast_gradient`: rank 0's gradient on every rank;
- `lockstep` and `trajectory`: the loops of the backends whose ranks each
  hold the whole model (ddp, accelerate), given how they accumulate a window.

Rank r takes the r-th of W equal, consecutive shards of each step's batch
(a DistributedSampler's split, without shuffling), so W x N micro-batches
cover the full batch.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from gaverify.accumulation.ddp_variants import DdpVariant
from gaverify.accumulation.variants import Window, weighted_loss
from gaverify.backends.kit import Interrupted, Run
from gaverify.backends.reference import full_batch
from gaverify.backends.setup import Setup
from gaverify.distributed.launch import run_ranks
from gaverify.distributed.rank import RankContext, RanksInterrupted, mean_over_ranks
from gaverify.measure.compare import compare_gradients, gradients, max_abs_difference, trainable
from gaverify.measure.results import Trace
from gaverify.model.build import resolve_device
from gaverify.model.optim import build_optimizer
from gaverify.progress import Progress
from gaverify.registry import Registry
from gaverify.spec.schema import Scenario

PUBLISH_S = 1.0  # rank 0 hands its rows so far to the parent at most this often

# (micro-batch index, whether it is the window's last) -> the context it runs in
Sync = Callable[[int, bool], AbstractContextManager[Any]]
# (a micro-batch's weighted loss) -> the loss the loop logs for it, after its backward
Backward = Callable[[Any], float]
# (the engine's model, the step's samples, N, variant) -> (logged loss, every rank's counts)
Accumulate = Callable[[Any, list, int, str], tuple[float, list[int]]]
# (a copy of the model) -> (the engine's model wrapping it, its optimizer)
Replicate = Callable[[Any], tuple[Any, Any]]


def _backward(loss: Any) -> float:
    loss.backward()
    return float(loss.detach())


def launch(scenario: Scenario, progress: Progress, worker: str) -> Trace:
    """Run `worker` on the scenario's W ranks, wait for them, and return
    rank 0's Trace; Ctrl-C keeps the rows rank 0 published."""
    on_cuda = resolve_device(scenario.device) == "cuda"
    progress.start(scenario.steps * (1 + len(scenario.plan)))
    try:
        text = run_ranks(scenario, worker, progress, on_cuda)
    except RanksInterrupted as stop:  # rank 0 reports its rows after a step, at most once a second
        partial = Trace.model_validate_json(stop.partial) if stop.partial else None
        raise Interrupted(partial) from None
    return Trace.model_validate_json(text)


class ParallelRun(Run):
    """A Run on one of W ranks: rank 0 measures and guards the memory."""

    def __init__(
        self, scenario: Scenario, ctx: RankContext, header: str, variants: Registry[DdpVariant]
    ):  # fmt: skip
        import torch.distributed as dist

        notes = [header, *([f"ranks started by {ctx.launcher}"] if ctx.launcher else [])]

        def resolve(name: str, search: object = None) -> DdpVariant:
            return variants.get(name)  # these backends run no user loss code

        super().__init__(scenario, ctx, resolve, guard=ctx.rank == 0, header=notes)
        self.ctx = ctx
        self.device = f"{self.setup.device} x {ctx.world} ({dist.get_backend()})"
        self._published = -math.inf

    def publish(self) -> None:
        """What Ctrl-C keeps: the rows of the steps finished so far. Each write
        holds every row, so at most one a second keeps long runs linear."""
        if self.ctx.rank == 0 and time.monotonic() - self._published >= PUBLISH_S:
            self.ctx.publish(self.trace().model_dump_json())
            self._published = time.monotonic()

    def result(self) -> str:
        """Rank 0's Trace as JSON; an empty string on the other ranks."""
        return self.trace().model_dump_json() if self.ctx.rank == 0 else ""


def accumulate(
    model: Any, setup: Setup, samples: list, n: int, variant: DdpVariant, ctx: RankContext,
    sync: Sync, backward: Backward = _backward,
) -> tuple[float, list[int]]:  # fmt: skip
    """This rank's N micro-batches, forward and `backward`, each in
    `sync(i, last)` (the engine's gradient sync off until the last).
    Returns the logged loss (the ranks' mean, or sum for a summing
    reduction) and every rank's counts (rank by rank)."""
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
        with sync(i, i == n - 1):
            loss = weighted_loss(Window(model, setup.task, mb, mine, smoothing), weights[i])
            logged += backward(loss)
    # the loss a loop logs: the ranks' mean where the reduction averages, their sum where it sums
    logged = mean_over_ranks(logged) * (ctx.world if variant.summed else 1)
    return logged, [c for counts in ranks for c in counts]


def broadcast_gradient(model: Any, ctx: RankContext) -> list[Any]:
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


def decided(value: bool) -> bool:
    """Rank 0's `value` on every rank: a decision every rank must act on
    together (a collective that only some ranks enter would hang)."""
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def lockstep(run: ParallelRun, engine: Any, window: Accumulate) -> None:
    """Every step: rank 0's full batch on the bare model, then each (N,
    variant) window on `engine` (the model wrapped) from the same parameters,
    then every rank steps with the reference gradient."""
    setup, ctx = run.setup, run.ctx
    scenario, model = setup.scenario, setup.built.model
    optimizer = build_optimizer(scenario.optimizer, trainable(model))
    for step, samples in enumerate(setup.steps, start=1):
        optimizer.zero_grad(set_to_none=True)
        ref_loss = full_batch(setup, model, samples) if ctx.rank == 0 else 0.0
        ref_grads = broadcast_gradient(model, ctx)
        ctx.advance(f"step {step} full batch")
        for n, name in scenario.plan:
            optimizer.zero_grad(set_to_none=True)
            loss, counts = window(engine, samples, n, name)
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


def trajectory(run: ParallelRun, replicate: Replicate, window: Accumulate) -> None:
    """The reference trains in rank 0 alone; each (N, variant) trains its own
    copy (`replicate`: wrapped, with its optimizer) on every rank."""
    setup, ctx = run.setup, run.ctx
    scenario, model = setup.scenario, setup.built.model
    runs = {}
    for key in scenario.plan:
        twin = copy.deepcopy(model)
        runs[key] = (twin, *replicate(twin))
    optimizer = build_optimizer(scenario.optimizer, trainable(model))
    for step, samples in enumerate(setup.steps, start=1):
        ref_loss, ref_grads, ref_params = 0.0, [], []
        if ctx.rank == 0:
            optimizer.zero_grad(set_to_none=True)
            ref_loss = full_batch(setup, model, samples)
            optimizer.step()
            ref_grads, ref_params = gradients(model), list(model.parameters())
        ctx.advance(f"step {step} full batch")
        for (n, name), (twin, engine, twin_optimizer) in runs.items():
            for p in twin.parameters():
                p.grad = None
            loss, counts = window(engine, samples, n, name)
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
