"""Candidate layouts as a struct of numpy arrays, with feasibility as a bitmask of reasons.

One row per candidate (tp, pp, dp, cp, ep, concurrency). Every rule that can reject a layout is a bit in
:class:`Reason`; rows are never objects and rejections are never exceptions.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from tpplan.catalog.spec import ModelSpec

IArray = npt.NDArray[np.int64]


class Reason(enum.IntFlag):
    """Why a layout is rejected. Names are stable: they appear in JSON ``reasons`` and ``rejected``."""

    HEADS_NOT_DIVISIBLE = 1 << 0
    """Attention heads % tp != 0 (vLLM: 'Total number of attention heads must be divisible by tensor
    parallel size')."""
    KV_HEADS_NOT_DIVISIBLE = 1 << 1
    """tp <= kv_heads and kv_heads % tp != 0, or tp > kv_heads and tp % kv_heads != 0 (vLLM
    QKVParallelLinear ``divide``)."""
    EP_ON_DENSE_MODEL = 1 << 2
    """Expert parallelism requested for a model without experts."""
    EXPERTS_NOT_DIVISIBLE = 1 << 3
    """num_experts % ep != 0."""
    EP_NOT_IN_GROUP = 1 << 4
    """ep does not divide dp x cp x tp (torchtitan ParallelDims; vLLM EP = TP x DP)."""
    PP_EXCEEDS_LAYERS = 1 << 5
    """More pipeline stages than layers."""
    CP_NOT_DIVIDING = 1 << 6
    """Context parallelism that does not divide the sequence."""
    WEIGHTS_DONT_FIT = 1 << 7
    """Weights (plus runtime overhead) exceed the usable memory per GPU."""
    KV_BELOW_ONE_REQUEST = 1 << 8
    """Memory left after weights cannot hold the KV cache of one sequence of ctx tokens (vLLM refuses to
    start)."""
    CONCURRENCY_DOESNT_FIT = 1 << 9
    """The requested number of sequences of ctx tokens does not fit (fewer do)."""
    TRAIN_MEMORY = 1 << 10
    """Training states plus activations exceed the memory per GPU."""
    TTFT_SLO = 1 << 11
    TPOT_SLO = 1 << 12
    BUDGET = 1 << 13
    """$/hour above the budget."""
    CTX_ABOVE_MODEL_MAX = 1 << 14
    """Context longer than the model's max_position_embeddings."""
    BATCH_NOT_DIVISIBLE = 1 << 15
    """Global batch not divisible by micro-batch x dp."""
    MIN_CONCURRENCY = 1 << 16
    """Fewer sequences fit than --min-concurrency asks."""
    DEADLINE = 1 << 17
    """Training run takes longer than --deadline-days."""
    RATE_NEEDS_MORE_GPUS = 1 << 18
    """Serving --rate needs more replicas than --max-gpus allows."""
    CROSS_NODE_TP = 1 << 19
    """Tensor parallelism spans more GPUs than one node / NVLink domain (serving; --allow-cross-node-tp)."""

    @classmethod
    def names(cls, bits: int) -> list[str]:
        return [r.name for r in cls if r.name and int(bits) & int(r)]


@dataclass(frozen=True)
class ReasonInfo:
    """One rejection reason: its bit, the ``tpplan check`` rule that reports it in a deployment file (None:
    search-only reasons), and plain words for reports, --explain and rejected counts."""

    reason: Reason
    rule: str | None
    text: str


REASONS: tuple[ReasonInfo, ...] = (
    ReasonInfo(Reason.HEADS_NOT_DIVISIBLE, "TPP001", "TP does not divide the attention heads"),
    ReasonInfo(Reason.KV_HEADS_NOT_DIVISIBLE, "TPP002", "TP neither divides nor is a multiple of the KV heads"),
    ReasonInfo(Reason.EP_ON_DENSE_MODEL, "TPP003", "expert parallelism on a dense model"),
    ReasonInfo(Reason.EXPERTS_NOT_DIVISIBLE, "TPP004", "EP does not divide the experts"),
    ReasonInfo(Reason.EP_NOT_IN_GROUP, "TPP004", "EP does not divide TP x DP x CP"),
    ReasonInfo(Reason.PP_EXCEEDS_LAYERS, "TPP005", "more pipeline stages than layers"),
    ReasonInfo(Reason.CP_NOT_DIVIDING, "TPP006", "CP does not divide the sequence"),
    ReasonInfo(Reason.WEIGHTS_DONT_FIT, "TPP010", "weights plus runtime overhead exceed the usable memory"),
    ReasonInfo(Reason.KV_BELOW_ONE_REQUEST, "TPP011", "no room for the KV cache of one full-length sequence"),
    ReasonInfo(Reason.CONCURRENCY_DOESNT_FIT, "TPP012", "the requested concurrency does not fit in KV memory"),
    ReasonInfo(Reason.TRAIN_MEMORY, None, "training states plus activations exceed the memory"),
    ReasonInfo(Reason.TTFT_SLO, "TPP020", "time to first token above the SLO"),
    ReasonInfo(Reason.TPOT_SLO, "TPP021", "time per output token above the SLO"),
    ReasonInfo(Reason.BUDGET, "TPP022", "above the budget"),
    ReasonInfo(Reason.CTX_ABOVE_MODEL_MAX, "TPP013", "context above the model's max_position_embeddings"),
    ReasonInfo(Reason.BATCH_NOT_DIVISIBLE, None, "global batch not divisible by micro-batch x DP"),
    ReasonInfo(Reason.MIN_CONCURRENCY, None, "fewer sequences fit than --min-concurrency"),
    ReasonInfo(Reason.DEADLINE, None, "run longer than --deadline-days"),
    ReasonInfo(Reason.RATE_NEEDS_MORE_GPUS, None, "the request rate needs more replicas than --max-gpus allows"),
    ReasonInfo(Reason.CROSS_NODE_TP, "TPP030",
               "tensor parallelism beyond one node / NVLink domain (allow with --allow-cross-node-tp)"),
)
"""The one reason table: the grid sets the bits, JSON names them (``reasons``, ``rejected``), reports and
--explain use the words, ``tpplan check`` reports each with its rule (check.rules.RULES)."""
REASON_TEXT = {r.reason.name: r.text for r in REASONS}
"""Plain words for each rejection reason (reports and explanations)."""
RULE_OF = {r.reason: r.rule for r in REASONS if r.rule is not None}
"""The check rule of each reason a deployment file can have."""


def count_reasons(bitmasks: Iterable[IArray], extra: dict[str, int] | None = None) -> dict[str, int]:
    """Rows rejected per reason over several grids' reason bitmasks (a row can count for several), plus
    ``extra`` counts of rows rejected before evaluation; most frequent first. The ``rejected`` object of
    recommend's and recommend --train's JSON."""
    counts = dict(extra or {})
    for bits in bitmasks:
        for r in Reason:
            n = int(np.count_nonzero(bits & int(r)))
            if n and r.name:
                counts[r.name] = counts.get(r.name, 0) + n
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# eq=False on array holders (here and in memory, perf, comm, planner): == on numpy fields has no truth
# value, so a generated __eq__ could only raise; skipping it also saves generating it at every start.
@dataclass(frozen=True, eq=False)
class Grid:
    """Candidate layouts (parallel arrays, one row per candidate)."""

    tp: IArray
    pp: IArray
    dp: IArray
    cp: IArray
    ep: IArray
    concurrency: IArray
    micro_batch: IArray
    reasons: IArray

    @property
    def gpus(self) -> IArray:
        # EP is carved out of tp x dp x cp (torchtitan); it is not an extra factor of the world size.
        return self.tp * self.pp * self.dp * self.cp

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    def take(self, idx: npt.ArrayLike) -> Grid:
        return Grid(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def tiled(self, times: int) -> Grid:
        """The grid's rows ``times`` times over, in order (``take(np.tile(arange, times))``), made once per grid:
        the GPU types of a search share one grid and evaluate it at the same points."""
        return memo(self, None, ("tiled", times), lambda: self.take(np.tile(np.arange(len(self)), times)))

    @staticmethod
    def concat(parts: list[Grid]) -> Grid:
        """The rows of several grids, in order."""
        return Grid(**{f.name: np.concatenate([getattr(g, f.name) for g in parts]) for f in fields(Grid)})

    def with_reasons(self, extra: IArray) -> Grid:
        return replace(self, reasons=self.reasons | extra)

    def row(self, i: int) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)[i]) for f in fields(self)}



T = TypeVar("T")
_MEMO: weakref.WeakKeyDictionary[Grid, dict[tuple[Any, ...], tuple[Any, Any]]] = weakref.WeakKeyDictionary()


def memo(g: Grid, owner: object, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()`` once per grid, ``owner`` (a model: kept beside the value and compared by identity) and
    ``key``: for what depends on the grid's rows and the model but not on the GPU (a search's GPU types share one
    grid). Arrays in the value are made read-only, so a caller that wrote into one would fail, not corrupt the
    next GPU type's figures. Gone with the grid."""
    per = _MEMO.get(g)
    if per is None:
        per = _MEMO[g] = {}
    full = (id(owner), *key)
    hit = per.get(full)
    if hit is not None and hit[0] is owner:
        return hit[1]
    value = compute()
    for arr in value if isinstance(value, tuple) else (value,):
        if isinstance(arr, np.ndarray):
            arr.flags.writeable = False
    per[full] = (owner, value)
    return value


def make(tp: Any, pp: Any = 1, dp: Any = 1, cp: Any = 1, ep: Any = 1, concurrency: Any = 1,
         micro_batch: Any = 1) -> Grid:
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(x, dtype=np.int64))
                                   for x in (tp, pp, dp, cp, ep, concurrency, micro_batch)))
    tp_, pp_, dp_, cp_, ep_, c_, mb_ = (np.array(a) for a in arrays)
    return Grid(tp=tp_, pp=pp_, dp=dp_, cp=cp_, ep=ep_, concurrency=c_, micro_batch=mb_,
                reasons=np.zeros_like(tp_))


def structural_reasons(model: ModelSpec, g: Grid, seq_len: int | None = None) -> IArray:
    """Bits for the layout rules that depend on the model's shape only (vectorized)."""
    a = model.attention
    r = np.zeros(len(g), dtype=np.int64)
    r |= np.where(a.num_heads % g.tp != 0, int(Reason.HEADS_NOT_DIVISIBLE), 0)
    if a.kind != "mla":
        kv = a.num_kv_heads
        bad = np.where(g.tp <= kv, kv % g.tp != 0, g.tp % kv != 0)
        r |= np.where(bad, int(Reason.KV_HEADS_NOT_DIVISIBLE), 0)
    if model.moe is None:
        r |= np.where(g.ep > 1, int(Reason.EP_ON_DENSE_MODEL), 0)
    else:
        r |= np.where(model.moe.num_experts % g.ep != 0, int(Reason.EXPERTS_NOT_DIVISIBLE), 0)
    r |= np.where((g.dp * g.cp * g.tp) % g.ep != 0, int(Reason.EP_NOT_IN_GROUP), 0)
    r |= np.where(g.pp > model.num_layers, int(Reason.PP_EXCEEDS_LAYERS), 0)
    if seq_len is not None:
        r |= np.where(seq_len % g.cp != 0, int(Reason.CP_NOT_DIVIDING), 0)
    return r


def tp_domain(gpu: Any, node: int) -> int:
    """The most GPUs tensor parallelism spans on the fast fabric: the NVLink / Infinity Fabric domain (8 on an
    HGX board, 2 for H100 NVL pairs, 72 across the trays of a GB200 NVL72 rack), or the node for PCIe-only
    GPUs. Serving searches stay inside it unless --allow-cross-node-tp; ``check`` flags a layout beyond it (TPP030)."""
    from tpplan.engine.comm import fast_domain

    return node if gpu.pcie_only else int(fast_domain(gpu, node))


def divisors(n: int) -> list[int]:
    """Every divisor of ``n``, ascending: trial division up to sqrt(n) (an imported model with 10^9 experts
    took minutes by trying every number up to n)."""
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
        d += 1
    return small + large[::-1]


def enumerate_layouts(model: ModelSpec, max_gpus: int, node_size: int, *, allow_cp: bool = False,
                      seq_len: int | None = None, max_pp: int | None = None,
                      gpu_counts: list[int] | None = None, replicas: bool = True) -> Grid:
    """Every (tp, pp, dp, cp, ep) with tp x pp x dp x cp = n for each GPU count n, built with numpy.

    TP takes the divisors-of-heads sizes that satisfy the KV-head rule (the others would only add
    HEADS_NOT_DIVISIBLE rows); EP the divisors of the expert count that divide
    tp x dp x cp; PP up to the layer count. TP beyond one node is kept (penalised by the time model and
    flagged), so the user sees why it loses.
    """
    if not replicas:  # serving: built without the counts array (a 100,000-GPU search need not build it)
        return _model_parallel_layouts(model, max_gpus, allow_cp, seq_len, max_pp)
    counts = np.array(gpu_counts if gpu_counts else range(1, max_gpus + 1), dtype=np.int64)
    tps = np.array(model.valid_tp(limit=max(counts.max(), 1)), dtype=np.int64)
    pow2 = 2 ** np.arange(0, int(np.log2(max(counts.max(), 1))) + 2, dtype=np.int64)
    pps = np.arange(1, min(model.num_layers, max_pp or model.num_layers, int(counts.max())) + 1)
    cps = pow2 if allow_cp else np.array([1], dtype=np.int64)
    if model.moe is not None:
        eps = np.array(divisors(model.moe.num_experts), dtype=np.int64)
    else:
        eps = np.array([1], dtype=np.int64)
    # cartesian product of tp x pp x cp x ep, then dp from each count
    T, P, C, E = (x.ravel() for x in np.meshgrid(tps, pps, cps, eps, indexing="ij"))
    base = T * P * C
    keep = base <= counts.max()
    T, P, C, E, base = T[keep], P[keep], C[keep], E[keep], base[keep]
    N = counts[None, :]
    ok = (N % base[:, None] == 0)
    i, j = np.nonzero(ok)
    T, P, C, E = T[i], P[i], C[i], E[i]
    D = counts[j] // base[i]
    valid = ((D * C * T) % E == 0)
    g = make(T[valid], P[valid], D[valid], C[valid], E[valid])
    # structurally invalid rows stay in the grid with their reason bits, so rejections can be counted
    return g.with_reasons(structural_reasons(model, g, seq_len))


def _model_parallel_layouts(model: ModelSpec, max_gpus: int, allow_cp: bool, seq_len: int | None,
                            max_pp: int | None) -> Grid:
    """Serving: one row per model-parallel layout (tp, pp, cp, ep) with the fewest data-parallel ranks EP
    needs (vLLM: EP = TP x DP). More DP replicas scale throughput and $/hour together and change neither
    latency, per-GPU throughput nor $ per token, so they can never rank higher; leaving them out keeps the
    search independent of --max-gpus (a 100,000-GPU search is as cheap as a 64-GPU one)."""
    tps = np.array(model.valid_tp(limit=max(max_gpus, 1)), dtype=np.int64)
    pps = np.arange(1, min(model.num_layers, max_pp or model.num_layers, max_gpus) + 1)
    cps = 2 ** np.arange(0, int(np.log2(max(max_gpus, 1))) + 1, dtype=np.int64) if allow_cp else np.ones(1, np.int64)
    eps = np.array(divisors(model.moe.num_experts) if model.moe is not None else [1], dtype=np.int64)
    T, P, C, E = (x.ravel() for x in np.meshgrid(tps, pps, cps, eps, indexing="ij"))
    D = E // np.gcd(E, T * C)  # the fewest replicas that let EP span tp x dp x cp
    keep = T * P * C * D <= max_gpus
    g = make(T[keep], P[keep], D[keep], C[keep], E[keep])
    return g.with_reasons(structural_reasons(model, g, seq_len))
