"""Synthetic variable-length token data, batching, and micro-batch splitting.

The data order is seeded and the same for every run of a scenario, so the
full batch and its micro-batches always hold exactly the same samples.
Micro-batches are contiguous row slices of the full batch, trimmed of
padding columns they do not need, as a per-micro-batch collator would give.
"""

from __future__ import annotations

import random
from typing import Any

from gaverify.scenario import DataSpec
from gaverify.tasks import IGNORE_INDEX

Batch = dict[str, Any]  # input_ids, attention_mask, labels: tensors of one shape


def synthetic_sequences(spec: DataSpec, vocab_size: int, seed: int) -> list[list[int]]:
    """`spec.samples` token sequences with lengths uniform in [min, max]."""
    rng = random.Random(seed)
    return [
        [rng.randrange(vocab_size) for _ in range(rng.randint(spec.length.min, spec.length.max))]
        for _ in range(spec.samples)
    ]


def batch_indices(num_samples: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Sample indices of each step's batch: a seeded shuffle per epoch, no
    sample twice in one batch, incomplete batches at an epoch's end dropped."""
    rng = random.Random(seed)
    per_epoch = num_samples // batch_size
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = list(range(num_samples))
        rng.shuffle(order)
        batches += [order[i * batch_size : (i + 1) * batch_size] for i in range(per_epoch)]
    return batches[:steps]


def collate(sequences: list[list[int]], pad_id: int, device: str) -> Batch:
    """Right-padded tensors; padding is masked out and labelled -100."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }


def split(batch: Batch, n: int) -> list[Batch]:
    """`n` equal micro-batches of consecutive rows, each trimmed to its own
    longest sequence (right padding makes the trailing columns pure padding)."""
    rows = batch["input_ids"].shape[0]
    size = rows // n
    micro = []
    for i in range(n):
        part = {k: v[i * size : (i + 1) * size] for k, v in batch.items()}
        width = max(int(part["attention_mask"].sum(dim=1).max()), 1)
        micro.append({k: v[:, :width] for k, v in part.items()})
    return micro
