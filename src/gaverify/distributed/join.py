"""Joining a launcher that started gaverify itself as one of W ranks.

torchrun, `accelerate launch` (torchrun underneath) and SLURM's srun start
`gaverify run` once per rank, on one node or several. Their environment
says so: RANK, WORLD_SIZE and MASTER_ADDR (srun: SLURM_PROCID and
SLURM_NTASKS, with MASTER_ADDR exported by the batch script). A distributed
backend then starts no ranks of its own: `join_ranks` runs its worker right
here, in one process group over the launcher's ranks.

- Check-in: every rank writes its node and host to the launcher's TCP store
  (rank 0 hosts one when no torchrun agent does); rank 0 waits at most
  distributed.timeout for all W and otherwise names the ranks, and the
  nodes, that never came. Every rank then ends with exit 2.
- During the run every rank keeps its moves (passes, start-up stages) and a
  heartbeat counter in the store; a collective that times out
  (distributed.timeout) or breaks is blamed on a rank's own error, else on
  the rank whose heartbeat stopped (it hung or died), else on the rank
  behind the others.
- Rank 0's Trace is broadcast, so every rank judges the same rows and exits
  with the same code; only rank 0 prints and writes reports (cli/run.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from gaverify.distributed.rank import HEARTBEAT_S, RankContext, RanksInterrupted, peer_failure
from gaverify.errors import GaverifyError
from gaverify.imports import load_object
from gaverify.progress import Progress

FROZEN_S = 3.0  # a heartbeat counter that has not moved for this long: the rank hung or died
_group: dict[str, Any] = {}  # the process group once joined: one per gaverify process


@dataclass(frozen=True)
class Launcher:
    """Where this process stands among the launcher's ranks."""

    name: str  # torchrun, srun or "a launcher"
    rank: int
    world: int
    local_rank: int
    local_world: int
    node: int
    address: str  # MASTER_ADDR:MASTER_PORT

    def node_of(self, rank: int) -> int:
        """The node a rank runs on, as the launcher lays ranks out (node by node)."""
        return rank // max(1, self.local_world)


def launched() -> Launcher | None:
    """The launcher that started this process as one of its ranks, or None
    (environment only: cheap, imports nothing)."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        name = "torchrun" if "TORCHELASTIC_RUN_ID" in env else "a launcher"
        if any(key.startswith("ACCELERATE_") for key in env):
            name = "accelerate launch"  # torchrun underneath
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local, local_world = int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE", world))
        node = int(env.get("GROUP_RANK", rank // max(1, local_world)))
    elif "SLURM_PROCID" in env and "MASTER_ADDR" in env:
        name, rank, world = "srun", int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
        local = int(env.get("SLURM_LOCALID", 0))
        local_world = world // max(1, int(env.get("SLURM_NNODES", 1)))
        node = int(env.get("SLURM_NODEID", 0))
    else:
        return None
    if "MASTER_ADDR" not in env or world < 2:
        return None
    address = f"{env['MASTER_ADDR']}:{env.get('MASTER_PORT', '29500')}"
    return Launcher(name, rank, world, local, local_world, node, address)


@dataclass
class JoinedContext(RankContext):
    """A worker's RankContext under a launcher: rank 0 drives the progress
    bar; every rank keeps its moves in the store for the hang diagnosis."""

    progress: Progress = field(default_factory=Progress)
    store: Any = None
    partial: str | None = None

    def advance(self, label: str) -> None:
        """One more training pass is done on this rank."""
        if self.rank == 0:
            self.progress.advance(label)
        self.mark(label)

    def mark(self, label: str) -> None:
        """This rank moved on: what a hang diagnosis compares."""
        self.status["moves"] = self.status.get("moves", 0) + 1
        self.status["label"] = label
        self.store.set(f"moves/{self.rank}", json.dumps(self.status))

    def publish(self, text: str) -> None:
        """Rank 0's measurements so far, for Ctrl-C to keep."""
        self.partial = text


def join_ranks(scenario: Any, worker: str, progress: Progress, on_cuda: bool) -> str:
    """Run `worker` (module:function(scenario, RankContext) -> str) as this
    process's rank of the launcher's job; return rank 0's result on every rank."""
    import torch.distributed as dist

    launcher = launched()
    store = _join(launcher, scenario.distributed.timeout, on_cuda)
    device = f"cuda:{launcher.local_rank}" if on_cuda else "cpu"
    ctx = JoinedContext(None, launcher.rank, launcher.world, launcher.local_rank, device,
                        progress=progress, store=store)  # fmt: skip
    ctx.launcher = f"{launcher.name}: {launcher.world} ranks on {_nodes(launcher)} node(s)"
    try:
        result = load_object(worker, "backend")(scenario, ctx)
        dist.barrier()
    except KeyboardInterrupt:
        raise RanksInterrupted(ctx.partial) from None
    except Exception as exc:
        own = isinstance(exc, GaverifyError)
        error = "; ".join(exc.lines()) if own else f"{type(exc).__name__}: {exc}"
        if not peer_failure(error):
            store.set(f"error/{launcher.rank}", error)
            raise
        try:
            blame = _blame(store, launcher, scenario.distributed.timeout, error)
        except Exception:  # the store went with its host
            host = "rank 0 or the launcher"
            blame = f"the store at {launcher.address} went away with its host ({host}): {error}"
        raise GaverifyError(blame) from exc
    box = [result]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _nodes(launcher: Launcher) -> int:
    return -(-launcher.world // max(1, launcher.local_world))


def _join(launcher: Launcher, timeout: float, on_cuda: bool) -> Any:
    """Check in with every rank, then form the process group (once per process)."""
    if "store" in _group:
        return _group["store"]
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    host, _, port = launcher.address.rpartition(":")
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun hosts it
    hosts = launcher.rank == 0 and not agent
    wait = timedelta(seconds=timeout)
    try:
        tcp = dist.TCPStore(host, int(port), launcher.world, is_master=hosts, timeout=wait,
                            wait_for_workers=False)  # fmt: skip
    except (RuntimeError, OSError) as exc:
        raise GaverifyError(
            f"rank {launcher.rank} could not reach rank 0's store at {launcher.address} within "
            f"{timeout:g} s (distributed.timeout): node {launcher.node_of(0)} never started or "
            f"MASTER_ADDR/MASTER_PORT are wrong ({exc})"
        ) from None
    store = dist.PrefixStore("gaverify", tcp)
    store.set(f"joined/{launcher.rank}", f"node {launcher.node} ({socket.gethostname()})")
    if launcher.rank == 0:
        missing = _wait_for(store, launcher.world, timeout)
        store.set("roll", json.dumps(missing))
    else:  # rank 0 calls the roll once it has waited out the timeout at most
        tcp.set_timeout(timedelta(seconds=2 * timeout + 30))
        missing = json.loads(store.get("roll"))
        tcp.set_timeout(wait)
    if missing:
        nodes = sorted({launcher.node_of(r) for r in missing})
        raise GaverifyError(
            f"rank {', '.join(map(str, missing))} (node {', '.join(map(str, nodes))}) never joined "
            f"the rendezvous at {launcher.address} within {timeout:g} s (distributed.timeout); "
            f"{launcher.world - len(missing)} of {launcher.world} ranks did"
        )
    if on_cuda:
        torch.cuda.set_device(launcher.local_rank)
    group = dist.PrefixStore("group", tcp)
    dist.init_process_group("nccl" if on_cuda else "gloo", store=group, rank=launcher.rank,
                            world_size=launcher.world, timeout=wait)  # fmt: skip
    _beat(host, int(port), launcher, wait)
    _group["store"] = store
    return store


def _wait_for(store: Any, world: int, timeout: float) -> list[int]:
    """Rank 0: the ranks that had not checked in when the timeout ran out."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [r for r in range(world) if not store.check([f"joined/{r}"])]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.1)


def _beat(host: str, port: int, launcher: Launcher, wait: Any) -> None:
    """A heartbeat counter in the store, from a thread with its own connection."""
    import torch.distributed as dist

    tcp = dist.TCPStore(host, port, launcher.world, is_master=False, timeout=wait)
    store = dist.PrefixStore("gaverify", tcp)

    def beat() -> None:
        while True:
            try:
                store.add(f"beat/{launcher.rank}", 1)
            except Exception:  # the store's host (rank 0) is gone: nothing left to tell
                return
            time.sleep(HEARTBEAT_S)

    threading.Thread(target=beat, daemon=True).start()


def _blame(store: Any, launcher: Launcher, timeout: float, error: str) -> str:
    """The one line that says which rank broke a collective, and how."""
    ranks = range(launcher.world)
    for r in ranks:
        if r != launcher.rank and store.check([f"error/{r}"]):
            return f"rank {r}: {store.get(f'error/{r}').decode()}"
    before = {r: _counter(store, f"beat/{r}") for r in ranks}
    time.sleep(FROZEN_S)
    frozen = [r for r in ranks if _counter(store, f"beat/{r}") == before[r]]
    moves = {r: _moves(store, r) for r in ranks}
    if frozen:
        named, why = frozen, "stopped responding (no heartbeat: it hung or died)"
    else:
        least = min(m.get("moves", 0) for m in moves.values())
        named = [r for r, m in moves.items() if m.get("moves", 0) == least]
        why = "is behind the others"
    label = moves[named[0]].get("label")
    where = f"after {label}" if label else "before it started"
    nodes = ", ".join(str(launcher.node_of(r)) for r in named)
    cause = re.sub(r"\[[^\]]*\] ", "", error.splitlines()[0])[:160]  # gloo's source location
    return (
        f"rank {', '.join(map(str, named))} (node {nodes}) {why} {where}; a collective on "
        f"rank {launcher.rank} failed after at most {timeout:g} s (distributed.timeout): {cause}"
    )


def _counter(store: Any, key: str) -> int:
    return int(store.add(key, 0))


def _moves(store: Any, rank: int) -> dict[str, Any]:
    key = f"moves/{rank}"
    return json.loads(store.get(key)) if store.check([key]) else {}
