"""Tiny configs shrunk from a model type's own defaults (model.tiny, the census)."""

import pytest

from gaverify.model.build import build_model
from gaverify.model.tiny import VOCAB, WIDTH, tiny_config
from gaverify.spec.schema import Scenario
from gaverify.tasks.heads import TASKS


def test_llama_is_shrunk_in_every_size_and_only_downwards():
    config = tiny_config("llama")
    assert config["hidden_size"] == WIDTH == 32
    assert config["num_hidden_layers"] == 2
    assert config["num_attention_heads"] == config["num_key_value_heads"] == 4
    assert config["intermediate_size"] == 64
    assert config["vocab_size"] == VOCAB
    assert "rms_norm_eps" not in config  # what makes the architecture stays as released


def test_a_hybrid_keeps_one_layer_of_each_kind():
    config = tiny_config("qwen3_next")  # linear attention layers with a full one every 4th
    assert config["layer_types"] == ["linear_attention", "full_attention"]
    assert config["num_hidden_layers"] == 2


def test_per_layer_lists_are_cut_together():
    config = tiny_config("kimi_linear")  # layer_types and mlp_layer_types, 27 layers each
    kinds = list(zip(config["layer_types"], config["mlp_layer_types"], strict=True))
    assert len(kinds) == config["num_hidden_layers"] == len(set(kinds)) == 3


def test_sub_configs_are_shrunk_and_token_ids_moved_inside_the_vocabulary():
    text = tiny_config("gemma3")["text_config"]
    assert text["hidden_size"] == WIDTH and text["vocab_size"] == VOCAB
    gpt2 = tiny_config("gpt2")  # eos/bos 50256 would lie outside 512 tokens
    assert gpt2["eos_token_id"] < VOCAB and gpt2["bos_token_id"] < VOCAB


def test_a_tiny_model_builds_small():
    tiny_bert = {"type": "bert", "task": "masked-lm", "tiny": True}
    scenario = Scenario.model_validate({"model": tiny_bert})
    assert scenario.model.config == {}  # the default tiny llama config is not applied
    built = build_model(scenario.model, TASKS.get("masked-lm"), "float32", "cpu", 0, None)
    assert type(built.model).__name__ == "BertForMaskedLM"
    assert built.notes == ["model: bert, random init from its default config shrunk (model.tiny)"]
    assert sum(p.numel() for p in built.model.parameters()) < 100_000


def test_tiny_is_for_config_models_only():
    with pytest.raises(ValueError, match="model.tiny is only used with source: config"):
        Scenario.model_validate({"model": {"source": "pretrained", "path": "x", "tiny": True}})
