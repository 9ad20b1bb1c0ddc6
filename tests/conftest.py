"""Shared helpers: small, fast scenarios built from the real schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gaverify.spec.schema import Scenario

# Smaller than the default model so the maths tests run in well under a second.
SMALL_MODEL = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 97,
    "max_position_embeddings": 128,
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def small_scenario(**fields: Any) -> Scenario:
    """A validated scenario on a very small model; keyword sections merge."""
    base = {
        "device": "cpu",
        "steps": 2,
        "model": {"config": SMALL_MODEL},
        "data": {"samples": 16, "length": {"min": 2, "max": 24}},
        "batch": {"size": 8, "accumulation": [2, 4, 8]},
    }
    return Scenario.model_validate(_merge(base, fields))


@pytest.fixture
def small():
    return small_scenario
