"""import-hf for today's families (issue 20 items 1-2): parameter counts against the published figures and KV
bytes from each layer's attention kind, with the real config.json files in tests/data/hf-configs/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpplan.catalog.hf import spec_from_hf
from tpplan.catalog.load import load_catalog, load_model_file

HF = Path(__file__).parent / "data" / "hf-configs"


def _spec(stem: str):
    return load_model_file(HF / f"{stem}.config.json", stem)


# published totals (shared/reference/data/hf-configs/README.md, the model cards)
@pytest.mark.parametrize("stem,published,active,active_published", [
    ("gemma-2-27b", 27.2e9, None, None),                       # google/gemma-2-27b: 27.2B
    ("phi-3-mini-4k-instruct", 3_821_079_552, None, None),      # Phi-3 technical report / model card: 3.8B
    ("gpt-oss-20b", 20.9e9, "no-input-embedding", 3.6e9),      # gpt-oss model card: 20.9B total, 3.6B active
    ("llama-4-scout-17b-16e-instruct", 107.8e9, "all", 17e9),  # text ~107.8B (109B with vision), "17B" active
    ("qwen3-32b", 32.8e9, None, None),                         # Qwen3 model card: 32.8B
    ("qwen3-30b-a3b", 30.5e9, "all", 3.3e9),                   # Qwen3 model card: 30.5B total, 3.3B activated
])
def test_parameter_counts_within_half_a_percent(stem, published, active, active_published):
    m = _spec(stem)
    assert m.params_total == pytest.approx(published, rel=0.005)
    if active == "no-input-embedding":  # gpt-oss counts active parameters without the embedding table
        assert m.params_active - m.embedding_params == pytest.approx(active_published, rel=0.005)
    elif active == "all":  # published "active" figures are rounded: 17B to the billion, 3.3B to 0.1B
        assert abs(m.params_active - active_published) < (0.5e9 if active_published >= 10e9 else 0.1e9)


def test_phi3_mini_exact():
    # 32 x (4 x 3072^2 + 3 x 3072 x 8192 + 2 x 3072) + 2 x 32064 x 3072 + 3072 = 3,821,079,552 (model card)
    assert _spec("phi-3-mini-4k-instruct").params_total == 3_821_079_552


def test_layer_kinds_follow_the_modeling_code():
    g = _spec("gemma-2-27b")  # Gemma2DecoderLayer: is_sliding = not layer_idx % 2; 4 norms; tied; fp32 -> bf16
    assert g.layer_kinds[:4] == ["sliding", "full", "sliding", "full"] and g.norms_per_layer == 4
    assert g.tie_word_embeddings and g.dtype == "bf16" and g.attention.sliding_window == 4096
    o = _spec("gpt-oss-20b")  # layer_types list: sliding / full alternating, window 128; sinks; MXFP4 experts
    assert o.layer_kinds.count("full") == 12 and o.attention.sliding_window == 128 and o.attention.sinks
    assert o.moe.expert_weight_dtype == "mxfp4" and o.moe.expert_bias and o.moe.experts_per_token == 4
    s = _spec("llama-4-scout-17b-16e-instruct")  # chunked 8192 on 3 of 4 layers (NoPE every 4th is global)
    assert s.layer_kinds[:4] == ["chunked", "chunked", "chunked", "full"] and s.attention.chunk_size == 8192
    assert s.moe.num_shared_experts == 1 and s.num_moe_layers == 48 and s.mlp.intermediate_size == 16384
    q = _spec("qwen3-32b")
    assert q.attention.qk_norm and q.layer_kinds == ["full"] * 64


def test_kv_bytes_follow_each_layers_kind():
    # Gemma-2-27B: 46 layers x 2 x 16 KV heads x 128 x 2 B = 376,832 B/token with every layer full; at 32K the
    # 23 sliding layers keep 4,096 tokens: (23 x 32,768 + 23 x 4,096) / 46 / 32,768 of it
    g = _spec("gemma-2-27b")
    assert g.kv_cache_bytes_per_token(2) == 376_832
    assert g.kv_cache_bytes_per_sequence(32768, 2) == pytest.approx(376_832 / 46 * (23 * 32768 + 23 * 4096))
    # GPT-OSS-20B: 24 x 2 x 8 x 64 x 2 B = 49,152 B/token; at 128K half the layers keep 128 tokens
    o = _spec("gpt-oss-20b")
    assert o.kv_cache_bytes_per_sequence(131072, 2) == pytest.approx(49_152 / 2 * 131072 + 49_152 / 2 * 128)
    # Llama 4 Scout: 48 x 2 x 8 x 128 x 2 = 196,608 B/token; chunked layers keep at most one 8,192 chunk
    s = _spec("llama-4-scout-17b-16e-instruct")
    assert s.kv_cache_bytes_per_sequence(131072, 2) == pytest.approx(196_608 / 4 * 131072 + 196_608 * 3 / 4 * 8192)
    # below the window every layer keeps every token
    assert g.kv_cache_bytes_per_sequence(4000, 2) == pytest.approx(376_832 * 4000)


def test_serving_memory_uses_layer_kinds_and_mxfp4_experts(cli_json):
    # gpt-oss-20b ships ~13.8 GB of safetensors (MXFP4 experts at 4.25 bits, the rest bf16)
    code, d = cli_json("estimate", "--model", str(HF / "gpt-oss-20b.config.json"), "--gpu", "h100", "--ctx", "32k")
    assert code == 0
    assert 13.0e9 < d["memory_per_gpu_bytes"]["weights"] < 14.5e9
    assert d["memory_per_gpu_bytes"]["kv_cache"] == pytest.approx(49_152 / 2 * (32000 + 128), rel=0.01)


def test_architectures_win_over_model_type():
    # Kimi-K2 ships model_type kimi_k2 with DeepSeek-V3's architecture (moonshotai/Kimi-K2-Instruct config.json)
    cfg = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "kimi_k2", "hidden_size": 7168,
           "num_attention_heads": 64, "num_hidden_layers": 61, "num_key_value_heads": 64, "vocab_size": 163840,
           "intermediate_size": 18432, "moe_intermediate_size": 2048, "n_routed_experts": 384,
           "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 1, "kv_lora_rank": 512,
           "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
           "topk_method": "noaux_tc", "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
    m = spec_from_hf(cfg, "kimi-k2")
    assert m.family == "deepseek_v3" and m.attention.kind == "mla"
    # Kimi K2 model card: "1T" total (rounded), 32B activated
    assert 1.0e12 <= m.params_total < 1.05e12
    assert abs(m.params_active - 32e9) < 1e9


def test_model_folder_and_hf_cache_snapshot(tmp_path, cli):
    snap = tmp_path / "hub" / "models--openai--gpt-oss-20b" / "snapshots" / "6cee5e8"
    snap.mkdir(parents=True)
    shutil.copy(HF / "gpt-oss-20b.config.json", snap / "config.json")
    m = load_catalog().model(str(snap))
    assert m.name == "gpt-oss-20b" and m.hf_id == "openai/gpt-oss-20b"
    code, out, _ = cli("estimate", "--model", str(snap), "--gpu", "h100", "--ctx", "8k")
    assert code == 0 and "gpt-oss-20b" in out
    code, _, err = cli("estimate", "--model", str(tmp_path), "--gpu", "h100", "--ctx", "8k")
    assert code == 2 and "must hold a Hugging Face config.json" in err


def test_unknown_hf_id_points_to_import(cli):
    code, out, err = cli("recommend", "--model", "openai/gpt-oss-120b", "--ctx", "8k")
    assert code == 2 and out == ""
    assert "huggingface-cli download openai/gpt-oss-120b config.json" in err and "import-hf" in err


def test_bad_layer_types_exit_2(cli, tmp_path):
    cfg = json.loads((HF / "gpt-oss-20b.config.json").read_text())
    cfg["layer_types"] = ["sliding_attention", "bogus"]
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    code, _, err = cli("models", "show", str(p))
    assert code == 2 and "layer_types must list 24 entries" in err


@given(st.integers(1, 2_000_000), st.integers(1, 2_000_000))
def test_cache_grows_with_context_and_inverts(c1, c2):
    for stem in ("gemma-2-27b", "gpt-oss-20b", "llama-4-scout-17b-16e-instruct"):
        m = _spec(stem)
        lo, hi = sorted((c1, c2))
        assert m.mean_cached_tokens(lo) <= m.mean_cached_tokens(hi)
        t = float(m.mean_cached_tokens(hi))
        back = float(m.ctx_for_cached_tokens(np.array([t]), np.inf)[0])
        assert back == pytest.approx(hi, rel=1e-9)


def test_fp4_without_fp4_units_states_the_weight_only_path(cli_json):
    # hardware/h100-sxm.yaml lists no fp4 tensor-core rate; vLLM runs fp4 checkpoints there weight-only (Marlin)
    _, d = cli_json("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--weight-dtype", "fp4")
    assert any("no fp4 tensor cores" in w and "bf16 rate" in w for w in d["warnings"])
    _, b = cli_json("estimate", "--model", "llama-8b", "--gpu", "b200", "--ctx", "8k", "--weight-dtype", "fp4")
    assert not any("tensor cores" in w for w in b["warnings"])
    # the weights keep their fp4 size: Llama-3.1-8B's 6.98B linear weights x (0.5 + 1/16 NVFP4 scale) B plus the
    # bf16 embedding and LM head (2 x 128,256 x 4,096 x 2 B) = 3.93 + 2.10 GB
    assert d["memory_per_gpu_bytes"]["weights"] == pytest.approx(6.03e9, rel=0.01)
    assert d["memory_per_gpu_bytes"]["weights"] == b["memory_per_gpu_bytes"]["weights"]


def test_rope_scaling_extends_the_limit_and_the_command(cli_json, cli):
    # Qwen2.5-72B-Instruct: 32,768 native; its model card documents YaRN factor 4 for 131,072 tokens
    code, r = cli_json("recommend", "--model", "qwen2.5-72b", "--ctx", "128k", "--top", "1")
    assert code == 1 and "--rope-scaling" in r["relax"][0]
    code, r = cli_json("recommend", "--model", "qwen2.5-72b", "--ctx", "128k", "--rope-scaling", "yarn:4",
                       "--top", "1")
    assert code == 0 and r["candidates"]
    assert ('--hf-overrides \'{"rope_scaling":{"rope_type":"yarn","factor":4.0,'
            '"original_max_position_embeddings":32768}}\'') in r["serving_command"]
    assert any("yarn x4 (32,768 -> 131,072 tokens)" in w for w in r["candidates"][0]["warnings"])
    # --allow-long-context: unscaled, with vLLM's environment switch and a warning
    code, d = cli_json("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "256k", "--allow-long-context")
    assert code == 0 and d["reasons"] == [] and any("trained length" in w for w in d["warnings"])
    for bad in ("yarn", "yarn:1", "yarn:x", "rope:4", "yarn:1e9"):
        code, out, err = cli("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--rope-scaling", bad)
        assert code == 2 and "TYPE:FACTOR" in err


def test_nemotron_squared_relu():
    # Nemotron-4-340B (NVIDIA model card and technical report: 96 layers, hidden 18,432, 96 heads, 8 KV heads,
    # FFN 73,728 with squared ReLU and no gate, vocab 256,000, untied, LayerNorm1P): "340B" parameters
    cfg = {"architectures": ["NemotronForCausalLM"], "model_type": "nemotron", "hidden_size": 18432,
           "num_hidden_layers": 96, "num_attention_heads": 96, "num_key_value_heads": 8, "intermediate_size": 73728,
           "vocab_size": 256000, "max_position_embeddings": 4096, "hidden_act": "relu2",
           "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    m = spec_from_hf(cfg, "nemotron-4-340b")
    assert m.mlp.kind == "relu2" and m.norm == "layernorm"
    assert m.params_total == pytest.approx(340e9, rel=0.005)
    assert m.dense_mlp_params == 2 * 18432 * 73728
