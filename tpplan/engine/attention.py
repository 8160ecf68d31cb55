"""Attention kernel throughput from measured FlashAttention sweeps (training's attention time, issue 17).

Owns the lookup of ``hardware/calibration/flash-attention-2.csv`` (FlashAttention-2) and ``flash-attention-1.csv``
(FlashAttention 1.x, the same plots' "FlashAttention" bars): forward+backward TFLOP/s by GPU, head dim, mask and
sequence length, as the FlashAttention authors measured and counted them (fwd ``4 b s^2 h d``, halved when
causal; fwd+bwd 3.5x; Dao-AILab/flash-attention ``benchmarks/benchmark_flash_attention.py``).

Measured: A100 SXM and H100 SXM, head dim 64 and 128, sequence 512-16k, bf16/fp16. Everything else is a stated
assumption (``rate_source``): other Ampere and Hopper parts take their family's curve scaled by their dense
bf16 peak; GPUs without a measurement take the H100 curve's share of its peak (FlashAttention-2 on H100 is about
a third of peak: 338 of 989 TFLOP/s). Below 512 tokens the 512 figure holds, beyond 16k the 16k one (the curve
is flat there). Attention runs in bf16 whatever the GEMMs run in (fp8 recipes keep attention in bf16).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tpplan.catalog.spec import GpuSpec

FArray = npt.NDArray[np.float64]
CSV = Path("hardware") / "calibration" / "flash-attention-2.csv"
CSV_FA1 = Path("hardware") / "calibration" / "flash-attention-1.csv"
FWD_CSV = Path("hardware") / "calibration" / "flash-attention-fwd.csv"
H100_GEMM_EFF = 0.74
"""H100 SXM's calibrated bf16 GEMM efficiency (hardware/h100-sxm.yaml; a test holds them equal): the reference
for carrying FlashAttention-3's rate to GPUs it was not measured on."""
MEASURED = {"a100-sxm-80gb": 312e12, "h100-sxm": 989.4e12}
"""GPUs of the sweep and the dense bf16 peak their curve is relative to."""


@functools.cache
def _table(kernel: str = "fa2") -> dict[tuple[str, bool, int], tuple[FArray, FArray]]:
    """(gpu, causal, head dim) -> (sequence lengths, fwd+bwd FLOP/s) of ``kernel`` (fa2 | fa1), sorted by
    length."""
    from tpplan.catalog.load import bundled_root
    from tpplan.catalog.microbench import read_microbench

    path = CSV_FA1 if kernel == "fa1" else CSV
    rows = read_microbench(bundled_root() / path, path.as_posix())
    pts: dict[tuple[str, bool, int], list[tuple[float, float]]] = {}
    for r in rows:
        key = (r["gpu"], r["benchmark"].endswith("causal"), int(r["n"]))
        pts.setdefault(key, []).append((float(r["m"]), float(r["value"]) * 1e12))
    out = {}
    for key, v in pts.items():
        v.sort()
        out[key] = (np.array([x for x, _ in v]), np.array([y for _, y in v]))
    return out


@functools.cache
def _fwd_table() -> dict[tuple[str, bool, int], tuple[FArray, FArray]]:
    """(kernel fa3 | fa2, causal, head dim) -> (sequence lengths, forward FLOP/s) on H100 SXM."""
    from tpplan.catalog.load import bundled_root
    from tpplan.catalog.microbench import read_microbench

    rows = read_microbench(bundled_root() / FWD_CSV, FWD_CSV.as_posix())
    pts: dict[tuple[str, bool, int], list[tuple[float, float]]] = {}
    for r in rows:
        kernel = r["benchmark"].split("_")[1]
        pts.setdefault((kernel, r["benchmark"].endswith("causal"), int(r["n"])), []).append(
            (float(r["m"]), float(r["value"]) * 1e12))
    out = {}
    for key, v in pts.items():
        v.sort()
        out[key] = (np.array([x for x, _ in v]), np.array([y for _, y in v]))
    return out


def fwd_flops_per_s(gpu: GpuSpec, head_dim: int, causal: bool, seq_len: npt.ArrayLike) -> FArray:
    """Forward throughput of a prompt's attention (serving prefill), FlashAttention's FLOP count, for sequences of
    ``seq_len`` tokens. Hopper: FlashAttention-3's measured curve (H100; other Hopper parts scaled by their dense
    bf16 peak), the kernel generation vLLM, SGLang and TensorRT-LLM run there [recalled]. Ampere / Ada: the
    FlashAttention-2 forward+backward curve of A100 (their kernels; the forward alone is no slower: on H100 FA2's
    forward reads 1.02-1.17x its forward+backward rate [D]) [assumed]. Others (Blackwell, MI300): the H100 FA3
    curve's ratio to H100's GEMM rate times this GPU's calibrated GEMM rate [assumed]. The head dim at the nearer
    measured one (64, 128, 256), times the share of the padded head dim it is."""
    names = " ".join([gpu.name, *gpu.aliases]).lower()
    if family(gpu)[0] == "a100-sxm-80gb":
        return fwd_bwd_flops_per_s(gpu, head_dim, causal, seq_len)
    if gpu.name == "h100-sxm":
        scale = 1.0
    elif any(w in names for w in ("h100", "h200", "h800", "h20")):
        scale = gpu.peak_flops("bf16") / MEASURED["h100-sxm"]
    else:
        # no measurement: FA3's ratio to H100's GEMM rate carried to this GPU's calibrated GEMM rate
        scale = gpu.peak_flops("bf16") * gpu.calibration.flops.value / (MEASURED["h100-sxm"] * H100_GEMM_EFF)
    d = 64 if head_dim <= 96 else 128 if head_dim <= 192 else 256
    lens, rates = _fwd_table()[("fa3", causal, d)]
    s = np.clip(np.asarray(seq_len, dtype=np.float64), lens[0], lens[-1])
    return np.interp(np.log(s), np.log(lens), rates) * scale * (head_dim / padded_head_dim(head_dim))


def family(gpu: GpuSpec) -> tuple[str, float, str]:
    """(measured GPU whose curve applies, scale to this GPU, how it was chosen)."""
    names = " ".join([gpu.name, *gpu.aliases]).lower()
    peak = gpu.peak_flops("bf16")
    if gpu.name in MEASURED:
        return gpu.name, 1.0, "measured"
    if "a100" in names:
        return "a100-sxm-80gb", peak / MEASURED["a100-sxm-80gb"], "A100 SXM curve x dense-peak ratio [assumed]"
    if any(w in names for w in ("l40", "l4", "a10", "a40", "rtx")):
        # Ada and Ampere parts run FlashAttention-2's Ampere (mma.sync) kernels
        return "a100-sxm-80gb", peak / MEASURED["a100-sxm-80gb"], "A100's share of its peak (same kernels) [assumed]"
    if any(w in names for w in ("h100", "h200", "h800", "h20")):
        return "h100-sxm", peak / MEASURED["h100-sxm"], "H100 SXM curve x dense-peak ratio [assumed]"
    return "h100-sxm", peak / MEASURED["h100-sxm"], ("no FlashAttention measurement: H100's share of its peak "
                                                     "[assumed]")


def padded_head_dim(head_dim: int) -> int:
    """The head dim FlashAttention-2's kernels compute at: rounded up to a multiple of 32 up to 128, of 64 above
    (Dao-AILab/flash-attention csrc/flash_attn/flash_api.cpp: ``round_multiple(head_size, head_size <= 128 ? 32 :
    64)``); MPT-30B's 112 runs the 128 kernel."""
    step = 32 if head_dim <= 128 else 64
    return -(-head_dim // step) * step


def fwd_bwd_flops_per_s(gpu: GpuSpec, head_dim: int, causal: bool, seq_len: npt.ArrayLike,
                        kernel: str = "fa2") -> FArray:
    """Measured forward+backward throughput (FlashAttention's FLOP count) of ``kernel`` (fa2: FlashAttention-2,
    fa1: FlashAttention 1.x) for sequences of ``seq_len`` tokens: interpolated in log length between the sweep's
    points, at the nearer measured head dim (64 or 128), times the share of the padded head dim the model's is
    (the kernel computes the padding too; FlashAttention 1.x runs head dims up to 32, 64 and 128 on its 32-, 64-
    and 128-wide kernels, csrc/flash_attn/src/fmha_fwd_launch_template.h [recalled]; it has none wider, so a
    wider head takes FlashAttention-2's padding [assumed])."""
    ref, scale, _ = family(gpu)
    if kernel == "fa1" and head_dim <= 128:
        # FlashAttention 1.x: the measured curve of the kernel width it runs
        padded = next(w for w in (32, 64, 128) if head_dim <= w)
        d = 64 if padded <= 64 else 128
    else:  # the curve of the nearer measured head dim
        padded = padded_head_dim(head_dim)
        d = 64 if head_dim <= 96 else 128
    lens, rates = _table(kernel)[(ref, causal, d)]
    s = np.clip(np.asarray(seq_len, dtype=np.float64), lens[0], lens[-1])
    return np.interp(np.log(s), np.log(lens), rates) * scale * (head_dim / padded)
