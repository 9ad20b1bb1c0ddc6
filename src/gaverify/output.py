"""Writing files atomically: a temporary file, then a rename, so a reader
never sees half a report and an interrupted write leaves no debris."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gaverify.errors import GaverifyError


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` via a temporary file in the same folder."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise GaverifyError(f"{path}: cannot write: {exc.strerror or exc}") from exc
