"""Collective communication time (alpha-beta with a fitted bandwidth ramp), vectorized over numpy arrays.

Conventions follow nccl-tests ``doc/PERFORMANCE.md``: ``algbw = S / t``; all-reduce
``busbw = algbw * 2(n-1)/n``; reduce-scatter, all-gather and all-to-all ``busbw = algbw * (n-1)/n``.
``S`` is the per-rank buffer size in bytes (the nccl-tests "size" column).

Model of one collective on one fabric level (Hockney alpha-beta, e.g. Thakur, Rabenseifner & Gropp 2005,
with a bandwidth ramp fitted to nccl-tests sweeps)::

    t = steps(n) * alpha + S_bus / B * (1 + (ramp_bytes / S) ** ramp_exponent)

``steps``: ring all-reduce 2(n-1), reduce-scatter / all-gather / all-to-all (n-1). ``B`` is the achieved
asymptotic bus bandwidth per GPU, one direction (nccl-tests busbw at >= 1 GiB). The ramp term captures what
plain alpha-beta misses between 64 KiB and 256 MiB (fewer channels and protocol switches for mid-size
messages); it vanishes for large S. ``alpha`` is fitted to the smallest messages, ``B``, ``ramp_bytes`` and
``ramp_exponent`` to sizes >= 1 MiB by least squares in log space (:func:`fit_sweep`).

Groups larger than one level (scale-up domain, node) are hierarchical (NCCL's 2-D ring / tree across
nodes): reduce-scatter inside the domain, all-reduce of the 1/n_in shard across domains on the slower
level's per-GPU bandwidth (every GPU drives its own NIC), all-gather inside the domain.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from tpplan.catalog.spec import CalibrationSpec, CollectiveCalibration, GpuSpec

if TYPE_CHECKING:
    from tpplan import result_types as rt

Op = Literal["all-reduce", "all-gather", "reduce-scatter", "all-to-all", "p2p"]
Algo = Literal["auto", "ring", "tree", "nvls"]
FArray = npt.NDArray[np.float64]
OPS: tuple[str, ...] = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "p2p")


def bus_factor(op: str, n: npt.ArrayLike) -> FArray:
    """nccl-tests bus-bandwidth factor: busbw = algbw * factor (``doc/PERFORMANCE.md``)."""
    n = np.asarray(n, dtype=np.float64)
    if op == "all-reduce":
        return np.where(n > 1, 2.0 * (n - 1) / n, 0.0)
    if op in ("all-gather", "reduce-scatter", "all-to-all"):
        return np.where(n > 1, (n - 1) / n, 0.0)
    if op == "p2p":
        return np.ones_like(n)
    raise ValueError(f"unknown collective {op!r}; valid: {', '.join(OPS)}")


def steps(op: str, n: npt.ArrayLike, algo: str = "ring") -> FArray:
    """Latency steps: ring all-reduce 2(n-1); tree all-reduce 2 log2(n); RS/AG/A2A (n-1); p2p 1."""
    n = np.asarray(n, dtype=np.float64)
    if op == "p2p":
        return np.ones_like(n)
    if op == "all-reduce":
        if algo == "tree":
            return np.where(n > 1, 2.0 * np.ceil(np.log2(np.maximum(n, 1))), 0.0)
        return np.where(n > 1, 2.0 * (n - 1), 0.0)
    return np.where(n > 1, n - 1, 0.0)


def level_time(op: str, size_bytes: npt.ArrayLike, n: npt.ArrayLike, cal: CollectiveCalibration,
               algo: str = "auto", busbw_scale: npt.ArrayLike = 1.0) -> FArray:
    """Time of one collective over ``n`` ranks that all sit on one fabric level."""
    s = np.asarray(size_bytes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    bw = cal.busbw_bytes_per_s
    if algo == "ring" and cal.ring_busbw_bytes_per_s:
        bw = cal.ring_busbw_bytes_per_s
    if op != "all-reduce" and cal.ring_busbw_bytes_per_s:
        # NVLS accelerates all-reduce only; other collectives run at ring speed (nccl-tests #212).
        bw = cal.ring_busbw_bytes_per_s
    bw_eff = bw * np.asarray(busbw_scale, dtype=np.float64)
    # p2p moves the whole buffer over one link: bus factor 1.
    s_bus = s * bus_factor(op, n)
    s1 = np.maximum(s, 1.0)  # a floor of one byte: no division by zero below
    ramp = np.where(s > 0, (cal.ramp_bytes / s1) ** cal.ramp_exponent, 0.0)
    alpha_steps = steps(op, n, "tree" if algo == "tree" else "ring")
    # alpha_per_step was fitted for ring steps at fitted_ranks; NVLS/tree keep the fitted latency.
    t = alpha_steps * cal.alpha_per_step_s + s_bus / bw_eff * (1.0 + ramp)
    if cal.correction_sizes_bytes and cal.correction:
        # measured / fitted busbw by message size (tpplan calibrate); busbw scales as 1 / time
        corr = np.interp(np.log(s1), _log_sizes(tuple(cal.correction_sizes_bytes)), cal.correction)
        t = t / corr
    return np.where(n > 1, t, 0.0)


@functools.lru_cache(maxsize=64)
def _log_sizes(sizes: tuple[float, ...]) -> FArray:
    out = np.log(np.asarray(sizes, dtype=np.float64))
    out.flags.writeable = False  # shared between calls
    return out


@dataclass(frozen=True, eq=False)
class GroupShape:
    """How ``n`` ranks of one group spread over fabric levels."""

    n_inner: FArray
    """Ranks inside one fast domain."""
    n_outer: FArray
    """Number of domains the group spans."""
    crosses_nodes: npt.NDArray[np.bool_]


def fabric_node(gpu: GpuSpec, node: float) -> float:
    """GPUs one scale-up fabric joins, for the collectives: the node, or a multi-node NVLink domain when it is
    larger (GB200 NVL72: 72 GPUs over 18 compute trays of 4, every pair one NVSwitch hop apart), so a group
    inside it never takes the scale-out network."""
    domain = float(gpu.scale_up.domain_gpus)
    return domain if gpu.scale_up.kind != "pcie" and domain > node else node


def ring_hop_stride(gpu: GpuSpec, tp: npt.ArrayLike, cp: npt.ArrayLike, node: float) -> FArray:
    """The stride to time one step of a ring of ``cp`` ranks spaced ``tp`` apart as a p2p send (collective_time):
    every hop sends at once and the ring advances at its slowest hop, so once the ring spans more GPUs than one
    NVLink domain or one node joins, a hop leaves it (ranks 0, 4, 8, 12 of 8-GPU nodes at TP 4: 4 -> 8 and
    12 -> 0 cross nodes), and the step is timed at that hop's stride."""
    tp_a = np.asarray(tp, dtype=np.float64)
    span = tp_a * np.asarray(cp, dtype=np.float64)
    fab, dom = fabric_node(gpu, node), fast_domain(gpu, node)
    return np.where(span > fab, np.maximum(tp_a, fab), np.where(span > dom, np.maximum(tp_a, dom), tp_a))


def fast_domain(gpu: GpuSpec, node: float) -> float:
    """GPUs one NVLink / Infinity Fabric domain joins: within a node (HGX: 8, H100 NVL pairs: 2), or the whole
    multi-node domain (NVL72)."""
    domain = float(gpu.scale_up.domain_gpus)
    return domain if gpu.scale_up.kind != "pcie" and domain > node else min(domain, node)


def group_shape(gpu: GpuSpec, n: npt.ArrayLike, gpus_per_node: int | None = None,
                stride: npt.ArrayLike = 1) -> GroupShape:
    """Split a group of ``n`` ranks spaced ``stride`` apart (Megatron order: tp fastest, then cp, dp, pp)
    into (ranks per fast domain, domains). A stride of a whole node puts every rank on its own node."""
    n = np.asarray(n, dtype=np.float64)
    st = np.maximum(np.asarray(stride, dtype=np.float64), 1.0)
    node = fabric_node(gpu, float(gpus_per_node or gpu.node.gpus_per_node))
    per_node = np.maximum(1.0, np.floor(node / st))
    domain_gpus = float(gpu.scale_up.domain_gpus) if gpu.scale_up.kind != "pcie" else node
    per_domain = np.maximum(1.0, np.floor(np.minimum(domain_gpus, node) / st))
    inner = np.minimum(n, per_domain)
    outer = np.ceil(n / np.maximum(inner, 1))
    return GroupShape(n_inner=inner, n_outer=outer, crosses_nodes=n > per_node)


def collective_time(gpu: GpuSpec, op: str, size_bytes: npt.ArrayLike, n: npt.ArrayLike,
                    algo: str = "auto", gpus_per_node: int | None = None,
                    busbw_scale: npt.ArrayLike = 1.0, stride: npt.ArrayLike = 1) -> FArray:
    """Time in seconds of ``op`` over ``n`` ranks of ``size_bytes`` per rank, hierarchical across levels.

    Inner level: the GPU's scale-up calibration (``pcie`` calibration for PCIe-only GPUs). Outer level:
    ``inter_node`` when the group spans nodes, else the PCIe path between scale-up domains inside a node.
    Every argument but ``gpu`` and ``op`` broadcasts, ``busbw_scale`` included (one call can then serve
    rows evaluated at different bandwidths).
    """
    if op not in OPS:
        raise ValueError(f"unknown collective {op!r}; valid: {', '.join(OPS)}")
    arrs = [np.asarray(x, dtype=np.float64) for x in (size_bytes, n, stride, busbw_scale)]
    shape0 = np.broadcast_shapes(*(a.shape for a in arrs))
    s, n, stride_a, scale = (np.broadcast_to(a, shape0).reshape(-1) for a in arrs)
    cal = gpu.calibration
    inner_cal = cal.intra_node
    if op == "p2p":
        # a send to the rank ``stride`` away: off the node once the stride reaches the node size
        node = fabric_node(gpu, float(gpus_per_node or gpu.node.gpus_per_node))
        st = stride_a
        domain = float(gpu.scale_up.domain_gpus) if gpu.scale_up.kind != "pcie" else node
        off_node = st >= node
        off_domain = ~off_node & (st >= min(domain, node))
        out = np.empty_like(s)
        for mask, level in ((off_node, lambda: cal.inter_node), (off_domain, lambda: _pcie_cal(gpu)),
                            (~(off_node | off_domain), lambda: inner_cal)):
            if mask.any():  # only the levels some row uses (the PCIe level is built on demand)
                out[mask] = level_time("p2p", s[mask], 2, level(), algo, scale[mask])
        return out.reshape(shape0)
    out = level_time(op, s, n, inner_cal, algo, scale)
    shape = group_shape(gpu, n, gpus_per_node, stride_a)
    rows = np.nonzero(shape.n_outer > 1)[0]
    if rows.size == 0:
        return out.reshape(shape0)
    # hierarchical (only the rows whose group spans domains): RS + AG inside the domain (all-reduce's two
    # halves) and the op across domains
    s, n, scale = s[rows], n[rows], scale[rows]
    ni, no, crosses = shape.n_inner[rows], shape.n_outer[rows], shape.crosses_nodes[rows]
    if op in ("all-reduce", "reduce-scatter", "all-gather"):
        # across nodes NCCL runs rings through every rank, one channel per NIC: "the busbw is going to reflect
        # exactly what's going through the NICs" (sjeaugey, nccl-tests #119, #160), so the job's busbw is the
        # group's ranks per node x one NIC's busbw, at most the intra-node rate. 2 x 8 H100 (8 x NDR 400G):
        # 8 x 47 = 376 GB/s vs 366 GB/s measured on 4 nodes and 470 GB/s with NVLSTree on 2 (nccl-tests
        # #309); a 1 GiB all-reduce over 16 ranks takes 5.4 ms (4.3-5.2 ms measured).
        # NCCL's tuner takes the fastest algorithm for each size (src/graph/tuning.cc): the ring for large
        # messages, a tree (the hierarchical form below: reduce on the node, exchange shards, broadcast) for
        # small ones, whose latency matches 46-48 us for 1 KiB on 2 x 8 GPUs (NVIDIA/nccl #1244)
        ring = np.where(crosses, _node_ring_time(op, s, n, ni, no, cal, algo, scale), np.inf)
    else:
        ring = np.full(len(rows), np.inf)
    if op == "all-reduce":
        t_in = level_time("reduce-scatter", s, ni, inner_cal, algo, scale) + level_time(
            "all-gather", s, ni, inner_cal, algo, scale)
        shard = s / np.maximum(ni, 1)
    elif op in ("all-gather", "reduce-scatter"):
        t_in = level_time(op, s, ni, inner_cal, algo, scale)
        shard = s / np.maximum(ni, 1)
    else:  # all-to-all: the share of traffic that leaves the domain crosses the outer level
        t_in = level_time(op, s * ni / np.maximum(n, 1), ni, inner_cal, algo, scale)
        # bytes each GPU sends off its domain, expressed as a per-rank buffer of the outer all-to-all
        shard = s * (n - ni) / np.maximum(n, 1) / np.maximum(bus_factor(op, no), 1e-12)
    t_out = level_time(op, shard, no, cal.inter_node, "ring", scale)
    if not crosses.all():
        t_out = np.where(crosses, t_out, level_time(op, shard, no, _pcie_cal(gpu), "ring", scale))
    out = out.copy()
    out[rows] = np.minimum(t_in + t_out, ring)
    return out.reshape(shape0)


def _node_ring_time(op: str, s: FArray, n: FArray, per_node: FArray, nodes: FArray, cal: CalibrationSpec,
                    algo: str, scale: FArray) -> FArray:
    """A ring collective through ``n`` ranks on ``nodes`` nodes, ``per_node`` of them on each: the bus bytes
    at min(intra-node busbw, per_node x one NIC's busbw); 2 (nodes - 1) of an all-reduce's steps (nodes - 1 of
    the others') cross the network at its latency, the rest stay on the node's fabric. The ramp and any
    measured correction are the inter-node level's."""
    inner, outer = cal.intra_node, cal.inter_node
    b_in = inner.ring_busbw_bytes_per_s or inner.busbw_bytes_per_s
    bw = np.minimum(b_in, per_node * outer.busbw_bytes_per_s) * scale
    s1 = np.maximum(s, 1.0)
    ramp = np.where(s > 0, (outer.ramp_bytes / s1) ** outer.ramp_exponent, 0.0)
    all_steps = steps(op, n, "ring")
    net_steps = steps(op, nodes, "ring")
    t = net_steps * outer.alpha_per_step_s + (all_steps - net_steps) * inner.alpha_per_step_s
    t = t + s * bus_factor(op, n) / bw * (1.0 + ramp)
    if outer.correction_sizes_bytes and outer.correction:
        t = t / np.interp(np.log(s1), _log_sizes(tuple(outer.correction_sizes_bytes)), outer.correction)
    return t


def _pcie_cal(gpu: GpuSpec) -> CollectiveCalibration:
    """Between scale-up domains inside one node (bridged pairs of H100 NVL): the PCIe host link."""
    if gpu.scale_up.kind == "pcie":
        return gpu.calibration.intra_node
    return CollectiveCalibration(
        alpha_per_step_s=gpu.calibration.inter_node.alpha_per_step_s,
        busbw_bytes_per_s=gpu.pcie.bandwidth_bytes_per_s * 0.7,
        ramp_bytes=gpu.calibration.intra_node.ramp_bytes,
        ramp_exponent=gpu.calibration.intra_node.ramp_exponent,
        busbw_spread=0.3,
        source="derived: 70% of the PCIe x16 one-direction rate (assumed; no sweep published)",
    )


def algbw_busbw(op: str, size_bytes: npt.ArrayLike, n: npt.ArrayLike,
                time_s: npt.ArrayLike) -> tuple[FArray, FArray]:
    """(algbw, busbw) in bytes/s for a measured or predicted time."""
    s = np.asarray(size_bytes, dtype=np.float64)
    t = np.asarray(time_s, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        alg = np.where(t > 0, s / t, 0.0)
    return alg, alg * bus_factor(op, n)


@dataclass(frozen=True)
class SweepFit:
    """Parameters fitted to one nccl-tests sweep, and how well they reproduce it."""

    alpha_per_step_s: float
    busbw_bytes_per_s: float
    ramp_bytes: float
    ramp_exponent: float
    max_rel_error: float
    """Largest |predicted/measured - 1| of busbw over sizes >= ``min_fit_bytes``."""
    spread: float
    """Root-mean-square relative error over the same sizes."""


def fit_sweep(op: str, size_bytes: npt.ArrayLike, busbw_bytes_per_s: npt.ArrayLike, n: int,
              min_fit_bytes: float = 2**20) -> SweepFit:
    """Fit alpha (from messages <= 4 KiB, or the smallest sizes) and B, ramp_bytes, ramp_exponent (least
    squares of the log error over sizes >= ``min_fit_bytes``; B between the measured plateau and 1.1x it)
    to a nccl-tests bus-bandwidth sweep.

    A vectorized grid search (no scipy): ~50 x 160 x 30 candidates evaluated in one numpy expression.
    """
    s = np.asarray(size_bytes, dtype=np.float64)
    bb = np.asarray(busbw_bytes_per_s, dtype=np.float64)
    if s.shape != bb.shape or s.size < 3:
        raise ValueError("a sweep needs at least 3 (size, busbw) points")
    if np.any(s <= 0) or np.any(bb <= 0):
        raise ValueError("sizes and bus bandwidths must be positive")
    factor = float(bus_factor(op, n))
    t = s * factor / bb
    small = s <= 4096
    if not small.any():
        small = s <= np.sort(s)[min(2, s.size - 1)]
    nsteps = float(steps(op, n))
    alpha_total = float(np.median(t[small]) - np.median((s * factor)[small]) / bb.max())
    alpha_total = max(alpha_total, 0.0)
    fit = s >= min_fit_bytes
    if fit.sum() < 3:
        fit = s >= np.sort(s)[-3]
    B = np.linspace(1.0, 1.1, 21)[:, None, None, None] * bb.max()  # the plateau bounds B from below
    S1 = np.logspace(4, 10, 181)[None, :, None, None]
    g = np.linspace(0.2, 1.5, 27)[None, None, :, None]
    sf, tf = s[fit][None, None, None, :], t[fit][None, None, None, :]
    pred = alpha_total + sf * factor / B * (1.0 + (S1 / sf) ** g)
    err = np.sqrt(np.mean(np.log(pred / tf) ** 2, axis=-1))  # least squares in log space
    i, j, k = np.unravel_index(np.argmin(err), err.shape)
    b_fit, s1_fit, g_fit = float(B[i, 0, 0, 0]), float(S1[0, j, 0, 0]), float(g[0, 0, k, 0])
    p = alpha_total + s[fit] * factor / b_fit * (1.0 + (s1_fit / s[fit]) ** g_fit)
    rel = t[fit] / p - 1.0  # busbw_pred / busbw_meas - 1
    return SweepFit(
        alpha_per_step_s=alpha_total / max(nsteps, 1.0),
        busbw_bytes_per_s=b_fit,
        ramp_bytes=s1_fit,
        ramp_exponent=g_fit,
        max_rel_error=float(np.abs(rel).max()),
        spread=float(np.sqrt(np.mean(rel**2))),
    )


def collective_report(gpu: GpuSpec, op: str, sizes: list[int], n: int, algo: str = "auto",
                      gpus_per_node: int | None = None) -> rt.Collective:
    """Rows like nccl-tests' output (size, time, algbw, busbw) for the ``collective`` command."""
    s = np.asarray(sizes, dtype=np.float64)
    t = collective_time(gpu, op, s, n, algo, gpus_per_node)
    alg, bus = algbw_busbw(op, s, n, t)
    shape = group_shape(gpu, n, gpus_per_node)
    if algo == "auto":
        used = "nvls" if (op == "all-reduce" and gpu.calibration.intra_node.ring_busbw_bytes_per_s
                          and n <= (gpus_per_node or gpu.node.gpus_per_node)) else "ring"
    else:
        used = algo
    if float(shape.n_outer) > 1:
        used = f"hierarchical ({used} inside {int(shape.n_inner)}-GPU domains, ring across {int(shape.n_outer)})"
    return {
        "op": op, "gpu": gpu.name, "ranks": n, "algorithm": used,
        "nodes": int(np.ceil(n / (gpus_per_node or gpu.node.gpus_per_node))),
        "rows": [{"size_bytes": int(si), "time_s": float(ti), "algbw_bytes_per_s": float(ai),
                  "busbw_bytes_per_s": float(bi)} for si, ti, ai, bi in zip(s, t, alg, bus, strict=True)],
        # single-size convenience keys (the contract of the issue): the first row
        "time_s": float(t[0]), "algbw_bytes_per_s": float(alg[0]), "busbw_bytes_per_s": float(bus[0]),
        "calibration_source": gpu.calibration.intra_node.source,
    }
