"""Example Trainer subclasses for trainer-subclass.yaml, the kind that stacks
built on transformers.Trainer (axolotl, LLaMA-Factory) override compute_loss with.

The Trainer hands compute_loss each micro-batch and num_items_in_batch, the
label tokens of the whole accumulation window. A subclass that sets
loss_is_scaled_for_ga = True says it did the division for accumulation
itself, so the Trainer backpropagates what it returns as is.
"""

import torch.nn.functional as F
from transformers import Trainer


def _summed_token_loss(model, inputs):
    """The micro-batch's next-token loss summed over its label tokens, and the outputs."""
    labels = inputs["labels"]
    outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
    logits = outputs.logits[:, :-1].float()
    summed = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )
    return summed, int((labels[:, 1:] != -100).sum()), outputs


class TokenSumTrainer(Trainer):
    """Correct: the summed token loss over the window's count, num_items_in_batch."""

    loss_is_scaled_for_ga = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        summed, _, outputs = _summed_token_loss(model, inputs)
        loss = summed / num_items_in_batch
        return (loss, outputs) if return_outputs else loss


class MeanOfMeansTrainer(Trainer):
    """The classic bug: each micro-batch's own token mean, divided by the
    accumulation steps, so a short micro-batch weighs as much as a long one."""

    loss_is_scaled_for_ga = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        summed, count, outputs = _summed_token_loss(model, inputs)
        loss = summed / count / self.current_gradient_accumulation_steps
        return (loss, outputs) if return_outputs else loss
