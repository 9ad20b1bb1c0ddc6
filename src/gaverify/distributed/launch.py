"""The parent side of a distributed run: launch the ranks, watch them, clean up.

`run_ranks` writes the job folder, starts agent.py (torch's elastic launcher)
in a session of its own, and polls the ranks' status files: rank 0's passes
drive the progress bar; any rank's progress resets the hang clock. It ends
the run with a one-line GaverifyError naming the rank when

- a rank fails: its own message (an exception it caught) or how it died
  (the launcher's first failure: exit code or signal);
- no rank moves on (a pass, a start-up stage) for distributed.timeout
  seconds: the rank whose
  heartbeat stopped (frozen or killed), else the one behind the others
  (the others wait for it in a collective).

Whatever happens, Ctrl-C included, every process of the run is killed and
the job folder removed before it returns; on Ctrl-C, RanksInterrupted
carries what rank 0 had published so far (if its worker publishes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaverify.distributed.join import join_ranks, launched
from gaverify.distributed.rank import RanksInterrupted, partial_path, status_path
from gaverify.errors import GaverifyError
from gaverify.output import write_atomic

POLL_S = 0.1
FROZEN_S = 3.0  # a rank beats every 0.5 s: silent this long, its process is stopped or gone


def run_ranks(
    scenario: Any,
    worker: str,
    progress: Any,
    on_cuda: bool,
    prepare: Callable[[Path], None] | None = None,
) -> str:
    """Run `worker` (module:function(scenario, RankContext) -> str) on the
    scenario's W ranks; return what rank 0's call returned. Under a launcher
    (torchrun, accelerate launch, srun) this process is one of the ranks:
    it joins the others (join.py) instead of starting any."""
    if launched() is not None:
        return join_ranks(scenario, worker, progress, on_cuda)
    spec = scenario.distributed
    if on_cuda:
        import torch

        if torch.cuda.device_count() < spec.processes:
            raise GaverifyError(
                f"distributed.processes: {spec.processes} ranks on CUDA need a GPU each "
                f"(NCCL); {torch.cuda.device_count()} visible. Lower it or use --device cpu (gloo)"
            )
    folder = Path(tempfile.mkdtemp(prefix="gaverify-ddp-"))
    agent = None
    try:
        job = {
            "scenario": scenario.model_dump(mode="json"),
            "source_dir": str(scenario.source_dir) if scenario.source_dir else None,
            "worker": worker,
            "processes": spec.processes,
            "cuda": on_cuda,
        }
        write_atomic(folder / "job.json", json.dumps(job))
        if prepare:
            prepare(folder)
        env = dict(os.environ)
        # Share the cores between the ranks (torchrun would set 1 when it is unset).
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // spec.processes)))
        with open(folder / "launcher.log", "wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "gaverify.distributed.agent", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one
                env=env,
            )
        code = _watch(agent, folder, spec.processes, spec.timeout, progress)
        statuses = _statuses(folder, spec.processes).values()
        finished = len(statuses) == spec.processes and all(s["state"] == "done" for s in statuses)
        # Every rank done and rank 0's result written: a crash while tearing down
        # the process group afterwards cannot change a number.
        if not (finished and (folder / "result.json").exists()):
            raise GaverifyError(_failure(folder, spec.processes, code))
        return (folder / "result.json").read_text()
    except KeyboardInterrupt:
        partial = partial_path(folder)
        raise RanksInterrupted(partial.read_text() if partial.exists() else None) from None
    finally:
        _stop(agent, folder, spec.processes)
        shutil.rmtree(folder, ignore_errors=True)


def _statuses(folder: Path, world: int) -> dict[int, dict[str, Any]]:
    out = {}
    for rank in range(world):
        with contextlib.suppress(OSError, ValueError):  # not started yet (writes are atomic)
            out[rank] = json.loads(status_path(folder, rank).read_text())
    return out


def _watch(agent: subprocess.Popen, folder: Path, world: int, timeout: float, progress) -> int:
    """Poll until the launcher exits; raise on a hang. Returns its exit code."""
    shown = total = 0
    moved = time.monotonic()
    while True:
        code = agent.poll()
        statuses = _statuses(folder, world)
        moves = sum(s["moves"] for s in statuses.values())
        if moves != total:
            total, moved = moves, time.monotonic()
        first = statuses.get(0, {})
        while shown < first.get("passes", 0):
            shown += 1
            progress.advance(first["label"])
        if code is not None:
            return code
        if time.monotonic() - moved > timeout:
            raise GaverifyError(_hang(statuses, world, timeout))
        time.sleep(POLL_S)


def _at(status: dict[str, Any]) -> str:
    return f"after {status['label']}" if status.get("passes") else f"while {status['label']}"


def _hang(statuses: dict[int, dict[str, Any]], world: int, timeout: float) -> str:
    now = time.time()
    frozen = [r for r in range(world) if r not in statuses or now - statuses[r]["beat"] > FROZEN_S]
    if frozen:
        named, why = frozen, "stopped responding (no heartbeat)"
    else:
        least = min(s["moves"] for s in statuses.values())
        behind = [r for r, s in statuses.items() if s["moves"] == least]
        whole = len(behind) == world
        named = behind
        why = "all stopped in the same place" if whole else "is behind the others"
    ranks = ", ".join(str(r) for r in named)
    where = _at(statuses[named[0]]) if named[0] in statuses else "before it started"
    return (
        f"rank {ranks} hung: {why} {where}; no rank made progress for {timeout:g} s "
        "(distributed.timeout), so the run was stopped"
    )


def _failure(folder: Path, world: int, code: int) -> str:
    """The one line that says which rank failed first, and how: a rank that
    died (a signal, an exit without a message) or raised an error of its own
    comes before a rank the launcher stopped (SIGTERM) and before ranks whose
    collectives failed because another went away."""
    statuses = _statuses(folder, world)
    try:
        failures = {
            int(r): f for r, f in json.loads((folder / "failures.json").read_text()).items()
        }
    except (OSError, ValueError):
        failures = {}
    died = [r for r in sorted(failures) if statuses.get(r, {}).get("state") != "error"]
    errors = [r for r, s in sorted(statuses.items()) if s.get("state") == "error"]
    stopped = [r for r in died if failures[r]["signal"] == "SIGTERM"]  # how the launcher stops
    causes = [
        *(r for r in died if r not in stopped),
        *(r for r in errors if not statuses[r].get("peer")),
        *stopped,
        *errors,
    ]
    if causes:
        rank = causes[0]
        if rank in errors:
            return f"rank {rank}: {statuses[rank]['error']}"
        failure = failures[rank]
        how = (
            f"was killed by {failure['signal']}"
            if failure["signal"]
            else f"exited with code {failure['exitcode']}"
        )
        where = _at(statuses[rank]) if rank in statuses else "before it started"
        return f"rank {rank} {how} {where}; the other ranks were stopped"
    return f"the launcher failed (exit {code}): {_last_line(folder / 'launcher.log')}"


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1].strip() if lines else "no output"


def _stop(agent: subprocess.Popen | None, folder: Path, world: int) -> None:
    """Kill every rank (each runs in a session of its own) and the launcher,
    and wait (a few seconds at most) until the ranks are gone. Once the
    launcher has exited on its own its ranks are gone (it stops them, and a
    rank dies with it), so their pids are not touched: they may be reused."""
    if agent is None or agent.poll() is not None:
        return
    pids = [s["pid"] for s in _statuses(folder, world).values() if s.get("pid")]
    for pid in pids:
        _kill(pid, lambda p: os.kill(p, signal.SIGKILL))
    _kill(agent.pid, lambda p: os.killpg(p, signal.SIGKILL))
    agent.wait()
    deadline = time.monotonic() + 5
    while any(_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(POLL_S)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill(pid: int | None, how: Callable[[int], None]) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            how(pid)
