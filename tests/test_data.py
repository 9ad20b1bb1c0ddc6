import torch

from gaverify.data import batch_indices, collate, split, synthetic_sequences
from gaverify.scenario import DataSpec
from gaverify.tasks import IGNORE_INDEX


def test_synthetic_lengths_and_tokens_are_in_range_and_seeded():
    spec = DataSpec.model_validate({"samples": 50, "length": {"min": 3, "max": 9}})
    seqs = synthetic_sequences(spec, vocab_size=11, seed=1)
    assert len(seqs) == 50
    assert all(3 <= len(s) <= 9 for s in seqs)
    assert all(0 <= t < 11 for s in seqs for t in s)
    assert len({len(s) for s in seqs}) > 1
    assert synthetic_sequences(spec, 11, seed=1) == seqs
    assert synthetic_sequences(spec, 11, seed=2) != seqs


def test_batches_never_repeat_a_sample_and_are_seeded():
    batches = batch_indices(num_samples=10, batch_size=4, steps=5, seed=0)
    assert len(batches) == 5
    assert all(len(set(b)) == 4 for b in batches)
    # 10 samples fill 2 batches per epoch; epochs are reshuffled
    assert set(batches[0]).isdisjoint(batches[1])
    assert batch_indices(10, 4, 5, seed=0) == batches


def test_collate_right_pads_masks_and_ignores_padding():
    batch = collate([[5, 6, 7], [8]], pad_id=0, device="cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]


def test_split_keeps_rows_in_order_and_trims_padding_columns():
    batch = collate([[1, 2, 3, 4], [5], [6, 7], [8, 9]], pad_id=0, device="cpu")
    micro = split(batch, 2)
    assert [m["input_ids"].tolist() for m in micro] == [
        [[1, 2, 3, 4], [5, 0, 0, 0]],
        [[6, 7], [8, 9]],
    ]
    rows = torch.cat([m["labels"][:, :1] for m in micro])
    assert rows.tolist() == batch["labels"][:, :1].tolist()
