"""Where a scenario's samples come from, and which samples each step trains on.

Sources: synthetic (synthetic.py), a text file, a JSON-lines file, or a
`datasets` data set (text.py). File rows go through the task's column
rule and the encoder, are truncated to length.max and dropped below
length.min, and are checked against the model (token ids inside the
vocabulary, class labels below num_labels) before anything trains.

The data order is seeded and the same for every run of a scenario, so the
full batch and its micro-batches always hold exactly the same samples.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from gaverify.data.synthetic import synthetic_samples
from gaverify.data.text import Row, datasets_rows, jsonl_rows, text_rows
from gaverify.errors import GaverifyError
from gaverify.registry import Registry
from gaverify.tasks.heads import Encoder, Sample, Task, TokenSpace

if TYPE_CHECKING:
    from gaverify.spec.schema import Scenario
    from gaverify.spec.sections import DataSpec

ROW_READERS: Registry[Callable[[DataSpec, str], Iterator[Row]]] = Registry("data source")
ROW_READERS.add("text", lambda spec, path: text_rows(Path(path)), "a text file, one sample a line")
ROW_READERS.add("jsonl", lambda spec, path: jsonl_rows(Path(path)), "a JSON-lines file")
ROW_READERS.add(
    "datasets",
    lambda spec, path: datasets_rows(path, spec.split),
    "the datasets library: a local file or directory, or a cached data set",
)


def resolve_path(path: str, source_dir: Path | None) -> str:
    """A relative path is relative to the scenario file when it exists there."""
    if source_dir is not None and not Path(path).is_absolute():
        beside = source_dir / path
        if beside.exists():
            return str(beside)
    return path


def load_samples(
    scenario: Scenario, task: Task, space: TokenSpace, encoder: Encoder, source_dir: Path | None
) -> tuple[list[Sample], str]:
    """The scenario's samples and a one-line description of where they came from."""
    spec = scenario.data
    if spec.source == "synthetic":
        samples = synthetic_samples(spec, task, space, scenario.seed)
        where = f"{len(samples)} synthetic samples"
    else:
        path = resolve_path(spec.path or "", source_dir)
        samples, skipped = _from_rows(
            ROW_READERS.get(spec.source)(spec, path),
            spec,
            task,
            space,
            encoder,
            path,
            scenario.seed,
        )
        where = f"{len(samples)} samples from {path}" + (
            f" ({skipped} shorter than data.length.min skipped)" if skipped else ""
        )
        if len(samples) < scenario.batch.size:
            raise GaverifyError(
                f"data.path: {path} gave {len(samples)} usable samples, fewer than one batch "
                f"(batch.size {scenario.batch.size})"
            )
    _check_against_model(samples, task, space, spec)
    return samples, where


def _from_rows(rows, spec: DataSpec, task: Task, space, encoder, path: str, seed: int):
    rng = random.Random(seed)
    samples: list[Sample] = []
    skipped = 0
    try:
        for number, row in enumerate(rows, start=1):
            try:
                mapped = {c: row[spec.columns.get(c, c)] for c in task.columns}
            except KeyError as exc:
                column = exc.args[0]
                wanted = next(c for c in task.columns if spec.columns.get(c, c) == column)
                raise GaverifyError(
                    f"data.columns.{wanted}: row {number} of {path} has no column '{column}' "
                    f"(it has: {', '.join(map(str, row)) or 'none'}); "
                    f"map it with data.columns.{wanted}=NAME"
                ) from None
            try:
                sample = task.from_row(mapped, encoder, rng, space)
            except (ValueError, TypeError) as exc:
                raise GaverifyError(f"data.path: {path} row {number}: {exc}") from exc
            if len(sample["input_ids"]) < spec.length.min:
                skipped += 1
                continue
            samples.append(sample)
            if len(samples) == spec.samples:
                break
    except UnicodeDecodeError:
        raise GaverifyError(f"data.path: {path} is not UTF-8 text") from None
    return samples, skipped


def _check_against_model(samples: list[Sample], task: Task, space: TokenSpace, spec: DataSpec):
    top = max((max(s["input_ids"], default=0) for s in samples), default=0)
    if top >= space.vocab_size:
        raise GaverifyError(
            f"data: token id {top} is outside the model's vocabulary (vocab_size "
            f"{space.vocab_size}); the data's tokenizer does not match the model"
        )
    if task.classes:
        labels = [v for s in samples for v in _as_list(s["labels"]) if v >= 0]
        if labels and max(labels) >= space.num_labels:
            raise GaverifyError(
                f"data.columns: class label {max(labels)} is not below the model's num_labels "
                f"({space.num_labels}); set model.config.num_labels"
            )


def _as_list(labels) -> list:
    return labels if isinstance(labels, list) else [labels]


def batch_indices(num_samples: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Sample indices of each step's batch: a seeded shuffle per epoch, no
    sample twice in one batch, incomplete batches at an epoch's end dropped."""
    rng = random.Random(seed)
    per_epoch = num_samples // batch_size
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = list(range(num_samples))
        rng.shuffle(order)
        batches += [order[i * batch_size : (i + 1) * batch_size] for i in range(per_epoch)]
    return batches[:steps]
