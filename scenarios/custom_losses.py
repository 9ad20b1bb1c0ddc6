"""Example compute_loss_func implementations for custom-loss.yaml and moe-*.yaml.

The signature is transformers' Trainer(compute_loss_func=...): the model's
outputs, the *unshifted* labels, and num_items_in_batch, the count of the
whole accumulation window. The Trainer backpropagates what it returns as is.
"""

import torch
import torch.nn.functional as F


def sum_over_count(outputs, labels, num_items_in_batch):
    """Correct: summed token loss divided by the window's item count."""
    logits = outputs.logits[:, :-1].float()
    summed = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )
    return summed / num_items_in_batch


def class_weighted_over_count(outputs, labels, num_items_in_batch):
    """Correct, though not the plain token loss: each token's loss weighted by
    its class (1 to 3 by token id), summed, over the window's item count. It
    is judged against itself on the full batch, so it passes."""
    logits = outputs.logits[:, :-1].float()
    vocab = logits.shape[-1]
    weights = 1 + 2 * torch.arange(vocab, device=logits.device) / vocab
    summed = F.cross_entropy(
        logits.reshape(-1, vocab),
        labels[:, 1:].reshape(-1),
        weight=weights,
        ignore_index=-100,
        reduction="sum",
    )
    return summed / num_items_in_batch


def mean_per_micro_batch(outputs, labels, num_items_in_batch):
    """Wrong: each micro-batch's own mean, num_items_in_batch ignored. Since a
    compute_loss_func is trusted to be normalised, nothing divides it by N."""
    logits = outputs.logits[:, :-1].float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
    )


# LOSS_MAPPING functions for loss-type.yaml: the model's forward calls them as
# loss_function(logits=..., labels=..., vocab_size=..., **kwargs), kwargs
# holding num_items_in_batch when the Trainer counted the window.


def _upcast(logits):
    """Half-precision logits to float32 (as transformers does); float64 stays."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def causal_lm_sum(logits, labels, vocab_size=None, num_items_in_batch=None, **kwargs):
    """Correct: summed shifted-token loss over num_items_in_batch (the mean
    when no count is given, as transformers' ForCausalLMLoss does)."""
    targets = F.pad(labels, (0, 1), value=-100)[:, 1:].to(logits.device)
    summed = F.cross_entropy(
        _upcast(logits).reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )
    count = num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum()
    return summed / count


def causal_lm_mean(logits, labels, vocab_size=None, num_items_in_batch=None, **kwargs):
    """Wrong: each micro-batch's own mean, num_items_in_batch ignored; the
    Trainer, having passed the count, does not divide by N either."""
    targets = F.pad(labels, (0, 1), value=-100)[:, 1:].to(logits.device)
    return F.cross_entropy(
        _upcast(logits).reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
    )


def moe_aux_by_items(outputs, labels, num_items_in_batch):
    """A causal LM's token loss with num_items_in_batch, plus an MoE router's
    aux loss weighted by this micro-batch's share of the items (T_i / T): over
    a window the shares sum to 1, so the aux loss keeps its full-batch weight
    however many micro-batches there are (the model adds it at weight 1 to
    each, N times in all). The coefficient is the scenarios' 0.02."""
    logits, targets = outputs.logits[:, :-1], labels[:, 1:]
    summed = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
        ignore_index=-100, reduction="sum",
    )  # fmt: skip
    if outputs.aux_loss is None:  # router logits off: the token loss alone
        return summed / num_items_in_batch
    share = (targets != -100).sum() / num_items_in_batch
    return summed / num_items_in_batch + 0.02 * outputs.aux_loss * share
