"""The loop backend: your own accumulation step, measured against itself.

A scenario names `loop.step: module:function`, a function with the protocol

    step(model, optimizer, micro_batches) -> float

`micro_batches` is a list of dicts of tensors that `model(**mb)` accepts
(labels use -100 for ignored positions). The function runs its forwards and
backwards, calls optimizer.step() (it may zero_grad too) and returns the
loss it would log. Each step it is called once with the full batch as one
micro-batch (the reference) and once per N with N micro-batches, from the
same model and optimizer state. A step pre-hook on the optimizer captures
the gradient about to be applied (after any clipping the loop does); the
parameters after the step and the returned loss are compared too.

- lockstep: every call starts from the state before the step (parameters
  and optimizer state restored), so each step's error is isolated.
- trajectory: each N trains its own copy of the model with its own optimizer.

gaverify sets .grad to None before each call, so a loop that never zeroes
its gradients is not caught here; and unless model.dropout is set, the
model stays in eval mode even when the loop calls model.train().
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gaverify.backends.kit import Run
from gaverify.data.collate import model_batch
from gaverify.errors import GaverifyError, root_cause
from gaverify.imports import describe, load_object
from gaverify.measure.compare import (
    GradComparison,
    compare_gradients,
    max_abs_difference,
    snapshot,
    trainable,
)
from gaverify.measure.results import Trace
from gaverify.model.calls import keep_eval_mode
from gaverify.model.optim import build_optimizer
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario


@dataclass
class Call:
    """What one call of the step function did."""

    loss: float  # what it returned
    grads: list[Any] | None  # the gradient at its first optimizer.step() (reference calls)
    comparison: GradComparison | None  # against the reference, taken at the step


class State:
    """Trainable parameters and optimizer state, saved so that several calls
    can start from one point."""

    def __init__(self, model: Any, optimizer: Any):
        self.params = [p.detach().clone() for p in trainable(model)]
        self.optimizer = copy.deepcopy(optimizer.state_dict())

    def restore(self, model: Any, optimizer: Any) -> None:
        """Put the model and optimizer back as they were saved."""
        import torch

        with torch.no_grad():
            for p, saved in zip(trainable(model), self.params, strict=True):
                p.copy_(saved)
        # load_state_dict keeps the tensors it is given: copy, or the next
        # step would update the saved state in place.
        optimizer.load_state_dict(copy.deepcopy(self.optimizer))


class StepFunction:
    """The user's step function, called under the protocol's rules."""

    model_loss = False  # what it backpropagates is its own business: never split

    def __init__(self, path: str, search: list[Any]):
        self.path = path
        self.func: Callable[..., Any] = load_object(path, "loop.step", search)
        self.origin = describe(self.func, path)
        self.extra_steps: dict[str, int] = {}  # where -> optimizer.step() calls, when not 1

    def __call__(
        self,
        model: Any,
        optimizer: Any,
        micro_batches: list[dict[str, Any]],
        where: str,
        reference: list[Any] | None = None,
        on_gradient: Callable[[list[Any], GradComparison], None] | None = None,
    ) -> Call:
        """Call it once. The gradient of its first optimizer.step() is what
        counts: kept (for the reference call), or compared with `reference`
        right there, where `on_gradient` (the diagnosis' fit) still sees the
        parameters it was taken at; no copy of it is made."""
        import torch

        params = trainable(model)
        seen: dict[str, Any] = {"steps": 0}

        def capture(_optimizer, _args, _kwargs):
            seen["steps"] += 1
            if seen["steps"] > 1:
                return
            if reference is None:
                seen["grads"] = snapshot([p.grad for p in params])
                return
            grads = [p.grad for p in params]
            seen["comparison"] = compare_gradients(reference, grads)
            if on_gradient is not None:
                on_gradient(grads, seen["comparison"])

        optimizer.zero_grad(set_to_none=True)
        handle = optimizer.register_step_pre_hook(capture)
        try:
            with torch.enable_grad():
                value = self.func(model, optimizer, micro_batches)
        except GaverifyError:
            raise
        except Exception as exc:  # the user's code: report it, do not crash
            raise GaverifyError(
                f"loop.step: {self.path} raised {type(exc).__name__}: {root_cause(exc)} ({where})"
            ) from exc
        finally:
            handle.remove()
        if not seen["steps"]:
            raise GaverifyError(
                f"loop.step: {self.path} returned without calling optimizer.step() ({where}); "
                "the step function must take the optimizer step itself"
            )
        if seen["steps"] != 1:
            self.extra_steps[where] = seen["steps"]
        loss = _as_number(value, self.path, where)
        return Call(loss, seen.get("grads"), seen.get("comparison"))

    def notes(self) -> list[str]:
        """What the report should say about the calls."""
        notes = []
        if self.extra_steps:
            first = next(iter(self.extra_steps.items()))
            notes.append(
                f"loop.step called optimizer.step() {first[1]} times in one call ({first[0]}; "
                f"{len(self.extra_steps)} such calls): the gradient of its first step is compared, "
                "the parameters after its last"
            )
        return notes


def _as_number(value: Any, path: str, where: str) -> float:
    import torch

    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise GaverifyError(
        f"loop.step: {path} returned {type(value).__name__}, not a number (the loss it would "
        f"log) ({where})"
    )


def run(scenario: Scenario, progress: Progress) -> Trace:
    """Call the scenario's step function on the full batch and on N
    micro-batches, every step, and measure each N against the full batch."""
    # imported (and noted) by the Run's set-up, as its one variant
    run = Run(scenario, progress, StepFunction, late_notes=lambda: step_fn.notes())
    step_fn: StepFunction = run.setup.variants[scenario.loop.step]
    run.unsplit_extras()
    if not scenario.model.dropout:  # a loop calling model.train() must not turn dropout on
        keep_eval_mode(run.setup.built.model)
    progress.start(len(run.setup.steps) * (1 + len(scenario.batch.accumulation)))
    loop = _lockstep if scenario.mode == "lockstep" else _trajectory
    with run.recording():
        loop(run, step_fn)
    return run.trace()


def _optimizer(run: Run, model: Any):
    return build_optimizer(run.scenario.optimizer, trainable(model))


def _candidate(run: Run, step_fn, model, optimizer, step, n, ref: Call):
    """Call the step function with N micro-batches; (Call, item counts)."""
    setup = run.setup
    micro = setup.micro_batches(setup.steps[step - 1], n)
    name = step_fn.path

    def fit(grads, comparison):  # at the step: the parameters are those of the gradient
        if run.fitter.wants(n, name, comparison):
            run.fitter.fit(step, n, name, model, grads)

    batches = [model_batch(setup.task, mb) for mb in micro]
    got = step_fn(model, optimizer, batches, f"step {step}, N={n}", ref.grads, fit)
    return got, [setup.task.count_items(mb["labels"]) for mb in micro]


def _reference(run: Run, step_fn, model, optimizer, step: int) -> Call:
    setup = run.setup
    full = [model_batch(setup.task, setup.collate(setup.steps[step - 1]))]
    return step_fn(model, optimizer, full, f"step {step}, full batch")


def _lockstep(run: Run, step_fn: StepFunction) -> None:
    model = run.setup.built.model
    optimizer = _optimizer(run, model)
    for step in range(1, len(run.setup.steps) + 1):
        before = State(model, optimizer)
        ref = _reference(run, step_fn, model, optimizer, step)
        run.progress.advance(f"step {step} full batch")
        after = State(model, optimizer)
        for n in run.scenario.batch.accumulation:
            before.restore(model, optimizer)
            got, counts = _candidate(run, step_fn, model, optimizer, step, n, ref)
            diff = max_abs_difference(after.params, trainable(model))
            run.row(step, n, step_fn.path, counts, ref.loss, got.loss, got.comparison, diff)
            run.progress.advance(f"step {step} N={n}")
        after.restore(model, optimizer)  # the next step starts from the full batch's update


def _trajectory(run: Run, step_fn: StepFunction) -> None:
    model = run.setup.built.model
    optimizer = _optimizer(run, model)
    runs = {}
    for n in run.scenario.batch.accumulation:
        twin = copy.deepcopy(model)
        runs[n] = (twin, _optimizer(run, twin))
    for step in range(1, len(run.setup.steps) + 1):
        ref = _reference(run, step_fn, model, optimizer, step)
        run.progress.advance(f"step {step} full batch")
        for n, (twin, twin_optimizer) in runs.items():
            got, counts = _candidate(run, step_fn, twin, twin_optimizer, step, n, ref)
            diff = max_abs_difference(trainable(model), trainable(twin))
            run.row(step, n, step_fn.path, counts, ref.loss, got.loss, got.comparison, diff)
            run.progress.advance(f"step {step} N={n}")
