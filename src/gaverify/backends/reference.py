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
- trajectory: every (N, variant) run trains on its own, showing the drift
  users see in loss curves. The reference trains first onto a tape on disk
  (tape.py), then the runs train in turn on the same model: one model and
  optimizer in memory, however many N and variants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gaverify.accumulation.variants import FULL_BATCH, Variant, Window, weighted_loss
from gaverify.backends.kit import Run, drift_note
from gaverify.backends.setup import Setup
from gaverify.backends.sweep import MAX_SHARED, Swept, groups, shareable, sweep
from gaverify.backends.tape import Tape, restore, state_tensors
from gaverify.data.collate import Batch
from gaverify.measure.compare import compare_gradients, gradients, max_abs_difference, trainable
from gaverify.measure.estimate import BUCKETS, ERROR, Probe, estimate_note
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
        run.notes += _plan_notes(run.setup)
        shared = [group for group in _groups(run.setup) if len(group) > 1]
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


def _groups(setup: Setup) -> list[list[str]]:
    """The variants that share a sweep under the run's lockstep plan."""
    per_sweep = {"shared": MAX_SHARED, "in-turn": 1}.get(setup.plan, len(setup.variants))
    return groups(setup.variants, per_sweep)


def _plan_notes(setup: Setup) -> list[str]:
    """What the report says about a lockstep plan other than shared buffers."""
    passed = setup.estimate.passed_over if setup.estimate else []
    why = f" (memory_plan auto: {'; '.join(passed)}, more than fits)" if passed else ""
    if setup.plan == "in-turn":
        return [f"memory: lockstep plan in-turn, a backward pass per variant, one gradient "
                f"buffer; numbers exact{why}"]  # fmt: skip
    if setup.plan == "sketched":
        return [f"memory: lockstep plan sketched, one backward for every weight variant, no "
                f"gradient buffer{why}", estimate_note()]  # fmt: skip
    return []


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
            for group in _groups(setup):  # a variant with its own loss runs alone
                token = (ref_loss, ref_grads)
                reference = _reference_of(run, own, optimizer, samples, step, group[0], token)
                # the fit reads a variant judged on its own loss in that loss's units
                own_grad = None if reference is token else reference[1]
                optimizer.zero_grad(set_to_none=True)
                for result, counts, swept in _passes(run, n, micro, group, ref_grads):
                    basis, name = basis or swept, result.name
                    got, ref, weight = (result.loss, result.grads), reference, None
                    if run.splits(name):  # MoE router losses: token parts, and their weight
                        parts = run.split_extras(model, micro, samples, got, ref, (step, n, name))
                        got, ref, weight = parts.got, parts.ref, parts.fit.weight
                        own_grad, basis = ref[1], basis or parts.basis
                    comparison = result.comparison or compare_gradients(ref[1], got[1])
                    if result.comparison is not None:
                        _uncertain(run, name, comparison)
                    if run.fitter.wants(n, name, comparison):
                        target = _sketched(setup, result, basis) if got[1] is None else None
                        run.fitter.fit(step, n, name, model, got[1], basis=basis,
                                       reference=own_grad, target=target)  # fmt: skip
                    run.row(step, n, name, counts, ref[0], got[0], comparison, extra_weight=weight)
                    run.progress.advance(f"step {step} N={n} {name}")
                    del result, got, ref  # a shared variant's buffer goes once compared
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


def _passes(run: Run, n: int, micro, group: list[str], ref_grads: list):
    """(Swept, counts, sketch basis or None) of each variant in `group`:
    one shared sweep (under the sketched plan: compared on the fly against
    `ref_grads`, nothing kept), or the variant's own pass."""
    setup = run.setup
    task, smoothing = setup.task, setup.scenario.loss.label_smoothing
    variants = [setup.variants[name] for name in group]
    if not shareable(variants[0]):
        loss, counts = accumulate(setup.built.model, micro, variants[0], task, smoothing)
        yield Swept(group[0], loss, gradients(setup.built.model)), counts, None
        return
    if setup.plan == "sketched":  # the probe's sketches are the fit's basis too
        probe = Probe(ref_grads, n, run.fitter.sketch.sharing(BUCKETS))
        done = sweep(setup.built.model, micro, variants, task, smoothing, probe=probe)
        basis = (done.counts, probe.rows.reshape(n, -1) * (sum(done.counts) or 1))  # unscaled
    else:
        sketch = run.fitter.sketch if run.fitter.pending(n, variants) else None
        done = sweep(setup.built.model, micro, variants, task, smoothing, sketch)
        basis = (done.counts, done.basis) if sketch else None
    while done.results:
        yield done.results.pop(0), done.counts, basis


def _uncertain(run: Run, name: str, comparison: Any) -> None:
    """Note a sketched rel-L2 whose verdict its estimation error could flip."""
    tol = run.scenario.tolerance_for(name).grad_rel_l2
    if isinstance(tol, float) and abs(comparison.rel_l2 - tol) <= 4 * ERROR * comparison.rel_l2:
        run.notes.append(
            f"{name}: an estimated rel-L2 ({comparison.rel_l2:.3e}) lies within the sketch's "
            f"error of its tolerance ({tol:.1e}), so its verdict there is uncertain; "
            "memory_plan: in-turn gives exact numbers"
        )


def _sketched(setup: Setup, result: Swept, basis: tuple) -> Any:
    """The fit's target when no gradient was kept: the variant's gradient is
    sum_i w_i g_i by construction, so its sketch is sum_i w_i S(g_i)."""
    import torch

    counts, rows = basis
    weights = setup.variants[result.name].weights(list(counts))
    return torch.tensor(weights, dtype=torch.float64) @ rows


def _trajectory(run: Run) -> None:
    """Each reference run (the token loss's; a variant's own loss's) trains
    first onto the tape; then each (N, variant) run trains in turn on the
    same model, reset to its first weights, against it (backends/tape.py)."""
    setup = run.setup
    scenario, model = setup.scenario, setup.built.model
    references = [None] + [  # a split variant is judged in place
        name for name, v in setup.variants.items() if v.own_reference and not run.splits(name)
    ]
    with Tape() as tape:
        tape.write("start", state_tensors(model))
        for key in references:
            _record(run, tape, key)
        for n, name in scenario.plan:
            restore(model, tape.read("start"))
            _replay(run, tape, n, name, name if name in references else None)
    order = {key: i for i, key in enumerate(scenario.plan)}  # as if the runs went side by side
    run.fitter.sort(lambda fit: (fit.step, order[(fit.n, fit.variant)]))


def _record(run: Run, tape: Tape, key: str | None) -> None:
    """Train a reference run (the token loss S/T's, or variant `key`'s own
    loss) on the full batches from the first weights, recording per step its
    loss, gradient and parameters after the update."""
    setup, model = run.setup, run.setup.built.model
    restore(model, tape.read("start"))
    optimizer = _optimizer(setup.scenario, model)
    variant = FULL_BATCH if key is None else setup.variants[key]
    for step, samples in enumerate(setup.steps, start=1):
        optimizer.zero_grad(set_to_none=True)
        loss = full_batch(setup, model, samples, variant)
        optimizer.step()
        tape.losses[(key, step)] = loss
        if key is None:
            run.progress.advance(f"step {step} full batch")
        tape.write((key, step, "grad"), gradients(model))
        tape.write((key, step, "params"), list(model.parameters()))
        if key is not None and step == 1:
            token = (tape.losses[(None, 1)], tape.read((None, 1, "grad")))
            _compared_note(run, key, (loss, gradients(model)), token)
    _release(optimizer)


def _replay(run: Run, tape: Tape, n: int, name: str, key: str | None) -> None:
    """Train the (N, variant) run from the first weights and compare each
    step with reference `key`'s tape (None: the token loss's)."""
    setup = run.setup
    scenario, model, task = setup.scenario, setup.built.model, setup.task
    smoothing = scenario.loss.label_smoothing
    optimizer = _optimizer(scenario, model)
    for step, samples in enumerate(setup.steps, start=1):
        ref_loss, ref_grads = tape.losses[(key, step)], tape.read((key, step, "grad"))
        optimizer.zero_grad(set_to_none=True)
        micro = setup.micro_batches(samples, n)
        loss, counts = accumulate(model, micro, setup.variants[name], task, smoothing)
        got, ref, weight = (loss, gradients(model)), (ref_loss, ref_grads), None
        basis = None
        if run.splits(name):  # judged at the run's own parameters (kit.drift_note)
            own = _own_full_batch(run, model, samples, name)
            parts = run.split_extras(model, micro, samples, got, own, (step, n, name))
            got, ref, weight, basis = parts.got, parts.ref, parts.fit.weight, parts.basis
        comparison = compare_gradients(ref[1], got[1])
        if run.fitter.wants(n, name, comparison):
            own = ref[1] if weight is not None else None  # the token part's, in place
            if key is not None:  # its own loss's full batch, at the run's parameters
                own = _own_full_batch(run, model, samples, name)[1]
            run.fitter.fit(step, n, name, model, got[1], basis=basis, reference=own)
            del own
        optimizer.step()
        diff = None
        if weight is None:
            diff = max_abs_difference(tape.read((key, step, "params")), list(model.parameters()))
        elif step == 1:
            run.notes.append(drift_note(name))
        run.row(step, n, name, counts, ref[0], got[0], comparison, diff, extra_weight=weight)
        run.progress.advance(f"step {step} N={n} {name}")
    _release(optimizer)


def _release(optimizer: Any) -> None:
    """Free an optimizer's state as its run ends, before the next run's is
    allocated, even if something (a user's scheduler, a traceback) still
    holds the optimizer."""
    optimizer.state.clear()
