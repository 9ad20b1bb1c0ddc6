import math

import pytest

from gaverify.accumulation.variants import (
    VARIANTS,
    fixed_weights,
    naive_weights,
    trainer_scales_loss,
)
from gaverify.backends.reference import run
from gaverify.errors import GaverifyError, UnknownNameError
from gaverify.progress import Progress
from gaverify.runner import run_scenario
from gaverify.spec.schema import Scenario
from tests.conftest import small_scenario


def test_fixed_divides_every_micro_batch_by_the_whole_count():
    assert fixed_weights([3, 5, 2]) == [0.1, 0.1, 0.1]


def test_naive_is_mean_of_means():
    # w_i = 1 / (N * T_i): each micro-batch's own mean, then averaged over N
    assert naive_weights([2, 4]) == [0.25, 0.125]


def test_variants_agree_exactly_when_counts_are_equal():
    assert naive_weights([4, 4, 4]) == fixed_weights([4, 4, 4])


def test_weighted_sums_reproduce_the_two_losses():
    sums, counts = [6.0, 20.0], [2, 10]  # per-micro-batch summed losses and counts
    full = sum(sums) / sum(counts)
    mean_of_means = (6.0 / 2 + 20.0 / 10) / 2
    assert sum(w * s for w, s in zip(fixed_weights(counts), sums, strict=True)) == full
    assert sum(w * s for w, s in zip(naive_weights(counts), sums, strict=True)) == mean_of_means
    assert full != mean_of_means


def test_zero_items_give_nan_like_a_real_loop():
    assert math.isnan(naive_weights([0, 3])[0])
    assert all(math.isnan(w) for w in fixed_weights([0, 0]))


def test_registry_knows_both_and_suggests_on_a_typo():
    assert VARIANTS.get("naive").expected == "fail"
    assert VARIANTS.get("fixed").expected == "pass"
    with pytest.raises(UnknownNameError, match="did you mean 'fixed'"):
        VARIANTS.get("fixd")


# --- variants that run code: the model's own loss, LabelSmoother, user losses ---


HEADS = "tests.usercode.heads"


def _factory_scenario(factory, variants, **fields):
    return Scenario.model_validate(
        {
            "device": "cpu",
            "dtype": "float64",
            "steps": 2,
            "model": {
                "source": "factory",
                "factory": f"{HEADS}:{factory}",
                "config": {"vocab_size": 50},
            },
            "data": {"samples": 16, "length": {"min": 2, "max": 24}},
            "batch": {"size": 8, "accumulation": [2, 4]},
            "variants": variants,
            **fields,
        }
    )


def _worst(trace, variant):
    return max(m.grad_rel_l2 for m in trace.measurements if m.variant == variant)


def test_model_variant_passes_a_head_that_uses_the_count():
    trace = run(_factory_scenario("honest_lm", ["model", "fixed"]), Progress())
    assert _worst(trace, "model") < 1e-12 and _worst(trace, "fixed") < 1e-12


def test_model_variant_catches_a_head_that_takes_the_count_but_ignores_it():
    trace = run(_factory_scenario("count_ignoring_lm", ["model"]), Progress())
    rows = trace.measurements
    assert all(m.grad_rel_l2 > 0.5 for m in rows)
    # per-micro-batch means summed without the Trainer's division by N: ~N times the loss
    assert all(abs(m.loss_ga / m.loss_full - m.n) < 0.5 * m.n for m in rows)


def test_model_variant_on_a_transformers_head_that_normalises():
    trace = run(small_scenario(dtype="float64", variants=["model"]), Progress())
    # transformers computes its loss in float32 (logits.float()) even for float64
    assert _worst(trace, "model") < 1e-6


def test_trainer_rule_for_passing_the_count():
    class Kw:
        def forward(self, input_ids, **kwargs): ...

    class NoKw:
        def forward(self, input_ids, labels=None): ...

    class Declared(Kw):
        accepts_loss_kwargs = False

    assert trainer_scales_loss(Kw()) and not trainer_scales_loss(NoKw())
    assert not trainer_scales_loss(Declared())


def test_label_smoother_as_the_trainer_calls_it_with_smoothing_in_every_run():
    scenario = small_scenario(
        dtype="float64",
        loss={"label_smoothing": 0.1},
        variants=["naive", "fixed", "label-smoother"],
    )
    trace = run(scenario, Progress())
    assert _worst(trace, "fixed") < 1e-12
    assert _worst(trace, "naive") > 1e-3
    assert _worst(trace, "label-smoother") < 1e-6  # LabelSmoother upcasts to float32


def test_custom_loss_that_uses_the_count_passes_and_one_that_ignores_it_fails():
    good, bad = f"{HEADS}:token_sum_loss", f"{HEADS}:per_batch_mean_loss"
    trace = run(small_scenario(dtype="float64", variants=[good, bad]), Progress())
    assert _worst(trace, good) < 1e-6
    assert min(m.grad_rel_l2 for m in trace.measurements if m.variant == bad) > 0.1
    ran = [note for note in trace.notes if note.startswith("user code ran:")]
    assert len(ran) == 2 and ran[0].startswith(f"user code ran: {good} (")
    assert ran[0].endswith("tests/usercode/heads.py)")


@pytest.mark.parametrize("mode", ["lockstep", "trajectory"])
def test_each_loss_is_judged_against_itself_on_the_full_batch(mode):
    # x4, and class-weighted: not S/T, but exactly invariant under accumulation
    scaled, weighted = f"{HEADS}:scaled_sum_loss", f"{HEADS}:class_weighted_loss"
    ignoring = f"{HEADS}:scaled_mean_loss"  # x4 and the count ignored: still wrong
    scenario = small_scenario(
        mode=mode,
        variants=["fixed", scaled, weighted, ignoring],
        batch={"accumulation": [2, 4]},
        variant_expect={ignoring: "fail"},
    )
    result = run_scenario(scenario)
    verdicts = {v.variant: v.verdict for v in result.variants}
    assert verdicts == {"fixed": "pass", scaled: "pass", weighted: "pass", ignoring: "fail"}
    assert result.exit_code == 0
    rows = {(r.step, r.n, r.variant): r for r in result.rows}
    # each reference is the variant's own loss: 4x the token loss for the scaled one
    assert rows[(1, 2, scaled)].loss_full == pytest.approx(4 * rows[(1, 2, "fixed")].loss_full)
    assert {d.pattern for d in result.diagnoses if d.variant == ignoring} == {"sum-of-means"}
    judged = [n for n in result.notes if "judged against its own loss on the full batch" in n]
    assert len(judged) == 3 and judged[0].startswith(f"{scaled}: ")


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ("raising_loss", "variants: tests.usercode.heads:raising_loss raised KeyError"),
        ("float_loss", "returned float, not a scalar tensor loss"),
        ("nope", "variants: cannot import 'tests.usercode.heads:nope': AttributeError"),
    ],
)
def test_custom_loss_problems_are_usage_errors(loss, message):
    with pytest.raises(GaverifyError, match=message):
        run(small_scenario(steps=1, variants=[f"{HEADS}:{loss}"]), Progress())
