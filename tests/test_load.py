"""Serving under load (tpplan/engine/load.py, issue 16): engine profiles, the step model, operating points, sizing by
rate, and the contracts the issue states (self-consistent throughput, monotone in the rate, unstable past
saturation, no cross-node TP by default)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpplan.catalog.load import get_catalog
from tpplan.engine import grid, memory, perf
from tpplan.engine.load import Engine
from tpplan.engine.workload import Context, ServeWorkload
from tpplan.plan import serve as planner

CAT = get_catalog()


def _ctx(model="llama-3.1-70b", gpu="h100-sxm", ctx=8192, n_in=2048, n_out=512, engine="vllm", version=None):
    w = ServeWorkload(ctx=ctx, input_len=n_in, output_len=n_out, engine_profile=CAT.engine(engine),
                      engine_version=version)
    g = CAT.gpu(gpu)
    return Context(model=CAT.model(model), gpu=g, serve=w.for_gpu(g))


def test_engine_profiles_follow_the_engine_defaults():
    # shared/reference/engine-defaults.md section 1: vLLM 0.11.0 API server, >= 70 GiB and not "a100": 1024
    # sequences and 8192 tokens; A100-80GB (excluded by name) and smaller GPUs 256 and 2048
    v = CAT.engine("vllm").version(None)
    assert v.version == "0.11.0"
    assert (v.limits_for(CAT.gpu("h100-sxm")).max_num_seqs, v.limits_for(CAT.gpu("h100-sxm")).max_num_batched_tokens
            ) == (1024, 8192)
    assert v.limits_for(CAT.gpu("a100-sxm-80gb")).max_num_seqs == 256
    assert v.limits_for(CAT.gpu("l40s")).max_num_batched_tokens == 2048
    # 0.33.0: >= 160 GiB (B200) gets 16384 tokens; gpu_memory_utilization 0.92 (config/cache.py:215)
    new = CAT.engine("vllm").version("0.33")
    assert new.limits_for(CAT.gpu("b200")).max_num_batched_tokens == 16384 and new.memory_fraction == 0.92
    # TRT-LLM: max_batch_size 2048, max_num_tokens 8192, GUARANTEED_NO_EVICT, chunked only in trtllm-bench
    t = CAT.engine("tensorrt-llm")
    assert t.version(None).kv_reservation == "full" and not t.version(None).chunked_prefill
    assert t.version("bench-2025").chunked_prefill
    with pytest.raises(ValueError, match="valid: 0.11.0"):
        CAT.engine("vllm").version("9.9")


def test_trt_memory_rule_is_a_share_of_what_weights_leave():
    ctx = _ctx(engine="trtllm")
    g = grid.make(4)
    mem = memory.serve_memory(ctx, g)
    fixed = mem.weights + mem.activations + mem.overhead
    # kvCacheConfig.h:49: free_gpu_memory_fraction 0.9 of the free memory after weights and buffers
    assert mem.usable[0] == pytest.approx(fixed[0] + 0.9 * (mem.capacity - fixed[0]))
    assert mem.kv_pool[0] == pytest.approx(0.9 * (mem.capacity - fixed[0]))


@pytest.mark.parametrize("model,gpu,tp,pp", [("llama-3.1-70b", "h100-sxm", 4, 1), ("llama-3.1-70b", "b200", 8, 2),
                                             ("mixtral-8x7b", "a100-sxm-80gb", 4, 1), ("deepseek-v3", "h200", 8, 1)])
def test_a_step_without_prompt_tokens_is_serve_times_decode_step(model, gpu, tp, pp):
    ctx = _ctx(model, gpu)
    for conc in (1, 3, 64):
        g = grid.make(tp, pp, concurrency=conc)
        assert perf.step_pieces(ctx, g, conc, 0).total[0] == pytest.approx(perf.serve_time(ctx, g).tpot[0],
                                                                           rel=1e-12)


@pytest.mark.parametrize("model,gpu,tp,pp", [("llama-3.1-70b", "h100-sxm", 4, 1),
                                             ("llama-3.1-8b", "a100-sxm-80gb", 1, 1),
                                             ("llama-3.1-70b", "b200", 8, 2), ("mixtral-8x7b", "h100-sxm", 2, 1)])
def test_affine_step_follows_the_exact_step(model, gpu, tp, pp):
    """The closed forms use a secant of the step model; within 6% of the exact step over the operating range
    (collective times are concave in the message size, so the secant runs a little low between its ends)."""
    ctx = _ctx(model, gpu)
    g = grid.make(tp, pp)
    e = Engine.of(ctx, g, memory.serve_memory(ctx, g))
    top = float(max(e.max_running[0], 2.0))
    for n in (1.0, top / 2, top):
        for p in (0.0, 2048.0):
            exact = perf.step_pieces(ctx, g, n, p).total[0]
            assert e.co.step(np.array([n]), np.array([p]))[0] == pytest.approx(exact, rel=0.06), (n, p)


def test_design_card_throughput_is_consistent_with_its_own_latencies(cli_json):
    # issue 16: the design card claimed 165 tok/s for 8x B200 at concurrency 1 while TTFT + 256 x TPOT was 5.1 s
    code, d = cli_json("recommend", "--model", "llama-70b", "--ctx", "128k")
    assert code == 0
    for c in d["candidates"]:
        s, ld = c["serve"], c["serve"]["load"]
        per_request = s["ttft_s"] + 256 * s["tpot_s"]
        assert s["throughput_tokens_per_s"] == pytest.approx(ld["concurrency"] * 256 / per_request * ld["replicas"],
                                                             rel=0.05)
        assert c["cost"]["usd_per_million_tokens"] == pytest.approx(
            c["cost"]["usd_per_hour"] / (s["throughput_tokens_per_s"] * 3600) * 1e6, rel=1e-9)
    top = d["candidates"][0]
    assert top["layout"]["tp"] == 8 and top["layout"]["pp"] == 1  # GB200 NVL72 since it is in the catalog
    b200 = next(c for c in d["candidates"] if c["layout"]["gpu"] == "b200" and c["layout"]["tp"] == 8)
    assert 40 < b200["serve"]["throughput_tokens_per_s"] < 60  # not 165
    cmd = d["serving_command"]
    assert "--max-num-seqs 1024" in cmd and "--max-num-batched-tokens 8192" in cmd and "--max-num-seqs 1 " not in cmd


RATE_CASE = st.tuples(st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b"]),
                      st.sampled_from(["h100-sxm", "a100-sxm-80gb", "h200"]), st.sampled_from([1, 2, 4, 8]),
                      st.sampled_from([(128, 128), (2048, 256), (512, 2048), (8000, 500)]),
                      st.lists(st.floats(0.01, 1.2), min_size=2, max_size=5))


@settings(max_examples=40, deadline=None)
@given(RATE_CASE)
def test_more_rate_never_lowers_ttft_or_tpot_and_past_saturation_is_unstable(case):
    model, gpu, tp, (n_in, n_out), shares = case
    m = CAT.model(model)
    if m.attention.num_kv_heads % tp and tp < m.attention.num_kv_heads:
        return
    ctx = _ctx(model, gpu, n_in + n_out, n_in, n_out)
    g = grid.make(tp)
    mem = memory.serve_memory(ctx, g)
    if mem.kv_pool[0] <= 0:
        return
    e = Engine.of(ctx, g, mem)
    rates = np.sort(np.array(shares)) * e.saturation[0]
    lds = [e.evaluate(np.array([r])) for r in rates]
    for a, b, ra, rb in zip(lds, lds[1:], rates, rates[1:], strict=False):
        if rb > ra:
            assert b.ttft[0] >= a.ttft[0] * (1 - 1e-9) and b.tpot[0] >= a.tpot[0] * (1 - 1e-9)
    for ld, r in zip(lds, rates, strict=True):
        if r >= e.saturation[0]:
            assert not ld.stable[0] and np.isinf(ld.ttft[0]) and np.isinf(ld.tpot[0])
        else:
            assert ld.stable[0] and np.isfinite(ld.ttft[0])
            # Little's law: requests in the replica = rate x time in it
            assert ld.in_system[0] == pytest.approx(r * (ld.ttft[0] + n_out * ld.tpot[0]), rel=1e-9)


def test_closed_loop_of_one_client_is_one_request_after_another():
    ctx = _ctx("llama-3.1-70b", "b200", 128_000, 127_744, 256)
    g = grid.make(8, [1, 2])
    mem = memory.serve_memory(ctx, g)
    ld = Engine.of(ctx, g, mem).closed_loop(np.ones(2))
    assert ld.in_system == pytest.approx([1.0, 1.0])
    # a lone request's prompt chunks pass every pipeline stage in turn: PP cannot shorten its TTFT
    assert ld.ttft[1] >= ld.ttft[0]
    idle = perf.serve_time(ctx, g)
    # its decode steps carry only itself: close to the idle TPOT (within the secant's 3%)
    assert ld.tpot == pytest.approx(idle.tpot, rel=0.03)


def test_recommend_sizes_replicas_for_a_rate(cli_json):
    args = ["recommend", "--model", "llama-3.1-8b", "--ctx", "4k", "--rate", "40/s", "--input-len", "2k",
            "--output-len", "512", "--ttft-slo", "1s", "--tpot-slo", "40ms", "--slo-percentile", "90",
            "--gpu", "h100", "--objective", "cost"]
    code, d = cli_json(*args)
    assert code == 0 and d["candidates"] and d["inputs"]["rate_rps"] == 40
    for c in d["candidates"]:
        ld = c["serve"]["load"]
        assert ld["mode"] == "rate" and ld["stable"]
        assert ld["replicas"] * ld["rate_rps_per_replica"] == pytest.approx(40)
        assert ld["rate_rps_per_replica"] <= ld["sustainable_rate_rps_per_replica"] * (1 + 1e-9)
        assert ld["ttft_s"]["p90"] <= 1.0 and ld["tpot_s"]["p90"] <= 0.040
        lay = c["layout"]
        assert lay["dp"] == ld["replicas"] and lay["gpus"] == ld["replicas"] * lay["tp"] * lay["pp"] * lay["cp"]
    # cheapest first: $/hour of the whole deployment grows down the list (the rate is fixed)
    usd = [c["cost"]["usd_per_hour"] for c in d["candidates"]]
    assert usd[0] == min(usd)
    # a rate that needs more GPUs than allowed is rejected with its own reason
    code, d = cli_json(*args, "--max-gpus", "1")
    assert code == 1 and "RATE_NEEDS_MORE_GPUS" in d["rejected"]


def test_no_cross_node_tensor_parallelism_unless_asked(cli_json):
    # issue 16: Llama-3.1-405B at 32k on H100 ranked TP=32 over 4 nodes first; practitioners run TP8 x PP2
    code, d = cli_json("recommend", "--model", "llama-3.1-405b", "--ctx", "32k", "--gpu", "h100-sxm")
    assert code == 0 and all(c["layout"]["tp"] <= 8 for c in d["candidates"])
    assert d["rejected"]["CROSS_NODE_TP"] > 0
    code, d = cli_json("recommend", "--model", "llama-3.1-405b", "--ctx", "32k", "--gpu", "h100-sxm",
                       "--allow-cross-node-tp")
    assert code == 0 and "CROSS_NODE_TP" not in d["rejected"]


def test_estimate_reports_an_unstable_rate(cli):
    code, out, _ = cli("estimate", "--model", "llama-70b", "--gpu", "h100", "--tp", "4", "--ctx", "8k",
                       "--rate", "30/s", "--format", "json")
    d = json.loads(out)
    ld = d["serve"]["load"]
    assert code == 0 and not ld["stable"] and ld["rate_rps_per_replica"] > ld["saturation_rate_rps_per_replica"]
    assert d["serve"]["ttft_s"] is None and d["serve"]["load"]["ttft_s"]["p90"] is None  # no finite latency
    # served tokens/s is what the replica can do
    assert d["serve"]["throughput_tokens_per_s"] == pytest.approx(ld["saturation_rate_rps_per_replica"] * 256)
    code, out, _ = cli("estimate", "--model", "llama-70b", "--gpu", "h100", "--tp", "4", "--ctx", "8k",
                       "--rate", "30/s")
    assert "UNSTABLE" in out
    assert cli("estimate", "--model", "llama-70b", "--gpu", "h100", "--tp", "4", "--ctx", "8k", "--rate",
               "fast")[0] == 2
    assert cli("recommend", "--model", "llama-70b", "--slo-percentile", "95")[0] == 2
    assert cli("recommend", "--model", "llama-70b", "--engine", "nope")[0] == 2


@pytest.mark.parametrize("engine,flag", [("sglang", "--max-running-requests"), ("trtllm", "--max_batch_size")])
def test_serve_command_speaks_each_engines_flags(cli_json, engine, flag):
    code, d = cli_json("recommend", "--model", "llama-3.1-8b", "--ctx", "8k", "--gpu", "h100", "--engine", engine)
    assert code == 0 and flag in d["serving_command"]
    assert d["candidates"][0]["serve"]["load"]["engine"]["name"] == engine
    assert d["inputs"]["engine"] == engine


def _check(text: str):
    from tpplan.check import lint

    return lint.check_text(text, "d.yaml", CAT)


def test_check_reads_the_engine_from_the_file():
    from tpplan.check import deployment

    base = "model: llama-3.1-8b\ngpu: h100-sxm\n"
    doc = deployment._Doc(loc=None, index=0)  # type: ignore[arg-type]
    for keys, engine in ((["tensor_parallel_size"], "vllm"), (["tp_size", "mem_fraction_static"], "sglang"),
                         (["max_batch_size"], "trtllm")):
        doc.keys = {k: (k,) for k in keys}
        doc.values = {}
        assert deployment._engine_of(doc) == engine
    # SGLang's spellings of the scheduler limits replace the profile's defaults
    from tpplan.yamlio import load_documents

    (loc,) = load_documents(base + "tp_size: 1\nmax_running_requests: 64\nchunked_prefill_size: 4096\n", "d.yaml")
    d = deployment._Doc(loc=loc, index=1)
    deployment._normalise(d, [])
    s = deployment._resolve(d, CAT, Path("."))
    assert s.workload.engine.name == "sglang"
    assert (s.workload.engine.max_num_seqs, s.workload.engine.max_num_batched_tokens) == (64, 4096)
    assert _check(base + "engine: nope\n")[0].rule == "TPP100"


def test_check_judges_slos_under_load_at_the_files_rate():
    base = ("model: llama-3.1-8b\ngpu: h100-sxm\nmax_model_len: 8k\ninput_len: 2k\noutput_len: 512\n"
            "slo: {ttft_s: 0.5, tpot_s: 0.03}\n")
    assert not [f for f in _check(base + "rate: 1/s\n") if f.level == "error"]
    busy = [f for f in _check(base + "rate: 100/s\n") if f.rule in ("TPP020", "TPP021")]
    assert busy and "100 requests/s" in busy[0].message and "grows without bound" in busy[0].message


def test_check_prices_the_files_replicas_not_the_replicas_the_rate_would_need():
    # a file's rate sizes nothing: its budget is judged on its own replicas (dp 1 x TP 4 = 4 H100s at the
    # catalog's typical $2.49/GPU-hour = $9.96/hour), as estimate prices them. 5.5 requests/s of 2k-token
    # prompts is within the replica's saturation (5.81/s, TPP024's example) but above the 85% recommend plans
    # a replica at, so a search would size 2 replicas ($19.92/hour) for it
    base = ("model: llama-3.1-70b\ngpu: h100-sxm\ntensor_parallel_size: 4\nmax_model_len: 8192\n"
            "input_len: 2000\noutput_len: 256\nrate: 5.5\n")
    assert not _check(base + "budget: {usd_per_hour: 10}\n")
    (f,) = _check(base + "budget: {usd_per_hour: 9}\n")
    assert f.rule == "TPP022" and "4 x h100-sxm" in f.message and "$9.96/hour" in f.message
    # past saturation the file fails on the rate itself, with the replicas that serve it
    (f,) = _check(base.replace("rate: 5.5", "rate: 30"))
    assert f.rule == "TPP024" and "saturate at 5.81 requests/s" in f.message
    assert f.suggestion == {"data_parallel_size": 7}  # 30 / (0.85 x 5.81) = 6.07 -> 7 replicas


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(CAT.gpu_names())), st.sampled_from([1, 2, 4, 8, 16]))
def test_recommend_and_check_agree_on_tensor_parallel_domains(gpu_name, tp):
    """issue 16: recommend and check agree on every layout they both judge. recommend leaves out TP beyond the
    node / NVLink domain (CROSS_NODE_TP) exactly where check warns TPP030."""
    gpu = CAT.gpu(gpu_name)
    m = CAT.model("llama-3.1-8b")
    if tp not in m.valid_tp():
        return
    w = ServeWorkload(ctx=4096, input_len=2048, output_len=256, engine_profile=CAT.engine("vllm"))
    s = planner.search_serve(m, [gpu], w, planner.Constraints(max_gpus=64), planner.Pricing())
    ev = s.evals[0]
    rows = np.nonzero((ev.g.tp == tp) & (ev.g.pp == 1) & (ev.g.cp == 1))[0]
    assert rows.size
    crossed = bool(ev.reasons[rows[0]] & int(grid.Reason.CROSS_NODE_TP))
    rules = {f.rule for f in _check(f"model: llama-3.1-8b\ngpu: {gpu_name}\ntensor_parallel_size: {tp}\n"
                                    "max_model_len: 4096\n")}
    assert crossed == ("TPP030" in rules), (gpu_name, tp, rules)


@pytest.mark.parametrize("model", ["llama-3.1-70b", "mixtral-8x7b"])
def test_rows_that_repeat_a_replica_get_what_solving_every_row_gives(model):
    # a grid whose layouts differ mostly in their replica count (dp): Engine.of solves each distinct replica, and
    # each distinct (replica, load) pair, once; Engine._of solves every row. Same answers (dp only moves the
    # pipeline hand-off off the node, which the replica key keeps)
    ctx = _ctx(model, "h100-sxm", 8192, 2048, 512)
    g = grid.enumerate_layouts(ctx.model, 512, 8)
    mem = memory.serve_memory(ctx, g)
    shared, every = Engine.of(ctx, g, mem), Engine._of(ctx, g, mem)
    assert shared.shapes is not None and len(shared.shapes[0].saturation) < len(g) // 4
    assert every.shapes is None
    np.testing.assert_allclose(shared.saturation, every.saturation, rtol=1e-12)
    np.testing.assert_array_equal(shared.limited_by, every.limited_by)
    rate = every.saturation * np.where(g.dp % 2 == 0, 0.5, 0.8)  # two loads per replica
    for a, b in ((shared.evaluate(rate), every.evaluate(rate)),
                 (shared.closed_loop(g.concurrency.astype(float)), every.closed_loop(g.concurrency.astype(float)))):
        for name in ("rate", "ttft", "tpot", "running", "step_time"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(shared.sustainable(0.85, 0.5, 0.05, 90), every.sustainable(0.85, 0.5, 0.05, 90),
                               rtol=1e-12)


def test_the_batch_at_a_rate_is_the_one_bisection_finds():
    # Engine._n_for solves rate(n) = target by safeguarded false position; bisection (load.bisect_last, 22 halvings
    # of [0, n_peak]) is the reference: the same last n with rate(n) <= target, to 2^-22 of n_peak
    from tpplan.engine.load import BISECTIONS, bisect_last

    ctx = _ctx("llama-3.1-70b", "h100-sxm", 8192, 2048, 512)
    g = grid.enumerate_layouts(ctx.model, 256, 8)
    e = Engine._of(ctx, g, memory.serve_memory(ctx, g))
    for share in (0.0, 0.1, 0.5, 0.9, 0.999, 1.0):
        target = e.saturation * share
        n = e._n_for(target)

        def reached(x, target=target):
            v = e.rate_at(x)
            return np.isfinite(v) & (v <= target)

        ref = bisect_last(reached, np.zeros_like(e.n_peak), e.n_peak.copy())
        assert np.all(np.abs(n - ref) <= e.n_peak * 2.0 ** -BISECTIONS * 1.01)
        assert np.all(e.rate_at(n) <= target * (1 + 1e-12))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "deepseek-v3"]),
       st.sampled_from(["h100-sxm", "a100-sxm-80gb", "b200", "l40s"]),
       st.sampled_from([(128, 128), (2048, 256), (512, 2048), (30000, 1000)]),
       st.sampled_from(["vllm", "sglang", "trtllm"]), st.floats(0.0, 1.0))
def test_the_false_position_solver_lands_where_bisection_does(model, gpu, shape, engine, share):
    """Engine._n_for over whole grids of layouts: the batch at a target rate within bisection's own tolerance
    (2^-22 of n_peak) of load.bisect_last's, and never past the target."""
    from tpplan.engine.load import BISECTIONS, bisect_last

    n_in, n_out = shape
    ctx = _ctx(model, gpu, n_in + n_out, n_in, n_out, engine)
    g = grid.enumerate_layouts(ctx.model, 64, 8)
    e = Engine._of(ctx, g, memory.serve_memory(ctx, g))
    target = e.saturation * share
    n = e._n_for(target)

    def reached(x):
        v = e.rate_at(x)
        return np.isfinite(v) & (v <= target)

    ref = bisect_last(reached, np.zeros_like(e.n_peak), e.n_peak.copy())
    assert np.all(np.abs(n - ref) <= e.n_peak * 2.0 ** -BISECTIONS * 1.01 + 1e-12)
    with np.errstate(invalid="ignore"):
        assert np.all(~(e.rate_at(n) > target * (1 + 1e-12)))


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "deepseek-v3"]),
       st.lists(st.sampled_from(["h100-sxm", "a100-sxm-80gb", "b200", "l40s", "mi300x", "h200"]), min_size=2,
                max_size=4, unique=True),
       st.sampled_from([(128, 128), (2048, 256), (30000, 1000)]), st.sampled_from(["vllm", "sglang", "trtllm"]),
       st.sampled_from([None, "low", "high"]))
def test_engines_built_together_equal_engines_built_one_by_one(model, gpus, shape, engine, band):
    """Engine.of_many (a search's GPU types: each one's step model on its own, coefficients, limits and the
    saturation scan once over every row) gives every row the figures Engine.of gives it, to the bit: GPU types
    whose limits differ (vLLM's max_num_seqs 256 on A100 and L40S, 1024 on H100) included."""
    n_in, n_out = shape
    items = []
    for name in gpus:
        ctx = _ctx(model, name, n_in + n_out, n_in, n_out, engine)
        g = grid.enumerate_layouts(ctx.model, 32, 8)
        items.append((ctx, g, memory.serve_memory(ctx, g), None if band is None else perf.Eff.of(ctx, band)))
    together = Engine.of_many(items)
    assert together is not None
    one_by_one = Engine.concat([Engine.of(*it) for it in items])
    assert one_by_one is not None
    _assert_same_engine(together, one_by_one)


def test_engines_built_together_past_4096_rows_equal_engines_built_one_by_one():
    """The same over ten GPU types of 481 rows each (4,810 rows together): every part's saturation scan is run as
    Engine.of runs it (one 2-D call for a part of at most 4,096 rows), however many rows the parts make together."""
    names = ["h100-sxm", "h200", "b200", "a100-sxm-80gb", "l40s", "mi300x", "h800", "b300", "mi355x", "h100-nvl"]
    items = []
    for name in names:
        ctx = _ctx("llama-3.1-70b", name, 32768, 30000, 1000)
        g = grid.enumerate_layouts(ctx.model, 64, 8)
        items.append((ctx, g, memory.serve_memory(ctx, g), None))
    assert sum(len(it[1]) for it in items) > 4096 and all(len(it[1]) <= 2048 for it in items)
    together = Engine.of_many(items)
    one_by_one = Engine.concat([Engine.of(*it) for it in items])
    assert together is not None and one_by_one is not None
    _assert_same_engine(together, one_by_one)


def _assert_same_engine(a: Engine, b: Engine) -> None:
    """Every array of two engines (and of their coefficients) equal to the bit; scalars equal."""
    from dataclasses import fields

    for f in fields(Engine):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "co":
            for c in fields(x):
                np.testing.assert_array_equal(getattr(x, c.name), getattr(y, c.name))
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        elif f.name != "shapes":
            assert x == y, f.name
