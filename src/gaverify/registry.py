"""A name -> object registry that answers a miss with "did you mean ...?".

Variants, optimizers, backends and tasks are all found through one of these,
so adding one is a registration, never a new branch in an if/elif chain.
Registries hold light objects only: anything heavy (torch, transformers) is
imported inside the registered callables, so validating a scenario against a
registry never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from gaverify.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (the kind names them in error messages)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._summaries: dict[str, str] = {}

    def add(self, name: str, entry: T, summary: str | None = None) -> T:
        """Register `entry` under `name` (taken only once), with a one-line
        summary for listings (default: the entry's own `summary` attribute)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = entry
        self._summaries[name] = summary if summary is not None else getattr(entry, "summary", "")
        return entry

    def register(self, name: str, summary: str | None = None) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda entry: self.add(name, entry, summary)

    def get(self, name: str) -> T:
        """The entry called `name`, or UnknownNameError with a suggestion."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, entry) pairs, in registration order."""
        return iter(self._entries.items())

    def described(self) -> list[tuple[str, str]]:
        """(name, summary) of every entry, in registration order."""
        return list(self._summaries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
