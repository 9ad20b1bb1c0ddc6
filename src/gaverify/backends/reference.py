"""The reference backend: gaverify's own explicit accumulation loop.

For each step the full batch (B samples, one backward) is the reference. For
each N the same samples are split into N micro-batches, and each variant
backpropagates w_i * S_i per micro-batch (S_i its summed loss, w_i the
variant's weight, see variants.py), which is what a real loop's
`(loss / scale).backward()` does. Two modes:

- lockstep: every run starts each step from the reference parameters, so
  each step's error is isolated. No parameter copies are needed: candidates
  only accumulate gradients, then the reference gradient is put back for the
  optimizer step. Pure weight variants (naive, fixed) share one backward per
  micro-batch (sweep.py); the others get a pass each.
- trajectory: every (N, variant) run trains its own copy of the model with
  its own optimizer, showing the drift users see in loss curves.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from gaverify.backends import Interrupted, Progress
from gaverify.backends.sweep import groups, shareable, sweep
from gaverify.collate import Batch
from gaverify.compare import (
    compare_gradients,
    gradients,
    max_abs_difference,
    top_layers,
    trainable,
)
from gaverify.optim import build_optimizer
from gaverify.prepare import Setup
from gaverify.results import Measurement, Trace
from gaverify.scenario import Scenario
from gaverify.sketch import GradientFitter
from gaverify.tasks import Task
from gaverify.variants import VARIANTS, Variant, Window, weighted_loss

REFERENCE = VARIANTS.get("fixed")  # with one micro-batch: S / T, the full batch


def accumulate(
    model: Any, micro_batches: Sequence[Batch], variant: Variant, task: Task, smoothing=0.0
) -> tuple[float, list[int]]:
    """Forward and backward every micro-batch with the variant's loss into the
    model's .grad (not zeroed here). Returns the loss the loop would log and
    each micro-batch's item count T_i (counted first, as num_items_in_batch
    needs the whole window before the first backward)."""
    counts = [task.count_items(mb["labels"]) for mb in micro_batches]
    weights = variant.weights(counts) if variant.weights else None
    order = range(len(micro_batches))
    logged = 0.0
    for i in reversed(order) if variant.reverse else order:
        window = Window(model, task, micro_batches[i], counts, smoothing)
        loss = weighted_loss(window, weights[i]) if weights else variant.loss(window)
        loss.backward()
        logged += float(loss.detach())
    return logged, counts


def run(scenario: Scenario, progress: Progress | None = None) -> Trace:
    """Run the scenario's paired passes and measure every step x N x variant."""
    import torch

    progress = progress or Progress()
    setup = Setup(scenario)
    plan = [(n, v) for n in scenario.batch.accumulation for v in scenario.variants]
    progress.start(len(setup.steps) * (1 + len(plan)))
    loop = _lockstep if scenario.mode == "lockstep" else _trajectory
    fitter = GradientFitter(setup)
    measurements: list[Measurement] = []  # filled as they come, so Ctrl-C keeps them

    def trace() -> Trace:
        notes = setup.run_notes()
        if scenario.mode == "lockstep":
            for group in groups(setup.variants):
                if len(group) > 1:
                    notes.append(
                        f"lockstep: {', '.join(group)} shared one backward per micro-batch"
                    )
        return Trace(
            measurements=measurements,
            device=setup.device,
            parameters=setup.parameters,
            notes=notes,
            fits=fitter.records(),
        )

    try:
        with torch.enable_grad():
            loop(setup, plan, progress, fitter, measurements)
    except KeyboardInterrupt:
        raise Interrupted(trace()) from None
    return trace()


def _optimizer(scenario: Scenario, model: Any):
    return build_optimizer(scenario.optimizer, trainable(model))


def measure(setup, step, n, variant, counts, ref_loss, loss, comparison, param_diff=None):
    """One Measurement of an accumulated run against the full batch."""
    k = setup.scenario.layers
    return Measurement(
        step=step,
        n=n,
        variant=variant,
        items_full=sum(counts),
        items_micro=counts,
        loss_full=ref_loss,
        loss_ga=loss,
        grad_norm_full=comparison.norm_ref,
        grad_norm_ga=comparison.norm_got,
        grad_rel_l2=comparison.rel_l2,
        grad_cosine=comparison.cosine,
        param_max_abs=param_diff,
        layers=top_layers(setup.parameter_names, comparison, k) if k else None,
    )


def _lockstep(setup: Setup, plan, progress, fitter: GradientFitter, out: list) -> None:
    scenario, model, task = setup.scenario, setup.built.model, setup.task
    smoothing = scenario.loss.label_smoothing
    optimizer = _optimizer(scenario, model)
    order = {name: i for i, name in enumerate(scenario.variants)}
    for step, samples in enumerate(setup.steps, start=1):
        optimizer.zero_grad(set_to_none=True)
        ref_loss, _ = accumulate(model, [setup.collate(samples)], REFERENCE, task, smoothing)
        ref_grads = gradients(model)  # kept, not copied: the candidates get fresh .grad
        progress.advance(f"step {step} full batch")
        for n in scenario.batch.accumulation:
            micro = setup.micro_batches(samples, n)
            basis, rows = None, []
            for group in groups(setup.variants):
                optimizer.zero_grad(set_to_none=True)
                for name, loss, counts, grads, swept in _passes(setup, fitter, n, micro, group):
                    basis = basis or swept
                    comparison = compare_gradients(ref_grads, grads)
                    if fitter.wants(n, name, comparison):
                        fitter.fit(step, n, name, model, grads, basis=basis)
                    rows.append(measure(setup, step, n, name, counts, ref_loss, loss, comparison))
                    progress.advance(f"step {step} N={n} {name}")
                    del grads  # a shared variant's buffer goes as soon as it is compared
            out.extend(sorted(rows, key=lambda m: order[m.variant]))
        if step < len(setup.steps):  # the last update would never be looked at
            for p, g in zip(trainable(model), ref_grads, strict=True):
                p.grad = g
            optimizer.step()
        del ref_grads  # or it outlives the next step's zero_grad: a buffer more at its peak
        fitter.sketch.forget()  # the signs are redrawn if a later step needs them


def _passes(setup: Setup, fitter: GradientFitter, n: int, micro, group: list[str]):
    """(name, logged loss, counts, gradient, sketch basis or None) of each
    variant in `group`: one shared sweep, or the variant's own pass."""
    task, smoothing = setup.task, setup.scenario.loss.label_smoothing
    variants = [setup.variants[name] for name in group]
    if not shareable(variants[0]):
        loss, counts = accumulate(setup.built.model, micro, variants[0], task, smoothing)
        yield group[0], loss, counts, gradients(setup.built.model), None
        return
    sketch = fitter.sketch if fitter.pending(n, variants) else None
    done = sweep(setup.built.model, micro, variants, task, smoothing, sketch)
    basis = (done.counts, done.basis) if sketch else None
    while done.results:
        result = done.results.pop(0)
        yield result.name, result.loss, done.counts, result.grads, basis


def _trajectory(setup: Setup, plan, progress, fitter: GradientFitter, out: list) -> None:
    scenario, model, task = setup.scenario, setup.built.model, setup.task
    smoothing = scenario.loss.label_smoothing
    runs = {}
    for key in plan:
        twin = copy.deepcopy(model)
        runs[key] = (twin, _optimizer(scenario, twin))
    optimizer = _optimizer(scenario, model)
    for step, samples in enumerate(setup.steps, start=1):
        optimizer.zero_grad(set_to_none=True)
        ref_loss, _ = accumulate(model, [setup.collate(samples)], REFERENCE, task, smoothing)
        optimizer.step()  # leaves .grad in place for the comparisons below
        ref_grads, ref_params = gradients(model), list(model.parameters())
        progress.advance(f"step {step} full batch")
        for (n, name), (twin, twin_optimizer) in runs.items():
            twin_optimizer.zero_grad(set_to_none=True)
            micro = setup.micro_batches(samples, n)
            loss, counts = accumulate(twin, micro, setup.variants[name], task, smoothing)
            comparison = compare_gradients(ref_grads, gradients(twin))
            if fitter.wants(n, name, comparison):
                fitter.fit(step, n, name, twin, gradients(twin))
            twin_optimizer.step()
            diff = max_abs_difference(ref_params, list(twin.parameters()))
            out.append(measure(setup, step, n, name, counts, ref_loss, loss, comparison, diff))
            progress.advance(f"step {step} N={n} {name}")
