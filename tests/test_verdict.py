import math

from gaverify.measure.results import Measurement
from gaverify.measure.verdict import discrimination_warnings, exit_code, judge_row, summarise
from gaverify.spec.schema import Scenario


def m(variant="fixed", n=2, step=1, rel=0.0, loss_ga=2.0, counts=(3, 5), **extra):
    return Measurement(
        step=step,
        n=n,
        variant=variant,
        items_full=sum(counts),
        items_micro=list(counts),
        loss_full=2.0,
        loss_ga=loss_ga,
        grad_norm_full=1.0,
        grad_norm_ga=1.0,
        grad_rel_l2=rel,
        grad_cosine=1.0,
        **extra,
    )


TOL = Scenario().tolerance  # float32 defaults: grad_rel_l2 1e-4, loss_rel 1e-5


def test_within_tolerance_passes():
    row = judge_row(m(rel=1e-5), TOL)
    assert (row.verdict, row.exceeded) == ("pass", [])


def test_each_metric_over_tolerance_is_named():
    row = judge_row(m(rel=1e-3, loss_ga=2.1, param_max_abs=1.0), TOL)
    assert row.verdict == "fail"
    assert row.exceeded == ["loss_rel", "grad_rel_l2", "param_max_abs"]


def test_tolerance_is_inclusive():
    assert judge_row(m(rel=TOL.grad_rel_l2), TOL).verdict == "pass"


def test_non_finite_is_never_a_pass():
    assert judge_row(m(rel=math.nan), TOL).verdict == "non-finite"
    assert judge_row(m(loss_ga=math.inf), TOL).verdict == "non-finite"


def test_summary_takes_the_worst_row_and_checks_expectations():
    scenario = Scenario()
    rows = [judge_row(x, TOL) for x in [m("naive", rel=0.5), m("naive"), m("fixed", rel=1e-7)]]
    groups, (naive, fixed) = summarise(rows, scenario)
    assert (naive.verdict, naive.expected, naive.met, naive.rows_failed) == (
        "fail",
        "fail",
        True,
        1,
    )
    assert naive.worst["grad_rel_l2"] == 0.5
    assert (fixed.verdict, fixed.met) == ("pass", True)
    assert exit_code(groups) == 0


def test_an_unmet_expectation_exits_1():
    scenario = Scenario.model_validate({"expect": {"naive": "pass"}})
    rows = [judge_row(m("naive", rel=0.5), TOL), judge_row(m(), TOL)]
    groups, summaries = summarise(rows, scenario)
    assert [s.met for s in summaries] == [False, True]
    assert exit_code(groups) == 1


def test_nan_wins_the_worst_value():
    rows = [judge_row(m(rel=math.nan), TOL), judge_row(m(rel=0.1), TOL)]
    _, (fixed,) = summarise(rows, Scenario(variants=["fixed"]))
    assert fixed.verdict == "non-finite" and not fixed.met
    assert math.isnan(fixed.worst["grad_rel_l2"])


def test_equal_counts_warn_that_the_scenario_cannot_discriminate():
    same = [m(n=2, counts=(4, 4)), m(n=2, step=2, counts=(6, 6)), m(n=4, counts=(1, 2, 3, 4))]
    (warning,) = discrimination_warnings(same)
    assert warning.startswith("N=2: every micro-batch holds the same number")
    assert discrimination_warnings([m(counts=(4, 4)), m(step=2, counts=(3, 5))]) == []


def test_the_extra_terms_weight_is_judged_against_one_when_a_row_has_it():
    assert judge_row(m(), TOL).extra_weight_rel is None  # a dense model: nothing to judge
    assert judge_row(m(extra_weight=1.004), TOL).verdict == "pass"  # tolerance 1e-2 (float32)
    row = judge_row(m(extra_weight=2.0), TOL)
    assert (row.verdict, row.exceeded, row.extra_weight_rel) == ("fail", ["extra_weight_rel"], 1.0)
