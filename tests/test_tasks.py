import torch

from gaverify.tasks import IGNORE_INDEX, TASKS

causal = TASKS.get("causal-lm")


def test_causal_count_skips_the_first_position_and_ignored_labels():
    labels = torch.tensor([[1, 2, 3, IGNORE_INDEX], [4, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    # row 0: targets 2, 3 counted (position 0 has nothing predicting it); row 1: none
    assert causal.count_items(labels) == 2


def test_causal_summed_loss_matches_transformers_loss_times_count():
    from transformers.loss.loss_utils import ForCausalLMLoss

    # transformers computes this loss in float32 (it calls logits.float()),
    # so compare in float32.
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 13, dtype=torch.float32)
    labels = torch.randint(0, 13, (3, 6))
    labels[1, 4:] = IGNORE_INDEX
    labels[2, 2:] = IGNORE_INDEX
    count = causal.count_items(labels)
    mean = ForCausalLMLoss(logits, labels, vocab_size=13)
    with_count = ForCausalLMLoss(logits, labels, vocab_size=13, num_items_in_batch=count)
    summed = causal.summed_loss(logits, labels)
    torch.testing.assert_close(summed / count, mean, rtol=1e-6, atol=0)
    torch.testing.assert_close(summed / count, with_count, rtol=1e-6, atol=0)


def test_half_precision_logits_are_upcast_for_the_loss():
    logits = torch.randn(1, 4, 7).to(torch.bfloat16)
    labels = torch.randint(0, 7, (1, 4))
    assert causal.summed_loss(logits, labels).dtype == torch.float32
