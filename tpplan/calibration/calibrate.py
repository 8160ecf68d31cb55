"""``tpplan calibrate``: fit the model's parameters to the user's own measurements and write a catalog overlay.

- ``nccl-tests LOG...``: parses ``all_reduce_perf`` / ``all_gather_perf`` / ``reduce_scatter_perf`` /
  ``alltoall_perf`` output (NVIDIA/nccl-tests, columns per ``doc/PERFORMANCE.md``), fits alpha, the asymptotic
  bus bandwidth and the bandwidth ramp with :func:`tpplan.engine.comm.fit_sweep`, and writes an ``overlay:`` that
  ``--catalog`` merges into the GPU. One node: the intra-node level; several (``--nodes``): the inter-node
  level, fitted to what remains after the modelled intra-node phases of the hierarchical all-reduce.
- ``gemm CSV`` / ``hbm CSV``: efficiencies (central value, low, high) from GEMM or copy measurements in the
  microbenchmark CSV format (``tpplan.catalog.microbench.CSV_COLUMNS``).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tpplan.catalog.spec import GpuSpec
from tpplan.engine import comm
from tpplan.errors import TpplanError
from tpplan.yamlio import read_text

OP_PATTERNS = (("all-reduce", r"all_?reduce"), ("all-gather", r"all_?gather"),
               ("reduce-scatter", r"reduce_?scatter"), ("all-to-all", r"all_?to_?all"))
GEMV_TO_COPY = 0.84
"""Decode-shaped GEMMs stream weights at 0.84 of a STREAM copy on H100 (2.50 / 2.98 TB/s, tpplan run,
hardware/calibration/h100-sxm-tpplan-microbench-2026-11-24.csv): applied to copy-only HBM measurements."""


@dataclass
class NcclLog:
    file: str
    op: str
    ranks: int | None
    size: np.ndarray
    busbw: np.ndarray
    column: str
    date: str


def _float(tok: str) -> float | None:
    try:
        v = float(tok)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def parse_nccl_log(path: Path, shown: str, column: str = "in-place", op: str | None = None) -> NcclLog:
    """Rows of an nccl-tests log: ``size count type [redop root] time algbw busbw #wrong time algbw busbw
    #wrong``. The last eight fields are the out-of-place and in-place groups whatever the version prints
    before them; ``N/A`` in-place columns (alltoall) fall back to out-of-place."""
    text = read_text(path, shown)
    found = op
    if found is None:
        for name, pat in OP_PATTERNS:
            if re.search(pat + r"_perf", text) or re.search(pat, path.name, re.I):
                found = name
                break
    if found is None:
        raise TpplanError("cannot tell which collective this log measures", file=shown,
                          hint="Name the file after the test (all_reduce_perf ...) or pass --op.")
    ranks = len(re.findall(r"^#\s+Rank\s+\d+", text, re.M)) or None
    sizes, bus = [], []
    for line in text.splitlines():
        toks = line.split()
        if not toks or toks[0].startswith("#") or len(toks) < 10 or not toks[0].isdigit():
            continue
        tail = toks[-8:]
        oop, ip = _float(tail[2]), _float(tail[6])
        b = ip if column == "in-place" and ip is not None else oop
        if b is None or b <= 0:
            continue
        sizes.append(float(toks[0]))
        bus.append(b * 1e9)  # nccl-tests prints GB/s (1e9)
    if len(sizes) < 3:
        raise TpplanError("found fewer than 3 result rows; is this nccl-tests output?", file=shown,
                          hint="Expected lines such as '  1048576  262144  float  sum  -1  42.0  24.97  43.70  0 ...'.")
    mtime = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC).date().isoformat()
    return NcclLog(file=Path(shown).name, op=found, ranks=ranks, size=np.array(sizes), busbw=np.array(bus),
                   column=column, date=mtime)


def fit_nccl(gpu: GpuSpec, logs: list[NcclLog], ranks: int | None, nodes: int,
             gpus_per_node: int | None = None) -> dict[str, Any]:
    """The overlay (``calibration.intra_node`` or ``inter_node``) and a fit report per collective."""
    per_op: dict[str, list[NcclLog]] = {}
    for lg in logs:
        per_op.setdefault(lg.op, []).append(lg)
    level = "intra_node" if nodes == 1 else "inter_node"
    fits: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for op, group in per_op.items():
        n = ranks or group[0].ranks
        if not n:
            raise TpplanError(f"cannot tell how many ranks {group[0].file} ran on (no '#  Rank' lines)",
                              hint="Pass --ranks N.")
        if n < 2:
            raise TpplanError(f"{group[0].file} ran on {n} rank: a collective needs at least 2 to measure a "
                              "bandwidth", hint="Use a log of 2 or more ranks, or pass --ranks N.")
        # several logs of one collective (repeated runs): one point per size, the median of the runs
        s_all = np.concatenate([g.size for g in group])
        b_all = np.concatenate([g.busbw for g in group])
        s, inv = np.unique(s_all, return_inverse=True)
        b = np.array([float(np.median(b_all[inv == k])) for k in range(len(s))])
        keep = np.isfinite(b) & (b > 0) & np.isfinite(s) & (s > 0)
        s, b = s[keep], b[keep]
        if s.size < 3:
            raise TpplanError(f"{group[0].file}: fewer than 3 sizes with a positive bus bandwidth to fit",
                              hint="Run nccl-tests over a size range (-b 8 -e 8G -f 2).")
        fit_op, fit_n, fit_s, fit_b = op, n, s, b
        ring_only = False
        if nodes > 1:
            # what the inter-node level takes: measured time less the modelled intra-node phases
            # (reduce-scatter and all-gather inside the domain, tpplan.engine.comm.collective_time)
            shape = comm.group_shape(gpu, n, gpus_per_node)
            ni, no = float(shape.n_inner), float(shape.n_outer)
            if no < 2:
                raise TpplanError(f"--nodes {nodes} but {n} ranks fit in one {int(ni)}-GPU domain of {gpu.name}")
            if op in ("all-reduce", "reduce-scatter", "all-gather"):
                # large messages run as rings through every rank, at (ranks per node) x one NIC's busbw
                # (tpplan.engine.comm._node_ring_time): each NIC's share of the measured busbw, per network step
                # only the sizes where the ring governs (small ones run as trees, whose latency the catalog's
                # alpha already carries; the overlay keeps that alpha)
                big = s >= 2**24 if np.count_nonzero(s >= 2**24) >= 3 else s >= 2**20
                fit_n, fit_s, fit_b = int(no), s[big], b[big] / ni
                ring_only = True
            else:
                t = s * comm.bus_factor(op, n) / b
                t_in = comm.level_time(op, s, ni, gpu.calibration.intra_node)
                t_out = t - t_in
                keep = t_out > 0
                shard = s / ni
                fit_n, fit_s = int(no), shard[keep]
                fit_b = fit_s * comm.bus_factor(op, no) / t_out[keep]
        try:
            f = comm.fit_sweep(fit_op, fit_s, fit_b, fit_n)
        except ValueError as exc:
            raise TpplanError(f"{group[0].file}: cannot fit {op}: {exc}",
                              hint="Run nccl-tests over a size range (-b 8 -e 8G -f 2).") from None
        if ring_only:
            f = dataclasses.replace(f, alpha_per_step_s=gpu.calibration.inter_node.alpha_per_step_s)
        # what the smooth ramp misses, size by size (protocol switches): measured / fitted busbw
        t_fit = f.alpha_per_step_s * comm.steps(fit_op, fit_n) + fit_s * comm.bus_factor(fit_op, fit_n) / \
            f.busbw_bytes_per_s * (1.0 + (f.ramp_bytes / fit_s) ** f.ramp_exponent)
        ratio = t_fit / (fit_s * comm.bus_factor(fit_op, fit_n) / fit_b)
        fits[op] = {"files": [g.file for g in group], "ranks": n, "points": int(s.size),
                    "alpha_per_step_s": f.alpha_per_step_s, "busbw_bytes_per_s": f.busbw_bytes_per_s,
                    "ramp_bytes": f.ramp_bytes, "ramp_exponent": f.ramp_exponent,
                    "max_rel_error": f.max_rel_error, "rms_rel_error": f.spread}
        prov = (f"tpplan calibrate nccl-tests on {', '.join(g.file for g in group)} "
                f"({', '.join(sorted({g.date for g in group}))}): {op}, {n} ranks on {nodes} node(s), "
                f"{group[0].column} busbw; smooth fit max error {f.max_rel_error:.1%} >= 1 MiB, rms {f.spread:.1%}; "
                "the per-size correction table reproduces the log [V]")
        if op == "all-reduce":
            params.update({"alpha_per_step_s": _sig(f.alpha_per_step_s), "busbw_bytes_per_s": _sig(f.busbw_bytes_per_s),
                           "ramp_bytes": _sig(f.ramp_bytes), "ramp_exponent": round(f.ramp_exponent, 4),
                           "busbw_spread": max(round(f.spread, 4), 0.01), "fitted_ranks": int(fit_n),
                           "correction_sizes_bytes": [float(x) for x in fit_s],
                           "correction": [round(float(x), 4) for x in ratio], "source": prov})
        else:
            # NVLS accelerates all-reduce only; the other collectives run at ring speed
            params.setdefault("ring_busbw_bytes_per_s", f.busbw_bytes_per_s)
            params.setdefault("_other_source", prov)
    other = params.pop("_other_source", None)
    if "source" not in params:
        if nodes == 1:
            params["source"] = other
        else:
            raise TpplanError("an inter-node overlay needs an all_reduce_perf log")
    elif other:
        params["source"] = f"{params['source']}; ring bandwidth: {other}"
    return {"overlay": {"gpu": gpu.name, "calibration": {level: params}}, "fits": fits}


def _sig(x: float) -> float:
    return float(f"{x:.5g}")


def efficiency_from_csv(gpu: GpuSpec, rows: list[dict[str, str]], kind: str, shown: str) -> dict[str, Any]:
    """``flops`` / ``flops_fp8`` (GEMMs with min dimension >= 4096) or ``hbm`` efficiency from CSV rows."""
    from tpplan.calibration.validate import _i
    from tpplan.catalog.microbench import _unit_scale

    mine = [r for r in rows if r["gpu"].strip().lower() in (gpu.name, *gpu.aliases)]
    if not mine:
        raise TpplanError(f"no rows for {gpu.name} in the CSV (column 'gpu')", file=shown)
    cal: dict[str, Any] = {}
    if kind == "gemm":
        groups: dict[str, list[float]] = {}
        for r in mine:
            if not r["benchmark"].lower().startswith("gemm"):
                continue
            m, n, k = _i(r.get("m")), _i(r.get("n")), _i(r.get("k"))
            if min(m, n, k) < 4096 or m * n * k < 2**37:
                continue  # small GEMMs measure launch and tile effects, not the tensor cores
            dtype = (r.get("dtype") or "bf16").lower()
            key = "flops_fp8" if dtype.startswith("fp8") else "flops"
            peak = gpu.peak_flops("fp8" if key == "flops_fp8" else dtype.replace("float16", "fp16"))
            groups.setdefault(key, []).append(float(r["value"]) * _unit_scale(r["unit"]) / peak)
        if not groups:
            raise TpplanError(f"no GEMM rows with min(m, n, k) >= 4096 and m x n x k >= 2^37 for {gpu.name}",
                              file=shown)
        for key, fr in groups.items():
            cal[key] = {"value": round(float(np.median(fr)), 3), "low": round(min(fr), 3),
                        "high": round(max(fr), 3),
                        "source": f"tpplan calibrate gemm {Path(shown).name}: {len(fr)} shapes, median "
                                  f"{np.median(fr):.3f} of the dense peak (range {min(fr):.3f}-{max(fr):.3f}) [V]"}
        return {"overlay": {"gpu": gpu.name, "calibration": cal}, "shape_check": shape_check(gpu, mine, cal)}
    else:
        fr_copy: list[float] = []
        fr_gemv: list[float] = []
        copy_rows: list[dict[str, str]] = []
        for r in mine:
            b = r["benchmark"].lower()
            frac = float(r["value"]) * _unit_scale(r["unit"]) / gpu.hbm.bandwidth_bytes_per_s
            if "gemv" in b or "decode" in b:
                fr_gemv.append(frac)
            elif b.startswith("hbm") and (_i(r.get("size_bytes")) in (0,) or _i(r.get("size_bytes")) >= 2**30):
                fr_copy.append(frac)
                copy_rows.append(r)
        if not fr_copy and not fr_gemv:
            raise TpplanError(f"no HBM rows (benchmark hbm_* of >= 1 GiB, or *gemv*/*decode*) for {gpu.name}",
                              file=shown)
        if fr_gemv:
            value, low = float(np.median(fr_gemv)), min(fr_gemv)
            how = f"{len(fr_gemv)} decode-shaped measurements"
        else:
            # the 0.84 ratio was measured against a copy kernel: use copies when the CSV has them
            copies = [f for f, r in zip(fr_copy, copy_rows, strict=True) if "copy" in r["benchmark"].lower()] or fr_copy
            value, low = float(np.median(copies)) * GEMV_TO_COPY, min(copies) * GEMV_TO_COPY
            how = f"median of {len(copies)} copy kernel(s) x {GEMV_TO_COPY} (decode-GEMV / copy ratio measured on H100)"
        high = max(fr_copy + fr_gemv)
        cal["hbm"] = {"value": round(value, 3), "low": round(min(low, value), 3), "high": round(max(high, value), 3),
                      "source": f"tpplan calibrate hbm {Path(shown).name}: {how}; high = best streaming kernel [V]"}
    return {"overlay": {"gpu": gpu.name, "calibration": cal}}


def shape_check(gpu: GpuSpec, rows: list[dict[str, str]], cal: dict[str, Any]) -> dict[str, Any]:
    """Every GEMM row of any shape (the model shapes of benchmarks/gpu_microbench.py --model included) against
    tpplan's GEMM time at the efficiencies just fitted: the smooth roofline (perf.gemm_roofline) between the
    FLOPs at that efficiency and the bytes (A, B in the input dtype, D in bf16; G groups for gemm_*_xG) at the
    GPU's calibrated HBM rate. Reported beside the overlay; nothing is fitted to it."""
    from tpplan.calibration.validate import _i
    from tpplan.catalog.microbench import _unit_scale
    from tpplan.engine import perf

    checked: list[dict[str, Any]] = []
    for r in rows:
        b = r["benchmark"].lower()
        m, n, k = _i(r.get("m")), _i(r.get("n")), _i(r.get("k"))
        if not b.startswith("gemm") or min(m, n, k) < 1:
            continue
        groups = int(b.rsplit("_x", 1)[1]) if "_x" in b and b.rsplit("_x", 1)[1].isdigit() else 1
        fp8 = (r.get("dtype") or "bf16").lower().startswith("fp8")
        eff = (cal.get("flops_fp8") or cal["flops"])["value"] if fp8 else cal.get("flops", {}).get("value")
        if eff is None:
            continue
        peak = gpu.peak_flops("fp8" if fp8 else "bf16") * eff
        in_b = 1.0 if fp8 else 2.0
        flops = 2.0 * groups * m * n * k
        moved = groups * (in_b * (m * k + k * n) + 2.0 * m * n)
        hbm = perf.fp8_streaming(gpu.calibration).value if fp8 else gpu.calibration.hbm.value
        t = float(perf.gemm_roofline(flops * float(perf.gemm_k_slowdown(k)) / peak,
                                     moved / (gpu.hbm.bandwidth_bytes_per_s * hbm)))
        measured = float(r["value"]) * _unit_scale(r["unit"])
        checked.append({"shape": f"{r['benchmark']} {r.get('dtype') or 'bf16'} {m}x{n}x{k}",
                        "note": (r.get("note") or "").split(";")[0], "error": flops / t / measured - 1.0})
    if not checked:
        return {}
    errs = np.abs(np.array([float(c["error"]) for c in checked]))
    worst = checked[int(np.argmax(errs))]
    return {"rows": len(checked), "mean_abs_error": float(errs.mean()), "max_abs_error": float(errs.max()),
            "worst": worst}


def overlay_yaml(overlay: dict[str, Any], command: str) -> str:
    import yaml

    from tpplan import __version__

    head = (f"# tpplan calibration overlay, written by `{command}` (tpplan {__version__}).\n"
            "# Use it with --catalog THIS_FILE (or a folder holding it, or TPPLAN_CATALOG_PATH); it is merged into\n"
            "# the named GPU's calibration. Values are base SI: seconds, bytes, bytes/s (per GPU, one direction).\n")
    return head + yaml.safe_dump({"overlay": overlay["overlay"]}, sort_keys=False, width=120,
                                 default_flow_style=None)
