"""The GEMM shapes a catalog model runs, per tensor-parallel size and tokens per step: what
``benchmarks/gpu_microbench.py --model`` measures and ``tpplan calibrate gemm`` checks the time model against.

Each shape is one operator of ``perf.GEMM_OPERATORS`` as a serving engine shards it under TP (vLLM's
QKVParallelLinear / RowParallelLinear / MergedColumnParallelLinear; routed experts TP-sharded, every expert on
every rank, vLLM's default without --enable-expert-parallel): M tokens x N outputs x K inputs, ``groups`` > 1
for the experts (G equal groups of M rows: the expected tokens per expert under uniform routing, M x k / E).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from tpplan.catalog.spec import ModelSpec

TOKENS = (1, 8, 32, 128, 512, 2048, 8192, 16384)
"""Tokens per step measured by default: decode batches (1-512) and prompt chunks (2k-16k)."""


@dataclass(frozen=True)
class GemmShape:
    op: str
    tp: int
    tokens: int
    m: int
    n: int
    k: int
    groups: int = 1

    @property
    def benchmark(self) -> str:
        """The CSV benchmark name: dense GEMMs as torch.matmul, expert groups as one batched matmul."""
        return "gemm_torch_matmul" if self.groups == 1 else f"gemm_grouped_bmm_x{self.groups}"

    @property
    def flops(self) -> float:
        return 2.0 * self.groups * self.m * self.n * self.k


def gemm_shapes(model: ModelSpec, tps: tuple[int, ...] = (1, 2, 4, 8),
                tokens: tuple[int, ...] = TOKENS) -> list[GemmShape]:
    """Every GEMM of ``model`` at each TP size that divides its heads, for each number of tokens (deduplicated:
    the first operator of a repeated shape names it). MLA models: the output projection and the MLP / experts
    (their attention projections are low-rank pairs this list does not split)."""
    a, h = model.attention, model.hidden_size
    gated = model.mlp.kind == "gated"
    out: list[GemmShape] = []
    seen: set[tuple[int, int, int, int]] = set()

    def add(op: str, tp: int, t: int, m: int, n: int, k: int, groups: int = 1) -> None:
        key = (m, n, k, groups)
        if m >= 1 and n >= 1 and k >= 1 and key not in seen:
            seen.add(key)
            out.append(GemmShape(op, tp, t, m, n, k, groups))

    for tp in tps:
        if a.num_heads % tp:
            continue
        for t in tokens:
            if a.kind != "mla":
                kv = max(a.num_kv_heads // tp, 1)  # KV heads replicated once tp exceeds them
                add("qkv_proj", tp, t, t, (a.num_heads // tp + 2 * kv) * a.head_dim, h)
                add("o_proj", tp, t, t, h, a.num_heads // tp * a.head_dim)
            else:
                add("o_proj", tp, t, t, h, a.num_heads // tp * (a.v_head_dim or a.head_dim))
            if model.num_moe_layers < model.num_layers:
                d = model.mlp.intermediate_size // tp
                add("mlp_up", tp, t, t, (2 if gated else 1) * d, h)
                add("mlp_down", tp, t, t, h, d)
            if model.moe is not None:
                e, kk = model.moe.num_experts, model.moe.experts_per_token
                d_e = model.moe.expert_intermediate_size // tp
                per = max(ceil(t * kk / e), 1)
                add("router", tp, t, t, e, h)
                add("experts_up", tp, t, per, (2 if gated else 1) * d_e, h, e)
                add("experts_down", tp, t, per, h, d_e, e)
            add("lm_head", tp, t, t, ceil(model.vocab_size / tp), h)
    return out
