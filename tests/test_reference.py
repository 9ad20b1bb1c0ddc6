"""The maths of the reference loop, checked against the full batch exactly."""

import random

import pytest
import torch

from gaverify.accumulation.variants import VARIANTS
from gaverify.backends.reference import accumulate, run
from gaverify.data.collate import collate
from gaverify.model.build import build_model
from gaverify.progress import Progress
from gaverify.spec.schema import ModelSpec
from gaverify.tasks.heads import TASKS
from tests.conftest import SMALL_MODEL, small_scenario

causal = TASKS.get("causal-lm")
fixed_weights, naive_weights = VARIANTS.get("fixed"), VARIANTS.get("naive")


def _model(seed=0):
    spec = ModelSpec(config=SMALL_MODEL)
    return build_model(spec, causal, "float64", "cpu", seed, None).model


def _batches(seqs, n=1, padding="right"):
    """The full batch (n=1) or its n micro-batches, each collated on its own."""
    size = len(seqs) // n
    samples = [{"input_ids": s, "labels": list(s)} for s in seqs]
    return [
        collate(samples[i * size : (i + 1) * size], causal, 0, padding, False, "cpu")
        for i in range(n)
    ]


def _grads(model, micro, variant):
    model.zero_grad(set_to_none=True)
    loss, counts = accumulate(model, micro, variant, causal)
    return loss, counts, torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("trial", range(6))
def test_fixed_equals_full_batch_in_float64(trial):
    rng = random.Random(trial)
    n = rng.choice([2, 4, 8])
    seqs = [[rng.randrange(97) for _ in range(rng.randint(2, 30))] for _ in range(8)]
    model = _model(trial)
    padding = rng.choice(["right", "left"])
    full_loss, _, full = _grads(model, _batches(seqs, 1, padding), fixed_weights)
    loss, counts, fixed = _grads(model, _batches(seqs, n, padding), fixed_weights)
    assert sum(counts) == sum(len(s) - 1 for s in seqs)
    assert abs(loss - full_loss) / full_loss < 1e-12
    assert ((fixed - full).norm() / full.norm()).item() < 1e-12


def test_naive_differs_when_counts_differ():
    seqs = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15], [16] * 7]
    model = _model()
    full_loss, _, full = _grads(model, _batches(seqs), fixed_weights)
    loss, counts, naive = _grads(model, _batches(seqs, 2), naive_weights)
    assert counts == [10, 8]
    assert ((naive - full).norm() / full.norm()).item() > 1e-3
    assert abs(loss - full_loss) > 1e-6


def test_naive_equals_full_when_counts_are_equal():
    rng = random.Random(3)
    seqs = [[rng.randrange(97) for _ in range(9)] for _ in range(8)]
    model = _model()
    full_loss, _, full = _grads(model, _batches(seqs), fixed_weights)
    loss, counts, naive = _grads(model, _batches(seqs, 4), naive_weights)
    assert len(set(counts)) == 1
    assert abs(loss - full_loss) / full_loss < 1e-12
    assert ((naive - full).norm() / full.norm()).item() < 1e-12


def test_lockstep_run_measures_every_step_n_and_variant():
    scenario = small_scenario(dtype="float64")
    trace = run(scenario, Progress())
    keys = [(m.step, m.n, m.variant) for m in trace.measurements]
    assert keys == [(s, n, v) for s in (1, 2) for n in (2, 4, 8) for v in ("naive", "fixed")]
    for m in trace.measurements:
        assert m.items_full == sum(m.items_micro) and len(m.items_micro) == m.n
        assert m.param_max_abs is None
        if m.variant == "fixed":
            assert m.grad_rel_l2 < 1e-12 and m.loss_rel < 1e-12
        else:
            assert m.grad_rel_l2 > 1e-3
    assert trace.device == "cpu" and trace.parameters > 0
    assert any("dropout: off" in note for note in trace.notes)


def test_lockstep_reference_trains_between_steps():
    trace = run(small_scenario(dtype="float64", steps=3, data={"samples": 8}), Progress())
    # one batch of 8 samples reused every step: the loss moves only if the model trains
    losses = [m.loss_full for m in trace.measurements if m.n == 2 and m.variant == "fixed"]
    assert losses[0] > losses[1] > losses[2]


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_trajectory_tracks_parameters(optimizer):
    scenario = small_scenario(
        dtype="float64", mode="trajectory", optimizer={"name": optimizer, "lr": 0.01}
    )
    trace = run(scenario, Progress())
    fixed = [m for m in trace.measurements if m.variant == "fixed"]
    naive = [m for m in trace.measurements if m.variant == "naive"]
    assert all(m.param_max_abs < 1e-12 for m in fixed)
    assert all(m.param_max_abs > 1e-6 for m in naive)
    # the second step starts from diverged parameters, so its losses differ too
    assert all(m.loss_rel > 0 for m in naive if m.step == 2)


def test_runs_repeat_exactly():
    a = run(small_scenario(steps=1), Progress()).measurements
    b = run(small_scenario(steps=1), Progress()).measurements
    assert a == b


def test_progress_is_reported_for_every_pass():
    from gaverify.progress import Progress

    class Count(Progress):
        def start(self, total):
            self.total, self.done = total, 0

        def advance(self, label=""):
            self.done += 1

    sink = Count()
    run(small_scenario(steps=2), sink)
    assert sink.total == sink.done == 2 * (1 + 3 * 2)


def test_question_answering_fixed_is_exact_while_naive_and_the_trainer_route_fail():
    scenario = small_scenario(
        dtype="float64", model={"task": "question-answering"},
        data={"samples": 32, "length": {"min": 6}, "pad_to_max": True},
        batch={"size": 16, "accumulation": [2, 4]},
        variants=["naive", "fixed", "model"], variant_expect={"model": "fail"},
    )  # fmt: skip
    result = run(scenario, Progress())
    by_variant = {}
    for m in result.measurements:
        by_variant.setdefault(m.variant, []).append(m.grad_rel_l2)
    assert max(by_variant["fixed"]) < 1e-12
    assert min(by_variant["naive"]) > 1e-4  # answerable counts differ between micro-batches
    # the Trainer gives a QA head no count: its own mean per micro-batch / N is
    # naive's (agreeing to 1e-6 rather than 1e-12: naive comes from the shared
    # sweep, model from a pass of its own)
    assert by_variant["model"] == pytest.approx(by_variant["naive"], rel=1e-6)


def test_question_answering_with_dynamic_padding_is_not_batch_invariant():
    # A QA head's softmax runs over every position of the row, padding
    # included: padded to its own longest sample, a micro-batch changes each
    # sample's loss, so even fixed differs (and the run's notes say why).
    fields = dict(
        dtype="float64", model={"task": "question-answering"}, variants=["fixed"],
        data={"samples": 32, "length": {"min": 6}}, batch={"size": 16, "accumulation": [2]},
    )  # fmt: skip
    from gaverify.runner import run_scenario

    result = run_scenario(small_scenario(**fields))
    assert min(r.grad_rel_l2 for r in result.rows) > 1e-6
    assert any("data.pad_to_max: true" in n for n in result.notes)


def _by_key(trace):
    return {(m.step, m.n, m.variant): m for m in trace.measurements}


def test_in_turn_plan_gives_the_shared_plan_s_numbers():
    shared = _by_key(run(small_scenario(), Progress()))
    trace = run(small_scenario(memory_plan="in-turn"), Progress())
    assert any("lockstep plan in-turn" in note for note in trace.notes)
    for key, row in _by_key(trace).items():
        if key[2] == "fixed":  # in .grad in both plans: the same operations
            assert row == shared[key]
        else:  # its own .grad instead of a buffer: the same sum, rounded once differently
            assert row.grad_rel_l2 == pytest.approx(shared[key].grad_rel_l2, rel=1e-5)
            assert row.loss_ga == shared[key].loss_ga


def test_sketched_plan_estimates_within_its_error_and_still_names_the_pattern():
    from gaverify.measure.estimate import ERROR

    scenario = small_scenario(memory_plan="sketched")
    shared = _by_key(run(small_scenario(), Progress()))
    trace = run(scenario, Progress())
    assert any("lockstep plan sketched" in note for note in trace.notes)
    assert any("4099-bucket sketches" in note for note in trace.notes)
    for key, row in _by_key(trace).items():
        exact = shared[key]
        assert row.loss_ga == exact.loss_ga and row.grad_norm_full == exact.grad_norm_full
        if key[2] == "naive":  # far from rounding: the sketch's error alone
            assert row.grad_rel_l2 == pytest.approx(exact.grad_rel_l2, rel=4 * ERROR)
            assert row.grad_norm_ga == pytest.approx(exact.grad_norm_ga, rel=1e-2)
        else:  # rounding level, summed in float64 here: same order, far below tolerance
            assert row.grad_rel_l2 < 10 * exact.grad_rel_l2 < 1e-5
    fits = {fit.n: fit for fit in trace.fits if fit.variant == "naive"}
    assert sorted(fits) == [2, 4, 8]
    for fit in fits.values():
        expected = [sum(fit.counts) / (fit.n * c) for c in fit.counts]  # 1/(N T_i) in units of 1/T
        assert fit.weights == pytest.approx(expected, rel=1e-6) and fit.residual < 1e-9


def test_auto_plan_falls_back_when_shared_buffers_do_not_fit(monkeypatch):
    from gaverify.backends import memory

    need = {}
    real = memory.estimate

    def measured(scenario, model, processes=1):
        guess = real(scenario, model, processes)
        need.setdefault(scenario.memory_plan, guess.needed)
        return guess

    monkeypatch.setattr(memory, "estimate", measured)
    free = lambda device: (need.get("shared", 1 << 41) - 1) / memory.HEADROOM  # noqa: E731
    monkeypatch.setattr(memory, "available", free)
    run(small_scenario(steps=1), Progress())  # learns what shared buffers need (they fit)
    trace = run(small_scenario(steps=1), Progress())
    note = next(n for n in trace.notes if "lockstep plan" in n)
    assert "in-turn" in note and "memory_plan auto: shared needs about" in note


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "trajectory"}, "memory_plan: sketched is a lockstep plan; mode is trajectory"),
        ({"backend": "ddp", "batch": {"accumulation": [2]}}, "backend .ddp. has no lockstep plans"),
    ],
)
def test_a_forced_plan_needs_a_backend_and_mode_that_have_it(fields, message):
    with pytest.raises(ValueError, match=message):
        small_scenario(memory_plan="sketched", **fields)


def test_sketched_plan_says_when_an_estimate_is_too_close_to_its_tolerance_to_judge():
    exact = _by_key(run(small_scenario(steps=1, batch={"accumulation": [4]}), Progress()))
    edge = exact[(1, 4, "naive")].grad_rel_l2  # the tolerance right at the exact value
    far = small_scenario(steps=1, batch={"accumulation": [4]}, memory_plan="sketched")
    near = small_scenario(steps=1, batch={"accumulation": [4]}, memory_plan="sketched",
                          tolerance={"grad_rel_l2": edge})  # fmt: skip
    assert not any("uncertain" in note for note in run(far, Progress()).notes)
    notes = [note for note in run(near, Progress()).notes if "uncertain" in note]
    assert len(notes) == 1 and notes[0].startswith("naive: an estimated rel-L2")
