"""Training tasks: which model head to build and what a counted item is.

A task owns the two functions the accumulation maths needs: the *summed* loss
of a (micro-)batch and the number of items it is normalised by. For causal
LM the labels are shifted (token t predicts token t+1), so the first position
of every sequence and every -100 label are not counted, exactly as in
transformers' ForCausalLMLoss. torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gaverify.registry import Registry

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    auto_class: str  # the transformers Auto class whose from_config builds the model
    unit: str  # what count_items counts, for messages
    summed_loss: Callable[[Any, Any], Any]  # (logits, labels) -> scalar tensor
    count_items: Callable[[Any], int]  # labels -> number of counted items


def _causal_lm_summed_loss(logits, labels):
    import torch
    import torch.nn.functional as F

    logits = logits[:, :-1, :]
    targets = labels[:, 1:]
    # Like transformers, compute the loss in at least float32.
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def _causal_lm_count(labels) -> int:
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


TASKS: Registry[Task] = Registry("task")
TASKS.add(
    "causal-lm",
    Task(
        name="causal-lm",
        summary="next-token prediction; items = shifted label tokens that are not -100",
        auto_class="AutoModelForCausalLM",
        unit="label tokens",
        summed_loss=_causal_lm_summed_loss,
        count_items=_causal_lm_count,
    ),
)
