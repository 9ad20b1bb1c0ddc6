"""Each task's summed loss / count equals transformers' own loss function."""

import random

import pytest
import torch
from transformers.loss import loss_utils

from gaverify.tasks.heads import TASKS, TokenSpace
from gaverify.tasks.losses import IGNORE_INDEX

causal = TASKS.get("causal-lm")


def _labels(shape, classes, ignored_rows=()):
    torch.manual_seed(1)
    labels = torch.randint(0, classes, shape)
    for row, start in ignored_rows:
        labels[row, start:] = IGNORE_INDEX
    return labels


def test_causal_count_skips_the_first_position_and_ignored_labels():
    labels = torch.tensor([[1, 2, 3, IGNORE_INDEX], [4, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    # row 0: targets 2, 3 counted (position 0 has nothing predicting it); row 1: none
    assert causal.count_items(labels) == 2


def test_causal_summed_loss_matches_transformers_loss_times_count():
    # transformers computes this loss in float32 (it calls logits.float()).
    logits = torch.randn(3, 6, 13)
    labels = _labels((3, 6), 13, [(1, 4), (2, 2)])
    count = causal.count_items(labels)
    mean = loss_utils.ForCausalLMLoss(logits, labels, vocab_size=13)
    with_count = loss_utils.ForCausalLMLoss(logits, labels, vocab_size=13, num_items_in_batch=count)
    summed = causal.summed_loss(logits, labels)
    torch.testing.assert_close(summed / count, mean, rtol=1e-6, atol=0)
    torch.testing.assert_close(summed / count, with_count, rtol=1e-6, atol=0)


@pytest.mark.parametrize("task", ["masked-lm", "seq2seq"])
def test_unshifted_token_losses_match_for_masked_lm(task):
    logits = torch.randn(3, 5, 11)
    labels = _labels((3, 5), 11, [(0, 3), (2, 1)])
    t = TASKS.get(task)
    expected = loss_utils.ForMaskedLMLoss(logits, labels, vocab_size=11)
    torch.testing.assert_close(t.summed_loss(logits, labels) / t.count_items(labels), expected)
    assert t.count_items(labels) == 15 - 2 - 4


def test_token_classification_matches_transformers():
    from types import SimpleNamespace

    logits = torch.randn(2, 7, 4)
    labels = _labels((2, 7), 4, [(1, 5)])
    t = TASKS.get("token-classification")
    expected = loss_utils.ForTokenClassification(logits, labels, SimpleNamespace(num_labels=4))
    torch.testing.assert_close(t.summed_loss(logits, labels) / t.count_items(labels), expected)


@pytest.mark.parametrize(
    ("task", "num_labels"), [("sequence-classification", 3), ("sequence-regression", 1)]
)
def test_sequence_tasks_count_samples_and_match_transformers(task, num_labels):
    from types import SimpleNamespace

    t = TASKS.get(task)
    logits = torch.randn(5, num_labels)
    labels = torch.randint(0, 3, (5,)) if num_labels > 1 else torch.randn(5)
    config = SimpleNamespace(num_labels=num_labels, problem_type=None)
    expected = loss_utils.ForSequenceClassificationLoss(labels, logits, config)
    assert t.count_items(labels) == 5
    torch.testing.assert_close(t.summed_loss(logits, labels) / 5, expected)


def test_label_smoothing_matches_transformers_label_smoother():
    from transformers.trainer_pt_utils import LabelSmoother

    logits = torch.randn(2, 6, 9)
    labels = _labels((2, 6), 9, [(1, 3)])
    smoothed = causal.summed_loss(logits, labels, 0.1) / causal.count_items(labels)
    expected = LabelSmoother(epsilon=0.1)({"logits": logits}, labels, shift_labels=True)
    torch.testing.assert_close(smoothed, expected)


def test_masking_labels_only_masked_positions_and_never_special_tokens():
    space = TokenSpace(vocab_size=50, mask_id=49, special_ids=frozenset({0, 1}))
    ids = [0, *range(10, 30), 1]
    sample = TASKS.get("masked-lm").synthesize(ids, random.Random(0), space)
    masked = [i for i, t in enumerate(sample["input_ids"]) if t == 49]
    assert len(masked) == 3  # 15% of the 20 maskable tokens
    assert all(sample["labels"][i] == ids[i] for i in masked)
    assert sum(v != IGNORE_INDEX for v in sample["labels"]) == 3
    assert 0 not in masked and len(ids) - 1 not in masked


def test_word_tags_go_to_the_first_piece_of_each_word():
    from gaverify.data.text import ByteEncoder

    row = {"tokens": ["ab", "c"], "tags": [3, 4]}
    sample = TASKS.get("token-classification").from_row(row, ByteEncoder(64), None, None)
    assert sample["input_ids"] == [97, 98, 32, 99]
    assert sample["labels"] == [3, IGNORE_INDEX, IGNORE_INDEX, 4]


def test_word_and_tag_counts_must_agree():
    from gaverify.data.text import ByteEncoder

    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        TASKS.get("token-classification").from_row(
            {"tokens": ["a", "b"], "tags": [1]}, ByteEncoder(8), None, None
        )


qa = TASKS.get("question-answering")


def _qa_batch():
    from gaverify.tasks.losses import QA_OUTSIDE

    torch.manual_seed(2)
    logits = torch.randn(4, 9, 2)
    labels = torch.tensor([[1, 3], [QA_OUTSIDE, QA_OUTSIDE], [0, 8], [5, 5]])
    return logits, labels


def test_question_answering_counts_answerable_samples_and_matches_transformers():
    logits, labels = _qa_batch()
    assert qa.count_items(labels) == 3  # the answer past the input counts for nothing
    start, end = logits[..., 0].contiguous(), logits[..., 1].contiguous()
    args = (start, end, labels[:, 0], labels[:, 1])
    summed = qa.summed_loss(logits, labels)
    # with a count: the sum over it; without: the mean over answerable positions
    torch.testing.assert_close(
        summed / 3, loss_utils.ForQuestionAnsweringLoss(*args, num_items_in_batch=3)
    )
    torch.testing.assert_close(summed / 3, loss_utils.ForQuestionAnsweringLoss(*args))


def test_question_answering_model_inputs_are_start_and_end_positions():
    _, labels = _qa_batch()
    given = qa.model_labels(labels)
    assert set(given) == {"start_positions", "end_positions"}
    assert given["end_positions"].tolist() == labels[:, 1].tolist()


def test_question_answering_samples_put_a_quarter_of_answers_outside_the_input():
    from gaverify.tasks.losses import QA_OUTSIDE

    rng = random.Random(0)
    samples = [qa.synthesize(list(range(10)), rng, TokenSpace(50)) for _ in range(400)]
    outside = sum(s["labels"][0] == QA_OUTSIDE for s in samples)
    assert 70 < outside < 130
    inside = [s["labels"] for s in samples if s["labels"][0] != QA_OUTSIDE]
    assert all(0 <= a <= b < 10 for a, b in inside)
