"""Disaggregated serving (issue 21): a prefill pool and a decode pool, sized to a request rate.

Owns the two pools' closed forms (on load.py's step coefficients), the KV hand-off between them and the
search over (prefill layout, decode layout) pairs; the planner's aggregated search is the comparison.

Model (docs/metrics.md, 'Disaggregated serving'):
- A prefill instance runs prompt chunks only: a step of p tokens takes ``T(0, p)`` (load.Coefficients). It
  saturates at ``budget / (prefill_len x T(0, budget))`` requests/s (full steps); a request waits as in M/D/1
  with 1 / saturation as service time, then its own chunks run, each sharing a step with others' prompts.
- The prompt's KV moves to a decode instance over the NICs (RDMA, one direction per GPU): input_len x KV bytes
  per token, each GPU sending (receiving) its shard, the slower side's aggregate bandwidth at the inter-node
  calibration. vLLM's NixlConnector pulls a request's blocks once its prefill is
  done (kv_connector/v1/nixl_connector.py), so the transfer is exposed, not overlapped layer by layer.
- A decode instance runs decode steps only: ``n`` sequences, step ``T(n, 0)``, rate ``n / (steps x T)``, TPOT
  the step a sequence sees with ``1 + n`` others (Poisson arrivals see time averages), over E with
  speculative decoding. Its batch is bounded by max_num_seqs, the KV pool (each sequence holds its prompt and
  half its output) and the step budget.
- TTFT = prefill queueing + prefill chunks + the transfer; TPOT from the decode pool alone. Each pool gets
  ceil(rate / its sustainable rate) replicas: neither is the bottleneck by a replica's worth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import numpy.typing as npt

from tpplan.catalog.spec import DTYPE_BYTES, GpuSpec, ModelSpec
from tpplan.engine import cost, grid, memory
from tpplan.engine.grid import Grid
from tpplan.engine.load import (
    Coefficients,
    bisect_last,
    coefficients,
    kv_admitted,
    md1_wait,
    replicas_for,
    wait_quantile,
)
from tpplan.engine.workload import Context, ServeWorkload
from tpplan.units import format_sig

if TYPE_CHECKING:
    from tpplan import result_types as rt

FArray = npt.NDArray[np.float64]
KEEP = 48
"""Cheapest feasible rows of each pool kept for the pair search (every pool row's cost is independent of the
other pool; only the KV transfer couples them)."""


@dataclass(frozen=True, eq=False)
class Pool:
    """One pool's rows (layouts on one GPU type) at the deployment's rate."""

    ctx: Context
    g: Grid
    role: str
    saturation: FArray
    sustainable: FArray
    """Largest rate per replica within --max-utilization of saturation and the pool's SLO (0: none)."""
    replicas: FArray
    rate: FArray
    """Requests/s per replica: rate / replicas."""
    latency: FArray
    """Prefill: TTFT without the transfer; decode: TPOT."""
    usd_per_hour: FArray
    ok: npt.NDArray[np.bool_]
    max_running: FArray
    slo_latency: FArray
    """``latency`` at --slo-percentile (the mean without one): what the pool's SLO is judged on."""

    @property
    def gpus(self) -> FArray:
        return self.replicas * (self.g.tp * self.g.pp).astype(np.float64)


def _rows(model: ModelSpec, max_gpus: int, node: int, max_pp: int | None = None) -> Grid:
    base = grid.enumerate_layouts(model, max_gpus, node, replicas=False, max_pp=max_pp)
    # a MoE layout may need data-parallel ranks for its expert-parallel group (vLLM: EP = TP x DP, attention
    # data-parallel): such an instance is dp ranks of tp x pp GPUs, and a pool takes whole instances
    return base.take(np.flatnonzero(base.cp == 1))


def _fits(ctx: Context, g: Grid, allow_cross_node_tp: bool) -> tuple[memory.ServeMemory, npt.NDArray[np.bool_]]:
    mem = memory.serve_memory(ctx, g)
    fixed = mem.fixed
    ok = (g.reasons == 0) & (fixed + mem.kv_bytes_per_sequence <= mem.usable)
    if not allow_cross_node_tp:
        ok &= g.tp <= grid.tp_domain(ctx.gpu, ctx.node_size)
    return mem, ok


class _Prefill:
    def __init__(self, ctx: Context, g: Grid, co: Coefficients) -> None:
        assert ctx.serve is not None
        w = ctx.serve
        self.n = float(w.prefill_len)
        self.mbt = float(w.engine.max_num_batched_tokens)
        self.pp = g.pp.astype(np.float64)
        self.budget = self.mbt * self.pp
        self.co = co
        with np.errstate(divide="ignore", invalid="ignore"):
            self.sat = self.budget / (self.n * co.step(0.0, self.budget))

    def ttft(self, rate: FArray, pct: int | None = None) -> FArray:
        """Queueing + the request's own chunks, each in a step that also carries the prompt tokens the load
        brings (rate / saturation of a full budget), through every stage. ``pct``: the wait at that percentile
        (the aggregated load model's exponential tail, load.wait_quantile), the chunks being deterministic."""
        rho = np.clip(rate / self.sat, 0.0, 1.0)
        own = min(self.n, self.mbt)
        chunks = np.ceil(self.n / own)
        tokens = np.minimum(np.maximum(own * self.pp, rho * self.budget), self.budget)
        wait, rho_w = md1_wait(rate, self.sat)
        if pct is not None:
            wait = wait_quantile(wait, rho_w, pct, True)
        return wait + chunks * self.co.step(0.0, tokens)


class _Decode:
    def __init__(self, ctx: Context, g: Grid, co: Coefficients, cap: FArray) -> None:
        assert ctx.serve is not None
        w = ctx.serve
        self.steps = w.output_len / w.decode_tokens_per_step
        self.per_step = w.decode_tokens_per_step
        self.co = co
        budget = float(w.engine.max_num_batched_tokens) * g.pp.astype(np.float64)
        self.n_max = np.maximum(np.minimum(cap, budget / w.verify_tokens), 0.0)
        self.sat = self.rate(self.n_max)

    def rate(self, n: FArray) -> FArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, n / (self.steps * self.co.step(n, 0.0)), 0.0)

    def tpot(self, n: FArray) -> FArray:
        return self.co.step(1.0 + n, 0.0) / self.per_step

    def n_for(self, target: FArray) -> FArray:
        return bisect_last(lambda n: self.rate(n) <= target, np.zeros_like(self.n_max), self.n_max.copy())


def _largest_rate(top: FArray, latency_at: Any, slo: float | FArray | None) -> FArray:
    """Largest rate in [0, top] whose latency is within the SLO (latency grows with the rate: bisection)."""
    if slo is None:
        return top
    ok_top = latency_at(top) <= slo
    lo = bisect_last(lambda r: latency_at(r) <= slo, np.zeros_like(top), top.copy())
    none = ~(latency_at(top * 1e-6) <= slo)
    return np.where(ok_top, top, np.where(none, 0.0, lo))


def _size(sust: FArray, rate: float, ok: npt.NDArray[np.bool_], dp: FArray,
          given: float | None = None) -> tuple[FArray, FArray]:
    """Replicas, in whole instances of ``dp`` ranks (``given`` instances, else the fewest whose ranks sustain
    the rate), and the rate per replica (one rank of tp x pp GPUs)."""
    if given is None:
        return replicas_for(rate, sust, dp, ok)
    replicas = dp * float(given)
    with np.errstate(divide="ignore"):
        return replicas, rate / replicas


def prefill_pool(ctx: Context, g: Grid, rate: float, ttft_budget: float | FArray | None, max_util: float, price: float,
                 allow_cross_node_tp: bool, replicas_given: float | None = None, pct: int | None = None) -> Pool:
    mem, ok = _fits(ctx, g, allow_cross_node_tp)
    assert ctx.serve is not None
    p_ref = np.maximum(np.minimum(ctx.serve.engine.max_num_batched_tokens * g.pp.astype(np.float64),
                                  float(ctx.serve.prefill_len)), 1.0)
    co = coefficients(ctx, g, np.ones(len(g)), p_ref)
    pf = _Prefill(ctx, g, co)
    sust = _largest_rate(pf.sat * max_util, lambda r: pf.ttft(r, pct), ttft_budget)
    replicas, per = _size(sust, rate, ok, g.dp.astype(np.float64), replicas_given)
    live = np.isfinite(replicas) & (per < pf.sat)
    lat = np.where(live, pf.ttft(per), np.inf)
    usd = replicas * (g.tp * g.pp).astype(np.float64) * price
    return Pool(ctx=ctx, g=g, role="prefill", saturation=pf.sat, sustainable=sust, replicas=replicas, rate=per,
                latency=lat, usd_per_hour=usd, ok=ok & np.isfinite(replicas), max_running=np.zeros(len(g)),
                slo_latency=lat if pct is None else np.where(live, pf.ttft(per, pct), np.inf))


def decode_pool(ctx: Context, g: Grid, rate: float, tpot_slo: float | None, max_util: float, price: float,
                allow_cross_node_tp: bool, replicas_given: float | None = None) -> Pool:
    assert ctx.serve is not None
    w = ctx.serve
    mem, ok = _fits(ctx, g, allow_cross_node_tp)
    cap = np.minimum(float(w.engine.max_num_seqs), kv_admitted(ctx, g, mem))
    n_ref = np.maximum(cap, 1.0)
    co = coefficients(ctx, g, n_ref, np.ones(len(g)))
    dc = _Decode(ctx, g, co, cap)
    sust = _largest_rate(dc.sat * max_util, lambda r: dc.tpot(dc.n_for(r)), tpot_slo)
    replicas, per = _size(sust, rate, ok, g.dp.astype(np.float64), replicas_given)
    lat = np.where(np.isfinite(replicas) & (per < dc.sat), dc.tpot(dc.n_for(per)), np.inf)
    usd = replicas * (g.tp * g.pp).astype(np.float64) * price
    # a decode pool's steps carry no prompt chunks: every step alike, so TPOT at any percentile is its mean
    return Pool(ctx=ctx, g=g, role="decode", saturation=dc.sat, sustainable=sust, replicas=replicas, rate=per,
                latency=lat, usd_per_hour=usd, ok=ok & np.isfinite(replicas), max_running=cap, slo_latency=lat)


def transfer_seconds(model: ModelSpec, w: ServeWorkload, gp: GpuSpec, gpus_p: FArray, gd: GpuSpec,
                     gpus_d: FArray) -> FArray:
    """The prompt's KV from a prefill to a decode instance: input_len x KV bytes per token (whole model, the
    KV dtype), each side's GPUs sending / receiving their shard in parallel over their own NIC (RDMA, one
    direction): per GPU, the inter-node calibration's latency plus bytes / its bus bandwidth (nccl-tests over
    the same NICs, hardware/*.yaml calibration.inter_node); the slower side sets the time."""
    total = model.kv_cache_bytes_per_token(DTYPE_BYTES[w.kv_dtype]) * float(w.input_len)

    def side(gpu: GpuSpec, n: FArray) -> FArray:
        c = gpu.calibration.inter_node
        bw = min(float(c.busbw_bytes_per_s), float(gpu.scale_out.nic_bandwidth_bytes_per_s))
        return c.alpha_per_step_s + total / np.asarray(n, dtype=np.float64) / bw

    return np.maximum(side(gp, gpus_p), side(gd, gpus_d))


class PairSearch(TypedDict):
    """What ``search`` found: the pairs listed, why there are none, and the rows evaluated."""

    pairs: list[rt.DisaggPair]
    why: list[str]
    rows_evaluated: int


def _label(g: Grid, i: int, gpu: str) -> rt.PoolLayout:
    """One instance of the pool: tp x pp GPUs per rank, dp ranks (the expert-parallel group's), ep."""
    return {"gpu": gpu, "tp": int(g.tp[i]), "pp": int(g.pp[i]), "dp": int(g.dp[i]), "ep": int(g.ep[i])}


def _pool_obj(p: Pool, i: int) -> rt.DisaggPool:
    assert p.ctx.serve is not None
    gpus_one = int(p.g.tp[i] * p.g.pp[i])
    out: rt.DisaggPool = {
        "layout": _label(p.g, i, p.ctx.gpu.name), "replicas": int(p.replicas[i] / p.g.dp[i]),
        "ranks": int(p.replicas[i]), "gpus": int(p.replicas[i]) * gpus_one,
        "rate_rps_per_replica": float(p.rate[i] * p.g.dp[i]),
        "saturation_rate_rps_per_replica": float(p.saturation[i] * p.g.dp[i]),
        "sustainable_rate_rps_per_replica": float(p.sustainable[i] * p.g.dp[i]),
        "capacity_rps": float(p.replicas[i] * p.sustainable[i]), "usd_per_hour": float(p.usd_per_hour[i])}
    if p.role == "prefill":
        out["ttft_s_without_transfer"] = float(p.latency[i])
    else:
        out["tpot_s"] = float(p.latency[i])
        out["max_running_seqs"] = float(p.max_running[i])
    return out


def _pair_obj(model: ModelSpec, w: ServeWorkload, rate: float, p: Pool, i: int, d: Pool, j: int,
              xfer: float, pct: int | None = None) -> rt.DisaggEstimatePair:
    ttft, tpot = float(p.latency[i]) + xfer, float(d.latency[j])
    usd = float(p.usd_per_hour[i] + d.usd_per_hour[j])
    out_tps = rate * w.output_len
    out: rt.DisaggEstimatePair = {
        "prefill": _pool_obj(p, i), "decode": _pool_obj(d, j),
        "ratio": f"{int(p.replicas[i] / p.g.dp[i])}P{int(d.replicas[j] / d.g.dp[j])}D",
        "kv_transfer": {"bytes_per_request": model.kv_cache_bytes_per_token(DTYPE_BYTES[w.kv_dtype])
                        * float(w.input_len), "seconds": xfer, "overlapped": False},
        "ttft_s": ttft, "tpot_s": tpot, "request_latency_s": ttft + w.output_len * tpot,
        "gpus": int(p.gpus[i] + d.gpus[j]), "usd_per_hour": usd, "throughput_tokens_per_s": out_tps,
        "usd_per_million_tokens": float(cost.usd_per_million_tokens(usd, out_tps)),
    }
    if pct is None:
        return out
    return {"slo_percentile": pct, "ttft_s_at_slo_percentile": float(p.slo_latency[i]) + xfer,
            "tpot_s_at_slo_percentile": float(d.slo_latency[j]), **out}


def estimate_pair(model: ModelSpec, w: ServeWorkload, rate: float, pools: dict[str, dict[str, Any]],
                  prices: dict[str, float], ttft_slo: float | None, tpot_slo: float | None,
                  gpus_per_node: int | None = None, max_util: float = 0.85) -> rt.DisaggEstimatePair:
    """``estimate --disagg``: the pools the user gives ({'prefill': {gpu, tp, pp, ep, replicas}, 'decode':
    ...}) at ``rate``: the object of one of recommend --disagg's pairs, plus what fails."""
    got: dict[str, Pool] = {}
    problems: list[str] = []
    for role, fn in (("prefill", prefill_pool), ("decode", decode_pool)):
        spec = pools[role]
        gpu = spec["gpu"]
        ctx = Context(model=model, gpu=gpu, serve=w.for_gpu(gpu), gpus_per_node=gpus_per_node)
        g = grid.make(spec["tp"], spec["pp"], spec.get("dp", 1), 1, spec["ep"])
        g = g.with_reasons(grid.structural_reasons(model, g, w.ctx))
        p = fn(ctx, g, rate, None, max_util, prices[gpu.name], True, float(spec["replicas"]))
        got[role] = p
        if not bool(_fits(ctx, g, True)[1][0]):
            problems.append(f"the {role} layout (tp={spec['tp']}, pp={spec['pp']}, ep={spec['ep']}) is not valid "
                            f"for {model.name} or does not fit on {gpu.name}")
        elif not np.isfinite(p.latency[0]):
            problems.append(f"the {role} pool's {spec['replicas']} replica(s) saturate at "
                            f"{format_sig(spec['replicas'] * float(p.saturation[0]))} requests/s, below {rate:g}/s")
    p, d = got["prefill"], got["decode"]
    xfer = float(transfer_seconds(model, w, p.ctx.gpu, p.gpus / p.replicas, d.ctx.gpu, d.gpus / d.replicas)[0])
    out = _pair_obj(model, w, rate, p, 0, d, 0, xfer)
    ttft, tpot = float(p.latency[0]) + xfer, float(d.latency[0])  # the pair's ttft_s and tpot_s
    if ttft_slo is not None and ttft > ttft_slo:
        problems.append(f"TTFT {format_sig(ttft)} s (prefill {format_sig(float(p.latency[0]))} s + KV "
                        f"hand-off {format_sig(xfer)} s) is above the SLO {ttft_slo:g} s")
    if tpot_slo is not None and tpot > tpot_slo:
        problems.append(f"TPOT {format_sig(tpot)} s is above the SLO {tpot_slo:g} s")
    out["feasible"] = not problems
    out["problems"] = problems
    out["commands"] = {role: pool_command(model, got[role], 0, role) for role in ("prefill", "decode")}
    return out


def search(model: ModelSpec, gpus: list[GpuSpec], w: ServeWorkload, rate: float, ttft_slo: float | None,
           tpot_slo: float | None, max_util: float, prices: dict[str, float], max_gpus: int,
           allow_cross_node_tp: bool = False, gpus_per_node: int | None = None, top: int = 5,
           pct: int | None = None, picked: list[tuple[tuple[Pool, int], tuple[Pool, int]]] | None = None,
           max_pp: int | None = None) -> PairSearch:
    """Every (prefill layout, decode layout) pair over the GPU types, each pool sized to ``rate``; the pairs
    within the SLOs (at percentile ``pct``, else at the mean) and --max-gpus, cheapest first. ``picked``
    receives each listed pair's pools and rows, in the pairs' order."""
    pre: list[Pool] = []
    dec: list[Pool] = []
    by_node: dict[int, Grid] = {}  # one grid per node size: GPU types share it and what grid.memo keeps of it
    for gpu in gpus:
        node = gpus_per_node or gpu.node.gpus_per_node
        ctx = Context(model=model, gpu=gpu, serve=w.for_gpu(gpu), gpus_per_node=gpus_per_node)
        g = by_node.get(node)
        if g is None:
            g = by_node[node] = _rows(model, max_gpus, node, max_pp)
        if not len(g):
            continue
        price = prices[gpu.name]
        # each prefill row's TTFT budget leaves room for the transfer its own NICs allow (the pair search
        # checks the pair's, which the decode side can only slow)
        own = (g.tp * g.pp).astype(np.float64)
        assert ctx.serve is not None
        budget = None if ttft_slo is None else ttft_slo - transfer_seconds(model, ctx.serve, gpu, own, gpu, own)
        pre.append(prefill_pool(ctx, g, rate, budget, max_util, price, allow_cross_node_tp, pct=pct))
        dec.append(decode_pool(ctx, g, rate, tpot_slo, max_util, price, allow_cross_node_tp))

    def best(pools: list[Pool]) -> list[tuple[Pool, int]]:
        rows = [(float(p.usd_per_hour[i]), k, int(i)) for k, p in enumerate(pools)
                for i in np.flatnonzero(p.ok)]
        rows.sort()
        return [(pools[k], i) for _, k, i in rows[:KEEP]]

    bp, bd = best(pre), best(dec)
    pairs: list[rt.DisaggPair] = []
    if bp and bd:
        pg = np.array([p.gpus[i] for p, i in bp])
        dg = np.array([p.gpus[i] for p, i in bd])
        xfer = np.zeros((len(bp), len(bd)))
        for a, (p, i) in enumerate(bp):
            for gd_name in {d.ctx.gpu.name for d, _ in bd}:
                cols = [b for b, (d, _) in enumerate(bd) if d.ctx.gpu.name == gd_name]
                gd = bd[cols[0]][0].ctx.gpu
                xfer[a, cols] = transfer_seconds(model, w, p.ctx.gpu, np.full(len(cols), float(p.g.tp[i] * p.g.pp[i])),
                                                 gd, np.array([float(bd[c][0].g.tp[bd[c][1]] * bd[c][0].g.pp[bd[c][1]])
                                                               for c in cols]))
        ttft = np.array([p.latency[i] for p, i in bp])[:, None] + xfer
        tpot = np.array([d.latency[i] for d, i in bd])[None, :] + 0 * xfer
        ttft_slo_at = np.array([p.slo_latency[i] for p, i in bp])[:, None] + xfer
        usd = np.array([p.usd_per_hour[i] for p, i in bp])[:, None] + np.array([d.usd_per_hour[i] for d, i in bd])
        total = pg[:, None] + dg[None, :]
        ok = (total <= max_gpus) & np.isfinite(ttft) & np.isfinite(tpot)
        if ttft_slo is not None:
            ok &= ttft_slo_at <= ttft_slo
        if tpot_slo is not None:
            ok &= tpot <= tpot_slo
        order = np.lexsort((ttft.ravel() + w.output_len * tpot.ravel(), usd.ravel()))
        for flat in order:
            if not ok.ravel()[flat] or len(pairs) >= top:
                continue
            a, b = divmod(int(flat), len(bd))
            (p, i), (d, j) = bp[a], bd[b]
            pairs.append(_pair_obj(model, w, rate, p, i, d, j, float(xfer[a, b]), pct))
            if picked is not None:
                picked.append(((p, i), (d, j)))
    why = []
    if not pairs:
        if not bp:
            why.append("no prefill layout meets the TTFT SLO (less the KV transfer) within --max-gpus")
        if not bd:
            why.append("no decode layout meets the TPOT SLO within --max-gpus")
        if bp and bd:
            why.append("no pair of pools meets the TTFT SLO with the KV transfer, or fits in --max-gpus")
    return {"pairs": pairs, "why": why,
            "rows_evaluated": int(sum(len(p.g) for p in pre) + sum(len(d.g) for d in dec))}


def pool_command(model: ModelSpec, pool: Pool, i: int, role: str) -> str:
    """The serve command of row ``i``'s instances of a pool: the engine's own flags (planner.vllm_command, at the
    pool GPU's engine limits) plus its disaggregation switch: vLLM --kv-transfer-config with the NixlConnector
    (docs 'NixlConnector usage'; a router such as Dynamo or llm-d pairs the instances), SGLang
    --disaggregation-mode prefill|decode."""
    import json
    import shlex

    from tpplan.plan.serve import vllm_command

    wg = pool.ctx.serve
    assert wg is not None
    e = wg.engine
    g = pool.g
    base = vllm_command(model, wg, int(g.tp[i]), int(g.pp[i]), int(g.dp[i]), int(g.ep[i]))
    if e.name == "sglang":
        return base + " " + shlex.join(["--disaggregation-mode", role, "--disaggregation-transfer-backend", "nixl"])
    if e.name == "vllm":
        cfg = json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"}, separators=(",", ":"))
        return base + " " + shlex.join(["--kv-transfer-config", cfg])
    return base + f"  # {role} instance of trtllm-serve disaggregated (its config file names the {role} servers)"


def dynamo_command(model: ModelSpec, pool: Pool, i: int, role: str) -> str:
    """The same instances as an NVIDIA Dynamo vLLM worker (``python -m dynamo.vllm``, which takes vLLM's engine
    arguments; prefill workers carry ``--is-prefill-worker``); Dynamo's frontend routes between them."""
    import shlex

    assert pool.ctx.serve is not None
    g = pool.g
    args = ["python", "-m", "dynamo.vllm", "--model", model.hf_id or model.name,
            "--tensor-parallel-size", str(int(g.tp[i]))]
    if g.pp[i] > 1:
        args += ["--pipeline-parallel-size", str(int(g.pp[i]))]
    if g.dp[i] > 1:
        args += ["--data-parallel-size", str(int(g.dp[i]))]
    if g.ep[i] > 1:
        args.append("--enable-expert-parallel")
    args += ["--max-model-len", str(pool.ctx.serve.ctx)]
    if role == "prefill":
        args.append("--is-prefill-worker")
    return shlex.join(args)
