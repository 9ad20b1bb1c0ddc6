"""The Python API: verify / assert_equivalent / verify_all, as a user calls them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import gaverify
from gaverify.api import Result, ScenarioInterrupted, load, verify_all
from gaverify.progress import Progress
from gaverify.report.formats import load_results
from tests.conftest import SMALL_MODEL, small_scenario

QUICK = {"steps": 1, "batch.accumulation": [2, 4]}  # quickstart, cut to seconds


def test_verify_returns_a_judged_result_and_prints_nothing(capsys):
    result = gaverify.verify("quickstart", QUICK)
    assert isinstance(result, Result)
    assert result.passed and result.exit_code == 0 and result.explain() == ""
    verdicts = {v.variant: (v.verdict, v.met) for v in result.variants}
    assert verdicts == {"naive": ("fail", True), "fixed": ("pass", True)}
    assert {d.pattern for d in result.diagnoses} == {"mean-of-means"}
    assert capsys.readouterr() == ("", "")


def test_a_missed_expectation_is_exit_code_1_and_explained():
    result = gaverify.verify("quickstart", {**QUICK, "variant_expect": {"naive": "pass"}})
    assert not result.passed and result.exit_code == 1
    text = result.explain()
    assert text.splitlines()[0] == "gaverify quickstart: 1/2 variants not as expected"
    assert "naive: FAIL, expected pass (2/2 rows over tolerance)" in text
    assert "N=4: mean-of-means (step 1)" in text and "fixed" not in text
    assert "(tol 1.0e-04)" in text  # the worst metrics stand against their tolerances


def test_assert_equivalent_raises_with_the_verdict_metrics_and_diagnosis():
    with pytest.raises(AssertionError) as caught:
        gaverify.assert_equivalent("quickstart", {**QUICK, "variant_expect": {"naive": "pass"}})
    message = str(caught.value)
    assert "naive: FAIL, expected pass" in message
    assert "worst: loss_rel" in message and "grad_rel_l2" in message
    assert "mean-of-means" in message
    assert gaverify.assert_equivalent("quickstart", QUICK).passed


def test_every_way_of_naming_a_scenario_gives_the_same_numbers(tmp_path):
    small = small_scenario(steps=1, batch={"accumulation": [2]})
    path = tmp_path / "small.yaml"
    path.write_text(json.dumps(small.model_dump(mode="json")))  # JSON is YAML
    mapping = small.model_dump(mode="json")
    losses = [
        [row.loss_ga for row in gaverify.verify(s).run.rows]
        for s in (small, path, str(path), mapping)
    ]
    assert losses[0] == losses[1] == losses[2] == losses[3]


def test_overrides_are_dotted_keys_or_set_texts_and_leave_the_scenario_alone():
    small = small_scenario(steps=2)
    by_mapping = load(small, {"steps": 1, "batch.accumulation": [2], "model.config.vocab_size": 50})
    by_texts = load(small, ["steps=1", "batch.accumulation=[2]", "model.config.vocab_size=50"])
    assert by_mapping == by_texts
    assert (by_mapping.steps, by_mapping.batch.accumulation) == (1, [2])
    # one key of the model config changed, the others kept
    assert by_mapping.model.config == {**SMALL_MODEL, "vocab_size": 50}
    assert small.steps == 2 and load(small) is small


@pytest.mark.parametrize(
    ("scenario", "overrides", "message"),
    [
        ("quickstart", {"batch.sise": 4}, "batch.sise: unknown key (did you mean 'size'?) "
         "(from overrides)"),
        ("quickstart", {"steps": "x"}, "steps: input should be a valid integer"),
        ("quickstart", {".steps": 1}, "overrides: '.steps': expected a dotted key"),
        ("quickstrat", None, "quickstrat: no such file or bundled scenario (did you mean "
         "'quickstart'?)"),
        ({"name": "mine", "stepz": 2}, None, "scenario mapping 'mine': stepz: unknown key"),
        (42, None, "scenario: expected a path, a bundled name, a mapping or a Scenario, got int"),
    ],
)  # fmt: skip
def test_bad_input_is_a_gaverify_error_with_a_one_line_message(scenario, overrides, message):
    with pytest.raises(gaverify.GaverifyError) as caught:
        gaverify.verify(scenario, overrides)
    assert message in str(caught.value)
    assert len(caught.value.lines()) == 1


def test_verify_all_records_a_scenario_that_cannot_run_and_runs_the_rest():
    seen = []
    good = small_scenario(steps=1, batch={"accumulation": [2]})
    broken = small_scenario(steps=1, variants=["tests.usercode.nowhere:missing"])
    outcome = verify_all(
        [broken, good], on_result=seen.append, on_error=lambda label, exc: seen.append(label)
    )
    assert outcome.exit_code == 2 and not outcome.passed and outcome.planned == 2
    assert [r.name for r in outcome.results] == [good.name]
    assert [e.scenario for e in outcome.errors] == [broken.name]
    assert seen[0] == broken.name and isinstance(seen[1], Result)
    assert json.loads(outcome.to_json())["exit_code"] == 2
    with pytest.raises(gaverify.GaverifyError, match="nowhere"):
        verify_all([broken])  # alone, its error is the call's error, as for verify


def test_results_render_to_reports_gaverify_report_reads(tmp_path):
    result = gaverify.verify(small_scenario(steps=1, batch={"accumulation": [2]}))
    (tmp_path / "r.json").write_text(result.to_json())
    assert load_results(tmp_path / "r.json").results[0] == result.run
    assert result.to_markdown().startswith(f"# gaverify: `{result.name}` OK (exit 0)")
    assert repr(result).startswith(f"<Result {result.name}: passed; naive=fail, fixed=pass")


def test_ctrl_c_in_verify_raises_with_the_rows_judged_so_far():
    class Stop(Progress):
        passes = 0

        def advance(self, label=""):
            self.passes += 1
            if self.passes == 4:
                raise KeyboardInterrupt

    with pytest.raises(ScenarioInterrupted) as caught:
        gaverify.verify(small_scenario(steps=3, batch={"accumulation": [2]}), progress=Stop())
    assert caught.value.code == 130
    assert caught.value.result is not None and caught.value.result.interrupted


def test_the_documented_one_liner_prints_the_exit_code_alone_and_loads_no_torch_on_import():
    one_liner = "import gaverify; r = gaverify.verify('quickstart'); print(r.exit_code)"
    proc = subprocess.run([sys.executable, "-c", one_liner], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0\n"
    lazy = "import sys, gaverify; gaverify.verify; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", lazy], capture_output=True, text=True)
    assert proc.stdout == "False\n", proc.stderr
