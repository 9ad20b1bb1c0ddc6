"""Summed losses and item counts, one pair per kind of task.

Accumulation maths needs each micro-batch's loss as a *sum* over its counted
items, plus the count. These mirror transformers' loss functions
(loss/loss_utils.py) with reduction="sum": same shifting, same -100 rule,
computed in at least float32 as transformers does. torch is imported inside.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100
# An answer position past any input (an answer cut off by truncation): the
# QA loss clamps positions to the input width and ignores them there.
QA_OUTSIDE = 1 << 30


def _at_least_float32(logits):
    import torch

    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def _cross_entropy_sum(logits, targets, label_smoothing: float):
    import torch.nn.functional as F

    logits = _at_least_float32(logits)
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1).to(logits.device),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
        label_smoothing=label_smoothing,
    )


def shifted_token_loss(logits, labels, label_smoothing: float = 0.0):
    """Causal LM: position t predicts label t+1 (transformers' ForCausalLMLoss).
    As there, the labels shift, not the logits: slicing the logits would copy
    them (200 MB for GPT-2 at 8 x 128), and their gradient again."""
    import torch.nn.functional as F

    targets = F.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:]
    return _cross_entropy_sum(logits, targets, label_smoothing)


def shifted_token_count(labels) -> int:
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def token_loss(logits, labels, label_smoothing: float = 0.0):
    """Masked LM, token classification, seq2seq targets: no shift."""
    return _cross_entropy_sum(logits, labels, label_smoothing)


def token_count(labels) -> int:
    return int((labels != IGNORE_INDEX).sum())


def class_loss(logits, labels, label_smoothing: float = 0.0):
    """Sequence classification: one label per sample."""
    return _cross_entropy_sum(logits, labels, label_smoothing)


def value_loss(logits, labels, label_smoothing: float = 0.0):
    """Sequence regression: squared error per sample (MSELoss with sum)."""
    import torch.nn.functional as F

    logits = _at_least_float32(logits)
    return F.mse_loss(logits.reshape(-1), labels.reshape(-1).to(logits), reduction="sum")


def sample_count(labels: Any) -> int:
    """Sample-level tasks count samples, not tokens."""
    return int(labels.shape[0])


def span_loss(logits, labels, label_smoothing: float = 0.0):
    """Extractive QA, as transformers' ForQuestionAnsweringLoss with a sum:
    cross-entropy of the start and of the end position over the input's
    positions, halved. `logits` is (batch, width, 2): start and end stacked
    (model/calls.py: logits_of); a position at or past the width is clamped to it and
    ignored, exactly as there."""
    import torch.nn.functional as F

    logits = _at_least_float32(logits)
    width = logits.shape[1]
    total = 0
    for k in (0, 1):  # start, end
        targets = labels[:, k].to(logits.device).clamp(0, width)
        total = total + F.cross_entropy(
            logits[..., k], targets, ignore_index=width, reduction="sum"
        )
    return total / 2


def span_count(labels) -> int:
    """QA counts samples whose answer lies inside the input (the loss ignores
    the others): the samples when every answer is in its context."""
    return int((labels[:, 0] < QA_OUTSIDE).sum())
