"""`gaverify census`: pairs, judging, workers under a time limit, the cache, the baseline."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gaverify.census import run_census
from gaverify.census.cache import RowCache
from gaverify.census.judge import judge
from gaverify.census.pairs import Pair, select
from gaverify.census.pool import judge_all
from gaverify.errors import GaverifyError, UnknownNameError
from gaverify.measure.census import Census

pytestmark = pytest.mark.slow
SELECTION = ["--types", "bert,llama", "--heads", "masked-lm,causal-lm"]


def test_pairs_come_from_the_installed_mappings():
    pairs = select(["bert", "llama"], ["masked-lm", "causal-lm"])
    assert pairs == [
        Pair("bert", "causal-lm"),
        Pair("llama", "causal-lm"),
        Pair("bert", "masked-lm"),
    ]
    assert len(select()) > 400  # every (type, head) of the installed transformers


def test_unknown_names_get_a_suggestion():
    with pytest.raises(UnknownNameError, match="unknown model type \\(--types\\) 'lama' .*'llama'"):
        select(["lama"])
    with pytest.raises(UnknownNameError, match="did you mean 'masked-lm'"):
        select(heads=["maskedlm"])
    with pytest.raises(GaverifyError, match="--types bert has none of the heads seq2seq"):
        select(["bert"], ["seq2seq"])


def test_a_row_is_reproduced_by_its_command():
    pair = Pair("bert", "question-answering")
    assert pair.command() == (
        "gaverify run census --set model.type=bert --set model.task=question-answering "
        "--set data.pad_to_max=true"
    )
    assert pair.command("float32").endswith("--set dtype=float32")


def test_bert_masked_lm_ignores_the_count_and_llama_passes():
    bert = judge(Pair("bert", "masked-lm"))
    assert bert.verdict == "fail" and bert.pattern == "sum-of-means"
    assert bert.scales_loss is True and bert.model_class == "BertForMaskedLM"
    assert bert.loss_ratio == pytest.approx(4.0, abs=0.05)  # N = 4 times the full batch's
    llama = judge(Pair("llama", "causal-lm"))
    assert llama.verdict == "pass" and llama.dtype == "float64"
    assert llama.loss_ratio == pytest.approx(1.0, abs=1e-5)
    assert llama.worst["grad_rel_l2"] < 1e-12


def test_a_model_that_cannot_be_built_is_a_row():
    row = judge(Pair("mamba2", "causal-lm"))
    assert row.verdict in {"cannot build", "cannot run"} and row.detail


# Stand-ins for a model's run in the worker: importable by name (spawned workers).
def sleepy(pair):
    time.sleep(60)


def dying(pair):
    os._exit(3)


def test_a_hanging_or_dying_pair_is_stopped_and_the_rest_still_run(monkeypatch):
    rows = []
    pairs = [Pair("bert", "masked-lm"), Pair("llama", "causal-lm")]
    start = time.monotonic()
    judge_all(pairs, jobs=2, timeout=3, on_row=rows.append, judge=sleepy)
    assert time.monotonic() - start < 30
    assert {r.detail for r in rows} == {"timed out after 3 s (stopped)"}
    rows.clear()
    judge_all(pairs, jobs=1, timeout=30, on_row=rows.append, judge=dying)
    assert [r.detail for r in rows] == ["the model killed its worker process (exit 3)"] * 2
    assert all(r.verdict == "cannot run" for r in rows)


def test_rows_are_cached_and_reused(tmp_path):
    first = run_census(["llama"], ["causal-lm"], cache=tmp_path)
    assert first.cached == 0 and first.rows[0].verdict == "pass"
    again = run_census(["llama"], ["causal-lm"], cache=tmp_path)
    assert again.cached == 1 and again.rows == first.rows
    versions = {"gaverify": "0.0.0", "transformers": first.transformers_version, "torch": "x"}
    assert RowCache(tmp_path, versions).get("llama", "causal-lm") is None  # other versions


def _cli(tmp_path, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "gaverify", "census", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "GAVERIFY_CACHE": str(tmp_path / "cache"), **(env or {})},
        timeout=600,
    )


def test_census_cli_and_its_baseline_gate(tmp_path):
    proc = _cli(tmp_path, *SELECTION, "--json", "c.json", "--markdown", "c.md")
    assert proc.returncode == 0, proc.stderr
    census = Census.model_validate_json((tmp_path / "c.json").read_text())
    verdicts = {(r.type, r.head): (r.verdict, r.pattern) for r in census.rows}
    assert verdicts[("bert", "masked-lm")] == ("fail", "sum-of-means")
    assert verdicts[("llama", "causal-lm")] == ("pass", None)
    assert "1 FAIL, 2 PASS" in proc.stdout
    page = (tmp_path / "c.md").read_text()
    assert "`gaverify run census --set model.type=bert --set model.task=masked-lm`" in page

    edited = json.loads((tmp_path / "c.json").read_text())
    edited["rows"][1]["verdict"] = "fail"  # llama causal-lm, as if it had failed before
    (tmp_path / "base.json").write_text(json.dumps(edited))
    gate = _cli(tmp_path, *SELECTION, "--baseline", "base.json")
    assert gate.returncode == 1, gate.stderr
    assert "1 verdict(s) changed" in gate.stdout and "llama causal-lm: FAIL -> PASS" in gate.stdout
    assert "3 from the cache" in gate.stdout


def test_sigterm_keeps_the_finished_rows_stops_every_worker_and_the_rerun_resumes(tmp_path):
    selection = ["--types", "bert,llama,gpt2,mistral", "--heads", "causal-lm,masked-lm"]
    args = [sys.executable, "-m", "gaverify", "census", *selection]
    proc = subprocess.Popen(
        [*args, "--jobs", "2", "--json", "c.json"],
        cwd=tmp_path,
        env={**os.environ, "GAVERIFY_CACHE": str(tmp_path / "cache")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    cache = tmp_path / "cache" / "census"
    deadline = time.monotonic() + 120
    while not list(cache.glob("*/*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    census = Census.model_validate_json((tmp_path / "c.json").read_text())
    assert census.interrupted and 1 <= len(census.rows) < census.planned
    assert "INTERRUPTED" in out
    left = "?"
    for _ in range(50):  # multiprocessing's resource tracker exits just after its parent
        left = subprocess.run(["pgrep", "-a", "-s", str(proc.pid)], capture_output=True, text=True)
        if not left.stdout.strip():
            break
        time.sleep(0.1)
    assert left.stdout.strip() == "", f"left running: {left.stdout}"
    rerun = _cli(tmp_path, *selection, "--json", "again.json")
    resumed = Census.model_validate_json((tmp_path / "again.json").read_text())
    assert rerun.returncode == 0 and not resumed.interrupted
    assert resumed.cached >= len(census.rows) and len(resumed.rows) == resumed.planned
