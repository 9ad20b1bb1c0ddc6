"""Two example accumulation steps for `backend: loop`, as people write them.

Each follows the loop protocol: step(model, optimizer, micro_batches) ->
logged loss, where every micro-batch is a dict that `model(**mb)` accepts.

    loss_over_n     nanoGPT-style: each micro-batch's *mean* loss divided by
                    N (Lightning and DeepSpeed scale the same way). On
                    variable-length padded data this is the mean of means:
                    gaverify reports `fail` (exit 1).
    token_weighted  each micro-batch's *summed* token loss divided by the
                    label tokens of the whole accumulated batch, counted
                    before the first backward (what num_items_in_batch does):
                    equal to the full batch, `pass` (exit 0).

    gaverify run quickstart --set backend=loop --set loop.step=gaverify.loops:loss_over_n

token_weighted is written for causal language models (labels shifted by
one inside the loss, as transformers does).
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100


def loss_over_n(model: Any, optimizer: Any, micro_batches: list[dict[str, Any]]) -> float:
    """nanoGPT's accumulation: `loss = loss / gradient_accumulation_steps`."""
    n = len(micro_batches)
    logged = 0.0
    for batch in micro_batches:
        loss = model(**batch).loss / n
        loss.backward()
        logged += loss.item()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return logged


def token_weighted(model: Any, optimizer: Any, micro_batches: list[dict[str, Any]]) -> float:
    """Summed token loss over the whole window's label-token count."""
    import torch
    import torch.nn.functional as F

    total = sum(int((mb["labels"][:, 1:] != IGNORE_INDEX).sum()) for mb in micro_batches)
    logged = 0.0
    for batch in micro_batches:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits[:, :-1]
        if logits.dtype in (torch.float16, torch.bfloat16):  # float32 at least, as transformers
            logits = logits.float()
        targets = batch["labels"][:, 1:]
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            targets.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        ) / max(total, 1)
        loss.backward()
        logged += loss.item()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return logged
