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
or of the user. This module imports no torch until a loss is computed.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaverify.registry import Registry

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
class Variant:
    """A loss normalisation rule and the verdict a correct tool gives it on
    data whose micro-batches hold different item counts. Exactly one of
    `weights` (a rule on summed losses) and `loss` (code run per micro-batch)."""

    name: str
    summary: str
    expected: str  # "pass" or "fail"
    weights: Weights | None = None
    loss: Callable[[Window], Any] | None = None
    # With equal counts per micro-batch a pure normalisation bug is invisible.
    expected_when_equal: str = "pass"
    origin: str = ""  # for user code: which function, from which file
    reverse: bool = False  # backpropagate the micro-batches last to first
    # Built from the scenario when a run starts (loss-type names user code in
    # loss.loss_type): (scenario, search path, model) -> the Variant to run.
    build: Callable[[Any, list[Path], Any], Variant] | None = None


def _inverse(x: float) -> float:
    # A zero count makes the loss 0/0: real loops produce NaN there, so do we.
    return 1.0 / x if x else math.nan


def naive_weights(counts: Sequence[int]) -> list[float]:
    """Mean of means: each micro-batch's own mean loss, divided by N."""
    n = len(counts)
    return [_inverse(n * t) for t in counts]


def fixed_weights(counts: Sequence[int]) -> list[float]:
    """Each micro-batch's summed loss over the whole accumulated batch's count."""
    total = sum(counts)
    return [_inverse(total)] * len(counts)


def summed_loss(window: Window):
    """S_i: the task's summed loss of the micro-batch."""
    from gaverify.models import forward, logits_of

    logits = logits_of(forward(window.model, window.task, window.batch))
    return window.task.summed_loss(logits, window.batch["labels"], window.label_smoothing)


def weighted_loss(window: Window, weight: float):
    """w_i * S_i: the task's summed loss of the micro-batch, weighted."""
    return summed_loss(window) * weight


def trainer_scales_loss(model: Any) -> bool:
    """Whether the Trainer passes num_items_in_batch to this model and then
    skips its own division by N (its `model_accepts_loss_kwargs` rule)."""
    from gaverify.models import forward_parameters

    declared = getattr(model, "accepts_loss_kwargs", None)
    if declared is not None:
        return bool(declared)
    params = forward_parameters(type(model))
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
    from gaverify.models import forward, loss_of

    kwargs = _count_kwargs(window)
    loss = loss_of(forward(window.model, window.task, window.batch, with_labels=True, **kwargs))
    return loss if kwargs else loss / window.n


def label_smoother_loss(window: Window):
    """transformers' LabelSmoother as the installed Trainer calls it: labels
    kept from the model, num_items_in_batch passed when the smoother takes it."""
    from transformers.trainer_pt_utils import LabelSmoother

    from gaverify.models import forward

    kwargs = _count_kwargs(window)
    outputs = forward(window.model, window.task, window.batch, **kwargs)
    smoother = LabelSmoother(epsilon=window.label_smoothing)
    extra = {}
    if kwargs and "num_items_in_batch" in inspect.signature(smoother.__call__).parameters:
        extra = kwargs
    loss = smoother(outputs, window.batch["labels"], shift_labels=window.task.shift_labels, **extra)
    return loss if kwargs else loss / window.n


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
    ),
)
VARIANTS.add(
    "label-smoother",
    Variant(
        "label-smoother",
        "transformers' LabelSmoother (loss.label_smoothing), called as the Trainer calls it",
        "pass",
        loss=label_smoother_loss,
    ),
)
VARIANTS.add(
    "loss-type",
    Variant(
        "loss-type",
        "your loss.loss_type function, registered in transformers' LOSS_MAPPING and reached "
        "through the model's own loss dispatch (given num_items_in_batch)",
        "pass",
        build=lambda scenario, search, model: loss_type_variant(
            scenario.loss.loss_type, search, model
        ),
    ),
)


def loss_type_variant(path: str, search: list[Path], model: Any) -> Variant:
    """The loss-type variant: see loss_mapping.py."""
    from gaverify.loss_mapping import route

    dispatch = route(path, search, model)
    return Variant(
        "loss-type",
        VARIANTS.get("loss-type").summary,
        "pass",
        loss=lambda window: dispatch.call(model_loss, window),
        origin=dispatch.origin,
    )


def custom_variant(path: str, search: list[Path]) -> Variant:
    """A variant from the user's compute_loss_func(outputs, labels, num_items_in_batch)."""
    from gaverify.imports import describe, load_object

    func = load_object(path, "variants", search)

    def loss(window: Window):
        import torch

        from gaverify.models import forward

        outputs = forward(window.model, window.task, window.batch, **_count_kwargs(window))
        total = torch.tensor(window.total, device=window.batch["labels"].device)
        return call_user_loss(path, func, outputs, window.batch["labels"], total)

    summary = "your compute_loss_func (as the Trainer calls it)"
    return Variant(path, summary, "pass", loss=loss, origin=describe(func, path))


def call_user_loss(path: str, func: Callable[..., Any], outputs, labels, num_items_in_batch):
    """func(outputs, labels, num_items_in_batch=...) as the Trainer calls a
    compute_loss_func; raising or not returning a scalar tensor is exit 2."""
    import torch

    from gaverify.errors import GaverifyError

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
    from gaverify.imports import is_import_path

    return custom_variant(name, search) if is_import_path(name) else VARIANTS.get(name)
