"""Prefix caching and speculative decoding (issue 21): the figures each changes, recomputed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpplan.catalog.load import get_catalog
from tpplan.engine import grid, memory, perf
from tpplan.engine.speculative import Speculative, expected_tokens, head_spec
from tpplan.engine.workload import Context, ServeWorkload
from tpplan.plan import serve as planner

CAT = get_catalog()

# Llama-3.1-70B config.json (shared/reference/data/hf-configs): hidden 8192, intermediate 28672, 80 layers,
# 64 heads of 128, 8 KV heads, vocabulary 128,256, untied LM head
H, FFN, LAYERS, HEADS, HEAD_DIM, KV_HEADS, VOCAB = 8192, 28672, 80, 64, 128, 8, 128256
MATMUL_PARAMS = LAYERS * (2 * H * H + 2 * H * KV_HEADS * HEAD_DIM + 3 * H * FFN) + H * VOCAB
ATTN_FLOPS_PER_KEY = 2 * (2 * HEAD_DIM) * HEADS * LAYERS  # QK^T and AV, per token per key attended


def _prompt_flops(computed_from: int, prompt: int) -> float:
    """Forward FLOPs of prompt positions [computed_from, prompt): 2 N per token plus causal attention over
    the keys before each position (on average (prompt + computed_from) / 2)."""
    t = prompt - computed_from
    return t * (2.0 * MATMUL_PARAMS + ATTN_FLOPS_PER_KEY * (prompt + computed_from) / 2.0)


def test_llama70b_matmul_params_match_the_hand_count():
    assert CAT.model("llama-3.1-70b").matmul_params_active == MATMUL_PARAMS


def test_shared_prefix_lowers_ttft_and_cost_by_the_prefill_share(cli_json):
    """16k-token prompts of which a 12k system prompt is shared, 32 output tokens: the engine's work is prefill,
    so the saturation rate (hence the GPUs a rate needs, hence $) scales with the prefill FLOPs, and so does
    an idle replica's TTFT."""
    base = ["estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "8", "--ctx", "17k",
            "--input-len", "16k", "--output-len", "32"]
    _, off = cli_json(*base, "--rate", "0.05/s")
    _, on = cli_json(*base, "--rate", "0.05/s", "--shared-prefix", "12k")
    cached = (12_000 // 16) * 16  # whole 16-token blocks (vLLM block_size)
    assert on["serve"]["prefix_cache"]["cached_prompt_tokens"] == cached
    assert on["serve"]["prefix_cache"]["prefill_tokens"] == 16_000 - cached
    share = _prompt_flops(cached, 16_000) / _prompt_flops(0, 16_000)  # 0.2746
    assert share == pytest.approx(0.2746, abs=1e-3)
    sat_off = off["serve"]["load"]["saturation_rate_rps_per_replica"]
    sat_on = on["serve"]["load"]["saturation_rate_rps_per_replica"]
    # the rest of the engine's time per request, the 32 decode steps' share (weights and KV read per step,
    # shared by the running batch), is not cut by the cache: the ratio sits a few per cent above the share
    assert sat_off / sat_on == pytest.approx(share, rel=0.04) and sat_off / sat_on >= share
    # an idle replica's TTFT: the prefill of the computed tokens (plus fixed gaps and all-reduce latencies)
    assert on["serve"]["idle"]["ttft_s"] / off["serve"]["idle"]["ttft_s"] == pytest.approx(share, rel=0.04)
    assert on["serve"]["ttft_s"] < off["serve"]["ttft_s"] * (share + 0.05)
    # at 8 requests/s the replicas follow from the saturation rate (85 % planning cap): cost drops with them
    rate = 8.0
    m, gpu = CAT.model("llama-3.1-70b"), CAT.gpu("h100-sxm")
    cons = planner.Constraints(rate_rps=rate)
    costs, ttfts = [], []
    for shared, sat in ((0, sat_off), (12_000, sat_off / share)):
        w = ServeWorkload(ctx=17_000, input_len=16_000, output_len=32, shared_prefix=shared,
                          engine_profile=CAT.engine("vllm")).for_gpu(gpu)
        ev = planner.evaluate_serve(Context(model=m, gpu=gpu, serve=w), grid.make(8), planner.Pricing(), cons)
        assert ev.load is not None
        replicas = math.ceil(rate / (0.85 * sat))
        assert ev.load.replicas[0] == replicas
        assert ev.usd_per_hour[0] == pytest.approx(replicas * 8 * ev.price)
        costs.append(float(ev.usd_per_hour[0]))
        ttfts.append(float(ev.load.load.ttft[0]))
    assert costs[1] < costs[0] and ttfts[1] < ttfts[0]


def test_shared_prefix_is_held_once_per_replica():
    m, g = CAT.model("llama-3.1-70b"), CAT.gpu("h100-sxm")
    w = ServeWorkload(ctx=8192, input_len=4096, output_len=256)
    lay = grid.make(4, concurrency=8)
    plain = memory.serve_memory(Context(model=m, gpu=g, serve=w), lay)
    shared = memory.serve_memory(Context(model=m, gpu=g, serve=ServeWorkload(
        ctx=8192, input_len=4096, output_len=256, shared_prefix=2048)), lay)
    kv_tok = 2 * (KV_HEADS // 4) * HEAD_DIM * 2 * LAYERS  # bytes per token per GPU at TP4, bf16
    assert float(shared.kv_shared[0]) == kv_tok * 2048
    assert shared.kv_bytes_per_sequence[0] == plain.kv_bytes_per_sequence[0] - kv_tok * 2048
    assert shared.kv_cache[0] == pytest.approx(plain.kv_cache[0] - 7 * kv_tok * 2048)


def test_prefix_hit_skips_prefill_but_keeps_the_kv(cli_json):
    base = ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--ctx", "8k", "--input-len", "4k"]
    _, off = cli_json(*base)
    _, on = cli_json(*base, "--prefix-hit", "60%")
    assert on["serve"]["prefix_cache"]["cached_prompt_tokens"] == 2400
    assert on["max_concurrency"] == off["max_concurrency"]  # running sequences hold their whole prompt
    assert on["serve"]["idle"]["ttft_s"] < 0.5 * off["serve"]["idle"]["ttft_s"]
    assert on["serve"]["idle"]["tpot_s"] == pytest.approx(off["serve"]["idle"]["tpot_s"])


def test_expected_tokens_per_step_is_leviathans_formula():
    # Leviathan et al. 2023 eq. 1: (1 - a^(k+1)) / (1 - a) = 1 + a + a^2 + a^3 for k = 3
    assert expected_tokens(0.7, 3) == pytest.approx(1 + 0.7 + 0.49 + 0.343)
    assert expected_tokens(0.7, 3) == pytest.approx(2.533)
    assert expected_tokens(1.0, 4) == 5.0


@settings(max_examples=60, deadline=None)
@given(a=st.floats(0.01, 0.99), k=st.integers(1, 16))
def test_expected_tokens_is_between_one_and_k_plus_one_and_grows_with_k(a, k):
    e = expected_tokens(a, k)
    assert 1.0 < e < k + 1
    assert expected_tokens(a, k + 1) >= e  # strictly more in exact arithmetic (a^(k+1) > 0)


def _spec_ctx(k=3, a=0.7, n_in=512, n_out=256):
    m, g = CAT.model("llama-3.1-70b"), CAT.gpu("h100-sxm")
    spec = Speculative(method="eagle", draft_tokens=k, acceptance=a, draft=head_spec(m, "eagle"))
    return Context(model=m, gpu=g, serve=ServeWorkload(ctx=1024, input_len=n_in, output_len=n_out, speculative=spec))


def test_speculative_step_yields_the_expected_tokens_and_stops_paying_past_compute_bound():
    ctx = _spec_ctx()
    lay = grid.make(4)
    pay = perf.speculative_payoff(ctx, lay, 1.0)
    be, cb = float(pay.break_even_batch[0]), float(pay.compute_bound_batch[0])
    assert math.isfinite(be) and cb < be
    plain = Context(model=ctx.model, gpu=ctx.gpu, serve=ctx.serve.plain())

    def step(c, n):
        s = perf.step_pieces(c, lay, n, 0.0)
        return float(np.maximum(s.compute, s.memory)[0] + s.other[0])

    for n, pays in ((be * 0.8, True), (be * 1.25, False)):
        speed = 2.533 * step(plain, n) / step(ctx, n)
        assert (speed > 1.0) == pays, (n, speed)
    # past the compute-bound batch, the verification step's compute is (k + 1) x a plain step's
    s_spec = perf.step_pieces(ctx, lay, 2 * be, 0.0)
    s_plain = perf.step_pieces(plain, lay, 2 * be, 0.0)
    assert float(s_spec.compute[0]) == pytest.approx(4 * float(s_plain.compute[0]), rel=1e-9)
    assert float(s_spec.compute[0]) > float(s_spec.memory[0])
    # at small batches the step reads the same weights: the speedup is near E less the draft's share
    assert 1.8 < float(pay.speedup[0]) < 2.533


def test_speculative_is_reported_as_not_paying_off_at_a_large_batch(cli_json):
    base = ["estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4", "--ctx", "1k",
            "--input-len", "512", "--output-len", "256", "--speculative", "eagle", "--acceptance", "0.7"]
    _, small = cli_json(*base, "--concurrency", "4")
    _, large = cli_json(*base, "--concurrency", "512")
    sp_small, sp_large = small["serve"]["speculative"], large["serve"]["speculative"]
    assert sp_small["tokens_per_step"] == pytest.approx(2.533)
    assert sp_small["pays_off"] and not sp_large["pays_off"]
    assert sp_large["running_seqs"] > sp_large["break_even_batch"] > sp_large["verify_compute_bound_batch"]


def test_speculative_lowers_tpot_at_low_load_and_adds_the_draft_memory(cli_json):
    base = ["estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4", "--ctx", "8k"]
    _, off = cli_json(*base)
    _, on = cli_json(*base, "--speculative", "eagle", "--acceptance", "0.7")
    assert on["serve"]["tpot_s"] < off["serve"]["tpot_s"] / 1.8
    # one decoder layer (attention + MLP split over TP4) and the 2h x h fc (replicated), bf16
    head = (2 * H * H + 2 * H * KV_HEADS * HEAD_DIM + 3 * H * FFN) / 4 * 2 + 2 * H * H * 2
    assert on["memory_per_gpu_bytes"]["weights"] - off["memory_per_gpu_bytes"]["weights"] == pytest.approx(
        head, rel=1e-3)


def test_feature_errors_are_clear(cli):
    code, _, err = cli("estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4", "--ctx", "8k",
                       "--speculative", "mtp", "--acceptance", "0.7")
    assert code == 2 and "no multi-token-prediction layers" in err and "deepseek-v3" in err
    code, _, err = cli("estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--ctx", "8k",
                       "--speculative", "eagle")
    assert code == 2 and "--acceptance" in err
    code, _, err = cli("estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--ctx", "8k",
                       "--acceptance", "0.7")
    assert code == 2 and "needs --speculative" in err
    code, _, err = cli("estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--ctx", "8k",
                       "--input-len", "2k", "--shared-prefix", "4k")
    assert code == 2 and "longer than the prompt" in err
    code, _, err = cli("estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--ctx", "8k",
                       "--speculative", "draft", "--draft-model", "deepseek-v3", "--acceptance", "0.7")
    assert code == 2 and "tokenizer" in err


def test_serving_commands_carry_the_engines_flags(cli_json):
    _, res = cli_json("recommend", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--ctx", "8k",
                      "--shared-prefix", "2k", "--speculative", "eagle", "--acceptance", "0.7")
    cmd = res["serving_command"]
    assert "--enable-prefix-caching" in cmd
    assert '--speculative-config \'{"method":"eagle","num_speculative_tokens":3,' in cmd
    _, res = cli_json("recommend", "--model", "deepseek-v3", "--gpu", "h200", "--ctx", "8k", "--engine", "sglang",
                      "--speculative", "mtp", "--acceptance", "0.8", "--draft-tokens", "2")
    cmd = res["serving_command"]
    assert "--speculative-algorithm NEXTN --speculative-num-steps 2" in cmd
    assert "--speculative-num-draft-tokens 3" in cmd


@pytest.mark.parametrize("name,args", [
    ("estimate", ["estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4", "--ctx", "8k",
                  "--shared-prefix", "2k", "--speculative", "eagle", "--acceptance", "0.7"]),
    ("recommend", ["recommend", "--model", "deepseek-v3", "--gpu", "h200", "--ctx", "8k", "--prefix-hit", "0.5",
                   "--speculative", "mtp", "--acceptance", "0.8", "--top", "2"]),
    ("report", ["report", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--speculative", "ngram",
                "--acceptance", "0.6", "--draft-tokens", "4"]),
])
def test_feature_outputs_match_their_schemas(cli, name, args):
    import json

    import jsonschema

    from tpplan.schemas import SCHEMAS

    code, out, err = cli(*args, "--format", "json")
    assert code == 0, err
    res = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMAS[name]).validate(res)
    serve = (res if name == "estimate" else res["candidates"][0] if name == "recommend" else res["winner"])["serve"]
    assert "speculative" in serve
    if name == "report":
        assert res["features"]["without"] is not None and res["features"]["with"]["tpot_s"] < res["features"][
            "without"]["tpot_s"]


DISAGG = ["recommend", "--model", "llama-3.1-70b", "--ctx", "8k", "--input-len", "4k", "--output-len", "512",
          "--gpu", "h100-sxm", "--gpu", "h200", "--rate", "20/s", "--ttft-slo", "2s", "--tpot-slo", "50ms", "--disagg",
          "--objective", "cost"]


def test_disagg_pools_match_the_rate_within_one_replica(cli_json):
    _, res = cli_json(*DISAGG)
    d = res["disaggregated"]
    assert d["pairs"]
    for x in d["pairs"]:
        for role in ("prefill", "decode"):
            p = x[role]
            # ceil(rate / sustainable) replicas: enough for the rate, and not a whole replica more
            assert p["capacity_rps"] >= 20.0
            assert p["capacity_rps"] - 20.0 < p["sustainable_rate_rps_per_replica"]
            assert p["rate_rps_per_replica"] * p["replicas"] == pytest.approx(20.0)
            assert p["gpus"] == p["replicas"] * p["layout"]["tp"] * p["layout"]["pp"]
        assert x["ttft_s"] <= 2.0 and x["tpot_s"] <= 0.05
        assert x["gpus"] == x["prefill"]["gpus"] + x["decode"]["gpus"]
        # Llama-3.1-70B KV: 2 (K, V) x 8 heads x 128 x 80 layers x 2 bytes = 327,680 B/token, x 4,000 prompt tokens
        assert x["kv_transfer"]["bytes_per_request"] == 327_680 * 4000
        assert x["ttft_s"] == pytest.approx(x["prefill"]["ttft_s_without_transfer"] + x["kv_transfer"]["seconds"])
    costs = [x["usd_per_hour"] for x in d["pairs"]]
    assert costs == sorted(costs)
    # the comparison names the cheaper way, with both prices
    agg = d["aggregated_best"]["usd_per_hour"]
    assert d["cheaper"] == ("aggregated" if agg <= costs[0] else "disaggregated")
    assert f"{agg:,.2f}" in d["message"] and f"{costs[0]:,.2f}" in d["message"]
    cmds = d["pairs"][0]["commands"]
    assert '"kv_connector":"NixlConnector"' in cmds["prefill"] and "--tensor-parallel-size" in cmds["decode"]
    assert cmds["dynamo_prefill"].startswith("python -m dynamo.vllm ")
    assert "--is-prefill-worker" in cmds["dynamo_prefill"]
    assert "--is-prefill-worker" not in cmds["dynamo_decode"]


def test_disagg_transfer_is_the_slower_sides_nic_time():
    from tpplan.plan import disagg

    m, h100 = CAT.model("llama-3.1-70b"), CAT.gpu("h100-sxm")
    w = ServeWorkload(ctx=8192, input_len=4000, output_len=512)
    c = h100.calibration.inter_node
    bw = min(c.busbw_bytes_per_s, h100.scale_out.nic_bandwidth_bytes_per_s)
    t = disagg.transfer_seconds(m, w, h100, np.array([8.0]), h100, np.array([4.0]))
    assert float(t[0]) == pytest.approx(c.alpha_per_step_s + 327_680 * 4000 / 4 / bw)


def test_disagg_falls_back_with_a_message_when_the_slos_cannot_be_met(cli):
    args = [a if a != "2s" else "100ms" for a in DISAGG]
    code, out, _ = cli(*args)
    assert code == 1
    assert "Disaggregated serving cannot meet the SLOs at this rate: no prefill layout meets the TTFT SLO" in out
    code, _, err = cli(*[a for a in DISAGG if a not in ("--rate", "20/s")])
    assert code == 2 and "--disagg sizes a prefill and a decode pool to a request rate: give --rate" in err


def test_disagg_output_matches_the_recommend_schema(cli):
    import json

    import jsonschema

    from tpplan.schemas import SCHEMAS

    code, out, err = cli(*DISAGG, "--top", "2", "--format", "json")
    assert code == 0, err
    jsonschema.Draft202012Validator(SCHEMAS["recommend"]).validate(json.loads(out))


def test_estimate_disagg_evaluates_the_pools_given(cli_json, cli):
    base = ["estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--ctx", "8k", "--input-len", "4k",
            "--output-len", "512", "--rate", "20/s", "--disagg"]
    code, res = cli_json(*base, "--prefill", "tp=4,replicas=6", "--decode", "tp=8,replicas=2,gpu=h200")
    x = res["disaggregated"]
    assert code == 0 and x["feasible"] and x["ratio"] == "6P2D" and x["gpus"] == 40
    assert x["prefill"]["rate_rps_per_replica"] == pytest.approx(20 / 6)
    assert x["decode"]["layout"]["gpu"] == "h200"
    # the same pools as recommend --disagg sizes them give the same figures
    _, rec = cli_json("recommend", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--ctx", "8k", "--input-len",
                      "4k", "--output-len", "512", "--rate", "20/s", "--disagg", "--top", "1")
    top = rec["disaggregated"]["pairs"][0]
    spec = lambda p: ",".join(f"{k}={p['layout'][k]}" for k in ("tp", "pp", "ep")) + f",replicas={p['replicas']}"  # noqa: E731
    _, again = cli_json(*base, "--prefill", spec(top["prefill"]), "--decode", spec(top["decode"]))
    assert again["disaggregated"]["ttft_s"] == pytest.approx(top["ttft_s"])
    assert again["disaggregated"]["tpot_s"] == pytest.approx(top["tpot_s"])
    assert again["disaggregated"]["usd_per_hour"] == pytest.approx(top["usd_per_hour"])
    code, out, _ = cli(*base, "--prefill", "tp=4,replicas=2", "--decode", "tp=8,replicas=1")
    assert code == 1 and "prefill pool's 2 replica(s) saturate" in out
    code, _, err = cli(*base, "--prefill", "tp=4")
    assert code == 2 and "missing replicas" in err


def test_disagg_pools_take_whole_expert_parallel_instances(cli_json):
    """A MoE decode pool may run DP x EP instances (vLLM: EP = TP x DP with data-parallel attention): the pool
    takes whole instances of dp ranks, and one instance's worth is the most it over-provisions."""
    _, res = cli_json("recommend", "--model", "deepseek-v3", "--ctx", "8k", "--input-len", "4k", "--output-len", "1k",
                      "--gpu", "h200", "--gpu", "h100", "--rate", "50/s", "--ttft-slo", "3s", "--tpot-slo", "60ms",
                      "--disagg", "--max-gpus", "256", "--objective", "cost")
    pairs = res["disaggregated"]["pairs"]
    assert pairs and any(x["decode"]["layout"]["dp"] > 1 for x in pairs)
    for x in pairs:
        for role in ("prefill", "decode"):
            p, lay = x[role], x[role]["layout"]
            assert p["ranks"] == p["replicas"] * lay["dp"]
            assert p["gpus"] == p["ranks"] * lay["tp"] * lay["pp"]
            assert 50.0 <= p["capacity_rps"] < 50.0 + p["sustainable_rate_rps_per_replica"]
    top = next(x for x in pairs if x["decode"]["layout"]["dp"] > 1)
    if top is pairs[0]:
        assert "--data-parallel-size" in top["commands"]["decode"]
        assert "--enable-expert-parallel" in top["commands"]["decode"]


def test_disagg_pools_meet_the_slos_at_the_percentile(cli_json):
    """--slo-percentile now applies to the pools (it applied to the aggregated rows only): the prefill pool's
    TTFT at p99 (M/D/1 wait with the exponential tail, load.wait_quantile) meets the SLO; a decode pool's steps
    carry no prompt chunks, so its p99 TPOT is its mean."""
    args = ("recommend", "--model", "llama-70b", "--ctx", "8k", "--rate", "10/s", "--ttft-slo", "2s",
            "--tpot-slo", "60ms", "--disagg", "--gpu", "h100")
    _, mean = cli_json(*args)
    _, p99 = cli_json(*args, "--slo-percentile", "99")
    pairs = p99["disaggregated"]["pairs"]
    assert pairs and "p99" in p99["disaggregated"]["notes"][0]
    for x in pairs:
        assert x["slo_percentile"] == 99
        assert x["ttft_s"] < x["ttft_s_at_slo_percentile"] <= 2.0  # the tail, not the mean, meets the SLO
        assert x["tpot_s_at_slo_percentile"] == x["tpot_s"] <= 0.06
    # a stricter reading of the same SLO never makes the cheapest pair cheaper
    assert pairs[0]["usd_per_hour"] >= mean["disaggregated"]["pairs"][0]["usd_per_hour"]
    assert "slo_percentile" not in mean["disaggregated"]["pairs"][0]


def test_disagg_compares_with_the_cheapest_aggregated_deployment_of_the_whole_search(cli_json):
    """The comparison took the cheapest among the candidates the objective listed: with the latency objective
    at 10 req/s that was a 64-GPU deployment at $227/hour. It now takes recommend's cheapest_feasible over the
    whole search, which at a fixed rate is the cost objective's first row ($/1M tokens = $/hour / tokens)."""
    args = ("recommend", "--model", "llama-70b", "--ctx", "8k", "--rate", "10/s", "--disagg")
    _, lat = cli_json(*args)
    _, cost = cli_json(*args, "--objective", "cost")
    best = lat["disaggregated"]["aggregated_best"]
    assert best["usd_per_hour"] == pytest.approx(lat["cheapest_feasible"]["cost"]["usd_per_hour"])
    assert best["usd_per_hour"] == pytest.approx(cost["candidates"][0]["cost"]["usd_per_hour"])
    assert all(best["usd_per_hour"] <= c["cost"]["usd_per_hour"] + 1e-9 for c in lat["candidates"] if c["feasible"])
    assert lat["disaggregated"]["message"] == cost["disaggregated"]["message"]
