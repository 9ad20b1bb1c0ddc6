"""Worker processes that judge census pairs, each pair under a time limit.

K workers (spawned, so no torch state is shared) each import torch and
transformers once and then judge one pair after another. A pair that runs
past the limit, or whose model kills its worker (a segfault, the OOM
killer), becomes a "cannot run" row, and a fresh worker takes the next
pair. Ctrl-C and SIGTERM reach the caller; workers ignore Ctrl-C themselves
and are killed on the way out, so nothing is left running.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from gaverify.census.judge import judge, unfinished
from gaverify.census.pairs import Pair
from gaverify.measure.census import CensusRow

# Pairs a worker judges before a fresh one takes over: what ~100 models leave
# behind in one process (transformers' and torch's caches) stays bounded.
RECYCLE_AFTER = 100


def _serve(conn: Connection, threads: int, judge: Callable[[Pair], CensusRow]) -> None:
    """A worker's life: judge each pair sent, send back its row, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # models print and warn; the parent owns the terminal
    os.dup2(devnull, 2)
    import torch

    torch.set_num_threads(threads)
    while True:
        try:
            pair = conn.recv()
        except EOFError:
            return
        if pair is None:
            return
        started = time.monotonic()
        try:
            row = judge(pair)
        except Exception as exc:  # a gaverify bug: one row says so, the census goes on
            why = f"gaverify could not judge it: {type(exc).__name__}: {exc}"
            row = unfinished(pair, why.splitlines()[0][:300], time.monotonic() - started)
        conn.send(row.model_dump())


@dataclass
class _Worker:
    process: Any
    conn: Connection
    pair: Pair | None = None
    since: float = 0.0
    judged: int = 0

    def give(self, pair: Pair) -> None:
        self.pair, self.since = pair, time.monotonic()
        self.judged += 1
        self.conn.send(pair)

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


def judge_all(
    pairs: Sequence[Pair],
    jobs: int,
    timeout: float,
    on_row: Callable[[CensusRow], None],
    judge: Callable[[Pair], CensusRow] = judge,
) -> None:
    """Judge `pairs` on `jobs` workers, calling `on_row` as each row is done
    (in the order they finish). Returns when all are judged. `judge` runs
    in the workers (a module-level function: it is sent by name)."""
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)

    def start() -> _Worker:
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, threads, judge), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    todo = deque(pairs)
    workers = [start() for _ in range(min(jobs, len(todo)))]
    try:
        while True:
            for worker in workers:
                if worker.pair is None and todo:
                    worker.give(todo.popleft())
            busy = [w for w in workers if w.pair is not None]
            if not busy:
                return
            left = min(w.since + timeout for w in busy) - time.monotonic()
            ready = wait([w.conn for w in busy], timeout=max(0.0, left))
            for i, worker in enumerate(workers):
                if worker.pair is None:
                    continue
                row, lost = _outcome(worker, worker.conn in ready, timeout)
                if row is None:
                    continue
                on_row(row)
                worker.pair = None
                if lost or (worker.judged >= RECYCLE_AFTER and todo):
                    worker.stop()  # a fresh worker takes the next pair
                    workers[i] = start()
    finally:
        for worker in workers:
            worker.stop()


def _outcome(worker: _Worker, ready: bool, timeout: float) -> tuple[CensusRow | None, bool]:
    """(row, worker lost): the row `worker` finished, or one saying why it
    could not (its worker is then lost); (None, False) while it still runs."""
    assert worker.pair is not None
    took = time.monotonic() - worker.since
    if ready:
        try:
            return CensusRow.model_validate(worker.conn.recv()), False
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            why = f"the model killed its worker process (exit {worker.process.exitcode})"
            return unfinished(worker.pair, why, took), True
    if took >= timeout:
        return unfinished(worker.pair, f"timed out after {timeout:g} s (stopped)", took), True
    return None, False
