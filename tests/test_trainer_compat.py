"""Release differences of the Trainer, handled without skipping a check."""

import math

import pytest

from gaverify.backends.trainer import compat
from gaverify.backends.trainer.classes import resolve
from gaverify.errors import GaverifyError
from tests.conftest import small_scenario


def test_a_trusted_log_is_compared_as_logged():
    assert compat.logged_loss(2.5, [1.25, 1.25]) == (2.5, None)


def test_a_log_rounded_to_4_decimals_is_replaced_by_the_exact_sum():
    value, note = compat.logged_loss(5.5454, [2.77271, 2.77272])
    assert value == pytest.approx(5.54543)
    assert "rounds its logged loss" in note


def test_a_non_finite_step_hidden_by_the_log_filter_stays_visible():
    value, note = compat.logged_loss(5.0, [2.0, math.nan])
    assert math.isnan(value)
    assert "logging_nan_inf_filter" in note


def test_a_missing_log_entry_uses_the_training_steps():
    assert compat.logged_loss(None, [1.0, 2.0])[0] == 3.0


def test_a_log_gaverify_cannot_explain_is_an_error_not_a_guess():
    with pytest.raises(GaverifyError, match="please report it"):
        compat.logged_loss(7.0, [1.0, 2.0])


def test_forcing_pre_fix_on_a_release_without_loss_kwargs_says_so():
    class OldTrainer:
        pass

    assert "predates loss kwargs" in compat.force_loss_kwargs(OldTrainer(), False)


def test_forcing_pre_fix_sets_the_trainer_attribute():
    class NewTrainer:
        model_accepts_loss_kwargs = True

    trainer = NewTrainer()
    assert "forced to False" in compat.force_loss_kwargs(trainer, False)
    assert trainer.model_accepts_loss_kwargs is False


def test_training_arguments_pair_the_batch_and_keep_user_settings(tmp_path):
    scenario = small_scenario(backend="trainer", trainer={"args": {"max_grad_norm": 1.0}})
    args = compat.training_arguments(scenario, resolve(scenario, []), 4, str(tmp_path), cpu=True)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 4)
    assert args.max_steps == scenario.steps and args.logging_steps == 1
    assert args.max_grad_norm == 1.0
    plain = small_scenario(backend="trainer")
    default = compat.training_arguments(plain, resolve(plain, []), 1, str(tmp_path), True)
    assert default.max_grad_norm == 0.0  # no clipping unless asked
