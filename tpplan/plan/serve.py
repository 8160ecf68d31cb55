"""The library API behind ``estimate`` and ``recommend``: evaluate grids, rank, explain, build results.

Everything here is pure: no printing, no environment, no exit. Results are plain dicts that follow the JSON
contract of docs/metrics.md and tpplan/results.py (the renderers turn them into tables, markdown or CSV).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt

from tpplan import __version__
from tpplan.catalog import accuracy
from tpplan.catalog.spec import Efficiency, GpuSpec, ModelSpec
from tpplan.engine import comm, cost, grid, memory, perf
from tpplan.engine.grid import Grid, Reason
from tpplan.engine.load import MAX_UTILIZATION, Engine, Load, replicas_for
from tpplan.engine.workload import Context, ServeWorkload
from tpplan.errors import LayoutError, TpplanError
from tpplan.plan import search
from tpplan.units import format_sig

if TYPE_CHECKING:
    from tpplan import result_types as rt

SCHEMA_VERSION: Literal[1] = 1
FArray = npt.NDArray[np.float64]
Objective = Literal["latency", "throughput", "cost"]
CONCURRENCY_LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Constraints:
    ttft_slo_s: float | None = None
    tpot_slo_s: float | None = None
    budget_usd_per_hour: float | None = None
    max_gpus: int = 64
    min_concurrency: int = 1
    rate_rps: float | None = None
    """Requests/s the whole deployment must sustain (open loop, Poisson): sizes the replicas."""
    slo_percentile: int | None = None
    """50, 90 or 99: the SLOs hold at that percentile (None: at the mean)."""
    max_utilization: float = MAX_UTILIZATION
    """Plan a replica at no more than this share of its saturation rate."""
    allow_cross_node_tp: bool = False
    """Search tensor parallelism beyond one node / NVLink domain (serving)."""
    max_pp: int | None = None
    """Search pipeline parallelism up to this many stages (None: up to the layer count)."""

    def to_json(self) -> dict[str, Any]:
        """The result's ``inputs.constraints``."""
        return {"ttft_slo_s": self.ttft_slo_s, "tpot_slo_s": self.tpot_slo_s,
                "budget_usd_per_hour": self.budget_usd_per_hour, "max_gpus": self.max_gpus,
                "min_concurrency": self.min_concurrency, "max_pp": self.max_pp}


@dataclass(frozen=True)
class Pricing:
    tier: rt.PriceTier = "typical"
    overrides: dict[str, float] = field(default_factory=dict)
    sources: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    """GPU name -> (as_of, source) of an override that came from a --prices sheet."""

    def price(self, gpu: GpuSpec) -> float:
        return cost.price_per_gpu_hour(gpu, self.tier, self.overrides)

    def overridden(self, gpu: GpuSpec) -> bool:
        """A --price override names this GPU (by name or alias): it replaces every tier."""
        return cost.override_for(gpu, self.overrides) is not None

    def override_source(self, gpu: GpuSpec) -> tuple[str | None, str] | None:
        """(as_of, source) of this GPU's override: its --prices sheet row, or the command line; None when
        the catalog's tiers apply."""
        if not self.overridden(gpu):
            return None
        sheet = next((self.sources[k] for k in (gpu.name, *gpu.aliases) if k in self.sources), None)
        return sheet or (None, "--price on the command line")

    def tiers(self, gpu: GpuSpec) -> dict[str, float]:
        """$/GPU-hour at the low, typical and high tiers; an override (the user's contract price) replaces
        all three."""
        if self.overridden(gpu):
            p = self.price(gpu)
            return dict.fromkeys(cost.TIERS, p)
        return {t: float(getattr(gpu.prices, t).usd_per_hour) for t in cost.TIERS}


@dataclass(eq=False)
class ServeEval:
    """Arrays over one GPU's grid (central estimates) plus the reasons bitmask."""

    ctx: Context
    g: Grid
    mem: memory.ServeMemory
    usd_per_hour: FArray
    usd_per_mtok: FArray
    reasons: npt.NDArray[np.int64]
    price: float
    load: LoadEval | None = None
    tiers: dict[str, float] = field(default_factory=dict)
    """$/GPU-hour of this GPU at the low, typical and high price tiers (the cost bands), as Pricing.tiers."""

    @cached_property
    def t(self) -> perf.ServeTime:
        """The idle replica's prefill and decode step of every row (serve.idle, the comm fields and
        --breakdown of an estimate object). Nothing ranks or rejects by it, so a search computes it only for
        the GPU types whose rows it prints (a third of a search's time when every type paid for it); each row's
        figures are its own, whichever rows are computed with it."""
        return perf.serve_time(self.ctx, self.g)


@dataclass(eq=False)
class LoadEval:
    """The operating point of every row under load (tpplan/engine/load.py) and what the deployment costs there."""

    mode: str
    """'concurrency' (closed loop at the row's concurrency), 'sustainable' (the largest rate within
    --max-utilization and the SLOs), 'rate' (--rate split over the replicas)."""
    load: Load
    replicas: FArray
    gpus: FArray
    """GPUs of the whole deployment (replicas x tp x pp x cp)."""
    output_tokens_per_s: FArray
    total_tokens_per_s: FArray
    usd_per_mtok_total: FArray
    out_len: float = 0.0
    cons: Constraints = field(default_factory=lambda: Constraints())
    at: str = "concurrency"
    slo_ttft: FArray | None = None
    """The TTFT each row's SLO is judged on (at --slo-percentile): at the operating point in a closed loop;
    where no rate meets the SLOs, at a trickle of requests (the least any rate can do)."""
    slo_tpot: FArray | None = None

    def split(self, cuts: npt.NDArray[np.int64]) -> list[LoadEval]:
        """This evaluation's rows cut at ``cuts`` (np.split offsets), one LoadEval per piece."""
        loads = self.load.split(cuts)
        arrays = {a: np.split(getattr(self, a), cuts)
                  for a in ("replicas", "gpus", "output_tokens_per_s", "total_tokens_per_s", "usd_per_mtok_total")}
        assert self.slo_ttft is None and self.slo_tpot is None
        return [LoadEval(mode=self.mode, load=ld, **{a: v[i] for a, v in arrays.items()}, out_len=self.out_len,
                         cons=self.cons, at=self.at) for i, ld in enumerate(loads)]

    def ttft(self, pct: int | None) -> FArray:
        return self.load.ttft if pct is None else self.load.ttft_pct[pct]

    def tpot(self, pct: int | None) -> FArray:
        return self.load.tpot if pct is None else self.load.tpot_pct[pct]

    @property
    def request_latency(self) -> FArray:
        """Mean time from a request's arrival to its last token: TTFT + output_len x TPOT."""
        return self.load.ttft + self.out_len * self.load.tpot


def tool_info() -> rt.Tool:
    return {"name": "tpplan", "version": __version__}


def evaluate_load(ctx: Context, g: Grid, mem: memory.ServeMemory | None, cons: Constraints, at: str,
                  price: float | FArray, eff: perf.Eff | None = None, eng: Engine | None = None,
                  replicas: FArray | None = None) -> LoadEval:
    """Every row at its operating point: ``--rate`` split over as many replicas as it needs (``replicas``:
    over exactly these, a deployment already sized), else the closed loop at the row's concurrency
    (``at='concurrency'``) or the largest sustainable rate. ``eng``: the engine of these rows when the caller
    built it (then ``mem`` and ``eff`` are not used); only the workload of ``ctx`` is read then, so the rows of
    several GPU types (Engine.concat, a price per row) solve at once."""
    assert ctx.serve is not None
    w = ctx.serve
    if eng is None:
        assert mem is not None
        eng = Engine.of(ctx, g, mem, eff)
    sust = eng.sustainable(cons.max_utilization, cons.ttft_slo_s, cons.tpot_slo_s, cons.slo_percentile)
    dp = g.dp.astype(np.float64)
    if cons.rate_rps is not None:
        if replicas is None:
            replicas, per = replicas_for(cons.rate_rps, sust, dp)
        else:  # the deployment's replicas (inf: none serves the rate; no load)
            with np.errstate(divide="ignore", invalid="ignore"):
                per = np.where(np.isfinite(replicas), cons.rate_rps / np.where(np.isfinite(replicas), replicas,
                                                                                1.0), 0.0)
        ld = eng.evaluate(per, sustainable=sust)
        mode = "rate"
    elif at == "sustainable":
        replicas = dp
        ld = eng.evaluate(sust, sustainable=sust)
        mode = "sustainable"
    else:
        replicas = dp
        ld = replace(eng.closed_loop(g.concurrency.astype(np.float64)), sustainable_rate=sust)
        mode = "concurrency"
    return LoadEval(mode=mode, load=ld, **_deployment(w, g, ld, replicas, price), out_len=float(w.output_len),
                    cons=cons, at=at)


def _deployment(w: ServeWorkload, g: Grid, ld: Load, replicas: FArray, price: float | FArray) -> dict[str, Any]:
    """LoadEval's deployment arrays: the rows' operating point ``ld`` on ``replicas`` replicas each."""
    gpus = replicas * (g.tp * g.pp * g.cp).astype(np.float64)
    served = np.minimum(ld.rate, ld.saturation_rate)  # past saturation a replica serves what it can
    with np.errstate(divide="ignore", invalid="ignore"):  # no replica count serves the rate: inf x 0 is nan
        total = replicas * served * (w.input_len + w.output_len)
        return {"replicas": replicas, "gpus": gpus, "output_tokens_per_s": replicas * served * w.output_len,
                "total_tokens_per_s": total, "usd_per_mtok_total": cost.usd_per_million_tokens(gpus * price, total)}


def evaluate_serve(ctx: Context, g: Grid, pricing: Pricing, cons: Constraints | None = None,
                   at: str = "concurrency") -> ServeEval:
    """Memory, time, cost and feasibility bits of every row of ``g`` on ``ctx.gpu``, each at its operating
    point under load (``evaluate_load``)."""
    return evaluate_serve_many([(ctx, g)], pricing, cons, at)[0]


def evaluate_serve_many(items: list[tuple[Context, Grid]], pricing: Pricing, cons: Constraints | None = None,
                        at: str = "concurrency") -> list[ServeEval]:
    """``evaluate_serve`` of several (context, grid) pairs (one per GPU type): their operating points are solved
    in one call over all their rows (_load_many), the same figures as one call per pair."""
    cons = cons or Constraints()
    parts = []
    for ctx, g in items:
        assert ctx.serve is not None
        parts.append((ctx, g, memory.serve_memory(ctx, g), None, pricing.price(ctx.gpu)))
    les, engs = _load_many(parts, cons, at)
    return [_serve_eval(ctx, g, mem, pricing, le, cons, eng)
            for (ctx, g, mem, _, _), le, eng in zip(parts, les, engs, strict=True)]


def _load_many(parts: Sequence[tuple[Context, Grid, memory.ServeMemory, perf.Eff | None, float]], cons: Constraints,
               at: str, replicas: FArray | None = None) -> tuple[list[LoadEval], list[Engine]]:
    """evaluate_load of several (context, grid, memory, parameter set, price) parts of one workload (one per GPU
    type), and each part's engine. The engines are built as one (Engine.of_many: each GPU type's step model on
    its own, the rest once over every row) and the operating points solved in one call over all rows (numpy's
    per-call overhead on a few hundred rows per GPU type was most of a search's time); the same figures as one
    call per part, which is the fallback where the parts do not combine."""
    ctx0 = parts[0][0]
    sizes = np.array([len(g) for _, g, _, _, _ in parts])
    ends = np.cumsum(sizes)  # each part's rows end here in the joined rows
    whole = Engine.of_many([(ctx, g, mem, eff) for ctx, g, mem, eff, _ in parts]) if len(parts) > 1 else None
    if whole is None:
        engs = [Engine.of(ctx, g, mem, eff) for ctx, g, mem, eff, _ in parts]
        cat = Engine.concat(engs) if len(parts) > 1 else None
        if cat is None:
            each = np.split(replicas, ends[:-1]) if replicas is not None else [None] * len(parts)
            return ([evaluate_load(ctx0, g, None, cons, at, price, eng=eng, replicas=r)
                     for (_, g, _, _, price), eng, r in zip(parts, engs, each, strict=True)], engs)
        whole = cat
    else:
        engs = [whole.take(np.arange(a, b)) for a, b in zip(ends - sizes, ends, strict=True)]
    g_all = Grid.concat([g for _, g, _, _, _ in parts])
    prices = np.concatenate([np.full(len(g), price) for _, g, _, _, price in parts])
    return evaluate_load(ctx0, g_all, None, cons, at, prices, eng=whole, replicas=replicas).split(ends[:-1]), engs


def _serve_eval(ctx: Context, g: Grid, mem: memory.ServeMemory, pricing: Pricing, le: LoadEval,
                cons: Constraints, eng: Engine) -> ServeEval:
    """The cost and feasibility bits of rows whose operating point is solved."""
    assert ctx.serve is not None
    price = pricing.price(ctx.gpu)
    usd_h = cost.usd_per_hour(le.gpus, price)
    with np.errstate(divide="ignore", invalid="ignore"):
        usd_m = cost.usd_per_million_tokens(usd_h, le.output_tokens_per_s)
    r = g.reasons.copy()
    if not cons.allow_cross_node_tp:
        r |= np.where(g.tp > grid.tp_domain(ctx.gpu, ctx.node_size), int(Reason.CROSS_NODE_TP), 0)
    if cons.rate_rps is not None:
        r |= np.where(np.isfinite(le.gpus) & (le.gpus > cons.max_gpus), int(Reason.RATE_NEEDS_MORE_GPUS), 0)
    fixed = mem.fixed
    r |= np.where(fixed > mem.usable, int(Reason.WEIGHTS_DONT_FIT), 0)
    r |= np.where((fixed <= mem.usable) & (fixed + mem.kv_bytes_per_sequence > mem.usable),
                  int(Reason.KV_BELOW_ONE_REQUEST), 0)
    # one memory reason per row, the most specific: nothing fits / not one sequence / fewer sequences than
    # --min-concurrency asks for / fewer than the concurrency evaluated (rejected counts add up per cause)
    one_fits = fixed + mem.kv_bytes_per_sequence <= mem.usable
    too_few = one_fits & (mem.max_concurrency < cons.min_concurrency)
    r |= np.where(too_few, int(Reason.MIN_CONCURRENCY), 0)
    r |= np.where(one_fits & ~too_few & (mem.total > mem.usable), int(Reason.CONCURRENCY_DOESNT_FIT), 0)
    if ctx.serve.ctx > ctx.model.max_position_embeddings:
        r |= int(Reason.CTX_ABOVE_MODEL_MAX)
    if cons.ttft_slo_s is not None or cons.tpot_slo_s is not None:
        pct = cons.slo_percentile
        if le.mode == "concurrency":
            ttft, tpot = le.ttft(pct), le.tpot(pct)
        else:
            # no rate meets the SLOs: say which one fails already at a trickle of requests
            low = eng.evaluate(le.load.saturation_rate * 1e-6)
            none = le.load.sustainable_rate <= 0
            ttft = np.where(none, low.ttft if pct is None else low.ttft_pct[pct], 0.0)
            tpot = np.where(none, low.tpot if pct is None else low.tpot_pct[pct], 0.0)
        le.slo_ttft, le.slo_tpot = ttft, tpot
        if cons.ttft_slo_s is not None:
            r |= np.where(ttft > cons.ttft_slo_s, int(Reason.TTFT_SLO), 0)
        if cons.tpot_slo_s is not None:
            r |= np.where(tpot > cons.tpot_slo_s, int(Reason.TPOT_SLO), 0)
    if cons.budget_usd_per_hour is not None:
        r |= np.where(usd_h > cons.budget_usd_per_hour, int(Reason.BUDGET), 0)
    return ServeEval(ctx=ctx, g=g, mem=mem, usd_per_hour=usd_h, usd_per_mtok=usd_m, reasons=r,
                     price=price, load=le, tiers=pricing.tiers(ctx.gpu))


def validate_layout(model: ModelSpec, tp: int, pp: int, dp: int, cp: int, ep: int,
                    seq_len: int | None = None) -> None:
    """Raise a LayoutError naming the rule and the valid values (vLLM wording) for an impossible layout."""
    for name, v in (("tp", tp), ("pp", pp), ("dp", dp), ("cp", cp), ("ep", ep)):
        if v < 1:
            raise LayoutError(f"--{name} must be a positive integer; got {v}.")
        if v > 1 << 20:
            raise LayoutError(f"--{name} must be at most 1,048,576 (a cluster of 2^20 GPUs); got {v}.")
    g = grid.make(tp, pp, dp, cp, ep)
    bits = int(grid.structural_reasons(model, g, seq_len)[0])
    if not bits:
        return
    a = model.attention
    valid_tp = ", ".join(map(str, model.valid_tp()))
    if bits & Reason.HEADS_NOT_DIVISIBLE:
        raise LayoutError(f"Total number of attention heads ({a.num_heads}) must be divisible by tensor "
                          f"parallel size ({tp}). Valid --tp for {model.name}: {valid_tp}.")
    if bits & Reason.KV_HEADS_NOT_DIVISIBLE:
        raise LayoutError(f"Tensor parallel size ({tp}) must divide the number of KV heads "
                          f"({a.num_kv_heads}) or be a multiple of it (KV heads are replicated when TP > KV "
                          f"heads). Valid --tp for {model.name}: {valid_tp}.")
    if bits & Reason.EP_ON_DENSE_MODEL:
        raise LayoutError("Number of experts in the model must be greater than 0 when expert parallelism "
                          f"is enabled: {model.name} is a dense model. Use --ep 1.")
    if bits & Reason.EXPERTS_NOT_DIVISIBLE:
        assert model.moe is not None
        valid = ", ".join(str(d) for d in grid.divisors(model.moe.num_experts))
        raise LayoutError(f"Expert parallel size ({ep}) must divide the number of experts "
                          f"({model.moe.num_experts}). Valid --ep: {valid}.")
    if bits & Reason.EP_NOT_IN_GROUP:
        raise LayoutError(f"expert parallel size ({ep}) must divide dp * cp * tp ({dp * cp * tp}); EP is "
                          "carved out of those ranks (torchtitan ParallelDims, vLLM EP = TP x DP).")
    if bits & Reason.PP_EXCEEDS_LAYERS:
        raise LayoutError(f"Pipeline parallel size ({pp}) exceeds the number of layers "
                          f"({model.num_layers}). Valid --pp: 1 to {model.num_layers}.")
    if bits & Reason.CP_NOT_DIVIDING:
        raise LayoutError(f"Context parallel size ({cp}) must divide the sequence length ({seq_len}).")


# ---------------------------------------------------------------------------------------------------
# result objects (JSON contract)
# ---------------------------------------------------------------------------------------------------


def _f(x: Any) -> float:
    v = float(x)
    return v if np.isfinite(v) else float("inf")


def _efficiency(e: Efficiency) -> dict[str, Any]:
    return {"value": e.value, "low": e.low, "high": e.high, "source": e.source}


def assumptions(ctx: Context, pricing: Pricing) -> dict[str, Any]:
    c = ctx.gpu.calibration
    out: dict[str, Any] = {
        "flops_efficiency": _efficiency(c.flops),
        "hbm_efficiency": _efficiency(c.hbm),
        "allreduce_intra_node": {"alpha_per_step_s": c.intra_node.alpha_per_step_s,
                                 "busbw_bytes_per_s": c.intra_node.busbw_bytes_per_s,
                                 "source": c.intra_node.source},
        "allreduce_inter_node": {"alpha_per_step_s": c.inter_node.alpha_per_step_s,
                                 "busbw_bytes_per_s": c.inter_node.busbw_bytes_per_s,
                                 "source": c.inter_node.source},
        "price": _price_info(ctx.gpu, pricing),
        "flops_convention": "dense tensor-core peak (no 2:4 sparsity)",
        "bandwidth_convention": "per GPU, one direction",
        # a vendor figure written without re-reading its datasheet (hardware/*.yaml source tag [recalled])
        "datasheet_recalled": any("[recalled]" in part.source for part in (
            ctx.gpu.memory, ctx.gpu.hbm, ctx.gpu.compute, ctx.gpu.scale_up)),
    }
    out["hbm_fp8_efficiency"] = _efficiency(perf.fp8_streaming(c))
    # the efficiencies stand for GEMMs of inner dimension >= GEMM_K_REF; smaller ones run slower (perf.GEMM_K0)
    out["gemm_inner_dimension"] = {
        "k0": perf.GEMM_K0, "k0_band": list(perf.GEMM_K0_BAND), "k_ref": perf.GEMM_K_REF,
        "rule": "a GEMM of inner dimension K takes max(1, (1 + k0/K) / (1 + k0/k_ref)) of the time the flops "
                "efficiency gives",
        "source": "DeepGEMM fp8 dense GEMMs on H800 at M = 4,096 (deepseek-ai/DeepGEMM README @327ec92f): "
                  "E x K / (K + K0), K0 = 498 by least squares, every row within 5.2%"}
    if c.flops_fp8:
        out["flops_fp8_efficiency"] = _efficiency(c.flops_fp8)
    if ctx.serve is not None:
        e = ctx.serve.engine
        out["engine"] = {"name": e.name, "gpu_memory_utilization": ctx.serve.gpu_memory_utilization,
                         "max_num_batched_tokens": e.max_num_batched_tokens,
                         # per layer at TP 1 (two all-reduce kernels more above): kernels x the per-kernel gap
                         "kernel_gap_s_per_layer": float(perf.kernels_per_layer(ctx.model, 1)) * e.kernel_gap_s,
                         "kernel_gap_s_per_kernel": e.kernel_gap_s,
                         "kernels_per_layer": {"tp_1": float(perf.kernels_per_layer(ctx.model, 1)),
                                               "tp_above_1": float(perf.kernels_per_layer(ctx.model, 2))},
                         "decode_allreduce_latency_s": e.decode_allreduce_latency_s,
                         "cuda_graph_bytes": ctx.gpu.overheads.cuda_graph_bytes,
                         "cuda_context_bytes": ctx.gpu.overheads.cuda_context_bytes,
                         "nccl_bytes_per_group": ctx.gpu.overheads.nccl_bytes_per_group,
                         "source": e.source}
        out["compute_dtype"] = perf.compute_dtype(ctx.serve.weight_dtype, ctx.gpu.compute.dense_flops_per_s)
        note = weight_path_note(ctx)
        if note:
            out["weight_path"] = note
    return out


def weight_path_note(ctx: Context) -> str | None:
    """The slower path a weight dtype takes on a GPU without tensor cores for it: vLLM runs fp8 and fp4
    checkpoints there with weight-only kernels (Marlin fp8 / fp4 on Ampere and Hopper)."""
    if ctx.serve is None:
        return None
    wdt, has = ctx.serve.weight_dtype, ctx.gpu.compute.dense_flops_per_s
    if wdt not in ("fp8", "fp4") or wdt in has:
        return None
    return (f"{wdt} weights on {ctx.gpu.name}: no {wdt} tensor cores (its catalog lists {', '.join(has)}); "
            f"weight-only kernels (vLLM Marlin) dequantize to bf16: the weights take {wdt} bytes, the GEMMs run at "
            "the bf16 rate")


def _price_info(gpu: GpuSpec, pricing: Pricing) -> dict[str, Any]:
    tier = getattr(gpu.prices, pricing.tier)
    src = pricing.override_source(gpu)
    return {"usd_per_gpu_hour": pricing.price(gpu), "tier": "override" if src else pricing.tier,
            "as_of": src[0] if src else str(tier.as_of), "source": src[1] if src else tier.source}


def deployment(ev: ServeEval, i: int) -> tuple[int, int]:
    """(replicas, GPUs) of row ``i``'s deployment at its operating point (the row's dp where no replica count
    was solved)."""
    assert ev.load is not None
    g = ev.g
    replicas = int(ev.load.replicas[i]) if np.isfinite(ev.load.replicas[i]) else int(g.dp[i])
    return replicas, replicas * int(g.tp[i] * g.pp[i] * g.cp[i])


def objective_band(ev: ServeEval, i: int, band: Bands, objective: str) -> tuple[float, float]:
    """[low, high] of row ``i``'s objective from its calibration bands (Bands.objective)."""
    return band.objective(objective, deployment(ev, i)[1], float(ev.usd_per_hour[i]))


def layout_object(ev: ServeEval, i: int) -> rt.Layout:
    """Row ``i``'s ``layout`` (tpplan/results.py Layout): its parallel sizes and the replicas and GPUs of its
    deployment at the operating point."""
    g, ctx = ev.g, ev.ctx
    replicas, gpus = deployment(ev, i)
    return {"gpu": ctx.gpu.name, "tp": int(g.tp[i]), "pp": int(g.pp[i]), "dp": replicas, "cp": int(g.cp[i]),
            "ep": int(g.ep[i]), "gpus": gpus, "nodes": int(np.ceil(gpus / ctx.node_size)),
            "concurrency": int(g.concurrency[i]), "gpus_per_node": int(ctx.node_size)}


def serve_object(ev: ServeEval, i: int, bands: Bands | None = None) -> rt.ServeEstimate:
    """One estimate object (tpplan/results.py ServeEstimate) for row ``i`` of an evaluation."""
    ctx, g, mem, t = ev.ctx, ev.g, ev.mem, ev.t
    assert ctx.serve is not None
    m = ctx.model
    le = ev.load
    assert le is not None
    replicas, gpus = deployment(ev, i)
    bits = int(ev.reasons[i])
    warnings = layout_warnings(ctx, g, i)
    obj: rt.ServeEstimate = {
        "layout": layout_object(ev, i),
        "params": {"total": m.params_total, "active": m.params_active},
        "memory_per_gpu_bytes": {
            "weights": _f(mem.weights[i]), "kv_cache": _f(mem.kv_cache[i]),
            "activations": _f(mem.activations[i]), "gradients": 0.0, "optimizer": 0.0,
            "overhead": _f(mem.overhead[i]), "total": _f(mem.total[i]), "capacity": mem.capacity,
            "usable": _f(mem.usable[i]),
        },
        "fits": not (bits & (Reason.WEIGHTS_DONT_FIT | Reason.KV_BELOW_ONE_REQUEST
                             | Reason.CONCURRENCY_DOESNT_FIT)),
        "feasible": bits == 0,
        "kv_cache_bytes_per_token": m.kv_cache_bytes_per_token(ctx.serve.kv_bytes),
        "kv_cache_bytes_per_token_per_gpu": _f(mem.kv_bytes_per_token_per_gpu[i]),
        "kv_cache_bytes_per_sequence_per_gpu": _f(mem.kv_bytes_per_sequence[i]),
        "max_concurrency": int(mem.max_concurrency[i]),
        "max_context_one_sequence": int(min(mem.max_ctx_one_sequence[i], 10**12)),
        "comm": {"tp_allreduce_bytes_per_layer": _f(t.tp_allreduce_bytes_per_layer[i]),
                 "tp_allreduce_s_per_layer": _f(t.tp_allreduce_s_per_layer[i]),
                 "comm_fraction": _f(t.comm_fraction[i])},
        "serve": {"ttft_s": _f(le.load.ttft[i]), "tpot_s": _f(le.load.tpot[i]),
                  "request_latency_s": _f(le.request_latency[i]),
                  "throughput_tokens_per_s": _f(le.output_tokens_per_s[i]),
                  "throughput_tokens_per_s_per_gpu": _f(le.output_tokens_per_s[i]) / gpus,
                  "total_tokens_per_s": _f(le.total_tokens_per_s[i]),
                  "decode_bound": "compute" if t.decode_bound[i] == "compute" else "memory",
                  "tpot_hbm_lower_bound_s": _f(t.hbm_lower_bound_tpot[i]),
                  "idle": {"ttft_s": _f(t.ttft[i]), "tpot_s": _f(t.tpot[i]),
                           "request_latency_s": _f(t.request_latency[i]),
                           "throughput_tokens_per_s": _f(t.throughput[i])},
                  "load": load_object(ev, i),
                  **serve_features(ev, i)},
        "cost": {"usd_per_hour": _f(ev.usd_per_hour[i]), "usd_per_million_tokens": _f(ev.usd_per_mtok[i]),
                 "usd_per_million_total_tokens": _f(le.usd_per_mtok_total[i]),
                 "usd_total": None, "usd_per_gpu_hour": ev.price},
        "warnings": warnings,
        "reasons": Reason.names(bits),
    }
    if int(g.pp[i]) > 1:
        obj["memory_per_gpu_bytes"]["stage"] = (
            "first" if mem.first_stage_weights[i] >= mem.last_stage_weights[i] else "last")
    if bands is not None:
        obj["bands"] = bands.to_json()
    return obj


def serve_features(ev: ServeEval, i: int) -> rt.Features:
    """Prefix caching and speculative decoding at row ``i`` (docs/metrics.md): what they change and the
    assumption each figure rests on (present only when enabled)."""
    w = ev.ctx.serve
    assert w is not None and ev.load is not None
    out: rt.Features = {}
    if w.cached_prompt_tokens:
        out["prefix_cache"] = {
            "prefix_hit": w.prefix_hit, "shared_prefix_tokens": w.shared_prefix,
            "cached_prompt_tokens": w.cached_prompt_tokens, "prefill_tokens": w.prefill_len,
            "shared_kv_bytes_per_gpu": _f(np.broadcast_to(ev.mem.kv_shared, (len(ev.g),))[i]),
            "assumption": (f"{w.cached_prompt_tokens:,} of every {w.input_len:,}-token prompt served from the prefix "
                           "cache (" + (f"a {w.shared_prefix:,}-token prefix shared by all requests, in whole "
                                        f"{w.engine.block_size}-token blocks" if w.shared_cached_tokens
                                        >= w.cached_prompt_tokens else f"hit rate {w.prefix_hit:g}, as given")
                           + "); vLLM v1 and SGLang cache prefixes by default")}
    spec = w.speculative
    if spec is not None:
        g1 = ev.g.take(np.array([i]))
        # the decode batch at the operating point (at least one sequence: an idle replica decodes one)
        n = max(float(ev.load.load.running[i]) if np.isfinite(ev.load.load.running[i]) else 1.0, 1.0)
        pay = perf.speculative_payoff(ev.ctx, g1, n)
        be, cb = float(pay.break_even_batch[0]), float(pay.compute_bound_batch[0])
        out["speculative"] = {
            "method": cast("rt.SpecMethod", spec.method), "draft_tokens": spec.draft_tokens,
            "acceptance": spec.acceptance, "tokens_per_step": spec.tokens_per_step,
            "verify_tokens": spec.verify_tokens, "draft_model": spec.draft_model_name, "running_seqs": n,
            "speedup_at_operating_point": float(pay.speedup[0]),
            "pays_off": bool(pay.speedup[0] > 1.0),
            "break_even_batch": be if np.isfinite(be) else None,
            "verify_compute_bound_batch": cb if np.isfinite(cb) else None,
            "assumption": (f"acceptance {spec.acceptance:g} per drafted token (given), {spec.draft_tokens} drafted: "
                           f"{format_sig(spec.tokens_per_step)} tokens per target step (Leviathan et al. 2023, eq. 1)")}
    return out


def load_object(ev: ServeEval, i: int) -> rt.LoadPoint:
    """The operating point of row ``i`` (docs/metrics.md, 'Under load')."""
    le = ev.load
    assert le is not None and ev.ctx.serve is not None
    ld, e = le.load, ev.ctx.serve.engine

    def pct(mean: FArray, d: dict[int, FArray]) -> rt.Percentiles:
        return {"mean": _f(mean[i]), "p50": _f(d[50][i]), "p90": _f(d[90][i]), "p99": _f(d[99][i])}

    return {
        "mode": cast("rt.LoadMode", le.mode), "stable": bool(ld.stable[i]),
        "rate_rps_per_replica": _f(ld.rate[i]), "replicas": _f(le.replicas[i]),
        "rate_rps": _f(ld.rate[i] * le.replicas[i]) if np.isfinite(le.replicas[i]) else 0.0,
        "saturation_rate_rps_per_replica": _f(ld.saturation_rate[i]),
        "sustainable_rate_rps_per_replica": _f(ld.sustainable_rate[i]),
        "utilization": _f(ld.utilization[i]),
        "limited_by": cast("rt.LimitedBy", str(ld.limited_by[i])),
        "concurrency": _f(ld.in_system[i]), "running_seqs": _f(ld.running[i]),
        "prefill_tokens_per_step": _f(ld.prefill_tokens[i]), "step_time_s": _f(ld.step_time[i]),
        "max_running_seqs": _f(ld.max_running[i]), "kv_admitted_seqs": _f(min(ld.kv_admitted[i], 1e12)),
        "ttft_s": pct(ld.ttft, ld.ttft_pct), "tpot_s": pct(ld.tpot, ld.tpot_pct),
        "engine": {"name": e.name, "version": e.version, "max_num_seqs": e.max_num_seqs,
                   "max_num_batched_tokens": e.max_num_batched_tokens, "chunked_prefill": e.chunked_prefill,
                   "kv_reservation": e.kv_reservation, "memory_rule": e.memory_rule,
                   "gpu_memory_utilization": ev.ctx.serve.gpu_memory_utilization},
    }


def layout_warnings(ctx: Context, g: Grid, i: int) -> list[str]:
    out = []
    tp, cp = int(g.tp[i]), int(g.cp[i])
    node = int(comm.fabric_node(ctx.gpu, ctx.node_size))  # a multi-node NVLink domain counts as one
    if tp > node:
        out.append(f"TP crosses nodes: tp={tp} > {node} GPUs per node (or NVLink domain); every layer's "
                   "all-reduces go over the network")
    elif tp > ctx.gpu.scale_up.domain_gpus and not ctx.gpu.pcie_only:
        out.append(f"TP spans {tp} GPUs but the NVLink domain holds {ctx.gpu.scale_up.domain_gpus}: "
                   "all-reduces cross PCIe")
    if ctx.gpu.pcie_only and tp > 2:
        out.append(f"{ctx.gpu.name} has no GPU-to-GPU link: TP={tp} all-reduces go over PCIe")
    pp = int(g.pp[i])
    if tp * cp * pp > node and pp > 1:
        out.append("pipeline stages span nodes (stage hand-offs over the network)")
    if ctx.serve is not None and pp > 1:
        # vLLM keeps pp micro-batches in flight (perf.step_pieces): the stage hand-offs and the slowest stage's
        # pace are charged, but no engine publishes a per-stage scheduling / launch cost
        # (shared engine-defaults section 4), so a deep pipeline is the serving layout the model flatters most
        out.append(f"pipeline of {pp} stages: no per-stage engine overhead is modelled (none is published); "
                   "deeper pipelines are the less certain (--max-pp bounds the search)")
    note = weight_path_note(ctx)
    if note:
        out.append(note)
    m = ctx.model
    if m.rope_scaling is not None:
        rs = m.rope_scaling
        out.append(f"context extended by {rs.rope_type} x{rs.factor:g} ({rs.original_max_position_embeddings:,} -> "
                   f"{m.max_position_embeddings:,} tokens): use it only where the model card documents it; vLLM "
                   "applies it to every request (static scaling), which can lower quality on short prompts")
    if m.allow_long_context:
        out.append("--allow-long-context: positions past the model's trained length are served unscaled "
                   "(VLLM_ALLOW_LONG_MAX_MODEL_LEN=1); outputs there may degrade")
    if ctx.train is not None and ctx.train.flash_attention and ctx.train.flash_kernel == "fa1":
        out.append(FA1_WARNING)
    return out


FA1_WARNING = ("attention at FlashAttention 1.x's measured rate (--attention flash1; llm-foundry's 2023 releases): "
               "about 0.45x FlashAttention-2's beyond 2k tokens; a stack on FlashAttention-2 (current llm-foundry, "
               "torchtitan, Megatron) is --attention flash")
"""Said on a training layout that runs FlashAttention 1.x (validate's e2e rows state their kernel instead)."""


@dataclass(frozen=True)
class Bands:
    """[low, high] of a row's figures from the calibration spread (serve_bands): the optimistic parameter set
    gives the low latency and the high throughput; cost at the low and high price tiers."""

    ttft_s: tuple[float, float]
    tpot_s: tuple[float, float]
    request_latency_s: tuple[float, float]
    throughput_tokens_per_s: tuple[float, float]
    usd_per_hour: tuple[float, float]
    usd_per_million_tokens: tuple[float, float]

    def to_json(self) -> rt.Bands:
        """The estimate object's ``bands`` (tpplan/results.py Bands)."""
        return {"serve": {"ttft_s": list(self.ttft_s), "tpot_s": list(self.tpot_s),
                          "request_latency_s": list(self.request_latency_s),
                          "throughput_tokens_per_s": list(self.throughput_tokens_per_s)},
                "cost": {"usd_per_hour": list(self.usd_per_hour),
                         "usd_per_million_tokens": list(self.usd_per_million_tokens)}}

    def objective(self, objective: str, gpus: int, usd_per_hour: float) -> tuple[float, float]:
        """[low, high] of the objective for a deployment of ``gpus`` GPUs at ``usd_per_hour`` (its central
        figures). Cost uses the chosen price: price tiers are the buyer's to negotiate, not model uncertainty,
        and they would make every GPU type "too close to call"."""
        if objective == "latency":
            return self.request_latency_s
        lo, hi = self.throughput_tokens_per_s
        if objective == "throughput":
            return lo / gpus, hi / gpus
        return (float(cost.usd_per_million_tokens(usd_per_hour, hi)),
                float(cost.usd_per_million_tokens(usd_per_hour, lo)))


def serve_bands(ev: ServeEval, idx: npt.NDArray[np.int64]) -> list[Bands]:
    """Low/high bands of time, throughput and cost for rows ``idx`` from the calibration spread: the grid is
    re-evaluated at the pessimistic and optimistic parameter sets (no Monte Carlo), and cost at the low
    and high price tiers."""
    return serve_bands_many([(ev, idx)])[0]


def serve_bands_many(pairs: list[tuple[ServeEval, npt.NDArray[np.int64]]]) -> list[list[Bands]]:
    """``serve_bands`` of several (evaluation, rows) pairs, the operating points of both parameter sets solved in
    one call over all pairs' rows (_load_many; the same figures as one call per pair and set)."""
    prep = []
    for ev, idx in pairs:
        sub = ev.g.take(idx)
        prep.append((sub, memory.serve_memory(ev.ctx, sub)))
    le0 = pairs[0][0].load if pairs else None
    same = le0 is not None and all(ev.load is not None and ev.load.cons is le0.cons and ev.load.at == le0.at
                                   for ev, _ in pairs)
    solved: dict[str, list[LoadEval]] = {}

    def deployed(ev: ServeEval, idx: npt.NDArray[np.int64]) -> FArray | None:
        """At a --rate, the replicas the central figures sized: a band is the same deployment's spread, not
        another deployment's (the faster set would size fewer replicas and run each busier)."""
        return ev.load.replicas[idx] if ev.load is not None and ev.load.mode == "rate" else None

    # pessimistic (slower) and optimistic parameter sets, each at its own operating point (at a rate: on the
    # central deployment's replicas); with one set of constraints, both sets' rows of every pair solved in one
    # call (each row's figures are its own)
    if same:
        assert le0 is not None
        fixed = [deployed(ev, idx) for ev, idx in pairs]
        reps = None if le0.mode != "rate" else np.concatenate([f for f in fixed if f is not None] * 2)
        both = _load_many([(ev.ctx, sub, mem, perf.Eff.of(ev.ctx, b), ev.price) for b in ("low", "high")
                           for (ev, _), (sub, mem) in zip(pairs, prep, strict=True)], le0.cons, le0.at, reps)[0]
        solved = {"low": both[:len(pairs)], "high": both[len(pairs):]}
    else:
        for b in ("low", "high"):
            solved[b] = [evaluate_load(ev.ctx, sub, mem, ev.load.cons, ev.load.at, ev.price, perf.Eff.of(ev.ctx, b),
                                       replicas=deployed(ev, idx))
                         for (ev, idx), (sub, mem) in zip(pairs, prep, strict=True) if ev.load is not None]
    return [_bands(ev, idx, ev.load, solved["low"][i], solved["high"][i])  # type: ignore[arg-type]
            for i, (ev, idx) in enumerate(pairs)]


def _bands(ev: ServeEval, idx: npt.NDArray[np.int64], le: LoadEval, lo: LoadEval,
           hi: LoadEval) -> list[Bands]:
    p_lo, p_hi = ev.tiers["low"], ev.tiers["high"]
    out = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(len(idx)):
            g_lo, g_hi = float(hi.gpus[j]), float(lo.gpus[j])  # the faster set may need fewer replicas
            out.append(Bands(
                ttft_s=(_f(hi.load.ttft[j]), _f(lo.load.ttft[j])),
                tpot_s=(_f(hi.load.tpot[j]), _f(lo.load.tpot[j])),
                request_latency_s=(_f(hi.request_latency[j]), _f(lo.request_latency[j])),
                throughput_tokens_per_s=(_f(lo.output_tokens_per_s[j]), _f(hi.output_tokens_per_s[j])),
                usd_per_hour=(g_lo * p_lo, g_hi * p_hi),
                usd_per_million_tokens=(
                    _f(cost.usd_per_million_tokens(g_lo * p_lo, hi.output_tokens_per_s[j])),
                    _f(cost.usd_per_million_tokens(g_hi * p_hi, lo.output_tokens_per_s[j])))))
    return out


# ---------------------------------------------------------------------------------------------------
# estimate (one layout) and recommend (search)
# ---------------------------------------------------------------------------------------------------


def estimate_serve(model: ModelSpec, gpu: GpuSpec, w: ServeWorkload, tp: int, pp: int = 1, dp: int = 1,
                   cp: int = 1, ep: int = 1, pricing: Pricing | None = None,
                   gpus_per_node: int | None = None, catalog_digest: str = "",
                   cons: Constraints | None = None, at: str = "concurrency") -> rt.EstimateResult:
    """One layout in full. Under load: ``cons.rate_rps`` spread over the ``dp`` replicas, else the closed
    loop at ``w.concurrency`` (``at='sustainable'``: the largest sustainable rate)."""
    validate_layout(model, tp, pp, dp, cp, ep)
    pricing = pricing or Pricing()
    # the layout is the user's: --rate is spread over its dp replicas, and TP may cross nodes
    cons = replace(cons or Constraints(), max_gpus=1 << 62, allow_cross_node_tp=True)
    w = w.for_gpu(gpu)
    ctx = Context(model=model, gpu=gpu, serve=w, gpus_per_node=gpus_per_node)
    g = grid.make(tp, pp, dp, cp, ep, w.concurrency)
    ev = evaluate_given(ctx, g, pricing, cons, at)
    breakdown = serve_breakdown(ev, 0)
    obj = serve_object(ev, 0, serve_bands(ev, np.array([0]))[0])
    return {"schema_version": SCHEMA_VERSION, "tool": tool_info(),
            "inputs": serve_inputs(model, [gpu], w, pricing, catalog_digest, ctx), **obj, "breakdown": breakdown,
            "accuracy": accuracy.measured("serve")}


def evaluate_given(ctx: Context, g: Grid, pricing: Pricing, cons: Constraints, at: str = "concurrency") -> ServeEval:
    """``evaluate_serve`` of deployments whose replicas are the caller's (estimate's layout, a checked file):
    ``cons.rate_rps`` over exactly each row's dp replicas, not as many as the rate needs, and the $/hour and
    $/1M tokens of those replicas."""
    ev = evaluate_serve(ctx, g, pricing, cons, at)
    if cons.rate_rps is not None:
        ev.load = _fixed_replicas(ctx, g, ev, cons)
        ev.usd_per_hour = cost.usd_per_hour(ev.load.gpus, ev.price)
        with np.errstate(divide="ignore", invalid="ignore"):
            ev.usd_per_mtok = cost.usd_per_million_tokens(ev.usd_per_hour, ev.load.output_tokens_per_s)
    return ev


def serve_breakdown(ev: ServeEval, i: int) -> rt.Breakdown:
    """Where an idle replica's prefill (serve.idle.ttft_s) and decode step (serve.idle.tpot_s) go: each term
    of the time model by name, per layer (spread evenly over the layers) and per step. per_layer x layers +
    per_step = total, exactly."""
    parts = ev.t.parts
    assert parts is not None and ev.ctx.serve is not None and ev.t.decode_tokens_per_stage is not None
    m, w = ev.ctx.model, ev.ctx.serve
    L = m.num_layers
    # tokens through the GEMMs: the prompt, or a decode step's per stage (what serve_time's step carried)
    tokens = {"prefill": float(w.prefill_len), "decode": float(ev.t.decode_tokens_per_stage[i])}

    def phase_of(phase: str, total: FArray) -> rt.PhaseBreakdown:
        per_layer = {k.removesuffix("/layer"): float(v[i]) / L for k, v in parts[phase].items()
                     if k.endswith("/layer") and float(v[i]) > 0}
        per_step = {k: float(v[i]) for k, v in parts[phase].items() if not k.endswith("/layer") and float(v[i]) > 0}
        out: rt.PhaseBreakdown = {"per_layer_s": per_layer, "per_step_s": per_step, "total_s": float(total[i])}
        # the GEMM term by operator: by FLOPs where compute-bound, by weight bytes where memory-bound
        for key, bound in (("GEMMs (compute-bound)", "compute"), ("weights read (memory-bound)", "memory")):
            if key in per_layer:
                shares = perf.gemm_operator_shares(m, perf.serve_gemm_weights(m, phase, tokens[phase], bound,
                                                                             int(ev.g.tp[i]), int(ev.g.ep[i])))
                out["gemm_term"] = key
                out["gemm_by_operator_s"] = {k: per_layer[key] * L * v for k, v in shares.items()}
        return out

    return {"layers": L, "prefill": phase_of("prefill", ev.t.ttft), "decode": phase_of("decode", ev.t.tpot)}


def _fixed_replicas(ctx: Context, g: Grid, ev: ServeEval, cons: Constraints) -> LoadEval:
    """--rate over exactly the layout's dp replicas (estimate: the user chose them)."""
    assert ctx.serve is not None and ev.load is not None and cons.rate_rps is not None
    eng = Engine.of(ctx, g, ev.mem)
    dp = g.dp.astype(np.float64)
    ld = eng.evaluate(cons.rate_rps / dp, sustainable=ev.load.load.sustainable_rate)
    return replace(ev.load, load=ld, **_deployment(ctx.serve, g, ld, dp, ev.price))


def serve_inputs(model: ModelSpec, gpus: list[GpuSpec], w: ServeWorkload, pricing: Pricing, digest: str,
                 ctx: Context | None = None) -> rt.ServeInputs:
    d: rt.ServeInputs = {
        "model": model.name, "hf_id": model.hf_id, "gpus": [g.name for g in gpus],
        "ctx_tokens": w.ctx, "input_len": w.input_len, "output_len": w.output_len,
        "concurrency": w.concurrency, "weight_dtype": w.weight_dtype, "kv_dtype": w.kv_dtype,
        "gpu_memory_utilization": w.gpu_memory_utilization, "price_tier": pricing.tier,
        "price_overrides": dict(pricing.overrides), "catalog_sha256": digest,
        "engine": w.engine_profile.name if w.engine_profile else w.engine.name,
        "engine_version": (w.engine_profile.version(w.engine_version).version if w.engine_profile
                           else w.engine.version),
    }
    if ctx is not None:
        d["assumptions"] = assumptions(ctx, pricing)
    return d


@dataclass(eq=False)
class Search:
    """A recommend search: all GPUs' evaluations, concatenated views and the ranking."""

    evals: list[ServeEval]
    seconds: float
    layouts: int
    pricing: Pricing = field(default_factory=lambda: Pricing())
    objective: Objective = "latency"
    gpus_per_node: int | None = None

    def rerun(self, w: ServeWorkload, cons: Constraints) -> Search:
        """The same search (model, GPU types, prices, objective) with another workload or constraints."""
        return search_serve(self.evals[0].ctx.model, [e.ctx.gpu for e in self.evals], w, cons, self.pricing,
                            self.objective, self.gpus_per_node)

    def any_feasible(self) -> bool:
        return any(bool((e.reasons == 0).any()) for e in self.evals)



def search_serve(model: ModelSpec, gpus: list[GpuSpec], w: ServeWorkload, cons: Constraints,
                 pricing: Pricing, objective: Objective = "latency",
                 gpus_per_node: int | None = None) -> Search:
    """Evaluate every layout x concurrency on every GPU (one vectorized evaluation per GPU type)."""
    start = time.perf_counter()
    n = 0
    # one row per layout: the load model finds each layout's operating point (the closed loop at
    # --concurrency for latency; the largest sustainable rate for throughput and cost; --rate when given)
    levels = np.array([max(w.concurrency, cons.min_concurrency)], dtype=np.int64)
    at = "concurrency" if objective == "latency" else "sustainable"
    items = []
    by_node: dict[int, Grid] = {}  # the layouts depend on the GPU type through its node size only
    for gpu in gpus:
        node = gpus_per_node or gpu.node.gpus_per_node
        g = by_node.get(node)
        if g is None:
            base = grid.enumerate_layouts(model, cons.max_gpus, node, replicas=False, max_pp=cons.max_pp)
            reps = len(levels)
            g = by_node[node] = Grid(
                tp=np.repeat(base.tp, reps), pp=np.repeat(base.pp, reps), dp=np.repeat(base.dp, reps),
                cp=np.repeat(base.cp, reps), ep=np.repeat(base.ep, reps), concurrency=np.tile(levels, len(base)),
                micro_batch=np.ones(len(base) * reps, dtype=np.int64), reasons=np.repeat(base.reasons, reps))
        ctx = Context(model=model, gpu=gpu, serve=w.for_gpu(gpu), gpus_per_node=gpus_per_node)
        items.append((ctx, g))
        n += len(g)
    evals = evaluate_serve_many(items, pricing, cons, at) if items else []
    return Search(evals=evals, seconds=time.perf_counter() - start, layouts=n, pricing=pricing,
                  objective=objective, gpus_per_node=gpus_per_node)


def objective_key(ev: ServeEval, objective: Objective) -> FArray:
    """Lower is better."""
    assert ev.load is not None
    if objective == "latency":
        return ev.load.request_latency
    if objective == "throughput":
        return -ev.load.output_tokens_per_s / ev.load.gpus
    return ev.usd_per_mtok


def _ranked(s: Search, objective: Objective) -> tuple[FArray, ...]:
    """Every feasible row as (rounded key, GPUs, $/hour, row, GPU index), sorted best first: by the objective,
    then fewer GPUs, then lower $/hour."""
    keys, gpus, usd, rows, gi = [], [], [], [], []
    for k, ev in enumerate(s.evals):
        ok = np.nonzero(ev.reasons == 0)[0]
        keys.append(objective_key(ev, objective)[ok])
        gpus.append(ev.g.gpus[ok])
        usd.append(ev.usd_per_hour[ok])
        rows.append(ok)
        gi.append(np.full(len(ok), k))
    key, ng, uh, row, gidx = (np.concatenate(x) if x else np.zeros(0) for x in (keys, gpus, usd, rows, gi))
    order, key = search.rank_order(key, ng, uh)
    return key[order], ng[order], uh[order], row[order].astype(np.int64), gidx[order].astype(np.int64)


def rank_serve(s: Search, objective: Objective, top: int) -> list[tuple[int, int]]:
    """(gpu index, row) of the best feasible rows, sorted by the objective, then fewer GPUs, then lower
    $/hour.

    A row is listed only if it uses fewer GPUs than every better-ranked row of its GPU type: a layout that
    is no better on the objective and needs as many GPUs or more (TP=8 PP=2 on 16 GPUs after TP=8 on 8 at
    batch 1) only costs more, so it would crowd out the alternatives. ``explain`` names what dominates it.
    One row per model-parallel layout (its best concurrency); with several GPU types at most
    ceil(top / 3) rows per type, so the runners-up on other GPUs show."""
    _, ng, _, row, gidx = _ranked(s, objective)
    fewest: dict[int, int] = {}  # GPU index -> fewest GPUs of any better-ranked feasible row

    def admit(j: int) -> bool:
        k, n = int(gidx[j]), int(ng[j])
        if n >= fewest.get(k, 1 << 62):
            return False
        fewest[k] = n
        return True

    picked = search.pick(range(len(row)), lambda j: int(gidx[j]), top, len(s.evals), admit)
    return [(int(gidx[j]), int(row[j])) for j in picked]


def dominated_by(s: Search, objective: Objective, k: int, r: int) -> int | None:
    """The row of GPU ``k`` that keeps feasible row ``r`` off the recommend list (ranked at least as well on
    fewer or as many GPUs), or None when ``r`` is on its GPU type's front."""
    key, ng, _, row, gidx = _ranked(s, objective)
    pos = np.nonzero((gidx == k) & (row == r))[0]
    if not len(pos):
        return None
    mine = np.nonzero(gidx[:pos[0]] == k)[0]
    if not len(mine):
        return None
    best = mine[np.argmin(ng[mine])]
    return int(row[best]) if ng[best] <= ng[pos[0]] else None


def pareto_serve(s: Search) -> list[tuple[int, int]]:
    """Feasible rows not dominated on ($ per 1M tokens, request latency): sort by cost and keep rows whose
    latency beats every cheaper row (O(n log n))."""
    c, lat, gi, row = [], [], [], []
    for k, ev in enumerate(s.evals):
        ok = np.nonzero(ev.reasons == 0)[0]
        assert ev.load is not None
        c.append(ev.usd_per_mtok[ok])
        lat.append(ev.load.request_latency[ok])
        gi.append(np.full(len(ok), k))
        row.append(ok)
    if not c:
        return []
    cc, ll, gg, rr = (np.concatenate(x) for x in (c, lat, gi, row))
    order = np.lexsort((ll, cc))
    best = np.inf
    out = []
    for j in order:
        if ll[j] < best:
            best = ll[j]
            out.append((int(gg[j]), int(rr[j])))
    return out


def rejected_counts(s: Search) -> dict[str, int]:
    return grid.count_reasons(ev.reasons for ev in s.evals)


_LAUNCH = {
    # engine: (command words, TP flag, PP flag, EP flag) as each server's CLI spells them
    "sglang": (("python", "-m", "sglang.launch_server", "--model-path"), "--tp-size", "--pp-size", "--ep-size"),
    "trtllm": (("trtllm-serve",), "--tp_size", "--pp_size", "--ep_size"),
    "vllm": (("vllm", "serve"), "--tensor-parallel-size", "--pipeline-parallel-size", None),
}
MODEL_PLACEHOLDER = "MODEL_PATH"
"""The model argument of a serve command when the model has no Hugging Face id: a shell-safe word to
replace with the weights' path."""


def serving_command(ev: ServeEval, i: int) -> str:
    """vllm_command for row ``i`` of an evaluation: its layout, the replicas of its operating point, and the
    engine limits of its GPU."""
    assert ev.ctx.serve is not None
    g = ev.g
    return vllm_command(ev.ctx.model, ev.ctx.serve, int(g.tp[i]), int(g.pp[i]), deployment(ev, i)[0], int(g.ep[i]))


def vllm_command(model: ModelSpec, w: ServeWorkload, tp: int, pp: int = 1, dp: int = 1, ep: int = 1) -> str:
    """A ready-to-paste serve command for a layout, with the engine's real flags: its scheduler limits (``w``
    for the GPU: the defaults of the engine version and GPU, which the load model assumed), never a batch of 1.
    Every argument is shell-quoted (``shlex.join``): catalog strings cannot run commands when pasted."""
    import shlex

    lay = {"tp": tp, "pp": pp, "dp": dp, "ep": ep}
    eng = w.engine
    e = {"name": eng.name, "max_num_seqs": eng.max_num_seqs, "max_num_batched_tokens": eng.max_num_batched_tokens,
         "gpu_memory_utilization": w.gpu_memory_utilization}
    repo = model.hf_id or MODEL_PLACEHOLDER
    native_w = model.weight_dtype or model.dtype
    quant = w.weight_dtype if w.weight_dtype != native_w and w.weight_dtype in ("fp8", "int8") else None
    kv = w.kv_dtype if w.kv_dtype != model.dtype else None
    name = e["name"] if e["name"] in _LAUNCH else "vllm"
    words, tp_flag, pp_flag, ep_flag = _LAUNCH[name]
    # a context extension: vLLM --hf-overrides, SGLang --json-model-override-args (rope_scaling as in config.json)
    rope = None
    if model.rope_scaling is not None:
        import json

        rs = model.rope_scaling
        rope = json.dumps({"rope_scaling": {"rope_type": rs.rope_type, "factor": rs.factor,
                                            "original_max_position_embeddings": rs.original_max_position_embeddings}},
                          separators=(",", ":"))
    env = ["VLLM_ALLOW_LONG_MAX_MODEL_LEN=1"] if model.allow_long_context and name == "vllm" else []
    sp = w.speculative
    spec_json = None
    # the draft a speculative method loads: an EAGLE head trained for the model (no catalog entry names one)
    # or the draft model's repo
    draft_repo = (f"<{sp.method.upper()} head for {repo}>" if sp is not None and sp.method in ("eagle", "eagle3")
                  else (sp.draft.hf_id or sp.draft_model or MODEL_PLACEHOLDER)
                  if sp is not None and sp.method == "draft" and sp.draft is not None else None)
    if sp is not None and name == "vllm":
        import json

        # vLLM SpeculativeConfig (vllm/config/speculative.py): method, model, num_speculative_tokens
        method = {"draft": "draft_model", "mtp": "deepseek_mtp" if model.family.startswith("deepseek") else "mtp"
                  }.get(sp.method, sp.method)
        cfg: dict[str, Any] = {"method": method, "num_speculative_tokens": sp.draft_tokens}
        if draft_repo is not None:
            cfg["model"] = draft_repo
        elif sp.method == "ngram":
            cfg["prompt_lookup_max"] = 4
        spec_json = json.dumps(cfg, separators=(",", ":"))
    args: list[str] = [*env, *words, repo, tp_flag, str(lay["tp"])]
    if lay["pp"] > 1:
        args += [pp_flag, str(lay["pp"])]
    if name == "vllm":
        if lay["dp"] > 1:
            args += ["--data-parallel-size", str(lay["dp"])]
        if lay["ep"] > 1:
            args.append("--enable-expert-parallel")
        args += ["--max-model-len", str(w.ctx), "--max-num-seqs", str(e["max_num_seqs"]),
                 "--max-num-batched-tokens", str(e["max_num_batched_tokens"])]
        args += ["--quantization", quant] if quant else []
        args += ["--kv-cache-dtype", kv] if kv else []
        args += ["--gpu-memory-utilization", str(e["gpu_memory_utilization"])]
        args += ["--hf-overrides", rope] if rope else []
        args += ["--enable-prefix-caching"] if w.cached_prompt_tokens else []
        args += ["--speculative-config", spec_json] if spec_json else []
        return shlex.join(args)
    if lay["ep"] > 1 and ep_flag:
        args += [ep_flag, str(lay["ep"])]
    if name == "sglang":
        args += ["--context-length", str(w.ctx), "--max-running-requests", str(e["max_num_seqs"]),
                 "--chunked-prefill-size", str(e["max_num_batched_tokens"])]
        args += ["--quantization", quant] if quant else []
        args += ["--kv-cache-dtype", kv] if kv else []
        args += ["--json-model-override-args", rope] if rope else []
        if sp is not None:
            # SGLang server_args: --speculative-algorithm EAGLE | EAGLE3 | NEXTN (MTP) | NGRAM | STANDALONE
            algo = {"eagle": "EAGLE", "eagle3": "EAGLE3", "mtp": "NEXTN", "ngram": "NGRAM",
                    "draft": "STANDALONE"}[sp.method]
            args += ["--speculative-algorithm", algo, "--speculative-num-steps", str(sp.draft_tokens),
                     "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", str(sp.verify_tokens)]
            args += ["--speculative-draft-model-path", draft_repo] if draft_repo is not None else []
    else:
        args += ["--max_seq_len", str(w.ctx), "--max_batch_size", str(e["max_num_seqs"]),
                 "--max_num_tokens", str(e["max_num_batched_tokens"]),
                 "--kv_cache_free_gpu_memory_fraction", str(e["gpu_memory_utilization"])]
        if sp is not None:  # trtllm-serve takes speculative decoding from its LLM API options file only
            return (shlex.join(args) + " --extra_llm_api_options spec.yaml  # spec.yaml: speculative_config: "
                    f"{{decoding_type: {_TRT_SPEC[sp.method]}, max_draft_len: {sp.draft_tokens}}}")
    return shlex.join(args)


_TRT_SPEC = {"eagle": "Eagle", "eagle3": "Eagle3", "mtp": "MTP", "ngram": "NGram", "draft": "DraftTarget"}
"""TensorRT-LLM llm_args.py speculative_config decoding_type per method."""


def explain(s: Search, spec: str, objective: Objective = "latency",
            listed: list[tuple[int, int]] | None = None) -> list[str]:
    """Why layouts matching ``"h100-sxm tp=2 pp=1"`` are absent, with the numbers."""
    words = spec.replace(",", " ").split()
    gpu_name = None
    want: dict[str, int] = {}
    for wd in words:
        if "=" in wd:
            k, _, v = wd.partition("=")
            k = k.strip().lower()
            if k not in ("tp", "pp", "dp", "cp", "ep", "gpus", "concurrency"):
                raise TpplanError(f"--explain: unknown key {k!r}; use tp=, pp=, dp=, cp=, ep=, gpus=, concurrency=")
            try:
                want[k] = int(v)
            except ValueError:
                raise TpplanError(f"--explain: {k} must be an integer; got {v!r}") from None
        else:
            gpu_name = wd.lower()
    lines = []
    # a named layout means 1 for the axes it does not name ("tp=2" is tp=2 pp=1 cp=1 ep=1)
    if "gpus" not in want:
        for axis in ("pp", "cp", "ep"):
            want.setdefault(axis, 1)
    replicas = want.pop("dp", None)
    if replicas is not None and replicas > 1:
        lines.append(f"dp={replicas}: data-parallel replicas are not searched for serving: {replicas} replicas have "
                     f"the latency, per-GPU throughput and $ per token of one, at {replicas}x the $/hour; the "
                     "single replica is explained below")
    for gi, ev in enumerate(s.evals):
        gpu = ev.ctx.gpu
        if gpu_name and gpu_name not in (gpu.name, *gpu.aliases):
            continue
        sel = np.ones(len(ev.g), dtype=bool)
        for axis, value in want.items():
            arr = ev.g.gpus if axis == "gpus" else getattr(ev.g, axis)
            sel &= arr == value
        idx = np.nonzero(sel)[0]
        if not len(idx):
            named = " ".join(f"{k}={v}" for k, v in want.items())
            lines.append(f"{gpu.name} {named}: not a candidate (no such layout within --max-gpus, or the model "
                         f"rejects it: valid tp {ev.ctx.model.valid_tp()})")
            continue
        # report the best row of the selection: the best-ranked feasible one, else the one with the fewest
        # reasons (then the least memory)
        feas = idx[ev.reasons[idx] == 0]
        if len(feas):
            key = objective_key(ev, objective)
            j = feas[np.lexsort((ev.usd_per_hour[feas], ev.g.gpus[feas], key[feas]))[0]]
        else:
            j = idx[np.lexsort((ev.mem.total[idx], _popcount(ev.reasons[idx])))[0]]
        bits = int(ev.reasons[j])
        lay = f"{gpu.name} tp={ev.g.tp[j]} pp={ev.g.pp[j]} dp={ev.g.dp[j]} cp={ev.g.cp[j]} ep={ev.g.ep[j]}"
        if bits == 0:
            line = f"{lay}: feasible ({_objective_words(ev, objective, int(j))}, ${ev.usd_per_hour[j]:.2f}/h)"
            d = dominated_by(s, objective, gi, int(j))
            if listed and (gi, int(j)) in listed:
                line += f"; listed at rank {listed.index((gi, int(j))) + 1}"
            elif d is not None:
                line += (f"; not listed: tp={ev.g.tp[d]} pp={ev.g.pp[d]} dp={ev.g.dp[d]} cp={ev.g.cp[d]} "
                         f"ep={ev.g.ep[d]} ranks as well or better ({_objective_words(ev, objective, d)}) on "
                         + (f"fewer GPUs ({ev.g.gpus[d]})" if ev.g.gpus[d] < ev.g.gpus[j] else "as many GPUs"))
            else:
                line += "; it ranked below the shown candidates (--top shows more)"
            lines.append(line)
            continue
        lines.append(f"{lay}: rejected by {', '.join(Reason.names(bits))}")
        lines.extend("  " + d for d in _reason_details(ev, int(j), bits))
    return lines or [f"no GPU in the search matches {spec!r}"]


def _objective_words(ev: ServeEval, objective: Objective, r: int) -> str:
    """The figure a row is ranked on (objective_key's: at its operating point under load)."""
    le = ev.load
    assert le is not None
    return {"latency": f"request latency {format_sig(le.request_latency[r])} s",
            "throughput": f"{format_sig(le.output_tokens_per_s[r] / le.gpus[r])} tokens/s per GPU",
            "cost": f"${format_sig(ev.usd_per_mtok[r])} per 1M tokens"}[objective]


def _popcount(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.array([bin(int(v)).count("1") for v in x], dtype=np.int64)


def _reason_details(ev: ServeEval, j: int, bits: int) -> list[str]:
    from tpplan.units import format_bytes, format_seconds

    mem = ev.mem
    out = []
    if bits & Reason.CONCURRENCY_DOESNT_FIT and not bits & (Reason.WEIGHTS_DONT_FIT | Reason.KV_BELOW_ONE_REQUEST):
        # one sequence fits; the batch asked for does not (check's TPP012 says the same)
        n_fit = int(mem.max_concurrency[j])
        ctx_tok = ev.ctx.serve.ctx if ev.ctx.serve else 0
        out.append(f"{n_fit:,} sequence{'' if n_fit == 1 else 's'} of {ctx_tok:,} tokens fit in the "
                   f"{format_bytes(mem.kv_pool[j])} KV pool per GPU ({format_bytes(mem.kv_bytes_per_sequence[j])} "
                   f"each); the concurrency asks {int(ev.g.concurrency[j]):,}")
    elif bits & (Reason.WEIGHTS_DONT_FIT | Reason.KV_BELOW_ONE_REQUEST | Reason.CONCURRENCY_DOESNT_FIT):
        need = mem.weights[j] + mem.activations[j] + mem.overhead[j] + mem.kv_bytes_per_sequence[j]
        out.append(f"needs {format_bytes(need)} per GPU for weights + one {ev.ctx.serve.ctx if ev.ctx.serve else 0}"
                   f"-token sequence ({format_bytes(mem.weights[j])} weights), {format_bytes(mem.usable[j])} usable "
                   f"({ev.ctx.serve.gpu_memory_utilization if ev.ctx.serve else 0} x "
                   f"{format_bytes(mem.capacity)})")
    assert ev.load is not None
    cons = ev.load.cons
    pct = f"p{cons.slo_percentile} " if cons.slo_percentile is not None else ""
    # the figure each SLO was judged on (_slo_value: the operating point, or a trickle where no rate meets it)
    for bit, which, slo in ((Reason.TTFT_SLO, "ttft", cons.ttft_slo_s), (Reason.TPOT_SLO, "tpot", cons.tpot_slo_s)):
        if bits & bit and slo is not None:
            out.append(f"{pct}{which.upper()} {format_seconds(float(_slo_value(ev, which)[j]))} above the SLO "
                       f"({format_seconds(slo)})")
    if bits & Reason.BUDGET:
        out.append(f"costs ${ev.usd_per_hour[j]:.2f}/hour, above the budget")
    return out


def _ceil_sig(x: float, digits: int = 3) -> float:
    """``x`` rounded up at its third significant digit (1.2341 -> 1.24; 0.012341 -> 0.0124)."""
    if x <= 0 or not math.isfinite(x):
        return x
    q = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return math.ceil(x / q * (1 - 1e-12)) * q


def _limit_text(seconds: float) -> str:
    """A time limit rounded up at its third significant digit, in ms below a second (``10.1 ms``, ``126 s``):
    the printed value is itself enough, and pastes back as an option value."""
    x = _ceil_sig(seconds)
    return f"{x * 1e3:g} ms" if x < 1 else f"{x:g} s"


# the limits a hint can move: (reason bit, option, verb, each row's value, the Constraints field)
_LIMITS: tuple[tuple[Reason, str, str, Callable[[ServeEval], FArray], str], ...] = (
    (Reason.TTFT_SLO, "--ttft-slo", "relax", lambda ev: _slo_value(ev, "ttft"), "ttft_slo_s"),
    (Reason.TPOT_SLO, "--tpot-slo", "relax", lambda ev: _slo_value(ev, "tpot"), "tpot_slo_s"),
    (Reason.BUDGET, "--budget-usd-per-hour", "raise", lambda ev: ev.usd_per_hour, "budget_usd_per_hour"),
    # --rate split over as many replicas as it needs: the deployment's GPUs against --max-gpus
    (Reason.RATE_NEEDS_MORE_GPUS, "--max-gpus", "raise",
     lambda ev: ev.load.gpus if ev.load is not None else np.full(len(ev.g), np.inf), "max_gpus"),
)


def _slo_value(ev: ServeEval, which: str) -> FArray:
    """What a row's TTFT or TPOT SLO is judged on (``LoadEval.slo_ttft``), or its operating point."""
    le = ev.load
    assert le is not None
    v = le.slo_ttft if which == "ttft" else le.slo_tpot
    if v is None:
        v = le.load.ttft if which == "ttft" else le.load.tpot
    return v


def _limit_move(option: str, value: float) -> str:
    """``--tpot-slo to 10.1 ms``: the value rounded up, so the printed value is itself enough."""
    if option == "--max-gpus":
        return f"{option} to {math.ceil(value)}"
    shown = f"{math.ceil(value * 100) / 100:.2f}" if option == "--budget-usd-per-hour" else _limit_text(value)
    return f"{option} to {shown}"


def relax_hints(s: Search, cons: Constraints, w: ServeWorkload) -> list[str]:
    """The smallest changes that would make at least one layout feasible."""
    hints: list[str] = []
    prefix = ""
    m = s.evals[0].ctx.model if s.evals else None
    if m is not None and w.ctx > m.max_position_embeddings:
        # vLLM refuses a max_model_len above the model's max_position_embeddings
        w = replace(w, ctx=m.max_position_embeddings,
                    input_len=max(1, min(w.input_len, m.max_position_embeddings - w.output_len)))
        s = s.rerun(w, cons)
        if s.any_feasible():
            return [f"reduce --ctx to {m.max_position_embeddings} ({m.name}'s longest context; a longer one needs "
                    "--rope-scaling where the model card documents an extension, e.g. yarn:4)"]
        # what else is needed once the context is legal
        prefix = f"reduce --ctx to {m.max_position_embeddings} ({m.name}'s longest context) and "
    mem_bits = int(Reason.WEIGHTS_DONT_FIT | Reason.KV_BELOW_ONE_REQUEST | Reason.CONCURRENCY_DOESNT_FIT
                   | Reason.MIN_CONCURRENCY)
    # a limit that is the only obstacle of some row: move it to the best such row's value
    for bit, option, verb, of, _ in _LIMITS:
        vals = [of(ev)[(ev.reasons & ~int(bit)) == 0] for ev in s.evals]
        vals = [v for v in vals if len(v)]
        if vals:
            hints.append(f"{verb} {_limit_move(option, float(min(v.min() for v in vals)))}")
    slo_bits = int(Reason.TTFT_SLO | Reason.TPOT_SLO | Reason.BUDGET | Reason.RATE_NEEDS_MORE_GPUS)
    if not hints:
        # no single constraint is the only obstacle: the row closest to feasible (smallest worst ratio of
        # value to limit) and every limit it needs moved, together
        best_ratio, best_row = np.inf, None
        for ev in s.evals:
            rows = np.nonzero(((ev.reasons & ~slo_bits) == 0) & (ev.reasons != 0))[0]
            if not len(rows):
                continue
            ratio = np.zeros(len(rows))
            for _, _, _, of, field_ in _LIMITS:
                lim = getattr(cons, field_)
                if lim:
                    ratio = np.maximum(ratio, of(ev)[rows] / lim)
            j = int(np.argmin(ratio))
            if ratio[j] < best_ratio:
                best_ratio, best_row = float(ratio[j]), (ev, int(rows[j]))
        if best_row is not None:
            ev, r = best_row
            parts = [_limit_move(option, float(of(ev)[r])) for bit, option, _, of, _ in _LIMITS
                     if int(ev.reasons[r]) & bit]
            hints.append("relax " + " and ".join(parts) + f" together ({ev.ctx.gpu.name} tp={ev.g.tp[r]} "
                         f"pp={ev.g.pp[r]} on {ev.g.gpus[r]} GPUs)")
    fits_any = any(((ev.reasons & mem_bits) == 0).any() for ev in s.evals)
    if not fits_any and s.evals:
        # each change below is tried (a search with it applied) and named only if it makes a layout feasible
        best_ctx = max(int(ev.mem.max_ctx_one_sequence.max()) for ev in s.evals)
        if w.output_len < best_ctx < w.ctx and s.rerun(replace(
                w, ctx=best_ctx, input_len=min(w.input_len, best_ctx - w.output_len)), cons).any_feasible():
            hints.append(f"reduce --ctx to {best_ctx} tokens (the longest one sequence that fits)")
        tried = []
        if w.kv_dtype != "fp8":
            tried.append(("use --kv-dtype fp8 (halves the KV cache)", replace(w, kv_dtype="fp8")))
        if w.weight_dtype in ("bf16", "fp16"):
            tried.append(("use --weight-dtype fp8 (halves the weights)", replace(w, weight_dtype="fp8")))
        works = [text for text, w2 in tried if s.rerun(w2, cons).any_feasible()]
        if not works and len(tried) == 2 and s.rerun(replace(w, kv_dtype="fp8", weight_dtype="fp8"),
                                                     cons).any_feasible():
            works.append("use --weight-dtype fp8 --kv-dtype fp8 (neither alone is enough)")
        hints += works
        more = search.smallest_gpu_power_of_two(
            cons.max_gpus, lambda n: s.rerun(w, replace(cons, max_gpus=n)).any_feasible())
        if more is not None:
            hints.append(f"raise --max-gpus to {more}")
    return [h if h.startswith("reduce --ctx") else prefix + h for h in hints]


def recommend_serve(model: ModelSpec, gpus: list[GpuSpec], w: ServeWorkload, cons: Constraints,
                    pricing: Pricing, objective: str = "latency", top: int = 10, pareto: bool = False,
                    explain_spec: str | None = None, gpus_per_node: int | None = None,
                    digest: str = "", disagg: bool = False) -> rt.RecommendResult:
    """The ``recommend`` result: ranked candidates (estimate objects with bands), rejection counts, the
    search size and time, a serving command for the winner, and hints when nothing is feasible; with ``disagg``
    (and a rate) the disaggregated pools against the cheapest feasible aggregated row (recommend_disagg)."""
    obj: Objective = objective  # type: ignore[assignment]
    s = search_serve(model, gpus, w, cons, pricing, obj, gpus_per_node)
    picks = pareto_serve(s)[:max(top, 1) * 5] if pareto else rank_serve(s, obj, top)
    cands = []
    by_gpu: dict[int, list[int]] = {}
    for k, r in picks:
        by_gpu.setdefault(k, []).append(r)
    band_of: dict[tuple[int, int], Bands] = {}
    keys = list(by_gpu)
    bands = serve_bands_many([(s.evals[k], np.array(by_gpu[k])) for k in keys])
    for k, per in zip(keys, bands, strict=True):
        for r, b in zip(by_gpu[k], per, strict=True):
            band_of[(k, r)] = b
    for k, r in picks:
        cands.append(serve_object(s.evals[k], r, band_of[(k, r)]))
    # "too close to call": the model's uncertainty on the objective overlaps the winner's
    if cands and not pareto:
        wlo, whi = objective_band(s.evals[picks[0][0]], picks[0][1], band_of[picks[0]], objective)
        for c, (k, r) in zip(cands[1:], picks[1:], strict=True):
            lo, hi = objective_band(s.evals[k], r, band_of[(k, r)], objective)
            c["too_close_to_call"] = bool(lo <= whi and hi >= wlo)
        cands[0]["too_close_to_call"] = False
    res: rt.RecommendResult = {
        "schema_version": SCHEMA_VERSION, "tool": tool_info(),
        "inputs": {**serve_inputs(model, gpus, w, pricing, digest),
                   "objective": objective, "pareto": pareto,
                   "rate_rps": cons.rate_rps, "slo_percentile": cons.slo_percentile,
                   "max_utilization": cons.max_utilization, "allow_cross_node_tp": cons.allow_cross_node_tp,
                   "constraints": cons.to_json()},
        "candidates": cands,
        "rejected": rejected_counts(s),
        "search": {"layouts_evaluated": s.layouts, "seconds": s.seconds,
                   "feasible": int(sum(int(np.count_nonzero(e.reasons == 0)) for e in s.evals))},
        "assumptions": {e.ctx.gpu.name: assumptions(e.ctx, pricing) for k, e in enumerate(s.evals)
                        if k in {kk for kk, _ in picks}},
        "accuracy": accuracy.measured("serve"),
    }
    cheap = cheapest_feasible(s) if cons.rate_rps is not None else None
    if cheap is not None:
        res["cheapest_feasible"] = serve_object(s.evals[cheap[0]], cheap[1])
    if cands:
        res["serving_command"] = serving_command(s.evals[picks[0][0]], picks[0][1])
    else:
        res["relax"] = relax_hints(s, cons, w)
    if explain_spec:
        res["explain"] = explain(s, explain_spec, obj, picks)
    if disagg:
        res["disaggregated"] = recommend_disagg(model, gpus, w, cons, pricing,
                                                None if cheap is None else (s.evals[cheap[0]], cheap[1]),
                                                gpus_per_node)
    return res


def cheapest_feasible(s: Search) -> tuple[int, int] | None:
    """(GPU index, row) of the feasible row with the lowest $/hour over the whole search (fewer GPUs on a tie),
    whatever the objective ranks first; None when nothing is feasible."""
    best: tuple[tuple[float, float], int, int] | None = None
    for k, ev in enumerate(s.evals):
        ok = np.flatnonzero(ev.reasons == 0)
        if not len(ok) or ev.load is None:
            continue
        j = int(ok[np.lexsort((ev.load.gpus[ok], ev.usd_per_hour[ok]))[0]])
        key = (float(ev.usd_per_hour[j]), float(ev.load.gpus[j]))
        if best is None or key < best[0]:
            best = (key, k, j)
    return None if best is None else (best[1], best[2])


def recommend_disagg(model: ModelSpec, gpus: list[GpuSpec], w: ServeWorkload, cons: Constraints, pricing: Pricing,
                     agg_best: tuple[ServeEval, int] | None, gpus_per_node: int | None = None,
                     top: int = 5) -> rt.Disaggregated:
    """``recommend --disagg``: the cheapest prefill and decode pools meeting --rate and the SLOs
    (tpplan/plan/disagg.py), set against ``agg_best``: the cheapest feasible aggregated deployment of the same
    search (the evaluation and row of ``cheapest_feasible``, not only among the candidates the objective listed;
    None when none is feasible)."""
    from tpplan.plan import disagg

    assert cons.rate_rps is not None
    note = []
    if cons.slo_percentile is not None:
        note = [f"the SLOs hold at p{cons.slo_percentile}: a prefill pool's TTFT with the same M/D/1 wait and "
                "exponential tail as the aggregated rows; a decode pool's steps carry no prompt chunks, so its TPOT "
                "is the same at every percentile"]
    picked: list[tuple[tuple[disagg.Pool, int], tuple[disagg.Pool, int]]] = []
    r = disagg.search(model, gpus, w, cons.rate_rps, cons.ttft_slo_s, cons.tpot_slo_s, cons.max_utilization,
                      {g.name: pricing.price(g) for g in gpus}, cons.max_gpus, cons.allow_cross_node_tp,
                      gpus_per_node, top, cons.slo_percentile, picked=picked, max_pp=cons.max_pp)
    pairs = r["pairs"]
    out: rt.Disaggregated = {"pairs": pairs, "rows_evaluated": r["rows_evaluated"], "notes": note,
                             "aggregated_best": None, "cheaper": None, "message": ""}
    agg_usd_h = 0.0
    if agg_best is not None:
        ev, i = agg_best
        assert ev.load is not None
        agg_usd_h = _f(ev.usd_per_hour[i])
        out["aggregated_best"] = {"layout": layout_object(ev, i), "usd_per_hour": agg_usd_h,
                                  "ttft_s": _f(ev.load.load.ttft[i]), "tpot_s": _f(ev.load.load.tpot[i])}
    if not pairs:
        out["message"] = ("Disaggregated serving cannot meet the SLOs at this rate: " + "; ".join(r["why"])
                          + (". Aggregated serving can: see the candidates." if agg_best else
                             ". Neither can aggregated serving."))
        return out
    best = pairs[0]
    pools = dict(zip(("prefill", "decode"), picked[0], strict=True))
    best["commands"] = {role: disagg.pool_command(model, pool, i, role) for role, (pool, i) in pools.items()}
    best["commands"].update({f"dynamo_{role}": disagg.dynamo_command(model, pool, i, role)
                             for role, (pool, i) in pools.items()})
    if agg_best is None:
        out["cheaper"] = "disaggregated"
        out["message"] = "Only disaggregated serving meets the SLOs at this rate."
    else:
        a, d = agg_usd_h, best["usd_per_hour"]
        out["cheaper"] = "aggregated" if a <= d else "disaggregated"
        out["message"] = (f"Aggregated serving is cheaper: ${a:,.2f}/hour against ${d:,.2f}/hour disaggregated."
                          if a <= d else
                          f"Disaggregated serving is cheaper: ${d:,.2f}/hour against ${a:,.2f}/hour aggregated.")
    return out
