"""The commented starter scenario that `gaverify init` writes."""

from __future__ import annotations

from pathlib import Path

from gaverify.errors import GaverifyError
from gaverify.output import write_atomic

STARTER = Path(__file__).with_name("starter.yaml")


def write_starter(path: Path, overwrite: bool = False) -> None:
    """Write the starter scenario to `path`; refuse to replace a file unless told."""
    if path.exists() and not overwrite:
        raise GaverifyError(f"{path}: already exists; pass --force to overwrite it")
    write_atomic(path, STARTER.read_text(encoding="utf-8"))
