"""Real data: text and JSON-lines files, and the `datasets` library, tokenised.

Readers yield rows (dicts of columns); the task turns each row into a sample
with an Encoder: the model's own tokenizer when it has one, else UTF-8 bytes
as token ids. Nothing here downloads: `datasets` runs with its offline switch
on, so a hub name only works when that data set is already in the local
cache. Every problem names the file (or data set) and the key to fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gaverify.errors import GaverifyError, root_cause

Row = dict[str, Any]


class ByteEncoder:
    """UTF-8 bytes as token ids: a model without a tokenizer still reads text
    (it needs a vocabulary of at least 256)."""

    name = "UTF-8 bytes (no tokenizer)"

    def __init__(self, max_length: int):
        self.max_length = max_length

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))[: self.max_length]

    def encode_words(self, words: Sequence[str]) -> tuple[list[int], list[int | None]]:
        ids: list[int] = []
        word_ids: list[int | None] = []
        for j, word in enumerate(words):
            if j:
                ids.append(ord(" "))
                word_ids.append(None)
            piece = list(str(word).encode("utf-8"))
            ids += piece
            word_ids += [j] * len(piece)
        return ids[: self.max_length], word_ids[: self.max_length]


class TokenizerEncoder:
    """A transformers tokenizer, with its special tokens, truncated to max_length."""

    def __init__(self, tokenizer: Any, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.name = f"{type(tokenizer).__name__} ({tokenizer.name_or_path})"

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, truncation=True, max_length=self.max_length)["input_ids"]

    def encode_words(self, words: Sequence[str]) -> tuple[list[int], list[int | None]]:
        enc = self.tokenizer(
            [str(w) for w in words],
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length,
        )
        return enc["input_ids"], enc.word_ids()


def text_rows(path: Path) -> Iterator[Row]:
    """One row per non-empty line of a text file: {"text": line}."""
    with _open(path) as lines:
        for line in lines:
            if line.strip():
                yield {"text": line.strip()}


def jsonl_rows(path: Path) -> Iterator[Row]:
    """One row per non-empty line of a JSON-lines file (each a JSON object)."""
    with _open(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GaverifyError(
                    f"data.path: {path} line {number}: invalid JSON: {exc.msg}"
                ) from None
            if not isinstance(row, dict):
                raise GaverifyError(
                    f"data.path: {path} line {number}: expected a JSON object, "
                    f"got {type(row).__name__}"
                )
            yield row


# Local data files by extension -> the `datasets` builder that reads them.
_DATASETS_BUILDERS = {
    ".json": "json",
    ".jsonl": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
}


def datasets_rows(path: str, split: str) -> Iterator[Row]:
    """Rows of a `datasets` data set: a local data file or directory, or a
    data set already in the Hugging Face cache. Never downloads. Rows are
    yielded lazily, so the reader stops as soon as it has enough samples."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError as exc:
        raise GaverifyError(
            "data.source: 'datasets' needs the datasets library: pip install 'gaverify[datasets]'"
        ) from exc
    # Set after import too: both libraries read the switch when first imported.
    datasets.config.HF_DATASETS_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = True
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    local = Path(path)
    builder = _DATASETS_BUILDERS.get(local.suffix) if local.is_file() else None
    try:
        if builder:
            loaded = datasets.load_dataset(builder, data_files=str(local), split=split)
        else:
            loaded = datasets.load_dataset(path, split=split)
    except ValueError as exc:
        raise GaverifyError(f"data.split: '{split}' of {path}: {root_cause(exc)}") from exc
    except Exception as exc:  # datasets raises many types for a missing set
        raise GaverifyError(
            f"data.path: cannot load data set '{path}' offline ({type(exc).__name__}: "
            f"{root_cause(exc)}); give a local file or directory, or a data set already "
            "in the Hugging Face cache"
        ) from exc
    for row in loaded:
        yield dict(row)


def _open(path: Path):
    try:
        return path.open(encoding="utf-8")
    except FileNotFoundError:
        raise GaverifyError(f"data.path: {path} does not exist") from None
    except IsADirectoryError:
        raise GaverifyError(f"data.path: {path} is a directory, not a file") from None
    except OSError as exc:
        raise GaverifyError(f"data.path: cannot read {path}: {exc.strerror}") from None
