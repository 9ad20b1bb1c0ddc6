"""Training tasks: which model head to build, how its samples look, and what
a counted item is.

A task owns everything the accumulation maths needs to know about a kind of
training: the Auto class of its head, its summed loss and item count (see
losses.py), and how a sample's labels are made, from synthetic tokens or
from a data file's columns. Token tasks count label tokens, so micro-batches
of different lengths weigh differently; sample tasks (classification,
regression) count samples, so with equal micro-batch sizes naive and fixed
normalisation cannot differ. This module imports no torch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gaverify.registry import Registry
from gaverify.tasks import losses
from gaverify.tasks.losses import IGNORE_INDEX, QA_OUTSIDE

# A sample before collation: "input_ids" (list of ints) and "labels", which
# is a list aligned with input_ids, a separate target list, or one value.
Sample = dict[str, Any]
MASK_FRACTION = 0.15
UNANSWERABLE_FRACTION = 0.25  # synthetic QA samples whose answer lies outside the input


@dataclass(frozen=True)
class TokenSpace:
    """What sample builders need to know about the model's vocabulary."""

    vocab_size: int
    num_labels: int = 2
    mask_id: int | None = None
    special_ids: frozenset[int] = frozenset()


class Encoder(Protocol):
    """Text to token ids (a real tokenizer, or bytes when there is none)."""

    def encode(self, text: str) -> list[int]: ...

    def encode_words(self, words: Sequence[str]) -> tuple[list[int], list[int | None]]: ...


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    auto_class: str  # the transformers Auto class of the head
    unit: str  # what count_items counts, for messages
    layout: Literal["aligned", "target", "value"]  # how labels sit beside input_ids
    summed_loss: Callable[..., Any]  # (logits, labels, label_smoothing) -> scalar tensor
    count_items: Callable[[Any], int]  # labels tensor -> counted items
    synthesize: Callable[[list[int], random.Random, TokenSpace], Sample]
    columns: tuple[str, ...]  # the data-file columns it reads
    from_row: Callable[[dict[str, Any], Encoder, random.Random, TokenSpace], Sample]
    shift_labels: bool = False  # causal: the loss shifts labels by one
    packable: bool = False  # padding-free packing keeps sequences apart (causal attention)
    smoothable: bool = True  # cross-entropy, so label smoothing applies
    classes: bool = False  # labels are class ids, which must be below num_labels
    # Config keys for a randomly initialised head, and keys every head of
    # this task needs (a regression head has one output), user values win.
    config_defaults: dict[str, Any] = field(default_factory=dict)
    config_required: dict[str, Any] = field(default_factory=dict)
    # How the model takes the labels (default: labels=...); QA heads take
    # start_positions and end_positions, so the Trainer counts nothing for them.
    label_inputs: Callable[[Any], dict[str, Any]] | None = None
    # The loss scores padded positions too (a QA head's softmax runs over the
    # whole row), so dynamic padding changes a sample's loss between batches.
    sees_padding: bool = False

    def model_labels(self, labels: Any) -> dict[str, Any]:
        """The model's keyword arguments for a batch's labels."""
        return self.label_inputs(labels) if self.label_inputs else {"labels": labels}


def _mask(ids: list[int], rng: random.Random, space: TokenSpace) -> Sample:
    """Masked LM: replace ~15% of the maskable tokens by the mask token (at
    least one, so no sample is empty); only those positions are labelled."""
    candidates = [i for i, t in enumerate(ids) if t not in space.special_ids]
    if space.mask_id is None or not candidates:
        return {"input_ids": list(ids), "labels": [IGNORE_INDEX] * len(ids)}
    k = max(1, round(MASK_FRACTION * len(candidates)))
    chosen = set(rng.sample(candidates, k))
    masked = [space.mask_id if i in chosen else t for i, t in enumerate(ids)]
    labels = [t if i in chosen else IGNORE_INDEX for i, t in enumerate(ids)]
    return {"input_ids": masked, "labels": labels}


def _copy_labels(ids: list[int]) -> Sample:
    return {"input_ids": ids, "labels": list(ids)}


def _text(row: dict[str, Any]) -> str:
    return str(row["text"])


TASKS: Registry[Task] = Registry("task")
TASKS.add(
    "causal-lm",
    Task(
        name="causal-lm",
        summary="next-token prediction; items = shifted label tokens that are not -100",
        auto_class="AutoModelForCausalLM",
        unit="label tokens",
        layout="aligned",
        summed_loss=losses.shifted_token_loss,
        count_items=losses.shifted_token_count,
        synthesize=lambda ids, rng, space: _copy_labels(ids),
        columns=("text",),
        from_row=lambda row, enc, rng, space: _copy_labels(enc.encode(_text(row))),
        shift_labels=True,
        packable=True,
    ),
)
TASKS.add(
    "masked-lm",
    Task(
        name="masked-lm",
        summary="masked-token prediction (15% masked); items = masked tokens",
        auto_class="AutoModelForMaskedLM",
        unit="masked tokens",
        layout="aligned",
        summed_loss=losses.token_loss,
        count_items=losses.token_count,
        synthesize=_mask,
        columns=("text",),
        from_row=lambda row, enc, rng, space: _mask(enc.encode(_text(row)), rng, space),
    ),
)


def _tag_words(row: dict[str, Any], enc: Encoder, rng, space: TokenSpace) -> Sample:
    """Word-level tags onto sub-word tokens: the first piece of each word
    carries its tag, the rest and special tokens are -100 (the usual recipe)."""
    words, tags = list(row["tokens"]), list(row["tags"])
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} tokens but {len(tags)} tags")
    ids, word_ids = enc.encode_words(words)
    labels, previous = [], None
    for w in word_ids:
        labels.append(int(tags[w]) if w is not None and w != previous else IGNORE_INDEX)
        previous = w
    return {"input_ids": ids, "labels": labels}


TASKS.add(
    "token-classification",
    Task(
        name="token-classification",
        summary="a class per token (e.g. NER); items = labelled tokens",
        auto_class="AutoModelForTokenClassification",
        unit="labelled tokens",
        layout="aligned",
        summed_loss=losses.token_loss,
        count_items=losses.token_count,
        synthesize=lambda ids, rng, space: {
            "input_ids": ids,
            "labels": [rng.randrange(space.num_labels) for _ in ids],
        },
        columns=("tokens", "tags"),
        from_row=_tag_words,
        classes=True,
        config_defaults={"num_labels": 5},
    ),
)
TASKS.add(
    "sequence-classification",
    Task(
        name="sequence-classification",
        summary="a class per sequence; items = samples, so micro-batch counts are always equal",
        auto_class="AutoModelForSequenceClassification",
        unit="samples",
        layout="value",
        summed_loss=losses.class_loss,
        count_items=losses.sample_count,
        synthesize=lambda ids, rng, space: {
            "input_ids": ids,
            "labels": rng.randrange(space.num_labels),
        },
        columns=("text", "label"),
        from_row=lambda row, enc, rng, space: {
            "input_ids": enc.encode(_text(row)),
            "labels": int(row["label"]),
        },
        classes=True,
        # Decoder heads pool the last non-pad token, so they need a pad id.
        config_defaults={"num_labels": 3, "pad_token_id": 0},
    ),
)
TASKS.add(
    "sequence-regression",
    Task(
        name="sequence-regression",
        summary="a real value per sequence (squared error); items = samples",
        auto_class="AutoModelForSequenceClassification",
        unit="samples",
        layout="value",
        summed_loss=losses.value_loss,
        count_items=losses.sample_count,
        synthesize=lambda ids, rng, space: {"input_ids": ids, "labels": rng.uniform(-1, 1)},
        columns=("text", "label"),
        from_row=lambda row, enc, rng, space: {
            "input_ids": enc.encode(_text(row)),
            "labels": float(row["label"]),
        },
        smoothable=False,
        config_defaults={"pad_token_id": 0},
        config_required={"num_labels": 1, "problem_type": "regression"},
    ),
)
TASKS.add(
    "seq2seq",
    Task(
        name="seq2seq",
        summary="encoder-decoder generation (synthetic target: the source reversed); "
        "items = target tokens",
        auto_class="AutoModelForSeq2SeqLM",
        unit="target tokens",
        layout="target",
        summed_loss=losses.token_loss,
        count_items=losses.token_count,
        synthesize=lambda ids, rng, space: {"input_ids": ids, "labels": ids[::-1]},
        columns=("text", "target"),
        from_row=lambda row, enc, rng, space: {
            "input_ids": enc.encode(_text(row)),
            "labels": enc.encode(str(row["target"])),
        },
    ),
)


def _span(ids: list[int], rng: random.Random, space: TokenSpace) -> Sample:
    """A random answer span inside the sequence, or (a quarter of the time)
    one outside the input, which the QA loss ignores."""
    if rng.random() < UNANSWERABLE_FRACTION:
        return {"input_ids": ids, "labels": [QA_OUTSIDE, QA_OUTSIDE]}
    start = rng.randrange(len(ids))
    return {"input_ids": ids, "labels": [start, rng.randrange(start, len(ids))]}


def _no_rows(row: dict[str, Any], enc: Encoder, rng: random.Random, space: TokenSpace) -> Sample:
    raise ValueError("question-answering reads synthetic data only")


TASKS.add(
    "question-answering",
    Task(
        name="question-answering",
        summary="extractive QA (start and end positions; synthetic only); items = samples whose "
        "answer lies inside the input",
        auto_class="AutoModelForQuestionAnswering",
        unit="answerable samples",
        layout="value",
        summed_loss=losses.span_loss,
        count_items=losses.span_count,
        synthesize=_span,
        columns=(),
        from_row=_no_rows,
        smoothable=False,
        sees_padding=True,
        label_inputs=lambda labels: {
            "start_positions": labels[:, 0],
            "end_positions": labels[:, 1],
        },
    ),
)
