"""Power: the weight error a run states it detects is the one it detects."""

import pytest

from gaverify.measure.power import hidden_warnings, power, weight_spread
from gaverify.measure.results import Measurement
from gaverify.runner import run_scenario
from tests.conftest import small_scenario
from tests.usercode import loops as usercode

STEP = "tests.usercode.loops:weights_off"


def _run(precision: str, **errors: float):
    for name in ("GRAD_ERROR", "LOSS_ERROR"):
        setattr(usercode, name, errors.get(name.lower(), 0.0))
    try:
        scenario = small_scenario(
            backend="loop", loop={"step": STEP}, precision=precision, batch={"accumulation": [2]}
        )
        return run_scenario(scenario)
    finally:
        usercode.GRAD_ERROR = usercode.LOSS_ERROR = 0.0


@pytest.mark.parametrize(
    "precision, gradient, loss", [("32", 1e-4, 1e-5), ("bf16-mixed", 5e-3, 1e-3)]
)
def test_the_stated_weight_error_is_the_edge_between_pass_and_fail(precision, gradient, loss):
    clean = _run(precision)
    assert clean.exit_code == 0
    assert (clean.power.gradient, clean.power.loss) == (gradient, loss)
    for kind, edge in [("grad_error", gradient), ("loss_error", loss)]:
        just_above = _run(precision, **{kind: 1.2 * edge})
        well_below = _run(precision, **{kind: 0.1 * edge})
        assert just_above.exit_code == 1, kind
        assert well_below.exit_code == 0, kind


def test_the_power_of_a_run_is_its_loosest_variant():
    tight = {"loss_rel": 1e-10, "grad_norm_rel": 1e-10, "grad_rel_l2": 1e-9}
    loose = {"loss_rel": 1e-5, "grad_norm_rel": 1e-6, "grad_rel_l2": 1e-6}
    stated = power([tight, loose])
    assert (stated.gradient, stated.loss) == (1e-6, 1e-5)


def test_weight_spread_is_how_far_mean_of_means_moves_a_weight():
    assert weight_spread([10, 10]) == 0.0
    assert weight_spread([10, 30]) == pytest.approx(1.0)  # T/(N T_1) = 40/20 = 2
    assert weight_spread([0, 4]) == float("inf")


def _row(n: int, counts: list[int]) -> Measurement:
    return Measurement(
        step=1, n=n, variant="fixed", items_full=sum(counts), items_micro=counts,
        loss_full=1.0, loss_ga=1.0, grad_norm_full=1.0, grad_norm_ga=1.0,
        grad_rel_l2=0.0, grad_cosine=1.0,
    )  # fmt: skip


def test_counts_closer_than_the_detectable_error_are_warned_about():
    detectable = power([{"loss_rel": 1e-3, "grad_norm_rel": 5e-3, "grad_rel_l2": 2e-2}])
    rows = [_row(2, [1000, 1004]), _row(4, [10, 30, 10, 30]), _row(8, [5] * 8)]
    warnings = hidden_warnings(rows, detectable)
    assert len(warnings) == 1  # N=4 differs plenty; N=8's equal counts have their own warning
    assert warnings[0].startswith("N=2: ") and "0.20%" in warnings[0] and "0.50%" in warnings[0]


def test_a_run_whose_counts_hide_mean_of_means_says_so_before_it_passes_it():
    scenario = small_scenario(
        precision="bf16-mixed",
        data={"samples": 32, "length": {"min": 63, "max": 64}},
        batch={"accumulation": [2]},
        variant_expect={"naive": "pass"},  # what the warning predicts
    )
    result = run_scenario(scenario)
    assert result.exit_code == 0
    (warning,) = result.warnings
    assert warning.startswith("N=2: the micro-batches' counts differ so little")
    assert "may hide in the noise" in warning
