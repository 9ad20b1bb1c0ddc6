"""How far a run got: the protocol between the code that trains and the code that draws.

Backends call `start` once and `advance` after every training pass; the
terminal (report/terminal.py) passes a subclass that draws a progress bar.
This base class ignores both, so core code never needs to check for None.
"""

from __future__ import annotations


class Progress:
    """Where a backend reports how far it got; this base class ignores it."""

    def start(self, total: int) -> None:
        """`total` training passes are about to run."""

    def advance(self, label: str = "") -> None:
        """One more training pass is done."""
