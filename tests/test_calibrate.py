"""tolerance: auto: measured from the run's own rounding noise."""

import pytest

from gaverify.calibrate import calibrate
from gaverify.runner import run_scenario
from gaverify.spec.schema import Scenario
from gaverify.spec.tolerances import FLOOR
from tests.conftest import small_scenario

# (seed, min length, max length, mode): 20 runs over lengths and both modes;
# min == max gives equal counts, where naive is expected to pass.
TRIALS = [
    (seed, lo, hi, "trajectory" if seed % 2 else "lockstep")
    for seed, (lo, hi) in enumerate(
        [(2, 24), (1, 64), (8, 9), (3, 40), (16, 16), (2, 5), (30, 60), (2, 3), (10, 100),
         (4, 4), (2, 24), (5, 50), (12, 20), (1, 64), (20, 21), (6, 30), (2, 12), (40, 64),
         (7, 7), (3, 90)]
    )
]  # fmt: skip


def test_auto_is_a_shorthand_and_keeps_tolerances_unset_until_measured():
    s = Scenario.model_validate({"tolerance": "auto"})
    assert s.tolerance.auto and s.tolerance.factor == 10
    assert set(s.tolerance.limits().values()) == {None}
    explicit = Scenario.model_validate({"tolerance": {"auto": True, "loss_rel": 0.5}})
    assert explicit.tolerance.loss_rel == 0.5


@pytest.mark.parametrize(("seed", "lo", "hi", "mode"), TRIALS)
def test_fixed_passes_and_naive_fails_on_every_variable_length_run(seed, lo, hi, mode):
    scenario = small_scenario(
        seed=seed,
        mode=mode,
        tolerance="auto",
        data={"length": {"min": lo, "max": hi}},
        batch={"accumulation": [2, 4]},
    )
    result = run_scenario(scenario)
    for group in result.groups:
        rows = [r for r in result.rows if (r.n, r.variant) == (group.n, group.variant)]
        varied = any(len(set(r.items_micro)) > 1 for r in rows)
        if group.variant == "fixed":
            assert group.verdict == "pass", (group, result.tolerance)
        elif varied:
            assert group.verdict == "fail", (group, result.tolerance)
    assert result.exit_code == 0


def test_tolerances_sit_factor_above_the_noise_and_never_below_the_floor():
    scenario = small_scenario(mode="trajectory", tolerance={"auto": True, "factor": 4})
    resolved, calibration = calibrate(scenario)
    tol = resolved.tolerance.limits()
    for metric, noise in calibration.noise.items():
        assert tol[metric] >= 4 * noise
        assert tol[metric] >= FLOOR["float32"][metric]
        assert tol[metric] <= 1.1 * max(4 * noise, FLOOR["float32"][metric])  # rounded up


def test_explicit_tolerances_are_kept_and_the_result_says_how_the_rest_were_set():
    scenario = small_scenario(tolerance={"auto": True, "grad_rel_l2": 0.5}, steps=1)
    result = run_scenario(scenario)
    assert result.tolerance["grad_rel_l2"] == 0.5
    assert result.calibration.method.startswith("fixed-reordered")
    assert result.scenario["tolerance"]["auto"] is True  # the file's intent, for reproduction


def test_float64_noise_gives_float64_sized_tolerances():
    result = run_scenario(small_scenario(dtype="float64", tolerance="auto", steps=1))
    assert result.tolerance["grad_rel_l2"] < 1e-12
    assert [g.verdict for g in result.groups if g.variant == "fixed"] == ["pass"] * 3
