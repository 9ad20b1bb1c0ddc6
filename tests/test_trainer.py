"""The trainer backend: the real transformers.Trainer, judged step by step.

Besides the installed release, simulated releases (the Trainer patched the
way a regression would change it) must fail at exactly the steps they break.
"""

import pytest
import torch
from transformers import Trainer

from gaverify.backends.trainer import compat as compat
from gaverify.backends.trainer import single as trainer_backend
from gaverify.errors import GaverifyError
from gaverify.progress import Progress
from gaverify.runner import run_scenario
from tests.conftest import small_scenario

HEADS = "tests.usercode.heads"


def _trainer(**fields):
    fields.setdefault("batch", {"size": 8, "accumulation": [2, 4]})
    return small_scenario(backend="trainer", **fields)


def _rows(result, variant):
    return [r for r in result.rows if r.variant == variant]


def test_installed_trainer_equals_the_full_batch_and_pre_fix_does_not():
    result = run_scenario(_trainer(steps=3))
    installed, pre_fix = _rows(result, "installed"), _rows(result, "pre-fix")
    assert len(installed) == len(pre_fix) == 3 * 2
    assert all(r.verdict == "pass" for r in installed)
    assert all(r.verdict == "fail" for r in pre_fix)  # every step: lengths differ
    assert max(r.grad_rel_l2 for r in installed) < 1e-5
    assert min(r.grad_rel_l2 for r in pre_fix) > 1e-3
    assert result.exit_code == 0
    assert any("transformers" in note and "Trainer" in note for note in result.notes)


def test_the_trainer_reproduces_gaverify_s_own_accumulation_maths():
    # The Trainer as installed is num_items_in_batch (fixed); forced pre-fix is
    # the mean of means (naive). Same data, same order, same optimizer: the
    # two backends must agree on every number they both measure.
    trainer = run_scenario(_trainer(steps=3))
    reference = run_scenario(
        small_scenario(steps=3, mode="trajectory", batch={"accumulation": [2, 4]})
    )
    pairs = {"installed": "fixed", "pre-fix": "naive"}
    for row in trainer.rows:
        twin = next(
            r
            for r in reference.rows
            if (r.step, r.n, r.variant) == (row.step, row.n, pairs[row.variant])
        )
        assert row.items_micro == twin.items_micro
        assert row.loss_full == pytest.approx(twin.loss_full, rel=1e-6)
        assert row.loss_ga == pytest.approx(twin.loss_ga, rel=1e-6)
        assert row.grad_norm_ga == pytest.approx(twin.grad_norm_ga, rel=1e-4)
        if row.variant == "pre-fix":
            assert row.grad_rel_l2 == pytest.approx(twin.grad_rel_l2, rel=1e-3)


def test_a_release_logging_a_loss_scaled_by_n_fails_at_the_steps_it_does(monkeypatch):
    original = Trainer.training_step

    def scaled_from_step_3(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        late = self.state.global_step >= 2  # optimizer steps 3 and later
        return loss * self.args.gradient_accumulation_steps if late else loss

    monkeypatch.setattr(Trainer, "training_step", scaled_from_step_3)
    result = run_scenario(_trainer(steps=4, variants=["installed"]))
    failed = sorted({r.step for r in result.rows if r.verdict == "fail"})
    assert failed == [3, 4]
    for row in result.rows:
        if row.step >= 3:
            assert row.exceeded == ["loss_rel"]  # the gradient itself was right
            assert row.loss_ga / row.loss_full == pytest.approx(row.n, rel=1e-5)
    assert result.exit_code == 1
    for d in result.diagnoses:
        assert (d.pattern, d.step) == ("logged-loss", 3)
        assert f"logged loss is x{d.n} (N)" in d.detail


def test_a_release_applying_mean_of_means_gradients_fails(monkeypatch):
    original = Trainer.get_batch_samples

    def no_item_count(self, *args, **kwargs):
        batches, _ = original(self, *args, **kwargs)
        return batches, None  # the Trainer then averages per micro-batch

    monkeypatch.setattr(Trainer, "get_batch_samples", no_item_count)
    result = run_scenario(_trainer(steps=2, variants=["installed"]))
    assert all(r.verdict == "fail" and "grad_rel_l2" in r.exceeded for r in result.rows)
    assert result.variants[0].met is False
    assert [(d.n, d.pattern, d.step) for d in result.diagnoses] == [
        (2, "mean-of-means", 1),
        (4, "mean-of-means", 1),
    ]


def test_user_compute_loss_func_is_judged_by_its_maths():
    good, bad = f"{HEADS}:token_sum_loss", f"{HEADS}:per_batch_mean_loss"
    result = run_scenario(_trainer(steps=2, variants=[good, bad]))
    assert all(r.verdict == "pass" for r in _rows(result, good))
    for row in _rows(result, bad):  # the Trainer does not divide a user's loss by N
        assert row.verdict == "fail"
        assert row.loss_ga / row.loss_full == pytest.approx(row.n, rel=0.05)
    assert any(good in note and "heads.py" in note for note in result.notes)


def test_a_user_loss_defined_otherwise_but_invariant_passes_against_itself():
    scaled, weighted = f"{HEADS}:scaled_sum_loss", f"{HEADS}:class_weighted_loss"
    result = run_scenario(_trainer(steps=2, variants=[scaled, weighted]))
    assert result.exit_code == 0
    assert {v.variant: v.verdict for v in result.variants} == {scaled: "pass", weighted: "pass"}


def test_user_compute_loss_func_that_raises_is_a_usage_error():
    with pytest.raises(GaverifyError, match="raising_loss raised KeyError"):
        run_scenario(_trainer(steps=1, variants=[f"{HEADS}:raising_loss"]))


def test_compute_loss_func_on_a_release_without_it_is_refused(monkeypatch):
    monkeypatch.setattr(compat, "takes_compute_loss_func", lambda: False)
    with pytest.raises(GaverifyError, match=r"compute_loss_func needs transformers >= 4\.46"):
        run_scenario(_trainer(steps=1, variants=[f"{HEADS}:token_sum_loss"]))


def test_unknown_training_argument_names_the_installed_release():
    scenario = _trainer(steps=1, trainer={"args": {"no_such_argument": 1}})
    with pytest.raises(
        GaverifyError,
        match=r"^trainer.args.no_such_argument: TrainingArguments of transformers \d+\.\d+",
    ):
        run_scenario(scenario)


def test_clipping_from_trainer_args_is_applied_and_logged_before_clipping(monkeypatch):
    applied = []
    keep = trainer_backend.KeepReference.gradient

    def spy(self, model):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        applied.append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))))
        keep(self, model)

    monkeypatch.setattr(trainer_backend.KeepReference, "gradient", spy)
    result = run_scenario(
        _trainer(steps=2, variants=["installed"], trainer={"args": {"max_grad_norm": 1e-3}})
    )
    for row in result.rows:
        assert row.grad_norm_full > 1e-2  # the Trainer logs the norm before clipping
        assert row.verdict == "pass"  # both runs clip the same gradient alike
    assert applied and max(applied) <= 1e-3 * (1 + 1e-5)  # the optimizer got clipped gradients


def test_progress_counts_every_optimizer_step_of_every_run_and_nothing_is_printed(capsys):
    class Count(Progress):
        def start(self, total):
            self.total, self.done = total, 0

        def advance(self, label=""):
            self.done += 1

    count = Count()
    run_scenario(_trainer(steps=2), count)
    assert count.total == count.done == 2 * (1 + 2 * 2)  # one shared reference, 2 N x 2 variants
    assert capsys.readouterr().out == ""


def test_runs_are_repeatable_to_the_last_bit():
    scenario = _trainer(steps=2)
    first, second = run_scenario(scenario), run_scenario(scenario)
    assert [r.model_dump() for r in first.rows] == [r.model_dump() for r in second.rows]


def test_the_shared_reference_is_the_installed_trainer_whatever_the_variant_order(monkeypatch):
    forced = []
    original = compat.force_loss_kwargs

    def spy(trainer, value):
        forced.append(trainer.args.gradient_accumulation_steps)
        return original(trainer, value)

    monkeypatch.setattr(compat, "force_loss_kwargs", spy)
    result = run_scenario(_trainer(steps=1, variants=["installed", "pre-fix"]))
    assert forced == [2, 4]  # pre-fix's own runs; the N=1 reference runs as installed
    assert all(r.verdict == "pass" for r in _rows(result, "installed"))


def test_ctrl_c_keeps_the_rows_of_every_finished_run(monkeypatch):
    from gaverify.runner import ScenarioInterrupted, run_scenario

    calls = []
    real = trainer_backend.train

    def stop_on_the_third_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the reference, N=2 installed, then Ctrl-C
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_backend, "train", stop_on_the_third_run)
    scenario = small_scenario(
        backend="trainer", steps=2, batch={"accumulation": [2, 4]}, variants=["installed"]
    )
    with pytest.raises(ScenarioInterrupted) as stop:
        run_scenario(scenario)
    result = stop.value.result
    assert [(r.step, r.n, r.variant) for r in result.rows] == [
        (1, 2, "installed"),
        (2, 2, "installed"),
    ]
    assert result.interrupted and result.exit_code == 130
