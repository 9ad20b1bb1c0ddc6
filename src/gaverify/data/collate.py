"""Turning a list of samples into model-ready tensors: padding and packing.

Each micro-batch is collated on its own, exactly as a per-micro-batch data
loader would do it: padded to its own longest sequence (right or left), or
packed padding-free into one row. That is where token counts start to differ
between micro-batches, which is the whole point of the check.

- Padding: pad tokens get attention_mask 0 and label -100. Left padding adds
  explicit position_ids (counted from each sequence's first real token), so
  a sequence's positions do not depend on how much padding its batch needed.
- Packing (padding-free, like transformers' DataCollatorWithFlattening): all
  sequences in one row, position_ids restarting at 0 per sequence, no
  attention mask, and the first label of every sequence set to -100 so no
  token is trained to predict across a boundary.
- Causal tasks: the first label of every sequence is -100. With right
  padding nothing predicts it anyway; with left padding or packing the
  position before it is padding or another sequence, and counting it would
  make the loss depend on how much padding a batch happens to need.
- `data.pad_to_max` pads every batch to length.max (padding="max_length"),
  which is what makes a QA head's loss batch-invariant: its softmax runs over
  every position of the row, padding included.
- Seq2seq targets are padded on the right with -100, whatever the padding
  side of the inputs (decoder positions must not move).
"""

from __future__ import annotations

from typing import Any

from gaverify.tasks.heads import Sample, Task
from gaverify.tasks.losses import IGNORE_INDEX

Batch = dict[str, Any]  # tensors: input_ids, labels, and attention_mask / position_ids


def collate(
    samples: list[Sample],
    task: Task,
    pad_id: int,
    padding: str,
    packed: bool,
    device: str,
    width: int | None = None,
) -> Batch:
    """Tensors for one (micro-)batch of `samples`, on `device`; padded to
    `width` when given (padding='max_length'), else to the longest sample."""
    import torch

    if task.shift_labels:
        samples = [{**s, "labels": [IGNORE_INDEX, *s["labels"][1:]]} for s in samples]
    if packed:
        batch = _packed(samples)
    else:
        ids, mask = _pad([s["input_ids"] for s in samples], pad_id, padding == "left", width)
        batch = {"input_ids": ids, "attention_mask": mask}
        if padding == "left":
            batch["position_ids"] = (mask.cumsum(dim=1) - 1).clamp(min=0)
        if task.layout == "aligned":
            left = padding == "left"
            batch["labels"] = _pad([s["labels"] for s in samples], IGNORE_INDEX, left, width)[0]
        elif task.layout == "target":
            batch["labels"] = _pad([s["labels"] for s in samples], IGNORE_INDEX, False)[0]
        else:
            values = [s["labels"] for s in samples]
            dtype = torch.float64 if isinstance(values[0], float) else torch.long
            batch["labels"] = torch.tensor(values, dtype=dtype)
    return {k: v.to(device) for k, v in batch.items()}


def model_batch(task: Task, batch: Batch) -> Batch:
    """A collated batch as `model(**batch)` takes it, labels included (a QA
    head's labels are start_positions and end_positions)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return {**inputs, **task.model_labels(batch["labels"])}


def _pad(rows: list[list[int]], fill: int, left: bool, width: int | None = None):
    """(padded ids, mask): rows padded with `fill` to the longest one (at least `width`)."""
    import torch

    width = max(width or 0, *(len(r) for r in rows))
    ids = torch.full((len(rows), width), fill, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if not row:
            continue
        cols = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, cols] = torch.tensor(row, dtype=torch.long)
        mask[i, cols] = 1
    return ids, mask


def _packed(samples: list[Sample]) -> Batch:
    import torch

    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for s in samples:
        ids += s["input_ids"]
        labels += s["labels"]
        positions += range(len(s["input_ids"]))
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "labels": torch.tensor([labels], dtype=torch.long),
        "position_ids": torch.tensor([positions], dtype=torch.long),
    }
