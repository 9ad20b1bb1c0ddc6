"""The accelerate backend: Accelerator.accumulate on one and on two gloo processes."""

from __future__ import annotations

import pytest

from gaverify.runner import run_scenario
from tests.conftest import small_scenario


def accelerate_scenario(processes: int, **fields):
    base = {
        "backend": "accelerate",
        "batch": {"size": 8, "accumulation": [1, 2, 4]},
        "distributed": {"processes": processes, "timeout": 60},
    }
    base.update(fields)
    return small_scenario(**base)


def test_one_process_the_recipe_is_the_full_batch_and_the_plain_loop_a_mean_of_means():
    result = run_scenario(accelerate_scenario(1, dtype="float64", steps=2))
    assert result.device == "cpu x 1 (gloo)"
    assert "accelerator.accumulate(model)" in result.notes[0]
    for r in result.rows:
        if r.variant == "variable-size-recipe" or r.n == 1:  # N=1: one micro-batch, the full batch
            assert r.grad_rel_l2 < 1e-12 and r.loss_rel < 1e-12, r
        else:
            assert r.verdict == "fail", r
    patterns = {(d.n, d.variant): d.pattern for d in result.diagnoses}
    assert patterns == {(2, "plain"): "mean-of-means", (4, "plain"): "mean-of-means"}
    assert result.exit_code == 0


def test_two_processes_need_the_recipe_s_x_num_processes():
    variants = ["plain", "variable-size-recipe", "recipe-without-num-processes"]
    result = run_scenario(accelerate_scenario(2, dtype="float64", steps=2, variants=variants))
    assert result.device == "cpu x 2 (gloo)"
    rows = {(r.step, r.n, r.variant): r for r in result.rows}
    for r in result.rows:
        assert len(r.items_micro) == 2 * r.n
        if r.variant == "variable-size-recipe":
            assert r.grad_rel_l2 < 1e-12 and r.loss_rel < 1e-12, r
    half = rows[(2, 2, "recipe-without-num-processes")]
    assert half.grad_norm_ga == pytest.approx(half.grad_norm_full / 2, rel=1e-12)
    patterns = {(d.n, d.variant): d.pattern for d in result.diagnoses}
    assert patterns[(1, "plain")] == "per-rank-count"  # one micro-batch a rank: each its own mean
    assert patterns[(4, "plain")] == "mean-of-means"
    assert patterns[(2, "recipe-without-num-processes")] == "unscaled-by-W"
    assert result.exit_code == 0


def test_trajectory_steps_the_prepared_optimizer_once_the_window_synced():
    result = run_scenario(accelerate_scenario(2, mode="trajectory", steps=3,
                                              variants=["variable-size-recipe"]))  # fmt: skip
    assert result.exit_code == 0
    assert all(r.param_max_abs is not None and r.param_max_abs < 1e-5 for r in result.rows)
    assert result.rows[-1].param_max_abs > 0  # it trained: float32 rounding shows
