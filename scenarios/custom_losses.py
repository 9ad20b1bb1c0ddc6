"""Example compute_loss_func implementations for custom-loss.yaml.

The signature is transformers' Trainer(compute_loss_func=...): the model's
outputs, the *unshifted* labels, and num_items_in_batch, the count of the
whole accumulation window. The Trainer backpropagates what it returns as is.
"""

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


def mean_per_micro_batch(outputs, labels, num_items_in_batch):
    """Wrong: each micro-batch's own mean, num_items_in_batch ignored. Since a
    compute_loss_func is trusted to be normalised, nothing divides it by N."""
    logits = outputs.logits[:, :-1].float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
    )
