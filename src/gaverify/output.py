"""Writing result files atomically: a temporary file, then a rename, so a
reader never sees half a report and an interrupted write leaves no debris."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gaverify.errors import GaverifyError
from gaverify.results import RunResult


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise GaverifyError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def write_json(result: RunResult, path: Path) -> None:
    """The whole result as JSON (schema_version inside)."""
    write_text_atomic(path, result.model_dump_json(indent=2) + "\n")


def write_junit(result: RunResult, path: Path) -> None:
    """One JUnit test case per variant (see junit.py)."""
    from gaverify.junit import junit_xml

    write_text_atomic(path, junit_xml(result))
