"""Importing user code named by a scenario: `package.module:attribute`.

User code (a model factory, a custom loss) is imported only when a scenario
that names it runs, never while validating. The scenario file's directory
and the working directory are importable, so a `my_loss.py` next to the
scenario works without installing anything. Every import is recorded so the
report can say which user code ran.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from gaverify.errors import GaverifyError, root_cause

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_import_path(text: str) -> bool:
    """True for `module:attribute` (e.g. `my_losses:token_mean`)."""
    return bool(IMPORT_PATH.match(text))


def load_object(path: str, key: str, search: list[Path] | None = None) -> Any:
    """Import `module:attribute`; any failure is a usage error naming `key`."""
    if not is_import_path(path):
        raise GaverifyError(f"{key}: '{path}' is not an import path of the form module:attribute")
    module_name, _, attribute = path.partition(":")
    added = [str(p) for p in [*(search or []), Path.cwd()] if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # user code can raise anything on import
        raise GaverifyError(
            f"{key}: cannot import '{path}': {type(exc).__name__}: {root_cause(exc)}"
        ) from exc
    finally:
        for p in added:
            sys.path.remove(p)
    if not callable(obj):
        raise GaverifyError(f"{key}: '{path}' is not a function or class ({type(obj).__name__})")
    return obj


def describe(obj: Any, path: str) -> str:
    """`path (file)` for the report's note of which user code ran."""
    try:
        source = inspect.getsourcefile(obj) or "?"
    except TypeError:
        source = "?"
    return f"{path} ({source})"
