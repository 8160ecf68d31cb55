"""Hugging Face ``config.json`` (plain JSON, offline, no transformers) -> :class:`ModelSpec`.

Alias tables follow vLLM (ModelConfig.get_total_num_kv_heads, _verify_with_expert_parallelism, max_model_len)
and the transformers configuration classes of each family (ecosystem-conventions section 2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tpplan.errors import TpplanError
from tpplan.spec import ModelSpec

FAMILIES = ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek_v2", "deepseek_v3")

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
    mt = str(cfg.get("model_type") or config.get("model_type") or "")
    if mt not in FAMILIES:
        raise TpplanError(f"unsupported model_type {mt!r}; supported: {', '.join(FAMILIES)}", file=file,
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
    quant = (cfg.get("quantization_config") or config.get("quantization_config") or {})
    qmethod = str(quant.get("quant_method", "")).lower() if isinstance(quant, Mapping) else ""
    weight_dtype = {"fp8": "fp8", "awq": "int4", "gptq": "int4", "compressed-tensors": None}.get(qmethod)
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
    mlp = {"kind": "gated", "intermediate_size": need("intermediate_size"),
           "bias": bool(cfg.get("mlp_bias", False))}
    moe = None
    n_exp = opt(EXPERTS, 0) if _first(cfg, EXPERTS) else 0
    if n_exp:
        moe_ff = opt(("moe_intermediate_size",), 0) or need("intermediate_size")
        moe = {"num_experts": n_exp, "experts_per_token": need("num_experts_per_tok"),
               "expert_intermediate_size": moe_ff}
        if mt.startswith("deepseek"):
            moe.update(num_shared_experts=opt(("n_shared_experts",), 0) if cfg.get("n_shared_experts") else 0,
                       first_dense_layers=opt(("first_k_dense_replace",), 0) if cfg.get("first_k_dense_replace")
                       else 0, router_bias=cfg.get("topk_method") == "noaux_tc")
        elif mt.startswith("qwen") and cfg.get("shared_expert_intermediate_size"):
            moe.update(num_shared_experts=1,
                       shared_expert_intermediate_size=need("shared_expert_intermediate_size"))
    data: dict[str, Any] = {
        "name": name, "aliases": [], "family": mt,
        "hf_id": config.get("_name_or_path") if isinstance(config.get("_name_or_path"), str) else None,
        "num_layers": layers, "hidden_size": h, "vocab_size": need("vocab_size"),
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", config.get("tie_word_embeddings", False))),
        "max_position_embeddings": max_len, "norm": "rmsnorm", "dtype": dtype,
        "attention": attention, "mlp": mlp, "moe": moe,
        "source": f"imported from {file} (model_type {mt})",
    }
    if weight_dtype:
        data["weight_dtype"] = weight_dtype
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise TpplanError(f"config.json gives an invalid model: {'.'.join(map(str, err['loc']))}: {err['msg']}",
                          file=file) from None
