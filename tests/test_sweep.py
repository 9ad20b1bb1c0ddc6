"""One shared backward pass per micro-batch gives every weight-only variant
what its own loop gives: exactly for the full batch's weights, to the model's
float32 rounding otherwise, NaN where a zero-count micro-batch makes it NaN."""

import math
import random

import pytest
import torch

from gaverify.accumulation.variants import VARIANTS
from gaverify.backends.reference import accumulate, run
from gaverify.backends.setup import Setup
from gaverify.backends.sweep import MAX_SHARED, groups, sweep
from gaverify.measure.compare import compare_gradients, gradients, snapshot
from gaverify.measure.fit import Sketch, micro_batch_sketches
from gaverify.progress import Progress
from tests.conftest import small_scenario
from tests.test_reference import _batches, _model, causal

naive, fixed = VARIANTS.get("naive"), VARIANTS.get("fixed")


def _own_pass(model, micro, variant):
    model.zero_grad(set_to_none=True)
    loss, _ = accumulate(model, micro, variant, causal)
    return loss, snapshot(gradients(model))


def _swept(model, micro, variants, sketch=None):
    model.zero_grad(set_to_none=True)
    done = sweep(model, micro, variants, causal, sketch=sketch)
    return done, {r.name: r for r in done.results}


def _seqs(seed, lengths=(2, 30)):
    rng = random.Random(seed)
    return [[rng.randrange(97) for _ in range(rng.randint(*lengths))] for _ in range(8)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("order", [("naive", "fixed"), ("fixed", "naive")])
def test_each_variant_gets_what_its_own_loop_gets(dtype, order):
    from gaverify.model.build import build_model
    from gaverify.spec.schema import ModelSpec
    from tests.conftest import SMALL_MODEL

    model = build_model(ModelSpec(config=SMALL_MODEL), causal, dtype, "cpu", 0, None).model
    micro = _batches(_seqs(1), 4)
    done, got = _swept(model, micro, [VARIANTS.get(name) for name in order])
    assert [r.name for r in done.results] == list(order)
    fixed_loss, fixed_grads = _own_pass(model, micro, fixed)
    naive_loss, naive_grads = _own_pass(model, micro, naive)
    # fixed is backpropagated at the full batch's scale: bit for bit its own loop
    assert got["fixed"].loss == fixed_loss
    assert all(torch.equal(a, b) for a, b in zip(fixed_grads, got["fixed"].grads, strict=True))
    # naive is scaled after the backward: its own loop up to float32 rounding inside the model
    assert got["naive"].loss == naive_loss
    assert compare_gradients(naive_grads, got["naive"].grads).rel_l2 < 1e-6
    assert compare_gradients(fixed_grads, naive_grads).rel_l2 > 1e-3


def test_fixed_from_a_sweep_equals_the_full_batch_in_float64():
    seqs, model = _seqs(2), _model(2)
    full_loss, full = _own_pass(model, _batches(seqs), fixed)
    done, got = _swept(model, _batches(seqs, 8), [naive, fixed])
    assert abs(got["fixed"].loss - full_loss) / full_loss < 1e-12
    assert compare_gradients(full, got["fixed"].grads).rel_l2 < 1e-12


def test_equal_counts_make_naive_exact_too():
    seqs = _seqs(3, lengths=(9, 9))
    model = _model()
    done, got = _swept(model, _batches(seqs, 4), [naive, fixed])
    assert len(set(done.counts)) == 1
    assert all(
        torch.equal(a, b) for a, b in zip(got["naive"].grads, got["fixed"].grads, strict=True)
    )


def test_a_zero_count_micro_batch_makes_naive_nan_and_leaves_fixed_finite():
    seqs = [[5], [7], *_seqs(4)[:6]]  # one token each: nothing to predict in micro-batch 0
    model = _model()
    micro = _batches(seqs, 4)
    done, got = _swept(model, micro, [naive, fixed])
    assert done.counts[0] == 0
    assert math.isnan(got["naive"].loss)
    assert all(torch.isnan(g).all() for g in got["naive"].grads if g is not None)
    _, own = _own_pass(model, micro, fixed)
    assert all(torch.equal(a, b) for a, b in zip(own, got["fixed"].grads, strict=True))


def test_the_sweep_sketches_each_micro_batch_gradient():
    seqs, model = _seqs(5), _model()
    micro = _batches(seqs, 4)
    sketch = Sketch(dim=64, seed=0)
    done, _ = _swept(model, micro, [naive, fixed], sketch)
    again = micro_batch_sketches(model, causal, micro, done.counts, 0.0, sketch)
    assert done.basis.shape == (4, 64)
    # the sweep backpropagates S_i / T, the refit S_i: the model's float32 rounding apart
    assert float((done.basis - again).norm() / again.norm()) < 1e-6


def test_variants_with_code_or_their_own_order_are_not_shared():
    variants = {name: VARIANTS.get(name) for name in ["model", "naive", "fixed-reordered", "fixed"]}
    assert groups(variants) == [["naive", "fixed"], ["model"], ["fixed-reordered"]]
    many = {f"w{i}": naive for i in range(MAX_SHARED + 1)}
    assert [len(g) for g in groups(many)] == [MAX_SHARED, 1]
    with pytest.raises(ValueError, match="weight-only"):
        sweep(_model(), _batches(_seqs(6), 2), [VARIANTS.get("model")], causal)


def _forwards(scenario) -> int:
    """Forward passes a whole run makes (a counting hook on the model)."""
    calls = [0]
    build = Setup.__init__

    def counting(self, *args, **kwargs):
        build(self, *args, **kwargs)
        self.built.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))

    Setup.__init__ = counting
    try:
        trace = run(scenario, Progress())
    finally:
        Setup.__init__ = build
    return calls[0], trace


def test_a_lockstep_run_backpropagates_each_micro_batch_once_for_naive_and_fixed():
    forwards, trace = _forwards(small_scenario(steps=2))
    # per step: the full batch, then 2 + 4 + 8 micro-batches shared by both variants
    assert forwards == 2 * (1 + 2 + 4 + 8)
    # naive diverged at every N and was fitted, without another backward pass
    assert {(f.n, f.variant) for f in trace.fits} == {(2, "naive"), (4, "naive"), (8, "naive")}
    assert all(f.residual < 1e-6 for f in trace.fits)
    assert "lockstep: naive, fixed shared one backward per micro-batch" in trace.notes


def test_a_variant_with_its_own_loss_code_still_runs_its_own_passes():
    forwards, _ = _forwards(small_scenario(steps=1, variants=["naive", "fixed", "model"]))
    # model: its own full batch too (it is judged on its own loss), and its own passes
    assert forwards == 2 + 2 * (2 + 4 + 8)


def test_sweeps_sketch_only_for_unfitted_variants_expected_to_diverge():
    from gaverify.measure.fit import GradientFitter

    fitter = GradientFitter(Setup(small_scenario(steps=1)))
    assert fitter.pending(2, [naive, fixed]) and not fitter.pending(2, [fixed])
    fitter.fits[(2, "naive")] = object()
    assert not fitter.pending(2, [naive, fixed]) and fitter.pending(4, [naive])
