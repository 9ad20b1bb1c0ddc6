"""Finished census rows on disk, so an interrupted census resumes.

One small JSON file per (transformers version, model type, head), written
atomically as soon as the row is judged. A row is reused only when the
gaverify and torch that made it are the ones running now: a new release of
either judges again. The cache lives in $GAVERIFY_CACHE, else
$XDG_CACHE_HOME/gaverify, else ~/.cache/gaverify (under census/).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from gaverify.measure.census import CensusRow
from gaverify.output import write_atomic


class _Entry(BaseModel):
    gaverify_version: str
    torch_version: str
    row: CensusRow


def default_root() -> Path:
    """Where census rows are cached unless --cache says otherwise."""
    if os.environ.get("GAVERIFY_CACHE"):
        return Path(os.environ["GAVERIFY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gaverify"


class RowCache:
    """Rows of one transformers release, for one gaverify and torch."""

    def __init__(self, root: Path, versions: dict[str, str]):
        self.folder = Path(root) / "census" / f"transformers-{versions['transformers']}"
        self.gaverify, self.torch = versions["gaverify"], versions["torch"]

    def _path(self, model_type: str, head: str) -> Path:
        return self.folder / f"{model_type}--{head}.json"

    def get(self, model_type: str, head: str) -> CensusRow | None:
        """The cached row, or None (missing, unreadable, or made by other versions)."""
        path = self._path(model_type, head)
        try:
            entry = _Entry.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError):
            return None
        if (entry.gaverify_version, entry.torch_version) != (self.gaverify, self.torch):
            return None
        return entry.row

    def put(self, row: CensusRow) -> None:
        """Keep `row` for the next census of this release."""
        entry = _Entry(gaverify_version=self.gaverify, torch_version=self.torch, row=row)
        write_atomic(self._path(row.type, row.head), entry.model_dump_json(indent=1) + "\n")
