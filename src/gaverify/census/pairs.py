"""Which (model type, head) pairs the census judges, and how one is run alone.

The pairs are read from the installed transformers' auto mappings, one per
head gaverify has a task for; `--types` and `--heads` narrow them, with
"did you mean" for a misspelt name. A pair is run as the bundled `census`
scenario with its type and task set: the command printed for a row is the
same run, so anyone can reproduce one row without the census.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from gaverify.errors import GaverifyError, UnknownNameError
from gaverify.registry import Registry
from gaverify.tasks.heads import TASKS

SCENARIO = "census"  # the bundled scenario every row runs

# head (gaverify task) -> the transformers auto mapping listing its model types
_MAPPINGS = {
    "causal-lm": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "masked-lm": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "token-classification": "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
    "sequence-classification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "question-answering": "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
    "seq2seq": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
}
HEADS: Registry[str] = Registry("census head")
for _head, _mapping in _MAPPINGS.items():
    HEADS.add(_head, _mapping, TASKS.get(_head).auto_class)

# Settings a head needs beyond its type and task (a QA head scores padding,
# so every batch is padded to one width, as the question-answering scenario does).
HEAD_SETTINGS: dict[str, dict[str, object]] = {"question-answering": {"data.pad_to_max": True}}


@dataclass(frozen=True)
class Pair:
    type: str
    head: str

    def overrides(self, dtype: str = "float64") -> dict[str, object]:
        """The census scenario's overrides that run this pair."""
        settings = {"model.type": self.type, "model.task": self.head}
        settings.update(HEAD_SETTINGS.get(self.head, {}))
        if dtype != "float64":
            settings["dtype"] = dtype
        return settings

    def command(self, dtype: str = "float64") -> str:
        """The one-line `gaverify run` that judges this pair alone."""
        words = ["gaverify", "run", SCENARIO]
        for key, value in self.overrides(dtype).items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            words += ["--set", f"{key}={text}"]
        return shlex.join(words)


def installed_types() -> dict[str, list[str]]:
    """head -> the model types of the installed transformers that have it."""
    from transformers.models.auto import modeling_auto

    return {head: list(getattr(modeling_auto, mapping)) for head, mapping in HEADS.items()}


def select(types: Sequence[str] | None = None, heads: Sequence[str] | None = None) -> list[Pair]:
    """Every pair of the installed transformers, or those of `types` x `heads`
    (in mapping order). An unknown name raises UnknownNameError; a selection
    with no pair at all (a type without that head) raises GaverifyError."""
    for head in heads or []:
        HEADS.get(head)
    by_head = installed_types()
    known = {t for listed in by_head.values() for t in listed}
    for name in types or []:
        if name not in known:
            raise UnknownNameError("model type (--types)", name, known)
    chosen = [
        Pair(t, head)
        for head, listed in by_head.items()
        if not heads or head in heads
        for t in listed
        if not types or t in types
    ]
    if not chosen:
        raise GaverifyError(
            f"--types {','.join(types or [])} has none of the heads {','.join(heads or [])} "
            "in the installed transformers"
        )
    return chosen
