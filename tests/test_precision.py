"""Precision, gradient checkpointing and torch.compile: in force on the model,
read from the Trainer's switches, and judged against the noise they make."""

import copy
import shutil

import pytest
import torch

from gaverify.backends.setup import Setup
from gaverify.errors import GaverifyError
from gaverify.model import precision as precision_module
from gaverify.model.calls import keep_eval_mode
from gaverify.runner import run_scenario
from gaverify.spec.schema import Scenario
from tests.conftest import small_scenario


def _forward_dtype(model, setup):
    batch = setup.micro_batches(setup.steps[0], 1)[0]
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.dtype


def test_precision_is_read_as_users_write_it_and_checked():
    assert Scenario(precision=32).precision == "32"
    assert Scenario(precision="bf16-mixed").tolerance.grad_rel_l2 == 2e-2  # by precision
    with pytest.raises(ValueError, match="dtype must be float32, not float64"):
        Scenario(precision="bf16-mixed", dtype="float64")
    with pytest.raises(ValueError, match="unknown precision 'bf16'"):
        Scenario(precision="bf16")


def test_the_trainer_s_own_switches_set_the_settings_and_are_noted():
    s = Scenario(
        backend="trainer",
        trainer={"args": {"bf16": True, "gradient_checkpointing": True, "torch_compile": True}},
    )
    assert (s.precision, s.model.gradient_checkpointing, s.model.compile) == (
        "bf16-mixed", True, "inductor"
    )  # fmt: skip
    assert "precision: bf16-mixed, from trainer.args" in s.notes
    with pytest.raises(ValueError, match="bf16 means precision bf16-mixed, but precision is"):
        Scenario(backend="trainer", precision="fp16-mixed", trainer={"args": {"bf16": True}})
    with pytest.raises(ValueError, match="bf16 and fp16 are both true"):
        Scenario(backend="trainer", trainer={"args": {"bf16": True, "fp16": True}})
    with pytest.raises(ValueError, match="torch_compile_backend eager: gaverify runs aot_eager"):
        Scenario(backend="trainer", trainer={"args": {"torch_compile_backend": "eager"}})


def test_autocast_is_in_force_on_the_model_and_on_its_deep_copies():
    setup = Setup(small_scenario(precision="bf16-mixed"))
    model = setup.built.model
    assert next(model.parameters()).dtype == torch.float32  # master weights
    assert _forward_dtype(model, setup) == torch.bfloat16
    assert _forward_dtype(copy.deepcopy(model), setup) == torch.bfloat16
    assert _forward_dtype(Setup(small_scenario()).built.model, setup) == torch.float32


def test_checkpointing_recomputes_each_layer_in_backward_with_dropout_kept_off(monkeypatch):
    import transformers.models.llama.modeling_llama as llama

    calls, original = [], llama.LlamaMLP.forward

    def counted(self, x):
        calls.append(1)
        return original(self, x)

    monkeypatch.setattr(llama.LlamaMLP, "forward", counted)
    for checkpointing, expected in [(False, 1), (True, 2)]:  # one layer: forward, + recompute
        setup = Setup(small_scenario(model={"gradient_checkpointing": checkpointing}))
        model = setup.built.model
        keep_eval_mode(model)
        model.train()  # what a trainer does before each step: marks stay, dropout stays off
        calls.clear()
        batch = setup.micro_batches(setup.steps[0], 1)[0]
        model(input_ids=batch["input_ids"]).logits.sum().backward()
        assert len(calls) == expected
        assert not model.model.layers[0].mlp.training


def test_compile_runs_the_forward_through_dynamo():
    from torch._dynamo.utils import counters

    counters.clear()
    result = run_scenario(
        small_scenario(model={"compile": "aot_eager"}, steps=1, batch={"accumulation": [2]})
    )
    assert result.exit_code == 0  # naive fails, fixed passes: as expected
    assert {s.variant: s.verdict for s in result.variants} == {"naive": "fail", "fixed": "pass"}
    assert counters["stats"]["unique_graphs"] > 0
    assert result.settings["compile"] == "aot_eager"


def test_inductor_without_a_c_compiler_is_an_honest_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GaverifyError, match="inductor needs a C/C.. compiler"):
        precision_module._check_compiler("inductor")


def test_bf16_mixed_reference_fixed_passes_naive_fails_at_every_n():
    result = run_scenario(small_scenario(precision="bf16-mixed", batch={"accumulation": [2, 4]}))
    assert {(g.n, g.variant): g.verdict for g in result.groups} == {
        (2, "naive"): "fail", (2, "fixed"): "pass", (4, "naive"): "fail", (4, "fixed"): "pass"
    }  # fmt: skip
    fixed = max(r.grad_rel_l2 for r in result.rows if r.variant == "fixed")
    assert 1e-4 < fixed < result.tolerance["grad_rel_l2"]  # bf16 rounding, under its tolerance
    assert result.settings == {
        "precision": "bf16-mixed", "gradient_checkpointing": False, "compile": None
    }  # fmt: skip


@pytest.mark.parametrize("auto", [False, True])
def test_trainer_bf16_installed_passes_and_pre_fix_fails(auto):
    scenario = small_scenario(
        backend="trainer",
        trainer={"args": {"bf16": True}},
        batch={"accumulation": [2, 4]},
        tolerance="auto" if auto else {},
    )
    result = run_scenario(scenario)
    assert {s.variant: s.verdict for s in result.variants} == {
        "installed": "pass", "pre-fix": "fail"
    }  # fmt: skip
    installed = max(r.grad_rel_l2 for r in result.rows if r.variant == "installed")
    assert installed > 1e-4  # bf16 noise: the float32 tolerance would have failed it
    if auto:  # calibrated under the same autocast: well above float32's rounding
        assert result.calibration.noise["grad_rel_l2"] > 1e-4


def test_lightning_verdict_under_bf16_mixed_is_its_float32_verdict():
    pytest.importorskip("lightning")

    def verdicts(**fields):
        scenario = small_scenario(backend="lightning", batch={"accumulation": [2, 4]}, **fields)
        return {(g.n, g.variant): g.verdict for g in run_scenario(scenario).groups}

    assert verdicts(precision="bf16-mixed") == verdicts() == {
        (2, "installed"): "fail", (4, "installed"): "fail"
    }  # fmt: skip


def test_lightning_refuses_fp16_on_the_cpu_rather_than_switch_silently():
    pytest.importorskip("lightning")
    with pytest.raises(GaverifyError, match="Lightning runs it on CUDA only"):
        run_scenario(small_scenario(backend="lightning", precision="fp16-mixed"))


def test_a_float32_loss_in_a_float64_run_is_judged_by_float32_s_loss_tolerance():
    # transformers computes the model's loss in float32 (logits.float()):
    # judged by float64's 1e-10 it failed on rounding alone
    result = run_scenario(
        small_scenario(dtype="float64", variants=["model", "fixed"], batch={"accumulation": [2]})
    )
    assert result.exit_code == 0
    model_rows = [r for r in result.rows if r.variant == "model"]
    assert max(r.loss_rel for r in model_rows) > 1e-10  # float32 rounding, really there
    assert result.variant_tolerance == {"model": result.tolerance_of("model")}
    assert result.tolerance_of("model")["loss_rel"] == 1e-5
    assert result.tolerance_of("fixed")["loss_rel"] == 1e-10  # gaverify's own loss: float64's
    # an explicit tolerance is kept as given, for every variant
    given = run_scenario(
        small_scenario(
            dtype="float64", variants=["model"], batch={"accumulation": [2]},
            tolerance={"loss_rel": 1e-12}, variant_expect={"model": "fail"},
        )
    )  # fmt: skip
    assert given.tolerance_of("model")["loss_rel"] == 1e-12 and given.exit_code == 0
