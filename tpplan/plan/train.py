"""Training plans: one layout (``estimate --train``) or a search (``recommend --train``)."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from tpplan.catalog import accuracy
from tpplan.catalog.spec import FrameworkProfile, FrameworkSettings, GpuSpec, ModelSpec
from tpplan.engine import cost, grid, memory, perf
from tpplan.engine.grid import Grid, Reason
from tpplan.engine.workload import TRAIN_DEFAULTS, Context, TrainWorkload
from tpplan.errors import TpplanError
from tpplan.plan import search
from tpplan.plan.serve import (
    SCHEMA_VERSION,
    Pricing,
    layout_warnings,
    tool_info,
    validate_layout,
)

if TYPE_CHECKING:
    from tpplan import result_types as rt


@dataclasses.dataclass
class TrainEval:
    ctx: Context
    g: Grid
    mem: memory.TrainMemory
    t: perf.TrainTime
    reasons: np.ndarray
    price: float
    zero: np.ndarray
    """ZeRO stage of each row (the search evaluates all stages in one grid)."""


def evaluate_train(ctx: Context, g: Grid, pricing: Pricing, zero: np.ndarray | None = None) -> TrainEval:
    """Memory, time and feasibility bits of every row; ``zero`` gives each row its ZeRO stage (default: the
    workload's)."""
    assert ctx.train is not None
    tw = ctx.train
    z = np.full(len(g), tw.zero, dtype=np.int64) if zero is None else np.asarray(zero, dtype=np.int64)
    mem = memory.train_memory(ctx, g, z)
    t = perf.train_time(ctx, g, zero=z)
    r = g.reasons | grid.structural_reasons(ctx.model, g, tw.seq_len)
    r |= np.where(mem.total > mem.capacity, int(Reason.TRAIN_MEMORY), 0)
    r |= np.where(tw.global_batch % (g.micro_batch * g.dp) != 0, int(Reason.BATCH_NOT_DIVISIBLE), 0)
    return TrainEval(ctx=ctx, g=g, mem=mem, t=t, reasons=r, price=pricing.price(ctx.gpu), zero=z)


def run_steps(tw: TrainWorkload) -> float | None:
    """Optimizer steps of the whole run: --tokens over the tokens of one step; None without --tokens."""
    return tw.tokens / (tw.global_batch * tw.seq_len) if tw.tokens else None


def run_seconds(ev: TrainEval, i: int) -> float | None:
    """Wall-clock seconds of row ``i``'s whole run (--tokens at its step time); None without --tokens."""
    assert ev.ctx.train is not None
    steps = run_steps(ev.ctx.train)
    return float(ev.t.step_time[i]) * steps if steps else None


def train_object(ev: TrainEval, i: int, pricing: Pricing) -> rt.TrainEstimate:
    ctx, g, mem, t = ev.ctx, ev.g, ev.mem, ev.t
    assert ctx.train is not None
    tw = ctx.train
    gpus = int(g.gpus[i])
    step = float(t.step_time[i])
    steps = run_steps(tw)
    secs = run_seconds(ev, i)
    gh = float(cost.gpu_hours(gpus, secs)) if secs else None
    lo = perf.train_time(ctx, g.take([i]), perf.Eff.of(ctx, "high"), ev.zero[[i]])  # optimistic: faster
    hi = perf.train_time(ctx, g.take([i]), perf.Eff.of(ctx, "low"), ev.zero[[i]])
    bits = int(ev.reasons[i])
    tiers = pricing.tiers(ctx.gpu)
    obj: rt.TrainEstimate = {
        "layout": {"gpu": ctx.gpu.name, "tp": int(g.tp[i]), "pp": int(g.pp[i]), "dp": int(g.dp[i]),
                   "cp": int(g.cp[i]), "ep": int(g.ep[i]), "gpus": gpus,
                   "nodes": int(np.ceil(gpus / ctx.node_size)), "micro_batch": int(g.micro_batch[i])},
        "settings": {"recompute": tw.recompute, "sequence_parallel": tw.sequence_parallel, "zero": int(ev.zero[i]),
                     "train_dtype": tw.train_dtype, "micro_batches": int(t.micro_batches[i]),
                     "interleave": tw.interleave, "ep_overlap": tw.ep_overlap,
                     "attention": attention_name(tw.flash_attention, tw.flash_kernel), "shard_group": tw.shard_group,
                     "grad_reduce_dtype": "fp32" if tw.grad_bytes == 4 else "bf16",
                     "overlap_grad_reduce": tw.dp_overlap, "elementwise": tw.elementwise},
        "params": {"total": ctx.model.params_total, "active": ctx.model.params_active,
                   "per_gpu": float(mem.params_per_gpu[i])},
        "memory_per_gpu_bytes": {"weights": float(mem.params[i]), "kv_cache": 0.0,
                                 "activations": float(mem.activations[i]), "gradients": float(mem.gradients[i]),
                                 "optimizer": float(mem.optimizer[i]), "overhead": float(mem.overhead[i]),
                                 "total": float(mem.total[i]), "capacity": mem.capacity},
        "fits": not (bits & Reason.TRAIN_MEMORY),
        "feasible": bits == 0,
        "train": {"step_time_s": step, "mfu": float(t.mfu[i]), "hfu": float(t.hfu[i]),
                  "tokens_per_s": float(t.tokens_per_s[i]), "steps": steps, "gpu_hours": gh,
                  "days": secs / 86400 if secs else None,
                  "breakdown_s": {"compute": float(t.compute_time[i]), "bubble": float(t.bubble_time[i]),
                                  "tp_comm": float(t.tp_comm[i]), "pp_comm": float(t.pp_comm[i]),
                                  "dp_comm": float(t.dp_comm[i]), "ep_comm": float(t.ep_comm[i]),
                                  "cp_comm": float(t.cp_comm[i]), "optimizer": float(t.optimizer[i]),
                                  # compute's parts: tensor-core GEMMs, flash attention, elementwise HBM traffic
                                  "gemm": float(t.gemm[i]) if t.gemm is not None else None,
                                  "attention": float(t.attention[i]) if t.attention is not None else None,
                                  "elementwise": float(t.elementwise[i]) if t.elementwise is not None else None,
                                  # gemm's part the routed experts' weight reads add beyond their FLOPs (MoE)
                                  "expert_weight_streaming": float(t.expert_streaming[i])
                                  if t.expert_streaming is not None else 0.0},
                  "gemm_by_operator_s": _gemm_by_operator(
                      ctx, float(t.gemm[i]) if t.gemm is not None else 0.0, g, i,
                      float(t.expert_streaming[i]) if t.expert_streaming is not None else 0.0),
                  "model_flops_per_step": t.model_flops},
        "cost": {"usd_per_hour": gpus * ev.price, "usd_per_million_tokens": None,
                 "usd_total": float(cost.run_cost(gh, ev.price)) if gh else None, "usd_per_gpu_hour": ev.price,
                 "usd_total_by_tier": {k: gh * v for k, v in tiers.items()} if gh else {}},
        "bands": {"train": {"step_time_s": [float(lo.step_time[0]), float(hi.step_time[0])],
                            "mfu": [float(hi.mfu[0]), float(lo.mfu[0])]},
                  "cost": {"usd_total": [gh * tiers["low"] * float(lo.step_time[0]) / step,
                                         gh * tiers["high"] * float(hi.step_time[0]) / step] if gh else None}},
        "warnings": layout_warnings(ctx, g, i),
        "reasons": Reason.names(bits),
    }
    return obj


def _inputs(model: ModelSpec, gpus: list[GpuSpec], tw: TrainWorkload, pricing: Pricing, digest: str) -> rt.TrainInputs:
    return {"model": model.name, "gpus": [g.name for g in gpus], "seq_len": tw.seq_len,
            "global_batch": tw.global_batch, "tokens": tw.tokens, "train_dtype": tw.train_dtype,
            "price_tier": pricing.tier, "price_overrides": dict(pricing.overrides), "catalog_sha256": digest,
            "optimizer": "adam (mixed precision: 2 + grad + 12 bytes per parameter)"}


def attention_name(flash: bool, kernel: str) -> str:
    """The --attention word of a workload's attention kernels: flash (FlashAttention-2), flash1 or eager."""
    return "eager" if not flash else "flash1" if kernel == "fa1" else "flash"


def attention_fields(word: str) -> dict[str, Any]:
    """The TrainWorkload fields of an --attention word (spec.ATTENTION_KERNELS), attention_name's inverse."""
    return {"flash_attention": word != "eager", "flash_kernel": "fa1" if word == "flash1" else "fa2"}


def framework_defaults(prof: FrameworkSettings | None) -> dict[str, Any]:
    """The TrainWorkload fields a run takes where the user (or a published row) states nothing: the framework
    profile's (frameworks/*.yaml: its first recompute mode and ZeRO stage, sequence parallelism, attention
    kernels, and where it says, gradient-reduce dtype and overlap and elementwise kernels), else tpplan's
    (engine.workload.TRAIN_DEFAULTS). The one place a profile setting becomes a workload field."""
    d = TRAIN_DEFAULTS
    out: dict[str, Any] = {"recompute": d.recompute, "zero": d.zero, "sequence_parallel": d.sequence_parallel,
                           "attention": attention_name(d.flash_attention, d.flash_kernel), "grad_bytes": d.grad_bytes,
                           "dp_overlap": d.dp_overlap, "elementwise": d.elementwise}
    if prof is None:
        return out
    out.update(recompute=prof.recompute.value[0], zero=prof.zero.value[0],
               sequence_parallel=prof.sequence_parallel.value, attention=prof.attention.value)
    if prof.grad_reduce_dtype is not None:
        out["grad_bytes"] = 4 if prof.grad_reduce_dtype.value == "fp32" else 2
    if prof.overlap_grad_reduce is not None:
        out["dp_overlap"] = bool(prof.overlap_grad_reduce.value)
    if prof.elementwise is not None:
        out["elementwise"] = prof.elementwise.value
    return out


def _gemm_by_operator(ctx: Context, gemm_s: float, g: Grid, i: int, streaming: float = 0.0) -> dict[str, float]:
    """The step's GEMM time (breakdown_s.gemm) by operator, in proportion to each one's FLOPs at its inner
    dimensions' slowdown on row ``i``'s TP rank (perf.train_gemm_weights; eager attention's score GEMMs as
    attention_scores, at the operators' mean slowdown as train_time charges them), and the routed experts'
    weight streaming (``streaming``, perf._routed_expert_streaming) on experts_up / experts_down by their
    weights: the parts sum to gemm."""
    assert ctx.train is not None
    m, tw = ctx.model, ctx.train
    tokens = float(g.micro_batch[i]) * tw.seq_len / float(g.cp[i])
    w = perf.train_gemm_weights(m, tw.recompute, int(g.tp[i]), int(g.ep[i]), tokens)
    if not tw.flash_attention:
        B, s = float(tw.global_batch), float(tw.seq_len)
        extra = (perf.model_flops_per_step(m, B, s) + perf.recompute_flops_per_step(m, B, s, tw.recompute, False)
                 - B * s * 2.0 * m.matmul_params_active * 3.0)
        flops = perf.train_gemm_weights(m, tw.recompute, 1, 1, perf.GEMM_K_REF)  # no slowdown: FLOPs alone
        w["attention_scores"] = extra / (2.0 * B * s) * sum(w.values()) / sum(flops.values())
    out = {k: (gemm_s - streaming) * v for k, v in perf.gemm_operator_shares(m, w).items()}
    if streaming > 0 and m.moe is not None:
        gated = 2.0 if m.mlp.kind == "gated" else 1.0
        for k, part in (("experts_up", gated / (gated + 1.0)), ("experts_down", 1.0 / (gated + 1.0))):
            out[k] = out.get(k, 0.0) + streaming * part
    return out


def estimate_train(model: ModelSpec, gpu: GpuSpec, tw: TrainWorkload, tp: int, pp: int, dp: int, cp: int,
                   ep: int, pricing: Pricing, gpus_per_node: int | None = None,
                   digest: str = "", notes: list[str] | None = None) -> rt.TrainEstimateResult:
    """One training layout in full; ``notes``: what to know about the inputs (a global batch not given)."""
    validate_layout(model, tp, pp, dp, cp, ep, tw.seq_len)
    require_dtype(tw.train_dtype, [gpu], every=True)
    ctx = Context(model=model, gpu=gpu, train=tw, gpus_per_node=gpus_per_node)
    g = grid.make(tp, pp, dp, cp, ep, 1, tw.micro_batch)
    ev = evaluate_train(ctx, g, pricing)
    res: rt.TrainEstimateResult = {
        "schema_version": SCHEMA_VERSION, "tool": tool_info(),
        "inputs": {**_inputs(model, [gpu], tw, pricing, digest), "micro_batch": tw.micro_batch,
                   "recompute": tw.recompute, "zero": tw.zero, "sequence_parallel": tw.sequence_parallel},
        **train_object(ev, 0, pricing), "accuracy": accuracy.measured("train")}
    if notes:
        res["notes"] = notes
    return res


TRAIN_DTYPES = ("bf16", "fp16", "fp8")


def train_dtype(name: str | None) -> str:
    """The GEMM dtype of a training run from --train-dtype (bf16 when unset). fp4 is refused: NVFP4 / MXFP4
    training recipes (Transformer Engine on Blackwell) keep part of each layer in higher precision, and
    tpplan has no model of which part, so any figure would be invented."""
    t = (name or "bf16").lower()
    t = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float8": "fp8", "e4m3": "fp8"}.get(t, t)
    if t in TRAIN_DTYPES:
        return t
    why = (" fp4 training is not modelled: NVFP4/MXFP4 recipes need fp4 tensor cores (Blackwell; an H100 or A100 "
           "has none) and keep part of every layer in higher precision, which tpplan does not know how to split."
           if t in ("fp4", "nvfp4", "mxfp4") else "")
    raise TpplanError(f"--train-dtype must be one of {', '.join(TRAIN_DTYPES)}; got {name!r}.{why}")


def gpus_for_dtype(tdt: str, gpus: list[GpuSpec]) -> tuple[list[GpuSpec], dict[str, str]]:
    """The GPUs with tensor cores for a training dtype, and why each other one is left out. fp8 training
    (Transformer Engine's recipes) needs fp8 units: Hopper, Ada, Blackwell, MI300; an A100 has none, and no
    framework emulates fp8 GEMMs in training."""
    ok = [g for g in gpus if tdt in ("bf16", "fp16") or tdt in g.compute.dense_flops_per_s]
    out = {g.name: (f"no {tdt} tensor cores (its catalog lists {', '.join(g.compute.dense_flops_per_s)})")
           for g in gpus if g not in ok}
    return ok, out


def require_dtype(tdt: str, gpus: list[GpuSpec], every: bool) -> list[GpuSpec]:
    """The GPUs a training plan may use with ``tdt``; a TpplanError when none (or, with ``every``, any one)
    lacks it, naming the GPUs that have it."""
    ok, out = gpus_for_dtype(tdt, gpus)
    if out and (every or not ok):
        from tpplan.catalog.load import get_catalog

        cat = get_catalog()
        have = [n for n in cat.gpu_names() if tdt in cat.gpu(n).compute.dense_flops_per_s]
        raise TpplanError(f"--train-dtype {tdt} cannot run on {', '.join(out)}: "
                          + "; ".join(f"{k} has {v}" for k, v in out.items())
                          + f". Use --train-dtype bf16, or a GPU with {tdt} tensor cores: {', '.join(have)}.")
    return ok


DEFAULT_BATCH_TOKENS = 4 * 2**20
"""Tokens per optimizer step when neither --global-batch nor --global-batch-tokens is given: Llama 2's global
batch of 4M tokens (Touvron et al. 2023, arXiv 2307.09288, section 2.2)."""


def default_global_batch(seq_len: int, multiple: int = 1) -> int:
    """The global batch (sequences) a run takes when none is given: the power of two of sequences nearest
    DEFAULT_BATCH_TOKENS (a power of two divides among power-of-two data-parallel groups; 1,024 sequences of
    4,096 tokens), as a multiple of ``multiple`` (an estimate's micro-batch x dp) where that is not one."""
    n = 2 ** max(0, round(math.log2(DEFAULT_BATCH_TOKENS / seq_len)))
    return max(multiple, round(n / multiple) * multiple)


def default_batch_note(tw: TrainWorkload) -> str:
    """What a run without a stated global batch assumed (recommend --train's and estimate --train's notes)."""
    return (f"no --global-batch or --global-batch-tokens given: {tw.global_batch:,} sequences of {tw.seq_len:,} "
            f"tokens per step ({tw.global_batch * tw.seq_len / 1e6:.2f}M tokens), near Llama 2's 4M-token batch "
            "(Touvron et al. 2023); the batch bounds how far data parallelism splits a step, so give yours")


def with_batch_tokens(tw: TrainWorkload, tokens: int) -> TrainWorkload:
    """The workload with a global batch of ``tokens`` tokens per step, in sequences of seq_len (rounded, at least
    one)."""
    return dataclasses.replace(tw, global_batch=max(1, round(tokens / tw.seq_len)))


def resolve_global_batch(tw: TrainWorkload, global_batch_tokens: str | None) -> TrainWorkload:
    """The workload with --global-batch-tokens turned into sequences of seq_len (with_batch_tokens); unchanged
    without it."""
    if not global_batch_tokens:
        return tw
    from tpplan.units import parse_tokens

    return with_batch_tokens(tw, parse_tokens(global_batch_tokens, "--global-batch-tokens"))


def batch_notes(given: str, tokens: int, seq_len: int, batch: int, search: bool = True) -> list[str]:
    """What to know about the global batch --global-batch-tokens turns into: rounded, and (``search``) whether
    its divisors leave data parallelism room (a prime batch of sequences only runs as dp = 1 or dp = batch)."""
    out = []
    binary = seq_len // 1000 * 1024
    # "8k" is 8,000 tokens (k = 1,000; K = 1,024, docs/metrics.md): where the batch of tokens does not split
    # into decimal sequences but would into binary ones, the user most likely meant 8K
    hint = (f"; with --seq-len {seq_len // 1000}K ({binary:,} tokens, binary) it would be {tokens // binary:,}"
            if seq_len % 1000 == 0 and tokens % binary == 0 else "")
    divs = grid.divisors(batch)
    if tokens % seq_len:
        out.append(f"--global-batch-tokens {given} = {tokens:,} tokens / {seq_len:,}-token sequences = "
                   f"{tokens / seq_len:,.1f}, rounded to {batch:,} sequences per step"
                   + (f" (divisible by {', '.join(map(str, divs))}){hint}" if hint else ""))
    if search and batch > 16 and len(divs) <= 4:
        out.append(f"a global batch of {batch:,} sequences divides only by {', '.join(map(str, divs))}: data "
                   f"parallelism can hardly split it, so the search is left with pipeline and tensor "
                   f"parallelism{'' if tokens % seq_len else hint}")
    return out


MICRO_BATCHES = (1, 2, 4)
INTERLEAVE = (1, 2, 3, 4)
"""Virtual pipeline stages per rank searched (Megatron interleaved 1F1B; a v that splits the layers into pp x v
equal chunks, with micro-batches a multiple of pp). The search stays within v <= 4, the range Narayanan et al.
2021 measured; the model charges more chunks only their extra stage hand-offs, so a larger v would always look
better than it runs. ``estimate --virtual-stages`` takes any v that splits the layers."""
"""Virtual pipeline stages per rank searched (Megatron --num-layers-per-virtual-pipeline-stage)."""
RECOMPUTE = ("none", "selective", "full")
ZERO = (0, 1, 2, 3)


def gpu_counts(max_gpus: int, node: int) -> list[int]:
    """GPU counts searched for training, up to ``max_gpus``: powers of two, every whole node up to 64
    nodes, then multiples of 64 nodes (a 100,000-GPU search stays a few hundred counts)."""
    out = {n for n in (2**k for k in range(0, 31)) if n <= max_gpus}
    out |= set(range(node, min(max_gpus, 64 * node) + 1, node))
    out |= set(range(64 * node, max_gpus + 1, 64 * node))
    return sorted(out)


def recommend_train(model: ModelSpec, gpu_specs: list[GpuSpec], tw: TrainWorkload, *,
                    global_batch_tokens: str | None, gpus: int | None = None, max_gpus: int = 64,
                    deadline_days: float | None = None, budget_usd: str | None = None, objective: str = "time",
                    pricing: Pricing, top: int = 10, gpus_per_node: int | None = None,
                    digest: str = "", _hints: bool = True, framework: FrameworkProfile | None = None,
                    picked: list[tuple[TrainEval, int]] | None = None, max_pp: int | None = None,
                    default_batch: bool = False) -> rt.TrainRecommendResult:
    """Search TP/PP/DP/CP/EP x micro-batch x recompute x ZeRO on each GPU; keep layouts that fit memory,
    divide the global batch and meet the deadline and budget; rank by time, cost or MFU. ``framework``: only
    the ZeRO stages, recompute modes and virtual stages it offers (frameworks/*.yaml). ``picked`` receives the
    evaluation and row of each candidate, in the candidates' order (for a caller that ranks them again).
    ``default_batch``: the workload's global batch is default_global_batch's, not the caller's (said in the
    notes)."""
    args = {"global_batch_tokens": global_batch_tokens, "default_batch": default_batch, "gpus": gpus,
            "max_gpus": max_gpus,
            "deadline_days": deadline_days, "budget_usd": budget_usd, "objective": objective, "pricing": pricing,
            "top": 1, "gpus_per_node": gpus_per_node, "_hints": False, "framework": framework, "max_pp": max_pp}
    fs = framework.framework if framework is not None else None
    zero_stages = tuple(fs.zero.value) if fs else ZERO
    recompute_modes = tuple(fs.recompute.value) if fs else RECOMPUTE
    interleave = tuple(v for v in INTERLEAVE if not fs or v <= fs.max_virtual_stages.value)
    from tpplan.units import UnitError, parse_tokens, parse_usd

    if objective not in ("time", "cost", "mfu"):
        raise TpplanError(f"--train-objective must be time, cost or mfu; got {objective!r}")
    try:
        notes: list[str] = [default_batch_note(tw)] if default_batch else []
        if global_batch_tokens:
            per_step = parse_tokens(global_batch_tokens, "--global-batch-tokens")
            tw = with_batch_tokens(tw, per_step)
            notes = batch_notes(global_batch_tokens, per_step, tw.seq_len, tw.global_batch)
        budget = parse_usd(budget_usd, "--budget-usd") if budget_usd else None
    except UnitError as exc:
        raise TpplanError(str(exc)) from None
    if gpus is not None and gpus < 1:
        raise TpplanError(f"--gpus must be a positive integer; got {gpus}")
    excluded = gpus_for_dtype(tw.train_dtype, gpu_specs)[1]
    gpu_specs = require_dtype(tw.train_dtype, gpu_specs, every=False)
    start = time.perf_counter()
    evals: list[TrainEval] = []
    n = not_dividing = 0
    for gpu in gpu_specs:
        node = gpus_per_node or gpu.node.gpus_per_node
        counts = [gpus] if gpus else gpu_counts(max_gpus, node)
        base = grid.enumerate_layouts(model, max(counts), node, allow_cp=tw.seq_len >= 16384,
                                      seq_len=tw.seq_len, gpu_counts=counts, max_pp=max_pp)
        base = base.take(np.nonzero(base.reasons == 0)[0])
        # every micro-batch size in one grid (rows are independent; fewer, larger numpy calls)
        k = len(MICRO_BATCHES)
        all_mb = dataclasses.replace(
            base.take(np.tile(np.arange(len(base)), k)),
            micro_batch=np.repeat(np.asarray(MICRO_BATCHES, dtype=np.int64), len(base)))
        for v in interleave:
            g = all_mb
            mb = g.micro_batch
            if v > 1:
                # Megatron's interleaved 1F1B: layers split into pp x v chunks, micro-batches a multiple of pp
                micro = tw.global_batch // np.maximum(g.dp * mb, 1)
                keep = (g.pp > 1) & (model.num_layers % (g.pp * v) == 0) & (micro % np.maximum(g.pp, 1) == 0)
                g = g.take(np.nonzero(keep)[0])
                if not len(g):
                    continue
            # a layout whose dp x micro-batch does not divide the global batch is rejected before its memory
            # and time are computed (most rows of a large search); it counts once, as BATCH_NOT_DIVISIBLE
            divides = tw.global_batch % (g.micro_batch * g.dp) == 0
            not_dividing += int(np.count_nonzero(~divides)) * len(zero_stages) * len(recompute_modes)
            n += len(g) * len(zero_stages) * len(recompute_modes)
            g = g.take(np.nonzero(divides)[0])
            if not len(g):
                continue
            # every ZeRO stage in one grid too, stage-major (the row order of one evaluation per stage)
            g_z = g.take(np.tile(np.arange(len(g)), len(zero_stages)))
            zeros = np.repeat(np.asarray(zero_stages, dtype=np.int64), len(g))
            # hybrid sharding (shard group = a node) where the states are sharded and the data-parallel ranks
            # span several nodes: the same rows again, replicated across nodes
            ranks = g_z.dp * g_z.cp
            hy = np.nonzero((zeros >= 1) & (ranks > node) & (ranks % node == 0))[0]
            n += len(hy) * len(recompute_modes)
            variants = [(None, g_z, zeros)] + ([(node, g_z.take(hy), zeros[hy])] if len(hy) else [])
            for shard_group, g_s, z_s in variants:
                for rc in recompute_modes:
                    w = dataclasses.replace(tw, recompute=rc, interleave=v, shard_group=shard_group)
                    ctx = Context(model=model, gpu=gpu, train=w, gpus_per_node=gpus_per_node)
                    ev = evaluate_train(ctx, g_s, pricing, z_s)
                    steps = run_steps(w)
                    if steps:
                        days = ev.t.step_time * steps / 86400
                        if deadline_days is not None:
                            ev.reasons |= np.where(days > deadline_days, int(Reason.DEADLINE), 0)
                        if budget is not None:
                            usd = cost.run_cost(cost.gpu_hours(g_s.gpus, ev.t.step_time * steps), ev.price)
                            ev.reasons |= np.where(usd > budget, int(Reason.BUDGET), 0)
                    evals.append(ev)
    keys, ng, ei, rows, mems = [], [], [], [], []
    for k, ev in enumerate(evals):
        ok = np.nonzero(ev.reasons == 0)[0]
        if objective == "mfu":
            key = -ev.t.mfu[ok]
        elif objective == "cost":
            key = ev.t.step_time[ok] * ev.g.gpus[ok] * ev.price
        else:
            key = ev.t.step_time[ok]
        keys.append(key)
        ng.append(ev.g.gpus[ok])
        ei.append(np.full(len(ok), k))
        rows.append(ok)
        mems.append(ev.mem.total[ok])
    cands = []
    if keys:
        kk, gg, ee, rr, mm = (np.concatenate(x) for x in (keys, ng, ei, rows, mems))
        # objective, then fewer GPUs, then less memory per GPU (more headroom for the same plan)
        order, _ = search.rank_order(kk, gg, mm, relative=False)
        seen: set[tuple[Any, ...]] = set()
        listed: list[tuple[str, float, float]] = []  # (GPU, GPUs, memory per GPU) of the rows listed so far

        def ident(j: int) -> tuple[Any, ...]:
            # recompute settings that change neither time nor memory (selective under flash attention) are
            # one plan: keep the first (the loop tries none before selective before full)
            ev, r = evals[int(ee[j])], int(rr[j])
            return (ev.ctx.gpu.name, *(int(getattr(ev.g, a)[r]) for a in ("tp", "pp", "dp", "cp", "ep",
                                                                          "micro_batch")),
                    int(ev.zero[r]), ev.ctx.train.interleave if ev.ctx.train else 1,
                    round(float(ev.t.step_time[r]), 9), round(float(ev.mem.total[r])))

        def admit(j: int) -> bool:
            # a row no better than a listed one of the same GPU type on any axis (objective, GPUs, memory per
            # GPU) is a variant of it (ZeRO-1 next to ZeRO-2 at the same step time): not listed
            name = evals[int(ee[j])].ctx.gpu.name
            return not any(nm == name and n <= gg[j] and m <= mm[j] for nm, n, m in listed) and ident(j) not in seen

        def keep(j: int) -> None:
            ev = evals[int(ee[j])]
            seen.add(ident(j))
            listed.append((ev.ctx.gpu.name, float(gg[j]), float(mm[j])))
            cands.append(train_object(ev, int(rr[j]), pricing))
            if picked is not None:
                picked.append((ev, int(rr[j])))

        # as for serving: with several GPU types, at most ceil(top / 3) rows each, so other GPUs show
        search.pick(order, lambda j: evals[int(ee[j])].ctx.gpu.name, top, len(gpu_specs), admit, keep)
    rejected = grid.count_reasons((ev.reasons for ev in evals),
                                  {"BATCH_NOT_DIVISIBLE": not_dividing} if not_dividing else None)
    res: rt.TrainRecommendResult = {
        "schema_version": SCHEMA_VERSION, "tool": tool_info(),
        "inputs": {**_inputs(model, gpu_specs, tw, pricing, digest), "objective": objective,
                   "max_gpus": max_gpus, "gpus": gpus, "deadline_days": deadline_days, "budget_usd": budget,
                   "excluded_gpus": excluded},
        "candidates": cands, "rejected": rejected,
        "search": {"layouts_evaluated": n, "seconds": time.perf_counter() - start},
        "notes": notes, "accuracy": accuracy.measured("train"),
    }
    if not cands and _hints:
        res["relax"] = _train_relax(evals, tw, deadline_days, budget, gpus, max_gpus,
                                    lambda **over: recommend_train(model, gpu_specs, tw, **{**args, **over}))
    return res


def _train_relax(evals: list[TrainEval], tw: TrainWorkload, deadline_days: float | None, budget: float | None,
                 gpus: int | None, max_gpus: int, rerun: Any) -> list[str]:
    """What to change so that one training layout is feasible; every hint holds (values rounded up, GPU
    counts tried by a search)."""
    import math

    hints = []
    slo = int(Reason.DEADLINE | Reason.BUDGET)
    steps = run_steps(tw) or 0.0
    # layouts that fit and divide the batch, held back only by the deadline and/or the budget
    rows = [(ev, np.nonzero(((ev.reasons & ~slo) == 0) & (ev.reasons != 0))[0]) for ev in evals]
    rows = [(ev, r) for ev, r in rows if len(r)]
    if rows and steps:
        days = np.concatenate([ev.t.step_time[r] * steps / 86400 for ev, r in rows])
        usd = np.concatenate([cost.run_cost(cost.gpu_hours(ev.g.gpus[r], ev.t.step_time[r] * steps), ev.price)
                              for ev, r in rows])
        only_deadline = np.concatenate([(ev.reasons[r] & int(Reason.BUDGET)) == 0 for ev, r in rows])
        only_budget = np.concatenate([(ev.reasons[r] & int(Reason.DEADLINE)) == 0 for ev, r in rows])
        if deadline_days is not None and only_deadline.any():
            hints.append(f"relax --deadline-days to {math.ceil(days[only_deadline].min() * 10) / 10:g}")
        if budget is not None and only_budget.any():
            hints.append(f"raise --budget-usd to {math.ceil(usd[only_budget].min())}")
        if not hints:  # both only together: the run closest to both limits
            ratio = np.maximum(days / (deadline_days or np.inf), usd / (budget or np.inf))
            j = int(np.argmin(ratio))
            hints.append(f"relax --deadline-days to {math.ceil(days[j] * 10) / 10:g} and --budget-usd to "
                         f"{math.ceil(usd[j])} together")
    fits = any(((ev.reasons & int(Reason.TRAIN_MEMORY)) == 0).any() for ev in evals)
    late = deadline_days is not None and any(((ev.reasons & int(Reason.DEADLINE)) != 0).any() for ev in evals)
    if not fits or late:
        # more GPUs (to fit, or to finish in time): the smallest power of two that works, starting from the
        # count the fastest run here would need if time scaled as 1 / GPUs
        key, now = ("gpus", gpus) if gpus else ("max_gpus", max_gpus)
        start = 0
        if fits and late and rows and steps:
            need = float(min(ev.t.step_time[r].min() * steps / 86400 * ev.g.gpus[r].max() for ev, r in rows))
            start = 1 << max(1, math.ceil(need / max(float(deadline_days or 1), 1e-9))).bit_length() - 1
        def feasible(n: int) -> bool:
            picks: list[tuple[TrainEval, int]] = []
            rerun(**{key: n, "picked": picks})
            return bool(picks)

        more = search.smallest_gpu_power_of_two(now, feasible, start)
        if more is not None:
            hints.append(f"raise --{key.replace('_', '-')} to {more}")
    return hints or ["no layout divides the global batch; change --global-batch or --global-batch-tokens"]
