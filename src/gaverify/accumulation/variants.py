"""Loss variants: how an accumulation loop turns each micro-batch into a loss.

A micro-batch i has a summed loss S_i over T_i counted items (label tokens,
or samples). Within one accumulation window of N micro-batches (T = sum T_i):

    full batch (reference)  S / T
    fixed                   S_i / T           num_items_in_batch: equals the reference
    fixed-reordered         fixed, micro-batches backpropagated last to first (rounding only)
    naive                   S_i / (N * T_i)   mean of means: differs when the T_i differ
    model                   the model's own loss, given num_items_in_batch the way the
                            Trainer gives it (divided by N when the model takes no loss
                            kwargs): catches a head that accepts the count but ignores it
    label-smoother          transformers' LabelSmoother, called as the installed Trainer
                            calls it
    module:function         your compute_loss_func(outputs, labels, num_items_in_batch)

naive and fixed are pure weights on S_i; the others run code of transformers
or of the user. model, loss-type and module:function are judged against
their own loss on the full batch (own_reference), the others against S / T.
This module imports no torch until a loss is computed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaverify.accumulation.declaration import Declaration
from gaverify.accumulation.loss_mapping import route
from gaverify.accumulation.rules import fixed_weights, naive_weights
from gaverify.errors import GaverifyError
from gaverify.imports import describe, is_import_path, load_object
from gaverify.model.calls import forward, forward_parameters, logits_of, loss_of
from gaverify.registry import Registry
from gaverify.tasks.heads import TASKS

Weights = Callable[[Sequence[int]], list[float]]


@dataclass(frozen=True)
class Window:
    """One micro-batch inside its accumulation window: what a variant sees."""

    model: Any
    task: Any  # tasks.Task
    batch: dict[str, Any]
    counts: Sequence[int]  # counted items of every micro-batch of the window
    label_smoothing: float = 0.0

    @property
    def n(self) -> int:
        return len(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class Variant(Declaration):
    """A loss normalisation rule of the reference backend. Exactly one of
    `weights` (a rule on summed losses) and `loss` (code run per micro-batch),
    or `build`, which makes the Variant to run once the model exists."""

    weights: Weights | None = None
    loss: Callable[[Window], Any] | None = None
    reverse: bool = False  # backpropagate the micro-batches last to first
    # Judged against its own loss on the full batch (one micro-batch, the
    # whole window's count), not gaverify's token loss S/T: a loss defined
    # differently (scaled, class-weighted) can still be exactly invariant.
    own_reference: bool = False


def summed_loss(window: Window):
    """S_i: the task's summed loss of the micro-batch."""
    logits = logits_of(forward(window.model, window.task, window.batch))
    return window.task.summed_loss(logits, window.batch["labels"], window.label_smoothing)


def weighted_loss(window: Window, weight: float):
    """w_i * S_i: the task's summed loss of the micro-batch, weighted."""
    return summed_loss(window) * weight


def trainer_scales_loss(model: Any) -> bool:
    """Whether the Trainer passes num_items_in_batch to this model (or model
    class) and then skips its own division by N (its `model_accepts_loss_kwargs` rule)."""
    declared = getattr(model, "accepts_loss_kwargs", None)
    if declared is not None:
        return bool(declared)
    params = forward_parameters(model if isinstance(model, type) else type(model))
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _count_kwargs(window: Window) -> dict[str, Any]:
    import torch

    # The Trainer counts items only in a `labels` key (a QA head's labels are
    # start_positions and end_positions), and only for a model taking loss kwargs.
    if window.task.label_inputs is not None or not trainer_scales_loss(window.model):
        return {}
    return {"num_items_in_batch": torch.tensor(window.total, device=window.batch["labels"].device)}


def model_loss(window: Window):
    """The model's own loss, as the Trainer's compute_loss gets it."""
    kwargs = _count_kwargs(window)
    loss = loss_of(forward(window.model, window.task, window.batch, with_labels=True, **kwargs))
    return loss if kwargs else loss / window.n


def label_smoother_loss(window: Window):
    """transformers' LabelSmoother as the installed Trainer calls it: labels
    kept from the model, num_items_in_batch passed when the smoother takes it."""
    from transformers.trainer_pt_utils import LabelSmoother

    kwargs = _count_kwargs(window)
    outputs = forward(window.model, window.task, window.batch, **kwargs)
    smoother = LabelSmoother(epsilon=window.label_smoothing)
    extra = {}
    if kwargs and "num_items_in_batch" in inspect.signature(smoother.__call__).parameters:
        extra = kwargs
    loss = smoother(outputs, window.batch["labels"], shift_labels=window.task.shift_labels, **extra)
    return loss if kwargs else loss / window.n


def _smoothable(scenario: Any) -> str | None:
    task = TASKS.get(scenario.model.task)
    if task.smoothable:
        return None
    return f"variants: label-smoother needs a cross-entropy task, not {task.name}"


def _unsmoothed(name: str):
    """The model's own loss has no label smoothing to apply."""

    def check(scenario: Any) -> str | None:
        if scenario.loss.label_smoothing:
            return f"variants: '{name}' uses the model's own loss, which has no label smoothing"
        return None

    return check


VARIANTS: Registry[Variant] = Registry("variant")
VARIANTS.add(
    "naive",
    Variant(
        "naive",
        "per-micro-batch mean loss / N (mean of means; the classic bug)",
        "fail",
        weights=naive_weights,
    ),
)
VARIANTS.add(
    "fixed",
    Variant(
        "fixed",
        "per-micro-batch summed loss / item count of the whole batch (num_items_in_batch)",
        "pass",
        weights=fixed_weights,
    ),
)
VARIANTS.add(
    "fixed-reordered",
    Variant(
        "fixed-reordered",
        "fixed, with the micro-batches in reverse order: a second correct loop whose "
        "divergence is pure rounding (what tolerance: auto calibrates on)",
        "pass",
        weights=fixed_weights,
        reverse=True,
    ),
)
VARIANTS.add(
    "model",
    Variant(
        "model",
        "the model's own loss given num_items_in_batch, as the Trainer passes it",
        "pass",
        loss=model_loss,
        own_reference=True,
        model_loss=True,
        check=_unsmoothed("model"),
    ),
)
VARIANTS.add(
    "label-smoother",
    Variant(
        "label-smoother",
        "transformers' LabelSmoother (loss.label_smoothing), called as the Trainer calls it",
        "pass",
        loss=label_smoother_loss,
        check=_smoothable,
    ),
)
VARIANTS.add(
    "loss-type",
    Variant(
        "loss-type",
        "your loss.loss_type function, registered in transformers' LOSS_MAPPING and reached "
        "through the model's own loss dispatch (given num_items_in_batch)",
        "pass",
        reads="loss.loss_type",
        own_reference=True,
        model_loss=True,
        check=_unsmoothed("loss-type"),
        build=lambda scenario, search, model: loss_type_variant(
            scenario.loss.loss_type, search, model
        ),
    ),
)


FULL_BATCH = VARIANTS.get("fixed")  # with one micro-batch: S / T, the full batch


def loss_type_variant(path: str, search: list[Path], model: Any) -> Variant:
    """The loss-type variant: see loss_mapping.py."""
    dispatch = route(path, search, model)
    return Variant(
        "loss-type",
        VARIANTS.get("loss-type").summary,
        "pass",
        loss=lambda window: dispatch.call(model_loss, window),
        origin=dispatch.origin,
        own_reference=True,
        model_loss=True,
    )


def custom_variant(path: str, search: list[Path]) -> Variant:
    """A variant from the user's compute_loss_func(outputs, labels, num_items_in_batch)."""
    func = load_object(path, "variants", search)

    def loss(window: Window):
        import torch

        outputs = forward(window.model, window.task, window.batch, **_count_kwargs(window))
        total = torch.tensor(window.total, device=window.batch["labels"].device)
        return call_user_loss(path, func, outputs, window.batch["labels"], total)

    summary = "your compute_loss_func (as the Trainer calls it)"
    return Variant(
        path,
        summary,
        "pass",
        loss=loss,
        origin=describe(func, path),
        own_reference=True,
        model_loss=True,
    )


def call_user_loss(path: str, func: Callable[..., Any], outputs, labels, num_items_in_batch):
    """func(outputs, labels, num_items_in_batch=...) as the Trainer calls a
    compute_loss_func; raising or not returning a scalar tensor is exit 2."""
    import torch

    try:
        value = func(outputs, labels, num_items_in_batch=num_items_in_batch)
    except GaverifyError:
        raise
    except Exception as exc:  # the user's code: report it, do not crash
        raise GaverifyError(f"variants: {path} raised {type(exc).__name__}: {exc}") from exc
    if not (isinstance(value, torch.Tensor) and value.numel() == 1):
        raise GaverifyError(
            f"variants: {path} returned {type(value).__name__}, not a scalar tensor loss"
        )
    return value


def resolve(name: str, search: list[Path]) -> Variant:
    """A registered variant, or a custom one for a `module:function` name."""
    return custom_variant(name, search) if is_import_path(name) else VARIANTS.get(name)
