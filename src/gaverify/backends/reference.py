"""The reference backend: gaverify's own explicit accumulation loop.

For each step the full batch (B samples, one backward) is the reference. For
each N the same samples are split into N micro-batches, and each variant
backpropagates w_i * S_i per micro-batch (S_i its summed loss, w_i the
variant's weight, see accumulation/rules.py), which is what a real loop's
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
from typing import TYPE_CHECKING, Any

from gaverify.accumulation.variants import FULL_BATCH, Variant, Window, weighted_loss
from gaverify.backends.kit import Run, drift_note
from gaverify.backends.setup import Setup
from gaverify.backends.sweep import groups, shareable, sweep
from gaverify.data.collate import Batch
from gaverify.measure.compare import compare_gradients, gradients, max_abs_difference, trainable
from gaverify.model.optim import build_optimizer
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario
from gaverify.tasks.heads import Task

if TYPE_CHECKING:
    from gaverify.measure.results import Trace


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


def run(scenario: Scenario, progress: Progress) -> Trace:
    """Run the scenario's paired passes and measure every step x N x variant."""
    import torch

    run = Run(scenario, progress)
    progress.start(len(run.setup.steps) * (1 + len(scenario.plan)))
    if scenario.mode == "lockstep":
        shared = [group for group in groups(run.setup.variants) if len(group) > 1]
        run.notes += [
            f"lockstep: {', '.join(g)} shared one backward per micro-batch" for g in shared
        ]
    loop = _lockstep if scenario.mode == "lockstep" else _trajectory
    with run.recording(), torch.enable_grad():
        loop(run)
    return run.trace()


def _optimizer(scenario: Scenario, model: Any):
    return build_optimizer(scenario.optimizer, trainable(model))


def full_batch(setup: Setup, model: Any, samples: list, variant: Variant = FULL_BATCH) -> float:
    """Forward and backward the step's samples as one batch with the
    variant's loss (default: the token loss S/T, the reference of every
    weight rule) into the model's .grad; returns its loss."""
    batch = [setup.collate(samples)]
    loss, _ = accumulate(model, batch, variant, setup.task, setup.scenario.loss.label_smoothing)
    return loss


def _compared_note(run: Run, name: str, own: tuple[float, list], token: tuple[float, list]) -> None:
    """Information, never the verdict: how a variant's own full-batch loss
    differs from gaverify's token loss, at the first step (same parameters)."""
    rel = compare_gradients(token[1], own[1]).rel_l2
    run.notes.append(
        f"{name}: judged against its own loss on the full batch; at step 1 that loss is "
        f"{own[0]:.6g} against the token loss S/T {token[0]:.6g} (gradients differ by "
        f"rel-L2 {rel:.1e})"
    )


def _lockstep(run: Run) -> None:
    setup = run.setup
    scenario, model = setup.scenario, setup.built.model
    optimizer = _optimizer(scenario, model)
    for step, samples in enumerate(setup.steps, start=1):
        optimizer.zero_grad(set_to_none=True)
        ref_loss = full_batch(setup, model, samples)
        ref_grads = gradients(model)  # kept, not copied: the candidates get fresh .grad
        run.progress.advance(f"step {step} full batch")
        own: dict[str, tuple[float, list]] = {}  # a variant's own full batch, this step
        for n in scenario.batch.accumulation:
            micro = setup.micro_batches(samples, n)
            basis = None
            for group in groups(setup.variants):  # a variant with its own loss runs alone
                token = (ref_loss, ref_grads)
                reference = _reference_of(run, own, optimizer, samples, step, group[0], token)
                # the fit reads a variant judged on its own loss in that loss's units
                own_grad = None if reference is token else reference[1]
                optimizer.zero_grad(set_to_none=True)
                for name, loss, counts, grads, swept in _passes(run, n, micro, group):
                    basis = basis or swept
                    got, ref, weight = (loss, grads), reference, None
                    if run.splits(name):  # MoE router losses: token parts, and their weight
                        parts = run.split_extras(model, micro, samples, got, ref, (step, n, name))
                        got, ref, weight = parts.got, parts.ref, parts.fit.weight
                        own_grad, basis = ref[1], basis or parts.basis
                    comparison = compare_gradients(ref[1], got[1])
                    if run.fitter.wants(n, name, comparison):
                        run.fitter.fit(
                            step, n, name, model, got[1], basis=basis, reference=own_grad
                        )
                    run.row(step, n, name, counts, ref[0], got[0], comparison, extra_weight=weight)
                    run.progress.advance(f"step {step} N={n} {name}")
                    del grads, got, ref  # a shared variant's buffer goes once compared
        own.clear()
        token = reference = own_grad = None  # they hold gradients: buffers at the next peak
        if step < len(setup.steps):  # the last update would never be looked at
            for p, g in zip(trainable(model), ref_grads, strict=True):
                p.grad = g
            optimizer.step()
        del ref_grads  # or it outlives the next step's zero_grad: a buffer more at its peak
        run.fitter.sketch.forget()  # the signs are redrawn if a later step needs them


def _reference_of(run: Run, own: dict, optimizer: Any, samples: list, step: int, name: str,
                  token: tuple[float, list]) -> tuple[float, list]:  # fmt: skip
    """The full batch a variant is judged against: the token loss S/T's
    (`token`), or for a variant with its own loss, that loss's (computed once
    a step, kept in `own` while the N are compared)."""
    if not run.setup.variants[name].own_reference:
        return token
    if name not in own:
        optimizer.zero_grad(set_to_none=True)  # nothing to put back, no buffer kept
        own[name] = _own_full_batch(run, run.setup.built.model, samples, name)
        if step == 1:
            _compared_note(run, name, own[name], token)
    return own[name]


def _own_full_batch(run: Run, model: Any, samples: list, name: str) -> tuple[float, list]:
    """A variant's own loss on the full batch and its gradient at `model`'s
    parameters (not copied); the model's .grad is put back as it was."""
    return run.own_full_batch(model, samples, run.setup.variants[name])


def _passes(run: Run, n: int, micro, group: list[str]):
    """(name, logged loss, counts, gradient, sketch basis or None) of each
    variant in `group`: one shared sweep, or the variant's own pass."""
    setup = run.setup
    task, smoothing = setup.task, setup.scenario.loss.label_smoothing
    variants = [setup.variants[name] for name in group]
    if not shareable(variants[0]):
        loss, counts = accumulate(setup.built.model, micro, variants[0], task, smoothing)
        yield group[0], loss, counts, gradients(setup.built.model), None
        return
    sketch = run.fitter.sketch if run.fitter.pending(n, variants) else None
    done = sweep(setup.built.model, micro, variants, task, smoothing, sketch)
    basis = (done.counts, done.basis) if sketch else None
    while done.results:
        result = done.results.pop(0)
        yield result.name, result.loss, done.counts, result.grads, basis


def _trajectory(run: Run) -> None:
    setup = run.setup
    scenario, model, task = setup.scenario, setup.built.model, setup.task
    smoothing = scenario.loss.label_smoothing
    runs, references = {}, {None: (model, _optimizer(scenario, model))}
    for key in scenario.plan:
        twin = copy.deepcopy(model)
        runs[key] = (twin, _optimizer(scenario, twin))
    for name, variant in setup.variants.items():  # a reference run of its own loss
        if variant.own_reference and not run.splits(name):  # a split one is judged in place
            twin = copy.deepcopy(model)
            references[name] = (twin, _optimizer(scenario, twin))
    for step, samples in enumerate(setup.steps, start=1):
        done = {}  # reference key -> (loss, gradient, parameters after the step)
        for key, (ref_model, ref_optimizer) in references.items():
            ref_optimizer.zero_grad(set_to_none=True)
            variant = FULL_BATCH if key is None else setup.variants[key]
            loss = full_batch(setup, ref_model, samples, variant)
            ref_optimizer.step()  # leaves .grad in place for the comparisons below
            done[key] = (loss, gradients(ref_model), list(ref_model.parameters()))
            if key is not None and step == 1:
                _compared_note(run, key, done[key][:2], done[None][:2])
        run.progress.advance(f"step {step} full batch")
        for (n, name), (twin, twin_optimizer) in runs.items():
            ref_loss, ref_grads, ref_params = done[name if name in references else None]
            twin_optimizer.zero_grad(set_to_none=True)
            micro = setup.micro_batches(samples, n)
            loss, counts = accumulate(twin, micro, setup.variants[name], task, smoothing)
            got, ref, weight = (loss, gradients(twin)), (ref_loss, ref_grads), None
            basis = None
            if run.splits(name):  # judged at the twin's own parameters (kit.drift_note)
                own = _own_full_batch(run, twin, samples, name)
                parts = run.split_extras(twin, micro, samples, got, own, (step, n, name))
                got, ref, weight, basis = parts.got, parts.ref, parts.fit.weight, parts.basis
            comparison = compare_gradients(ref[1], got[1])
            if run.fitter.wants(n, name, comparison):
                own = ref[1] if weight is not None else None  # the token part's, in place
                if name in references:  # its own loss's full batch, at the twin's parameters
                    own = _own_full_batch(run, twin, samples, name)[1]
                run.fitter.fit(step, n, name, twin, got[1], basis=basis, reference=own)
                del own
            twin_optimizer.step()
            diff = None
            if weight is None:
                diff = max_abs_difference(ref_params, list(twin.parameters()))
            elif step == 1:
                run.notes.append(drift_note(name))
            run.row(step, n, name, counts, ref[0], got[0], comparison, diff, extra_weight=weight)
            run.progress.advance(f"step {step} N={n} {name}")
