"""Reward functions for GRPO scenarios: deterministic, so that every run with
the same completions gets the same rewards whatever its accumulation.

A reward function is named by import path in trainer.reward_funcs and called
by TRL as func(prompts=..., completions=..., completion_ids=..., **columns),
returning one float per completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def even_tokens(completion_ids: Sequence[Sequence[int]], **_: Any) -> list[float]:
    """The share of even token ids in each completion (0 for an empty one):
    it differs between completions, so advantages are not all zero."""
    return [sum(1 for t in ids if t % 2 == 0) / len(ids) if ids else 0.0 for ids in completion_ids]
