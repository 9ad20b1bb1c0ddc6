"""`gaverify census`: which heads of the installed transformers train exactly.

For every (model type, head) of the installed transformers, a tiny
random-init model is trained as the Trainer would (the `model` variant:
num_items_in_batch passed when the model takes loss kwargs, / N otherwise)
and judged against its own loss on the full batch (pairs.py, judge.py).
Rows come from K worker processes under a per-pair time limit (pool.py)
and are cached as they finish (cache.py), so an interrupted census resumes;
Ctrl-C or SIGTERM returns the rows finished so far. A baseline (an earlier
census's JSON) turns it into a regression gate.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from gaverify import __version__
from gaverify.census.cache import RowCache
from gaverify.census.pairs import Pair, select
from gaverify.census.pool import judge_all
from gaverify.errors import (
    EXIT_EXPECTATION_FAILED,
    EXIT_OK,
    GaverifyError,
    stop_code,
)
from gaverify.measure.census import Census, CensusRow, compare
from gaverify.progress import Progress

DEFAULT_TIMEOUT_S = 120.0


def read_census(path: Path) -> Census:
    """A census JSON written by `gaverify census --json` (for --baseline)."""
    try:
        return Census.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as exc:
        raise GaverifyError(f"--baseline: {path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(map(str, first["loc"])) + ": " + first["msg"] if first else str(exc)
        raise GaverifyError(
            f"--baseline: {path} is not a census JSON (gaverify census --json): {where}"
        ) from exc


def run_census(
    types: Sequence[str] | None = None,
    heads: Sequence[str] | None = None,
    *,
    jobs: int = 1,
    timeout: float = DEFAULT_TIMEOUT_S,
    cache: Path | None = None,
    fresh: bool = False,
    baseline: Census | None = None,
    progress: Progress | None = None,
    command: str | None = None,
) -> Census:
    """Judge every selected pair and return the Census (rows in mapping
    order). `cache`: the folder of cached rows (None: no cache); `fresh`:
    judge again even when a row is cached. Ctrl-C or SIGTERM ends it early
    with `interrupted` set and the finished rows kept."""
    pairs = select(types, heads)  # names are checked before torch loads
    import torch
    import transformers

    progress = progress or Progress()
    versions = {
        "gaverify": __version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    store = RowCache(cache, versions) if cache is not None else None
    done: dict[tuple[str, str], CensusRow] = {}
    if store is not None and not fresh:
        for pair in pairs:
            if (row := store.get(pair.type, pair.head)) is not None:
                done[row.key] = row
    cached = len(done)
    progress.start(len(pairs))
    for _ in range(cached):
        progress.advance("cached")

    def finished(row: CensusRow) -> None:
        done[row.key] = row
        if store is not None:
            store.put(row)
        progress.advance(f"{row.type} {row.head}: {row.verdict}")

    start = time.monotonic()
    todo = [p for p in pairs if (p.type, p.head) not in done]
    exit_code, interrupted = EXIT_OK, False
    try:
        judge_all(todo, jobs, timeout, finished)
    except KeyboardInterrupt as stop:  # keep what finished
        exit_code, interrupted = stop_code(stop), True
    census = Census(
        gaverify_version=versions["gaverify"],
        transformers_version=versions["transformers"],
        torch_version=versions["torch"],
        date=datetime.datetime.now(datetime.UTC).date().isoformat(),
        command=command,
        jobs=jobs,
        wall_s=round(time.monotonic() - start, 1),
        cached=cached,
        planned=len(pairs),
        interrupted=interrupted,
        rows=[done[k] for k in _keys(pairs) if k in done],
    )
    if baseline is not None:
        census.changes = compare(baseline, census)
        if census.changes and not interrupted:
            exit_code = EXIT_EXPECTATION_FAILED
    census.exit_code = exit_code
    return census


def _keys(pairs: Sequence[Pair]) -> list[tuple[str, str]]:
    return [(p.type, p.head) for p in pairs]
