"""Time model, recommend ranking and training bookkeeping."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpplan.engine import cost, grid, perf
from tpplan.engine.workload import Context, ServeWorkload, TrainWorkload
from tpplan.plan import serve as planner
from tpplan.plan import train as training


def _ctx(cat, model="llama-3.1-70b", gpu="h100-sxm", **kw):
    w = ServeWorkload(ctx=kw.pop("ctx", 8192), input_len=kw.pop("input_len", 1000),
                      output_len=kw.pop("output_len", 200), **kw)
    return Context(model=cat.model(model), gpu=cat.gpu(gpu), serve=w)


def test_decode_units_hand_computed(cat):
    # TP=1 llama-70b bf16 batch 1: bytes read ~= 141.1 GB of weights less the input embedding table
    # (128,256 x 8,192 x 2 B = 2.10 GB, of which a step gathers one row; the untied LM head is read whole)
    # + KV; at 3.35 TB/s x 0.75 the step takes 139.0e9 / 2.5125e12 = 55.3 ms of HBM time (plus graph-replay gaps
    # of 0.58 us after each of a layer's 10 kernels, 80 x 5.8 us, and a paged decode-attention kernel per layer
    # with its 10 us floor: 1-sequence x 32-token FlashInfer and PagedAttention calls take 10.4 us on H100,
    # hardware/calibration/flashinfer-decode.csv)
    ctx = _ctx(cat)
    st = perf.serve_time(ctx, grid.make(tp=1))
    hbm = (141.1e9 - 128_256 * 8_192 * 2) / (3.35e12 * 0.75)
    assert st.tpot[0] == pytest.approx(hbm + 80 * 10 * 0.58e-6 + 80 * 10e-6, rel=0.01)
    assert st.decode_bound[0] == "memory"
    # prefill of 1000 tokens: the GEMMs, 2 x (69.5e9 - 1.05e9 LM head) matmul params x 1000, plus the LM head of
    # the last token only (the engine samples from it alone) / (989.4e12 x 0.74) = 187 ms, against
    # the 55.3 ms weight read on the smooth GEMM roofline (p = 2.5: x 1.018); then the attention kernels, causal
    # over 500 keys on average: 2 x 500 x (2 x 128) x 64 heads x 80 layers per token, at FlashAttention-3's
    # measured forward rate for a 1,000-token causal prompt (between its 512 and 1,024 points, 292 and 423
    # TFLOP/s, in log length: hardware/calibration/flash-attention-fwd.csv) = 3.1 ms
    head = 128_256 * 8_192
    fl = 2 * (cat.model("llama-3.1-70b").matmul_params_active - head) * 1000 + 2 * head
    tc, tm = fl / (989.4e12 * 0.74), hbm
    fa3 = (292 + (423 - 292) * np.log(1000 / 512) / np.log(2)) * 1e12
    attn = 1000 * 2 * 500 * 256 * 64 * 80 / fa3
    # and the elementwise kernels through HBM, per token: 80 layers x (2 fused add+norms x 4 x 8192 + rotary
    # 2 x (64 + 8) x 128) + silu_and_mul 3 x 28672 x 80, in bf16 = 27.2 MB: 10.8 ms for 1000 tokens
    elem = 1000 * 2 * (80 * (2 * 4 * 8192 + 2 * 72 * 128) + 3 * 28672 * 80) / (3.35e12 * 0.75)
    assert st.ttft[0] == pytest.approx((tc ** 2.5 + tm ** 2.5) ** 0.4 + attn + elem + 80 * 10e-6, rel=0.005)


def test_fp8_weights_change_bytes_and_flop_rate(cat):
    bf = perf.serve_time(_ctx(cat), grid.make(tp=4))
    f8 = perf.serve_time(_ctx(cat, weight_dtype="fp8"), grid.make(tp=4))
    # half the weight bytes, streamed at 0.57 instead of 0.75 of HBM peak (H100 microbenchmarks): the weight
    # part of TPOT scales by 0.5 x 0.75 / 0.57 = 0.66; all-reduces and kernel gaps do not shrink
    assert 0.66 * bf.tpot[0] < f8.tpot[0] < 0.75 * bf.tpot[0]
    assert f8.ttft[0] < bf.ttft[0]
    assert perf.compute_dtype("fp8", cat.gpu("h100-sxm").compute.dense_flops_per_s) == "fp8"
    assert perf.compute_dtype("fp8", cat.gpu("a100-sxm-80gb").compute.dense_flops_per_s) == "bf16"


def test_moe_reads_only_hit_experts(cat):
    assert perf.expected_active_experts(8, 2, 1) == pytest.approx(2.0)
    assert perf.expected_active_experts(256, 8, 1000) == pytest.approx(256, rel=1e-6)
    ctx = _ctx(cat, model="mixtral-8x7b", ctx=4096)
    st = perf.serve_time(ctx, grid.make(tp=2, concurrency=[1, 256]))
    # batch 1 reads ~2/8 experts, batch 256 all of them: the step grows a lot more than KV alone explains
    assert st.tpot[1] > 2.5 * st.tpot[0]


def test_comm_fraction_and_tp_message(cat):
    st = perf.serve_time(_ctx(cat, concurrency=1), grid.make(tp=[1, 8]))
    assert st.tp_allreduce_bytes_per_layer[0] == 0 and st.comm_fraction[0] == 0
    assert st.tp_allreduce_bytes_per_layer[1] == 8192 * 2  # batch 1 x hidden 8192 x bf16
    assert 0 < st.comm_fraction[1] < 1


def test_design_card_command_fits_and_ranks(cat):
    w = ServeWorkload(ctx=128_000, input_len=127_744, output_len=256)
    gpus = [cat.gpus[n].spec for n in cat.gpu_names()]
    res = planner.recommend_serve(cat.model("llama-70b"), gpus, w, planner.Constraints(), planner.Pricing())
    cands = res["candidates"]
    assert cands, res.get("relax")
    for c in cands:
        lay = c["layout"]
        assert c["fits"] and c["feasible"]
        assert lay["gpus"] == lay["tp"] * lay["pp"] * lay["dp"] * lay["cp"]
        assert c["memory_per_gpu_bytes"]["total"] <= c["memory_per_gpu_bytes"]["usable"]
        # 70B bf16 never on one 80 GB GPU
        assert not (lay["gpus"] == 1 and c["memory_per_gpu_bytes"]["capacity"] < 100e9)
    lat = [c["serve"]["request_latency_s"] for c in cands]
    by_gpu: dict[str, list[float]] = {}
    for c, x in zip(cands, lat, strict=True):
        by_gpu.setdefault(c["layout"]["gpu"], []).append(x)
    assert min(lat) == lat[0]
    assert all(v == sorted(v) for v in by_gpu.values())
    # down the list, each GPU type only reappears on fewer GPUs (slower but cheaper): the B200 TP=8 PP=2..4
    # variants (same latency on 2-4x the GPUs) no longer fill ranks 2-4
    fewest: dict[str, int] = {}
    for c in cands:
        lay = c["layout"]
        assert lay["gpus"] < fewest.get(lay["gpu"], 10**9), lay
        fewest[lay["gpu"]] = lay["gpus"]
    assert len(fewest) >= 4
    assert res["search"]["layouts_evaluated"] > 1000
    assert res["serving_command"].startswith("vllm serve meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size")
    assert "--max-model-len 128000" in res["serving_command"]
    assert res["rejected"]["WEIGHTS_DONT_FIT"] > 0


def test_a_search_times_the_idle_replica_only_for_the_gpu_types_it_prints(cat, monkeypatch):
    """perf.serve_time (an idle replica's prefill and decode: serve.idle, the comm fields, --breakdown) feeds no
    ranking or rejection, so recommend runs it once per GPU type among the candidates, not for the nineteen it
    searches (a third of the design card's search when it did); the printed figures are the same either way."""
    calls: list[str] = []
    real = perf.serve_time

    def counted(ctx, g, eff=None):
        calls.append(ctx.gpu.name)
        return real(ctx, g, eff)

    monkeypatch.setattr(perf, "serve_time", counted)
    w = ServeWorkload(ctx=128_000, input_len=127_744, output_len=256)
    gpus = [cat.gpus[n].spec for n in cat.gpu_names()]
    res = planner.recommend_serve(cat.model("llama-70b"), gpus, w, planner.Constraints(), planner.Pricing())
    printed = {c["layout"]["gpu"] for c in res["candidates"]}
    assert sorted(calls) == sorted(printed) and len(printed) < len(gpus)
    # the same idle figures as the layout estimated on its own (its own one-row grid)
    for c in res["candidates"][:3]:
        lay = c["layout"]
        one = planner.estimate_serve(cat.model("llama-70b"), cat.gpu(lay["gpu"]), w, lay["tp"], lay["pp"],
                                     lay["dp"], lay["cp"], lay["ep"])
        assert c["serve"]["idle"] == one["serve"]["idle"]
        assert c["comm"] == one["comm"]


def _search(cat, objective="cost", price=None, **cons):
    w = ServeWorkload(ctx=8192, input_len=2000, output_len=500)
    gpus = [cat.gpu("h100-sxm"), cat.gpu("h200"), cat.gpu("a100-sxm-80gb")]
    return planner.recommend_serve(cat.model("llama-3.1-8b"), gpus, w, planner.Constraints(max_gpus=16, **cons),
                                   planner.Pricing(overrides=price or {}), objective, top=30)


def test_price_override_changes_cost_ranking(cat):
    base = _search(cat)
    cheap = _search(cat, price={"a100-sxm-80gb": 0.01})
    assert cheap["candidates"][0]["layout"]["gpu"] == "a100-sxm-80gb"
    assert cheap["candidates"][0]["cost"]["usd_per_gpu_hour"] == 0.01
    keys = [c["cost"]["usd_per_million_tokens"] for c in base["candidates"]]
    assert keys[0] == min(keys)


def test_slo_filters_remove_exactly_the_violators(cat):
    w = ServeWorkload(ctx=8192, input_len=2000, output_len=500)
    gpus = [cat.gpu("h100-sxm"), cat.gpu("h200"), cat.gpu("a100-sxm-80gb")]
    m = cat.model("llama-3.1-8b")
    free = planner.search_serve(m, gpus, w, planner.Constraints(max_gpus=16), planner.Pricing(), "latency")
    # the SLO holds at each row's operating point (the closed loop at its concurrency)
    tpot = np.concatenate([e.load.load.tpot for e in free.evals])
    ok_free = np.concatenate([e.reasons == 0 for e in free.evals])
    slo = float(np.median(tpot[ok_free]))
    cut = planner.search_serve(m, gpus, w, planner.Constraints(max_gpus=16, tpot_slo_s=slo), planner.Pricing(),
                               "latency")
    ok_cut = np.concatenate([e.reasons == 0 for e in cut.evals])
    violators = ok_free & (tpot > slo)
    assert violators.any() and (ok_free & ~violators).any()
    assert np.array_equal(ok_cut, ok_free & ~violators)  # exactly the violators go, nothing else
    bits = np.concatenate([e.reasons for e in cut.evals])
    assert np.array_equal((bits & int(grid.Reason.TPOT_SLO)) != 0, tpot > slo)
    res = _search(cat, "latency", tpot_slo_s=slo)
    assert res["candidates"] and all(c["serve"]["tpot_s"] <= slo for c in res["candidates"])
    assert res["rejected"]["TPOT_SLO"] == int(np.count_nonzero(tpot > slo))


def test_explain_names_the_layout_that_keeps_a_feasible_one_off_the_list(cat):
    w = ServeWorkload(ctx=128_000, input_len=127_744, output_len=256)
    res = planner.recommend_serve(cat.model("llama-70b"), [cat.gpu("b200")], w, planner.Constraints(),
                                  planner.Pricing(), explain_spec="b200 tp=8 pp=2")
    (line,) = res["explain"]
    assert line.startswith("b200 tp=8 pp=2 dp=1 cp=1 ep=1: feasible")
    assert "not listed: tp=8 pp=1 dp=1 cp=1 ep=1 ranks as well or better" in line and "fewer GPUs (8)" in line
    shown = planner.recommend_serve(cat.model("llama-70b"), [cat.gpu("b200")], w, planner.Constraints(),
                                    planner.Pricing(), explain_spec="b200 tp=8")
    assert shown["explain"][0].endswith("listed at rank 1") and shown["candidates"][0]["layout"]["tp"] == 8


def test_explain_quotes_the_figures_the_slos_and_ranking_were_judged_on(cat):
    # an SLO rejection quotes the p99 value the row failed on (above the SLO, which it names), not the idle
    # replica's TTFT/TPOT (which can sit below the SLO); a feasible row quotes the figure it is ranked on
    w = ServeWorkload(ctx=8192, input_len=7_744, output_len=256, concurrency=64)
    cons = planner.Constraints(ttft_slo_s=1.0, tpot_slo_s=0.040, slo_percentile=99)
    res = planner.recommend_serve(cat.model("llama-70b"), [cat.gpu("h100")], w, cons, planner.Pricing(),
                                  explain_spec="h100 tp=8")
    head, *details = res["explain"]
    assert "TPOT_SLO" in head
    (tpot_line,) = [d for d in details if "TPOT" in d]
    value, unit = tpot_line.split("p99 TPOT ")[1].split(" above")[0].split()
    assert unit == "ms" and float(value) > 40 and tpot_line.endswith("above the SLO (40 ms)")
    s = planner.search_serve(cat.model("llama-70b"), [cat.gpu("h100")], w, cons, planner.Pricing())
    (ev,) = s.evals
    row = np.flatnonzero((ev.g.tp == 8) & (ev.g.pp == 1) & (ev.g.cp == 1) & (ev.g.ep == 1))[0]
    assert float(value) == pytest.approx(ev.load.slo_tpot[row] * 1e3, rel=5e-3)
    assert ev.t.tpot[row] < 0.040  # the idle replica's TPOT, which the old line quoted, is within the SLO
    # a feasible row: the request latency under load that objective_key ranks on
    ok = planner.recommend_serve(cat.model("llama-70b"), [cat.gpu("h100")], ServeWorkload(
        ctx=8192, input_len=1000, output_len=200), planner.Constraints(), planner.Pricing(), explain_spec="h100 tp=4")
    c = next(c for c in ok["candidates"] if c["layout"]["tp"] == 4 and c["layout"]["pp"] == 1)
    latency = float(ok["explain"][0].split("request latency ")[1].split(" s")[0])
    assert latency == pytest.approx(c["serve"]["request_latency_s"], rel=5e-3)


def test_nothing_feasible_says_what_to_relax(cat):
    w = ServeWorkload(ctx=131_072, input_len=100_000, output_len=256)
    res = planner.recommend_serve(cat.model("llama-3.1-405b"), [cat.gpu("l40s")], w,
                                  planner.Constraints(max_gpus=4), planner.Pricing())
    assert res["candidates"] == []
    assert any("--max-gpus" in h for h in res["relax"])


@pytest.mark.parametrize("args", [
    # 70B bf16 at 128k cannot sit on one 80 GB GPU, and fp8 alone is not enough (70 GB + KV > 72 GB usable)
    ["--model", "llama-70b", "--ctx", "128k", "--gpu", "h100", "--max-gpus", "1"],
    # a TPOT below any H100 layout's
    ["--model", "llama-70b", "--ctx", "32k", "--gpu", "h100", "--tpot-slo", "5ms"],
    # two limits that only fail together
    ["--model", "llama-70b", "--ctx", "32k", "--gpu", "h100", "--ttft-slo", "100ms", "--budget-usd-per-hour", "3"],
    ["--model", "llama-3.1-405b", "--ctx", "128k", "--gpu", "l40s", "--max-gpus", "4"],
    # above the model's 131,072 positions (vLLM refuses it), alone and with too few GPUs as well
    ["--model", "llama-70b", "--ctx", "1M"],
    ["--model", "llama-70b", "--ctx", "1M", "--gpu", "h100", "--max-gpus", "2"],
    # a rate whose replicas need more GPUs than --max-gpus (the report named only RATE_NEEDS_MORE_GPUS)
    ["--model", "llama-70b", "--ctx", "8k", "--rate", "10/s", "--gpu", "a100-sxm-80gb"],
])
def test_every_relax_hint_is_enough_on_its_own(cli_json, apply_hint, args):
    """Each hint printed when nothing is feasible was tried: applying it (values as printed, rounded up)
    gives at least one candidate."""
    code, res = cli_json("recommend", *args)
    assert code == 1 and res["candidates"] == [] and res["relax"], res.get("relax")
    for hint in res["relax"]:
        code, again = cli_json("recommend", *apply_hint(args, hint))
        assert code == 0 and again["candidates"], (hint, again.get("relax"))


def test_relax_hints_name_the_smallest_gpu_count(cli_json):
    _, res = cli_json("recommend", "--model", "llama-70b", "--ctx", "128k", "--gpu", "h100", "--max-gpus", "1")
    assert res["relax"] == ["raise --max-gpus to 4"]  # 2 x 80 GB cannot hold 141 GB of weights + KV
    code, two = cli_json("recommend", "--model", "llama-70b", "--ctx", "128k", "--gpu", "h100", "--max-gpus", "2")
    assert code == 1 and two["candidates"] == []


def test_cost_arithmetic():
    # COST-1: DeepSeek-V3 2,788K H800-hours x $2 = $5.576M; Llama 3.1 405B 30.84M x $2 = $61.68M
    assert float(cost.run_cost(2_788_000, 2.0)) == 5_576_000
    assert float(cost.run_cost(30.84e6, 2.0)) == pytest.approx(61.68e6)
    assert 1.49 / 2.0 == pytest.approx(0.745) and 6.98 / 2.0 == pytest.approx(3.49)
    assert float(cost.usd_per_million_tokens(3600.0, 1e6 / 3600)) == pytest.approx(3600.0)


def test_narayanan_flops_formula_exact(cat):
    # Narayanan et al. 2021: F = 72 B s l h^2 (1 + s/(6h) + V/(12 l h)) without recompute (x 4/3 with)
    m = cat.model("gpt3-175b")
    B, s, L, h, V = 64, 2048, 96, 12288, 51200
    expect = 72 * B * s * L * h**2 * (1 + s / (6 * h) + V / (12 * L * h))
    assert perf.model_flops_per_step(m, B, s) == pytest.approx(expect, rel=1e-12)


def test_6n_rule_for_llama_at_short_sequences(cat):
    m = cat.model("llama-3.1-70b")
    per_token = perf.model_flops_per_step(m, 1, 128) / 128
    assert per_token == pytest.approx(6 * m.params_total, rel=0.02)


def test_training_bookkeeping_and_mfu(cat):
    tw = TrainWorkload(seq_len=4096, global_batch=512, micro_batch=1, tokens=1e12)
    res = training.recommend_train(cat.model("llama-3.1-70b"), [cat.gpu("h100-sxm")], tw,
                                   global_batch_tokens=None, max_gpus=256, pricing=planner.Pricing(), top=20)
    assert res["candidates"]
    for c in res["candidates"]:
        lay, tr = c["layout"], c["train"]
        assert lay["tp"] * lay["cp"] * lay["pp"] * lay["dp"] == lay["gpus"]
        assert (lay["dp"] * lay["cp"] * lay["tp"]) % lay["ep"] == 0
        assert lay["micro_batch"] * c["settings"]["micro_batches"] * lay["dp"] == 512
        assert 0 < tr["mfu"] < 1 and tr["hfu"] >= tr["mfu"]
        assert tr["gpu_hours"] == pytest.approx(lay["gpus"] * tr["days"] * 24)
        assert c["memory_per_gpu_bytes"]["total"] <= c["memory_per_gpu_bytes"]["capacity"]
    steps = [c["train"]["step_time_s"] for c in res["candidates"]]
    assert steps == sorted(steps)


def test_estimate_train_json(cli_json):
    code, d = cli_json("estimate", "--train", "--model", "gpt3-175b", "--gpu", "a100-sxm-80gb", "--tp", "8",
                       "--pp", "8", "--ctx", "2048", "--seq-len", "2048", "--global-batch", "64")
    assert code == 0
    assert {"step_time_s", "mfu", "tokens_per_s", "gpu_hours"} <= set(d["train"])
    assert d["layout"]["gpus"] == 64 and d["fits"]
    # Korthikanti Table 3 setting: MFU for GPT-3 on 64 A100s lies in a plausible band (paper reports ~40-50%)
    assert 0.2 < d["train"]["mfu"] < 0.7


def test_limit_hints_round_up_and_paste_back():
    from tpplan.plan.serve import _limit_text
    from tpplan.units import parse_seconds

    for x in (0.0100001, 0.01, 1.2341, 127.0, 0.00004213, 7261.5):
        text = _limit_text(x)
        assert parse_seconds(text, "--ttft-slo") >= x, (x, text)
        assert parse_seconds(text, "--ttft-slo") <= x * 1.01 + 1e-12, (x, text)
    assert _limit_text(0.0100001) == "10.1 ms" and _limit_text(127.0) == "127 s"


@pytest.mark.parametrize("pp", [1, 2, 4, 8])
def test_moe_decode_reads_at_least_the_active_weights(cat, pp):
    """HBM roofline: at batch 1 with TP=1, the pipeline stages run one after another and together read at
    least every active parameter once per token. DeepSeek-V3's first three layers are dense; with PP > 1
    the first stage's read bytes came out negative (TPOT 0.86 ms on 4 MI300X, 12x below this bound)."""
    m, gpu = cat.model("deepseek-v3"), cat.gpu("mi300x")
    w = ServeWorkload(ctx=32_000, input_len=31_744, output_len=256, weight_dtype="fp8", kv_dtype="bf16")
    t = perf.serve_time(Context(model=m, gpu=gpu, serve=w), grid.make(tp=1, pp=pp))
    bound = m.params_active * 1.0 / gpu.hbm.bandwidth_bytes_per_s  # fp8: one byte per active parameter
    assert t.hbm_lower_bound_tpot[0] > 0
    assert t.tpot[0] >= t.hbm_lower_bound_tpot[0] * (1 - 1e-9)
    assert t.tpot[0] >= 0.9 * bound, (t.tpot[0], bound)


def test_mla_decode_attends_over_the_latent_with_absorbed_projections(cat):
    """DeepSeek-V3 (config.json: kv_lora_rank 512, qk_rope_head_dim 64, qk_nope_head_dim 128, v_head_dim 128,
    128 heads, 61 layers). Decode folds W_UK/W_UV into the query/output (DeepSeek-V2 section 2.1.3): per key
    and head 2 x (512 + 64) score + 2 x 512 value FLOPs; prefill keeps 2 x (128 + 64 + 128)."""
    m = cat.model("deepseek-v3")
    assert float(perf.attention_flops_per_token(m, 1000, causal=False, absorbed=True)) == 2 * 1000 * 1088 * 128 * 61
    assert float(perf.attention_flops_per_token(m, 1000, causal=False)) == 2 * 1000 * 320 * 128 * 61
    llama = cat.model("llama-70b")  # not MLA: absorption changes nothing
    assert float(perf.attention_flops_per_token(llama, 1000, False, True)) == float(
        perf.attention_flops_per_token(llama, 1000, False))


@pytest.mark.parametrize("args", [
    ["--model", "llama-70b", "--gpu", "h100", "--tp", "4", "--ctx", "8k"],
    ["--model", "llama-70b", "--gpu", "b200", "--tp", "8", "--pp", "2", "--ctx", "128k", "--concurrency", "4"],
    ["--model", "mixtral-8x7b", "--gpu", "a100-sxm-80gb", "--tp", "2", "--ep", "2", "--ctx", "4k"],
    ["--model", "deepseek-v3", "--gpu", "h200", "--tp", "8", "--pp", "2", "--ctx", "4k"],
])
def test_breakdown_adds_up_to_the_reported_times(cli_json, cli, args):
    """issue 17 item 7: each term of the time model per layer and per step; the sum is the reported time."""
    code, d = cli_json("estimate", *args)
    b = d["breakdown"]
    for phase, key in (("prefill", "ttft_s"), ("decode", "tpot_s")):
        p = b[phase]
        total = sum(p["per_layer_s"].values()) * b["layers"] + sum(p["per_step_s"].values())
        assert total == pytest.approx(d["serve"]["idle"][key], rel=1e-9) == pytest.approx(p["total_s"])
    code, out, _ = cli("estimate", *args, "--breakdown")
    assert code == 0 and "Where the time goes: one decode step" in out


def test_training_breakdown_adds_up(cli_json):
    code, d = cli_json("estimate", "--train", "--model", "llama-8b", "--gpu", "h100", "--tp", "2", "--pp", "2",
                       "--dp", "2", "--seq-len", "8k", "--global-batch", "64", "--train-dtype", "fp8")
    t = d["train"]
    b = t["breakdown_s"]
    assert b["gemm"] + b["attention"] + b["elementwise"] == pytest.approx(b["compute"], rel=1e-9)
    parts = ("compute", "bubble", "tp_comm", "pp_comm", "dp_comm", "ep_comm", "cp_comm", "optimizer")
    assert sum(b[k] for k in parts) == pytest.approx(t["step_time_s"], rel=1e-9)


def test_gemm_roofline_exponent_refits_the_h100_microbenchmarks():
    """perf.GEMM_ROOFLINE_P: (t_flops^p + t_bytes^p)^(1/p) on tpplan's H100 sweep of 28672 x 8192 GEMMs at
    m = 1..512 (bf16 torch.matmul, fp8 torch._scaled_mm), against the catalog's plateau efficiencies: p = 2.5
    is within 3 % on average and 9 % at worst; the hard max (one roofline corner) is 6 % / 19 % off."""
    import csv
    import math
    from pathlib import Path

    from tpplan.catalog.load import get_catalog

    h100 = get_catalog().gpu("h100-sxm")
    c = h100.calibration
    path = Path(__file__).parents[1] / "hardware" / "calibration" / "h100-sxm-tpplan-microbench-2026-11-24.csv"
    rows = [r for r in csv.DictReader(path.open()) if r["benchmark"].startswith("gemm") and r["n"] == "28672"
            and r["m"] != "8192"]
    assert len(rows) == 12

    def errors(p):
        out = []
        for r in rows:
            m, n, k = int(r["m"]), int(r["n"]), int(r["k"])
            fp8 = r["dtype"] == "fp8"
            flops = 2 * m * n * k
            t = flops / (float(r["value"]) * 1e12)
            tc = flops / (h100.peak_flops(r["dtype"]) * (c.flops_fp8.value if fp8 else c.flops.value))
            hbm = c.hbm_fp8.value if fp8 else c.hbm.value
            tm = n * k * (1 if fp8 else 2) / (h100.hbm.bandwidth_bytes_per_s * hbm)
            est = float(perf.gemm_roofline(tc, tm)) if p is None else max(tc, tm)
            out.append(abs(math.log(est / t)))
        return sum(out) / len(out), max(out)

    assert perf.GEMM_ROOFLINE_P == 2.5
    mean, worst = errors(None)
    assert mean < 0.03 and worst < 0.09
    mean_max, worst_max = errors("max")
    assert mean_max > 0.05 and worst_max > 0.15


def test_breakdown_splits_the_gemm_term_by_operator(cli_json):
    """issue 17 items 1 and 7: --breakdown's GEMM term by operator. Llama-3.1-70B (config.json: h 8192, 64 heads,
    8 KV heads of 128, ffn 28672 gated, vocab 128256, 80 layers): QKV 80 x 8192 x (8192 + 2 x 1024) = 6.711e9
    elements, output 80 x 8192^2 = 5.369e9, MLP up 80 x 2 x 8192 x 28672, down half that, LM head 1.051e9. A
    decode step is memory-bound: the weights-read term splits by weight bytes, i.e. by these counts (one dtype);
    the parts sum to the term. Training splits its GEMM seconds by FLOPs and sums to breakdown_s.gemm."""
    _, d = cli_json("estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4", "--ctx", "8k")
    dec = d["breakdown"]["decode"]
    assert dec["gemm_term"] == "weights read (memory-bound)"
    ops = dec["gemm_by_operator_s"]
    term = dec["per_layer_s"]["weights read (memory-bound)"] * 80
    assert sum(ops.values()) == pytest.approx(term, rel=1e-12)
    counts = {"qkv_proj": 80 * 8192 * 10240, "o_proj": 80 * 8192**2, "mlp_up": 80 * 2 * 8192 * 28672,
              "mlp_down": 80 * 8192 * 28672, "lm_head": 128256 * 8192}
    for op, n in counts.items():
        assert ops[op] / term == pytest.approx(n / sum(counts.values()), rel=1e-9)
    _, t = cli_json("estimate", "--train", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "8", "--dp", "8",
                    "--seq-len", "4k", "--global-batch", "64", "--recompute", "full")
    g = t["train"]["gemm_by_operator_s"]
    assert sum(g.values()) == pytest.approx(t["train"]["breakdown_s"]["gemm"], rel=1e-12)
    # full recompute runs the layers' forward again, not the LM head: 4 x vs 3 x its FLOPs, each pass at its inner
    # dimension's slowdown (perf.GEMM_K0 = 500, the catalog's rate at K = 8,192): on a TP8 rank o_proj's forward
    # has K = 8 heads x 128 = 1,024, its data gradient K = 8,192; the LM head's forward K = 8,192, its data
    # gradient 128,256 / 8; both weight gradients K = 4,000 tokens of a micro-batch (--seq-len 4k = 4,000)
    def slow(k):
        return max(1.0, (1 + 500 / k) / (1 + 500 / 8192))

    o = 80 * 8192**2 * (2 * slow(1024) + slow(8192) + slow(4000))
    head = 128256 * 8192 * (slow(8192) + slow(128256 / 8) + slow(4000))
    assert g["lm_head"] / g["o_proj"] == pytest.approx(head / o, rel=1e-9)


def test_explain_says_how_many_sequences_fit_when_the_concurrency_does_not(cli_json):
    """--explain on a CONCURRENCY_DOESNT_FIT row quotes the batch that fits and the one asked for (as check's
    TPP012), not the one-sequence memory line. Llama-3.1-70B on 8 H100 at 128,000 tokens: KV per token per GPU
    327,680 / 8 = 40,960 B (80 layers x 8 KV heads x 128 x 2 x 2 B, one KV head per GPU), 5.24 GB a sequence."""
    _, d = cli_json("recommend", "--model", "llama-70b", "--ctx", "128k", "--gpu", "h100-sxm", "--concurrency", "64",
                    "--explain", "h100-sxm tp=8")
    text = " ".join(d["explain"])
    assert "CONCURRENCY_DOESNT_FIT" in text and "the concurrency asks 64" in text
    m = re.search(r"(\d+) sequences of 128,000 tokens fit in the ([\d.]+) GB KV pool per GPU \(5\.2 GB each\)", text)
    assert m is not None
    assert int(m.group(1)) == int(float(m.group(2)) * 1e9 // (128_000 * 40_960))


def test_kernel_gaps_count_each_layers_kernels(cat):
    """#17 item 5: a step's idle time between kernels is the layer's kernel count x a graph-replay gap per kernel
    node (0.58 us: 117 no-op kernels in 82.9 us as a CUDA graph, ahrefs/ocannl #488). Kernels per layer as vLLM
    runs them: Llama 2 norms + qkv, rotary, KV write, attention, o_proj + gate_up, activation, down = 10, +2
    all-reduces at TP > 1; Mixtral's MoE MLP router, top-k, alignment, 2 grouped GEMMs, activation, sum = 7
    (2 + 5 + 7 = 14); DeepSeek-V3 (config.json: first_k_dense_replace 3 of 61 layers, one shared expert, MLA):
    2 + 9 + (58 x 10 + 3 x 3) / 61 = 20.66."""
    assert float(perf.kernels_per_layer(cat.model("llama-3.1-70b"), 1)) == 10
    assert float(perf.kernels_per_layer(cat.model("llama-3.1-70b"), 4)) == 12
    assert float(perf.kernels_per_layer(cat.model("mixtral-8x7b"), 1)) == 14
    assert float(perf.kernels_per_layer(cat.model("deepseek-v3"), 1)) == pytest.approx(2 + 9 + (58 * 10 + 3 * 3) / 61)
    ctx = _ctx(cat)
    for tp, k in ((1, 10), (4, 12)):
        t = perf.step_pieces(ctx, grid.make(tp=tp), 8.0, 0.0, terms=True).terms
        assert t is not None and float(t["gaps"][0]) == pytest.approx(80 * k * 0.58e-6)


def test_flash_attention_pads_the_head_dim(cat):
    """FlashAttention-2 computes at the head dim rounded up to a multiple of 32 (up to 128) or 64 (above)
    (csrc/flash_attn/flash_api.cpp round_multiple): a 160-dim head (Megatron-1T, MT-NLG 530B) runs the 192 kernel,
    so its useful FLOP rate is 160 / 192 of the measured curve; 64, 96, 128 and 256 run unpadded."""
    from tpplan.engine import attention

    assert [attention.padded_head_dim(d) for d in (64, 80, 96, 112, 128, 160, 192, 256)] == [
        64, 96, 96, 128, 128, 192, 192, 256]
    gpu = cat.gpu("h100-sxm")
    r128 = float(attention.fwd_bwd_flops_per_s(gpu, 128, True, np.array([8192.0]))[0])
    r160 = float(attention.fwd_bwd_flops_per_s(gpu, 160, True, np.array([8192.0]))[0])
    assert r128 == pytest.approx(308e12) and r160 == pytest.approx(308e12 * 160 / 192)


def test_flash_attention_1_runs_at_its_own_measured_rate(cat):
    """--attention flash1: FlashAttention 1.x's bars of the same plots (Dao-AILab/flash-attention
    assets/flash2_{a100,h100}_fwd_bwd_benchmark.png @4f285b354796, "FlashAttention"; causal, d = 128): H100 135
    TFLOP/s at 8k against FlashAttention-2's 308, A100 80 against 182. Its kernels are 32, 64 and 128 wide, so an
    80-dim head computes on the 128 kernel (FlashAttention-2's 96) and MPT-30B's 112 on the 128 one."""
    from tpplan.engine import attention

    h100, a100 = cat.gpu("h100-sxm"), cat.gpu("a100-sxm-80gb")
    s = np.array([8192.0])
    assert float(attention.fwd_bwd_flops_per_s(h100, 128, True, s, "fa1")[0]) == pytest.approx(135e12)
    assert float(attention.fwd_bwd_flops_per_s(a100, 128, True, s, "fa1")[0]) == pytest.approx(80e12)
    assert float(attention.fwd_bwd_flops_per_s(h100, 128, True, s)[0]) == pytest.approx(308e12)
    assert float(attention.fwd_bwd_flops_per_s(h100, 112, True, s, "fa1")[0]) == pytest.approx(135e12 * 112 / 128)
    assert float(attention.fwd_bwd_flops_per_s(h100, 80, True, s, "fa1")[0]) == pytest.approx(135e12 * 80 / 128)
    # FlashAttention-2 at 80: the nearer measured curve (d = 64: 273 TFLOP/s at 8k) x 80 / 96
    assert float(attention.fwd_bwd_flops_per_s(h100, 80, True, s)[0]) == pytest.approx(273e12 * 80 / 96)


def test_training_attention_kernel_follows_the_framework_and_the_flag(cli_json, cli):
    """llm-foundry's profile runs FlashAttention 1.x (frameworks/llm-foundry.yaml: the flash-attn 1.0.x of its
    2023 `gpu` extra); --attention flash puts FlashAttention-2 back. MPT-7B on 8 H100 at 8k, no recompute: the
    step's attention GPU-seconds are 3.5 x 4 s^2 h d / 2 x layers x sequences at each kernel's measured rate, so
    their ratio is FA2's 308 over FA1's 135 TFLOP/s (causal, d = 128, 8k)."""
    common = ("estimate", "--train", "--model", "mpt-7b", "--gpu", "h100-sxm", "--dp", "8", "--seq-len", "8192",
              "--global-batch", "64", "--micro-batch", "1", "--framework", "llm-foundry", "--recompute", "none")
    _, fa1 = cli_json(*common)
    _, fa2 = cli_json(*common, "--attention", "flash")
    assert (fa1["settings"]["attention"], fa2["settings"]["attention"]) == ("flash1", "flash")
    # the slower kernel is said, with the flag that changes it
    assert any("FlashAttention 1.x" in w and "--attention flash" in w for w in fa1["warnings"])
    assert not any("FlashAttention 1.x" in w for w in fa2["warnings"])
    att1, att2 = fa1["train"]["breakdown_s"]["attention"], fa2["train"]["breakdown_s"]["attention"]
    assert att1 / att2 == pytest.approx(308 / 135)
    # 32 layers x 64 sequences x 3.5 x 2 x 8192^2 x 4096 FLOPs over 8 GPUs at 135 TFLOP/s
    assert att1 == pytest.approx(32 * 64 * 3.5 * 2 * 8192 ** 2 * 4096 / 8 / 135e12, rel=1e-6)
    code, _, err = cli(*common, "--attention", "flash3")
    assert code == 2 and "--attention must be flash, flash1 or eager; got 'flash3'" in err
    # the text and markdown say how the step was run, the kernel included
    code, out, _ = cli(*common, "--format", "markdown")
    assert code == 0 and ("- run as: ZeRO-3, recompute none, 8 micro-batches, FlashAttention 1.x, sequence "
                          "parallelism off, eager elementwise kernels") in out


def test_prompt_attention_runs_at_the_measured_forward_rate(cat):
    """Serving's prompt attention: FlashAttention-3's measured forward rate on Hopper (H100 causal d128: 292 TFLOP/s
    at 512 tokens to 616 at 16k, hardware/calibration/flash-attention-fwd.csv), H200 scaled by its dense peak (the
    same 989.4: the same curve); where nothing was measured, FA3's ratio to H100's GEMM rate carried to the GPU's
    own calibrated GEMM rate (attention.H100_GEMM_EFF is H100's catalog efficiency)."""
    from tpplan.engine import attention

    h100, h200, mi = cat.gpu("h100-sxm"), cat.gpu("h200"), cat.gpu("mi300x")
    assert attention.H100_GEMM_EFF == h100.calibration.flops.value
    s = np.array([512.0, 16384.0])
    assert list(attention.fwd_flops_per_s(h100, 128, True, s)) == pytest.approx([292e12, 616e12])
    assert list(attention.fwd_flops_per_s(h200, 128, True, s)) == pytest.approx([292e12, 616e12])
    ratio = mi.peak_flops("bf16") * mi.calibration.flops.value / (989.4e12 * 0.74)
    assert float(attention.fwd_flops_per_s(mi, 128, True, s)[1]) == pytest.approx(616e12 * ratio)


def test_gemm_k0_is_the_fit_of_deepgemms_k_sweep():
    """perf.GEMM_K0: DeepGEMM's fp8 dense GEMMs on H800 at M = 4,096 (README @327ec92f, shipped as
    hardware/calibration/deepgemm-h800-fp8.csv), the rows of N >= 4,096 (about four waves of 128 x 256 tiles or more
    on 132 SMs; N = 2,112 leaves 2.2), follow E x K / (K + K0): least squares in log space puts K0 at 498 and every
    row within 5.2%."""
    import csv

    from tpplan.engine import perf

    path = Path(__file__).resolve().parents[1] / "hardware" / "calibration" / "deepgemm-h800-fp8.csv"
    rows = [r for r in csv.DictReader(line for line in path.open() if not line.startswith("#"))
            if r["benchmark"] == "deepgemm_dense" and r["m"] == "4096"]
    pts = [(float(r["k"]), float(r["value"])) for r in rows if int(r["n"]) >= 4096]
    assert sorted(k for k, _ in pts) == [512, 1536, 2048, 7168, 16384]

    def fit(k0):
        x = [k / (k + k0) for k, _ in pts]
        e = math.exp(sum(math.log(y / xi) for (_, y), xi in zip(pts, x, strict=True)) / len(pts))
        errs = [y / (e * xi) - 1 for (_, y), xi in zip(pts, x, strict=True)]
        return sum(math.log1p(d) ** 2 for d in errs), e, errs

    k0 = min(range(100, 2000), key=lambda k: fit(k)[0])
    _, e, errs = fit(k0)
    assert k0 == 498 and e == pytest.approx(1531, abs=1) and max(abs(d) for d in errs) < 0.052
    assert perf.GEMM_K0 == 500 and perf.GEMM_K0_BAND[0] < k0 < perf.GEMM_K0_BAND[1]


def test_gemm_inner_dimensions_of_a_tp_rank():
    """Llama-3.1-70B (config.json: h 8192, 64 heads, 8 KV heads of 128, ffn 28672 gated, vocab 128256) on a TP4
    rank: qkv multiplies by h and produces (16 + 2 x 2) x 128; o takes 16 x 128; up produces 2 x 7168; down takes
    7168; the LM head produces 128256 / 4. Slowdown against the catalog's rate (K >= 8,192): (1 + 500 / K) /
    (1 + 500 / 8192), never below 1."""
    from tpplan.catalog.load import get_catalog
    from tpplan.engine import perf

    m = get_catalog().model("llama-3.1-70b")
    assert perf.gemm_inner_dims(m, 4) == {"qkv_proj": (8192, 2560), "o_proj": (2048, 8192), "mlp_up": (8192, 14336),
                                          "mlp_down": (7168, 8192), "lm_head": (8192, 32064)}
    assert float(perf.gemm_k_slowdown(2048)) == pytest.approx((1 + 500 / 2048) / (1 + 500 / 8192), rel=1e-12)
    assert float(perf.gemm_k_slowdown(8192)) == 1.0 and float(perf.gemm_k_slowdown(65536)) == 1.0


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen2.5-72b", "deepseek-v3", "mpt-1b"]),
       st.sampled_from(["none", "selective", "full"]), st.sampled_from([512, 4096, 32768]))
def test_more_tensor_parallelism_never_speeds_a_gemm_up(model, recompute, tokens):
    """Each TP rank's GEMMs have smaller inner dimensions as TP grows, so their slowdown (perf.GEMM_K0) never
    falls: forward (serving) and a training step's passes, at least 1 everywhere."""
    from tpplan.catalog.load import get_catalog
    from tpplan.engine import perf

    m = get_catalog().model(model)
    tps = np.array([t for t in (1, 2, 4, 8, 16, 32, 64) if m.attention.num_heads % t == 0])
    fwd = perf.forward_gemm_slowdown(m, tps)
    train = perf.train_gemm_slowdown(m, tps, np.full(len(tps), float(tokens)), recompute)
    for x in (fwd, train):
        assert np.all(x >= 1.0) and np.all(np.diff(x) >= -1e-12)


def test_moe_routing_moves_each_token_to_its_experts_and_back():
    """perf.moe_permute_elements: Mixtral-8x7B (config.json: 32 layers, all MoE, hidden 4096, top-2 of 8 experts,
    expert ffn 14336, 32 heads, 8 KV heads of 128) copies each token's hidden state to its 2 experts (read h,
    write 2h) and sums their outputs back (read 2h, write h): 6h a layer. A TP2 serving rank's elementwise bytes
    per token: fused add + RMSNorm twice (2 x 4h), rotary of its 16 + 4 heads (2 x 20 x 128), SwiGLU of its half
    of both experts (3 x 7168 x 2) and the routing copies (6h, every rank), x 32 layers x 2 bytes."""
    from tpplan.catalog.load import get_catalog
    from tpplan.engine import perf

    m = get_catalog().model("mixtral-8x7b")
    assert perf.moe_permute_elements(m) == 6 * 4096 * 32
    per_layer = 2 * 4 * 4096 + 2 * 20 * 128 + 3 * 7168 * 2 + 6 * 4096
    assert float(perf.serve_elementwise_bytes_per_token(m, 2)) == pytest.approx(per_layer * 32 * 2, rel=1e-12)
    assert perf.moe_permute_elements(get_catalog().model("llama-3.1-8b")) == 0.0


def test_a_rate_that_needs_more_gpus_names_the_fewest_that_serve_it(cli_json):
    """--rate 10/s of Llama-3.1-70B at 8k on A100 80GB needs more than the default 64 GPUs: the hint names the
    fewest GPUs of any layout's deployment at that rate (68: TP1/PP17 x 4 replicas), and one fewer is not enough;
    the report's "Not feasible" list carries the same hint instead of the reason's bare name."""
    args = ["--model", "llama-70b", "--ctx", "8k", "--rate", "10/s", "--gpu", "a100-sxm-80gb"]
    code, res = cli_json("recommend", *args)
    assert code == 1 and res["relax"] == ["raise --max-gpus to 68"]
    code, fewer = cli_json("recommend", *args, "--max-gpus", "67")
    assert code == 1 and fewer["candidates"] == []
    code, enough = cli_json("recommend", *args, "--max-gpus", "68")
    assert code == 0 and enough["candidates"][0]["layout"]["gpus"] == 68
    _, rep = cli_json("report", "--model", "llama-70b", "--ctx", "8k", "--rate", "10/s", "--gpu", "a100-sxm-80gb",
                      "--gpu", "h100-sxm")
    assert {"gpu": "a100-sxm-80gb", "why": ["raise --max-gpus to 68"]}.items() <= {
        k: v for x in rep["blocked"] if x["gpu"] == "a100-sxm-80gb" for k, v in x.items()}.items()


def test_a_multi_node_winner_says_how_to_launch_it(cli):
    """A serve command starts one host's GPUs: when one instance spans nodes (Llama-3.1-405B TP8 x PP2 on two
    8-GPU H100 nodes), the footer says how the engine launches across them; one node says nothing."""
    code, out, _ = cli("recommend", "--model", "llama-405b", "--ctx", "32k", "--gpu", "h100-sxm", "--top", "1",
                       "--format", "markdown")
    assert code == 0 and "--pipeline-parallel-size 2" in out
    assert "Launch: one instance spans 2 nodes: run it on the head node of a Ray cluster" in out
    code, out, _ = cli("recommend", "--model", "llama-405b", "--ctx", "32k", "--gpu", "h100-sxm", "--top", "1",
                       "--engine", "sglang", "--format", "markdown")
    assert "--nnodes 2 --node-rank" in out  # markdown escapes the <0..1> placeholder
    code, out, _ = cli("recommend", "--model", "llama-8b", "--ctx", "8k", "--gpu", "h100-sxm", "--top", "1",
                       "--format", "markdown")
    assert code == 0 and "Serve the winner" in out and "Launch:" not in out


@pytest.mark.parametrize("args", [
    ["--model", "qwen3-30b-a3b", "--ctx", "32k", "--rate", "20/s", "--ttft-slo", "2s", "--tpot-slo", "50ms",
     "--objective", "cost"],
    ["--model", "llama-8b", "--ctx", "8k", "--rate", "12/s", "--objective", "throughput", "--gpu", "h100-sxm",
     "--gpu", "l40s"],
])
def test_bands_at_a_rate_are_the_same_deployments_spread(cli_json, args):
    """At --rate the central figures size the replicas; each band edge is that deployment at the optimistic or
    pessimistic calibration (the optimistic set used to size fewer, busier replicas, so a 'low' TPOT of 14.4 ms
    sat above a 'high' of 10.9 ms and the central 21.6 ms outside both). Edges bracket the value; a slow edge
    that saturates the deployment is null."""
    _, res = cli_json("recommend", *args, "--top", "6")
    assert res["candidates"]
    for c in res["candidates"]:
        s, b = c["serve"], c["bands"]["serve"]
        for key in ("ttft_s", "tpot_s", "request_latency_s"):
            lo, hi = b[key]
            assert lo is not None and lo <= s[key] * (1 + 1e-9), (key, lo, s[key])
            assert hi is None or hi >= s[key] * (1 - 1e-9), (key, hi, s[key])
        lo_usd, hi_usd = c["bands"]["cost"]["usd_per_hour"]
        assert lo_usd <= c["cost"]["usd_per_hour"] <= hi_usd  # the same GPUs at the low and high price tiers
