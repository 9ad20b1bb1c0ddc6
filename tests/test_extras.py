"""MoE router losses under accumulation: token parts judged exactly, the aux term by its weight."""

from __future__ import annotations

import pytest

from gaverify.accumulation.extras import weigh
from gaverify.errors import GaverifyError
from gaverify.runner import run_scenario
from tests.conftest import small_scenario

MOE = {
    "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    "num_key_value_heads": 2, "intermediate_size": 64, "moe_intermediate_size": 32,
    "num_experts": 4, "num_experts_per_tok": 2, "vocab_size": 97,
    "max_position_embeddings": 128, "output_router_logits": True, "router_aux_loss_coef": 0.02,
}  # fmt: skip
BY_ITEMS = "custom_losses:moe_aux_by_items"  # scenarios/custom_losses.py


def _moe(**fields):
    config = {**MOE, **fields.pop("config", {})}
    base = {"model": {"type": "qwen3_moe", "config": config}, "steps": 1}
    scenario = small_scenario(**{**base, "batch": {"accumulation": [2, 4]}, **fields})
    scenario._source_dir = __import__("pathlib").Path(__file__).parents[1] / "scenarios"
    return scenario


@pytest.mark.parametrize(
    ("weights", "full", "n", "world", "pattern"),
    [
        ([0.5, 0.5], 1.0, 2, 1, "extra-mean"),
        ([0.25, 0.25, 0.25, 0.25], 0.25, 4, 1, "extra-summed"),  # in units of the full's
        ([0.7, 0.3], 1.0, 2, 1, "extra-weighted-mean"),
        ([1.0, 1.0, 1.0, 1.0], 1.0, 4, 1, "extra-summed"),
        ([1 / 16] * 4, 1.0, 4, 1, "extra-divided-twice"),
        ([1.0] * 4, 1.0, 2, 2, "extra-summed-times-world"),  # W x N pieces, each at 1
        ([0.5] * 8, 1.0, 4, 2, "extra-summed"),  # summed per process, averaged across
        ([1 / 4] * 8, 1.0, 4, 2, "extra-times-world"),
        ([0.3, 0.3], 1.0, 2, 1, "extra-weight"),
        ([0.0, 0.0], 0.0, 2, 1, "extra-left-out"),  # on the full batch and accumulated
        ([1.0, 1.0], 0.0, 2, 1, "extra-weight"),
    ],
)
def test_the_extra_terms_weight_is_named(weights, full, n, world, pattern):
    assert weigh(weights, full, n, world)[1] == pattern


def test_the_models_loss_sums_the_router_aux_loss_and_its_token_part_is_exact():
    result = run_scenario(_moe(variants=["fixed", "model", BY_ITEMS]))
    rows = {(r.n, r.variant): r for r in result.rows}
    for n in (2, 4):
        model, mine = rows[(n, "model")], rows[(n, BY_ITEMS)]
        assert model.extra_weight == pytest.approx(n, rel=1e-4)  # summed: N x the mean
        assert mine.extra_weight == pytest.approx(1.0, rel=1e-4)  # item shares sum to 1
        assert rows[(n, "fixed")].extra_weight is None  # gaverify's token loss has no aux
        for row in (model, mine):  # the token parts: equal to float32 rounding
            assert row.grad_rel_l2 < 1e-5 and row.loss_rel < 1e-5
        assert model.exceeded == ["extra_weight_rel"] and mine.verdict == "pass"
    by_variant = {v.variant: v.verdict for v in result.variants}
    assert by_variant == {"fixed": "pass", "model": "fail", BY_ITEMS: "pass"}
    (d2, d4) = [d for d in result.diagnoses if d.variant == "model"]
    assert (d2.pattern, d4.pattern) == ("extra-summed", "extra-summed")
    assert "aux_loss x 0.02" in d4.detail and "summed over the 4 micro-batches" in d4.detail
    fits = {(f.n, f.variant): f for f in result.extra_fits}
    assert fits[(4, "model")].weights == pytest.approx([1.0] * 4, rel=1e-4)
    assert fits[(4, "model")].full_weight == pytest.approx(1.0, rel=1e-4)
    assert fits[(2, BY_ITEMS)].pattern == "extra-weighted-mean"


@pytest.mark.parametrize("off", [{"router_aux_loss_coef": 0.0}, {"output_router_logits": False}])
def test_without_the_aux_loss_the_model_passes_as_a_dense_model_does(off):
    result = run_scenario(_moe(config=off, variants=["fixed", "model"]))
    assert all(r.verdict == "pass" and r.extra_weight is None for r in result.rows)
    assert result.extra_fits == []


def test_trajectory_mode_judges_each_step_at_the_runs_own_parameters():
    result = run_scenario(_moe(mode="trajectory", steps=2, variants=["fixed", "model"]))
    model = [r for r in result.rows if r.variant == "model"]
    assert all(r.param_max_abs is None and r.grad_rel_l2 < 1e-5 for r in model)
    assert [round(r.extra_weight, 3) for r in model] == [2.0, 4.0, 2.0, 4.0]
    assert any("drift from the full-batch run by design" in note for note in result.notes)


def test_float64_is_refused_where_the_router_computes_in_float32():
    with pytest.raises(GaverifyError, match="dtype: float64 cannot judge qwen3_moe's extra"):
        run_scenario(_moe(dtype="float64", variants=["fixed", "model"]))
    # without extra terms to judge, float64 runs (experts eagerly: grouped_mm has no kernel)
    result = run_scenario(_moe(dtype="float64", variants=["fixed"]))
    assert result.ok and any("experts run eagerly" in note for note in result.notes)


def test_the_installed_trainer_sums_the_aux_loss_and_a_weighted_loss_passes():
    result = run_scenario(_moe(backend="trainer", variants=["installed", "pre-fix", BY_ITEMS]))
    weights = {(f.n, f.variant): round(f.weight, 3) for f in result.extra_fits}
    assert weights == {
        (2, "installed"): 2.0, (4, "installed"): 4.0,  # summed: N x the mean
        (2, "pre-fix"): 1.0, (4, "pre-fix"): 1.0,  # mean / N: the aux weight is right ...
        (2, BY_ITEMS): 1.0, (4, BY_ITEMS): 1.0,
    }  # fmt: skip
    patterns = {(d.n, d.variant): d.pattern for d in result.diagnoses}
    assert patterns[(4, "installed")] == "extra-summed"
    assert patterns[(4, "pre-fix")] == "mean-of-means"  # ... its token part is not
    installed = [r for r in result.rows if r.variant == "installed"]
    assert all(r.exceeded == ["extra_weight_rel"] and r.param_max_abs is None for r in installed)
    assert {v.variant: v.verdict for v in result.variants}[BY_ITEMS] == "pass"


@pytest.mark.slow
def test_transformers_48690_the_trainer_on_two_processes_multiplies_the_aux_loss_by_w():
    scenario = _moe(
        backend="trainer", distributed={"processes": 2}, batch={"accumulation": [2]},
        variants=["installed", "local-count", BY_ITEMS],
    )  # fmt: skip
    result = run_scenario(scenario)
    fits = {f.variant: f for f in result.extra_fits}
    assert fits["installed"].pattern == "extra-summed-times-world"
    assert fits["installed"].weight == pytest.approx(4.0, rel=1e-3)  # N x W
    assert fits["installed"].ranks == 2 and len(fits["installed"].weights) == 4
    assert fits["local-count"].weight == pytest.approx(2.0, rel=1e-3)  # x W / W: summed
    assert fits[BY_ITEMS].weight == pytest.approx(1.0, rel=1e-3)
    installed = [r for r in result.rows if r.variant == "installed"]
    assert all(r.exceeded == ["extra_weight_rel"] for r in installed)  # token part exact
    local = next(d for d in result.diagnoses if d.variant == "local-count")
    assert local.pattern == "extra-summed" and "token part diverges too" in local.detail


def test_backends_comparing_whole_losses_refuse_or_warn_about_router_losses():
    pytest.importorskip("lightning")
    with pytest.raises(GaverifyError, match="backend lightning compares whole losses"):
        run_scenario(_moe(backend="lightning", variants=["installed"]))
    loop = run_scenario(_moe(backend="loop", loop={"step": "gaverify.loops:token_weighted"}))
    assert any("backend loop compares whole losses" in note for note in loop.notes)


def test_tolerance_auto_keeps_the_default_for_the_router_weight_it_cannot_measure():
    result = run_scenario(_moe(tolerance="auto", variants=["fixed", "model", BY_ITEMS]))
    assert result.tolerance["extra_weight_rel"] == 1e-2  # float32's, not a rounding floor
    assert "extra_weight_rel" not in result.calibration.noise
    verdicts = {v.variant: v.verdict for v in result.variants}
    assert verdicts == {"fixed": "pass", "model": "fail", BY_ITEMS: "pass"}
