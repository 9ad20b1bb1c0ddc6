"""Joining a launcher's ranks: torchrun on one node and on two, srun-style
environments, and the faults a launcher cannot see (a rank that never
joins, a rank that hangs). Each run starts real processes on this CPU."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaverify.backends import as_launched
from gaverify.distributed.join import launched
from gaverify.errors import GaverifyError
from tests.conftest import small_scenario

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
TINY = (
    "device: cpu\nsteps: {steps}\nbatch: {{size: 8, accumulation: [1, 2]}}\n"
    "distributed: {{processes: 2, timeout: {timeout}}}\n"
    "model: {{config: {{hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, "
    "num_key_value_heads: 2, intermediate_size: 64, vocab_size: 97}}}}\n"
    "data: {{samples: 16, length: {{min: 2, max: 24}}}}\n"
)


def _scenario(tmp_path: Path, backend: str = "ddp", steps: int = 2, timeout: int = 60) -> Path:
    path = tmp_path / f"{backend}.yaml"
    path.write_text(f"backend: {backend}\n" + TINY.format(steps=steps, timeout=timeout))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "MASTER_ADDR"}}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def test_torchrun_standalone_runs_a_ddp_scenario_as_its_ranks_with_one_report(tmp_path):
    report = tmp_path / "result.json"
    cmd = [*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "gaverify", "run",
           str(ROOT / "scenarios" / "ddp.yaml"), "--json", str(report)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr  # as ddp.yaml's expect: states
    assert done.stdout.count("ddp: backend ddp") == 1  # rank 0 alone prints
    assert done.stdout.count("verdict pass: as the scenario states") == 1
    assert "ranks started by torchrun: 2 ranks on 1 node(s)" in done.stdout
    assert json.loads(report.read_text())["exit_code"] == 0


def test_two_torchrun_invocations_as_two_nodes_finish_with_one_report(tmp_path):
    scenario = _scenario(tmp_path, "fsdp")
    port = _free_port()

    def node(rank: int) -> subprocess.Popen:
        cmd = [*TORCHRUN, "--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
               "--rdzv-id", "gaverify-test", "-m", "gaverify", "run", str(scenario)]  # fmt: skip
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=_clean_env())  # fmt: skip

    nodes = [node(0), node(1)]
    outs = [p.communicate(timeout=300)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs
    both = "".join(outs)
    assert both.count("backend fsdp, mode lockstep") == 1, both
    assert "ranks started by torchrun: 2 ranks on 2 node(s)" in both


def _rank(scenario: Path, rank: int, port: int, **popen) -> subprocess.Popen:
    """One rank as srun would start it: its place in the environment, nothing else."""
    env = _clean_env(SLURM_PROCID=str(rank), SLURM_NTASKS="2", SLURM_NNODES="2",
                     SLURM_NODEID=str(rank), SLURM_LOCALID="0", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=str(port))  # fmt: skip
    cmd = [sys.executable, "-m", "gaverify", "run", str(scenario), "-q"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, **popen)  # fmt: skip


def test_a_node_that_never_joins_ends_the_run_with_exit_2_within_the_timeout(tmp_path):
    started = time.monotonic()
    alone = _rank(_scenario(tmp_path, timeout=5), 0, _free_port())
    out, _ = alone.communicate(timeout=120)
    assert alone.returncode == 2, out
    assert "error: rank 1 (node 1) never joined the rendezvous at 127.0.0.1:" in out
    assert "within 5 s (distributed.timeout); 1 of 2 ranks did" in out
    assert "Traceback" not in out and time.monotonic() - started < 60


def _training(port: int, rank: int) -> None:
    """Wait until `rank` has finished a training pass (read from the run's store)."""
    from datetime import timedelta

    import torch.distributed as dist

    tcp = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=timedelta(seconds=90))
    store, key = dist.PrefixStore("gaverify", tcp), f"moves/{rank}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if store.check([key]) and "step" in json.loads(store.get(key))["label"]:
            return
        time.sleep(0.2)
    raise AssertionError("the ranks never got going")


def test_a_rank_that_hangs_is_named_by_the_others_within_the_timeout(tmp_path):
    scenario, port = _scenario(tmp_path, steps=500, timeout=5), _free_port()
    ranks = [_rank(scenario, r, port) for r in (0, 1)]
    try:
        _training(port, 1)
        os.kill(ranks[1].pid, signal.SIGSTOP)
        stopped = time.monotonic()
        out, _ = ranks[0].communicate(timeout=60)
        assert time.monotonic() - stopped < 5 + 30  # the timeout, then the heartbeat check
    finally:
        for p in ranks:
            p.kill()
            p.wait()
    assert ranks[0].returncode == 2, out
    assert (
        "error: rank 1 (node 1) stopped responding (no heartbeat: it hung or died) after step"
        in out
    )
    assert "(distributed.timeout)" in out and "Traceback" not in out


def test_the_launcher_is_read_from_torchrun_srun_or_nothing(monkeypatch):
    for key in [k for k in os.environ if k.startswith(("SLURM_", "TORCHELASTIC", "ACCELERATE_"))]:
        monkeypatch.delenv(key)
    for key in (
        "RANK",
        "WORLD_SIZE",
        "MASTER_ADDR",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
        "GROUP_RANK",
    ):
        monkeypatch.delenv(key, raising=False)
    assert launched() is None
    monkeypatch.setenv("MASTER_ADDR", "node-a")
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_NNODES", "2")
    monkeypatch.setenv("SLURM_NODEID", "1")
    got = launched()
    assert (got.name, got.rank, got.world, got.local_world, got.node) == ("srun", 3, 4, 2, 1)
    assert got.address == "node-a:29500" and got.node_of(1) == 0
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")  # one process: nothing to join
    assert launched() is None


def test_under_a_launcher_its_world_size_wins_and_single_process_backends_refuse(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    joined = as_launched(small_scenario(backend="ddp", batch={"size": 8, "accumulation": [1, 2]}))
    assert joined.distributed.processes == 4
    with pytest.raises(GaverifyError, match=r"4 ranks: .*8"):
        as_launched(small_scenario(backend="ddp", batch={"size": 8, "accumulation": [4]}))
    with pytest.raises(GaverifyError, match="backend: reference starts its own processes"):
        as_launched(small_scenario())
