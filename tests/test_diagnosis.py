"""Diagnosis: deliberately broken accumulation loops, each named correctly.

Every broken loop is a weight rule on the micro-batches' summed losses (what
a real loop's `(loss / scale).backward()` amounts to), registered as a
variant for the test; the backend runs it, fits its gradient blind (from the
micro-batch gradients alone) and diagnosis.py names the pattern.
"""

import math

import pytest

from gaverify.accumulation.variants import VARIANTS, Variant
from gaverify.measure.diagnosis import PRECISION, diagnose, name_weights
from gaverify.measure.results import GradientFit, Measurement
from gaverify.measure.verdict import judge_row
from gaverify.runner import run_scenario
from tests.conftest import small_scenario

B = 8
BROKEN = {
    "sum-of-means": lambda c: [1 / t for t in c],
    "scaled-by-N": lambda c: [len(c) / sum(c)] * len(c),
    "scaled-by-1/N": lambda c: [1 / (len(c) * sum(c))] * len(c),
    # the first position of each of the B sequences counted too
    "count-off": lambda c: [1 / (sum(c) + B)] * len(c),
    # a partial last window dropped, or the first micro-batch seen twice
    "dropped": lambda c: [1 / sum(c)] * (len(c) - 1) + [0.0],
    "twice": lambda c: [2 / sum(c)] + [1 / sum(c)] * (len(c) - 1),
    "odd": lambda c: [(1 + 0.37 * i) / sum(c) for i in range(len(c))],
}
PATTERN = {"dropped": "dropped-or-repeated", "twice": "dropped-or-repeated", "odd": "unrecognised"}


@pytest.fixture
def broken(monkeypatch):
    for name, rule in BROKEN.items():
        variant = Variant(name, "a broken loop", "fail", weights=rule)
        monkeypatch.setitem(VARIANTS._entries, name, variant)
        monkeypatch.setitem(VARIANTS._summaries, name, variant.summary)


def _diagnoses(scenario):
    result = run_scenario(scenario)
    return result, {(d.n, d.variant): d for d in result.diagnoses}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["lockstep", "trajectory"])
def test_each_broken_loop_is_named(broken, dtype, mode):
    names = ["naive", *BROKEN]
    scenario = small_scenario(
        dtype=dtype, mode=mode, variants=names, batch={"accumulation": [2, 4]}
    )
    result, found = _diagnoses(scenario)
    for n in (2, 4):
        for name in names:
            d = found[(n, name)]
            want = "mean-of-means" if name == "naive" else PATTERN.get(name, name)
            assert d.pattern == want, (n, name, d.detail)
            assert d.step == 1 and d.fit is not None
    assert "normalised by" in found[(4, "count-off")].detail
    assert f"({B:+d})" in found[(4, "count-off")].detail
    assert "micro-batch 4 dropped" in found[(4, "dropped")].detail
    assert "micro-batch 1 counted 2x" in found[(4, "twice")].detail
    assert "match no known pattern" in found[(4, "odd")].detail


def test_a_correct_loop_gets_no_diagnosis(small):
    result, found = _diagnoses(small(variants=["fixed", "fixed-reordered", "model"]))
    assert result.exit_code == 0 and found == {}


def test_a_correct_loop_over_a_too_tight_tolerance_is_called_rounding(small):
    tight = {"grad_rel_l2": 1e-12, "grad_norm_rel": 1, "cosine_distance": 1, "loss_rel": 1}
    result, found = _diagnoses(small(variants=["fixed"], tolerance=tight))
    assert {d.pattern for d in found.values()} == {"full-batch"}
    assert all("rounding" in d.detail for d in found.values())


def test_fitted_weights_recover_mean_of_means_in_float64(small):
    # Not to 1e-12: Llama's RMSNorm computes in float32 even in a float64
    # model, so the gradient is linear in the loss weight to ~1e-8 only.
    _, found = _diagnoses(small(dtype="float64", variants=["naive"]))
    assert sorted(n for n, _ in found) == [2, 4, 8]
    for (n, _), d in found.items():
        counts = d.fit.counts
        want = [sum(counts) / (n * t) for t in counts]
        assert d.fit.weights == pytest.approx(want, rel=1e-6)
        assert d.fit.residual < 1e-6


def _fit(weights, counts, residual=1e-9):
    return GradientFit(step=1, n=len(counts), variant="v", counts=counts, weights=weights,
                       residual=residual)  # fmt: skip


def test_equal_counts_list_every_pattern_that_fits():
    # With equal counts, 1/T_i = N/T: both names describe the same weights.
    pattern, _, also = name_weights(_fit([2.0, 2.0], [5, 5]), PRECISION["float32"])
    assert (pattern, also) == ("sum-of-means", ["scaled-by-N", "scaled-by-constant"])


def test_a_gradient_that_is_no_reweighting_names_what_can_cause_it():
    pattern, detail, _ = name_weights(_fit([1.0, 1.0], [3, 5], residual=0.3), 1e-3)
    assert pattern == "unrecognised" and "no weighted sum" in detail
    assert "(fit residual 3.0e-01)" in detail
    for cause in ("dropout", "BatchNorm", "MoE router's load-balancing loss", "z-loss"):
        assert cause in detail


def test_an_own_loss_outside_the_token_losses_is_named_as_such():
    # BartForCausalLM's loss does not shift its labels: neither its accumulated
    # nor its full-batch gradient is a weighted sum of the token-loss gradients.
    fit = _fit([0.6, -0.25], [3, 5], residual=0.9).model_copy(update={"reference_residual": 0.99})
    pattern, detail, _ = name_weights(fit, PRECISION["float64"])
    assert pattern == "unrecognised" and "not built from the micro-batches' token losses" in detail
    assert "residual 9.9e-01" in detail and "dropout" not in detail
    inside = fit.model_copy(update={"reference_residual": 1e-14})  # the own loss is S/T-like
    assert "dropout" in name_weights(inside, PRECISION["float64"])[1]


def _diagnosed(fits, **rows):
    out = [_row(n=f.n, items_micro=f.counts, items_full=sum(f.counts), **rows) for f in fits]
    return {d.n: d for d in diagnose(out, fits, "float32")}


def test_a_factor_that_does_not_change_with_n_is_a_constant():
    # x4 at N=2 and N=4: at N=4 alone it would read as N; across N it is a constant
    fits = [_fit([4.0, 4.0], [60, 40]), _fit([4.0] * 4, [30, 30, 20, 20])]
    found = _diagnosed(fits, grad_rel_l2=3.0)
    assert {d.pattern for d in found.values()} == {"scaled-by-constant"}
    assert "scaled-by-N" in found[4].also
    assert "the loss is 4 times the full batch's whatever N" in found[2].detail


def test_a_factor_of_n_is_still_scaled_by_n():
    fits = [_fit([2.0, 2.0], [60, 40]), _fit([4.0] * 4, [30, 30, 20, 20])]
    found = _diagnosed(fits, grad_rel_l2=1.0)
    assert [found[2].pattern, found[4].pattern] == ["scaled-by-N", "scaled-by-N"]


def test_a_count_off_by_a_few_items_is_not_called_a_constant():
    counts = [60, 40]  # T = 100, normalised by 108
    fits = [_fit([100 / 108] * 2, counts), _fit([100 / 108] * 4, [30, 30, 20, 20])]
    found = _diagnosed(fits, grad_rel_l2=0.08)
    assert {d.pattern for d in found.values()} == {"count-off"}


def test_with_dropout_on_a_divergence_is_named_as_dropout():
    fits = [_fit([1.0, 1.0], [60, 40], residual=0.2)]
    rows = [_row(n=2, items_micro=[60, 40], items_full=100, grad_rel_l2=0.1)]
    (d,) = diagnose(rows, fits, "float32", dropout=True)
    assert d.pattern == "dropout" and "draw different dropout masks" in d.detail
    assert "(the fit alone says unrecognised)" in d.detail


def _row(**fields):
    base = dict(step=2, n=4, variant="v", items_full=8, items_micro=[1, 2, 2, 3], loss_full=2.0,
                loss_ga=8.0, grad_norm_full=1.0, grad_norm_ga=1.0, grad_rel_l2=0.0,
                grad_cosine=1.0)  # fmt: skip
    return judge_row(Measurement(**{**base, **fields}), small_scenario().tolerance)


def test_a_loss_only_divergence_is_the_logged_loss():
    (d,) = diagnose([_row(step=1, loss_ga=2.0), _row()], [], "float32")
    assert (d.pattern, d.step) == ("logged-loss", 2)
    assert "logged loss is x4 (N)" in d.detail


def test_non_finite_rows_are_not_fitted():
    (d,) = diagnose([_row(grad_rel_l2=math.nan)], [], "float32")
    assert d.pattern == "non-finite"


def test_a_zero_count_micro_batch_matches_no_rule_that_divides_by_it():
    # 1/(N*T_i) is undefined for T_i = 0; the weights must not match it by accident.
    pattern, _, also = name_weights(_fit([0.7, 1.9], [0, 5]), PRECISION["float32"])
    assert pattern == "unrecognised" and also == []


def _ranked(weights, counts, ranks):
    fit = _fit(weights, counts)
    return fit.model_copy(update={"n": len(counts) // ranks, "ranks": ranks})


def test_data_parallel_counts_are_named_per_rank():
    counts = [10, 30, 20, 40]  # rank 0 holds 40 items, rank 1 holds 60; T = 100
    per_rank = [100 / (2 * 40)] * 2 + [100 / (2 * 60)] * 2
    pattern, detail, _ = name_weights(_ranked(per_rank, counts, 2), PRECISION["float32"])
    assert pattern == "per-rank-count"
    assert "each rank divided by its own item count (40, 60), not the 100 of all 2 ranks" in detail
    pattern, detail, _ = name_weights(_ranked([0.5] * 4, counts, 2), PRECISION["float32"])
    assert pattern == "unscaled-by-W" and "average over the 2 ranks is not undone" in detail
    # the same weights from one process are not a rank's doing
    assert name_weights(_fit(per_rank, counts), PRECISION["float32"])[0] == "unrecognised"


def test_dropout_on_a_real_model_is_named_as_dropout_not_rounding():
    from gaverify.spec.loading import load

    result = run_scenario(load("masked-lm", ["model.dropout=true", "steps=1"]))
    fixed = [d for d in result.diagnoses if d.variant == "fixed"]
    assert fixed and {d.pattern for d in fixed} == {"dropout"}
    assert all("rounding" not in d.detail for d in fixed)


def _extra_fit(weights, full=1.0, n=2, ranks=1, variant="model"):
    from gaverify.accumulation.extras import weigh
    from gaverify.measure.results import ExtraFit

    total, pattern, detail = weigh(weights, full, n, ranks)
    return ExtraFit(step=1, n=n, variant=variant, terms="aux_loss x 0.02", weights=weights,
                    full_weight=full, weight=total, pattern=pattern, detail=detail,
                    residual=1e-9, ranks=ranks)  # fmt: skip


def test_a_summed_aux_loss_with_a_right_token_part_is_named_by_its_weight():
    row = _row(n=2, items_micro=[3, 5], loss_ga=2.0, variant="model", extra_weight=2.0)
    (d,) = diagnose([row], [], "float32", extra_fits=[_extra_fit([1.0, 1.0])])
    assert d.pattern == "extra-summed"
    assert d.detail.startswith("the extra loss terms (aux_loss x 0.02) weigh 2x their full-batch")
    assert "per micro-batch 1, 1 (a mean: 0.5 each)" in d.detail


def test_a_right_aux_weight_adds_nothing_to_a_token_diagnosis():
    row = _row(n=2, items_micro=[3, 5], loss_ga=2.0, variant="model", grad_rel_l2=0.3,
               extra_weight=1.0)  # fmt: skip
    assert row.exceeded == ["grad_rel_l2"]
    assert diagnose([row], [], "float32", extra_fits=[_extra_fit([0.5, 0.5])]) == []  # no fit
