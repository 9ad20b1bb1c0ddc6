"""Synthetic samples: random token sequences with a chosen length distribution.

Lengths are what make accumulation bugs visible (different token counts per
micro-batch), so their distribution is a scenario choice:

- uniform:   every length in [min, max] equally likely;
- long-tail: min + (max - min) * u**3 for u uniform in [0, 1): most
  sequences short, a few near max, like chat or code data;
- fixed:     every sequence max long (equal counts: a control where naive
  and fixed normalisation must agree).

Everything comes from one random.Random(seed), so a scenario's data is the
same on every run and every machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from gaverify.registry import Registry
from gaverify.tasks.heads import Sample, Task, TokenSpace

if TYPE_CHECKING:
    from gaverify.spec.sections import DataSpec

LENGTHS: Registry[Callable[[random.Random, int, int], int]] = Registry("length distribution")
LENGTHS.add("uniform", lambda rng, lo, hi: rng.randint(lo, hi), "every length equally likely")
LENGTHS.add(
    "long-tail",
    lambda rng, lo, hi: lo + int((hi - lo + 1) * rng.random() ** 3),
    "mostly short sequences, a few long ones",
)
LENGTHS.add("fixed", lambda rng, lo, hi: hi, "every sequence max long (a control)")


def synthetic_samples(spec: DataSpec, task: Task, space: TokenSpace, seed: int) -> list[Sample]:
    """`spec.samples` samples for `task`, token ids drawn from the ordinary
    vocabulary (never the mask token, which masked LM reserves)."""
    rng = random.Random(seed)
    length = LENGTHS.get(spec.length.distribution)
    ordinary = [
        t for t in range(space.vocab_size) if t != space.mask_id and t not in space.special_ids
    ]
    samples = []
    for _ in range(spec.samples):
        n = length(rng, spec.length.min, spec.length.max)
        ids = [ordinary[rng.randrange(len(ordinary))] for _ in range(n)]
        samples.append(task.synthesize(ids, rng, space))
    return samples
