"""How the CLI reports failures: known errors become short messages, exit 2.

A GaverifyError (bad scenario, unknown name, unavailable device) is the
user's to fix: its lines go to stderr with no traceback. `--debug` or
GAVERIFY_DEBUG=1 re-raises it so the traceback shows. Ctrl-C outside a run
is one line and exit 130.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from gaverify.errors import EXIT_USAGE, GaverifyError, Terminated, stop_code, stop_name


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command so known errors print one line each and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False) or os.environ.get("GAVERIFY_DEBUG") == "1"
        try:
            return command(*args, **kwargs)
        except GaverifyError as exc:
            if debug:
                raise
            from gaverify.report.terminal import print_error

            print_error(exc.lines())
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt as stop:  # outside a run (a run keeps its rows itself)
            if debug:
                raise
            from gaverify.report.terminal import print_error

            code = stop_code(stop)
            print_error([f"interrupted ({stop_name(code)})"])
            raise typer.Exit(code) from None

    return wrapper


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI cancel, a scheduler's time limit) stops a run as Ctrl-C
    does: Terminated, a KeyboardInterrupt, is raised where the run is, so its
    rows are kept and its reports written; the exit code is then 143."""

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
