"""Tiny configs for any transformers model type, shrunk from its defaults.

`model.tiny: true` (and every row of `gaverify census`) builds a model type
from its own default config with the sizes that make it big taken down:
width, depth, attention and key/value heads, feed-forward width, experts,
low-rank projections and the vocabulary. Only keys the default config has
are touched, and only downwards, so what makes the architecture itself
(activations, norms, tied embeddings, layer kinds) stays as released.
Sub-configs (`text_config`, `encoder_config`, ...) are shrunk the same way.
A config this cannot shrink is reported by the builder as it fails, never
papered over: the census records it as "cannot build".
"""

from __future__ import annotations

from typing import Any

WIDTH = 32  # hidden size: 4 heads of 8
LAYERS = 2
HEADS = 4
HEAD_DIM = WIDTH // HEADS
VOCAB = 512

# Each size, then the config keys different model types give it.
_TABLE = """
WIDTH     hidden_size d_model n_embd embed_dim embedding_size dim word_embed_proj_dim
          hidden_dim kv_lora_rank q_lora_rank emb_dim d_latents entity_emb_size
          input_embedding_size output_embedding_size pronunciation_embed_dim shape_embed_dim
LAYERS    num_hidden_layers num_layers n_layer n_layers encoder_layers decoder_layers
          num_decoder_layers num_encoder_layers num_self_attends_per_block
HEADS     num_attention_heads n_head n_heads num_heads encoder_attention_heads
          decoder_attention_heads num_key_value_heads num_kv_heads n_kv_heads
          multi_query_group_num mamba_n_heads linear_num_key_heads linear_num_value_heads
          linear_num_heads
FFN       intermediate_size ffn_dim d_ff n_inner encoder_ffn_dim decoder_ffn_dim
          ffn_hidden_size moe_intermediate_size shared_expert_intermediate_size d_inner
          expert_ffn_hidden_size
HEAD_DIM  head_dim d_kv attention_head_dim kv_channels rotary_dim qk_rope_head_dim
          qk_nope_head_dim v_head_dim linear_key_head_dim linear_value_head_dim d_head
          linear_head_dim swa_head_dim
STATE     state_size ssm_state_size mamba_d_state d_state time_step_rank
EXPERTS   num_experts num_local_experts n_routed_experts moe_num_experts zero_expert_num
TOP_K     num_experts_per_tok num_experts_per_token moe_k moe_top_k moe_topk top_k
ONE       n_group topk_group n_shared_experts expand
VOCAB     vocab_size unpadded_vocab_size entity_vocab_size pronunciation_vocab_size
          shape_vocab_size
"""
_VALUES = {"WIDTH": WIDTH, "LAYERS": LAYERS, "HEADS": HEADS, "FFN": 2 * WIDTH,
           "HEAD_DIM": HEAD_DIM, "STATE": 16, "EXPERTS": 4, "TOP_K": 2, "ONE": 1,
           "VOCAB": VOCAB}  # fmt: skip


def _sizes(table: str) -> dict[str, int]:
    sizes, size = {}, 0
    for line in table.strip().splitlines():
        words = line.split()
        if not line.startswith(" "):
            size = _VALUES[words.pop(0)]
        sizes.update(dict.fromkeys(words, size))
    return sizes


SIZES: dict[str, int] = _sizes(_TABLE)
DEPTHS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")


def tiny_config(model_type: str) -> dict[str, Any]:
    """Config keyword arguments that make `model_type` tiny (for
    AutoConfig.for_model), from the type's default config in the installed
    transformers. Raises what the config class raises when it has no default."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return shrink(CONFIG_MAPPING[model_type]())


def shrink(config: Any) -> dict[str, Any]:
    """The overrides that shrink one config (and its sub-configs)."""
    values = config.to_dict()
    out: dict[str, Any] = {}
    for key, size in SIZES.items():
        current = values.get(key)
        if _is_int(current) and current > size:
            out[key] = size
    if values.get("vocab_size", 0) is None:  # e.g. ESM leaves it to the tokenizer
        out["vocab_size"] = VOCAB
    if values.get("is_encoder_decoder") and values.get("decoder_start_token_id") is None:
        # T5's convention (its generation config's): the decoder starts from padding
        out["decoder_start_token_id"] = values.get("pad_token_id") or 0
    out.update(_layer_kinds(values, out))
    out.update(_token_ids(values, out.get("vocab_size", values.get("vocab_size"))))
    for key in values:
        sub = getattr(config, key, None)
        if hasattr(sub, "to_dict") and hasattr(sub, "model_type"):  # text_config, encoder, ...
            out[key] = {**sub.to_dict(), **shrink(sub)}
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _layer_kinds(values: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """Per-layer lists (layer_types, mlp_layer_types, ...) cut to the layers
    kept: the first layer of each distinct kind, so a hybrid model keeps its
    attention, recurrent, dense and sparse layers; the depth follows."""
    depth_keys = [k for k in DEPTHS if _is_int(values.get(k)) and values[k] > LAYERS]
    if not depth_keys:
        return {}
    depth = values[depth_keys[0]]
    lists = {k: v for k, v in values.items() if isinstance(v, list) and len(v) == depth}
    if not lists:
        return {}
    kinds = [tuple(str(v[i]) for v in lists.values()) for i in range(depth)]
    kept = sorted({kind: i for i, kind in reversed(list(enumerate(kinds)))}.values())
    kept = sorted(set(kept) | set(range(depth))) if len(kept) < LAYERS else kept
    kept = kept[: max(LAYERS, len(set(kinds)))]
    cut = {key: [v[i] for i in kept] for key, v in lists.items()}
    return {**cut, **{key: len(kept) for key in depth_keys}}


def _token_ids(values: dict[str, Any], vocab: Any) -> dict[str, Any]:
    """Special token ids that a smaller vocabulary no longer holds, moved
    inside it (from the top, below the id gaverify reserves for masks)."""
    if not _is_int(vocab):
        return {}
    out: dict[str, Any] = {}
    spare = vocab - 2
    for key, current in values.items():
        if key.endswith("token_id") and _is_int(current) and current >= vocab:
            out[key] = spare
            spare -= 1
    return out
