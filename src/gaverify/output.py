"""Writing files atomically: a temporary file, then a rename, so a reader
never sees half a report and an interrupted write leaves no debris.

Files get the usual mode (0666 less the umask), as any tool's output, not the
0600 of a temporary file; `check_writable` finds an unwritable path before
any work is done, so a long run is never lost to a typo in an output path.
"""

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
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise GaverifyError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def check_writable(path: Path, option: str) -> None:
    """Exit 2 now if `path` cannot be written later: its folder is created
    (as writing would) and a temporary file is made and removed there."""
    path = Path(path)
    if path.is_dir():
        raise GaverifyError(f"{option}: {path} is a folder; give a file name")
    existing = next(p for p in path.parents if p.exists())  # "/" at least
    if not existing.is_dir():
        raise GaverifyError(f"{option}: {path}: cannot write: {existing} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise GaverifyError(f"{option}: {path}: cannot write: {exc.strerror or exc}") from exc


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask
