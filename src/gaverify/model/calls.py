"""Calling a model as a training loop does: its inputs, its outputs, its mode.

`forward` runs one collated batch (labels in only when the model's own loss
is wanted); `logits_of` and `loss_of` read what came back, whatever its
form; `keep_eval_mode` keeps dropout off when a trainer calls model.train().
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from gaverify.errors import GaverifyError
from gaverify.model.precision import mark_checkpointing
from gaverify.tasks.heads import Task
from gaverify.tasks.losses import IGNORE_INDEX


@cache
def forward_parameters(cls: type) -> tuple[inspect.Parameter, ...]:
    """The parameters of cls.forward (looked up once per model class, not
    once per micro-batch)."""
    return tuple(inspect.signature(cls.forward).parameters.values())


def takes(model: Any, name: str) -> bool:
    """Whether model.forward names the parameter `name` explicitly."""
    return any(p.name == name for p in forward_parameters(type(model)))


def forward(model: Any, task: Task, batch: dict[str, Any], with_labels: bool = False, **extra):
    """model(**inputs) for one collated batch. Labels go in only when the
    model's own loss is wanted; seq2seq decoders then get their inputs from
    the labels, shifted right, exactly as the model would do itself."""
    # DistributedDataParallel is called as the model, but its forward takes
    # anything: what the model accepts is read from the module it wraps.
    inner = model.module if type(model).__name__ == "DistributedDataParallel" else model
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if with_labels:
        inputs.update(task.model_labels(batch["labels"]))
    elif task.layout == "target":
        inputs["decoder_input_ids"] = decoder_inputs(inner, batch["labels"])
    if takes(inner, "use_cache"):
        inputs["use_cache"] = False
    try:
        return model(**inputs, **extra)
    except (ValueError, TypeError, IndexError) as exc:
        # The model refused these inputs: a scenario problem, not a crash.
        raise GaverifyError(f"model: {type(model).__name__} cannot run this batch: {exc}") from exc


def decoder_inputs(model: Any, labels: Any):
    """The decoder inputs a seq2seq model makes from its labels when it is
    given them: its own prepare_decoder_input_ids_from_labels, else the
    labels shifted right after decoder_start_token_id, -100 read as padding
    (what every transformers encoder-decoder's shift_tokens_right does)."""
    config = getattr(model, "config", None)
    start = getattr(config, "decoder_start_token_id", None)
    try:
        if hasattr(model, "prepare_decoder_input_ids_from_labels"):
            return model.prepare_decoder_input_ids_from_labels(labels=labels)
        if start is None:
            raise ValueError("config.decoder_start_token_id is not set")
        shifted = labels.new_full(labels.shape, start)
        shifted[:, 1:] = labels[:, :-1]
        pad = getattr(config, "pad_token_id", None)
        return shifted.masked_fill(shifted == IGNORE_INDEX, 0 if pad is None else pad)
    except (AttributeError, ValueError) as exc:  # e.g. no decoder_start_token_id
        raise GaverifyError(
            f"model.config: {type(model).__name__} cannot make decoder inputs from the "
            f"labels: {exc} (set model.config.decoder_start_token_id)"
        ) from exc


def logits_of(outputs: Any):
    """Logits from a ModelOutput, a tuple, or a bare tensor (factory models).
    A QA head's start and end logits come stacked: (batch, width, 2)."""
    if getattr(outputs, "start_logits", None) is not None:
        import torch

        return torch.stack((outputs.start_logits, outputs.end_logits), dim=-1)
    if hasattr(outputs, "logits"):
        return outputs.logits
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def loss_of(outputs: Any):
    """The loss a model returned when given labels."""
    loss = getattr(outputs, "loss", None)
    if loss is None and isinstance(outputs, dict):
        loss = outputs.get("loss")
    if loss is None:
        raise GaverifyError("variants: 'model' needs a model that returns a loss given labels")
    return loss


def zero_dropout(model: Any) -> None:
    """Dropout off while the model stays in train mode, for trainers that read
    model.training (TRL's GRPO only divides by the accumulation steps in train
    mode): every dropout module's p and every float *dropout attribute of a
    module (attention dropout rates read from the config) set to 0."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0
        for name, value in vars(module).items():
            if name.endswith("dropout") and isinstance(value, float):
                setattr(module, name, 0.0)


def keep_eval_mode(model: Any) -> None:
    """Trainers (and users' loops) call model.train() before every step; with
    dropout off the runs must stay deterministic, so this model's train()
    keeps eval mode (checkpointing layers stay marked: precision.py)."""
    import types

    import torch

    def train(self, mode: bool = True):
        torch.nn.Module.train(self, False)
        mark_checkpointing(self)
        return self

    model.train = types.MethodType(train, model)
    model.eval()
    mark_checkpointing(model)
