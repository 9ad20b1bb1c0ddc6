"""The ddp backend and its launcher: real processes over gloo on this CPU.

Each run starts two ranks through torch's elastic launcher (several seconds);
the launcher's failure handling is also tested on fabricated job folders.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaverify.distributed import launch
from gaverify.errors import GaverifyError
from gaverify.runner import run_scenario
from tests.conftest import small_scenario


def ddp_scenario(**fields):
    base = {
        "backend": "ddp",
        "batch": {"size": 8, "accumulation": [1, 2, 4]},
        "distributed": {"processes": 2, "timeout": 60},
        "variants": ["local-count", "global-count", "global-count-unscaled"],
    }
    base.update(fields)
    return small_scenario(**base)


def test_all_reduced_count_equals_the_single_process_full_batch_in_float64():
    result = run_scenario(ddp_scenario(dtype="float64", steps=2))
    assert result.exit_code == 0
    assert result.device == "cpu x 2 (gloo)"
    rows = {(r.step, r.n, r.variant): r for r in result.rows}
    for r in result.rows:
        assert len(r.items_micro) == 2 * r.n and sum(r.items_micro) == r.items_full
        if r.variant == "global-count":
            assert r.grad_rel_l2 < 1e-12 and r.loss_rel < 1e-12, r
    # the bug: each rank's own count; the gradient is off by the ranks' count ratio
    assert rows[(1, 2, "local-count")].verdict == "fail"
    unscaled = rows[(1, 4, "global-count-unscaled")]
    assert unscaled.grad_norm_ga == pytest.approx(unscaled.grad_norm_full / 2, rel=1e-12)
    patterns = {(d.n, d.variant): d.pattern for d in result.diagnoses}
    assert patterns[(2, "local-count")] == "per-rank-count"
    assert patterns[(4, "global-count-unscaled")] == "unscaled-by-W"


def test_trajectory_trains_every_ddp_run_on_its_own_and_float32_passes_to_rounding():
    result = run_scenario(ddp_scenario(mode="trajectory", variants=["global-count"], steps=3))
    assert result.exit_code == 0
    assert all(r.param_max_abs is not None and r.param_max_abs < 1e-5 for r in result.rows)
    assert max(r.grad_rel_l2 for r in result.rows) < 1e-5  # float32 rounding, not a bug


def test_an_error_on_one_rank_is_reported_naming_it():
    scenario = ddp_scenario(
        model={"source": "factory", "factory": "tests.usercode.heads:fails_on_rank_one",
               "config": {"vocab_size": 97}},
    )  # fmt: skip
    with pytest.raises(GaverifyError, match=r"^rank 1: model.*no model for rank 1"):
        run_scenario(scenario)


def _start(
    tmp_path: Path, timeout: int, extra: tuple = (), backend: str = "ddp", **popen
) -> subprocess.Popen:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        f"backend: {backend}\ndevice: cpu\nsteps: 200\n"
        "batch: {size: 8, accumulation: [1, 2]}\n"
        f"distributed: {{processes: 2, timeout: {timeout}}}\n"
        "model: {config: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, "
        "num_key_value_heads: 2, intermediate_size: 64, vocab_size: 97}}\n"
        "data: {samples: 16, length: {min: 2, max: 24}}\n"
    )
    env = dict(os.environ, TMPDIR=str(tmp_path))  # the job folder lands here
    cmd = [sys.executable, "-m", "gaverify", "run", str(scenario), "-q", *extra]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def _rank_pids_once_running(proc, tmp_path: Path, passes: int = 2) -> dict[int, int]:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and proc.poll() is None:
        found = {}
        for path in glob.glob(str(tmp_path / "gaverify-ddp-*" / "rank*.json")):
            try:
                status = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                continue
            found[status["rank"]] = status
        if len(found) == 2 and all(s["passes"] >= passes for s in found.values()):
            return {rank: s["pid"] for rank, s in found.items()}
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the ranks never got going: {proc.communicate()[0]}")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


KILLED = "error: rank 1 was killed by SIGKILL after step "
FROZEN = "error: rank 1 hung: stopped responding (no heartbeat) after step "


@pytest.mark.parametrize(
    ("how", "message", "backend"),
    [
        (signal.SIGKILL, KILLED, "ddp"),
        (signal.SIGSTOP, FROZEN, "ddp"),
        (signal.SIGKILL, KILLED, "fsdp"),
        (signal.SIGSTOP, FROZEN, "accelerate"),
    ],
)
def test_a_rank_killed_or_frozen_mid_run_ends_it_with_exit_2_and_no_process_left(
    tmp_path, how, message, backend
):
    started = time.monotonic()
    proc = _start(tmp_path, timeout=10, backend=backend)
    pids = _rank_pids_once_running(proc, tmp_path)
    os.kill(pids[1], how)
    out, _ = proc.communicate(timeout=60)
    assert time.monotonic() - started < 60
    assert proc.returncode == 2, out
    assert message in out and "Traceback" not in out
    assert all(_gone(pid) for pid in pids.values())
    assert not glob.glob(str(tmp_path / "gaverify-ddp-*")) and not glob.glob(
        str(tmp_path / "torchelastic_*")
    )


def _sigint_as_in_a_terminal() -> None:
    # a parent shell running in the background leaves SIGINT ignored in its children
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_mid_run_keeps_every_finished_step_and_leaves_no_rank_behind(tmp_path):
    out = tmp_path / "partial.json"
    proc = _start(
        tmp_path, 30, ["--json", str(out)], preexec_fn=_sigint_as_in_a_terminal,
        start_new_session=True,
    )  # fmt: skip
    # 1 full batch + 2 N x 2 variants = 5 passes a step: 6 means step 1 is published
    pids = _rank_pids_once_running(proc, tmp_path, passes=6)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "interrupted (Ctrl-C)" in output and "Traceback" not in output
    assert all(_gone(pid) for pid in pids.values())
    assert not glob.glob(str(tmp_path / "gaverify-ddp-*"))
    data = json.loads(out.read_text())
    assert data["interrupted"] and data["rows"]
    steps = {r["step"] for r in data["rows"]}
    assert len(data["rows"]) == 4 * len(steps)  # whole steps only: N {1, 2} x 2 variants


def test_sigterm_mid_run_is_handled_as_ctrl_c_with_exit_143(tmp_path):
    out = tmp_path / "partial.json"
    proc = _start(tmp_path, 30, ["--json", str(out)], start_new_session=True)
    pids = _rank_pids_once_running(proc, tmp_path, passes=6)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # what a CI cancel or a scheduler sends: gaverify alone
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, output
    assert time.monotonic() - sent < 3, output
    assert "interrupted (SIGTERM)" in output and "Traceback" not in output
    assert all(_gone(pid) for pid in pids.values())
    assert not glob.glob(str(tmp_path / "gaverify-ddp-*"))
    data = json.loads(out.read_text())
    assert data["interrupted"] and data["exit_code"] == 143 and data["rows"]
    assert len(data["rows"]) == 4 * len({r["step"] for r in data["rows"]})


def _folder(tmp_path: Path, statuses: dict[int, dict], failures: dict | None = None) -> Path:
    for rank, status in statuses.items():
        defaults = {"rank": rank, "pid": 1, "passes": 3, "label": "step 1 N=2 x"}
        (tmp_path / f"rank{rank}.json").write_text(json.dumps({**defaults, **status}))
    if failures is not None:
        (tmp_path / "failures.json").write_text(json.dumps(failures))
    return tmp_path


def test_a_rank_that_died_is_named_before_ranks_whose_collectives_failed(tmp_path):
    folder = _folder(
        tmp_path,
        {0: {"state": "error", "error": "RuntimeError: gloo/pair.cc reset by peer", "peer": True},
         1: {"state": "running"}},
        {"0": {"exitcode": -15, "signal": "SIGTERM"}, "1": {"exitcode": -11, "signal": "SIGSEGV"}},
    )  # fmt: skip
    assert launch._failure(folder, 2, 1) == (
        "rank 1 was killed by SIGSEGV after step 1 N=2 x; the other ranks were stopped"
    )


def test_a_rank_error_of_its_own_is_named_before_symptoms(tmp_path):
    folder = _folder(
        tmp_path,
        {0: {"state": "error", "error": "RuntimeError: connection closed by peer", "peer": True},
         1: {"state": "error", "error": "data.path: no such file", "peer": False}},
        {"0": {"exitcode": 1, "signal": None}, "1": {"exitcode": 1, "signal": None}},
    )  # fmt: skip
    assert launch._failure(folder, 2, 1) == "rank 1: data.path: no such file"


def test_a_launcher_failure_without_ranks_quotes_its_last_line(tmp_path):
    (tmp_path / "launcher.log").write_text("starting\nOSError: address in use\n\n")
    assert (
        launch._failure(tmp_path, 2, 1) == "the launcher failed (exit 1): OSError: address in use"
    )


def test_a_hang_names_the_rank_behind_when_every_heartbeat_is_fresh():
    now = time.time()
    statuses = {
        0: {"passes": 5, "moves": 8, "label": "step 2 N=2 x", "beat": now},
        1: {"passes": 4, "moves": 7, "label": "step 2 N=1 x", "beat": now},
    }
    assert launch._hang(statuses, 2, 30) == (
        "rank 1 hung: is behind the others after step 2 N=1 x; no rank made progress for 30 s "
        "(distributed.timeout), so the run was stopped"
    )
    statuses[1].update(passes=5, moves=8)
    assert "rank 0, 1 hung: all stopped in the same place" in launch._hang(statuses, 2, 30)
    assert "rank 1 hung: stopped responding (no heartbeat) before it started" in launch._hang(
        {0: statuses[0]}, 2, 30
    )


def test_the_trainer_on_two_processes_all_reduces_the_count_unless_told_not_to():
    scenario = small_scenario(
        backend="trainer",
        batch={"size": 8, "accumulation": [1, 2]},
        distributed={"processes": 2, "timeout": 120},
        variants=["installed", "local-count"],
    )
    result = run_scenario(scenario)
    verdicts = {(g.n, g.variant): g.verdict for g in result.groups}
    assert verdicts == {
        (1, "installed"): "pass", (2, "installed"): "pass",
        (1, "local-count"): "fail", (2, "local-count"): "fail",
    }  # fmt: skip
    assert result.exit_code == 0 and result.diagnoses == []  # not fitted on several ranks
    assert all(len(r.items_micro) == 2 * r.n for r in result.rows)


def test_the_trainer_s_local_count_needs_several_processes():
    with pytest.raises(ValueError, match="local-count compares counts across processes"):
        small_scenario(backend="trainer", variants=["local-count"])
