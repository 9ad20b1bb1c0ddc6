import torch

from gaverify.data.collate import collate
from gaverify.tasks.heads import TASKS
from gaverify.tasks.losses import IGNORE_INDEX as X

causal, seq2seq = TASKS.get("causal-lm"), TASKS.get("seq2seq")
classify = TASKS.get("sequence-classification")


def _samples(*seqs):
    return [{"input_ids": list(s), "labels": list(s)} for s in seqs]


def test_right_padding_masks_padding_and_ignores_first_causal_label():
    batch = collate(_samples([5, 6, 7], [8]), causal, 0, "right", False, "cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[X, 6, 7], [X, X, X]]
    assert "position_ids" not in batch


def test_left_padding_adds_positions_counted_from_the_first_real_token():
    batch = collate(_samples([5, 6, 7], [8, 9]), causal, 0, "left", False, "cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 8, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 1, 1]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 0, 1]]
    # the first real token is never a target, however much padding precedes it
    assert batch["labels"].tolist() == [[X, 6, 7], [X, X, 9]]


def test_packing_is_one_row_with_restarting_positions():
    batch = collate(_samples([5, 6, 7], [8, 9]), causal, 0, "right", True, "cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[X, 6, 7, X, 9]]
    assert "attention_mask" not in batch
    assert causal.count_items(batch["labels"]) == 3  # the same as unpacked


def test_seq2seq_targets_are_right_padded_whatever_the_input_side():
    samples = [{"input_ids": [1, 2, 3], "labels": [4]}, {"input_ids": [5], "labels": [6, 7]}]
    batch = collate(samples, seq2seq, 0, "left", False, "cpu")
    assert batch["input_ids"].tolist() == [[1, 2, 3], [0, 0, 5]]
    assert batch["labels"].tolist() == [[4, X], [6, 7]]


def test_sequence_labels_are_one_value_per_sample():
    samples = [{"input_ids": [1, 2], "labels": 2}, {"input_ids": [3], "labels": 0}]
    batch = collate(samples, classify, 0, "right", False, "cpu")
    assert batch["labels"].tolist() == [2, 0] and batch["labels"].dtype == torch.long
    floats = [{"input_ids": [1], "labels": 0.5}, {"input_ids": [3], "labels": -1.0}]
    values = collate(floats, TASKS.get("sequence-regression"), 0, "right", False, "cpu")
    assert values["labels"].dtype == torch.float64
