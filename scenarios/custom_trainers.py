"""Example Trainer subclasses for trainer-subclass.yaml, the kind that stacks
built on transformers.Trainer (axolotl, LLaMA-Factory) override compute_loss with.

The Trainer hands compute_loss each micro-batch and num_items_in_batch, the
label tokens of the whole accumulation window. A subclass that sets
loss_is_scaled_for_ga = True says it did the division for accumulation
itself, so the Trainer backpropagates what it returns as is. The token loss
is custom_losses.sum_over_count: the summed loss over the count it is given.
"""

from custom_losses import sum_over_count
from transformers import Trainer


def _outputs(model, inputs):
    return model(**{k: v for k, v in inputs.items() if k != "labels"})


class TokenSumTrainer(Trainer):
    """Correct: the summed token loss over the window's count, num_items_in_batch."""

    loss_is_scaled_for_ga = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = _outputs(model, inputs)
        loss = sum_over_count(outputs, inputs["labels"], num_items_in_batch)
        return (loss, outputs) if return_outputs else loss


class MeanOfMeansTrainer(Trainer):
    """The classic bug: each micro-batch's own token mean, divided by the
    accumulation steps, so a short micro-batch weighs as much as a long one."""

    loss_is_scaled_for_ga = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = _outputs(model, inputs)
        own = (inputs["labels"][:, 1:] != -100).sum()  # this micro-batch's items only
        loss = sum_over_count(outputs, inputs["labels"], own)
        loss = loss / self.current_gradient_accumulation_steps
        return (loss, outputs) if return_outputs else loss
