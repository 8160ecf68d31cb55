"""Serving under load: one engine replica at a request rate, vectorized over a grid (issue 16).

The engine runs steps; each carries one token of every running sequence plus, in some steps, a chunk of
prompt tokens (chunked prefill: decodes first, then prompt tokens up to ``max_num_batched_tokens``). A step's
time comes from ``perf.step_pieces``, which is affine in the step's decode sequences ``n`` and prompt tokens
``p`` on each side of the roofline: ``T(n, p) = max(c0 + cn n + cp p, m0 + mn n + mp p) + o0 + on n + op p``.
The coefficients are read off three evaluations per row (an empty step, a full batch, a full budget of prompt
tokens: the secant over the operating range, which covers MoE expert hits and message-size effects).

Steady state with a mean decode batch ``n`` (each request ``n_in`` prompt and ``n_out`` output tokens):
Little's law on both phases gives ``n_in / n_out`` prompt tokens per decode token, so ``p = n n_in / n_out``
per step on average. The roofline is convex, so prompt tokens are not spread evenly: a share ``f = p / c`` of
steps carries a chunk ``c`` (at least one whole prompt, at most what the decodes leave of the budget) and the
mean step is ``T = f T(n, c) + (1 - f) T(n, 0)``; the rate is ``n / (n_out T)``. Every figure is thus closed
form in ``n``; a rate, an SLO or a closed loop of clients is met by bisection on ``n``.

Saturation: the peak rate over decode batches up to ``min(max_num_seqs, KV-admitted sequences)`` and the step
budget. TTFT = queueing + the residual of the step in progress + the request's own prompt chunks, each passing
every pipeline stage in turn; TPOT = the mean step a decoding sequence sees (with other requests' chunks).
Approximations, stated in docs/metrics.md: queueing as M/D/1 with the engine's per-request capacity
1/saturation_rate as service time (Pollaczek-Khinchine; Kleinrock, Queueing Systems vol. 1, 1975); waiting
time exponential with probability rho of waiting (Kingman); inter-token latency two-valued (steps with and
without a chunk). Engine rules: engines/*.yaml, each value with its file and line in the engine's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from tpplan.engine import comm, perf
from tpplan.engine.grid import Grid
from tpplan.engine.memory import ServeMemory, cached_tokens_per_sequence
from tpplan.engine.workload import Context

FArray = npt.NDArray[np.float64]
PERCENTILES = (50, 90, 99)
BISECTIONS = 22
"""Halvings of the decode-batch interval: 2^-22 ~ 2.4e-7 of the batch limit."""
CLOSED_LOOP_BISECTIONS = 8
"""The closed loop's halvings (2^-8 of its bracket), then one false-position step: its fixed point is
smooth in the batch, so the step lands within ~1e-9 of it (e2e and the design card unchanged) at 10
evaluations instead of 22."""
FRACTIONS = (0.25, 0.5, 0.75, 0.875, 0.9375, 1.0)
"""Batch sizes (shares of the limit) scanned for the saturation peak."""
MAX_UTILIZATION = 0.85
"""Default share of the saturation rate a deployment is planned at (queueing delay grows as 1/(1 - rho))."""


def bisect_last(ok: Callable[[FArray], npt.NDArray[np.bool_]], lo: FArray, hi: FArray,
                steps: int = BISECTIONS) -> FArray:
    """The last point of [lo, hi] (per row) where ``ok`` holds, for ``ok`` true below a threshold and false above
    it, to 2^-steps of the interval (bisection; ``lo`` is returned where even it fails)."""
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        good = ok(mid)
        lo, hi = np.where(good, mid, lo), np.where(good, hi, mid)
    return lo


def md1_wait(rate: FArray, saturation: FArray) -> tuple[FArray, FArray]:
    """Mean queueing wait and utilization of a server whose capacity per request is 1 / saturation: M/D/1,
    Pollaczek-Khinchine (Kleinrock, Queueing Systems vol. 1, 1975); infinite at or past saturation."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.clip(rate / saturation, 0.0, 1.0)
        return np.where(rho < 1, rho / (2.0 * (1.0 - rho)) / saturation, np.inf), rho


def replicas_for(rate: float, sustainable: FArray, dp: FArray,
                 ok: npt.NDArray[np.bool_] | None = None) -> tuple[FArray, FArray]:
    """Replicas serving ``rate`` requests/s, in whole instances of ``dp`` ranks (the ranks EP needs): the fewest
    whose ranks sustain it (inf where a rank sustains nothing, or ``ok`` is false), and the rate per replica
    (0 where no count does)."""
    live = sustainable > 0 if ok is None else ok & (sustainable > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        replicas = np.where(live, dp * np.ceil(rate / np.maximum(dp * sustainable, 1e-300)), np.inf)
        per = np.where(np.isfinite(replicas), rate / np.where(np.isfinite(replicas), replicas, 1.0), 0.0)
    return replicas, per


def kv_admitted(ctx: Context, g: Grid, mem: ServeMemory) -> FArray:
    """Sequences the KV pool holds at the KV a running sequence holds: on average its prompt and half its
    output plus half a block (paged blocks grow with the sequence, vLLM / SGLang), or its whole prompt + output
    reserved on admission (TRT-LLM GUARANTEED_NO_EVICT); a shared prefix is held once per replica
    (ServeMemory.kv_shared), not per sequence. Infinite for a model without a KV cache."""
    assert ctx.serve is not None
    w = ctx.serve
    e = w.engine
    prompt, n_out = float(w.input_len), float(w.output_len)
    held = prompt + n_out if e.kv_reservation == "full" else prompt + n_out / 2.0 + e.block_size / 2.0
    held_arr = np.minimum(cached_tokens_per_sequence(ctx.model, int(np.ceil(held)), g), held + 0 * g.tp)
    if w.shared_cached_tokens:
        held_arr = held_arr - cached_tokens_per_sequence(ctx.model, w.shared_cached_tokens, g)
    pool = np.maximum(mem.kv_pool, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mem.kv_bytes_per_token_per_gpu > 0,
                        np.floor(pool / (mem.kv_bytes_per_token_per_gpu * held_arr)), np.inf)


def replica_shapes(ctx: Context, g: Grid, mem: ServeMemory) -> tuple[npt.NDArray[np.intp] | None,
                                                                     npt.NDArray[np.intp] | None]:
    """(one row of each distinct replica, the distinct replica of every row), or (None, None) where most rows
    are distinct. A replica's engine depends on its TP, PP, CP and EP sizes, its KV pool and, through the rank
    order (tp fastest, then cp, dp, pp: the pipeline hand-off goes ``tp x cp x dp`` ranks away), on whether dp
    puts the next stage off the node, which every dp of at least node / (tp x cp) does alike."""
    if len(g) < 2048:
        return None, None
    node = comm.fabric_node(ctx.gpu, float(ctx.node_size))
    dp_key = np.minimum(g.dp, np.ceil(node / (g.tp * g.cp)))
    return distinct_rows([np.asarray(x, dtype=np.float64) for x in (g.tp, g.pp, g.cp, g.ep, dp_key, mem.kv_pool,
                                                                     mem.kv_bytes_per_token_per_gpu)])


def distinct_rows(keys: list[npt.NDArray[Any]]) -> tuple[npt.NDArray[np.intp] | None, npt.NDArray[np.intp] | None]:
    """(one row of each distinct combination of ``keys``, each row's combination), or (None, None) where more
    than half the rows are distinct (sharing would save less than the gathering costs)."""
    k = len(keys[0])
    order = np.lexsort(keys)
    new = np.zeros(k, dtype=bool)
    new[0] = True
    for x in keys:
        xs = x[order]
        new[1:] |= xs[1:] != xs[:-1]
    if np.count_nonzero(new) > k // 2:
        return None, None
    inverse = np.empty(k, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def _seq_slots(n: FArray, pp: FArray) -> FArray:
    """Sequence slots a step's decodes fill: a micro-batch holds whole sequences, so fewer sequences than
    pipeline stages still run one per stage pass (perf.step_pieces): pp x max(n / pp, min(n, 1))."""
    return np.maximum(n, pp * np.minimum(n, 1.0))


@dataclass(frozen=True, eq=False)
class Coefficients:
    """Per-row affine step-time coefficients (seconds, seconds per decode sequence, per prompt token)."""

    c0: FArray
    cn: FArray
    cp: FArray
    m0: FArray
    mn: FArray
    mp: FArray
    o0: FArray
    on: FArray
    op: FArray
    c1: FArray
    """Slopes over the first pp slots (one sequence in every stage), where low-load latency is judged; the
    ``*n`` slopes hold beyond them."""
    m1: FArray
    o1: FArray
    moe_a: FArray
    """MoE: memory time of all routed experts on the heaviest stage (0 for dense models)..."""
    moe_q: float
    """...of which a step of t tokens per stage leaves moe_a x moe_q ** t unread (moe_q = 1 - k/E)."""
    pp: FArray
    q: float = 1.0
    """Tokens a decoding sequence puts through the model per step (speculative decoding: k + 1)."""

    def step(self, n: npt.ArrayLike, p: npt.ArrayLike, rows: bool = False) -> FArray:
        """Step time with ``n`` decoding sequences and ``p`` prompt tokens."""
        pp = self.pp[:, None] if rows else self.pp
        return self.step_slots(_seq_slots(np.asarray(n, dtype=np.float64), pp), p, rows)

    def step_slots(self, slots: FArray, p: npt.ArrayLike, rows: bool = False) -> FArray:
        """Step time with decodes filling ``slots`` sequence slots (``_seq_slots``) and ``p`` prompt tokens:
        the GEMMs' roofline over compute and memory (perf.gemm_roofline) plus the other terms."""
        compute, memory, other, (cp, mp, op, moe_a, pp) = self._decode_terms(slots, rows)
        if isinstance(p, float) and p == 0.0:
            tokens = slots * self.q
        else:
            p_ = np.asarray(p, dtype=np.float64)
            compute, memory, other = compute + cp * p_, memory + mp * p_, other + op * p_
            tokens = slots * self.q + p_
        if self.moe_q < 1:
            memory = memory - moe_a * self.moe_q ** (tokens / pp)
        return perf.gemm_roofline(compute, memory) + other

    def _decode_terms(self, slots: FArray, rows: bool) -> tuple[FArray, FArray, FArray, tuple[FArray, ...]]:
        """Compute, memory and other time of the decodes filling ``slots`` (the first pp slots at their own
        slope), and the prompt-token slopes, MoE term and pp the callers add."""
        c0, c1, cn, cp, m0, m1, mn, mp, o0, o1, on, op, moe_a, pp = self._cols if rows else self._flat
        first = np.minimum(slots, pp)
        rest = slots - first
        return (c0 + c1 * first + cn * rest, m0 + m1 * first + mn * rest, o0 + o1 * first + on * rest,
                (cp, mp, op, moe_a, pp))

    def step_pair(self, slots: FArray, p: FArray, rows: bool = False) -> tuple[FArray, FArray]:
        """``step_slots(slots, 0.0)`` and ``step_slots(slots, p)`` (a decode step, and the same step with ``p``
        prompt tokens) sharing their decode terms: the load model's inner loops take both at every batch."""
        compute, memory, other, (cp, mp, op, moe_a, pp) = self._decode_terms(slots, rows)
        p_ = np.asarray(p, dtype=np.float64)
        mem_c = memory + mp * p_
        tokens = slots * self.q
        if self.moe_q < 1:
            mem_d = memory - moe_a * self.moe_q ** (tokens / pp)
            mem_c = mem_c - moe_a * self.moe_q ** ((tokens + p_) / pp)
        else:
            mem_d = memory
        return (perf.gemm_roofline(compute, mem_d) + other,
                perf.gemm_roofline(compute + cp * p_, mem_c) + (other + op * p_))

    def take(self, idx: npt.NDArray[np.intp]) -> Coefficients:
        """These rows of the coefficients."""
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(Coefficients)
                                if f.name not in ("moe_q", "q")})

    @staticmethod
    def concat(parts: list[Coefficients]) -> Coefficients:
        """The rows of several coefficient sets (one per GPU type) as one; the model- and workload-level scalars
        must agree."""
        first = parts[0]
        assert all(c.moe_q == first.moe_q and c.q == first.q for c in parts)
        arrays = {f.name: np.concatenate([getattr(c, f.name) for c in parts])
                  for f in fields(Coefficients) if f.name not in ("moe_q", "q")}
        return Coefficients(**arrays, moe_q=first.moe_q, q=first.q)

    @cached_property
    def _flat(self) -> tuple[FArray, ...]:
        return (self.c0, self.c1, self.cn, self.cp, self.m0, self.m1, self.mn, self.mp, self.o0, self.o1, self.on,
                self.op, self.moe_a, self.pp)

    @cached_property
    def _cols(self) -> tuple[FArray, ...]:
        return tuple(x[:, None] for x in self._flat)


def step_points(ctx: Context, g: Grid, n_ref: FArray, p_ref: FArray,
                eff: perf.Eff | None = None) -> tuple[tuple[FArray, FArray, FArray], FArray]:
    """The step model at four points of every row: an empty step, one sequence per stage (pp slots: exact
    where low-load latency is judged), the batch limit ``n_ref``, and one prompt of ``p_ref`` tokens. Its
    compute, memory (with the experts it misses) and other time, each a (4, rows) array, and the memory time of
    the experts an empty step misses (the GPU's part of ``coefficients``)."""
    k = len(g)
    zeros = np.zeros(k)
    n_ref = np.maximum(n_ref, 1.0)
    if k <= 4096:
        # small grids in one call of 4k rows (numpy's per-call overhead dominates there)
        g4 = g.tiled(4)
        s = perf.step_pieces(ctx, g4, np.concatenate([zeros, np.ones(k), n_ref, zeros]),
                             np.concatenate([zeros, zeros, zeros, p_ref]), eff)
        pieces = [s.compute, s.memory + s.moe_unread, s.other]
        unread = s.moe_unread[:k]
    else:
        # large grids point by point: one call over 4k rows of a 40k grid took twice as long as four calls
        # (its temporaries outgrow the allocator's reuse and fault in fresh pages)
        reads = perf.step_reads(ctx, g)  # the stage's weight bytes: the same at every point
        ss = [perf.step_pieces(ctx, g, n, p, eff, reads)
              for n, p in ((zeros, zeros), (np.ones(k), zeros), (n_ref, zeros), (zeros, p_ref))]
        pieces = [np.concatenate(x) for x in zip(*((s.compute, s.memory + s.moe_unread, s.other) for s in ss),
                                                 strict=True)]
        unread = ss[0].moe_unread
    c, m, o = (x.reshape(4, k) for x in pieces)
    return (c, m, o), unread


def coefficients_from(points: tuple[FArray, FArray, FArray], unread: FArray, pp: FArray, n_ref: FArray,
                      p_ref: FArray, moe_q: float, q: float) -> Coefficients:
    """Secant coefficients of the step model from its value at ``step_points``' four points (rows of one or
    several GPU types: every operation is row by row)."""
    n_ref = np.maximum(n_ref, 1.0)
    slots = _seq_slots(n_ref, pp)

    def parts(x: FArray) -> tuple[FArray, FArray, FArray, FArray]:
        x0, x1, xn, xp = x[0], x[1], x[2], x[3]
        first = np.maximum(x1 - x0, 0.0) / pp
        rest = np.where(slots > pp, np.maximum(xn - x1, 0.0) / np.maximum(slots - pp, 1e-300), first)
        return x0, rest, np.maximum(xp - x0, 0.0) / p_ref, first

    c0, cn, cp, c1 = parts(points[0])
    # the experts a step misses are a saturating function of its tokens: kept exact, the rest is linear
    m0, mn, mp, m1 = parts(points[1])
    o0, on, op, o1 = parts(points[2])
    return Coefficients(c0=c0, cn=cn, cp=cp, m0=m0, mn=mn, mp=mp, o0=o0, on=on, op=op, c1=c1, m1=m1, o1=o1,
                        moe_a=unread, moe_q=moe_q, pp=pp, q=q)


def _moe_q(ctx: Context) -> float:
    m = ctx.model
    return 1.0 - m.moe.experts_per_token / m.moe.num_experts if m.moe is not None else 1.0


def coefficients(ctx: Context, g: Grid, n_ref: FArray, p_ref: FArray, eff: perf.Eff | None = None) -> Coefficients:
    """Secant coefficients of the step model, one evaluation for four points: an empty step, one sequence per
    stage (pp slots: exact where low-load latency is judged), the batch limit, and one prompt of tokens."""
    assert ctx.serve is not None
    points, unread = step_points(ctx, g, n_ref, p_ref, eff)
    return coefficients_from(points, unread, g.pp.astype(np.float64), n_ref, p_ref, _moe_q(ctx),
                             float(ctx.serve.verify_tokens))


@dataclass(frozen=True, eq=False)
class _Prep:
    """One GPU type's part of an engine (Engine._prep): the step model at its four points and the engine's limits,
    per row. Engine._finish makes one engine of one or several (the GPU types of one workload)."""

    points: tuple[FArray, FArray, FArray]
    unread: FArray
    pp: FArray
    n_ref: FArray
    p_ref: FArray
    kv_adm: FArray
    one: float
    """Tokens of one scheduler batch (the engine's limit on this GPU; a whole prompt without chunked prefill)."""
    max_num_seqs: float
    scan_all: bool
    """A grid of at most 4,096 rows: every row's saturation peak scanned (Engine._finish)."""
    moe_q: float
    q: float
    n_in: float
    n_out: float
    per_step: float
    chunked: bool

    @property
    def scalars(self) -> tuple[float, float, float, float, float, bool]:
        return self.moe_q, self.q, self.n_in, self.n_out, self.per_step, self.chunked


@dataclass(frozen=True, eq=False)
class Load:
    """The operating point of every row (per replica unless named per deployment)."""

    rate: FArray
    """Requests/s each replica serves (the operating point)."""
    saturation_rate: FArray
    """Requests/s per replica at which the running batch or the step budget is full: above it the queue
    grows without bound."""
    sustainable_rate: FArray
    """Largest rate per replica within --max-utilization of saturation and within the SLOs (0: no rate
    meets the SLOs)."""
    limited_by: npt.NDArray[np.str_]
    """What sets the saturation rate: 'batch' (max_num_seqs), 'kv' (KV blocks), 'step-budget'
    (max_num_batched_tokens)."""
    stable: npt.NDArray[np.bool_]
    step_time: FArray
    running: FArray
    """Mean sequences decoding in a step."""
    prefill_tokens: FArray
    """Mean prompt tokens per step."""
    in_system: FArray
    """Mean requests in the replica (queued, prefilling or decoding): rate x request latency."""
    ttft: FArray
    tpot: FArray
    ttft_pct: dict[int, FArray]
    tpot_pct: dict[int, FArray]
    max_running: FArray
    """min(max_num_seqs, sequences the KV pool holds at their mean length)."""
    kv_admitted: FArray

    def split(self, cuts: npt.NDArray[np.int64]) -> list[Load]:
        """This load's rows cut at ``cuts`` (np.split offsets), one Load per piece."""
        cols: dict[str, list[Any]] = {}
        for f in fields(Load):
            v = getattr(self, f.name)
            if isinstance(v, dict):
                per = {q: np.split(x, cuts) for q, x in v.items()}
                cols[f.name] = [{q: per[q][i] for q in v} for i in range(len(cuts) + 1)]
            else:
                cols[f.name] = np.split(v, cuts)
        return [Load(**{k: c[i] for k, c in cols.items()}) for i in range(len(cuts) + 1)]

    def take(self, idx: npt.NDArray[np.intp]) -> Load:
        """These rows of the load."""
        cols: dict[str, Any] = {f.name: ({q: x[idx] for q, x in v.items()} if isinstance(v, dict) else v[idx])
                                for f in fields(Load) for v in (getattr(self, f.name),)}
        return Load(**cols)

    @property
    def utilization(self) -> FArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.saturation_rate > 0, self.rate / self.saturation_rate, np.inf)


@dataclass(frozen=True, eq=False)
class Engine:
    """The closed forms of one grid: the step model's coefficients, the workload's shape and the engine's
    limits. Everything is a function of the mean decode batch ``n`` (see ``at``)."""

    co: Coefficients
    n_in: float
    """Prompt tokens a request's prefill computes (the prompt less its prefix-cache hits)."""
    n_out: float
    budget: FArray
    """Prompt + decode tokens of one step (all pp micro-batches): pp x max_num_batched_tokens, as vLLM runs a
    scheduler batch per virtual engine (pipeline stage)."""
    chunk_budget: FArray
    """Tokens of one scheduler batch (per row: engine limits differ by GPU memory tier): the most one
    request's chunk can take."""
    chunked: bool
    max_running: FArray
    kv_admitted: FArray
    limited_by: npt.NDArray[np.str_]
    pp: FArray
    n_peak: FArray
    """Decode batch at which the rate peaks (the saturation point)."""
    saturation: FArray
    per_step: float = 1.0
    """Output tokens a decoding sequence gains per step (speculative decoding: the expected accepted
    prefix plus one); a request takes n_out / per_step decode steps."""
    q: float = 1.0
    """Tokens of the step budget a decoding sequence takes (speculative: k + 1)."""
    shapes: tuple[Engine, npt.NDArray[np.intp]] | None = None
    """Where rows repeat a replica (``of``): the engine of the distinct replicas and each row's one there; the
    operating-point solvers then solve each distinct (replica, load) pair once."""

    @property
    def steps(self) -> float:
        """Decode steps of one request."""
        return self.n_out / self.per_step

    @classmethod
    def of(cls, ctx: Context, g: Grid, mem: ServeMemory, eff: perf.Eff | None = None) -> Engine:
        """The engine of every row of ``g``; rows whose replicas are the same (layouts that differ only in
        their number of replicas) share one evaluation."""
        first, inverse = replica_shapes(ctx, g, mem)
        if first is None or inverse is None:
            return cls._of(ctx, g, mem, eff)
        mem_1 = replace(mem, **{f.name: getattr(mem, f.name)[first] for f in fields(mem)
                                if isinstance(getattr(mem, f.name), np.ndarray)})
        distinct = cls._of(ctx, g.take(first), mem_1, eff)
        return replace(distinct.take(inverse), shapes=(distinct, inverse))

    @classmethod
    def _of(cls, ctx: Context, g: Grid, mem: ServeMemory, eff: perf.Eff | None = None) -> Engine:
        return cls._finish([cls._prep(ctx, g, mem, eff)])

    @classmethod
    def of_many(cls, items: list[tuple[Context, Grid, ServeMemory, perf.Eff | None]]) -> Engine | None:
        """The engines of several grids (one per GPU type of one workload) as one, rows in order: each GPU type's
        step model evaluated on its own, the rest (coefficients, limits, the saturation scan) once over every
        row (row by row, the same figures as ``Engine.of`` of each). None where the workload-level settings
        differ or a grid would share solves between its replicas (``of``: large grids)."""
        if any(replica_shapes(ctx, g, mem)[0] is not None for ctx, g, mem, _ in items):
            return None
        preps = [cls._prep(ctx, g, mem, eff) for ctx, g, mem, eff in items]
        if any(p.scalars != preps[0].scalars for p in preps):
            return None
        return cls._finish(preps)

    @staticmethod
    def _prep(ctx: Context, g: Grid, mem: ServeMemory, eff: perf.Eff | None) -> _Prep:
        """The GPU's part of the engine of ``g``: its step model at four points and its limits."""
        assert ctx.serve is not None
        w = ctx.serve
        e = w.engine
        n_in = float(w.prefill_len)  # the prompt tokens a prefill computes (prefix-cache hits are not)
        kv_adm = kv_admitted(ctx, g, mem)
        cap = np.minimum(float(e.max_num_seqs), kv_adm)
        # a step's token budget; without chunked prefill a whole prompt runs in one step
        one = float(e.max_num_batched_tokens) if e.chunked_prefill else max(float(e.max_num_batched_tokens), n_in)
        pp = g.pp.astype(np.float64)
        budget = one * pp
        n_ref = np.maximum(np.minimum(cap, budget), 1.0)
        # the secant in prompt tokens is taken at one prompt (within the budget): the chunk a step most often
        # carries; collectives are concave in the message size, so a farther point would bend the near ones
        p_ref = np.maximum(np.minimum(budget, n_in), 1.0)
        points, unread = step_points(ctx, g, n_ref, p_ref, eff)
        return _Prep(points=points, unread=unread, pp=pp, n_ref=n_ref, p_ref=p_ref, kv_adm=kv_adm, one=one,
                     max_num_seqs=float(e.max_num_seqs), scan_all=len(g) <= 4096, moe_q=_moe_q(ctx),
                     q=float(w.verify_tokens), n_in=n_in, n_out=float(w.output_len),
                     per_step=float(w.decode_tokens_per_step), chunked=e.chunked_prefill)

    @classmethod
    def _finish(cls, preps: list[_Prep]) -> Engine:
        """The engine of the rows of ``preps`` (one workload): coefficients, limits and saturation peaks."""
        p0 = preps[0]
        one_p = len(preps) == 1

        def cat(get: Callable[[_Prep], FArray]) -> FArray:
            return get(p0) if one_p else np.concatenate([get(p) for p in preps])

        pp, n_ref, p_ref, kv_adm, unread = (cat(f) for f in (lambda p: p.pp, lambda p: p.n_ref, lambda p: p.p_ref,
                                                             lambda p: p.kv_adm, lambda p: p.unread))
        c, m, o = (p0.points[i] if one_p else np.concatenate([p.points[i] for p in preps], axis=1)
                   for i in range(3))
        n_in, n_out, q, per_step = p0.n_in, p0.n_out, p0.q, p0.per_step
        co = coefficients_from((c, m, o), unread, pp, n_ref, p_ref, p0.moe_q, q)
        steps = n_out / per_step
        rows = len(pp)
        one = cat(lambda p: np.full(len(p.pp), p.one))
        seqs = p0.max_num_seqs if one_p else cat(lambda p: np.full(len(p.pp), p.max_num_seqs))
        cap = np.minimum(seqs, kv_adm)
        budget = one * pp
        # decodes (q tokens each) plus the prompt tokens they bring (n I / steps per step) fit the step budget
        n_budget = budget / (q + n_in / steps)
        n_max = np.maximum(np.minimum(cap, n_budget), 0.0)
        limited = np.where(n_budget < cap, "step-budget", np.where(kv_adm < seqs, "kv", "batch"))
        proto = cls(co=co, n_in=n_in, n_out=n_out, budget=budget, chunk_budget=one, chunked=p0.chunked,
                    max_running=cap, kv_admitted=kv_adm, limited_by=limited, pp=pp, n_peak=n_max,
                    saturation=np.zeros(rows), per_step=per_step, q=q)
        # the rate grows with the batch (the step time is affine in it with positive intercepts: T(n) / n falls),
        # except near the budget's edge where prompt chunks get squeezed into what the decodes leave: where the
        # batch limit leaves a whole chunk's room (then so does every smaller batch) the peak is at the limit;
        # elsewhere take the peak over a few batch sizes up to it. A small grid (<= 4,096 rows) has every row
        # scanned, in one call (numpy's per-call cost dominates)
        if all(p.scan_all for p in preps):
            roomy = np.zeros(rows, dtype=bool)
        else:
            with np.errstate(invalid="ignore"):
                p_max, room_max, _, _ = proto._mix(n_max)
            roomy = (n_max > 0) & (room_max >= np.maximum(n_in, p_max))
            roomy &= ~np.concatenate([np.full(len(p.pp), p.scan_all) for p in preps])
        n_peak, sat = n_max.copy(), np.zeros(rows)
        j = np.full(rows, len(FRACTIONS) - 1)
        part = None if one_p else np.repeat(np.arange(len(preps)), [len(p.pp) for p in preps])
        for rows_, scan in ((np.flatnonzero(roomy), False), (np.flatnonzero(~roomy), True)):
            if not rows_.size:
                continue
            # one 2-D call where a part has at most 4,096 such rows, column by column where it has more (as
            # coefficients: 2-D temporaries fault in fresh pages): each part as Engine.of would take it
            if part is None:
                small = np.full(rows_.size, rows_.size <= 4096)
            else:
                counts = np.bincount(part[rows_], minlength=len(preps))
                small = counts[part[rows_]] <= 4096
            for idx, two_d in ((rows_[small], True), (rows_[~small], False)):
                if not idx.size:
                    continue
                sub = proto._cycle_rows(idx) if idx.size < rows else proto
                k = np.array(FRACTIONS if scan else FRACTIONS[-1:])
                grid_n = n_max[idx, None] * k[None, :]
                if two_d:
                    lam = sub.rate_at(grid_n, rows=True)
                else:
                    lam = np.stack([sub.rate_at(np.ascontiguousarray(grid_n[:, i])) for i in range(k.size)],
                                   axis=1)
                lam = np.where(np.isfinite(lam), lam, 0.0)
                jr = np.argmax(lam, axis=1)
                pick = np.arange(idx.size)
                n_peak[idx], sat[idx] = grid_n[pick, jr], lam[pick, jr]
                if scan:
                    j[idx] = jr
        return replace(proto, n_peak=n_peak, saturation=sat,
                       limited_by=np.where(j < len(FRACTIONS) - 1, "prefill-chunks", limited))

    @staticmethod
    def concat(parts: list[Engine]) -> Engine | None:
        """The rows of several engines (one per GPU type of a search) as one, so the operating-point solvers
        run once over every GPU type's rows instead of once per type (their cost on a few hundred rows is
        numpy's per-call overhead); None when the workload-level settings differ."""
        e0 = parts[0]
        scalars = ("n_in", "n_out", "chunked", "per_step", "q")
        if any(getattr(e, a) != getattr(e0, a) for e in parts for a in scalars) or any(
                e.co.moe_q != e0.co.moe_q or e.co.q != e0.co.q for e in parts):
            return None
        arrays: dict[str, Any] = {f.name: np.concatenate([getattr(e, f.name) for e in parts])
                                  for f in fields(Engine) if f.name not in (*scalars, "co", "shapes")}
        return Engine(co=Coefficients.concat([e.co for e in parts]), **{a: getattr(e0, a) for a in scalars},
                      **arrays)

    # ---- closed forms in the decode batch n ------------------------------------------------------------

    def rate_at(self, n: FArray, rows: bool = False) -> FArray:
        """The rate at mean decode batch ``n`` (``at``'s 'rate' alone: the bisections' inner loop)."""
        pp = self.pp[:, None] if rows else self.pp
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            p, room, c, f = self._mix(n, rows)
            t_dec, t_chunk = self.co.step_pair(_seq_slots(n, pp), c, rows)
            T = t_dec + f * (t_chunk - t_dec)
            rate = np.where(n > 0, n / (self.steps * T), 0.0)
            return np.where(p <= room * (1 + 1e-9), rate, np.nan)

    def _mix(self, n: FArray, rows: bool = False) -> tuple[FArray, FArray, FArray, FArray]:
        """The step mix at mean decode batch ``n`` (``at`` states it): prompt tokens per step p, the budget's
        room beside the decodes, the chunk c a prompt-carrying step takes, and the share f of steps carrying
        one (call under np.errstate: room and c may be 0 or inf)."""
        budget = self.budget[:, None] if rows else self.budget
        p = n * (self.n_in / self.steps)
        room = np.maximum(budget - n * self.q, 1.0)
        c = np.minimum(np.maximum(self.n_in, p), room)
        return p, room, c, np.clip(p / c, 0.0, 1.0)

    def at(self, n: FArray, clients: FArray | None = None, rows: bool = False) -> dict[str, FArray]:
        """Everything at mean decode batch ``n`` (per row; ``rows``: n has a second axis of candidates).

        Prompt tokens per step p = n I / O (Little's law on both phases); a step carries a prompt chunk with
        probability f = p / c, where a chunk is at least one whole prompt and at most what the decodes leave
        of the budget (c = min(max(I, p), budget - n)); the mean step T = f t_chunk + (1 - f) t_decode, and
        the rate n / (O T)."""
        def col(x: FArray) -> FArray:
            return x[:, None] if rows else x

        co = self.co
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            p, room, c, f = self._mix(n, rows)
            t_dec, t_chunk = co.step_pair(_seq_slots(n, col(self.pp)), c, rows)
            T = t_dec + f * (t_chunk - t_dec)
            rate = np.where(n > 0, n / (self.steps * T), 0.0)
            rate = np.where(p <= room * (1 + 1e-9), rate, np.nan)  # prompts no longer fit beside the decodes
            # the steps a decoding sequence sees carry other requests' prompts: every arrival in an open loop,
            # the other clients' in a closed loop
            others = 1.0 if clients is None else np.maximum(clients - 1.0, 0.0) / np.maximum(clients, 1.0)
            f_seen = f * others
            # a decoding sequence is in every step it waits for, beside the others decoding (Poisson arrivals
            # see time averages: n others in an open loop; the other clients' share in a closed one)
            n_seen = 1.0 + n * others
            t_dec_seen, t_chunk_seen = co.step_pair(_seq_slots(n_seen, col(self.pp)), c, rows)
            tpot = (t_dec_seen + f_seen * (t_chunk_seen - t_dec_seen)) / self.per_step
            # a request's own prompt: chunks of what decodes leave of the budget, each passing every pipeline
            # stage in turn (one request is in one in-flight micro-batch at a time, vLLM V1)
            own = (np.minimum(self.n_in, np.maximum(col(self.chunk_budget) - n * self.q / col(self.pp), 1.0))
                   if self.chunked
                   else np.full_like(n, self.n_in))
            chunks = np.ceil(self.n_in / own)
            # its micro-batch carries its chunk (and its share of the step's other prompt tokens), at most one
            # scheduler batch, through every stage: pp x the stage time of that micro-batch
            mb_tokens = np.minimum(np.maximum(c / col(self.pp), own), col(self.chunk_budget))
            chunk_lat = co.step(n, mb_tokens * col(self.pp), rows)
        return {"rate": rate, "T": T, "p": p, "f": f_seen, "t_dec": t_dec_seen / self.per_step,
                "t_chunk": t_chunk_seen / self.per_step,
                "tpot": tpot, "chunks": chunks, "chunk_lat": chunk_lat}

    def _cycle_at(self, n: FArray) -> FArray:
        """``steps x T``: the time one request's decode steps take at mean decode batch ``n`` (``rate_at`` =
        n / this); nan where the prompts no longer fit beside the decodes."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            p, room, c, f = self._mix(n)
            t_dec, t_chunk = self.co.step_pair(_seq_slots(n, self.pp), c)
            T = self.steps * (t_dec + f * (t_chunk - t_dec))
            return np.where(p <= room * (1 + 1e-9), T, np.nan)

    def _n_for(self, target: FArray) -> FArray:
        """The decode batch in [0, n_peak] at which the rate reaches ``target``: the last n with rate(n) <=
        target, to 2^-BISECTIONS of n_peak, as bisection would find it (the rate grows with n there).

        Solved as the root of psi(n) = target x steps x T(n) - n (positive below the root, negative above),
        which is nearly affine in n (the step time is affine in the batch on each side of the roofline), by
        false position with the Illinois modification (Dowell & Jarratt, BIT 11, 1971), a bisection where a
        step would leave the bracket, and only over the rows still open once a quarter of them have closed
        (each row's answer its own: a closed row is never moved again)."""
        n_peak = self.n_peak
        lo = np.zeros_like(n_peak)
        hi = n_peak.copy()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # at n = 0 no prompt rides along (f = 0): the cycle is steps x an empty decode step (_cycle_at(0))
            f_lo = target * (self.steps * self.co.step_slots(lo, 0.0)) - lo
            f_hi = target * (hi / self.saturation) - hi  # the rate at n_peak is the saturation rate
        # a root at an end: nothing to solve (a zero target, or one at or past the rate at n_peak)
        at_lo = ~(f_lo > 0)
        out = np.where(at_lo, lo, hi)
        idx = np.flatnonzero(~at_lo & ~(f_hi >= 0))
        eng = self._cycle_rows(idx) if idx.size < len(n_peak) else self
        lo, hi, f_lo, t = lo[idx], hi[idx], f_lo[idx], target[idx]
        f_hi = np.where(np.isfinite(f_hi[idx]), f_hi[idx], -hi)
        tol = hi * 2.0 ** -BISECTIONS
        side = np.zeros(len(idx), dtype=np.int8)  # the end the last step kept: +1 hi, -1 lo
        for _ in range(4 * BISECTIONS):
            open_ = hi - lo > tol
            n_open = int(np.count_nonzero(open_))
            if n_open == 0:
                break
            if n_open <= 3 * len(idx) // 4:  # go on with the open rows only
                out[idx] = lo
                keep = np.flatnonzero(open_)
                idx, eng = idx[keep], eng._cycle_rows(keep)
                lo, hi, f_lo, f_hi, t, tol = (a[keep] for a in (lo, hi, f_lo, f_hi, t, tol))
                side, open_ = side[keep], open_[keep]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                x = lo + f_lo * (hi - lo) / (f_lo - f_hi)
                x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
                cyc = eng._cycle_at(x)
                fx = t * cyc - x
                # the side is judged as rate_at judges it (x / cycle <= target): the same test bisection makes,
                # which psi's sign can miss by a rounding where the numbers are tiny
                ok = x / cyc <= t
            # (closed rows stay as they are: each row's answer is its own, whichever rows are solved with it)
            below = open_ & ok  # nan (the prompts do not fit) counts as past the root
            above = open_ & ~ok
            # Illinois: an end kept twice in a row has its value halved, so the next point lands past the root
            f_hi = np.where(below & (side == 1), 0.5 * f_hi, f_hi)
            f_lo = np.where(above & (side == -1), 0.5 * f_lo, f_lo)
            lo, f_lo = np.where(below, x, lo), np.where(below, fx, f_lo)
            hi, f_hi = np.where(above, x, hi), np.where(above, np.where(np.isfinite(fx), fx, -x), f_hi)
            hi = np.where(open_ & (fx == 0), x, hi)  # on the root
            side = np.where(below, 1, np.where(above, -1, side)).astype(np.int8)
        out[idx] = lo
        return out

    def _cycle_rows(self, idx: npt.NDArray[np.intp]) -> Engine:
        """These rows of what ``_cycle_at`` and ``rate_at`` read (the step coefficients, budget and pp), for the
        rate solvers' inner loops; the engine's other arrays are left as they are (not row-aligned: use take for
        a whole engine). Taking every array cost the solver as much as a step of it on large grids."""
        return replace(self, co=self.co.take(idx), budget=self.budget[idx], pp=self.pp[idx], shapes=None)

    def take(self, idx: npt.NDArray[np.intp]) -> Engine:
        """These rows of the engine."""
        arrays = {f.name: getattr(self, f.name)[idx] for f in fields(Engine)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        return replace(self, co=self.co.take(idx), shapes=None, **arrays)

    def _per_pair(self, x: FArray, solve: Callable[[Engine, FArray], Load]) -> Load | None:
        """``solve(engine, x)`` once per distinct (replica, x) pair, spread back over the rows; None where the
        rows do not repeat replicas or most pairs are distinct."""
        if self.shapes is None:
            return None
        distinct, inverse = self.shapes
        first, pair = distinct_rows([x, inverse])
        if first is None or pair is None:
            return None
        return solve(distinct.take(inverse[first]), x[first]).take(pair)

    def _residual(self, a: dict[str, FArray], clients: FArray | None) -> FArray:
        if clients is None:
            return a["T"] / 2.0
        return a["T"] / 2.0 * np.maximum(clients - 1.0, 0.0) / np.maximum(clients, 1.0)

    def _wait(self, rate: FArray, clients: FArray | None) -> tuple[FArray, FArray]:
        """Mean queueing wait and utilization: M/D/1 with the engine's capacity per request (1 / saturation
        rate) as the service time (Pollaczek-Khinchine); none in a closed loop within saturation."""
        wait, rho = md1_wait(rate, self.saturation)
        return (np.zeros_like(rate), rho) if clients is not None else (wait, rho)

    def _load(self, n: FArray, rate: FArray, clients: FArray | None, extra_wait: FArray | None,
              sustainable: FArray | None, stable: npt.NDArray[np.bool_]) -> Load:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._load_(n, rate, clients, extra_wait, sustainable, stable)

    def _load_(self, n: FArray, rate: FArray, clients: FArray | None, extra_wait: FArray | None,
               sustainable: FArray | None, stable: npt.NDArray[np.bool_]) -> Load:
        a = self.at(n, clients)
        wait, rho = self._wait(rate, clients)
        if extra_wait is not None:
            wait = wait + extra_wait
        residual = self._residual(a, clients)
        fixed = residual + a["chunks"] * a["chunk_lat"]
        inf = np.full_like(rate, np.inf)
        ttft = np.where(stable, wait + fixed, inf)
        tpot = np.where(stable, a["tpot"], inf)
        ttft_pct = {q: np.where(stable, wait_quantile(wait, rho, q, clients is None) + fixed, inf)
                    for q in PERCENTILES}
        tpot_pct = {q: np.where(stable, np.where(a["f"] > 1.0 - q / 100.0, a["t_chunk"], a["t_dec"]), inf)
                    for q in PERCENTILES}
        return Load(rate=rate, saturation_rate=self.saturation,
                    sustainable_rate=self.saturation if sustainable is None else sustainable,
                    limited_by=self.limited_by, stable=stable, step_time=np.where(stable, a["T"], inf),
                    running=np.where(stable, n, inf), prefill_tokens=np.where(stable, a["p"], inf),
                    in_system=np.where(stable, rate * (ttft + self.n_out * tpot), inf), ttft=ttft, tpot=tpot,
                    ttft_pct=ttft_pct, tpot_pct=tpot_pct, max_running=self.max_running,
                    kv_admitted=self.kv_admitted)

    # ---- operating points -------------------------------------------------------------------------------

    def evaluate(self, rate: FArray, sustainable: FArray | None = None) -> Load:
        """Open loop at ``rate`` requests/s per replica; above saturation the row is unstable (inf)."""
        rate = np.asarray(rate, dtype=np.float64) + 0.0 * self.saturation
        shared = self._per_pair(rate, lambda e, r: e.evaluate(r))
        if shared is not None:
            return shared if sustainable is None else replace(shared, sustainable_rate=sustainable)
        stable = (rate < self.saturation * (1 - 1e-9)) | (rate <= 0)
        n = self._n_for(np.where(stable, rate, 0.0))
        return self._load(n, rate, None, None, sustainable, stable)

    def closed_loop(self, clients: FArray, sustainable: FArray | None = None) -> Load:
        """``clients`` sequences per replica, each sending its next request when the last one finishes.
        Little's law on the cycle: rate = clients / (TTFT + O x TPOT) and decoders n = rate x O x TPOT, solved
        for n by bisection (a lone client's prompt chunks never share a step with its own decode). Beyond
        saturation the rate is the saturation rate and the excess clients wait their turn."""
        clients = np.asarray(clients, dtype=np.float64) + 0.0 * self.saturation
        shared = self._per_pair(clients, lambda e, c: e.closed_loop(c))
        if shared is not None:
            return shared if sustainable is None else replace(shared, sustainable_rate=sustainable)
        lo = np.zeros_like(clients)
        hi = np.minimum(clients, self.n_peak)

        others = np.maximum(clients - 1.0, 0.0) / np.maximum(clients, 1.0)

        def cycle(n: FArray) -> tuple[FArray, FArray]:
            # at()'s TPOT and TTFT for a closed loop, lean (the bisection's inner loop): one request's cycle
            # is its TTFT (residual of the step in progress + its chunks) and O decode steps
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                _, _, c, f = self._mix(n)
                t_dec, t_chunk = self.co.step_pair(_seq_slots(n, self.pp), c)
                T = t_dec + f * (t_chunk - t_dec)
                d_seen, c_seen = self.co.step_pair(_seq_slots(1.0 + n * others, self.pp), c)
                tpot = (d_seen + f * others * (c_seen - d_seen)) / self.per_step
                own = (np.minimum(self.n_in, np.maximum(self.chunk_budget - n * self.q / self.pp, 1.0))
                       if self.chunked
                       else self.n_in)
                mb = np.minimum(np.maximum(c / self.pp, own), self.chunk_budget)
                ttft = T / 2.0 * others + np.ceil(self.n_in / own) * self.co.step(n, mb * self.pp)
            return tpot, ttft + self.n_out * tpot

        def gap(n: FArray) -> FArray:
            """Decoders the cycle at n implies, less n: >= 0 up to the fixed point (it falls through it)."""
            tpot, busy = cycle(n)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.nan_to_num(clients * self.n_out * tpot / busy - n, nan=-1.0)

        g_lo, g_hi = gap(lo), gap(hi)
        for _ in range(CLOSED_LOOP_BISECTIONS):
            mid = 0.5 * (lo + hi)
            g_mid = gap(mid)
            ok = g_mid >= 0
            lo, g_lo = np.where(ok, mid, lo), np.where(ok, g_mid, g_lo)
            hi, g_hi = np.where(ok, hi, mid), np.where(ok, g_hi, g_mid)
        # then one false-position step inside the last bracket (the gap is smooth there), kept where it holds
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where((g_lo > 0) & (g_hi < 0), lo + g_lo * (hi - lo) / (g_lo - g_hi), lo)
        x = np.clip(np.nan_to_num(x, nan=0.0), lo, hi)
        lo = np.where(gap(x) >= -1e-9 * np.maximum(x, 1.0), x, lo)
        tpot, busy = cycle(lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.minimum(clients / busy, self.saturation)
            excess = np.maximum(clients / np.maximum(rate, 1e-300) - busy, 0.0)
        return self._load(lo, rate, clients, excess, sustainable, np.ones(len(lo), dtype=bool))

    def sustainable(self, max_utilization: float, ttft_slo: float | None, tpot_slo: float | None,
                    percentile: int | None) -> FArray:
        """Largest rate per replica within ``max_utilization`` x saturation at which TTFT and TPOT (mean, or
        the given percentile) meet their SLOs; 0 where none does (monotone in the rate: bisection)."""
        top = self.saturation * max_utilization
        if ttft_slo is None and tpot_slo is None:
            return top
        if self.shapes is not None:  # once per distinct replica
            distinct, inverse = self.shapes
            return distinct.sustainable(max_utilization, ttft_slo, tpot_slo, percentile)[inverse]

        def meets(n: FArray) -> npt.NDArray[np.bool_]:
            ld = self._load(n, self.at(n)["rate"], None, None, None, np.ones(len(n), dtype=bool))
            ttft = ld.ttft if percentile is None else ld.ttft_pct[percentile]
            tpot = ld.tpot if percentile is None else ld.tpot_pct[percentile]
            ok = np.isfinite(ld.rate).copy()
            if ttft_slo is not None:
                ok &= ttft <= ttft_slo
            if tpot_slo is not None:
                ok &= tpot <= tpot_slo
            return ok

        # bisection on the decode batch, below the batch of the utilization cap (the rate grows with it)
        n_top = self._n_for(top)
        ok_top = meets(n_top)
        lo = bisect_last(meets, np.zeros_like(top), n_top.copy())
        rate = self.at(lo)["rate"]
        none = ~meets(np.maximum(lo, n_top * 1e-6))
        return np.where(ok_top, top, np.where(none | ~np.isfinite(rate), 0.0, rate))


def wait_quantile(mean_wait: FArray, rho: FArray, q: int, open_loop: bool) -> FArray:
    """The q-th percentile of the queueing wait: zero with probability 1 - rho, else exponential with mean
    mean_wait / rho (Kingman's heavy-traffic approximation of the M/G/1 waiting time)."""
    if not open_loop:
        return mean_wait
    tail = 1.0 - q / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(rho > tail, mean_wait / np.maximum(rho, 1e-300) * np.log(rho / tail), 0.0)
    return np.where(np.isfinite(mean_wait), x, np.inf)
