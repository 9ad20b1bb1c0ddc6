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
from typing import Any

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def special_ids(model: Any) -> tuple[int, int]:
    """(pad, eos) token ids for `model`: its config's, or the first free ones."""
    config = getattr(model, "config", None)
    pad = getattr(config, "pad_token_id", None)
    eos = getattr(config, "eos_token_id", None)
    if isinstance(eos, list):
        eos = eos[0] if eos else None
    pad = 0 if pad is None else pad
    if eos is None or eos == pad:
        eos = 1 if pad != 1 else 2
    return pad, eos


def words(ids: Sequence[int]) -> str:
    """The text of token ids, for word_tokenizer (one leading space, so that
    two texts can be concatenated as trainers do with prompt and completion)."""
    return "".join(f" t{i}" for i in ids)


def word_tokenizer(model: Any, vocab_size: int) -> Any:
    """A PreTrainedTokenizerFast over `vocab_size` ids with the model's pad
    and EOS ids as special tokens; a right-padding tokenizer, as training uses."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pad, eos = special_ids(model)
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
