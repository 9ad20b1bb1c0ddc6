import json

import pytest

from gaverify.data.sources import batch_indices, load_samples
from gaverify.data.text import ByteEncoder
from gaverify.errors import GaverifyError
from gaverify.spec.schema import Scenario
from gaverify.tasks.heads import TASKS, TokenSpace
from gaverify.tasks.losses import IGNORE_INDEX

BYTES = TokenSpace(vocab_size=256, num_labels=2)


def _load(tmp_path, data, task="causal-lm", space=BYTES, batch=2):
    scenario = Scenario.model_validate(
        {"model": {"task": task}, "data": data, "batch": {"size": batch, "accumulation": [2]}}
    )
    encoder = ByteEncoder(scenario.data.length.max)
    return load_samples(scenario, TASKS.get(task), space, encoder, tmp_path)


def _jsonl(tmp_path, rows, name="d.jsonl"):
    (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return name


def test_text_file_lines_are_samples_truncated_and_filtered(tmp_path):
    (tmp_path / "t.txt").write_text("hello world\n\nab\nthis line is long\n")
    data = {"source": "text", "path": "t.txt", "length": {"min": 3, "max": 8}}
    samples, where = _load(tmp_path, data)
    assert [bytes(s["input_ids"]) for s in samples] == [b"hello wo", b"this lin"]
    assert "2 samples from" in where and "(1 shorter than data.length.min skipped)" in where


def test_samples_limits_how_many_rows_are_read(tmp_path):
    (tmp_path / "t.txt").write_text("".join(f"line {i}\n" for i in range(10)))
    samples, _ = _load(tmp_path, {"source": "text", "path": "t.txt", "samples": 4})
    assert len(samples) == 4


def test_jsonl_with_mapped_columns(tmp_path):
    name = _jsonl(tmp_path, [{"review": "good", "stars": 1}, {"review": "bad", "stars": 0}])
    data = {
        "source": "jsonl",
        "path": name,
        "columns": {"text": "review", "label": "stars"},
        "length": {"min": 1},
    }
    samples, _ = _load(tmp_path, data, task="sequence-classification")
    assert [s["labels"] for s in samples] == [1, 0]


def test_missing_column_is_named_with_what_the_file_has(tmp_path):
    name = _jsonl(tmp_path, [{"review": "good", "stars": 1}])
    data = {"source": "jsonl", "path": name, "columns": {"text": "review"}}
    with pytest.raises(GaverifyError) as info:
        _load(tmp_path, data, task="sequence-classification")
    assert str(info.value) == (
        f"data.columns.label: row 1 of {tmp_path / name} has no column 'label' "
        "(it has: review, stars); map it with data.columns.label=NAME"
    )


def test_bad_json_names_the_line(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(GaverifyError, match=r"d.jsonl line 2: invalid JSON"):
        _load(tmp_path, {"source": "jsonl", "path": "d.jsonl", "length": {"min": 1}})


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(GaverifyError, match="gave 0 usable samples, fewer than one batch"):
        _load(tmp_path, {"source": "text", "path": "empty.txt"})
    with pytest.raises(GaverifyError, match="data.path: nope.txt does not exist"):
        _load(tmp_path, {"source": "text", "path": "nope.txt"})


def test_token_ids_outside_the_vocabulary(tmp_path):
    (tmp_path / "t.txt").write_text("zzzz\nzzzz\n")
    small = TokenSpace(vocab_size=100)
    with pytest.raises(GaverifyError, match=r"token id 122 is outside the model's vocabulary"):
        _load(tmp_path, {"source": "text", "path": "t.txt"}, space=small)


def test_class_labels_must_fit_the_head(tmp_path):
    name = _jsonl(tmp_path, [{"text": "abcd", "label": 4}, {"text": "efgh", "label": 0}])
    with pytest.raises(GaverifyError, match="class label 4 is not below the model's num_labels"):
        _load(tmp_path, {"source": "jsonl", "path": name}, task="sequence-classification")


def test_datasets_reads_a_local_file_offline(tmp_path):
    pytest.importorskip("datasets")
    name = _jsonl(tmp_path, [{"t": f"row number {i}"} for i in range(6)])
    data = {
        "source": "datasets",
        "path": str(tmp_path / name),
        "columns": {"text": "t"},
        "samples": 3,
    }
    samples, _ = _load(tmp_path, data)
    assert [bytes(s["input_ids"]) for s in samples] == [
        b"row number 0",
        b"row number 1",
        b"row number 2",
    ]
    assert samples[0]["labels"][0] != IGNORE_INDEX  # collate, not the reader, masks position 0


def test_datasets_name_not_in_the_cache(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(GaverifyError, match="cannot load data set 'nobody/nothing' offline"):
        _load(tmp_path, {"source": "datasets", "path": "nobody/nothing"})


def test_batches_never_repeat_a_sample_and_are_seeded():
    batches = batch_indices(num_samples=10, batch_size=4, steps=5, seed=0)
    assert len(batches) == 5
    assert all(len(set(b)) == 4 for b in batches)
    # 10 samples fill 2 batches per epoch; epochs are reshuffled
    assert set(batches[0]).isdisjoint(batches[1])
    assert batch_indices(10, 4, 5, seed=0) == batches
