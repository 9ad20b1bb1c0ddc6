"""One rank of a distributed run: the process the launcher starts W times.

`python -m gaverify.distributed.rank FOLDER` (started by agent.py with
RANK, LOCAL_RANK and WORLD_SIZE set) re-validates the job's scenario, joins
the process group with the scenario's timeout, runs the backend's worker
function and, on rank 0, writes what it returns to FOLDER/result.json.

Each rank keeps FOLDER/rank<r>.json current: its pid, the passes it has
finished, its moves (passes and start-up stages) and the last one's label,
its state (running, done, error and the one-line message) and a heartbeat
written every HEARTBEAT_S by a thread, so the parent can tell a frozen rank
from one waiting in a collective.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaverify.errors import GaverifyError
from gaverify.imports import load_object
from gaverify.output import write_atomic
from gaverify.progress import Progress
from gaverify.spec.schema import Scenario

HEARTBEAT_S = 0.5


def partial_path(folder: Path) -> Path:
    """Where rank 0 keeps what it measured so far (JSON), for Ctrl-C to keep."""
    return folder / "partial.json"


def status_path(folder: Path, rank: int) -> Path:
    """Where rank `rank` keeps its status."""
    return folder / f"rank{rank}.json"


class RanksInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a distributed run; `partial` is rank 0's last published
    JSON (None when it published nothing)."""

    def __init__(self, partial: str | None):
        super().__init__()
        self.partial = partial


@dataclass
class RankContext(Progress):
    """What a worker function knows of its place in the run, and how it reports progress."""

    folder: Path | None  # the job folder (None when gaverify joined a launcher's ranks)
    rank: int
    world: int
    local_rank: int
    device: str  # "cpu" or "cuda:<local rank>"
    status: dict[str, Any] = field(default_factory=dict)
    launcher: str = ""  # who started the ranks, when not gaverify (distributed/join.py)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def advance(self, label: str) -> None:
        """One more training pass is done on this rank."""
        status = self.status
        self._write(passes=status["passes"] + 1, moves=status["moves"] + 1, label=label)

    def mark(self, label: str) -> None:
        """This rank moved on (a pass, or a start-up stage such as joining
        the process group): what the parent's hang clock watches."""
        self._write(moves=self.status["moves"] + 1, label=label)

    def publish(self, text: str) -> None:
        """Rank 0's measurements so far (JSON), for Ctrl-C to keep."""
        write_atomic(partial_path(self.folder), text)

    def _write(self, **changes: Any) -> None:
        with self._lock:
            self.status.update(changes, beat=time.time())
            write_atomic(status_path(self.folder, self.rank), json.dumps(self.status))


def mean_over_ranks(value: float) -> float:
    """The mean of `value` over every rank (summed in rank order, so every
    rank gets the same number): a loss as a data-parallel loop logs it."""
    import math

    values = gathered(value)
    return math.fsum(values) / len(values)


def gathered(value: Any) -> list[Any]:
    """`value` of every rank, in rank order (every rank gets the list)."""
    import torch.distributed as dist

    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def _beat(ctx: RankContext, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        ctx._write()


def _die_with_parent() -> None:
    """Linux: be killed when the launcher dies, so a rank is never left behind."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def peer_failure(error: str) -> bool:
    """Whether an error is a collective failing because another rank went
    away (gloo: connection reset or closed; NCCL: its watchdog): a symptom
    the parent reports only when no rank has a cause to show."""
    marks = ("/gloo/", "DistBackendError", "NCCL", "by peer", "pair closure", "Timed out")
    return any(mark in error for mark in marks)


def _context(folder: Path, on_cuda: bool) -> RankContext:
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    device = f"cuda:{local}" if on_cuda else "cpu"
    return RankContext(folder, rank, int(os.environ["WORLD_SIZE"]), local, device)


def main(folder: Path) -> int:
    """Run this rank's share of the job in `folder`; 0 on success."""
    _die_with_parent()
    job = json.loads((folder / "job.json").read_text())
    ctx = _context(folder, job["cuda"])
    ctx._write(rank=ctx.rank, pid=os.getpid(), passes=0, moves=0, state="running")
    ctx.mark("starting")
    stop = threading.Event()
    threading.Thread(target=_beat, args=(ctx, stop), daemon=True).start()
    try:
        result = _work(job, ctx)
        if ctx.rank == 0:
            write_atomic(folder / "result.json", result)
        state, error = "done", ""
    except Exception as exc:
        if isinstance(exc, GaverifyError):
            error = "; ".join(exc.lines())
        else:
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        state = "error"
    stop.set()
    ctx._write(state=state, error=error, peer=state == "error" and peer_failure(error))
    if state == "done":
        _leave()
    return 0 if state == "done" else 1


def _leave() -> None:
    """Tear the process group down once every rank is done (their results
    are written by then): the launcher accepts a crash in here, as gloo
    may abort a rank whose peer closed its connections first."""
    import torch.distributed as dist

    dist.destroy_process_group()


def _work(job: dict[str, Any], ctx: RankContext) -> str:
    from datetime import timedelta

    ctx.mark("importing torch")
    import torch
    import torch.distributed as dist

    ctx.mark("joining the process group")
    scenario = Scenario.model_validate(job["scenario"])
    scenario._source_dir = Path(job["source_dir"]) if job["source_dir"] else None
    if job["cuda"]:
        torch.cuda.set_device(ctx.local_rank)
    timeout = timedelta(seconds=scenario.distributed.timeout)
    dist.init_process_group("nccl" if job["cuda"] else "gloo", timeout=timeout)
    ctx.mark("building the model and data")
    result = load_object(job["worker"], "backend")(scenario, ctx)
    dist.barrier()  # no rank finishes while another still trains
    return result


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
