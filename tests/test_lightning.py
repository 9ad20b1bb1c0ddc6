"""backend: lightning: the real PyTorch Lightning Trainer, accumulate_grad_batches 1 vs N."""

import builtins
import re

import pytest

from gaverify.errors import GaverifyError
from gaverify.runner import run_scenario
from tests.conftest import small_scenario

pytest.importorskip("lightning", reason="the lightning extra is not installed (make install does)")


def lightning_scenario(**fields):
    fields.setdefault("batch", {"size": 8, "accumulation": [2, 4]})
    return small_scenario(backend="lightning", steps=2, **fields)


def test_lightning_is_a_mean_of_means_on_padded_variable_length_data():
    result = run_scenario(lightning_scenario())
    summary = result.variants[0]
    assert (summary.variant, summary.verdict, summary.expected) == ("installed", "fail", "pass")
    assert result.exit_code == 1
    assert min(r.grad_rel_l2 for r in result.rows) > 1e-3
    assert {d.pattern for d in result.diagnoses} == {"mean-of-means"}
    assert result.notes[0].startswith("backend: Lightning 2.")


def test_lightning_matches_the_full_batch_when_every_micro_batch_holds_equal_counts():
    result = run_scenario(
        lightning_scenario(
            dtype="float64",
            data={"length": {"distribution": "fixed"}},
        )  # fmt: skip
    )  # the model's own loss is computed in float32 by transformers: judged as float32's
    assert result.exit_code == 0
    assert result.tolerance_of("installed")["loss_rel"] == 1e-5
    assert max(r.grad_rel_l2 for r in result.rows) < 1e-12
    assert max(r.param_max_abs for r in result.rows) < 1e-12


def test_your_own_lightning_module_runs_with_the_scenario_s_optimizer():
    result = run_scenario(lightning_scenario(variants=["tests.usercode.lightning_modules:OwnLoss"]))
    summary = result.variants[0]
    assert summary.verdict == "fail" and not summary.met  # your module is expected to pass
    assert any("not fitted (your own module)" in n for n in result.notes)
    assert any(n.startswith("user code ran: tests.usercode.lightning_modules:OwnLoss") for n in
               result.notes)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("not_a_module", "not_a_module(model) returned LlamaForCausalLM, not a LightningModule"),
        ("Refuses", "Refuses(model) raised ValueError: no model for me"),
    ],
)
def test_a_broken_module_is_a_one_line_error(name, message):
    scenario = lightning_scenario(variants=[f"tests.usercode.lightning_modules:{name}"])
    with pytest.raises(GaverifyError, match=re.escape(message)):
        run_scenario(scenario)


def test_without_the_extra_the_error_names_it(monkeypatch):
    real = builtins.__import__

    def no_lightning(name, *args, **kwargs):
        if name.startswith(("lightning", "pytorch_lightning")):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lightning)
    with pytest.raises(GaverifyError, match=r"pip install 'gaverify\[lightning\]'"):
        run_scenario(lightning_scenario())


def test_ctrl_c_keeps_the_finished_runs_and_leaves_sigint_as_it_was():
    import signal

    from gaverify.runner import ScenarioInterrupted
    from tests.usercode.lightning_modules import CtrlCOnSeventhBatch

    CtrlCOnSeventhBatch.calls = 0
    before = signal.getsignal(signal.SIGINT)
    scenario = lightning_scenario(variants=["tests.usercode.lightning_modules:CtrlCOnSeventhBatch"])
    with pytest.raises(ScenarioInterrupted) as stop:
        run_scenario(scenario)
    # Lightning answers Ctrl-C with exit(1) and SIGINT ignored; gaverify undoes both
    assert signal.getsignal(signal.SIGINT) is before
    assert [(r.step, r.n) for r in stop.value.result.rows] == [(1, 2), (2, 2)]
    assert stop.value.result.interrupted and stop.value.result.exit_code == 130
