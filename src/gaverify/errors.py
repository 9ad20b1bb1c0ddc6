"""The errors gaverify knows how to explain.

Every exception here is a *user* problem (a bad scenario, a missing file, an
unknown name) and maps to a short message and exit code 2 in the CLI. Anything
else that escapes is a gaverify bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_OK = 0
EXIT_EXPECTATION_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM: a CI cancel, a scheduler's time limit


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (the CLI raises this from its handler): a run stops as
    on Ctrl-C, keeping what it measured, and exits 143."""


def stop_code(stop: BaseException) -> int:
    """The exit code of a run stopped by `stop`: 143 when SIGTERM is behind it
    (a backend re-raises a stop as its own interruption, the cause kept as
    the exception's context), else 130."""
    seen: BaseException | None = stop
    while seen is not None:
        if isinstance(seen, Terminated):
            return EXIT_TERMINATED
        seen = seen.__cause__ or seen.__context__
    return EXIT_INTERRUPTED


def stop_name(code: int) -> str:
    """What stopped a run, from its exit code."""
    return "SIGTERM" if code == EXIT_TERMINATED else "Ctrl-C"


class GaverifyError(Exception):
    """A problem the user can fix; the message is complete on its own."""

    exit_code = EXIT_USAGE

    def lines(self) -> list[str]:
        """The message as lines, one problem per line."""
        return str(self).splitlines() or [type(self).__name__]


class ScenarioError(GaverifyError):
    """One or more problems in a scenario, each naming where it came from."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' hint for a mistyped name, or ''."""
    close = difflib.get_close_matches(name, list(known), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


class ModelBuildError(GaverifyError):
    """transformers could not make the model that model.type and model.config
    describe (the census records these as "cannot build")."""


class UnknownNameError(GaverifyError, ValueError):
    """A name that is not in a registry. A ValueError too, so pydantic
    validators can raise it and have it reported as a field error."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        self.kind, self.name, self.known = kind, name, known
        hint = did_you_mean(name, known)
        listing = ", ".join(known) if len(known) <= 12 else ", ".join(known[:12]) + ", ..."
        super().__init__(f"unknown {kind} '{name}'{hint}; known: {listing}")


def root_cause(exc: BaseException) -> str:
    """The first line of the innermost cause of `exc` (libraries such as
    transformers wrap their own checks), for one-line messages."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
