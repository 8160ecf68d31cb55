"""Time: prefill (TTFT), decode (TPOT), throughput and training step time, vectorized over a grid.

Roofline per phase (Williams et al. 2009): t = max(FLOPs / (peak x flops_eff), bytes / (hbm_bw x hbm_eff)),
plus exposed communication (tpplan.engine.comm) and engine gaps. Efficiencies are catalog calibration data.

Metric definitions (also in docs/metrics.md and the JSON schema):
- ``ttft_s``: time from a request of ``input_len`` prompt tokens reaching an idle replica until its first
  output token: one prefill forward pass over the prompt (no queueing, no other prefill batched with it).
- ``tpot_s``: time per output token of every sequence in a decode batch of ``concurrency`` sequences per
  replica, each holding ``input_len + output_len / 2`` cached tokens on average (steady state).
- ``request_latency_s``: ttft + output_len x tpot for that request.
- ``throughput_tokens_per_s``: output tokens per second of the whole deployment at that concurrency,
  all DP replicas included: dp x concurrency / tpot (decode-dominated steady state; prefill time excluded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from tpplan.catalog.spec import DTYPE_BYTES, CalibrationSpec, Efficiency, GpuSpec, ModelSpec
from tpplan.engine import comm, grid
from tpplan.engine.grid import Grid
from tpplan.engine.memory import (
    WeightSplit,
    draft_grid,
    kv_bytes_per_token_per_gpu,
    middle_layers,
    middle_stage_bytes,
    moe_layer_split,
    params_per_gpu,
    serve_expert_bytes,
    stage_layers,
    weight_bytes_per_gpu,
    weight_bytes_per_param,
    weight_elements,
)
from tpplan.engine.workload import Context, ServeWorkload

FArray = npt.NDArray[np.float64]


FP8_STREAM_RATIO = 0.76
"""fp8 / bf16 weight-streaming efficiency at decode shapes on H100: torch._scaled_mm (e4m3, m = 32..128,
28672 x 8192) moves 1.88-1.91 TB/s (0.56-0.57 of 3.35) against 2.48-2.56 TB/s (0.74-0.76) for bf16 matmul
(hardware/calibration/h100-sxm-tpplan-microbench-2026-11-24.csv). Used for GPUs without their own
``hbm_fp8`` measurement [D]."""


GEMM_ROOFLINE_P = 2.5  # gemm_roofline writes lo^p as lo^2 sqrt(lo)
"""A GEMM's time between its two bounds: (t_flops^p + t_bytes^p)^(1/p), not max(t_flops, t_bytes). Fitted on
tpplan's own H100 sweep of decode-shaped GEMMs (m = 1..512 x 28672 x 8192, torch.matmul bf16 and
torch._scaled_mm fp8, hardware/calibration/h100-sxm-tpplan-microbench-2026-11-24.csv) against the catalog's
plateau efficiencies: mean |log error| 2.0 % (max 8 %) at p = 2.5, against 6 % (max 19 %) for the hard max,
which has m = 128..512 GEMMs reach both bounds at once. tests/test_perf_and_recommend.py refits it."""


EAGER_ELEMENTWISE_FRACTION = 0.43
"""Share of peak HBM bandwidth PyTorch's eager elementwise ops reach on the bytes a fused kernel would move, at
large sizes (the plateau, 67-537 MB a call): Liger-Kernel's H100 benchmark (linkedin/Liger-Kernel
benchmark/data/all_benchmark_data.csv @2120862b, shipped as hardware/calibration/elementwise-liger.csv) times
the same operation fused and as PyTorch / Hugging Face code: F.layer_norm 0.52, relu^2 (one torch kernel) 0.43,
torch RMSNorm 0.54, SwiGLU as silu(g) * u 0.32, Hugging Face's add + RMSNorm 0.32 of 3.35 TB/s; the median 0.43,
band 0.32-0.54. The fused kernels of the same table reach 0.84-0.91 (tpplan keeps the GPU's calibrated HBM
efficiency for them). ``tpplan validate --category elementwise`` replays the rows."""
EAGER_ELEMENTWISE_BAND = (0.32, 0.54)


DECODE_ATTENTION_FLOOR_S = 10e-6
"""Time of one paged decode-attention kernel with next to nothing to read, paid once per layer per decode step
beside the KV bytes at the HBM rate (t = floor + bytes / bandwidth). Measured (FlashInfer blog, Fig. 6,
hardware/calibration/flashinfer-decode.csv): 1 sequence x 32-128 cached tokens (0.5-2 MB, Llama-2-7B MHA, head
dim 128) takes 10.4 us on H100 SXM with FlashInfer 0.0.1 and with vLLM 0.2.6 PagedAttention v2, of which the
bytes are under 1 us; on A100 7.7 us (FlashInfer) to 13.5 us (PagedAttention). The benchmark timed calls back
to back, so part of the floor may be launch gaps that CUDA-graph replay shortens (the engines decode under
graphs): an upper estimate. Other GPUs and kernels (vLLM's FlashAttention backend, TensorRT-LLM's XQA)
[assumed] alike; ``tpplan validate --category decode-attention`` replays the curves."""


def kernels_per_layer(m: ModelSpec, tp: npt.ArrayLike) -> FArray:
    """Kernels one transformer layer launches per forward step, as vLLM's model code runs them (the mean over the
    model's layers): each norm (residual add fused in, fused_add_rms_norm), the QKV GEMM, rotary, the KV-cache
    write, attention and o_proj (5; MLA adds the q / kv latent projections' norms and its absorbed W_UK / W_UV
    batched GEMMs: 4 more), a dense MLP's gate_up GEMM, activation and down GEMM (3), or a MoE layer's router
    GEMM, top-k, token alignment, two grouped expert GEMMs, activation and the weighted sum (7) plus a shared
    expert's 3; and at TP > 1 the two all-reduces. Llama at TP 1: 2 + 5 + 3 = 10. Engines that fuse more
    (TensorRT-LLM's attention plugin runs rotary, the cache write and attention as one) launch fewer [not
    modelled]."""
    attn = 5.0 + (4.0 if m.attention.kind == "mla" else 0.0)
    mlp = 3.0
    if m.moe is not None:
        frac = m.num_moe_layers / m.num_layers
        moe = 7.0 + (3.0 if m.moe.num_shared_experts else 0.0)
        mlp = frac * moe + (1.0 - frac) * 3.0
    return np.where(np.asarray(tp, dtype=np.float64) > 1, 2.0, 0.0) + (m.norms_per_layer + attn + mlp)


GEMM_K0 = 500.0
"""A GEMM's main loop over its inner dimension K is amortized against a fixed cost per output tile (pipeline fill,
prologue and epilogue: NVIDIA's "Matrix Multiplication Background User's Guide", tile and wave quantization aside),
so at large M and N it runs at K / (K + K0) of the rate an unbounded K would reach; K0 in K elements. Fitted on
DeepGEMM's fp8 dense rows on H800 at M = 4,096 and N >= 4,096 (about four waves of 128 x 256 tiles or more on 132
SMs; K = 512, 1,536, 2,048, 7,168, 16,384: 775 to 1,520 TFLOP/s; hardware/calibration/deepgemm-h800-fp8.csv):
least squares in log space gives E x K / (K + K0) with E = 1,531 TFLOP/s and K0 = 498, every row within 5.2%
(tests/test_perf_and_recommend.py replays the fit). GEMM_K0_BAND: cuBLASLt fp16 on A100 (4,096^3 against 16,384^3
after wave quantization on 108 SMs: K0 ~ 380) and torch.matmul bf16 on H100 (4,096^3 against 8,192^3: ~1,400), the
optimistic and pessimistic edges."""
GEMM_K0_BAND = (380.0, 1400.0)
GEMM_K_REF = 8192.0
"""The inner dimension the catalog's tensor-core efficiencies stand for (the H100 source's six shapes have K >= 8,192;
A100's 0.81 is the rate of its 8,192^3 and larger shapes): a GEMM of smaller K runs slower than they say, a larger
one no faster (the larger shapes of those sweeps are no faster)."""


def gemm_k_slowdown(k: npt.ArrayLike, k0: float = GEMM_K0) -> FArray:
    """Time of a GEMM of inner dimension ``k`` against the catalog's rate (>= 1): (1 + K0 / K) / (1 + K0 / K_REF),
    at least 1 (GEMM_K0)."""
    kk = np.maximum(np.asarray(k, dtype=np.float64), 1.0)
    return np.maximum(1.0, (1.0 + k0 / kk) / (1.0 + k0 / GEMM_K_REF))


def gemm_inner_dims(m: ModelSpec, tp: int, ep: int = 1) -> dict[str, tuple[int, int]]:
    """(input size, output size) of each GEMM operator on one rank of a ``tp``-way tensor-parallel group, in
    GEMM_OPERATORS' order: the forward's inner dimension K and the data gradient's (Megatron's and vLLM's column-
    and row-parallel splits: qkv and up shard their outputs, o and down their inputs, KV heads replicated once tp
    exceeds them, the LM head's vocabulary split; routed experts whole under expert parallelism, TP-sharded
    without it). calibration/shapes.py lists the same GEMMs for the microbenchmark. MLA's low-rank attention
    projections are taken at the hidden size (their ranks are not split out here)."""
    a, h = m.attention, m.hidden_size
    gated = 2 if m.mlp.kind == "gated" else 1
    if a.kind == "mla":
        qkv = (h, h)
        o_in = a.num_heads // tp * (a.v_head_dim or a.head_dim)
    else:
        qkv = (h, (a.num_heads // tp + 2 * max(a.num_kv_heads // tp, 1)) * a.head_dim)
        o_in = a.num_heads // tp * a.head_dim
    d = m.mlp.intermediate_size // tp
    out = {"qkv_proj": qkv, "o_proj": (max(o_in, 1), h), "mlp_up": (h, gated * d), "mlp_down": (d, h)}
    if m.moe is not None:
        d_e = m.moe.expert_intermediate_size // (1 if ep > 1 else tp)
        out.update(router=(h, m.moe.num_experts), experts_up=(h, gated * d_e), experts_down=(d_e, h))
    out["lm_head"] = (h, -(-m.vocab_size // tp))
    return out


def _per_tp(m: ModelSpec, tp: npt.ArrayLike, ep: npt.ArrayLike | None, value: Callable[[int, int], float]) -> FArray:
    """``value(tp, ep)`` for each row, computed once per distinct TP size (and for MoE models, with and without
    expert parallelism: it only changes how the experts are split)."""
    t = np.asarray(tp).astype(np.int64)
    sizes = np.flatnonzero(np.bincount(t.ravel()))
    n = int(sizes[-1]) + 1 if sizes.size else 1
    table, table_ep = np.zeros(n), np.zeros(n)
    with_ep = m.moe is not None and ep is not None and bool((np.asarray(ep) > 1).any())
    for x in sizes:
        table[x] = value(int(x), 1)
        if with_ep:
            table_ep[x] = value(int(x), 2)
    return np.where(np.asarray(ep) > 1, table_ep[t], table[t]) if with_ep else table[t]


def gemm_k_weights(m: ModelSpec, tp: int, ep: int, k0: float, passes: str = "forward", recompute: str = "none",
                   tokens: float = GEMM_K_REF) -> dict[str, float]:
    """Each GEMM operator's time per token against the catalog's rate, in units of one weight element's FLOPs
    (gemm_operator_params x gemm_k_slowdown): ``passes`` 'forward' (its input dimension), or 'train' (the
    forward, twice under full recompute but the LM head; the data gradient at its output dimension; the weight
    gradient at the micro-batch's ``tokens``)."""
    p = gemm_operator_params(m)
    dims = gemm_inner_dims(m, tp, ep)
    ref = 1.0 + k0 / GEMM_K_REF

    def slow(k: float) -> float:  # gemm_k_slowdown of one K, in plain floats (called per operator and TP size)
        return max(1.0, (1.0 + k0 / max(k, 1.0)) / ref)

    out = {}
    for k, v in p.items():
        if v <= 0:
            out[k] = 0.0
            continue
        f_in, f_out = slow(dims[k][0]), slow(dims[k][1])
        if passes == "forward":
            out[k] = v * f_in
        else:
            n_fwd = 2.0 if recompute == "full" and k != "lm_head" else 1.0
            out[k] = v * (n_fwd * f_in + f_out + slow(tokens))
    return out


_FORWARD_SLOWDOWN: dict[tuple[Any, ...], float] = {}
"""forward_gemm_slowdown's value per (model shape, TP size, expert parallelism, K0): the search asks for the same few
thousands of times (every step_pieces call of every GPU type)."""


def _model_shape(m: ModelSpec) -> tuple[Any, ...]:
    """What gemm_operator_params and gemm_inner_dims read of a model (a cache key: models are not hashable)."""
    a, moe = m.attention, m.moe
    return (m.hidden_size, m.num_layers, m.num_moe_layers, m.vocab_size, m.matmul_params_active, m.mlp.kind,
            m.mlp.intermediate_size, a.kind, a.num_heads, a.num_kv_heads, a.head_dim, a.v_head_dim,
            None if moe is None else (moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size,
                                      moe.num_shared_experts, moe.shared_expert_intermediate_size))


def forward_gemm_slowdown(m: ModelSpec, tp: npt.ArrayLike, k0: float = GEMM_K0,
                          ep: npt.ArrayLike | None = None) -> FArray:
    """Time of a forward pass's GEMMs against the catalog's rate, per row (>= 1): each operator's FLOPs
    (gemm_operator_params) at its forward inner dimension's slowdown (gemm_k_slowdown)."""
    shape = _model_shape(m)

    def one(t: int, e: int) -> float:
        key = (shape, t, e, k0)
        v = _FORWARD_SLOWDOWN.get(key)
        if v is None:
            v = sum(gemm_k_weights(m, t, e, k0).values()) / sum(gemm_operator_params(m).values())
            if len(_FORWARD_SLOWDOWN) < 100_000:
                _FORWARD_SLOWDOWN[key] = v
        return v

    return _per_tp(m, tp, ep, one)


def train_gemm_slowdown(m: ModelSpec, tp: npt.ArrayLike, tokens: npt.ArrayLike, recompute: str,
                        k0: float = GEMM_K0, ep: npt.ArrayLike | None = None) -> FArray:
    """Time of a training step's GEMMs against the catalog's rate, per row (>= 1): the forward (twice under full
    recompute, not the LM head) at each operator's input dimension, the data gradient at its output dimension,
    the weight gradient at the ``tokens`` of a micro-batch on one rank (its inner dimension), each weighted by the
    operator's FLOPs (train_gemm_weights). The weight gradient's part is per row; the rest per TP size."""
    p = gemm_operator_params(m)
    total = sum(v * ((2.0 if recompute == "full" and k != "lm_head" else 1.0) + 2.0) for k, v in p.items())
    # the weight gradient is taken at K_REF (slowdown 1) in the per-TP part, then at each row's tokens
    per_tp = _per_tp(m, tp, ep, lambda t, e: sum(gemm_k_weights(m, t, e, k0, "train", recompute).values())
                     - sum(p.values()))
    return (per_tp + sum(p.values()) * gemm_k_slowdown(tokens, k0)) / total


def gemm_roofline(flops_time: npt.ArrayLike, bytes_time: npt.ArrayLike) -> FArray:
    """Time of GEMMs bound by ``flops_time`` at the tensor-core rate and ``bytes_time`` at the HBM rate."""
    c = np.asarray(flops_time, dtype=np.float64)
    m = np.asarray(bytes_time, dtype=np.float64)
    hi = np.maximum(c, m)
    lo = np.maximum(np.minimum(c, m), 0.0) / np.maximum(hi, 1e-300)
    # hi x (1 + lo^2.5)^(1/2.5), with lo^2.5 = lo^2 sqrt(lo) (the search's inner loop calls this often)
    return hi * (1.0 + lo * lo * np.sqrt(lo)) ** (1.0 / GEMM_ROOFLINE_P)


def fp8_streaming(c: CalibrationSpec) -> Efficiency:
    """HBM efficiency when decode streams fp8 weights: the GPU's own ``hbm_fp8`` measurement, else ``hbm``
    scaled by the H100 ratio, the optimistic edge being no penalty at all."""
    if c.hbm_fp8 is not None:
        return c.hbm_fp8
    return Efficiency(value=c.hbm.value * FP8_STREAM_RATIO, low=c.hbm.low * FP8_STREAM_RATIO, high=c.hbm.high,
                      source=f"hbm x {FP8_STREAM_RATIO} (fp8/bf16 streaming ratio measured on H100) [D]")


@dataclass(frozen=True)
class Eff:
    """One parameter set for the time model (central, optimistic or pessimistic band edge)."""

    flops: float
    flops_fp8: float
    hbm: float
    hbm_fp8: float = 0.0
    """HBM efficiency when decode streams fp8 weights (0: same as ``hbm``)."""
    busbw_scale: float = 1.0
    gap_scale: float = 1.0
    graph_allreduce: bool = True
    """Decode all-reduces take the CUDA-graph latency (False: nccl-tests' per-call alpha, the pessimistic
    band edge)."""
    gemm_k0: float = GEMM_K0
    """GEMM_K0 of this parameter set (GEMM_K0_BAND at the band edges)."""

    @classmethod
    def of(cls, ctx: Context, which: str = "value") -> Eff:
        c = ctx.gpu.calibration
        f8 = c.flops_fp8 or c.flops
        spread = c.intra_node.busbw_spread
        scale = {"value": 1.0, "high": 1.0 + spread, "low": 1.0 - spread}[which]
        gap = {"value": 1.0, "high": 0.5, "low": 2.0}[which]
        return cls(flops=getattr(c.flops, which), flops_fp8=getattr(f8, which), hbm=getattr(c.hbm, which),
                   hbm_fp8=getattr(fp8_streaming(c), which), busbw_scale=scale, gap_scale=gap,
                   graph_allreduce=which != "low",
                   gemm_k0={"value": GEMM_K0, "high": GEMM_K0_BAND[0], "low": GEMM_K0_BAND[1]}[which])


def compute_dtype(weight_dtype: str, gpu_has: dict[str, float]) -> str:
    """GEMM dtype: fp8 weights run on fp8 tensor cores where the GPU has them (vLLM w8a8 fp8);
    int4/fp4 weight-only kernels dequantize to bf16 (Marlin/AWQ), except fp4 on GPUs with fp4 units."""
    if weight_dtype == "fp8" and "fp8" in gpu_has:
        return "fp8"
    if weight_dtype == "fp4" and "fp4" in gpu_has:
        return "fp4"
    return "bf16"


def prefill_attention_rate(ctx: Context, eff: Eff) -> float:
    """FLOP/s of a prompt's attention kernels: the measured forward rate of the flash kernels the engines run for a
    causal prompt of ``input_len`` tokens at the model's (prefill) head dim (tpplan.engine.attention.fwd_flops_per_s:
    FlashAttention-3 on Hopper, FA2 on Ampere / Ada), moved with the calibration band's GEMM efficiency edge."""
    from tpplan.engine import attention

    assert ctx.serve is not None
    a = ctx.model.attention
    d = (a.qk_nope_head_dim or 0) + (a.qk_rope_head_dim or 0) if a.kind == "mla" and a.qk_nope_head_dim \
        else a.head_dim
    rate = attention.fwd_flops_per_s(ctx.gpu, d, True, np.array([float(max(ctx.serve.input_len, 1))]))
    return float(rate[0]) * (eff.flops / ctx.gpu.calibration.flops.value)


def _peak(ctx: Context, dtype: str, eff: Eff) -> float:
    e = eff.flops_fp8 if dtype in ("fp8", "fp4") else eff.flops
    return ctx.gpu.peak_flops(dtype) * e


def attention_flops_per_token(model: ModelSpec, context_tokens: npt.ArrayLike, causal: bool,
                              absorbed: bool = False) -> FArray:
    """Score and value FLOPs of one token against ``context_tokens`` keys over all layers:
    2 x ctx x (d_qk + d_v) x heads per layer (QK^T and AV); causal prefill averages half the context.

    ``absorbed``: MLA decode with W_UK folded into the query and W_UV into the output (DeepSeek-V2, arXiv
    2405.04434, section 2.1.3; vLLM's MLA decode path), so every head attends over the cached latent:
    d_qk = kv_lora_rank + rope dims, d_v = kv_lora_rank (1,088 per head for DeepSeek-V3, vs 320 unabsorbed)."""
    # keys attended per query, averaged over the layers' kinds (full / sliding window / chunked) and, causal,
    # over the prompt's positions (ModelSpec.mean_attended)
    return attention_flops_for_keys(model, model.mean_attended(context_tokens, causal), absorbed)


def attention_flops_for_keys(model: ModelSpec, keys: npt.ArrayLike, absorbed: bool = False) -> FArray:
    """attention_flops_per_token for a query attending ``keys`` keys per layer on average."""
    a = model.attention
    if a.kind == "mla" and absorbed:
        assert a.kv_lora_rank and a.qk_rope_head_dim
        d = 2 * a.kv_lora_rank + a.qk_rope_head_dim
    elif a.kind == "mla":
        assert a.qk_nope_head_dim and a.qk_rope_head_dim and a.v_head_dim
        d = a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim
    else:
        d = 2 * a.head_dim
    return 2.0 * np.asarray(keys, dtype=np.float64) * d * a.num_heads * model.num_layers


def prompt_keys(model: ModelSpec, w: ServeWorkload) -> float:
    """Keys a computed prompt token attends to on average, per layer: causal over the prompt, from the end of
    its cached prefix on (positions [H, I) of an I-token prompt with H cached: (I A(I) - H A(H)) / (I - H),
    A = ModelSpec.mean_attended over a causal prompt)."""
    i, h = float(w.input_len), float(w.cached_prompt_tokens)
    a_i = float(model.mean_attended(i, causal=True))
    if h <= 0:
        return a_i
    return (i * a_i - h * float(model.mean_attended(h, causal=True))) / (i - h)


def prompt_gemm_params(model: ModelSpec) -> float:
    """Weight-matrix elements a prompt token multiplies through in serving: every matmul but the LM head. An
    engine computes logits only for the tokens it samples from, the last of each request in the step (vLLM
    v1 gpu_model_runner.py: compute_logits(hidden_states[logits_indices]); SGLang's LogitsProcessor and
    TensorRT-LLM without gather_context_logits alike), not for every prompt token."""
    return float(model.matmul_params_active - model.vocab_size * model.hidden_size)


def prompt_flops(model: ModelSpec, tokens: npt.ArrayLike, w: ServeWorkload) -> FArray:
    """Forward FLOPs of ``tokens`` computed prompt tokens (those the prefix cache does not serve), the LM head
    for one of them (the request's last, prompt_gemm_params)."""
    t = np.asarray(tokens, dtype=np.float64)
    return t * (2.0 * prompt_gemm_params(model) + attention_flops_for_keys(model, prompt_keys(model, w))) + \
        np.minimum(t, 1.0) * 2.0 * model.vocab_size * model.hidden_size


def forward_flops(model: ModelSpec, tokens: npt.ArrayLike, context_tokens: npt.ArrayLike,
                  causal: bool = True, absorbed: bool = False) -> FArray:
    """Forward FLOPs of ``tokens`` new tokens each attending to ``context_tokens`` keys (2 N per token for
    the active matmul weights N, Kaplan et al. 2020, plus attention)."""
    t = np.asarray(tokens, dtype=np.float64)
    return t * (2.0 * model.matmul_params_active + attention_flops_per_token(model, context_tokens, causal,
                                                                             absorbed))


def expected_active_experts(num_experts: int, k: int, tokens: npt.ArrayLike) -> FArray:
    """Expected distinct experts hit by ``tokens`` tokens each routed to k of E experts (uniform routing):
    E x (1 - (1 - k/E) ** tokens)."""
    t = np.asarray(tokens, dtype=np.float64)
    return num_experts * (1.0 - (1.0 - k / num_experts) ** t)


@dataclass(frozen=True, eq=False)
class ServeTime:
    ttft: FArray
    tpot: FArray
    request_latency: FArray
    throughput: FArray
    tp_allreduce_bytes_per_layer: FArray
    tp_allreduce_s_per_layer: FArray
    comm_fraction: FArray
    decode_bound: npt.NDArray[np.str_]
    """'memory' or 'compute' for the decode step."""
    hbm_lower_bound_tpot: FArray
    """Bytes read per decode step / peak HBM bandwidth: no engine can beat it."""
    parts: dict[str, dict[str, FArray]] | None = None
    """``estimate --breakdown``: 'prefill' and 'decode', each term of ttft / tpot by name (they add up exactly);
    names ending in '/layer' are spread evenly over the layers, the others are per step."""
    decode_tokens_per_stage: FArray | None = None
    """Tokens a decode step puts through each stage's GEMMs (step_pieces: max(concurrency / pp, 1) x q)."""


def serve_time(ctx: Context, g: Grid, eff: Eff | None = None) -> ServeTime:
    """Prefill and decode times of one replica (tp x pp x cp GPUs), and deployment throughput. The decode step
    is ``step_pieces`` with no prompt tokens (one formula for both)."""
    assert ctx.serve is not None
    eff = eff or Eff.of(ctx)
    w, m, gpu = ctx.serve, ctx.model, ctx.gpu
    tp = g.tp.astype(np.float64)
    pp = g.pp.astype(np.float64)
    cp = g.cp.astype(np.float64)
    conc = g.concurrency.astype(np.float64)
    act_b = DTYPE_BYTES[m.dtype]
    cdt = compute_dtype(w.weight_dtype, gpu.compute.dense_flops_per_s)
    peak = _peak(ctx, cdt, eff)
    bw = gpu.hbm.bandwidth_bytes_per_s * eff.hbm
    h = m.hidden_size
    L = m.num_layers
    node = ctx.node_size
    # weight bytes one forward pass streams on a GPU of the heaviest stage (_StageReads)
    reads = _StageReads.of(ctx, g)
    stage_w = reads.whole

    # ---- prefill (TTFT) of one prompt ------------------------------------------------------------
    # the prompt tokens the prefix cache does not serve, attending over the whole prompt before them
    n_in = float(w.prefill_len)
    fl = prompt_flops(m, n_in, w)
    model_par = tp * cp  # GPUs of one stage working on the prompt together
    pre_gemm = n_in * 2.0 * prompt_gemm_params(m) + min(n_in, 1.0) * 2.0 * m.vocab_size * h
    # a roofline per kernel: the GEMMs against the weights they stream, then the attention kernels (their
    # FLOPs; a prefill reads its own fresh K/V, no cache); all stages one after another for a single prompt
    t_gemm = pre_gemm / (model_par * peak)
    # attention runs in the activation dtype (FlashAttention / FlashInfer bf16 kernels) whatever the GEMMs use, at
    # the flash kernels' measured forward rate for this prompt length (prefill_attention_rate)
    t_attn_pre = (fl - pre_gemm) / (model_par * prefill_attention_rate(ctx, eff))
    # the prompt's elementwise kernels (norms with residual adds, activation, rotary) through HBM
    elem_tok = serve_elementwise_bytes_per_token(m, tp, act_b)
    t_elem_pre = np.ceil(n_in / cp) * elem_tok / bw
    t_read = stage_w * pp / bw  # each stage reads its weights once
    prefill_msg = np.ceil(n_in / cp) * h * act_b
    ar_prefill, _ = _tp_allreduces(ctx, tp, prefill_msg, None, eff)
    t_tp = 2.0 * L * ar_prefill
    # stage hand-offs: the prompt's activations (split over tp)
    t_pp = (pp - 1.0) * comm.collective_time(gpu, "p2p", prefill_msg / tp + 0 * tp, 2, gpus_per_node=node,
                                             busbw_scale=eff.busbw_scale, stride=tp * cp * g.dp)
    t_ep = _ep_time(ctx, g, n_in, eff)
    t_cp = np.where(cp > 1, _cp_prefill_time(ctx, g, n_in, eff), 0.0) if (cp > 1).any() else 0.0 * cp
    gaps = L * kernels_per_layer(m, tp) * w.engine.kernel_gap_s * eff.gap_scale
    # speculative decoding: the draft (EAGLE head, MTP layer, draft model) also runs over the prompt
    t_draft_pre = _draft_time(ctx, g, 0.0, n_in, eff)
    ttft = gemm_roofline(t_gemm, t_read) + t_attn_pre + t_elem_pre + t_tp + t_pp + t_ep + t_cp + gaps + t_draft_pre

    # ---- decode (TPOT) at `concurrency` sequences per replica ------------------------------------
    # one engine step of `concurrency` decoding sequences and no prompt tokens: step_pieces, the load model's
    # step (a micro-batch per stage holds max(concurrency / pp, 1) sequences; weights and KV streamed once;
    # a roofline per kernel; collectives, gaps, overhead and draft passes beside them)
    sp = step_pieces(ctx, g, conc, 0.0, eff, reads, terms=True)
    terms = sp.terms
    assert terms is not None
    per_step = w.decode_tokens_per_step
    t_gemm_dec = gemm_roofline(sp.compute, sp.memory)
    step = t_gemm_dec + sp.other
    tpot = step / per_step
    comm_t = terms["tp"] + terms["pp"] + terms["ep"] + terms["cp"]
    # every stage streams its weights and KV once per step, one stage after another
    lower = terms["read_bytes"] / gpu.hbm.bandwidth_bytes_per_s / per_step
    throughput = g.dp.astype(np.float64) * conc / tpot
    # the GEMMs' side of their roofline names the step (attention is memory-bound in decode but for MLA)
    bound = np.where(sp.compute > sp.memory, "compute", "memory")
    # each kernel roofline's larger side, by what it counts
    pre_cb = t_gemm >= t_read
    g_cb = sp.compute > sp.memory
    a_cb = terms["attention_flops"] > terms["kv_read"]
    zero = 0.0 * tp
    parts = {
        "prefill": {
            "GEMMs (compute-bound)/layer": np.where(pre_cb, gemm_roofline(t_gemm, t_read), zero),
            "weights read (memory-bound)/layer": np.where(pre_cb, zero, gemm_roofline(t_gemm, t_read)),
            "attention (compute-bound)/layer": t_attn_pre + zero,
            "elementwise (norms, activation, rotary)/layer": t_elem_pre + zero,
            "TP all-reduces/layer": t_tp + zero, "expert all-to-alls/layer": t_ep + zero,
            "context-parallel K/V passes/layer": t_cp + zero, "kernel gaps/layer": gaps + zero,
            "pipeline hand-offs": t_pp + zero, "speculative draft over the prompt": t_draft_pre + zero},
        "decode": {
            "GEMMs (compute-bound)/layer": np.where(g_cb, t_gemm_dec, zero),
            "weights read (memory-bound)/layer": np.where(g_cb, zero, t_gemm_dec),
            "attention (compute-bound)/layer": np.where(a_cb, terms["attention_flops"], zero),
            "KV cache read (memory-bound)/layer": np.where(a_cb, zero, terms["kv_read"]),
            "attention kernel floor/layer": terms["attention_floor"],
            "elementwise (norms, activation, rotary)/layer": terms["elementwise"],
            "TP all-reduces/layer": terms["tp"], "expert all-to-alls/layer": terms["ep"],
            "context-parallel combine/layer": terms["cp"], "kernel gaps/layer": terms["gaps"],
            "pipeline hand-offs": terms["pp"], "scheduler overhead": terms["overhead"],
            "speculative draft passes": terms["draft"]},
    }
    if per_step != 1.0:  # per output token: the step's terms shared by the E tokens it yields
        parts["decode"] = {k: v / per_step for k, v in parts["decode"].items()}
    return ServeTime(
        ttft=ttft, tpot=tpot, request_latency=ttft + w.output_len * tpot, throughput=throughput,
        tp_allreduce_bytes_per_layer=np.where(tp > 1, terms["tp_msg"], 0.0),
        tp_allreduce_s_per_layer=np.where(tp > 1, 2.0 * terms["tp_one"], 0.0),
        comm_fraction=np.clip(comm_t / tpot, 0.0, 1.0), decode_bound=bound,
        hbm_lower_bound_tpot=lower, parts=parts, decode_tokens_per_stage=terms["tokens_per_stage"],
    )


def _stage_weights(m: ModelSpec, g: Grid, weight_dtype: str) -> tuple[WeightSplit, FArray, FArray, FArray]:
    """The weight split and the weight bytes a step reads on the first, the last and the heaviest stage of
    every row (_StageReads): the model's and the grid's alone, the same on every GPU type."""
    pp = g.pp.astype(np.float64)
    act_b = DTYPE_BYTES[m.dtype]
    split = weight_elements(m, g)
    _, first_w, last_w = weight_bytes_per_gpu(m, g, weight_dtype, m.dtype, split,
                                              serve_expert_bytes(m, weight_dtype))
    emb_b = split.embedding * act_b
    first = first_w - np.where((pp > 1) | (not m.tie_word_embeddings), emb_b, 0.0)
    last = np.where(pp > 1, last_w, first)
    wbytes = weight_bytes_per_param(weight_dtype)
    middle = np.where(pp >= 3, middle_stage_bytes(m, g, split, wbytes, act_b,
                                                  expert_bytes=serve_expert_bytes(m, weight_dtype)), 0.0)
    return split, first, last, np.maximum(np.maximum(first, last), middle)


@dataclass(frozen=True, eq=False)
class _StageReads:
    """Weight bytes one forward pass streams on a GPU of the heaviest pipeline stage.

    All of a stage's weights except the input embedding table, of which a step gathers only its tokens' rows
    (the table is read whole only where it doubles as the LM head: tied, on a single stage); the last stage's
    LM head is read whole. With pp >= 3 a middle stage (all MoE where the model is) can be heavier still; the
    heaviest stage paces the pipeline. MoE: only the experts a step's tokens hit are read."""

    ctx: Context
    g: Grid
    split: WeightSplit
    first: FArray
    last: FArray
    whole: FArray
    """Every weight of the heaviest stage (all experts)."""

    # what step_pieces takes of the grid and workload at every point it is called at, computed once
    @cached_property
    def sizes(self) -> tuple[FArray, FArray, FArray]:
        """(tp, pp, cp) as floats."""
        return self.g.tp.astype(np.float64), self.g.pp.astype(np.float64), self.g.cp.astype(np.float64)

    @cached_property
    def kv_per_decode(self) -> FArray:
        """KV bytes a decoding sequence reads per step on a GPU (its mean attended keys, over cp)."""
        assert self.ctx.serve is not None
        m, w = self.ctx.model, self.ctx.serve
        avg_ctx = float(m.mean_attended(float(w.input_len) + w.output_len / 2.0, causal=False))
        return kv_bytes_per_token_per_gpu(m, self.g, w.kv_dtype) * np.ceil(avg_ctx / self.sizes[2])

    @cached_property
    def elementwise_per_token(self) -> FArray:
        """serve_elementwise_bytes_per_token of each row's TP size."""
        m = self.ctx.model
        return serve_elementwise_bytes_per_token(m, self.sizes[0], DTYPE_BYTES[m.dtype])

    def gemm_slowdown(self, k0: float) -> FArray:
        """forward_gemm_slowdown of each row, per K0 asked."""
        cache: dict[float, FArray] = self.__dict__.setdefault("_slowdown", {})
        if k0 not in cache:
            cache[k0] = forward_gemm_slowdown(self.ctx.model, self.sizes[0], k0, self.g.ep)
        return cache[k0]

    @classmethod
    def of(cls, ctx: Context, g: Grid) -> _StageReads:
        assert ctx.serve is not None
        m, w = ctx.model, ctx.serve
        split, first, last, whole = grid.memo(g, m, ("stage_reads", w.weight_dtype),
                                              lambda: _stage_weights(m, g, w.weight_dtype))
        return cls(ctx=ctx, g=g, split=split, first=first, last=last, whole=whole)

    def for_tokens(self, tokens_per_stage: npt.ArrayLike) -> FArray:
        """Bytes read by a step of ``tokens_per_stage`` tokens on each stage (uniform routing: the experts
        the tokens hit, on each stage its own MoE layers; the dense layers come first, on the first stage)."""
        m, g = self.ctx.model, self.g
        if m.moe is None:
            return self.whole + 0.0 * np.asarray(tokens_per_stage, dtype=np.float64)
        assert self.ctx.serve is not None
        tp, pp, ep = (x.astype(np.float64) for x in (g.tp, g.pp, g.ep))
        wbytes = weight_bytes_per_param(self.ctx.serve.weight_dtype)
        ebytes = serve_expert_bytes(m, self.ctx.serve.weight_dtype)
        hit = expected_active_experts(m.moe.num_experts, m.moe.experts_per_token, tokens_per_stage)
        first_l, last_l = stage_layers(m.num_layers, pp)
        _, moe_first = moe_layer_split(m, first_l, True)
        _, moe_last = moe_layer_split(m, last_l, False)
        all_experts = m.moe.num_experts * m.expert_params / np.where(ep > 1, ep, tp)
        read_frac = np.minimum(1.0, hit / m.moe.num_experts)
        unread = all_experts * (1.0 - read_frac) * ebytes  # per MoE layer
        first = self.first - moe_first * unread
        out = np.maximum(first, np.where(pp > 1, self.last - moe_last * unread, first))
        return np.maximum(out, np.where(pp >= 3, middle_stage_bytes(m, g, self.split, wbytes,
                                                                    DTYPE_BYTES[m.dtype], moe_unread=unread,
                                                                    expert_bytes=ebytes), 0.0))


@dataclass(frozen=True, eq=False)
class StepPieces:
    """Time of one engine step, in three parts: FLOPs at the tensor-core rate, bytes at the HBM rate
    (the step takes the larger of the two, per the roofline) and what adds to it (collectives, kernel gaps,
    per-step CPU overhead)."""

    compute: FArray
    memory: FArray
    other: FArray
    moe_unread: FArray
    """Memory time the experts the step's tokens miss would have taken (already left out of ``memory``):
    A x (1 - k/E) ** tokens_per_stage, the saturating part of the step that is not linear in its tokens."""
    terms: dict[str, FArray] | None = None
    """With ``step_pieces(..., terms=True)``: ``other``'s parts by name (attention FLOPs and KV-read times, the
    attention floor, elementwise, TP / PP / EP / CP communication, kernel gaps, scheduler overhead, draft) and
    what serve_time reports beside them (bytes read per step, the TP message and one all-reduce's time)."""

    @property
    def total(self) -> FArray:
        return gemm_roofline(self.compute, self.memory) + self.other


def step_reads(ctx: Context, g: Grid) -> _StageReads:
    """The weight bytes step_pieces streams for ``g`` (computed once when it is called at several points)."""
    return _StageReads.of(ctx, g)


def step_pieces(ctx: Context, g: Grid, decode_seqs: npt.ArrayLike, prefill_tokens: npt.ArrayLike,
                eff: Eff | None = None, reads: _StageReads | None = None, terms: bool = False) -> StepPieces:
    """One scheduler step of a replica carrying ``decode_seqs`` decoding sequences (one token each, k + 1 under
    speculative decoding, holding
    ``input_len + output_len / 2`` cached tokens on average) and ``prefill_tokens`` prompt tokens (chunks of
    prompts of ``input_len`` tokens). The same terms as ``serve_time``'s decode step, which is this step with
    no prefill tokens: weights and KV streamed once per step, FLOPs of every token, two TP all-reduces per
    layer of the step's tokens, pipeline hand-offs, expert all-to-alls, kernel gaps and per-step overhead.
    vLLM keeps pp micro-batches in flight, so each stage carries 1/pp of the step's tokens."""
    assert ctx.serve is not None
    eff = eff or Eff.of(ctx)
    w, m, gpu = ctx.serve, ctx.model, ctx.gpu
    n = np.asarray(decode_seqs, dtype=np.float64) + 0.0 * g.tp
    p = np.asarray(prefill_tokens, dtype=np.float64) + 0.0 * g.tp
    reads = reads or _StageReads.of(ctx, g)
    tp, pp, cp = reads.sizes
    act_b = DTYPE_BYTES[m.dtype]
    L, h = m.num_layers, m.hidden_size
    peak = _peak(ctx, compute_dtype(w.weight_dtype, gpu.compute.dense_flops_per_s), eff)
    bw = gpu.hbm.bandwidth_bytes_per_s * eff.hbm
    bw_w = gpu.hbm.bandwidth_bytes_per_s * (eff.hbm_fp8 or eff.hbm) if w.weight_dtype == "fp8" else bw
    # decode reads and attends over each layer's cached keys: a window or chunk where the layer has one
    pos = float(w.input_len) + w.output_len / 2.0  # the mean decode position
    # a micro-batch holds whole sequences: fewer sequences than stages run one per micro-batch (as
    # serve_time's max(concurrency / pp, 1)); prompt tokens split freely
    b_n, b_p = np.maximum(n / pp, np.minimum(n, 1.0)), p / pp
    # speculative decoding: a decoding sequence puts q = k + 1 tokens through the target (its KV read once)
    q = float(w.verify_tokens)
    # decode attends over the cache with MLA's absorbed projections; prompt tokens attend causally over
    # their prompt from the end of the cached prefix (no prefix: a chunk at x sees x keys, half the prompt).
    # A roofline per kernel, not per step (Williams et al. 2009 bound one kernel): the GEMMs (weights streamed,
    # every token's matmul FLOPs) and the attention kernels (the KV cache streamed, score and value FLOPs) run
    # one after the other, so the step is max(GEMM FLOPs, weight bytes) + max(attention FLOPs, KV bytes)
    # prompt tokens skip the LM head but for each request's last (p / I of them: Little's law; one where a step
    # carries one whole prompt), prompt_gemm_params
    head = 2.0 * m.vocab_size * h
    gemm_fl = (b_n * q * 2.0 * m.matmul_params_active
               + b_p / cp * (2.0 * prompt_gemm_params(m) + head / max(float(w.prefill_len), 1.0))) / (pp * tp)
    attn_fl = b_n * q * attention_flops_per_token(m, pos, causal=False, absorbed=True) / (pp * tp)
    attn_pre = b_p * attention_flops_for_keys(m, prompt_keys(m, w)) / cp / (pp * tp)
    kv_read = reads.kv_per_decode * b_n
    # a GEMM of small inner dimension (a TP shard of o_proj / mlp_down) runs below the catalog's rate (GEMM_K0)
    compute = pp * gemm_fl * reads.gemm_slowdown(eff.gemm_k0) / peak
    w_read = reads.for_tokens(b_n * q + b_p)
    memory = pp * w_read / bw_w
    # the kernels beside the GEMMs, each on its own roofline: attention, in the activation dtype (bf16)
    # whatever dtype the GEMMs run in, then the elementwise kernels of every token (norms, activation, rotary)
    # decode attention's few FLOPs at the bf16 rate (its KV bytes bound it); a prompt chunk's at the measured
    # forward rate of the flash kernels (prefill_attention_rate)
    attn_c, attn_m = pp * (attn_fl / _peak(ctx, "bf16", eff)), pp * (kv_read / bw)
    if (b_p > 0).any():
        attn_c = attn_c + pp * (attn_pre / prefill_attention_rate(ctx, eff))
    floor = np.where(b_n > 0, DECODE_ATTENTION_FLOOR_S * L, 0.0)  # a decode-attention kernel per layer
    elem = (b_n * q + b_p / cp) * reads.elementwise_per_token / bw
    serial = np.maximum(attn_c, attn_m) + floor + elem
    moe_unread = pp * (reads.whole - w_read) / bw_w
    msg = (b_n * q + b_p) * h * act_b
    _, ar = _tp_allreduces(ctx, tp, msg, None, eff)
    t_tp = np.where(tp > 1, 2.0 * L * ar, 0.0)
    t_pp = (pp - 1.0) * comm.collective_time(
        gpu, "p2p", msg, 2, gpus_per_node=ctx.node_size, busbw_scale=eff.busbw_scale,
        stride=tp * cp * g.dp) if (pp > 1).any() else 0.0 * tp
    # decode tokens through the low-latency all-to-all, prompt tokens through the normal one (SGLang's DeepEP auto
    # mode: low-latency for decode batches, normal for prefill); each only where the step has such tokens
    t_ep = (np.where(b_n > 0, _ep_time(ctx, g, b_n * q, eff, low_latency=True), 0.0)
            + np.where(b_p > 0, _ep_time(ctx, g, b_p, eff), 0.0)) if m.moe is not None else 0.0 * tp
    t_cp = np.where(cp > 1, L * comm.collective_time(
        gpu, "all-reduce", b_n * q * h * act_b, cp, gpus_per_node=ctx.node_size, busbw_scale=eff.busbw_scale,
        stride=tp), 0.0) if (cp > 1).any() else 0.0 * tp
    gaps = L * kernels_per_layer(m, tp) * w.engine.kernel_gap_s * eff.gap_scale
    t_draft = _draft_time(ctx, g, n, p, eff)
    other = t_tp + t_pp + t_ep + t_cp + (gaps + w.engine.step_overhead_s) + t_draft + serial
    named = None
    if terms:
        named = {"attention_flops": attn_c, "kv_read": attn_m, "attention_floor": floor + 0.0 * tp,
                 "elementwise": elem, "tp": t_tp, "pp": t_pp, "ep": t_ep, "cp": t_cp, "gaps": gaps + 0.0 * tp,
                 "overhead": w.engine.step_overhead_s + 0.0 * tp, "draft": t_draft,
                 "read_bytes": pp * (w_read + kv_read), "tp_msg": msg, "tp_one": ar,
                 "tokens_per_stage": b_n * q + b_p}
    return StepPieces(compute=compute, memory=memory, other=other, moe_unread=moe_unread, terms=named)


def _draft_time(ctx: Context, g: Grid, decode_seqs: npt.ArrayLike, prefill_tokens: npt.ArrayLike,
                eff: Eff) -> FArray:
    """The draft's share of a step (speculative decoding), serial with the target's: one pass over the
    step's prompt tokens and the decodes' accepted tokens (which also drafts the first token), then k - 1
    passes of one token per decoding sequence (EAGLE / MTP chain drafting, vLLM v1 EagleProposer.propose;
    a draft model likewise). Each pass is a step of the draft on the same TP group, timed by step_pieces
    (its kernel gaps and all-reduces included, no scheduler overhead). n-gram lookup runs on the CPU: 0."""
    w = ctx.serve
    assert w is not None
    n = np.asarray(decode_seqs, dtype=np.float64) + 0.0 * g.tp
    p = np.asarray(prefill_tokens, dtype=np.float64) + 0.0 * g.tp
    spec = w.speculative
    if spec is None or spec.draft is None:
        return 0.0 * n
    dw = replace(w, speculative=None, engine=replace(w.engine, step_overhead_s=0.0))
    dctx = replace(ctx, model=spec.draft, serve=dw)
    gd = draft_grid(g, spec.draft)
    k2 = len(n)
    s = step_pieces(dctx, gd.take(np.tile(np.arange(k2), 2)), np.concatenate([n, n]),
                    np.concatenate([p, 0.0 * p]), eff)
    both = s.total
    first, rest = both[:k2], both[k2:]
    return np.where(n + p > 0, first, 0.0) + (spec.draft_tokens - 1) * np.where(n > 0, rest, 0.0)


PAYOFF_BATCHES = np.array(sorted({float(x) for x in np.round(np.geomspace(1, 8192, 79))}))
"""Decode batches (sequences per replica) scanned for where speculative decoding stops paying off."""


@dataclass(frozen=True, eq=False)
class Payoff:
    """Speculative decoding against plain decoding, per row, on decode steps alone (no prompt chunks)."""

    speedup: FArray
    """At the given batch: plain decode step x E / speculative step (with its draft passes); > 1 pays."""
    break_even_batch: FArray
    """Smallest batch at which the speedup falls to 1 (inf: not up to 8,192 sequences)."""
    compute_bound_batch: FArray
    """Smallest batch at which the verification step (k + 1 tokens per sequence) is compute-bound on the
    target's roofline: past it each extra drafted token costs GEMM time instead of riding on the weight read."""


def speculative_payoff(ctx: Context, g: Grid, batch: npt.ArrayLike, eff: Eff | None = None) -> Payoff:
    """Where speculative decoding pays (``ctx.serve.speculative`` set): the decode step with k + 1 tokens per
    sequence and the draft's passes yields E tokens; plain decoding one. Both from step_pieces, the same
    model as everything else, over PAYOFF_BATCHES (interpolated between them)."""
    assert ctx.serve is not None and ctx.serve.speculative is not None
    eff = eff or Eff.of(ctx)
    k, nb = len(g), len(PAYOFF_BATCHES)
    plain = replace(ctx, serve=ctx.serve.plain())
    rows = g.take(np.repeat(np.arange(k), nb + 1))
    n = np.concatenate([np.concatenate([PAYOFF_BATCHES, [float(b)]]) for b in
                        np.broadcast_to(np.asarray(batch, dtype=np.float64), (k,))])
    zero = 0.0 * n
    s_spec = step_pieces(ctx, rows, n, zero, eff)
    s_plain = step_pieces(plain, rows, n, zero, eff)
    t_spec = s_spec.total.reshape(k, nb + 1)
    t_plain = s_plain.total.reshape(k, nb + 1)
    speed = ctx.serve.decode_tokens_per_step * t_plain / t_spec
    bound = (s_spec.compute >= s_spec.memory).reshape(k, nb + 1)[:, :nb]
    scan = speed[:, :nb]

    def first(mask: npt.NDArray[np.bool_], y: FArray | None) -> FArray:
        j = np.argmax(mask, axis=1)
        out = np.where(mask.any(axis=1), PAYOFF_BATCHES[j], np.inf)
        if y is None:
            return out
        # linear between the last batch that pays and the first that does not
        idx = np.arange(k)
        jm = np.maximum(j - 1, 0)
        y0, y1 = y[idx, jm], y[idx, j]
        x0, x1 = PAYOFF_BATCHES[jm], PAYOFF_BATCHES[j]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where((j > 0) & (y0 != y1), x0 + (y0 - 1.0) * (x1 - x0) / (y0 - y1), out)
        return np.where(mask.any(axis=1), x, np.inf)

    return Payoff(speedup=speed[:, nb], break_even_batch=first(scan < 1.0, scan),
                  compute_bound_batch=first(bound, None))


# vLLM's and SGLang's one-shot custom all-reduce serves world sizes 2, 4, 6 and 8 only
# (_SUPPORTED_WORLD_SIZES in vllm/distributed/device_communicators/custom_all_reduce.py and its SGLang copy);
# a larger TP group (TP 16-72 inside an NVL72 rack) falls back to NCCL, at nccl-tests' per-call time
CUSTOM_ALLREDUCE_MAX_RANKS = 8


def graph_allreduce_ranks(gpu: GpuSpec, node: float) -> float:
    """The largest TP group whose decode all-reduce pays the engine's fixed graph-launched latency: inside one
    NVLink / Infinity Fabric domain and within the custom all-reduce's world sizes."""
    return min(comm.fast_domain(gpu, node), CUSTOM_ALLREDUCE_MAX_RANKS)


def _tp_allreduces(ctx: Context, tp: FArray, prefill_msg: FArray, dec_msg: FArray | None,
                   eff: Eff) -> tuple[FArray, FArray]:
    """One TP all-reduce per row for the prefill and the decode message (None: the step has one message,
    returned in both places, the second as a decode step's), in one collective call. Where the engine
    graph-launches decode all-reduces, the decode one pays its fixed latency instead of nccl-tests' per-call
    floor (evaluated in the same call)."""
    assert ctx.serve is not None
    gpu, n = ctx.gpu, len(tp)
    lat = ctx.serve.engine.decode_allreduce_latency_s
    graph = lat is not None and eff.graph_allreduce and not gpu.pcie_only
    sizes = [prefill_msg + 0 * tp] + ([dec_msg + 0 * tp] if dec_msg is not None else [])
    k = len(sizes) * n  # the messages' rows; the per-group floors follow
    ranks = [tp] * len(sizes)
    scale = [np.full(k, eff.busbw_scale)]
    if graph:
        # a handful of TP sizes: evaluate each once (bincount + searchsorted: np.unique imports numpy.ma, 14 ms)
        uniq = np.flatnonzero(np.bincount(tp.astype(np.int64))).astype(np.float64)  # sorted, as np.unique
        inv = np.searchsorted(uniq, tp)
        sizes.append(np.full(len(uniq), 1024.0))
        ranks.append(uniq)
        # the floor is a latency, not a bandwidth: take it at the nominal bus bandwidth so a faster fabric
        # (the optimistic band) can only shorten what the message adds
        scale.append(np.ones(len(uniq)))
    t = comm.collective_time(gpu, "all-reduce", np.concatenate(sizes), np.concatenate(ranks),
                             gpus_per_node=ctx.node_size, busbw_scale=np.concatenate(scale))
    pre, dec = t[:n], t[k - n:k]
    if graph:
        assert lat is not None
        # inside one NVLink / Infinity Fabric domain (and the custom all-reduce's world sizes), a graph-launched
        # all-reduce pays a fixed latency instead of nccl-tests' per-call alpha (launch and ring steps); the
        # bandwidth term stays (the per-call floor is nccl-tests' time for a 1 KiB message on the same group)
        floor = t[k:][inv.reshape(-1)]
        in_domain = tp <= graph_allreduce_ranks(gpu, ctx.node_size)
        dec = np.where(in_domain & (tp > 1), np.maximum(dec - floor, 0.0) + lat, dec)
    return pre, dec


def ep_a2a_bytes_per_token(model: ModelSpec, ep: npt.ArrayLike, node: int,
                           low_latency: bool = False) -> tuple[FArray, FArray]:
    """(elements over the network, elements over NVLink) per token and direction of one expert-parallel
    all-to-all, as DeepEP moves them (deepseek-ai/DeepEP: a token crosses the network once per destination
    node, then fans out over NVLink to its experts' GPUs there).

    The EP group spans n = ceil(ep / node) nodes. A token's k experts sit on n (1 - (1 - 1/n)^k) distinct nodes
    on average (uniform routing), at most groups_per_token x max(1, n / routing_groups) with group-limited
    routing (DeepSeek-V3: top-4 of 8 groups, one group per node at EP64: 4 nodes); (n - 1) / n of them are
    remote. Over NVLink each of the k copies goes to another GPU of its node with probability (e - 1) / e,
    e = the group's GPUs per node."""
    m = model.moe
    ep = np.asarray(ep, dtype=np.float64)
    if m is None:
        return 0.0 * ep, 0.0 * ep
    k = float(m.experts_per_token)
    e = np.minimum(ep, float(node))
    n = np.ceil(ep / float(node))
    distinct = n * (1.0 - (1.0 - 1.0 / n) ** k)
    if m.routing_groups and m.groups_per_token:
        distinct = np.minimum(distinct, m.groups_per_token * np.maximum(1.0, n / m.routing_groups))
    h = float(model.hidden_size)
    if low_latency:
        # DeepEP's low-latency kernels send every top-k copy on its own (no per-node deduplication; the README's
        # LL bandwidth counts all k copies): k (n - 1) / n of them to other nodes, k / n x (e - 1) / e over NVLink
        return k * (n - 1.0) / n * h, k / n * h * (e - 1.0) / np.maximum(e, 1.0)
    remote = distinct * (n - 1.0) / n
    return remote * h, k * h * (e - 1.0) / np.maximum(e, 1.0)


DEEPEP_LL_FLOOR_S = 40e-6
"""Fixed time of one DeepEP low-latency dispatch or combine beside its bytes: DeepEP's README low-latency table
(deepseek-ai/DeepEP @d8dd185, H800 + CX7 400G, 128 tokens a rank, hidden 7168, top-8, fp8 dispatch / bf16 combine,
EP 8-256; shipped as hardware/calibration/deepep-ll.csv) measures 77-194 us dispatch and 114-369 us combine, of which
the slower fabric's bytes (every top-k copy sent on its own, ep_a2a_bytes_per_token(low_latency=True)) explain all
but 33-46 us at EP 8-256 (dispatch) and 33-58 us (combine, 76 at EP128): the median, 40 us. Fitted to that
microbenchmark; ``tpplan validate --category all-to-all`` replays it."""


def ep_a2a_time(ctx: Context, g: Grid, tokens: npt.ArrayLike, elem_bytes: float, eff: Eff,
                low_latency: bool = False) -> FArray:
    """One expert-parallel all-to-all (dispatch or combine) of ``tokens`` tokens per GPU at ``elem_bytes`` per
    element: the network and NVLink stages overlap (DeepEP's normal kernels), so the slower one sets the time,
    each at its per-GPU bus bandwidth (the catalog's inter- and intra-node calibrations; DeepEP measured 43-58
    GB/s per 400 Gb/s NIC and 153-158 GB/s over H800 NVLink, shared/reference/data/operators/deepep.csv, in
    line with them), plus one latency step of each."""
    gpu = ctx.gpu
    c = gpu.calibration
    t = np.asarray(tokens, dtype=np.float64) + 0.0 * g.tp
    # the scale-up fabric's reach: the node, or the whole NVLink domain of an NVL72 rack (EP up to 72 on NVLink)
    inter, intra = ep_a2a_bytes_per_token(ctx.model, g.ep, int(comm.fabric_node(gpu, ctx.node_size)), low_latency)
    bw_inter = c.inter_node.busbw_bytes_per_s * eff.busbw_scale
    bw_intra = c.intra_node.busbw_bytes_per_s * eff.busbw_scale
    if low_latency:
        # DeepEP's low-latency kernels (decode): each copy straight to its GPU, RDMA across nodes and NVLink inside
        # one at once, plus the kernel's fixed time (DEEPEP_LL_FLOOR_S)
        return np.where(g.ep > 1, np.maximum(t * inter * elem_bytes / bw_inter, t * intra * elem_bytes / bw_intra)
                        + DEEPEP_LL_FLOOR_S, 0.0)
    net = np.where(inter > 0, t * inter * elem_bytes / bw_inter + c.inter_node.alpha_per_step_s, 0.0)
    link = np.where(intra > 0, t * intra * elem_bytes / bw_intra + c.intra_node.alpha_per_step_s, 0.0)
    return np.where(g.ep > 1, np.maximum(net, link), 0.0)


def _ep_time(ctx: Context, g: Grid, tokens: npt.ArrayLike, eff: Eff, low_latency: bool = False) -> FArray:
    """Serving: a dispatch and a combine per MoE layer of ``tokens`` tokens per GPU (ep_a2a_time), in the
    activation dtype (fp8 dispatch where the weights are fp8, as DeepEP and vLLM's DeepEP path quantize it);
    ``low_latency``: through DeepEP's low-latency kernels, as engines run decode batches (SGLang's DeepEP auto
    mode, vLLM's DeepEP low-latency all-to-all backend)."""
    m = ctx.model
    if m.moe is None:
        return np.zeros(len(g))
    act_b = DTYPE_BYTES[m.dtype]
    disp_b = 1.0 + 4.0 / 128 if ctx.serve is not None and ctx.serve.weight_dtype == "fp8" else act_b
    return m.num_moe_layers * (ep_a2a_time(ctx, g, tokens, disp_b, eff, low_latency)
                               + ep_a2a_time(ctx, g, tokens, act_b, eff, low_latency))


def _cp_prefill_time(ctx: Context, g: Grid, tokens: float, eff: Eff) -> FArray:
    """Ring attention (Liu et al. 2023): each layer passes (cp-1) K/V blocks of tokens/cp around the ring,
    overlapped with the block attention compute; only the excess is exposed."""
    m = ctx.model
    cp = g.cp.astype(np.float64)
    kv_tok_layer = m.kv_cache_bytes_per_token(DTYPE_BYTES[m.dtype]) / m.num_layers
    block = tokens / cp * kv_tok_layer
    t_pass = comm.collective_time(ctx.gpu, "p2p", block, 2 + 0 * cp, gpus_per_node=ctx.node_size,
                                  busbw_scale=eff.busbw_scale,
                                  stride=comm.ring_hop_stride(ctx.gpu, g.tp, cp, ctx.node_size))
    att = attention_flops_per_token(m, tokens, causal=True) / m.num_layers * tokens / (
        cp * g.tp * ctx.gpu.peak_flops("bf16") * eff.flops)
    return m.num_layers * np.maximum(0.0, (cp - 1.0) * t_pass - att)


# ---------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------


def elementwise_bytes_per_token(model: ModelSpec, act_b: float = 2.0) -> float:
    """HBM bytes of the memory-bound elementwise kernels of one forward pass, per token, all layers:
    two norms (read + write h each), two residual adds (read 2h, write h), the MLP activation (gated: read
    2 x ffn, write ffn; GELU: read and write ffn; MoE: for each of the top-k experts) and rotary embedding
    of q and k (read + write). First-principles byte counting in the spirit of Korthikanti et al. 2022's
    activation accounting; fused kernels move less, so this is an upper estimate. The sum of
    ``elementwise_split``'s two parts."""
    return float(sum(elementwise_split(model, act_b)))


LOSS_BYTES_PER_LOGIT = 6.0
"""HBM bytes per logit of a training step's cross-entropy loss: the forward reads the bf16 logits (2 B), the
backward reads them again (2 B) and writes their gradient (2 B). First-principles count of a fused kernel; an eager
one (fp32 upcast, softmax written out) moves more (EAGER_LOSS_BYTES_PER_LOGIT)."""

EAGER_LOSS_BYTES_PER_LOGIT = 40.0
"""HBM bytes per logit of PyTorch's eager cross entropy on bf16 logits, as frameworks without a fused loss run it
(``F.cross_entropy`` under autocast, which runs it in fp32; Hugging Face models and torchtitan call ``.float()`` on
the logits first): forward, the upcast (read 2 B, write 4 B) and log_softmax (two reads of the fp32 row for its max
and sum, one write: 12 B); backward, nll_loss's dense gradient (write 4 B), log_softmax's backward (read the
gradient and the output, write: 12 B) and the cast back to bf16 (read 4 B, write 2 B). First-principles count of
the kernels PyTorch launches (aten log_softmax / nll_loss and their backwards), each a streaming kernel at the GPU's
HBM efficiency."""


FP8_CAST_BYTES = 4.0
"""HBM bytes per element of an fp8 GEMM operand's cast: Transformer Engine's cast-transpose kernels read the bf16
tensor (2 B) and write it in fp8 and transposed in fp8 (1 + 1 B), the transpose for the weight-gradient GEMM
(Hopper's fp8 tensor cores take TN operands only). First-principles count."""


def fp8_cast_elements(model: ModelSpec) -> tuple[float, float, float, float]:
    """Elements per token, all layers, that an fp8 training recipe casts to fp8 for its GEMMs (the LM head kept in
    bf16, as Transformer Engine recipes do): (forward, replicated over TP unless SP: the h-wide inputs of the QKV and
    MLP-up projections; forward, TP-sharded: the inputs of the output and MLP-down projections), and the same two
    for the backward's output gradients (h-wide: the output and MLP-down projections'; sharded: QKV's and MLP-up's).
    MoE layers: the routed experts' for each of the top-k, shared experts once."""
    a, h = model.attention, float(model.hidden_size)
    q = float(a.num_heads * (a.v_head_dim if a.kind == "mla" and a.v_head_dim else a.head_dim))
    qkv = float((a.num_heads + 2 * a.num_kv_heads) * a.head_dim) if a.kind != "mla" else q
    up = 2.0 if model.mlp.kind == "gated" else 1.0
    L, n_moe = float(model.num_layers), float(model.num_moe_layers)
    ffn = (L - n_moe) * float(model.mlp.intermediate_size)
    mlp_in_h = L - n_moe  # dense MLP-up inputs (h wide)
    if model.moe is not None:
        k = float(model.moe.experts_per_token) + float(model.moe.num_shared_experts)
        ffn += n_moe * k * float(model.moe.expert_intermediate_size)
        mlp_in_h += n_moe * k
    fwd_repl = L * h + mlp_in_h * h
    fwd_shard = L * q + ffn
    bwd_repl = L * h + mlp_in_h * h
    bwd_shard = L * qkv + up * ffn
    return fwd_repl, fwd_shard, bwd_repl, bwd_shard


def moe_permute_elements(model: ModelSpec) -> float:
    """Elements per token, all MoE layers, that routing's data movement reads and writes beside the expert GEMMs:
    each token's hidden state copied once per chosen expert into the experts' order (read h, write k h) and the
    experts' outputs gathered back and summed with their routing weights (read k h, write h): 2 (k + 1) h a
    layer. First-principles count of TensorRT-LLM's MoE plugin (expandInputRows / finalizeMoeRouting kernels),
    vLLM's fused_moe output sum (moe_sum) and Megatron's token permute / unpermute."""
    if model.moe is None:
        return 0.0
    return 2.0 * (model.moe.experts_per_token + 1.0) * model.hidden_size * model.num_moe_layers


def activation_elements(model: ModelSpec) -> float:
    """Elements per token, all layers, the MLP activation reads and writes before tensor parallelism splits it:
    gated (SwiGLU) reads gate and up and writes their product (3 x ffn), GELU reads and writes ffn (2 x ffn);
    a MoE layer does so for each of its top-k experts."""
    per = 3.0 if model.mlp.kind == "gated" else 2.0
    if model.moe is None:
        return per * model.mlp.intermediate_size * model.num_layers
    return per * (model.mlp.intermediate_size * model.num_dense_layers
                  + model.moe.expert_intermediate_size * model.moe.experts_per_token * model.num_moe_layers)


def elementwise_split(model: ModelSpec, act_b: float = 2.0) -> tuple[float, float]:
    """``elementwise_bytes_per_token`` as (the norms and residual adds over the whole hidden state, which every
    tensor-parallel rank repeats unless sequence parallelism shards them over the sequence; the rotary embedding
    of the rank's own heads and the MLP activation of its own ffn columns, which tensor parallelism always
    shards) -- Korthikanti et al. 2022, section 4.2.2: the LayerNorm and dropout activations are the ones TP
    leaves replicated and SP splits."""
    h = float(model.hidden_size)
    a = model.attention
    # the norms and residual adds; MoE routing's token copies, over every token the rank holds (moe_permute_elements)
    replicated = (4.0 * h + 6.0 * h) * model.num_layers + moe_permute_elements(model)
    rope = 2.0 * (a.num_heads + a.num_kv_heads) * a.head_dim if model.position_embedding == "rope" else 0.0
    sharded = rope * model.num_layers + activation_elements(model)
    return replicated * act_b, sharded * act_b


def serve_elementwise_bytes_per_token(model: ModelSpec, tp: npt.ArrayLike, act_b: float = 2.0) -> FArray:
    """HBM bytes per token per GPU of a serving engine's memory-bound elementwise kernels, all layers: each
    norm fused with its residual add (vLLM fused_add_rms_norm reads x and the residual, writes both: 4h, on
    every TP rank), the MLP activation on this rank's share (activation_elements / tp: silu_and_mul reads 2 d/tp,
    writes d/tp), rotary embedding of this rank's q and k heads in place (read + write, KV heads replicated past
    tp), and MoE routing's token copies on every rank (moe_permute_elements). First-principles byte counts, as
    elementwise_bytes_per_token for training."""
    t = np.asarray(tp, dtype=np.float64)
    a = model.attention
    per_layer = model.norms_per_layer * 4.0 * float(model.hidden_size) + 0.0 * t
    if model.position_embedding == "rope":
        per_layer = per_layer + 2.0 * (a.num_heads / t + np.maximum(a.num_kv_heads / t, 1.0)) * a.head_dim
    return (per_layer * model.num_layers + moe_permute_elements(model) + activation_elements(model) / t) * act_b


def model_flops_per_step(model: ModelSpec, global_batch: float, seq_len: float) -> float:
    """Model FLOPs of one optimizer step: 3 x forward (forward + 2x backward), full (non-causal)
    attention as Narayanan et al. 2021 and Korthikanti et al. 2022 count it, so MFU is comparable:
    72 B L s h^2 (1 + s/(6h) + V/(12 h L)) for GPT-style models."""
    return float(3.0 * forward_flops(model, global_batch * seq_len, seq_len, causal=False))


def recompute_flops_per_step(model: ModelSpec, global_batch: float, seq_len: float, recompute: str,
                             flash_attention: bool) -> float:
    """Extra FLOPs of activation recomputation: full = one more forward of the layers (not the logit
    layer); selective = the attention score/softmax part (Korthikanti: HFU/MFU ~ 1 + s/(6h))."""
    tokens = global_batch * seq_len
    if recompute == "full":
        logit = 2.0 * model.vocab_size * model.hidden_size
        return float(forward_flops(model, tokens, seq_len, causal=False) - tokens * logit)
    if recompute == "selective" or flash_attention:
        # flash attention recomputes scores in the backward pass (Dao et al. 2022)
        return float(tokens * attention_flops_per_token(model, seq_len, causal=False))
    return 0.0


def elementwise_efficiency(ctx: Context, eff: Eff) -> float:
    """HBM efficiency of a training step's elementwise kernels: the GPU's calibrated one for fused kernels; for
    PyTorch eager ops EAGER_ELEMENTWISE_FRACTION, moved to its band's edge with the calibration band's edge."""
    assert ctx.train is not None
    if ctx.train.elementwise != "eager":
        return eff.hbm
    c = ctx.gpu.calibration.hbm
    lo, hi = EAGER_ELEMENTWISE_BAND
    if eff.hbm < c.value:
        return lo
    if eff.hbm > c.value:
        return hi
    return EAGER_ELEMENTWISE_FRACTION


def eager_score_bytes(m: ModelSpec, B: float, s: float, recompute: str) -> float:
    """HBM bytes one optimizer step moves through the s x s attention scores when attention runs eagerly (no
    FlashAttention), over all layers, heads and sequences (to be divided among the GPUs sharing them).

    Per score element, forward (Korthikanti et al. 2022, section 4.1, the tensors behind its 5as^2b): QK^T writes
    the scores (2 bytes), softmax reads them and writes the probabilities (2 + 2), dropout reads those and writes
    its mask and output (2 + 1 + 2), the product with V reads the output (2): 13 bytes; 8 without dropout (models
    trained without it). Backward about twice the forward, as every elementwise pass here; the forward again
    under selective recompute (it recomputes exactly this core) and under full recompute."""
    dropout = m.family == "gpt"
    fwd = 13.0 if dropout else 8.0
    passes = 3.0 + (1.0 if recompute in ("selective", "full") else 0.0)
    return B * m.num_layers * m.attention.num_heads * s * s * fwd * passes


def _train_attention_split(ctx: Context, B: float, s: float, eff: Eff) -> tuple[float, float]:
    """(GEMM FLOPs of one step, GPU-seconds of its attention kernels).

    GEMMs: 3 x 2 N per token (forward, backward 2x; Narayanan et al. 2021), plus a forward of the layers
    under full recompute. Attention with flash kernels (Dao et al. 2022, 2023) executes the causal half of the
    scores: forward 4 s^2 h d / 2 per sequence and layer, backward 2.5x forward (it recomputes the scores),
    and one more forward under full recompute, at the measured forward+backward rate of the workload's
    FlashAttention generation (2, or 1.x under --attention flash1) for this sequence length and head dim
    (tpplan/engine/attention.py), in bf16 whatever dtype the GEMMs use. Without flash
    kernels (eager attention) the scores run as GEMMs: the model's full-attention FLOPs at the GEMM rate."""
    from tpplan.engine import attention

    assert ctx.train is not None
    m, tw = ctx.model, ctx.train
    tokens = B * s
    full = tw.recompute == "full"
    logit = 2.0 * m.vocab_size * m.hidden_size
    gemm = tokens * 2.0 * m.matmul_params_active * 3.0 + (tokens * (2.0 * m.matmul_params_active - logit)
                                                          if full else 0.0)
    if not tw.flash_attention:
        extra = model_flops_per_step(m, B, s) + recompute_flops_per_step(m, B, s, tw.recompute, False) - \
            tokens * 2.0 * m.matmul_params_active * 3.0
        return gemm + extra, 0.0
    fwd = float(tokens * attention_flops_per_token(m, s, causal=True))
    a = m.attention
    d = a.qk_nope_head_dim + (a.qk_rope_head_dim or 0) if a.kind == "mla" and a.qk_nope_head_dim else a.head_dim
    rate = float(attention.fwd_bwd_flops_per_s(ctx.gpu, d, True, s, tw.flash_kernel)) * (
        eff.flops / ctx.gpu.calibration.flops.value)
    return gemm, (3.5 + (1.0 if full else 0.0)) * fwd / rate


def _routed_expert_streaming(ctx: Context, g: Grid, gemm_s: FArray, micro: FArray, cdt: str, eff: Eff) -> FArray:
    """What a training step's routed-expert GEMMs take beyond their FLOPs: each micro-batch's grouped GEMMs read
    every expert this GPU holds that its tokens hit, in each pass (forward, again under full recompute, data and
    weight gradient), so at small tokens per expert they near the HBM bound, as decode GEMMs do. The same smooth
    roofline (gemm_roofline) the GEMM-shape category checks on DeepGEMM's grouped GEMMs (4-8 groups of 256-8,192
    rows, within 19%). Per GPU: routed experts of a MoE layer num_experts x expert_params / (ep, or tp without
    EP), hit by the micro-batch's tokens of the EP group (expected_active_experts, uniform routing), in the GEMM
    dtype, times the MoE layers of its stage and the micro-batches; the FLOP part is the routed experts' share
    of ``gemm_s``. A lower edge of the bytes: fp32 gradient accumulation reads and writes more."""
    assert ctx.train is not None and ctx.model.moe is not None
    m, tw, moe = ctx.model, ctx.train, ctx.model.moe
    tp, pp, ep, cp = (x.astype(np.float64) for x in (g.tp, g.pp, g.ep, g.cp))
    share = m.num_moe_layers * moe.experts_per_token * m.expert_params / float(m.matmul_params_active)
    t_flops = share * gemm_s
    tokens = g.micro_batch.astype(np.float64) * tw.seq_len / cp * np.where(ep > 1, ep, 1.0)
    hit = expected_active_experts(moe.num_experts, moe.experts_per_token, tokens) / moe.num_experts
    held = moe.num_experts * m.expert_params / np.where(ep > 1, ep, tp) * hit * DTYPE_BYTES[cdt]
    passes = 4.0 if tw.recompute == "full" else 3.0
    t_bytes = micro * (m.num_moe_layers / pp) * passes * held / (ctx.gpu.hbm.bandwidth_bytes_per_s * eff.hbm)
    return gemm_roofline(t_flops, t_bytes) - t_flops


@dataclass(frozen=True, eq=False)
class TrainTime:
    step_time: FArray
    compute_time: FArray
    bubble_time: FArray
    tp_comm: FArray
    pp_comm: FArray
    dp_comm: FArray
    ep_comm: FArray
    cp_comm: FArray
    optimizer: FArray
    """The optimizer update after the last backward (memory-bound, not overlapped)."""
    mfu: FArray
    hfu: FArray
    tokens_per_s: FArray
    micro_batches: FArray
    model_flops: float
    gemm: FArray | None = None
    """Parts of ``compute_time``: the GEMMs, the attention kernels and the memory-bound elementwise work."""
    attention: FArray | None = None
    elementwise: FArray | None = None
    expert_streaming: FArray | None = None
    """The part of ``gemm`` the routed experts' weight reads add beyond their FLOPs (MoE; _routed_expert_streaming)."""


def train_time(ctx: Context, g: Grid, eff: Eff | None = None, zero: npt.ArrayLike | None = None) -> TrainTime:
    """Step time of one optimizer step (1F1B pipeline, Narayanan et al. 2021). ``zero`` (one stage per row)
    overrides the workload's ZeRO stage."""
    assert ctx.train is not None
    eff = eff or Eff.of(ctx)
    tw, m, gpu = ctx.train, ctx.model, ctx.gpu
    z = np.asarray(tw.zero if zero is None else zero)
    node = ctx.node_size
    tp, pp, dp, cp = (x.astype(np.float64) for x in (g.tp, g.pp, g.dp, g.cp))
    ep = g.ep.astype(np.float64)
    mb = g.micro_batch.astype(np.float64)
    gpus = tp * pp * dp * cp
    B, s = float(tw.global_batch), float(tw.seq_len)
    micro = np.maximum(1.0, np.floor(B / (dp * mb)))
    mf = model_flops_per_step(m, B, s)
    hf = mf + recompute_flops_per_step(m, B, s, tw.recompute, tw.flash_attention)
    cdt = "fp8" if tw.train_dtype == "fp8" and "fp8" in gpu.compute.dense_flops_per_s else "bf16"
    peak_eff = _peak(ctx, cdt, eff)
    # the GEMMs at the calibrated tensor-core rate; attention (flash kernels) at its own measured rate
    gemm_flops, attn_gpu_s = _train_attention_split(ctx, B, s, eff)
    attn_s = attn_gpu_s + 0.0 * tp
    # memory-bound elementwise work next to the GEMMs (norms, residual adds, MLP activation, rotary): bytes
    # streamed through HBM, sharded like the tokens (over tp as below)
    passes = 4.0 if tw.recompute == "full" else 3.0  # forward, backward ~2x forward (+1 forward recomputed)
    # the rotary and activation bytes split over tp always, the norms and residual adds only under sequence
    # parallelism (each TP rank repeats them otherwise)
    repl_b, shard_b = elementwise_split(m, act_b=DTYPE_BYTES[m.dtype])
    # the loss: a fused (vocab-parallel) cross entropy reads the logits forward and again backward and writes their
    # gradient, LOSS_BYTES_PER_LOGIT a logit, each TP rank its vocab shard (Megatron's vocab-parallel cross
    # entropy; flash-attn's fused CrossEntropyLoss); frameworks of eager PyTorch ops run aten's fp32 cross entropy,
    # EAGER_LOSS_BYTES_PER_LOGIT a logit, each of its kernels a plain streaming one at the GPU's HBM efficiency
    eager = tw.elementwise == "eager"
    loss_b = (EAGER_LOSS_BYTES_PER_LOGIT if eager else LOSS_BYTES_PER_LOGIT) * m.vocab_size / tp
    bw = gpu.hbm.bandwidth_bytes_per_s
    elem = B * s * (passes * (shard_b / tp + repl_b / np.where(tw.sequence_parallel, tp, 1.0)) / (
        bw * elementwise_efficiency(ctx, eff)) + loss_b / (bw * eff.hbm)) / (dp * cp * pp)
    if not tw.flash_attention:
        elem = elem + eager_score_bytes(m, B, s, tw.recompute) / (dp * cp * pp * tp) / (
            gpu.hbm.bandwidth_bytes_per_s * eff.hbm)
    if cdt == "fp8":
        # fp8 GEMMs take fp8 operands: every activation into a GEMM is cast in the forward (again under full
        # recompute) and every output gradient in the backward (FP8_CAST_BYTES each, Transformer Engine's fused
        # cast-transpose kernels at the GPU's HBM efficiency)
        f_r, f_s, b_r, b_s = fp8_cast_elements(m)
        fwd_passes = 2.0 if tw.recompute == "full" else 1.0
        sp_div = np.where(tw.sequence_parallel, tp, 1.0)
        cast = fwd_passes * (f_r / sp_div + f_s / tp) + (b_r / sp_div + b_s / tp)
        elem = elem + B * s * FP8_CAST_BYTES * cast / (dp * cp * pp) / (gpu.hbm.bandwidth_bytes_per_s * eff.hbm)
    # a GEMM of small inner dimension runs below the catalog's rate (GEMM_K0): the forward at each operator's
    # input size, the data gradient at its output size (both TP shards), the weight gradient at the micro-batch
    gemm_s = gemm_flops * train_gemm_slowdown(m, tp, g.micro_batch * s / cp, tw.recompute, eff.gemm_k0, g.ep) / (
        gpus * peak_eff)
    streaming = _routed_expert_streaming(ctx, g, gemm_s, micro, cdt, eff) if m.moe is not None else 0.0 * tp
    gemm_s = gemm_s + streaming
    compute = gemm_s + attn_s / gpus + elem
    first_l, last_l = stage_layers(m.num_layers, pp, tw.stage_split)
    mid_l = np.where(pp >= 3, middle_layers(m.num_layers, pp, tw.stage_split), 0.0)
    if (pp > 1).any():
        # 1F1B runs at the pace of its slowest stage (Narayanan et al. 2021): the last holds floor(L/p) layers
        # and the LM head with the loss, the first ceil(L/p) layers (its embedding gather is no GEMM), a middle
        # one as many (or, with the user's split, the layers the first and last leave); the head's share of
        # the step is its GEMMs' share of the matmul FLOPs
        head = (m.vocab_size * m.hidden_size / m.matmul_params_active) * gemm_s / np.maximum(compute, 1e-300)
        slowest = np.maximum(np.maximum(first_l, mid_l) / m.num_layers * (1.0 - head),
                             last_l / m.num_layers * (1.0 - head) + head)
        pace = np.where(pp > 1, np.maximum(slowest * pp, 1.0), 1.0)
        compute, gemm_s, attn_s, elem = compute * pace, gemm_s * pace, attn_s * pace, elem * pace
        streaming = streaming * pace
    v = float(tw.interleave)
    bubble = compute * (pp - 1.0) / (micro * v)
    act_b = DTYPE_BYTES[m.dtype]
    msg = mb * (s / cp) * m.hidden_size * act_b
    # 4 all-reduces per layer per micro-batch (2 forward, 2 backward); under SP a reduce-scatter plus an
    # all-gather of the same volume (Korthikanti et al. 2022), counted as exposed; recompute adds the
    # forward ones again under full recompute.
    n_ar = 4.0 + (2.0 if tw.recompute == "full" else 0.0)
    t_ar = comm.collective_time(gpu, "all-reduce", msg, tp, gpus_per_node=node, busbw_scale=eff.busbw_scale)
    tp_comm = np.where(tp > 1, n_ar * np.maximum(first_l, mid_l) * micro * t_ar, 0.0)
    # stage neighbours are tp x cp x dp ranks apart: off the node once that reaches the node size;
    # one activation send forward and one gradient send backward per micro-batch per boundary
    p2p = comm.collective_time(gpu, "p2p", msg / np.where(tw.sequence_parallel, tp, 1.0), 2 + 0 * tp,
                               gpus_per_node=node, busbw_scale=eff.busbw_scale, stride=tp * cp * dp)
    # interleaving (v model chunks per rank) multiplies the stage-boundary traffic by v (Narayanan et al. 2021)
    pp_comm = np.where(pp > 1, 2.0 * v * (micro + pp - 2.0) * p2p, 0.0)
    # data parallel: gradient reduce-scatter + all-gather (ZeRO >= 1) or all-reduce, in the dtype the framework
    # reduces in (tw.grad_bytes: 2 bf16, 4 fp32)
    n_params = params_per_gpu(m, g, tw.stage_split)
    grad_bytes = n_params * tw.grad_bytes
    dp_group = dp * cp
    # the dp (x cp) group strides over the tp ranks

    def coll(op: str, size: npt.ArrayLike, ranks: npt.ArrayLike, stride: npt.ArrayLike = tp) -> FArray:
        return comm.collective_time(gpu, op, size, ranks, gpus_per_node=node, busbw_scale=eff.busbw_scale,
                                    stride=stride)

    def reduce_grads(units: FArray | float) -> FArray:
        """The gradients reduce-scattered over the shard group as ``units`` collectives (and, under hybrid
        sharding, each shard all-reduced across the replicas, ranks shard x tp apart)."""
        t = units * coll("reduce-scatter", grad_bytes / units, shard)
        if tw.shard_group is not None:
            t = t + np.where(replicas > 1, units * coll("all-reduce", grad_bytes / shard / units, replicas,
                                                        tp * shard), 0.0)
        return t

    if tw.shard_group is None:
        shard = dp_group
        t_dp = coll("all-reduce", grad_bytes, dp_group)
        if tw.grad_bytes != 2 and np.any(z >= 1):
            # ZeRO >= 1 reduce-scatters the gradients in their dtype and gathers the bf16 parameters back
            # (Megatron-core's distributed optimizer): the all-reduce's two halves at different widths
            t_dp = np.where(z >= 1, reduce_grads(1.0) + coll("all-gather", n_params * 2.0, dp_group), t_dp)
    else:
        # hybrid sharding (PyTorch FSDP HYBRID_SHARD): gradients reduce-scattered inside a shard group of
        # consecutive dp ranks, each shard all-reduced across the replicas (ranks shard x tp apart), and the
        # updated bf16 parameters gathered back inside the group: with one group, the reduce-scatter and
        # all-gather an all-reduce is made of (Patarasuk and Yuan 2009), the default above
        shard = np.minimum(dp_group, float(tw.shard_group))
        replicas = dp_group / shard
        t_dp = reduce_grads(1.0) + coll("all-gather", n_params * 2.0, shard)
    # behind the last micro-batch's backward (bucketed as PyTorch DDP / Megatron-core --overlap-grad-reduce do),
    # or after it, whole, where the framework does not overlap (Megatron-core's default)
    bwd_last = compute / micro * (2.0 / 3.0) if tw.dp_overlap else 0.0
    dp_comm = np.where(dp_group > 1, np.maximum(t_dp * 0.1, t_dp - bwd_last), 0.0)
    if np.any(z >= 3):
        # ZeRO-3 / FSDP FULL_SHARD (Rajbhandari et al. 2020 section 7.2.2; PyTorch FSDP reshards after the
        # forward): every micro-batch gathers each layer's bf16 parameters for its forward and again for its
        # backward (a recompute under activation checkpointing runs inside that backward gather) and
        # reduce-scatters its gradients (across replicas too under hybrid sharding); no all-gather after the
        # optimizer step, whose updated shard is what the next forward gathers: 3 x the parameters per
        # micro-batch, 1.5 x data parallelism's all-reduce (the paper's count), prefetched behind the
        # micro-batch's own forward and backward: only what exceeds them is exposed. One collective per layer
        # (FSDP wraps each transformer block, DeepSpeed ZeRO-3 gathers per module): the stage's layers each pay
        # a collective's latency on 1/layers of the bytes.
        units = np.maximum(np.maximum(first_l, mid_l), 1.0)
        gather = units * coll("all-gather", n_params * 2.0 / units, shard)
        t_micro = 2.0 * gather + reduce_grads(units)
        z3 = micro * np.maximum(0.1 * t_micro, t_micro - compute / micro)
        dp_comm = np.where(z >= 3, np.where(dp_group > 1, z3, 0.0), dp_comm)
    ep_comm = np.zeros_like(tp)
    if m.moe is not None:
        # per MoE layer and micro-batch: dispatch and combine forward, their gradients backward (ep_a2a_time);
        # an fp8 recipe dispatches in fp8 with a scale per 128 elements and combines in bf16 (DeepSeek-V3
        # report section 3.3.2: activations before the up-projection and activation gradients before the
        # down-projection are sent in FP8, both combines in BF16)
        tok = mb * s / cp
        disp_b = 1.0 + 4.0 / 128 if tw.train_dtype == "fp8" else act_b
        a2a = 2.0 * ep_a2a_time(ctx, g, tok, disp_b, eff) + 2.0 * ep_a2a_time(ctx, g, tok, act_b, eff)
        moe_layers_stage = first_l * (m.num_moe_layers / m.num_layers)
        if tw.ep_overlap:
            # DualPipe / Megatron's 1F1B all-to-all overlap: a layer's all-to-alls run behind the computation
            # of another micro-batch; only what exceeds a layer's forward + backward is exposed
            a2a = np.maximum(a2a - compute / micro / np.maximum(first_l, 1.0), 0.0)
        ep_comm = np.where(ep > 1, moe_layers_stage * micro * a2a, 0.0)
    cp_comm = np.zeros_like(tp)
    if np.any(cp > 1):
        kv_layer = m.kv_cache_bytes_per_token(act_b) / m.num_layers * mb * s / cp / np.maximum(
            1.0, np.minimum(tp, float(m.attention.num_kv_heads)))
        # one ring step at its slowest hop (off the node once the ring of cp ranks, tp apart, spans nodes)
        t_pass = comm.collective_time(gpu, "p2p", kv_layer, 2 + 0 * tp, gpus_per_node=node,
                                      busbw_scale=eff.busbw_scale, stride=comm.ring_hop_stride(gpu, tp, cp, node))
        # ring attention (Liu et al. 2023): the forward passes (cp - 1) K/V blocks around the ring behind the
        # GPU's block attention, the backward twice as much (K/V and their gradients) behind 2.5x the compute
        # (flash backward); only the excess is exposed. The block attention of this GPU's s/cp queries over the
        # whole sequence, per layer and micro-batch, at the measured flash rate for s/cp-token blocks.
        from tpplan.engine import attention

        a = m.attention
        d = a.head_dim if a.kind != "mla" else (a.qk_nope_head_dim or 0) + (a.qk_rope_head_dim or 0)
        rate = attention.fwd_bwd_flops_per_s(gpu, d, False, s / cp, tw.flash_kernel) * (
            eff.flops / gpu.calibration.flops.value)
        att = attention_flops_per_token(m, s, causal=True) / m.num_layers * mb * s / cp / tp / rate
        exposed = (np.maximum(0.0, (cp - 1.0) * t_pass - att)
                   + np.maximum(0.0, 2.0 * (cp - 1.0) * t_pass - 2.5 * att))
        if tw.cp_comm == "allgather":
            # Megatron-core --cp-comm-type allgather (the Llama 3 paper's context parallelism): each layer
            # gathers the whole sequence's K/V before its attention and reduce-scatters their gradients after
            # the backward, neither hidden behind the attention (nccl-tests sizes: the gathered total)
            whole = kv_layer * cp
            exposed = (comm.collective_time(gpu, "all-gather", whole, cp, gpus_per_node=node,
                                            busbw_scale=eff.busbw_scale, stride=tp)
                       + comm.collective_time(gpu, "reduce-scatter", whole, cp, gpus_per_node=node,
                                              busbw_scale=eff.busbw_scale, stride=tp))
        cp_comm = np.where(cp > 1, first_l * micro * exposed, 0.0)
    # optimizer update: a fused AdamW (PyTorch fused=True, Apex FusedAdam) streams each tensor it touches
    # once: reads fp32 master, momentum, variance (12 B) and the gradient, writes the three back (12 B) and
    # the bf16 working copy (2 B), for the parameters this rank updates (its dp x cp shard under ZeRO >= 1, or
    # its shard group's under hybrid sharding; Rajbhandari et al. 2020). First-principles bytes at the calibrated
    # HBM efficiency.
    upd = n_params / np.where(z >= 1, np.maximum(shard, 1.0), 1.0)
    optimizer = upd * (26.0 + tw.grad_bytes) / (gpu.hbm.bandwidth_bytes_per_s * eff.hbm)
    step = compute + bubble + tp_comm + pp_comm + dp_comm + ep_comm + cp_comm + optimizer
    peak = gpu.peak_flops(cdt)
    mfu = mf / (step * gpus * peak)
    hfu = hf / (step * gpus * peak)
    return TrainTime(step_time=step, compute_time=compute, bubble_time=bubble, tp_comm=tp_comm,
                     pp_comm=pp_comm, dp_comm=dp_comm, ep_comm=ep_comm, cp_comm=cp_comm, optimizer=optimizer,
                     mfu=mfu, hfu=hfu,
                     tokens_per_s=B * s / step, micro_batches=micro, model_flops=mf,
                     gemm=gemm_s + 0 * tp, attention=attn_s / gpus, elementwise=elem + 0 * tp,
                     expert_streaming=streaming + 0 * tp)


# ---------------------------------------------------------------------------------------------------
# GEMM time by operator (estimate --breakdown)
# ---------------------------------------------------------------------------------------------------

GEMM_OPERATORS = ("qkv_proj", "o_proj", "mlp_up", "mlp_down", "router", "experts_up", "experts_down", "lm_head")
"""The GEMMs of a decoder, as a profiler names them: the attention's QKV (MLA: its q/kv down- and
up-projections) and output projections, the dense MLP's up (gate + up when gated) and down projections, the MoE
router, the routed and shared experts' up and down projections, and the LM head."""


def gemm_operator_params(m: ModelSpec) -> dict[str, float]:
    """Active matmul weight elements a token multiplies through in each GEMM operator, all layers (routed experts
    k times, shared experts once). They sum to ``matmul_params_active``: what the per-operator formulas leave
    (biases, MLA's internal norms) is put on qkv_proj."""
    a, h = m.attention, float(m.hidden_size)
    o = a.num_heads * float(a.v_head_dim if a.kind == "mla" and a.v_head_dim else a.head_dim) * h
    gated = m.mlp.kind == "gated"

    def up_down(d_ff: float) -> tuple[float, float]:
        return (2.0 if gated else 1.0) * h * d_ff, d_ff * h

    L, n_moe = float(m.num_layers), float(m.num_moe_layers)
    up, down = up_down(float(m.mlp.intermediate_size))
    ops = dict.fromkeys(GEMM_OPERATORS, 0.0)
    ops["o_proj"] = L * o
    ops["mlp_up"], ops["mlp_down"] = (L - n_moe) * up, (L - n_moe) * down
    if m.moe is not None:
        e_up, e_down = up_down(float(m.moe.expert_intermediate_size))
        k = float(m.moe.experts_per_token)
        s_ff = float(m.moe.shared_expert_intermediate_size or m.moe.expert_intermediate_size)
        s_up, s_down = up_down(s_ff)
        shared = float(m.moe.num_shared_experts)
        ops["router"] = n_moe * m.moe.num_experts * h
        ops["experts_up"] = n_moe * (k * e_up + shared * s_up)
        ops["experts_down"] = n_moe * (k * e_down + shared * s_down)
    ops["lm_head"] = float(m.vocab_size) * h
    ops["qkv_proj"] = float(m.matmul_params_active) - sum(ops.values())
    return ops


def gemm_operator_shares(m: ModelSpec, weight: dict[str, float]) -> dict[str, float]:
    """Each operator's share of a GEMM term, from per-operator weights (FLOPs or bytes) that the caller built from
    ``gemm_operator_params``; zero-weight operators dropped."""
    total = sum(weight.values())
    return {k: v / total for k, v in weight.items() if v > 0} if total > 0 else {}


def serve_gemm_weights(m: ModelSpec, phase: str, tokens: float, bound: str, tp: int = 1,
                       ep: int = 1) -> dict[str, float]:
    """What an idle replica's GEMM time in ``phase`` (prefill of ``tokens`` prompt tokens, or a decode step of
    ``tokens`` tokens per stage) is attributed by: FLOPs where the GEMMs are compute-bound (a prompt's LM head
    for its last token only), weight bytes where memory-bound (the LM head read whole once; of the routed experts,
    those the step's tokens hit, uniform routing)."""
    p = gemm_operator_params(m)
    if bound == "compute":
        # each operator's FLOPs at its inner dimension's slowdown on a TP rank (GEMM_K0), as step_pieces times them
        p = gemm_k_weights(m, tp, ep, GEMM_K0)
        if phase == "prefill":
            p["lm_head"] = p["lm_head"] / max(tokens, 1.0)
        return p
    if m.moe is not None:
        hit = float(expected_active_experts(m.moe.num_experts, m.moe.experts_per_token, tokens))
        k = float(m.moe.experts_per_token)
        gated = m.mlp.kind == "gated"
        d_e, h = float(m.moe.expert_intermediate_size), float(m.hidden_size)
        n_moe = float(m.num_moe_layers)
        for key, per in (("experts_up", (2.0 if gated else 1.0) * h * d_e), ("experts_down", d_e * h)):
            p[key] = p[key] + n_moe * (hit - k) * per  # the hit experts' weights, not k per token
    return p


def train_gemm_weights(m: ModelSpec, recompute: str, tp: int = 1, ep: int = 1,
                       tokens: float = GEMM_K_REF) -> dict[str, float]:
    """Time per token of each GEMM operator in a training step, in FLOPs at the catalog's rate: forward and backward
    (3 x 2 N), plus a forward of the layers (not the LM head) under full recompute (as _train_attention_split
    counts them), each pass at its inner dimension's slowdown on a TP rank (gemm_k_weights, GEMM_K0)."""
    return gemm_k_weights(m, tp, ep, GEMM_K0, "train", recompute, tokens)
