"""backend: loop: the user's own accumulation step, measured against itself."""

import math

import pytest
from typer.testing import CliRunner

from gaverify.cli import app
from gaverify.runner import run_scenario
from tests.conftest import small_scenario
from tests.usercode import loops as usercode

runner = CliRunner()


def loop_scenario(step: str, **fields):
    return small_scenario(backend="loop", loop={"step": step}, **fields)


def test_quickstart_with_a_loss_over_n_loop_fails_and_a_token_weighted_one_passes():
    # the held-out check: any scenario, --set backend=loop --set loop.step=...
    for step, code in [("gaverify.loops:loss_over_n", 1), ("gaverify.loops:token_weighted", 0)]:
        result = runner.invoke(
            app, ["run", "quickstart", "--set", "backend=loop", "--set", f"loop.step={step}"]
        )
        assert result.exit_code == code, result.output
        assert "variants: naive, fixed set aside" in result.output


@pytest.mark.parametrize("mode", ["lockstep", "trajectory"])
def test_a_token_weighted_loop_equals_the_full_batch_in_float64(mode):
    result = run_scenario(
        loop_scenario("gaverify.loops:token_weighted", dtype="float64", mode=mode)
    )
    assert result.exit_code == 0
    assert {r.n for r in result.rows} == {2, 4, 8}
    for row in result.rows:
        assert row.grad_rel_l2 < 1e-12
        assert row.param_max_abs < 1e-12
        assert math.isclose(row.loss_ga, row.loss_full, rel_tol=1e-12)


def test_a_loop_whose_loss_is_not_the_token_loss_but_invariant_passes():
    result = run_scenario(loop_scenario("tests.usercode.loops:scaled_token_weighted"))
    assert result.exit_code == 0
    plain = run_scenario(loop_scenario("gaverify.loops:token_weighted"))
    scaled = {(r.step, r.n): r.loss_full for r in result.rows}
    for row in plain.rows:  # each reference is the step function's own full batch: x4
        assert scaled[(row.step, row.n)] == pytest.approx(4 * row.loss_full, rel=1e-5)


def test_a_loss_over_n_loop_fails_and_is_diagnosed_as_mean_of_means():
    result = run_scenario(loop_scenario("gaverify.loops:loss_over_n", dtype="float64"))
    assert result.exit_code == 1
    assert result.variants[0].variant == "gaverify.loops:loss_over_n"
    assert result.variants[0].verdict == "fail"
    assert {d.pattern for d in result.diagnoses} == {"mean-of-means"}
    assert any(n.startswith("user code ran: gaverify.loops:loss_over_n") for n in result.notes)


def test_the_step_function_gets_model_ready_batches_and_is_called_once_per_n():
    usercode.SEEN.clear()
    run_scenario(loop_scenario("tests.usercode.loops:records_keys", steps=1))
    assert len(usercode.SEEN) == 1 + 3  # the full batch, then N = 2, 4, 8
    assert {"input_ids", "attention_mask", "labels"} <= set(usercode.SEEN[0])
    assert usercode.SEEN[0]["input_ids"][0] == 8  # the full batch as one micro-batch


def test_question_answering_batches_carry_start_and_end_positions():
    usercode.SEEN.clear()
    scenario = loop_scenario(
        "tests.usercode.loops:records_keys", steps=1, model={"task": "question-answering"},
        data={"length": {"min": 8}}, batch={"accumulation": [2]},
    )  # fmt: skip
    run_scenario(scenario)
    assert {"start_positions", "end_positions"} <= set(usercode.SEEN[0])
    assert "labels" not in usercode.SEEN[0]


def test_a_loop_that_steps_every_micro_batch_fails_and_says_so():
    result = run_scenario(loop_scenario("tests.usercode.loops:steps_every_micro_batch"))
    assert result.exit_code == 1
    note = next(n for n in result.notes if "called optimizer.step() 2 times in one call" in n)
    assert "the gradient of its first step is compared, the parameters after its last" in note


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("raises", "loop.step: tests.usercode.loops:raises raised RuntimeError: out of ideas "
                   "(step 1, full batch)"),
        ("never_steps", "loop.step: tests.usercode.loops:never_steps returned without calling "
                        "optimizer.step() (step 1, full batch)"),
        ("returns_text", "loop.step: tests.usercode.loops:returns_text returned str, not a "
                         "number (the loss it would log) (step 1, full batch)"),
    ],
)  # fmt: skip
def test_a_broken_step_function_is_one_line_and_exit_2(step, message):
    result = runner.invoke(
        app,
        [
            "run",
            "quickstart",
            "--set",
            "backend=loop",
            "--set",
            f"loop.step=tests.usercode.loops:{step}",
        ],
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_loop_step_is_required_by_backend_loop_and_refused_elsewhere():
    result = runner.invoke(app, ["validate", "quickstart", "--set", "backend=loop"])
    assert result.exit_code == 2
    assert "loop.step: backend 'loop' needs loop.step: module:function" in result.output
    result = runner.invoke(app, ["validate", "quickstart", "--set", "loop.step=a.b:c"])
    assert result.exit_code == 2
    assert "loop.step is only used with backend: loop" in result.output


def test_a_step_function_that_does_not_import_is_exit_2():
    result = runner.invoke(
        app, ["run", "quickstart", "--set", "backend=loop", "--set", "loop.step=nowhere:step"]
    )
    assert result.exit_code == 2
    assert "loop.step: cannot import 'nowhere:step'" in result.output
