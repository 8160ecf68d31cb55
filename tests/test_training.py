"""Training: models by dimensions, fp8 training, and hypothesis invariants of the step-time model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpplan.catalog.spec import model_from_dimensions
from tpplan.engine import grid, perf
from tpplan.engine.workload import Context, ServeWorkload, TrainWorkload
from tpplan.plan import serve as planner
from tpplan.plan import train as training


def test_gpt3_by_dimensions_equals_the_catalog_entry(cat, cli_json):
    # GPT-3 175B (Narayanan et al. 2021 Table 1 / Korthikanti Table 3): 96 layers, h 12288, 96 heads, V 51200
    dims = model_from_dimensions(96, 12288, 96, 51200)
    ref = cat.model("gpt3-175b")
    assert dims.params_total == ref.params_total
    assert perf.model_flops_per_step(dims, 64, 2048) == perf.model_flops_per_step(ref, 64, 2048)
    # Narayanan's matmul parameter count 12 l h^2 + V h (biases and layernorms aside)
    assert dims.matmul_params_active == 12 * 96 * 12288**2 + 51200 * 12288
    common = ["estimate", "--train", "--gpu", "a100-sxm-80gb", "--tp", "8", "--pp", "8", "--ctx", "2048",
              "--seq-len", "2048", "--global-batch", "64"]
    _, a = cli_json(*common, "--layers", "96", "--hidden", "12288", "--heads", "96", "--vocab", "51200")
    _, b = cli_json(*common, "--model", "gpt3-175b")
    assert a["train"]["step_time_s"] == pytest.approx(b["train"]["step_time_s"], rel=1e-12)
    assert a["memory_per_gpu_bytes"] == b["memory_per_gpu_bytes"]


def test_dimension_options_on_recommend_and_errors(cli, cli_json):
    code, d = cli_json("recommend", "--layers", "32", "--hidden", "4096", "--heads", "32", "--vocab", "32000",
                       "--ffn", "11008", "--ctx", "4k", "--gpu", "h100", "--top", "2")
    assert code == 0 and d["candidates"][0]["layout"]["tp"] >= 1
    code, out, err = cli("recommend", "--layers", "32", "--ctx", "4k")
    assert code == 2 and "--hidden, --heads, --vocab" in err
    code, out, err = cli("recommend", "--model", "llama-8b", "--layers", "32", "--hidden", "4096", "--heads", "32",
                         "--vocab", "1")
    assert code == 2 and "not both" in err
    code, out, err = cli("estimate", "--layers", "2", "--hidden", "100", "--heads", "3", "--vocab", "10",
                         "--gpu", "h100", "--ctx", "1k")
    assert code == 2 and "divisible" in err
    assert cli("recommend", "--ctx", "4k")[0] == 2  # no model at all


def test_fp8_training_uses_fp8_peak(cli_json):
    common = ["estimate", "--train", "--model", "llama-70b", "--gpu", "h100", "--tp", "8", "--pp", "4",
              "--dp", "2", "--ctx", "4096", "--seq-len", "4096", "--global-batch", "64"]
    _, bf16 = cli_json(*common)
    _, fp8 = cli_json(*common, "--train-dtype", "fp8")
    assert fp8["settings"]["train_dtype"] == "fp8" and bf16["settings"]["train_dtype"] == "bf16"
    # H100 dense fp8 peak is 2x bf16 at a lower achieved fraction (0.65 vs 0.74): GEMMs ~1.76x faster
    ratio = bf16["train"]["breakdown_s"]["compute"] / fp8["train"]["breakdown_s"]["compute"]
    assert 1.3 < ratio < 2.0


CASES = st.tuples(
    st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "gpt3-175b", "mixtral-8x7b"]),
    st.sampled_from(["h100-sxm", "a100-sxm-80gb", "h200", "mi300x"]),
    st.sampled_from([1, 2, 4, 8]),        # tp
    st.sampled_from([1, 2, 4]),           # pp
    st.sampled_from([1, 2, 4, 8, 16]),    # dp
    st.sampled_from(["none", "selective", "full"]),
    st.sampled_from([0, 1, 2, 3]),
)


@settings(max_examples=60, deadline=None)
@given(CASES)
def test_more_data_parallel_gpus_only_add_communication(cat, case):
    model, gpu, tp, pp, dp, rc, zero = case
    m = cat.model(model)
    tw = TrainWorkload(seq_len=4096, global_batch=256, micro_batch=1, tokens=1e11, recompute=rc, zero=zero)
    ctx = Context(model=m, gpu=cat.gpu(gpu), train=tw)
    g = grid.make(tp=tp, pp=pp, dp=[dp, 2 * dp])
    ev = training.evaluate_train(ctx, g, planner.Pricing())
    t = ev.t
    comm = t.tp_comm + t.pp_comm + t.dp_comm + t.ep_comm + t.cp_comm
    rest = t.step_time - comm
    # twice the replicas: half the micro-batches per pipeline; compute + bubble never grow
    assert rest[1] <= rest[0] * (1 + 1e-9)
    assert np.all(t.step_time >= rest) and np.all(comm >= 0)
    assert np.all((t.mfu > 0) & (t.mfu < 1)) and np.all(t.hfu >= t.mfu - 1e-12)
    for i in range(2):
        obj = training.train_object(ev, i, planner.Pricing())
        tr = obj["train"]
        assert tr["gpu_hours"] == pytest.approx(obj["layout"]["gpus"] * tr["days"] * 24)
        assert obj["layout"]["micro_batch"] * obj["settings"]["micro_batches"] * obj["layout"]["dp"] == 256


def test_train_objectives_and_search_space(cli_json, cli):
    base = ["recommend", "--train", "--model", "llama-70b", "--tokens", "1T", "--seq-len", "4096",
            "--global-batch", "512", "--max-gpus", "256", "--gpu", "h100", "--top", "12"]
    _, by_mfu = cli_json(*base, "--objective", "mfu")
    mfus = [c["train"]["mfu"] for c in by_mfu["candidates"]]
    assert by_mfu["inputs"]["objective"] == "mfu" and mfus == sorted(mfus, reverse=True)
    _, by_time = cli_json(*base)
    assert by_time["inputs"]["objective"] == "time"
    seen = set()
    # (a plan can rank in both lists: the duplicate check runs over the time-ranked list once)
    for i, c in enumerate(by_time["candidates"] + by_mfu["candidates"]):
        lay, st = c["layout"], c["settings"]
        # Megatron's interleaved schedule: layers split into pp x v chunks, micro-batches a multiple of pp
        if st["interleave"] > 1:
            assert lay["pp"] > 1 and 80 % (lay["pp"] * st["interleave"]) == 0
            assert st["micro_batches"] % lay["pp"] == 0
        ident = (lay["gpu"], lay["tp"], lay["pp"], lay["dp"], lay["micro_batch"], st["zero"], st["interleave"],
                 round(c["train"]["step_time_s"], 9), round(c["memory_per_gpu_bytes"]["total"]))
        if i < len(by_time["candidates"]):
            assert ident not in seen  # recompute settings that change nothing are one plan
            seen.add(ident)
    # the interleaved schedule ranks among them (v = 4 at TP4 PP2 and PP4: fewer bubbles)
    assert any(c["settings"]["interleave"] > 1 for c in by_time["candidates"] + by_mfu["candidates"])
    assert cli(*base, "--objective", "latency")[0] == 2
    assert cli("recommend", "--model", "llama-8b", "--objective", "time")[0] == 2


def test_elementwise_bytes_hand_counted(cat):
    # Llama-3.1-8B (config.json: h 4096, 32 layers, 32 heads, 8 KV heads, head_dim 128, SwiGLU ffn 14336):
    # per layer 2 norms (4h) + 2 residual adds (6h) + rotary on q and k (2 x (32 + 8) x 128) + SwiGLU (3 x 14336)
    m = cat.model("llama-3.1-8b")
    per_layer = 10 * 4096 + 2 * (32 + 8) * 128 + 3 * 14336
    assert perf.elementwise_bytes_per_token(m) == per_layer * 32 * 2
    # GPT-3: learned positions (no rotary), GELU 4h
    g = cat.model("gpt3-175b")
    assert perf.elementwise_bytes_per_token(g) == (10 * 12288 + 2 * 49152) * 96 * 2


def test_price_override_reaches_every_training_tier(cli_json):
    # --price is the user's contract price: the run's $ and every tier must use it (8 x ... x $1/GPU-hour)
    _, d = cli_json("recommend", "--train", "--model", "llama-8b", "--tokens", "1T", "--seq-len", "4096",
                    "--global-batch", "256", "--max-gpus", "64", "--gpu", "h100", "--price", "h100=1", "--top", "1")
    c = d["candidates"][0]
    gh = c["train"]["gpu_hours"]
    assert c["cost"]["usd_total"] == pytest.approx(gh * 1.0)
    assert c["cost"]["usd_total_by_tier"] == pytest.approx({"low": gh, "typical": gh, "high": gh})


@pytest.mark.parametrize("zero", [0, 1])
def test_optimizer_step_hand_counted(cat, zero):
    """Fused AdamW streams fp32 master, momentum and variance in and out (24 B), reads the bf16 gradient (2 B)
    and writes the bf16 working copy (2 B): 28 B per parameter this rank updates, at the HBM efficiency. ZeRO-1
    leaves each of the dp ranks 1/dp of the parameters (Rajbhandari et al. 2020)."""
    from tpplan.engine.memory import params_per_gpu

    m, gpu = cat.model("llama-70b"), cat.gpu("h100-sxm")
    g = grid.make(tp=8, pp=4, dp=2)
    ctx = Context(model=m, gpu=gpu, train=TrainWorkload(seq_len=4096, global_batch=256, zero=zero))
    t = perf.train_time(ctx, g)
    per_rank = float(params_per_gpu(m, g)[0]) / (2 if zero else 1)
    assert float(t.optimizer[0]) == pytest.approx(per_rank * 28 / (3.35e12 * gpu.calibration.hbm.value), rel=1e-9)
    parts = (t.compute_time + t.bubble_time + t.tp_comm + t.pp_comm + t.dp_comm + t.ep_comm + t.cp_comm
             + t.optimizer)
    assert float(t.step_time[0]) == pytest.approx(float(parts[0]), rel=1e-12)


def test_training_list_holds_no_variant_of_a_better_row(cli_json):
    """Down the list each row of a GPU type gives something back for being slower: fewer GPUs or more memory
    headroom (ZeRO-1 beside ZeRO-2 at the same step time with more memory is a variant); several GPU types
    get at most ceil(top / 3) rows each."""
    _, res = cli_json("recommend", "--train", "--model", "llama-70b", "--tokens", "1T", "--seq-len", "4096",
                      "--global-batch", "512", "--max-gpus", "256", "--gpu", "h100", "--gpu", "h200",
                      "--gpu", "mi300x", "--top", "9")
    cands = res["candidates"]
    assert len(cands) == 9
    per_gpu: dict[str, list[tuple[float, int, float]]] = {}
    for c in cands:
        row = (c["train"]["step_time_s"], c["layout"]["gpus"], c["memory_per_gpu_bytes"]["total"])
        for t, n, m in per_gpu.get(c["layout"]["gpu"], []):
            assert t <= row[0] and not (n <= row[1] and m <= row[2]), (c["layout"], row)
        per_gpu.setdefault(c["layout"]["gpu"], []).append(row)
    assert all(len(v) <= 3 for v in per_gpu.values()) and len(per_gpu) == 3


@pytest.mark.parametrize("extra", [
    ["--model", "llama-3.1-405b", "--max-gpus", "64"],  # does not fit 64 x 80 GB
    ["--model", "llama-70b", "--max-gpus", "256", "--deadline-days", "30"],  # 15T tokens need ~8k H100 for that
    ["--model", "llama-70b", "--max-gpus", "256", "--budget-usd", "1M"],
    ["--model", "llama-70b", "--max-gpus", "256", "--budget-usd", "1M", "--deadline-days", "100"],
])
def test_every_training_relax_hint_is_enough_on_its_own(cli_json, apply_hint, extra):
    """Each hint printed when no training layout is feasible, applied as printed, gives a candidate."""
    args = ["recommend", "--train", "--tokens", "15T", "--seq-len", "8192", "--global-batch-tokens", "16M",
            "--gpu", "h100", "--top", "1", *extra]
    code, res = cli_json(*args)
    assert code == 1 and res["candidates"] == [] and res["relax"], res.get("relax")
    for hint in res["relax"]:
        code, ok = cli_json(*apply_hint(args, hint))
        assert code == 0 and ok["candidates"], (hint, ok.get("relax"))


def test_virtual_stages_any_v_that_splits_the_layers(cli_json, cli):
    """Issue 18: interleaving was limited to v = 2. Narayanan et al. 2021 (Megatron, GPT-3 175B: 96 layers,
    TP8 PP8) ran the interleaved schedule with more chunks: the bubble is (p - 1) / (v m) of the compute and
    the first stage holds (1 + (p - 1) / (p v)) x its plain-1F1B activations."""
    base = ["estimate", "--train", "--model", "gpt3-175b", "--gpu", "a100-sxm-80gb", "--tp", "8", "--pp", "8",
            "--seq-len", "2048", "--global-batch", "64", "--recompute", "none", "--no-sequence-parallel"]
    _, plain = cli_json(*base)
    _, v4 = cli_json(*base, "--virtual-stages", "4")
    assert v4["settings"]["interleave"] == 4
    compute = plain["train"]["breakdown_s"]["compute"]
    assert plain["train"]["breakdown_s"]["bubble"] == pytest.approx(compute * 7 / 64, rel=1e-9)
    assert v4["train"]["breakdown_s"]["bubble"] == pytest.approx(compute * 7 / (4 * 64), rel=1e-9)
    assert v4["memory_per_gpu_bytes"]["activations"] > plain["memory_per_gpu_bytes"]["activations"]
    code, _, err = cli(*base, "--virtual-stages", "5")
    assert code == 2 and "96 layers do not split into pp x v = 40 equal chunks" in err and "2, 3, 4, 6, 12" in err
    code, _, err = cli("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--virtual-stages", "2")
    assert code == 2 and "applies to training" in err
    code, _, err = cli("recommend", "--model", "llama-8b", "--ctx", "8k", "--ep-overlap")
    assert code == 2 and "--ep-overlap applies to training" in err


def test_the_last_pipeline_stage_paces_1f1b(cli_json):
    """Issue 18 item 2: the LM head and loss sit on the last stage, so 1F1B runs at that stage's pace, not at
    the even share of the whole model. Llama-2-7B (32 layers, 32,000 x 4,096 LM head; 6.61B matmul params with
    the head) at pp=2: the last stage does 16/32 of the layers' work plus the head's, (1 - f) / 2 + f of the
    step's compute, f = 131M / 6,607M of its GEMM time."""
    base = ["estimate", "--train", "--model", "llama-2-7b", "--gpu", "h100-sxm", "--tp", "1", "--dp", "1",
            "--seq-len", "4096", "--global-batch", "8"]
    _, one = cli_json(*base, "--pp", "1")
    _, two = cli_json(*base, "--pp", "2")
    c1, c2 = one["train"]["breakdown_s"], two["train"]["breakdown_s"]
    f = (32_000 * 4_096 / 6_607_077_376) * c1["gemm"] / c1["compute"]
    # per GPU: the pp=2 step does half the work per GPU, at the last stage's share
    assert c2["compute"] == pytest.approx(c1["compute"] / 2 * 2 * ((1 - f) / 2 + f), rel=1e-6)



def test_routed_experts_stream_their_weights_each_micro_batch(cat, cli_json):
    """issue 18 item 5: grouped expert GEMMs at small tokens per expert near the HBM bound. Qwen3-30B-A3B
    (config.json: hidden 2,048, moe_intermediate_size 768, 128 experts, top-8, 48 layers, all MoE) on 8 H100,
    EP 1, 4,096-token micro-batches, global batch 256 (32 micro-batches per GPU), no recompute: every micro-batch's
    4,096 x 8 expert picks hit all 128 experts (1 - (1 - 8/128)^4096 ~ 1), so each of its three passes (forward,
    data and weight gradient) reads 128 x 3 x 2,048 x 768 = 604M weights x 2 B per layer: 32 x 48 x 3 x 1.21 GB
    = 5.57 TB a step at 3.35 TB/s x 0.75. The routed experts' GEMM time is the smooth roofline of that and their
    FLOPs (8 x 4.72M of the 3.04B active matmul weights a token multiplies); at EP 8 each GPU holds 16 experts
    and the same FLOPs, so the reads hide."""
    m, gpu = cat.model("qwen3-30b-a3b"), cat.gpu("h100-sxm")
    tw = TrainWorkload(seq_len=4096, global_batch=256, micro_batch=1, recompute="none", sequence_parallel=False,
                       zero=1)
    ctx = Context(model=m, gpu=gpu, train=tw)
    t = perf.train_time(ctx, grid.make(1, 1, 8, 1, 1, 1))
    assert t.expert_streaming is not None and t.gemm is not None
    extra = float(t.expert_streaming[0])
    t_bytes = 32 * 48 * 3 * (128 * 3 * 2048 * 768 * 2) / (3.35e12 * 0.75)
    t_flops = 48 * 8 * 4_718_592 / 3_041_656_832 * (float(t.gemm[0]) - extra)
    assert extra == pytest.approx(float(perf.gemm_roofline(t_flops, t_bytes)) - t_flops, rel=1e-6)
    assert extra > 0.25 * t_flops  # near the ridge: the reads add a third or more to the experts' GEMMs
    t8 = perf.train_time(ctx, grid.make(1, 1, 8, 1, 8, 1))
    assert t8.expert_streaming is not None and float(t8.expert_streaming[0]) < 0.05 * extra
    # the JSON puts the extra on the experts' operators; the operators still sum to the GEMM time
    _, d = cli_json("estimate", "--train", "--model", "qwen3-30b-a3b", "--gpu", "h100-sxm", "--dp", "8",
                    "--seq-len", "4096", "--global-batch", "256", "--micro-batch", "1", "--recompute", "none")
    ops, b = d["train"]["gemm_by_operator_s"], d["train"]["breakdown_s"]
    assert sum(ops.values()) == pytest.approx(b["gemm"])
    assert b["expert_weight_streaming"] == pytest.approx(extra)
    # the experts' operators: their share of the FLOP-timed rest (perf.train_gemm_weights) plus all the extra
    w = perf.train_gemm_weights(m, "none", 1, 1, 4096.0)
    share = (w["experts_up"] + w["experts_down"]) / sum(w.values())
    assert ops["experts_up"] + ops["experts_down"] == pytest.approx((b["gemm"] - extra) * share + extra)


def test_expert_all_to_all_bytes_by_hand(cat):
    """Issue 18 item 5: DeepSeek-V3 at EP64 over 8-GPU nodes (8 nodes): group-limited routing (n_group 8,
    topk_group 4: one group per node) caps a token at 4 nodes, 4 x 7/8 = 3.5 of them remote on average, each
    reached once (DeepEP), then 8 copies fan out over NVLink, 7/8 of them to another GPU. Without the limit the
    8 experts would sit on 8 (1 - (7/8)^8) = 5.25 nodes. An fp8 recipe dispatches 1 byte + a 4-byte scale
    per 128 elements, combines in bf16."""
    m = cat.model("deepseek-v3")
    inter, intra = perf.ep_a2a_bytes_per_token(m, np.array([64.0, 8.0]), 8)
    assert inter[0] == pytest.approx(3.5 * 7168) and intra[0] == pytest.approx(8 * 7168 * 7 / 8)
    assert inter[1] == 0.0 and intra[1] == pytest.approx(8 * 7168 * 7 / 8)  # EP8: one node, NVLink only
    free = m.model_copy(update={"moe": m.moe.model_copy(update={"routing_groups": None, "groups_per_token": None})})
    inter_free, _ = perf.ep_a2a_bytes_per_token(free, np.array([64.0]), 8)
    assert inter_free[0] == pytest.approx(8 * (1 - (7 / 8) ** 8) * 7 / 8 * 7168)
    # one fp8 dispatch of 4,096 tokens per GPU on H800: the slower of the network stage (3.5 x 7168 x 1.03125 B
    # per token at the inter-node bus bandwidth) and the NVLink stage (7 x 7168 x 1.03125 B at the intra-node one)
    gpu = cat.gpu("h800")
    ctx = Context(model=m, gpu=gpu, train=TrainWorkload(seq_len=4096, global_batch=1))
    g = grid.make(1, 1, 64, 1, 64)
    t = perf.ep_a2a_time(ctx, g, 4096.0, 1.0 + 4.0 / 128, perf.Eff.of(ctx))
    c = gpu.calibration
    net = 4096 * 3.5 * 7168 * 1.03125 / c.inter_node.busbw_bytes_per_s + c.inter_node.alpha_per_step_s
    link = 4096 * 7 * 7168 * 1.03125 / c.intra_node.busbw_bytes_per_s + c.intra_node.alpha_per_step_s
    assert float(t[0]) == pytest.approx(max(net, link))


def test_deepseek_v3_pretraining_gpu_hours_with_node_limited_fp8_all_to_all(cli_json):
    """DeepSeek-V3 as its report ran it (arXiv 2412.19437, section 3.2: 2,048 H800, PP16, EP64 over 8 nodes,
    ZeRO-1 DP, FP8, 14.8T tokens, 4,096-token sequences; Table 1: 2.664M H800-hours of pre-training): with
    node-limited routing and fp8 dispatch the all-to-alls cost a third of bf16 copies to every expert, and
    overlapping them with computation (DualPipe) hides more."""
    base = ["estimate", "--train", "--model", "deepseek-v3", "--gpu", "h800", "--tp", "1", "--pp", "16", "--dp",
            "128", "--ep", "64", "--seq-len", "4096", "--global-batch", "15360", "--tokens", "14.8T",
            "--train-dtype", "fp8"]
    _, exposed = cli_json(*base)
    _, overlapped = cli_json(*base, "--ep-overlap")
    assert overlapped["settings"]["ep_overlap"] and not exposed["settings"]["ep_overlap"]
    b = exposed["train"]["breakdown_s"]
    assert 0 <= overlapped["train"]["breakdown_s"]["ep_comm"] < b["ep_comm"] < b["compute"]
    assert 0.5 < exposed["train"]["gpu_hours"] / 2.664e6 < 1.2


def test_a_training_dtype_the_gpu_lacks_is_refused_with_the_reason(cli, cli_json):
    """issue 20: fp8 training on an A100 ran silently at the bf16 rate, and --train-dtype fp4 (or any word)
    became bf16. Now: exit 2 naming the GPU's dtypes and the GPUs that have them; a search leaves such GPUs out
    and says so in inputs.excluded_gpus."""
    common = ("estimate", "--train", "--model", "llama-3.1-8b", "--tp", "1", "--dp", "8", "--seq-len", "8k")
    code, _, err = cli(*common, "--gpu", "a100-sxm-80gb", "--train-dtype", "fp8")
    assert code == 2 and "no fp8 tensor cores" in err and "h100-sxm" in err
    code, _, err = cli(*common, "--gpu", "h100-sxm", "--train-dtype", "fp4")
    assert code == 2 and "fp4 training is not modelled" in err and "an H100" in err
    code, _, err = cli(*common, "--gpu", "h100-sxm", "--train-dtype", "fp9")
    assert code == 2 and "bf16, fp16, fp8" in err
    code, _, err = cli(*common, "--gpu", "h100-sxm", "--weight-dtype", "int4")  # a checkpoint format, named as such
    assert code == 2 and "--weight-dtype int4 is a serving checkpoint format" in err
    _, d = cli_json("recommend", "--train", "--model", "llama-3.1-8b", "--seq-len", "4k", "--train-dtype", "fp8",
                    "--gpu", "a100-sxm-80gb", "--gpu", "h100-sxm", "--max-gpus", "8", "--top", "3")
    assert list(d["inputs"]["excluded_gpus"]) == ["a100-sxm-80gb"]
    assert {c["layout"]["gpu"] for c in d["candidates"]} == {"h100-sxm"}


def test_eager_attention_moves_the_scores_through_hbm(cat, cli_json, cli):
    """issue 17 item 3: --attention eager (Megatron 2021: no FlashAttention) runs QK^T, softmax, dropout and the
    product with V through HBM. Per score element forward: 2 (QK^T write) + 2 + 2 (softmax read, write) + 2 + 1
    + 2 (dropout read, mask, output) + 2 (AV read) = 13 bytes for a model trained with dropout (GPT-3), x3 with
    the backward, x4 when selective or full recompute redoes the forward core (Korthikanti et al. 2022 4.1)."""
    m = cat.model("gpt3-175b")
    assert perf.eager_score_bytes(m, 1, 2048, "none") == 96 * 96 * 2048 ** 2 * 13 * 3
    assert perf.eager_score_bytes(m, 1, 2048, "full") == 96 * 96 * 2048 ** 2 * 13 * 4
    assert perf.eager_score_bytes(cat.model("llama-3.1-8b"), 1, 4096, "none") == 32 * 32 * 4096 ** 2 * 8 * 3
    common = ("estimate", "--train", "--model", "gpt3-175b", "--gpu", "a100-sxm-80gb", "--tp", "8", "--pp", "8",
              "--dp", "16", "--seq-len", "2048", "--global-batch", "1536", "--recompute", "none")
    _, flash = cli_json(*common)
    _, eager = cli_json(*common, "--attention", "eager")
    # eager stores the 5as^2b scores of Korthikanti's Table 2 (a = 96, s = 2048, b = 1, over t = 8): per layer
    # 5 x 96 x 2048^2 / 8 bytes, on the first stage's 12 layers x min(pp, micro-batches) = 8 in flight
    extra = eager["memory_per_gpu_bytes"]["activations"] - flash["memory_per_gpu_bytes"]["activations"]
    assert extra == pytest.approx(5 * 96 * 2048 ** 2 / 8 * 12 * 8, rel=1e-9)
    assert eager["train"]["step_time_s"] > flash["train"]["step_time_s"]
    code, _, err = cli("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--attention", "eager")
    assert code == 2 and "--attention applies to training" in err


def test_megatron_paper_settings_are_one_flag(cli_json, cli):
    """issue 18: the 2021-2022 Megatron papers' settings under --framework (frameworks/*.yaml, each value with
    its source). Korthikanti et al. 2022's activation table for GPT-3 175B (a = 96, h = 12288, s = 2048, b = 1,
    t = 8; published-figures 1.4): 0.334 GiB per layer with TP + SP, 0.100 GiB with TP + SP + selective
    recompute; plus the last stage's fp32 logits 4 s b v / t (v = 51,200)."""
    code, out, _ = cli("frameworks", "--format", "json")
    profiles = {f["name"]: f for f in json.loads(out)["frameworks"]}
    assert code == 0 and {"megatron-2021", "megatron-2022"} <= set(profiles)
    assert all("[" in s["source"] for s in profiles["megatron-2021"]["settings"].values())  # every value tagged
    one = ("estimate", "--train", "--model", "gpt3-175b", "--gpu", "a100-sxm-80gb", "--tp", "8", "--seq-len", "2048",
           "--global-batch", "1", "--framework", "megatron-2022")
    logits = 4 * 2048 * 51200 / 8
    for flags, gib in ((("--recompute", "none"), 0.334), ((), 0.100)):
        _, d = cli_json(*one, *flags)
        assert (d["memory_per_gpu_bytes"]["activations"] - logits) / 96 / 2**30 == pytest.approx(gib, abs=5e-4)
    _, d = cli_json(*one)
    assert {k: d["settings"][k] for k in ("attention", "sequence_parallel", "recompute", "zero")} == {
        "attention": "eager", "sequence_parallel": True, "recompute": "selective", "zero": 0}
    # megatron-2021: eager attention with dropout, no sequence parallelism, no distributed optimizer, full
    # recompute; an explicit flag wins over the profile
    _, d21 = cli_json(*one[:-1], "megatron-2021")
    assert {k: d21["settings"][k] for k in ("attention", "sequence_parallel", "recompute", "zero")} == {
        "attention": "eager", "sequence_parallel": False, "recompute": "full", "zero": 0}
    _, mine = cli_json(*one[:-1], "megatron-2021", "--recompute", "selective", "--attention", "flash")
    assert (mine["settings"]["recompute"], mine["settings"]["attention"]) == ("selective", "flash")
    # a search stays within what the framework runs: ZeRO 0, full recompute, v <= 4
    _, rec = cli_json("recommend", "--train", "--model", "gpt3-175b", "--gpu", "a100-sxm-80gb", "--seq-len", "2048",
                      "--global-batch", "1536", "--tokens", "300B", "--max-gpus", "1024", "--framework",
                      "megatron-2021", "--top", "5")
    assert rec["candidates"]
    for c in rec["candidates"]:
        s = c["settings"]
        assert (s["zero"], s["recompute"], s["sequence_parallel"], s["attention"]) == (0, "full", False, "eager")
        assert s["interleave"] <= 4
    code, _, err = cli(*one[:-1], "megatron-2021", "--virtual-stages", "5", "--pp", "8")
    assert code == 2 and "megatron-2021 runs at most 4" in err
    code, _, err = cli(*one[:-1], "nope")
    assert code == 2 and "unknown framework 'nope'" in err and "tpplan frameworks" in err


def test_uneven_pipeline_split_as_the_user_states_it(cli_json, cli):
    """issue 18 item 2: --first-stage-layers / --last-stage-layers (Megatron-core's
    --decoder-first/last-pipeline-num-layers). Llama 3 405B as the Llama 3 paper describes its PP16 split
    (section 3.3.2, one layer fewer on the first and last stages [recalled]): 126 = 7 + 14 x 8 + 7. 1F1B keeps
    pp - i micro-batches in flight on stage i, so the most loaded activations move from the first stage
    (8 layers x 16) to the second (8 layers x 15): x 120/128 exactly."""
    common = ("estimate", "--train", "--model", "llama-3.1-405b", "--gpu", "h100-sxm", "--tp", "8", "--pp", "16",
              "--dp", "64", "--seq-len", "8k", "--global-batch", "2048", "--micro-batch", "1", "--recompute",
              "selective")
    _, even = cli_json(*common)
    _, meta = cli_json(*common, "--first-stage-layers", "7", "--last-stage-layers", "7")
    assert meta["memory_per_gpu_bytes"]["activations"] == pytest.approx(
        even["memory_per_gpu_bytes"]["activations"] * 120 / 128, rel=1e-12)
    assert meta["fits"] and meta["memory_per_gpu_bytes"]["total"] < even["memory_per_gpu_bytes"]["total"]
    # the rest must split evenly over the other stages, as Megatron-core requires
    code, _, err = cli(*common, "--first-stage-layers", "9", "--last-stage-layers", "7")
    assert code == 2 and "110 layers left" in err and "14 stages" in err
    code, _, err = cli(*common[:9], "1", *common[10:], "--first-stage-layers", "7")
    assert code == 2 and "--pp 2 or more" in err


def test_hybrid_sharding_shards_within_a_group_and_replicates_across(cli_json, cli, cat):
    """issue 18 item 4: --shard-group S (PyTorch FSDP HYBRID_SHARD). Model states shard over S ranks instead of
    dp x cp (Rajbhandari et al. 2020: optimizer 12 bytes per parameter / shards); gradients reduce-scatter in
    the group, all-reduce across the dp/S replicas, updated parameters gather back in the group: with one group
    (S = dp x cp) exactly the default's all-reduce (reduce-scatter + all-gather)."""
    common = ("estimate", "--train", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "1", "--dp", "64",
              "--seq-len", "8k", "--global-batch", "512", "--zero", "1")
    _, full = cli_json(*common)
    _, one_group = cli_json(*common, "--shard-group", "64")
    _, node = cli_json(*common, "--shard-group", "8")
    params = full["params"]["per_gpu"]
    assert full["memory_per_gpu_bytes"]["optimizer"] == pytest.approx(params * 12 / 64)
    assert node["memory_per_gpu_bytes"]["optimizer"] == pytest.approx(params * 12 / 8)
    assert one_group["train"]["step_time_s"] == pytest.approx(full["train"]["step_time_s"], rel=1e-12)
    # within a node the states are 8x larger per GPU, and the gradients still cross the network once
    assert node["memory_per_gpu_bytes"]["total"] > full["memory_per_gpu_bytes"]["total"]
    code, _, err = cli(*common, "--shard-group", "3")
    assert code == 2 and "must divide the data-parallel ranks dp x cp = 64" in err
    code, _, err = cli(*common[:-1], "0", "--shard-group", "8")
    assert code == 2 and "needs --zero 1, 2 or 3" in err


def test_a_rounded_prime_global_batch_is_flagged(cli_json):
    """--global-batch-tokens 4M with --seq-len 4k (4,000 tokens: lower-case k is decimal) is 1,048.6 sequences,
    rounded to 1,049, a prime: no data parallelism can split it and the search answered TP8 PP32 DP1 at 4.9 s a
    step without a word, where 4K (4,096) gives 1,024 sequences and TP1 DP256 at 1.3 s. The result now says so."""
    args = ("recommend", "--train", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--gpus", "256",
            "--global-batch-tokens", "4M", "--tokens", "1T", "--top", "1")
    _, dec = cli_json(*args, "--seq-len", "4k")
    assert dec["inputs"]["global_batch"] == 1049
    assert "rounded to 1,049" in dec["notes"][0] and "1, 1049" in dec["notes"][1]
    assert "--seq-len 4K (4,096 tokens, binary) it would be 1,024" in dec["notes"][0]
    _, binary = cli_json(*args, "--seq-len", "4K")
    assert binary["notes"] == [] and binary["candidates"][0]["layout"]["dp"] == 256


def test_a_rounded_global_batch_says_what_binary_k_would_give(cli_json):
    """--global-batch-tokens 16M with --seq-len 8k (8,000 tokens) is 2,097.2 sequences, rounded to 2,097 = 3^2 x
    233: not prime, so the few-divisors note stays silent, yet data parallelism can only take 1, 3, 9, 233, 699
    or 2,097 and 96% of a 1,024-GPU search is rejected as not dividing it (the winner ran 504 GPUs as TP8 PP7
    DP9). The rounding note names the divisors and what --seq-len 8K would give: 16,777,216 / 8,192 = 2,048."""
    args = ("recommend", "--train", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--max-gpus", "1024",
            "--global-batch-tokens", "16M", "--tokens", "15T", "--top", "1")
    _, dec = cli_json(*args, "--seq-len", "8k")
    assert dec["inputs"]["global_batch"] == 2097 and len(dec["notes"]) == 1
    assert "rounded to 2,097 sequences per step (divisible by 1, 3, 9, 233, 699, 2097)" in dec["notes"][0]
    assert "--seq-len 8K (8,192 tokens, binary) it would be 2,048" in dec["notes"][0]
    _, binary = cli_json(*args, "--seq-len", "8K")
    assert binary["inputs"]["global_batch"] == 2048 and binary["notes"] == []


def test_allgather_context_parallelism_exposes_the_whole_kv_per_layer(cat, cli_json):
    """issue 18 item 3: --cp-comm-type allgather (Megatron-core; the Llama 3 paper's CP) gathers every layer's
    whole K/V before the attention and reduce-scatters the gradients after, unhidden. Llama-3.1-8B, 256K
    tokens (262,144), TP4 CP8: K/V per token and layer 2 x 8 heads x 128 x 2 B = 4,096 B, over min(tp, kv
    heads) = 4 ranks 1,024 B, x 32,768 tokens per CP rank = 33.5 MB; the gathered whole x 8; per step 32
    layers x 4 micro-batches of an all-gather plus a reduce-scatter of it (nccl-tests sizes)."""
    from tpplan.engine import comm

    common = ("estimate", "--train", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "4", "--cp", "8",
              "--seq-len", "256K", "--global-batch", "4")
    _, ring = cli_json(*common)
    _, ag = cli_json(*common, "--cp-comm-type", "allgather")
    whole = 1024 * 32768 * 8
    gpu = cat.gpu("h100-sxm")
    one = sum(float(comm.collective_time(gpu, op, np.array([float(whole)]), np.array([8.0]),
                                         stride=np.array([4.0]))[0]) for op in ("all-gather", "reduce-scatter"))
    assert ag["train"]["breakdown_s"]["cp_comm"] == pytest.approx(32 * 4 * one, rel=1e-9)
    assert ag["train"]["breakdown_s"]["cp_comm"] > ring["train"]["breakdown_s"]["cp_comm"]


def test_ring_context_parallelism_passes_kv_blocks_at_the_slowest_hop(cat, cli_json):
    """issue 18 item 3, ring attention (--cp-comm-type p2p, the default): Llama-3.1-8B at 8,192 tokens, CP 4.
    Per layer and micro-batch each rank passes its K/V block cp - 1 = 3 times forward and twice that backward:
    K/V per token and layer 2 x 8 KV heads x 128 x 2 B = 4,096 B, over min(tp, 8) ranks, x 2,048 tokens a CP
    rank (TP 4: 2 MiB a pass). Only what the block attention (this rank's 2,048 queries over the sequence, at
    FlashAttention-2's measured rate for 2,048-token blocks) does not cover shows: max(0, 3 t - a) +
    max(0, 6 t - 2.5 a), x 32 layers x 4 micro-batches. The ring advances at its slowest hop: at TP 4 the CP
    ranks sit on GPUs 0, 4, 8, 12 of 8-GPU nodes, so two hops cross nodes (the pass at the inter-node p2p
    rate); at TP 2 (GPUs 0, 2, 4, 6) the ring stays on NVLink and hides behind the attention."""
    from tpplan.engine import attention, comm

    gpu, m = cat.gpu("h100-sxm"), cat.model("llama-3.1-8b")
    common = ("estimate", "--train", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--cp", "4", "--seq-len",
              "8192", "--global-batch", "4")
    for tp, stride in ((4, 8.0), (2, 2.0)):
        _, d = cli_json(*common, "--tp", str(tp))
        block = 4096 / tp * 2048
        t = float(comm.collective_time(gpu, "p2p", np.array([block]), np.array([2.0]), stride=np.array([stride]))[0])
        a = (float(perf.attention_flops_per_token(m, 8192, causal=True)) / 32 * 2048 / tp
             / float(attention.fwd_bwd_flops_per_s(gpu, 128, False, 2048.0)))
        exposed = max(0.0, 3 * t - a) + max(0.0, 6 * t - 2.5 * a)
        assert d["train"]["breakdown_s"]["cp_comm"] == pytest.approx(32 * 4 * exposed, rel=1e-9, abs=1e-12)
        if tp == 4:
            assert exposed > 0  # off the node the passes outrun the block attention
        else:
            assert exposed == 0  # on NVLink they hide behind it


def test_zero3_moves_three_parameter_volumes_per_micro_batch(cat, cli_json):
    """issue 18 item 4, hand count: ZeRO-3 / FSDP FULL_SHARD gathers every layer's bf16 parameters for the forward
    and again for the backward of each micro-batch and reduce-scatters its gradients, and gathers nothing after the
    optimizer step (Rajbhandari et al. 2020 section 7.2.2: 3 x the parameters, 1.5 x data parallelism's 2 x).
    Llama-3.1-70B (70,553,706,496 parameters) over 64 H100 (8 nodes), 512 tokens, 256 sequences: 4 micro-batches
    of one sequence each; per micro-batch 2 all-gathers of 141.1 GB (2 bytes a parameter, nccl-tests sizes: the
    gathered whole) and one reduce-scatter of the 141.1 GB of bf16 gradients, each as 80 collectives of one
    layer's 1.76 GB (FSDP wraps each block), hidden behind that micro-batch's compute only up to its length
    (here they are not: 512-token micro-batches are short)."""
    from tpplan.engine import comm

    _, r = cli_json("estimate", "--train", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--dp", "64",
                    "--seq-len", "512", "--global-batch", "256", "--zero", "3")
    n = r["params"]["per_gpu"]
    assert n == 70_553_706_496
    gpu = cat.gpu("h100-sxm")
    one = {op: 80 * float(comm.collective_time(gpu, op, np.array([2.0 * n / 80]), np.array([64.0]))[0])
           for op in ("all-gather", "reduce-scatter")}
    per_micro = 2 * one["all-gather"] + one["reduce-scatter"]
    b = r["train"]["breakdown_s"]
    assert per_micro > b["compute"] / 4  # exposed: the hand count below is the whole formula
    assert b["dp_comm"] == pytest.approx(4 * (per_micro - b["compute"] / 4), rel=1e-9)
    # the old count (an all-reduce of the gradients plus 2 gathers per micro-batch) charged a fourth volume
    assert b["dp_comm"] < 4 * per_micro


def test_framework_defaults_reduce_gradients_as_the_framework_does(cat, cli_json, cli):
    """issue 18 item 1: the framework profiles' gradient reduction, by hand count (nccl-tests sizes).
    Llama-3.1-8B (8,030,261,248 parameters) over 64 H100 (8 nodes), 8k tokens, 512 sequences.
    - megatron-core's bare defaults: no distributed optimizer (ZeRO 0), gradients all-reduced in fp32 (arguments.py
      turns accumulate_allreduce_grads_in_fp32 on under --bf16) after the backward (--overlap-grad-reduce off):
      the all-reduce of 4 x 8.03e9 bytes is wholly exposed;
    - nemo's recipes: the distributed optimizer (ZeRO-1) reduce-scatters the fp32 gradients and all-gathers the
      bf16 parameters, behind the last micro-batch's backward (overlap_grad_reduce on): exposed beyond it;
    - torchtitan: FSDP2 (ZeRO-3) with reduce_dtype float32: fp32 gradients sharded over the 64 ranks."""
    from tpplan.engine import comm

    common = ("estimate", "--train", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--dp", "64", "--seq-len", "8k",
              "--global-batch", "512")
    gpu = cat.gpu("h100-sxm")

    def coll(op: str, size: float) -> float:
        return float(comm.collective_time(gpu, op, np.array([size]), np.array([64.0]))[0])

    _, mc = cli_json(*common, "--framework", "megatron-core")
    n = mc["params"]["per_gpu"]
    assert n == 8_030_261_248
    assert (mc["settings"]["zero"], mc["settings"]["grad_reduce_dtype"], mc["settings"]["overlap_grad_reduce"]) == (
        0, "fp32", False)
    assert mc["train"]["breakdown_s"]["dp_comm"] == pytest.approx(coll("all-reduce", 4.0 * n), rel=1e-9)
    assert mc["memory_per_gpu_bytes"]["gradients"] == pytest.approx(4.0 * n)

    _, nemo = cli_json(*common, "--framework", "nemo")
    assert (nemo["settings"]["zero"], nemo["settings"]["overlap_grad_reduce"]) == (1, True)
    t = coll("reduce-scatter", 4.0 * n) + coll("all-gather", 2.0 * n)
    b = nemo["train"]["breakdown_s"]
    micro = nemo["settings"]["micro_batches"]
    assert b["dp_comm"] == pytest.approx(max(0.1 * t, t - b["compute"] / micro * 2 / 3), rel=1e-9)
    # an explicit flag wins over the profile: bf16 and overlapped is the tpplan default, byte for byte
    _, plain = cli_json(*common, "--zero", "0")
    _, mine = cli_json(*common, "--framework", "megatron-core", "--grad-reduce-dtype", "bf16",
                       "--overlap-grad-reduce")
    assert mine["train"]["step_time_s"] == plain["train"]["step_time_s"]

    _, tt = cli_json(*common, "--framework", "torchtitan")
    assert (tt["settings"]["zero"], tt["settings"]["grad_reduce_dtype"]) == (3, "fp32")
    assert tt["memory_per_gpu_bytes"]["gradients"] == pytest.approx(4.0 * n / 64)
    # every profile loads, each value with a source tag
    code, out, _ = cli("frameworks", "--format", "json")
    profiles = {f["name"]: f for f in json.loads(out)["frameworks"]}
    assert {"megatron-core", "nemo", "torchtitan", "deepspeed", "llm-foundry"} <= set(profiles)
    assert all("[" in s["source"] for p in profiles.values() for s in p["settings"].values())
    code, _, err = cli(*common, "--grad-reduce-dtype", "fp16")
    assert code == 2 and "bf16 or fp32" in err
    code, _, err = cli("recommend", "--model", "llama-3.1-8b", "--no-overlap-grad-reduce")
    assert code == 2 and "--overlap-grad-reduce applies to training" in err


def test_without_sequence_parallelism_tp_still_shards_the_activation_and_rotary(cat, cli_json):
    """issue 17 item 4: elementwise bytes split into what tensor parallelism always shards (the MLP activation of
    the rank's ffn columns, the rotary of its heads) and what every TP rank repeats unless sequence parallelism
    splits it (norms, residual adds; Korthikanti et al. 2022 section 4.2.2). GPT-3 175B (h 12288, 96 layers,
    GELU ffn 49152, learned positions) at TP 8, 8 x 2,048 tokens, selective recompute (3 passes), bf16:
    norms + residuals 10 h x 96 x 2 B per token, activation 2 x 49152 x 96 x 2 B (/ 8), at the calibrated HBM
    rate (the layout does not fit 80 GB; its time is still reported)."""
    gpu = cat.gpu("a100-sxm-80gb")
    bw = gpu.hbm.bandwidth_bytes_per_s * gpu.calibration.hbm.value
    repl, act = 10 * 12288 * 96 * 2, 2 * 49152 * 96 * 2
    common = ("estimate", "--train", "--model", "gpt3-175b", "--gpu", "a100-sxm-80gb", "--tp", "8",
              "--seq-len", "2048", "--global-batch", "8", "--micro-batch", "1", "--recompute", "selective")
    for flag, repl_shards in (("--no-sequence-parallel", 1), ("--sequence-parallel", 8)):
        _, d = cli_json(*common, flag)
        # + the loss: 6 bytes a logit of the rank's vocab shard (51,200 / 8), perf.LOSS_BYTES_PER_LOGIT
        expected = 8 * 2048 * (3 * (act / 8 + repl / repl_shards) + 6 * 51200 / 8) / bw
        assert d["train"]["breakdown_s"]["elementwise"] == pytest.approx(expected, rel=1e-9)


def test_eager_elementwise_ops_run_at_the_measured_eager_fraction(cat, cli_json):
    """issue 17 item 4 / issue 18 item 1: frameworks that run the norms, residual adds and activation as PyTorch
    eager ops (llm-foundry, torchtitan without compile, DeepSpeed with Hugging Face code) move the same bytes at
    perf.EAGER_ELEMENTWISE_FRACTION = 0.43 of peak HBM (the median of Liger-Kernel's H100 torch rows), fused
    kernels at the GPU's calibrated efficiency (H100: 0.75). MPT-1B (h 2048, 24 layers, GELU 8192, learned
    positions) on 8 H100, 8 x 2,048 tokens, no recompute: 10 h + 2 x 8192 elements x 2 B per token and layer,
    x 3 passes, and the loss: a fused one's 6 bytes a logit at the same rate, PyTorch's eager fp32 cross entropy's 40
    (upcast 6, log_softmax 12, nll_loss's dense gradient 4, log_softmax backward 12, cast back 6) at the GPU's
    calibrated efficiency, its kernels plain streaming ones."""
    from tpplan.engine import perf

    gpu = cat.gpu("h100-sxm")
    bw, hbm = gpu.hbm.bandwidth_bytes_per_s, gpu.calibration.hbm.value
    per_token = (10 * 2048 + 2 * 8192) * 24 * 2
    common = ("estimate", "--train", "--model", "mpt-1b", "--gpu", "h100-sxm", "--dp", "8", "--seq-len", "2048",
              "--global-batch", "64", "--micro-batch", "8", "--recompute", "none")
    expect = {}
    for how, frac, loss in (("fused", hbm, 6), ("eager", perf.EAGER_ELEMENTWISE_FRACTION, 40)):
        _, d = cli_json(*common, "--elementwise", how)
        # + the loss (vocab 50,368)
        expect[how] = 8 * 2048 * (3 * per_token / (bw * frac) + loss * 50368 / (bw * hbm))
        assert d["train"]["breakdown_s"]["elementwise"] == pytest.approx(expect[how], rel=1e-9)
        assert d["settings"]["elementwise"] == how
    # llm-foundry's profile runs them eagerly; a flag wins
    _, fw = cli_json(*common, "--framework", "llm-foundry")
    assert fw["settings"]["elementwise"] == "eager"
    assert fw["train"]["breakdown_s"]["elementwise"] == pytest.approx(expect["eager"], rel=1e-9)
    _, mine = cli_json(*common, "--framework", "llm-foundry", "--elementwise", "fused")
    assert mine["train"]["breakdown_s"]["elementwise"] == pytest.approx(expect["fused"], rel=1e-9)


def test_fp8_training_casts_every_gemm_operand(cat, cli_json):
    """issue 17 item 4: an fp8 recipe casts every activation entering a GEMM (forward) and every output gradient
    (backward) to fp8 with its transpose (Transformer Engine's cast-transpose: read 2 B, write 1 + 1 B), the LM
    head staying bf16. Llama-3.1-8B (32 layers, h 4096, 32 + 2 x 8 heads of 128, SwiGLU 14336) at TP 1, per token:
    forward 32 x (4096 + 4096 + 4096 + 14336), backward 32 x (6144 + 4096 + 2 x 14336 + 4096) elements, x 4 B,
    through HBM at the calibrated efficiency: the fp8 step's elementwise time less the bf16 one's."""
    gpu = cat.gpu("h100-sxm")
    bw = gpu.hbm.bandwidth_bytes_per_s * gpu.calibration.hbm.value
    per_token = 4 * 32 * ((4096 + 4096 + 4096 + 14336) + (6144 + 4096 + 2 * 14336 + 4096))
    common = ("estimate", "--train", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--dp", "8", "--seq-len", "4K",
              "--global-batch", "64", "--recompute", "selective")
    _, bf = cli_json(*common, "--train-dtype", "bf16")
    _, f8 = cli_json(*common, "--train-dtype", "fp8")
    extra = f8["train"]["breakdown_s"]["elementwise"] - bf["train"]["breakdown_s"]["elementwise"]
    assert extra == pytest.approx(64 * 4096 * per_token / 8 / bw, rel=1e-9)


def test_decode_all_to_all_runs_deepep_low_latency_kernels(cat):
    """Serving's decode tokens go through DeepEP's low-latency kernels (SGLang's DeepEP auto mode): every top-k copy
    sent on its own, k (n - 1) / n of them over the NIC and k / n x (e - 1) / e over NVLink, plus
    perf.DEEPEP_LL_FLOOR_S (40 us, fitted on DeepEP's low-latency table: hardware/calibration/deepep-ll.csv).
    DeepSeek-V3 (hidden 7168, top-8) at EP 32 on H800 (4 nodes), 128 tokens a rank, fp8 dispatch (1 B + a 4-byte
    scale per 128): 8 x 3/4 = 6 remote copies per token: 128 x 6 x 7168 x 1.03125 B at the inter-node bus
    bandwidth, + 40 us; DeepEP measured 155 us."""
    m = cat.model("deepseek-v3")
    inter, intra = perf.ep_a2a_bytes_per_token(m, np.array([32.0]), 8, low_latency=True)
    assert inter[0] == pytest.approx(6 * 7168) and intra[0] == pytest.approx(8 / 4 * 7 / 8 * 7168)
    gpu = cat.gpu("h800")
    ctx = Context(model=m, gpu=gpu, serve=ServeWorkload(ctx=4096, input_len=2048, output_len=128))
    g = grid.make(1, 1, 32, 1, 32)
    t = float(perf.ep_a2a_time(ctx, g, 128.0, 1.0 + 4.0 / 128, perf.Eff.of(ctx), low_latency=True)[0])
    expect = 128 * 6 * 7168 * 1.03125 / gpu.calibration.inter_node.busbw_bytes_per_s + perf.DEEPEP_LL_FLOOR_S
    assert t == pytest.approx(expect) and t == pytest.approx(155e-6, rel=0.05)
    # a decode step of 128 sequences a rank pays it per MoE layer, dispatch and combine (bf16 weights: both in
    # bf16); a step of prompt tokens only, the normal kernels
    eff = perf.Eff.of(ctx)
    ll_bf16 = m.num_moe_layers * 2 * float(perf.ep_a2a_time(ctx, g, 128.0, 2.0, eff, low_latency=True)[0])
    dec = perf.step_pieces(ctx, g, 128.0, 0.0, terms=True).terms
    assert dec is not None and float(dec["ep"][0]) == pytest.approx(ll_bf16)
    normal = m.num_moe_layers * 2 * float(perf.ep_a2a_time(ctx, g, 128.0, 2.0, eff)[0])
    pre = perf.step_pieces(ctx, g, 0.0, 128.0, terms=True).terms
    assert pre is not None and float(pre["ep"][0]) == pytest.approx(normal) and normal < ll_bf16


def test_a_training_run_without_a_global_batch_takes_a_stated_one(cli_json):
    """Without --global-batch or --global-batch-tokens the search used to run at a global batch of one sequence
    (data parallelism impossible); it now takes the power of two of sequences nearest Llama 2's 4M-token batch
    (Touvron et al. 2023, section 2.2: 1,024 sequences of 4,096 tokens) and says so in its notes."""
    from tpplan.plan.train import default_global_batch

    _, res = cli_json("recommend", "--train", "--model", "llama-8b", "--tokens", "1T", "--gpu", "h100",
                      "--max-gpus", "64", "--top", "1")
    assert res["inputs"]["global_batch"] == 1024 and res["inputs"]["seq_len"] == 4096
    assert any("no --global-batch" in n for n in res["notes"])
    assert res["candidates"][0]["layout"]["dp"] > 1
    # estimate: the same batch as a multiple of what the layout splits it over (micro-batch x dp)
    _, est = cli_json("estimate", "--train", "--model", "llama-8b", "--gpu", "h100", "--tp", "1", "--dp", "12",
                      "--ctx", "4k", "--micro-batch", "2")
    assert est["inputs"]["global_batch"] % 24 == 0 and "BATCH_NOT_DIVISIBLE" not in est["reasons"]
    assert est["inputs"]["global_batch"] == default_global_batch(4000, 24) == 1032
    # a stated batch is kept, without the note
    _, given = cli_json("recommend", "--train", "--model", "llama-8b", "--tokens", "1T", "--gpu", "h100",
                        "--max-gpus", "64", "--top", "1", "--global-batch", "256")
    assert given["inputs"]["global_batch"] == 256 and not any("no --global-batch" in n for n in given.get("notes", []))


@given(seq=st.integers(1, 2_000_000), multiple=st.integers(1, 4096))
def test_default_global_batch_is_a_multiple_near_4m_tokens(seq, multiple):
    from tpplan.plan.train import DEFAULT_BATCH_TOKENS, default_global_batch

    b = default_global_batch(seq, multiple)
    assert b >= multiple and b % multiple == 0
    n = default_global_batch(seq)  # a power of two within a factor sqrt(2) of 4M tokens (or one sequence)
    assert n & (n - 1) == 0
    assert n == 1 or DEFAULT_BATCH_TOKENS / 2**0.5 <= n * seq <= DEFAULT_BATCH_TOKENS * 2**0.5


def test_estimate_takes_the_global_batch_in_tokens_as_recommend_does(cli_json, cli):
    """estimate --train --global-batch-tokens: the same rounding as recommend --train (4M = 4,194,304 tokens of
    4,096-token sequences = 1,024 sequences), said in the notes when it rounds; one of the two batch flags only,
    and neither on a serving estimate."""
    _, est = cli_json("estimate", "--train", "--model", "llama-8b", "--gpu", "h100", "--dp", "8", "--ctx", "4K",
                      "--global-batch-tokens", "4M")
    assert est["inputs"]["global_batch"] == 1024 and "notes" not in est and not est["reasons"]
    _, est = cli_json("estimate", "--train", "--model", "llama-8b", "--gpu", "h100", "--dp", "8", "--ctx", "4k",
                      "--global-batch-tokens", "4M")
    assert est["inputs"]["global_batch"] == 1049 and "rounded to 1,049 sequences" in est["notes"][0]
    assert est["reasons"] == ["BATCH_NOT_DIVISIBLE"]
    code, _, err = cli("estimate", "--train", "--model", "llama-8b", "--gpu", "h100", "--ctx", "4k",
                       "--global-batch", "8", "--global-batch-tokens", "1M")
    assert code == 2 and "give the global batch once" in err
    code, _, err = cli("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "4k", "--global-batch", "8")
    assert code == 2 and "--global-batch applies to training" in err
