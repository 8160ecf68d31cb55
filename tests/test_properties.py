"""Hypothesis invariants of the engine (no NaN/inf/negative, monotonic, conservation, Pareto)."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpplan.catalog.load import get_catalog
from tpplan.catalog.spec import DTYPE_BYTES
from tpplan.engine import grid, memory, perf
from tpplan.engine.workload import Context, ServeWorkload
from tpplan.plan import serve as planner

CAT = get_catalog()
MODELS = CAT.model_names()
GPUS = CAT.gpu_names()
fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    m = CAT.model(draw(st.sampled_from(MODELS)))
    g = CAT.gpu(draw(st.sampled_from(GPUS)))
    tps = m.valid_tp(64)
    tp = draw(st.sampled_from(tps))
    pp = draw(st.integers(1, min(8, m.num_layers)))
    conc = draw(st.integers(1, 256))
    ctx = draw(st.integers(64, m.max_position_embeddings))
    out = draw(st.integers(1, max(1, ctx // 2)))
    w = ServeWorkload(ctx=ctx, input_len=max(1, ctx - out), output_len=out, concurrency=conc,
                      kv_dtype=draw(st.sampled_from(["bf16", "fp8"])),
                      weight_dtype=draw(st.sampled_from(["bf16", "fp8", "int4"])))
    return Context(model=m, gpu=g, serve=w), tp, pp, conc


@fast
@given(cases())
def test_no_nan_inf_or_negative_and_conservation(case):
    ctx, tp, pp, conc = case
    g = grid.make(tp=tp, pp=pp, concurrency=conc)
    sm = memory.serve_memory(ctx, g)
    t = perf.serve_time(ctx, g)
    for arr in (sm.weights, sm.kv_cache, sm.activations, sm.overhead, sm.total, t.ttft, t.tpot, t.throughput):
        assert np.all(np.isfinite(arr)) and np.all(arr >= 0)
    np.testing.assert_allclose(sm.total, sm.weights + sm.kv_cache + sm.activations + sm.overhead)
    assert 0 <= t.comm_fraction[0] <= 1


@fast
@given(cases())
def test_more_tp_or_pp_never_raises_weight_bytes(case):
    ctx, tp, pp, _ = case
    m = ctx.model
    tps = [t for t in m.valid_tp(128) if t >= tp]
    g = grid.make(tp=tps, pp=pp)
    w, _, _ = memory.weight_bytes_per_gpu(m, g, ctx.serve.weight_dtype, m.dtype)
    assert np.all(np.diff(w) <= 1e-6 * w[:-1])
    if 2 * pp <= m.num_layers:
        w2, _, _ = memory.weight_bytes_per_gpu(m, grid.make(tp=tp, pp=[pp, 2 * pp]), ctx.serve.weight_dtype, m.dtype)
        assert w2[1] <= w2[0] * (1 + 1e-9)


@fast
@given(cases(), st.integers(2, 4))
def test_kv_linear_in_context_and_concurrency(case, k):
    ctx, tp, pp, conc = case
    m = ctx.model
    if set(m.layer_kinds) != {"full"}:  # a window or chunk caps the cache: monotone, not linear
        assert m.mean_cached_tokens(ctx.serve.ctx * k) <= k * m.mean_cached_tokens(ctx.serve.ctx) + 1e-9
        return
    base = dataclasses.replace(ctx.serve, ctx=min(ctx.serve.ctx, m.max_position_embeddings // k))
    c1 = dataclasses.replace(ctx, serve=base)
    ck = dataclasses.replace(ctx, serve=dataclasses.replace(base, ctx=base.ctx * k))
    g = grid.make(tp=tp, pp=pp, concurrency=[conc, conc * k])
    a, b = memory.serve_memory(c1, g), memory.serve_memory(ck, g)
    np.testing.assert_allclose(b.kv_bytes_per_sequence, a.kv_bytes_per_sequence * k)
    np.testing.assert_allclose(a.kv_cache[1], a.kv_cache[0] * k)


@fast
@given(cases())
def test_more_bandwidth_never_slower_and_hbm_bound_holds(case):
    ctx, tp, pp, conc = case
    g = grid.make(tp=tp, pp=pp, concurrency=conc)
    e = perf.Eff.of(ctx)
    t0 = perf.serve_time(ctx, g, e)
    t1 = perf.serve_time(ctx, g, dataclasses.replace(e, hbm=min(1.0, e.hbm * 1.2), busbw_scale=1.2))
    assert t1.tpot[0] <= t0.tpot[0] * (1 + 1e-12) and t1.ttft[0] <= t0.ttft[0] * (1 + 1e-12)
    # every model, MoE included: the bound counts the bytes each stage streams, stage after stage
    assert 0 < t0.hbm_lower_bound_tpot[0] <= t0.tpot[0] * (1 + 1e-9)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(["llama-3.1-8b", "mistral-7b", "qwen2.5-72b"]), st.integers(1024, 32768),
       st.sampled_from(["h100-sxm", "a100-sxm-80gb", "l40s", "h200"]))
def test_pareto_rows_are_non_dominated(model, ctx, gpu):
    m = CAT.model(model)
    ctx = min(ctx, m.max_position_embeddings)
    w = ServeWorkload(ctx=ctx, input_len=ctx // 2, output_len=ctx // 4)
    s = planner.search_serve(m, [CAT.gpu(gpu)], w, planner.Constraints(max_gpus=16), planner.Pricing(), "cost")
    front = planner.pareto_serve(s)
    ev = s.evals[0]
    lat_all = ev.load.request_latency  # the front is on the latency at the operating point
    pts = [(ev.usd_per_mtok[r], lat_all[r]) for _, r in front]
    feas = np.nonzero(ev.reasons == 0)[0]
    for c, lat in pts:
        dominated = (ev.usd_per_mtok[feas] <= c) & (lat_all[feas] <= lat) & (
            (ev.usd_per_mtok[feas] < c) | (lat_all[feas] < lat))
        assert not dominated.any()


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(MODELS), st.integers(1, 128))
def test_every_enumerated_layout_multiplies_out(model, max_gpus):
    m = CAT.model(model)
    g = grid.enumerate_layouts(m, max_gpus, 8)
    assert np.all(g.tp * g.pp * g.dp * g.cp == g.gpus)
    assert np.all(g.gpus <= max_gpus)
    ok = g.reasons == 0
    assert np.all((g.dp * g.cp * g.tp)[ok] % g.ep[ok] == 0)
    assert np.all(m.attention.num_heads % g.tp[ok] == 0)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(["llama-3.1-8b", "mixtral-8x7b", "llama-70b"]), st.integers(1024, 32768),
       st.sampled_from(["latency", "throughput", "cost"]), st.integers(1, 12))
def test_recommend_list_is_sorted_and_holds_no_dominated_row(model, ctx, objective, top):
    """Each listed row ranks no worse than the next and uses fewer GPUs than every better-ranked feasible row
    of its GPU type (else it would only cost more); nothing better on fewer GPUs is left out."""
    m = CAT.model(model)
    ctx = min(ctx, m.max_position_embeddings)
    w = ServeWorkload(ctx=ctx, input_len=ctx // 2, output_len=ctx // 4)
    gpus = [CAT.gpu("h100-sxm"), CAT.gpu("a100-sxm-80gb"), CAT.gpu("l40s")]
    s = planner.search_serve(m, gpus, w, planner.Constraints(max_gpus=16), planner.Pricing(), objective)
    picks = planner.rank_serve(s, objective, top)
    assert len(picks) <= top
    keys = [float(planner.objective_key(s.evals[k], objective)[r]) for k, r in picks]
    assert keys == sorted(keys) or np.allclose(keys, sorted(keys), rtol=1e-9)
    for k, r in picks:
        ev = s.evals[k]
        assert ev.reasons[r] == 0
        key = planner.objective_key(ev, objective)
        feas = ev.reasons == 0
        better = feas & (key < key[r] * (1 - 1e-9) if key[r] > 0 else key < key[r] - abs(key[r]) * 1e-9)
        assert not (better & (ev.g.gpus <= ev.g.gpus[r])).any()
        assert planner.dominated_by(s, objective, k, r) is None


@fast
@given(st.sampled_from(MODELS), st.integers(2, 32), st.data())
def test_a_stated_pipeline_split_holds_every_layer_once(model_name, pp, data):
    """--first/--last-stage-layers: first + middle stages + last = L whenever the split is valid, and the
    heaviest stage never holds fewer layers than the even split's mean."""
    m = CAT.model(model_name)
    L = m.num_layers
    if pp > L:
        return
    first = data.draw(st.integers(1, max(1, L - pp + 1)))
    last = data.draw(st.integers(1, max(1, L - first - max(pp - 2, 0))))
    rest = L - first - last
    if pp == 2 and rest != 0 or pp > 2 and (rest < pp - 2 or rest % (pp - 2)):
        return
    f, la = memory.stage_layers(L, np.array([float(pp)]), (first, last))
    mid = memory.middle_layers(L, np.array([float(pp)]), (first, last))[0] if pp > 2 else 0.0
    assert f[0] + la[0] + (pp - 2) * mid == L
    assert max(f[0], la[0], mid) >= L / pp


@fast
@given(st.sampled_from(MODELS), st.sampled_from([1, 2, 4, 8, 16, 64]), st.sampled_from([0, 1, 2, 3]))
def test_a_smaller_shard_group_never_shrinks_the_model_states(model_name, dp, zero):
    """Hybrid sharding: sharding over fewer ranks (S | dp) never lowers the bytes of model states per GPU,
    and one group of all dp ranks is the default."""
    m = CAT.model(model_name)
    g = grid.make(1, 1, dp, 1, 1)
    params = memory.params_per_gpu(m, g)
    full = sum(memory.model_state_bytes(params, g, zero))
    assert np.allclose(sum(memory.model_state_bytes(params, g, zero, shard_group=dp)), full)
    prev = full
    for s in sorted((s for s in grid.divisors(dp)), reverse=True):
        cur = sum(memory.model_state_bytes(params, g, zero, shard_group=s))
        assert np.all(cur >= prev * (1 - 1e-12))
        prev = cur


@fast
@given(st.sampled_from(MODELS))
def test_gemm_operators_add_up_to_the_matmul_params(name):
    """Every catalog model's GEMM operators (qkv, output, MLP, router, experts, LM head) sum to the active matmul
    weights a token multiplies through, none negative; the breakdown's shares therefore sum to one."""
    m = CAT.model(name)
    ops = perf.gemm_operator_params(m)
    assert all(v >= 0 for v in ops.values())
    assert sum(ops.values()) == m.matmul_params_active
    for phase, tokens in (("prefill", 512.0), ("decode", 8.0)):
        for bound in ("compute", "memory"):
            shares = perf.gemm_operator_shares(m, perf.serve_gemm_weights(m, phase, tokens, bound))
            assert abs(sum(shares.values()) - 1.0) < 1e-12


@fast
@given(st.sampled_from(MODELS), st.sampled_from(GPUS), st.sampled_from([1, 2, 4, 8]))
def test_sequence_parallelism_never_adds_elementwise_time(name, gpu, tp):
    """A training step's elementwise time per GPU with sequence parallelism never exceeds it without (SP shards
    the norms and residual adds TP repeats; TP shards the rest either way), is equal at TP 1, and is the
    forward's elementwise_bytes_per_token x 3 passes plus the loss's bytes when nothing is split."""
    from tpplan.engine.workload import TrainWorkload

    m = CAT.model(name)
    if tp not in m.valid_tp(64):
        return
    g = grid.make(tp=tp)
    t = {}
    for sp in (True, False):
        ctx = Context(model=m, gpu=CAT.gpu(gpu), train=TrainWorkload(seq_len=2048, global_batch=4,
                                                                    sequence_parallel=sp))
        t[sp] = float(perf.train_time(ctx, g).elementwise[0])
    assert t[True] <= t[False] * (1 + 1e-12)
    if tp == 1:
        assert t[True] == t[False]
        bw = CAT.gpu(gpu).hbm.bandwidth_bytes_per_s * CAT.gpu(gpu).calibration.hbm.value
        act_b = DTYPE_BYTES[m.dtype]
        loss = perf.LOSS_BYTES_PER_LOGIT * m.vocab_size
        assert t[True] == approx_rel(4 * 2048 * (3 * perf.elementwise_bytes_per_token(m, act_b) + loss) / bw)


def approx_rel(x: float):
    import pytest

    return pytest.approx(x, rel=1e-12)
