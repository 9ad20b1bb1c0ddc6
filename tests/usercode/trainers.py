"""Trainer subclasses for the tests, loaded by import path as a user's would be."""

from trl import SFTTrainer


class MySFTTrainer(SFTTrainer):
    """A stack's own SFT trainer (its own __init__, no annotation): still SFT."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)


NOT_A_CLASS = 3
