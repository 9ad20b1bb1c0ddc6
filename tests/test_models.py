import pytest
import torch

from gaverify.errors import GaverifyError, UnknownNameError
from gaverify.models import build_model, resolve_device
from gaverify.scenario import ModelSpec
from gaverify.tasks import TASKS
from tests.conftest import SMALL_MODEL

causal = TASKS.get("causal-lm")


def test_seeded_init_is_repeatable_and_dropout_is_off():
    spec = ModelSpec(config=SMALL_MODEL)
    a = build_model(spec, causal, "float32", "cpu", seed=1)
    b = build_model(spec, causal, "float32", "cpu", seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not a.training


def test_dropout_can_be_kept_on():
    model = build_model(ModelSpec(config=SMALL_MODEL, dropout=True), causal, "float32", "cpu", 0)
    assert model.training


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_dtype_is_applied(dtype):
    model = build_model(ModelSpec(config=SMALL_MODEL), causal, dtype, "cpu", 0)
    assert next(model.parameters()).dtype == getattr(torch, dtype)


def test_other_causal_lm_types_build_from_the_same_config_keys():
    model = build_model(ModelSpec(type="gpt2", config=SMALL_MODEL), causal, "float32", "cpu", 0)
    assert type(model).__name__ == "GPT2LMHeadModel"


def test_unknown_model_type_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'llama'"):
        build_model(ModelSpec(type="lamma"), causal, "float32", "cpu", 0)


def test_model_type_without_a_causal_lm_head():
    with pytest.raises(GaverifyError, match="'vit' has no causal-lm model"):
        build_model(ModelSpec(type="vit", config={}), causal, "float32", "cpu", 0)


def test_cuda_requested_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GaverifyError, match="'cuda' was requested but torch .* sees no GPU"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def test_config_sizes_that_do_not_fit_name_the_root_cause():
    spec = ModelSpec(config={**SMALL_MODEL, "num_attention_heads": 5})
    with pytest.raises(GaverifyError) as info:
        build_model(spec, causal, "float32", "cpu", 0)
    assert str(info.value).startswith("model.config: invalid for 'llama': The hidden size (32)")
