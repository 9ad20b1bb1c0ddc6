"""A tokenizer for a model that has none, built offline from its token ids.

Trainers that take text (TRL's SFT, DPO and GRPO trainers) need a
processing class, and a model initialised from a config has no tokenizer.
`word_tokenizer` makes one with no download: token id i is the word `t<i>`,
words are split on whitespace, and the model's pad and end-of-sequence ids
are special tokens (`<pad>`, `<eos>`) that are recognised even when glued to
a word, as a trainer that appends the EOS string expects. `words(ids)` is
the text that tokenizes back to exactly `ids`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gaverify.model.build import Built

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def _eos(model: Any, pad: int) -> int:
    """The model's end-of-sequence id, or the first id that is not `pad`."""
    eos = getattr(getattr(model, "config", None), "eos_token_id", None)
    if isinstance(eos, list):
        eos = eos[0] if eos else None
    return eos if eos is not None and eos != pad else (1 if pad != 1 else 2)


def words(ids: Sequence[int]) -> str:
    """The text of token ids, for word_tokenizer (one leading space, so that
    two texts can be concatenated as trainers do with prompt and completion)."""
    return "".join(f" t{i}" for i in ids)


def word_tokenizer(built: Built, vocab_size: int) -> Any:
    """A PreTrainedTokenizerFast over `vocab_size` ids with the built model's
    pad id (Built.pad_id) and EOS id as special tokens; a right-padding
    tokenizer, as training uses."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    model = built.model
    pad = built.pad_id()
    eos = _eos(model, pad)
    names = {pad: PAD, eos: EOS}
    vocab = {names.get(i, f"t{i}"): i for i in range(vocab_size)}
    unk = UNK if UNK in vocab else names[pad]
    core = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.add_special_tokens([AddedToken(PAD, special=True), AddedToken(EOS, special=True)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=unk,
        padding_side="right",
        model_max_length=getattr(getattr(model, "config", None), "max_position_embeddings", 4096),
    )
