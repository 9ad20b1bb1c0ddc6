"""The command line as a user meets it: exit codes, messages, files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gaverify.cli import app
from gaverify.measure.results import RunResult

runner = CliRunner()
SMALL = ["--set", "steps=1", "--set", "batch.accumulation=[2,8]"]


def invoke(*args):
    return runner.invoke(app, list(args))


def _no_torch_after(argv: list[str]) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        f"sys.argv = {['gaverify', *argv]!r}\n"
        "from gaverify.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
        "sys.exit(code or 0)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_help_does_not_import_torch():
    proc = _no_torch_after(["--help"])
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout and "validate" in proc.stdout


@pytest.mark.parametrize("name", ["quickstart", "trainer"])
def test_validate_does_not_import_torch(name):
    proc = _no_torch_after(["validate", name])
    assert proc.returncode == 0, proc.stderr
    assert f"name: {name}" in proc.stdout


def test_console_script_runs_the_default_scenario(tmp_path):
    exe = Path(sys.executable).with_name("gaverify")
    proc = subprocess.run(
        [str(exe), "run", *SMALL, "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "naive: FAIL, as expected" in proc.stdout
    assert "fixed: PASS, as expected" in proc.stdout
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


@pytest.mark.slow
def test_quickstart_separates_naive_from_fixed(tmp_path):
    out = tmp_path / "quickstart.json"
    result = invoke("run", "scenarios/quickstart.yaml", "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema_version"] == 5
    rows = data["rows"]
    assert len(rows) == 4 * 3 * 2
    assert min(r["grad_rel_l2"] for r in rows if r["variant"] == "naive") > 1e-2
    assert max(r["grad_rel_l2"] for r in rows if r["variant"] == "fixed") < 1e-5
    reread = RunResult.model_validate_json(out.read_text())
    assert reread.exit_code == 0 and len(reread.rows) == 24


def test_equal_lengths_warns_and_meets_its_expectations():
    result = invoke("run", "equal-lengths", "--set", "steps=1")
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "same number of counted items" in result.output


def test_unmet_expectation_exits_1():
    result = invoke("run", *SMALL, "--set", "variant_expect.naive=pass")
    assert result.exit_code == 1
    assert "NOT as expected" in result.output and "FAILED" in result.output


def test_trainer_scenario_gates_ci_with_exit_code_json_and_junit(tmp_path):
    # The docs/ci.md recipe: the bundled trainer scenario and its report files.
    out, xml = tmp_path / "result.json", tmp_path / "junit.xml"
    args = ["--json", str(out), "--junit", str(xml), "--set", "steps=2"]
    result = invoke("run", "trainer", *args)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["environment"]["transformers"]
    assert 'failures="0"' in xml.read_text()
    result = invoke("run", "trainer", *args, "--set", "variant_expect.pre-fix=pass")
    assert result.exit_code == 1
    assert 'failures="2"' in xml.read_text()  # N=2 and N=4
    assert "N=4 pre-fix: fail, expected pass" in xml.read_text()


def _scenario_file(folder: Path, name: str, **extra) -> Path:
    data = {"name": name, "device": "cpu", "steps": 1, "batch": {"accumulation": [2]}, **extra}
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def test_several_scenarios_run_in_turn_and_one_exit_code_covers_them(tmp_path):
    _scenario_file(tmp_path, "good")
    _scenario_file(tmp_path, "wrong", expect={"naive": "pass"})
    out = tmp_path / "all.json"
    result = invoke("run", str(tmp_path), "--json", str(out))
    assert result.exit_code == 1, result.output
    summary = result.output.split("summary")[1]
    assert "good" in summary and "wrong" in summary and "naive N=2" in summary
    assert "FAILED: 1/2 scenarios as expected (exit 1)" in result.output
    saved = json.loads(out.read_text())
    assert [r["scenario"]["name"] for r in saved["results"]] == ["good", "wrong"]
    assert saved["exit_code"] == 1


def test_a_scenario_that_cannot_run_is_exit_2_and_the_others_still_run(tmp_path):
    good = _scenario_file(tmp_path, "good")
    broken = _scenario_file(tmp_path, "broken", variants=["no_such_module:loss"])
    result = invoke("run", str(broken), str(good))
    assert result.exit_code == 2, result.output
    assert "broken.yaml: could not run: variants: cannot import" in result.output
    assert "OK: 2/2 variants as expected" in result.output  # good still ran
    assert "1/2 scenarios as expected (exit 2)" in result.output


def test_every_file_is_validated_before_anything_runs(tmp_path):
    _scenario_file(tmp_path, "a", steps=0)
    _scenario_file(tmp_path, "b", batch={"size": 7})
    result = invoke("run", str(tmp_path))
    assert result.exit_code == 2
    errors = result.output.strip().splitlines()
    assert len(errors) == 2 and "a.yaml: steps" in errors[0] and "b.yaml: batch" in errors[1]


def test_list_and_report_do_not_import_torch(tmp_path):
    saved = tmp_path / "r.json"
    assert invoke("run", *SMALL, "--json", str(saved)).exit_code == 0
    for argv in (["list"], ["report", str(saved), "-f", "markdown"], ["report", str(saved)]):
        proc = _no_torch_after(argv)
        assert proc.returncode == 0, proc.stderr


def test_a_saved_result_re_renders_in_every_format(tmp_path):
    saved, md, png = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.png"
    ran = invoke("run", *SMALL, "--json", str(saved), "--markdown", str(md), "--plot", str(png))
    assert ran.exit_code == 0, ran.output
    assert png.read_bytes().startswith(b"\x89PNG")
    again = invoke("report", str(saved), "--format", "markdown")
    assert again.exit_code == 0 and again.output == md.read_text()
    table = invoke("report", str(saved))
    assert "naive: FAIL, as expected" in table.output and "mean-of-means" in table.output
    assert "<testcase" in invoke("report", str(saved), "-f", "junit").output
    plotted = invoke("report", str(saved), "-f", "plot", "-o", str(tmp_path / "again.png"))
    assert plotted.exit_code == 0 and (tmp_path / "again.png").read_bytes() == png.read_bytes()


def test_report_errors_are_one_line(tmp_path):
    not_json = tmp_path / "r.json"
    not_json.write_text("name: x\n")
    _one_line_error(invoke("report", str(not_json)), "r.json: not JSON (line 1, column 1")
    old = tmp_path / "old.json"
    old.write_text('{"schema_version": 1}')
    _one_line_error(
        invoke("report", str(old)), "schema_version 1, but this gaverify reads 2, 3, 4 or 5"
    )
    _one_line_error(invoke("report", str(old), "-f", "plto"), "did you mean 'plot'")


@pytest.mark.parametrize("backend", ["reference", "trainer"])
def test_layers_shows_the_parameters_diverging_most(backend, tmp_path):
    md = tmp_path / "r.md"
    args = [*SMALL, "--set", f"backend={backend}", "--layers", "2", "--markdown", str(md)]
    result = invoke("run", *args)
    assert result.exit_code == 0, result.output
    view = result.output.split("layers diverging most")[1]
    assert "model.layers.0." in view or "lm_head" in view or "model.norm" in view
    assert "## Layers diverging most" in md.read_text()
    assert "layers diverging most" not in invoke("run", *SMALL).output  # only on request


def test_trainer_backend_refuses_reference_only_settings():
    result = invoke("run", "trainer", "--set", "mode=lockstep")
    _one_line_error(result, "mode", "backend 'trainer' runs trajectory")


def test_trajectory_mode_shows_parameter_drift():
    result = invoke("run", *SMALL, "--set", "mode=trajectory")
    assert result.exit_code == 0, result.output
    assert "|Δp|" in result.output


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_model_config_is_a_usage_error():
    _one_line_error(
        invoke("run", *SMALL, "--set", "model.config.num_attention_heads=5"),
        "model.config: invalid for 'llama'",
    )


def test_sequences_longer_than_the_model_allows():
    _one_line_error(
        invoke("run", *SMALL, "--set", "data.length.max=600"),
        "data.length.max: 600 is longer than the model's max_position_embeddings (512)",
    )


def test_bad_optimizer_option_is_a_usage_error():
    _one_line_error(
        invoke("run", *SMALL, "--set", "optimizer.options.betaz=1"),
        "optimizer.options: adamw:",
        "betaz",
    )


def test_debug_shows_the_traceback(tmp_path):
    result = invoke("run", str(tmp_path / "missing.yaml"), "--debug")
    assert result.exit_code != 0 and result.exit_code != 2
    assert "no such file" in str(result.exception)


def test_validate_prints_the_resolved_scenario():
    result = invoke("validate", "--set", "dtype=float64")
    assert result.exit_code == 0
    assert "grad_rel_l2: 1.0e-09" in result.output and "valid" in result.output


def test_init_writes_a_starter_that_validates_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "mine.yaml"
    assert invoke("init", str(path)).exit_code == 0
    assert path.read_text().startswith("# A gaverify scenario")
    assert invoke("validate", str(path)).exit_code == 0
    _one_line_error(invoke("init", str(path)), "already exists; pass --force")
    assert invoke("init", str(path), "--force").exit_code == 0


def test_list_shows_bundled_scenarios_and_variants():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ["quickstart", "equal-lengths", "naive", "fixed", "adamw", "lockstep", "reference"]:
        assert name in result.output


def test_env_gives_paste_ready_lines():
    result = invoke("env")
    assert result.exit_code == 0
    assert "- torch: " in result.output and "- transformers: " in result.output
    assert "- python: " in result.output and "- gpu: " in result.output


def test_pretrained_id_that_is_not_available(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    _one_line_error(
        invoke(
            "run",
            *SMALL,
            "--set",
            "model.source=pretrained",
            "--set",
            "model.path=nobody/missing-model",
        ),
        "model.path: 'nobody/missing-model' is not a model directory",
    )


def test_factory_that_does_not_import():
    _one_line_error(
        invoke(
            "run",
            *SMALL,
            "--set",
            "model.source=factory",
            "--set",
            "model.factory=no_such_module:make",
        ),
        "model.factory: cannot import 'no_such_module:make': ModuleNotFoundError",
    )


def test_data_file_with_the_wrong_column(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"body": "some text here"}\n' * 8)
    _one_line_error(
        invoke(
            "run",
            *SMALL,
            "--set",
            "data.source=jsonl",
            "--set",
            f"data.path={tmp_path / 'd.jsonl'}",
        ),
        "data.columns.text: row 1 of",
        "has no column 'text' (it has: body)",
    )


def test_nproc_is_a_shorthand_for_distributed_processes():
    result = invoke("run", "ddp", "--nproc", "1")
    assert result.exit_code == 2
    assert "distributed.processes: backend 'ddp' needs 2 or more, not 1" in result.output
    assert "Traceback" not in result.output


def test_ctrl_c_keeps_the_rows_so_far_and_exits_130(tmp_path, monkeypatch):
    from gaverify.backends import reference

    calls = []
    real = reference.compare_gradients

    def stop_on_the_third(ref, got):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(ref, got)

    monkeypatch.setattr(reference, "compare_gradients", stop_on_the_third)
    out = tmp_path / "partial.json"
    result = invoke("run", *SMALL, "--json", str(out))
    assert result.exit_code == 130, result.output
    assert "INTERRUPTED: stopped by Ctrl-C after 2 rows" in result.output
    assert "results so far kept" in result.output
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and data["exit_code"] == 130
    assert [(r["n"], r["variant"]) for r in data["rows"]] == [(2, "naive"), (2, "fixed")]
    assert [(g["n"], g["variant"]) for g in data["groups"]] == [(2, "naive"), (2, "fixed")]
    assert not list(tmp_path.glob("*.tmp*"))  # nothing half-written left behind


def test_ctrl_c_before_any_row_still_writes_an_empty_result(tmp_path, monkeypatch):
    from gaverify.backends import reference

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reference, "accumulate", stop)
    out = tmp_path / "partial.json"
    result = invoke("run", *SMALL, "--json", str(out))
    assert result.exit_code == 130, result.output
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and data["results"] == []


def _short_then_long(tmp_path, signum: int, code: int, name: str):
    """Run a short scenario then a long one in a real process, send `signum`
    once the short one has finished; the parsed JSON and the long one's stdout."""
    short, long = tmp_path / "short.yaml", tmp_path / "long.yaml"
    short.write_text("name: short\nsteps: 1\n")
    long.write_text("name: long\nsteps: 400\n")
    out = tmp_path / "both.json"
    argv = ["gaverify", "run", str(short), str(long), "--json", str(out)]
    program = (  # Python's Ctrl-C handler back: a parent running in the background ignores SIGINT
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        f"sys.argv = {argv!r}\n"
        "from gaverify.cli import main\n"
        "main()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    for line in proc.stdout:  # the short scenario's closing line: the long one is running
        if line.startswith("OK:"):
            break
    time.sleep(3)  # the long one's model is built and some of its steps are done
    sent = time.monotonic()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 3
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"interrupted ({name})" in stderr
    data = json.loads(out.read_text())
    assert data["interrupted"] and data["exit_code"] == code
    results = data["results"]
    assert results[0]["scenario"]["name"] == "short" and not results[0]["interrupted"]
    if len(results) > 1:  # rows of the long one, if any came
        assert results[1]["interrupted"] and results[1]["exit_code"] == code
        assert f"INTERRUPTED: stopped by {name} after" in stdout
    return out


def test_a_real_sigint_keeps_finished_and_partial_results(tmp_path):
    _short_then_long(tmp_path, signal.SIGINT, 130, "Ctrl-C")


def test_sigterm_keeps_the_finished_rows_writes_the_reports_and_exits_143(tmp_path):
    # what a CI cancel or a scheduler's time limit sends
    out = _short_then_long(tmp_path, signal.SIGTERM, 143, "SIGTERM")
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_unwritable_report_path_is_refused_before_any_training(tmp_path):
    (tmp_path / "taken").write_text("a file\n")
    started = time.monotonic()
    result = invoke("run", "--json", str(tmp_path / "taken" / "out.json"))
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.output
    assert time.monotonic() - started < 3
    made = tmp_path / "new" / "deeper" / "out.json"  # missing folders are created
    assert invoke("run", *SMALL, "--json", str(made)).exit_code == 0 and made.exists()


def test_quiet_prints_the_summaries_and_the_final_line_only():
    result = invoke("run", *SMALL, "-q")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("naive: FAIL, as expected") and lines[-1].startswith("OK: 2/2")
    assert not any(line.startswith(("note:", "default:")) for line in lines)
    full = invoke("run", *SMALL, "--no-progress").output
    assert "note: " in full and "step N variant" in full.replace("  ", " ")


def test_a_nan_row_is_non_finite_never_a_pass_and_the_run_goes_on(tmp_path):
    nan = "tests.usercode.heads:nan_on_single_samples"
    out = tmp_path / "nan.json"
    result = invoke("run", *SMALL, "--set", f"variants=[fixed,'{nan}']", "--json", str(out))
    assert result.exit_code == 1, result.output
    data = json.loads(out.read_text())
    verdicts = {(r["n"], r["variant"]): r["verdict"] for r in data["rows"]}
    assert verdicts == {
        (2, "fixed"): "pass",
        (2, nan): "pass",
        (8, "fixed"): "pass",
        (8, nan): "non-finite",
    }
    assert {v["variant"]: v["verdict"] for v in data["variants"]}[nan] == "non-finite"
    assert any(d["pattern"] == "non-finite" for d in data["diagnoses"])
    assert "NON-FINITE" in result.output and "Traceback" not in result.output


def test_a_diverging_reference_makes_later_rows_non_finite_and_an_absurd_lr_exit_2():
    args = ["--set", "steps=3", "--set", "batch.accumulation=[2]"]
    result = invoke("run", *args, "--set", "optimizer.lr=1e30")  # step 1 trains into NaN
    assert result.exit_code == 1, result.output
    assert result.output.count("NON-FINITE") >= 4 and "Traceback" not in result.output
    _one_line_error(invoke("run", *args, "--set", "optimizer.lr=1e38"), "optimizer.lr: 1e+38")
