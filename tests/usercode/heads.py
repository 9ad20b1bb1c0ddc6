"""User code for the tests: factory models and custom losses, good and bad.

Loaded by import path (tests.usercode.heads:NAME) exactly as a user's own
module would be.
"""

import torch
import torch.nn.functional as F
from torch import nn


class TinyLM(nn.Module):
    """A causal LM outside transformers: embedding, one GRU, a head. Its own
    loss honours num_items_in_batch when `honest`, else returns a mean."""

    # The Trainer's switch for passing num_items_in_batch to forward (a model
    # without **kwargs must declare it).
    accepts_loss_kwargs = True

    def __init__(self, vocab_size=50, hidden=16, honest=True):
        super().__init__()
        self.vocab_size = vocab_size
        self.honest = honest
        self.embed = nn.Embedding(vocab_size, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, input_ids, attention_mask=None, labels=None, num_items_in_batch=None):
        logits = self.head(self.rnn(self.embed(input_ids))[0])
        if labels is None:
            return logits
        flat = logits[:, :-1].reshape(-1, self.vocab_size)
        targets = labels[:, 1:].reshape(-1)
        if self.honest and num_items_in_batch is not None:
            summed = F.cross_entropy(flat, targets, ignore_index=-100, reduction="sum")
            return {"loss": summed / num_items_in_batch, "logits": logits}
        # Accepts the count but ignores it: the bug the `model` variant catches.
        return {"loss": F.cross_entropy(flat, targets, ignore_index=-100), "logits": logits}


def honest_lm(vocab_size=50):
    return TinyLM(vocab_size, honest=True)


def count_ignoring_lm(vocab_size=50):
    return TinyLM(vocab_size, honest=False)


def not_a_module(**kwargs):
    return "a string"


def broken_factory(**kwargs):
    raise RuntimeError("factory exploded")


def _logits(outputs):
    return outputs.logits if hasattr(outputs, "logits") else outputs


def token_sum_loss(outputs, labels, num_items_in_batch):
    """A correct compute_loss_func: summed token loss / num_items_in_batch."""
    logits = _logits(outputs)[:, :-1].float()
    return (
        F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            labels[:, 1:].reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        / num_items_in_batch
    )


def per_batch_mean_loss(outputs, labels, num_items_in_batch):
    """Ignores num_items_in_batch: each micro-batch's own mean (the bug)."""
    logits = _logits(outputs)[:, :-1].float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
    )


def scaled_sum_loss(outputs, labels, num_items_in_batch):
    """Defined differently from the plain token loss (x4) but exactly
    accumulation-invariant: it uses the window's count."""
    return 4 * token_sum_loss(outputs, labels, num_items_in_batch)


def class_weighted_loss(outputs, labels, num_items_in_batch):
    """A class-weighted token loss (weights 1 to 3 by token id) normalised
    by the window's count: invariant, though it is not S/T."""
    logits = _logits(outputs)[:, :-1].float()
    vocab = logits.shape[-1]
    weights = 1 + 2 * torch.arange(vocab, dtype=logits.dtype, device=logits.device) / vocab
    summed = F.cross_entropy(
        logits.reshape(-1, vocab),
        labels[:, 1:].reshape(-1),
        weight=weights,
        ignore_index=-100,
        reduction="sum",
    )
    return summed / num_items_in_batch


def scaled_mean_loss(outputs, labels, num_items_in_batch):
    """Ignores the count (each micro-batch's mean, x4): still wrong."""
    return 4 * per_batch_mean_loss(outputs, labels, num_items_in_batch)


def raising_loss(outputs, labels, num_items_in_batch):
    raise KeyError("no such output")


def float_loss(outputs, labels, num_items_in_batch):
    return 1.0


NOT_CALLABLE = 3
_ = torch  # torch is this module's dependency, as it would be for a user's


def fails_on_rank_one(vocab_size=50, **config):
    """A factory that works on every rank of a distributed run but rank 1."""
    import os

    if os.environ.get("RANK") == "1":
        raise RuntimeError("no model for rank 1")
    return TinyLM(vocab_size, honest=True)


def nan_on_single_samples(outputs, labels, num_items_in_batch):
    """Correct, except that a micro-batch of one sample gives NaN (a numerical fault)."""
    loss = token_sum_loss(outputs, labels, num_items_in_batch)
    return loss * float("nan") if labels.shape[0] == 1 else loss
