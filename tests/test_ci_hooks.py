"""The GitHub Action (action.yml) and the pre-commit hook, run as CI runs them."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from gaverify.report.formats import load_results

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # where `gaverify` is installed
QUICK = "steps=1\nbatch.accumulation=[2, 4]"  # a value with a space stays one override


def _action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def _step_env(step: dict, inputs: dict[str, str]) -> dict[str, str]:
    """The step's env with `${{ inputs.x }}` filled in, as the runner does."""
    filled = {}
    for key, value in step.get("env", {}).items():
        name = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", value)
        assert name, f"{key}: inputs reach the script through env only, got {value!r}"
        filled[key] = inputs[name[1]]
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **filled}


def _run_step(step: dict, inputs: dict[str, str], cwd: Path, **env: str):
    # GitHub runs `shell: bash` steps as: bash --noprofile --norc -eo pipefail {0}
    script = cwd / "step.sh"
    script.write_text(step["run"])
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env={**_step_env(step, inputs), **env},
        capture_output=True,
        text=True,
    )


def _defaults(**given: str) -> dict[str, str]:
    inputs = {name: str(spec.get("default", "")) for name, spec in _action()["inputs"].items()}
    return {**inputs, **given}


def test_the_action_verifies_a_bundled_scenario_and_writes_its_reports(tmp_path):
    action = _action()
    assert action["runs"]["using"] == "composite"
    verify = next(s for s in action["runs"]["steps"] if s.get("id") == "verify")
    inputs = _defaults(set=QUICK)
    assert inputs["scenarios"] == "quickstart"
    proc = _run_step(verify, inputs, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = ET.parse(tmp_path / inputs["junit"]).getroot().iter("testcase")
    assert sorted(c.get("name") for c in cases) == [
        "N=2 fixed", "N=2 naive", "N=4 fixed", "N=4 naive",
    ]  # fmt: skip
    saved = load_results(tmp_path / inputs["json"])
    assert saved.results[0].scenario["name"] == "quickstart" and saved.exit_code == 0


def test_the_action_fails_the_job_when_a_variant_misses_its_expectation(tmp_path):
    verify = next(s for s in _action()["runs"]["steps"] if s.get("id") == "verify")
    inputs = _defaults(set=QUICK + "\nvariant_expect={naive: pass}")
    proc = _run_step(verify, inputs, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failures = list(ET.parse(tmp_path / inputs["junit"]).getroot().iter("failure"))
    assert len(failures) == 2 and "mean-of-means" in failures[0].text
    upload = _action()["runs"]["steps"][-1]
    assert upload["if"] == "always()" and "${{ inputs.junit }}" in upload["with"]["path"]


def test_the_action_installs_the_pinned_torch_before_gaverify(tmp_path):
    install = next(s for s in _action()["runs"]["steps"] if "pip install" in s.get("run", ""))
    # a `python` that records what it was asked to install
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text('#!/bin/sh\necho "$@" >> "$LOG"\n')
    (fake / "python").chmod(0o755)
    log = tmp_path / "pip.log"
    for transformers, expected in [("", ""), ("5.23.0", " transformers==5.23.0")]:
        log.write_text("")
        inputs = _defaults(transformers=transformers)
        proc = _run_step(
            install, inputs, tmp_path, LOG=str(log), GITHUB_ACTION_PATH="/action",
            PATH=f"{fake}:{os.environ['PATH']}",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert log.read_text().splitlines() == [
            "-m pip install --quiet torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
            f"-m pip install --quiet /action{expected}",
        ]


def test_the_pre_commit_hook_runs_before_a_push_on_the_projects_scenarios(tmp_path):
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "gaverify" and hook["pass_filenames"] is False
    assert hook["stages"] == ["pre-push", "manual"]
    # pre-commit runs `entry` followed by the `args` a project configures
    args = ["quickstart", "--set", "steps=1", "--set", "batch.accumulation=[2]"]
    command = [str(BIN / shlex.split(hook["entry"])[0]), *shlex.split(hook["entry"])[1:], *args]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expect_naive = [*command, "--set", "variant_expect={naive: pass}"]
    proc = subprocess.run(expect_naive, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and "mean-of-means" in proc.stdout
