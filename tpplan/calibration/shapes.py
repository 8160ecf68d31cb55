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
    from tpplan.engine.perf import gemm_inner_dims

    a = model.attention
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
        # each operator as a TP rank runs it (perf.gemm_inner_dims: the shards the time model charges)
        dims = gemm_inner_dims(model, tp)
        for t in tokens:
            for op, (k, n) in dims.items():
                if op == "qkv_proj" and a.kind == "mla":
                    continue  # low-rank pairs, not split out
                if op in ("mlp_up", "mlp_down") and model.num_moe_layers >= model.num_layers:
                    continue  # every MLP is a MoE layer
                if op.startswith("experts_"):
                    assert model.moe is not None
                    e, kk = model.moe.num_experts, model.moe.experts_per_token
                    add(op, tp, t, max(ceil(t * kk / e), 1), n, k, e)  # G groups of the tokens per expert
                else:
                    add(op, tp, t, t, n, k)
    return out
