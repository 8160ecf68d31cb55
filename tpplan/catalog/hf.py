"""Hugging Face ``config.json`` (plain JSON, offline, no transformers) -> :class:`ModelSpec`.

Alias tables follow vLLM (ModelConfig.get_total_num_kv_heads, _verify_with_expert_parallelism, max_model_len)
and the transformers configuration classes of each family (ecosystem-conventions section 2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tpplan.catalog.spec import ModelSpec
from tpplan.errors import TpplanError

FAMILIES = ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek_v2", "deepseek_v3",
            "gemma2", "gemma3_text", "phi3", "gpt_oss", "llama4_text", "nemotron")
# ``architectures`` names the modeling code the engines load (vLLM's model registry keys on it), so it wins
# over ``model_type``: Kimi-K2 ships model_type kimi_k2 with DeepseekV3ForCausalLM.
ARCHITECTURES = {
    "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2", "Qwen2MoeForCausalLM": "qwen2_moe", "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe", "DeepseekV2ForCausalLM": "deepseek_v2",
    "DeepseekV3ForCausalLM": "deepseek_v3", "Gemma2ForCausalLM": "gemma2", "Gemma3ForCausalLM": "gemma3_text",
    "Gemma3ForConditionalGeneration": "gemma3_text", "Phi3ForCausalLM": "phi3", "GptOssForCausalLM": "gpt_oss",
    "Llama4ForConditionalGeneration": "llama4_text", "Llama4ForCausalLM": "llama4_text",
    "NemotronForCausalLM": "nemotron",
}
MODEL_TYPES = {"gemma3": "gemma3_text", "llama4": "llama4_text", "kimi_k2": "deepseek_v3"}
# config.json layer_types spellings (transformers 4.5x) -> tpplan's per-layer attention kinds
LAYER_TYPES = {"full_attention": "full", "sliding_attention": "sliding", "chunked_attention": "chunked"}

KV_HEADS = ("n_head_kv", "num_kv_heads", "num_key_value_heads", "multi_query_group_num")
EXPERTS = ("moe_num_experts", "num_experts", "n_routed_experts", "num_local_experts", "num_routed_experts")
MAX_LEN = ("max_position_embeddings", "n_positions", "max_seq_len", "max_sequence_length", "max_seq_length",
           "seq_len")
DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def _first(cfg: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return None


def spec_from_hf(config: Mapping[str, Any], name: str = "imported", file: str = "config.json") -> ModelSpec:
    """Build a ModelSpec from a config.json dict; unknown ``model_type`` is a clear error."""
    text = config.get("text_config")
    cfg: Mapping[str, Any] = text if isinstance(text, Mapping) and text else config  # multimodal wrappers
    archs = config.get("architectures")
    arch = str(archs[0]) if isinstance(archs, list) and archs else ""
    raw_mt = str(cfg.get("model_type") or config.get("model_type") or "")
    mt = ARCHITECTURES.get(arch) or MODEL_TYPES.get(raw_mt, raw_mt)
    if mt not in FAMILIES:
        raise TpplanError(f"unsupported model_type {raw_mt!r} (architecture {arch or 'not given'}); supported "
                          f"architectures: {', '.join(ARCHITECTURES)}.", file=file,
                          hint="Write a model YAML by hand (see models/ for examples) for other families.")

    def count(key: str, value: Any) -> int:
        """A positive whole number from the config, or an input error naming the field."""
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (
                float("inf"), float("-inf")) or int(value) != value or value < 1 or value > 2**40:
            raise TpplanError(f"config.json field {key!r} must be a positive integer; got {value!r}", file=file)
        return int(value)

    def need(key: str) -> int:
        if cfg.get(key) is None:
            raise TpplanError(f"config.json has no {key!r} (required for model_type {mt})", file=file)
        return count(key, cfg[key])

    def opt(keys: tuple[str, ...], default: int) -> int:
        for k in keys:
            if cfg.get(k) is not None:
                return count(k, cfg[k])
        return default

    h = need("hidden_size")
    heads = need("num_attention_heads")
    layers = need("num_hidden_layers")
    kv = opt(KV_HEADS, heads)
    head_dim = opt(("head_dim",), h // heads)  # explicit head_dim wins (Qwen3, Mistral-NeMo)
    if head_dim < 1:
        raise TpplanError(f"config.json: hidden_size ({h}) is smaller than num_attention_heads ({heads})", file=file)
    dtype = DTYPES.get(str(cfg.get("torch_dtype") or cfg.get("dtype") or config.get("torch_dtype") or "bfloat16"),
                       "bf16")
    if dtype == "fp32" and mt.startswith("gemma"):
        dtype = "bf16"  # vLLM dtype "auto": Gemma 2/3 float32 checkpoints run in bfloat16 (vllm/config)
    quant = (cfg.get("quantization_config") or config.get("quantization_config") or {})
    qmethod = str(quant.get("quant_method", "")).lower() if isinstance(quant, Mapping) else ""
    weight_dtype = {"fp8": "fp8", "awq": "int4", "gptq": "int4", "compressed-tensors": None}.get(qmethod)
    expert_dtype = "mxfp4" if qmethod == "mxfp4" else None  # GPT-OSS: MXFP4 experts, the rest bf16
    max_len = opt(MAX_LEN, 4096)
    attention: dict[str, Any] = {"num_heads": heads, "num_kv_heads": kv, "head_dim": head_dim}
    if mt.startswith("deepseek"):
        attention.update(kind="mla", num_kv_heads=heads, head_dim=need("v_head_dim"),
                         q_lora_rank=opt(("q_lora_rank",), 0) or None, kv_lora_rank=need("kv_lora_rank"),
                         qk_rope_head_dim=need("qk_rope_head_dim"),
                         qk_nope_head_dim=need("qk_nope_head_dim"), v_head_dim=need("v_head_dim"))
    else:
        attention["kind"] = "mha" if kv == heads else ("mqa" if kv == 1 else "gqa")
        if mt.startswith("qwen2"):
            attention["qkv_bias"] = True  # Qwen2Attention: q/k/v projections with bias
        elif cfg.get("attention_bias"):
            attention["qkv_bias"] = True
            attention["out_bias"] = True
        window = cfg.get("sliding_window")
        if mt.startswith("qwen") and not cfg.get("use_sliding_window", False):
            window = None  # Qwen2 sets sliding_window = None unless use_sliding_window
        if window:
            attention["sliding_window"] = count("sliding_window", window)
        attention.update(_layer_pattern(cfg, mt, layers, bool(window), count, file))
        if mt in ("qwen3", "qwen3_moe", "gemma3_text"):
            attention["qk_norm"] = True  # q_norm / k_norm RMSNorm over head_dim
        if mt == "gpt_oss":
            attention["sinks"] = True  # GptOssAttention.sinks: one learned logit per head
    ff_key = "intermediate_size_mlp" if mt == "llama4_text" else "intermediate_size"  # Llama 4 dense layers
    # Nemotron: up and down projections with a squared ReLU (NemotronMLP, hidden_act relu2), no gate
    mlp = {"kind": "relu2" if mt == "nemotron" else "gated", "intermediate_size": need(ff_key),
           "bias": bool(cfg.get("mlp_bias", False))}
    moe: dict[str, Any] | None = None
    n_exp = opt(EXPERTS, 0) if _first(cfg, EXPERTS) else 0
    if n_exp:
        moe_ff = opt(("moe_intermediate_size",), 0) or need("intermediate_size")
        moe = {"num_experts": n_exp, "expert_intermediate_size": moe_ff,
               "experts_per_token": opt(("num_experts_per_tok", "experts_per_token"), 0)
               or need("num_experts_per_tok")}
        if mt == "gpt_oss":  # GptOssExperts: gate_up and down biases; GptOssTopKRouter: a bias per expert
            moe.update(expert_bias=True, router_bias=True)
        if expert_dtype:
            moe["expert_weight_dtype"] = expert_dtype
        if mt == "llama4_text":  # Llama4TextMoe: one shared expert of intermediate_size; MoE every k-th layer
            moe.update(num_shared_experts=1, layer_step=opt(("interleave_moe_layer_step",), 1))
        if mt.startswith("deepseek"):
            moe.update(num_shared_experts=opt(("n_shared_experts",), 0) if cfg.get("n_shared_experts") else 0,
                       first_dense_layers=opt(("first_k_dense_replace",), 0) if cfg.get("first_k_dense_replace")
                       else 0, router_bias=cfg.get("topk_method") == "noaux_tc")
            if isinstance(cfg.get("n_group"), int) and cfg["n_group"] > 1 and isinstance(cfg.get("topk_group"), int):
                moe.update(routing_groups=cfg["n_group"], groups_per_token=cfg["topk_group"])  # group-limited
        elif mt.startswith("qwen") and cfg.get("shared_expert_intermediate_size"):
            moe.update(num_shared_experts=1,
                       shared_expert_intermediate_size=need("shared_expert_intermediate_size"))
    data: dict[str, Any] = {
        "name": name, "aliases": [], "family": mt,
        "hf_id": config.get("_name_or_path") if isinstance(config.get("_name_or_path"), str) else None,
        "num_layers": layers, "hidden_size": h, "vocab_size": need("vocab_size"),
        # Gemma configs leave tie_word_embeddings out: their transformers config classes default it to True
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", config.get("tie_word_embeddings",
                                                                               mt.startswith("gemma")))),
        # Nemotron's LayerNorm1P has a weight and a bias (NemotronLayerNorm1P, a LayerNorm)
        "max_position_embeddings": max_len, "norm": "layernorm" if mt == "nemotron" else "rmsnorm", "dtype": dtype,
        # Gemma 2/3: input, post-attention, pre-feedforward and post-feedforward RMSNorm in every layer
        "norms_per_layer": 4 if mt.startswith("gemma") else 2,
        "attention": attention, "mlp": mlp, "moe": moe,
        "source": f"imported from {file} ({arch or 'model_type ' + raw_mt})",
    }
    if weight_dtype:
        data["weight_dtype"] = weight_dtype
    if isinstance(cfg.get("num_nextn_predict_layers"), int) and cfg["num_nextn_predict_layers"] > 0:
        data["mtp_layers"] = cfg["num_nextn_predict_layers"]  # DeepSeek-V3 / GLM-4.5 MTP modules
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise TpplanError(f"config.json gives an invalid model: {'.'.join(map(str, err['loc']))}: {err['msg']}",
                          file=file) from None


def _layer_pattern(cfg: Mapping[str, Any], mt: str, layers: int, windowed: bool, count: Any,
                   file: str) -> dict[str, Any]:
    """Each layer's attention kind, as the family's modeling code decides it:
    - ``layer_types`` when the config lists it (GPT-OSS, Gemma 3 in transformers >= 4.53);
    - Gemma 2: even layers sliding, odd layers full (Gemma2DecoderLayer.is_sliding = not layer_idx % 2);
    - Gemma 3 without layer_types: sliding except every sliding_window_pattern-th layer (default 6);
    - Llama 4: chunked local attention on the RoPE layers, full attention on the NoPE layers (every 4th, or
      ``no_rope_layers``), Llama4TextAttention; chunk = attention_chunk_size."""
    out: dict[str, Any] = {}
    types = cfg.get("layer_types")
    if isinstance(types, list) and types:
        kinds = [LAYER_TYPES.get(str(t)) for t in types]
        if None in kinds or len(kinds) != layers:
            raise TpplanError(f"config.json layer_types must list {layers} entries of "
                              f"{', '.join(LAYER_TYPES)}; got {str(types)[:120]}", file=file)
        if len(set(kinds)) > 1 or (windowed and kinds[0] == "sliding"):
            out["layer_pattern"] = kinds
    elif mt == "gemma2" and windowed:
        out["layer_pattern"] = ["sliding", "full"]
    elif mt == "gemma3_text" and windowed:
        every = count("sliding_window_pattern", cfg.get("sliding_window_pattern", 6))
        out["layer_pattern"] = ["sliding"] * (every - 1) + ["full"]
    if mt == "llama4_text" and cfg.get("attention_chunk_size"):
        out["chunk_size"] = count("attention_chunk_size", cfg["attention_chunk_size"])
        nope = cfg.get("no_rope_layers")
        if isinstance(nope, list) and len(nope) == layers:  # 1 = the layer uses RoPE (and chunked attention)
            out["layer_pattern"] = ["chunked" if x else "full" for x in nope]
        else:
            out["layer_pattern"] = ["chunked", "chunked", "chunked", "full"]
    if "chunked" in (out.get("layer_pattern") or []) and "chunk_size" not in out:
        raise TpplanError("config.json has chunked_attention layers but no attention_chunk_size", file=file)
    return out
