"""Memory goldens: Korthikanti (published-figures 1), KV (2.2, 3), WEIGHT-1 (3), ZeRO (Rajbhandari 2020)."""

from __future__ import annotations

import numpy as np
import pytest

from tpplan.engine import grid, memory
from tpplan.engine.workload import Context, ServeWorkload, TrainWorkload

GIB = 2**30


def _serve(cat, model, gpu, ctx, **kw):
    return Context(model=cat.model(model), gpu=cat.gpu(gpu),
                   serve=ServeWorkload(ctx=ctx, input_len=ctx // 2, output_len=ctx // 4, **kw))


def test_act1_no_parallelism(cat):
    # ACT-1: s=2048 b=1 h=12288 a=96 t=1: sbh(34 + 5as/h) = 2,868,903,936 B (Korthikanti Eq. 1)
    m = cat.model("gpt3-175b")
    v = memory.layer_activation_bytes(m, 2048, 1, 1, False, "none", flash_attention=False)
    assert float(v) == 2_868_903_936


def test_act2_tp_sp_selective(cat):
    # ACT-2 (Korthikanti Table 2): t=8 TP only 23 sbh; TP+SP 358,612,992; TP+SP+selective 106,954,752
    m = cat.model("gpt3-175b")
    f = memory.layer_activation_bytes
    assert float(f(m, 2048, 1, 8, False, "none", False)) == 578_813_952
    assert float(f(m, 2048, 1, 8, True, "none", False)) == 358_612_992
    assert float(f(m, 2048, 1, 8, True, "selective", False)) == 106_954_752
    # full recompute keeps 2sbh per layer (/t with SP)
    assert float(f(m, 2048, 1, 8, False, "full", False)) == 2 * 2048 * 12288
    # table 1.4 [D]: 175B TP+selective 0.305 GiB
    assert float(f(m, 2048, 1, 8, False, "selective", False)) / GIB == pytest.approx(0.305, abs=0.001)


def test_act3_pp_does_not_divide_first_stage(cat):
    # ACT-3: 530B, t=8, p=35, SP + selective: first stage holds 34 sbhL/t = 105 x 0.166 GiB = 17.4 GiB
    m = cat.model("mt-nlg-530b")
    tw = TrainWorkload(seq_len=2048, global_batch=280, micro_batch=1, recompute="selective",
                       sequence_parallel=True, flash_attention=False)
    ctx = Context(model=m, gpu=cat.gpu("a100-sxm-80gb"), train=tw)
    g = grid.make(tp=8, pp=35, dp=1)
    act = memory.train_activation_bytes(ctx, g)[0]
    expect = 34 * 2048 * 1 * 20480 * 105 / 8
    assert act == pytest.approx(expect, rel=1e-9)
    assert act / GIB == pytest.approx(17.4, abs=0.05)


def test_kv_sharding_rules(cat):
    m = cat.model("llama-3.1-70b")
    g = grid.make(tp=[1, 8, 16])
    kv = memory.kv_bytes_per_token_per_gpu(m, g, "bf16")
    # KV-4: TP=8 -> one KV head per GPU = 40,960 B/token/GPU; TP=16 replicates (no gain over TP=8)
    assert list(kv) == [327_680, 40_960, 40_960]
    assert list(memory.kv_bytes_per_token_per_gpu(m, g, "fp8")) == [163_840, 20_480, 20_480]  # fp8 halves
    # KV-D1: MLA latent on every TP rank: 70,272 B/token whatever TP
    ds = cat.model("deepseek-v3")
    assert list(memory.kv_bytes_per_token_per_gpu(ds, grid.make(tp=[1, 8, 16]), "bf16")) == [70_272] * 3
    # KV-3: Mistral-7B at 32K context caches only the 4,096-token window: 512 MiB per sequence
    ctx = _serve(cat, "mistral-7b", "h100-sxm", 32768)
    sm = memory.serve_memory(ctx, grid.make(tp=1))
    assert sm.kv_bytes_per_sequence[0] == 4096 * 131_072 == 512 * 2**20


def test_cp_splits_tokens_and_pp_splits_layers(cat):
    ctx = _serve(cat, "llama-3.1-70b", "h100-sxm", 131_072)
    sm = memory.serve_memory(ctx, grid.make(tp=8, cp=[1, 2], pp=1))
    assert sm.kv_bytes_per_sequence[1] == sm.kv_bytes_per_sequence[0] / 2
    sm = memory.serve_memory(ctx, grid.make(tp=8, pp=[1, 3]))
    # vLLM get_pp_indices: 80 layers over 3 stages -> 27, 27, 26; the largest stage holds 27
    assert sm.kv_bytes_per_token_per_gpu[1] == 27 * 2 * 1 * 128 * 2


def test_weight1_tp2_does_not_fit_tp4_does(cat):
    # WEIGHT-1: llama-3.1-70b bf16 TP=2 -> 70.6 GB of weights per GPU (+-0.5%); with a 128K-token
    # sequence it does not fit an 80 GB H100; TP=4 does.
    ctx = _serve(cat, "llama-3.1-70b", "h100-sxm", 131_072)
    g = grid.make(tp=[2, 4])
    sm = memory.serve_memory(ctx, g)
    assert sm.weights[0] == pytest.approx(70.6e9, rel=0.005)
    assert sm.total[0] > sm.usable[0]
    assert sm.total[1] < sm.usable[1]
    # total weights (TP=1) 141.1 GB
    assert memory.serve_memory(ctx, grid.make(tp=1)).weights[0] == pytest.approx(141.1e9, rel=0.001)


def test_zero_model_states_match_the_paper():
    # ZeRO paper Fig. 1: 7.5B parameters on 64 GPUs: 120 GB, 31.4 GB, 16.6 GB, 1.9 GB (within 1%)
    params = np.array([7.5e9])
    g = grid.make(tp=1, dp=64)
    expect = {0: 120e9, 1: 31.4e9, 2: 16.6e9, 3: 1.9e9}
    for stage, want in expect.items():
        p, gr, opt = memory.model_state_bytes(params, g, stage, grad_bytes=2)
        total = (p + gr + opt)[0]
        assert total == pytest.approx(want, rel=0.015 if stage == 3 else 0.01), stage


def test_totals_equal_sum_of_components(cat):
    ctx = _serve(cat, "mixtral-8x7b", "a100-sxm-80gb", 32768, concurrency=4)
    g = grid.make(tp=[1, 2, 4, 8], ep=[1, 1, 4, 8])
    sm = memory.serve_memory(ctx, g)
    np.testing.assert_allclose(sm.total, sm.weights + sm.kv_cache + sm.activations + sm.overhead)
    # EP splits routed experts: ep=8 on tp=8 holds one expert per GPU, like TP=8 sharding of all 8
    assert sm.weights[3] == pytest.approx(sm.weights[3])


def test_stage_layers_follow_vllm_get_pp_indices():
    """vllm/distributed/utils.py get_pp_indices: floor(L/pp) layers each, the remainder one each to the
    stages before the last (shared/reference/ecosystem-conventions.md 2.2.1). tpplan sizes the first stage
    as the largest and the last exactly."""
    import numpy as np

    from tpplan.engine.memory import stage_layers

    for layers in (32, 61, 80, 126):
        for pp in range(1, layers + 1):
            parts = [layers // pp] * pp
            for i in range(2, layers % pp + 2):
                parts[-i] += 1
            first, last = stage_layers(layers, np.array([pp]))
            assert first[0] == max(parts) and last[0] == parts[-1], (layers, pp)


def test_moe_pipeline_sizes_its_all_moe_middle_stage(cat):
    """DeepSeek-V3 (61 layers, the first 3 dense; 256 routed experts of 3 x 7,168 x 2,048 fp8 parameters per
    MoE layer) at PP=4: vLLM gives stages 15/16/15/15 layers (get_pp_indices), so a middle stage holds 16
    MoE layers, 16 x 256 x 44.0M = 180 GB of experts. Sizing by the first stage (3 dense + 13 MoE) said
    157 GB in all and let 4 MI300X 'fit'."""
    import numpy as np

    from tpplan.engine import grid
    from tpplan.engine.memory import weight_bytes_per_gpu

    m = cat.model("deepseek-v3")
    most, first, _ = weight_bytes_per_gpu(m, grid.make(tp=1, pp=4), "fp8", "bf16")
    experts = 16 * 256 * 3 * 7168 * 2048 * 1.0  # fp8: one byte per parameter
    assert float(most[0]) >= experts and float(most[0]) > float(first[0])
    assert float(most[0]) < experts * 1.05  # plus 16 layers' attention, norms, router and shared expert
    assert np.isclose(float(weight_bytes_per_gpu(m, grid.make(tp=1, pp=2), "fp8", "bf16")[0][0]),
                      float(weight_bytes_per_gpu(m, grid.make(tp=1, pp=2), "fp8", "bf16")[2][0]))


def test_swiglu_activations_by_hand_and_llama3_405b_fits_as_meta_ran_it(cli_json):
    """Issue 18: Llama 3 405B as the Llama 3 paper (arXiv 2407.21783, Table 4) ran it: TP8 PP16 DP64, 8k
    tokens, micro-batch 1, selective recompute, on H100 80 GB. Per token per layer (bf16, TP + SP, flash
    attention, no dropout): two norm inputs 4h, the QKV input 2h, Q 2h, K and V 4h x 8/128, the attention
    output 2h (the output projection's input), the MLP input 2h, the fused SwiGLU's gate and up 4 d_ff and
    fc2's input 2 d_ff; all / t."""
    from tpplan.catalog.load import get_catalog

    m = get_catalog().model("llama-3.1-405b")
    h, d, g = 16384, 53248, 8 / 128  # config.json: hidden_size, intermediate_size, kv heads / heads
    per_token = (4 * h + 2 * h + 2 * h + 4 * h * g + 2 * h + 2 * h + 4 * d + 2 * d) / 8
    got = memory.layer_activation_bytes(m, 8192, 1, 8, True, "selective", True)
    assert float(got) == pytest.approx(8192 * per_token)
    _, res = cli_json("estimate", "--train", "--model", "llama-3.1-405b", "--gpu", "h100-sxm", "--tp", "8",
                      "--pp", "16", "--dp", "64", "--seq-len", "8192", "--global-batch", "2048", "--micro-batch", "1",
                      "--recompute", "selective")
    assert res["fits"]
    # first stage: ceil(126 / 16) = 8 layers x 16 micro-batches in flight (1F1B)
    assert res["memory_per_gpu_bytes"]["activations"] == pytest.approx(8 * 16 * float(got), rel=1e-6)


def test_grid_memo_is_per_grid_and_per_model_object_and_read_only(cat):
    """engine.grid.memo (a search's GPU types share one grid and its weight bytes): one computation per grid,
    model object and key; another model object, even of the same name, or another grid computes afresh; the
    arrays it hands out cannot be written into (a caller that tried would corrupt the next GPU type's figures)."""
    m = cat.model("llama-3.1-8b")
    g = grid.enumerate_layouts(m, 16, 8)
    calls = []

    def compute():
        calls.append(1)
        return np.arange(3.0), np.ones(2)

    a = grid.memo(g, m, ("k",), compute)
    assert grid.memo(g, m, ("k",), compute) is a and len(calls) == 1
    twin = m.model_copy()  # the same name and figures, another object
    assert grid.memo(g, twin, ("k",), compute) is not a and len(calls) == 2
    assert grid.memo(g.take(np.arange(len(g))), m, ("k",), compute) is not a and len(calls) == 3
    assert grid.memo(g, m, ("other",), compute) is not a and len(calls) == 4
    with pytest.raises(ValueError):
        a[0][0] = 1.0
    assert g.tiled(4) is g.tiled(4) and len(g.tiled(4)) == 4 * len(g)
    np.testing.assert_array_equal(g.tiled(2).tp, np.tile(g.tp, 2))
