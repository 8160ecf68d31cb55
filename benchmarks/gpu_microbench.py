"""GEMM and HBM microbenchmarks for calibrating tpplan's efficiency factors.

Run on a machine with one NVIDIA GPU and PyTorch:

    python benchmarks/gpu_microbench.py --out results.csv

It writes one CSV row per measurement in the column layout of
``hardware/calibration/microbenchmarks.csv`` (gpu, benchmark, dtype, m, n, k, size_bytes, ranks,
value, unit, note, system, source) so the rows can be appended there and fed to the calibration.

Method (each figure is the median of timed repetitions after warm-up, CUDA events):
- gemm_torch_matmul: ``torch.matmul`` of random bf16 (m x k) @ (k x n); FLOPs = 2 m n k.
  Shapes cover square sizes and the skinny shapes of decode (m = batch tokens, small).
- gemm_scaled_mm fp8: ``torch._scaled_mm`` with e4m3 inputs, per-tensor scales, bf16 output.
- hbm_copy: ``dst.copy_(src)``; bytes moved = 2 x size (read + write), the STREAM "copy" convention.
- hbm_read: ``src.sum()`` over bf16 data; bytes moved = size (read only), as a decode step reads weights.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys


def _time_ms(fn, warmup: int = 5, reps: int = 20) -> float:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> int:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--gpu", default="h100-sxm")
    args = parser.parse_args()
    name = torch.cuda.get_device_name(0)
    system = f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    source = "tpplan benchmarks/gpu_microbench.py (measured by the tpplan developers)"
    rows = []

    def add(bench, dtype, m, n, k, size, value, unit, note):
        rows.append([args.gpu, bench, dtype, m, n, k, size, 1, round(value, 2), unit, note, system, source])
        print(bench, dtype, m, n, k, size, round(value, 2), unit, flush=True)

    shapes = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192),
              (16384, 16384, 16384), (6144, 12288, 12288),
              # llama-70b layer GEMMs at TP=1 (hidden 8192, ffn 28672): prefill (m = tokens) and decode
              (8192, 28672, 8192), (8192, 8192, 28672), (4096, 10240, 8192),
              (1, 28672, 8192), (8, 28672, 8192), (32, 28672, 8192), (64, 28672, 8192),
              (128, 28672, 8192), (256, 28672, 8192), (512, 28672, 8192)]
    for m, n, k in shapes:
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
        ms = _time_ms(lambda: torch.matmul(a, b))
        add("gemm_torch_matmul", "bf16", m, n, k, "", 2 * m * n * k / (ms * 1e-3) / 1e12, "TFLOP/s",
            f"median of 20, random normal; {ms*1e3:.1f} us")
        del a, b
    if hasattr(torch, "_scaled_mm") and hasattr(torch, "float8_e4m3fn"):
        for m, n, k in shapes:
            if m < 16:
                continue
            try:
                a = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
                b = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()
                one = torch.tensor(1.0, device="cuda")
                ms = _time_ms(lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one,
                                                       out_dtype=torch.bfloat16))
                add("gemm_scaled_mm", "fp8", m, n, k, "", 2 * m * n * k / (ms * 1e-3) / 1e12,
                    "TFLOP/s", f"e4m3 per-tensor scale; {ms*1e3:.1f} us")
                del a, b
            except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                print("fp8 skipped:", exc, file=sys.stderr)
                break
    for size in [2**20, 2**24, 2**26, 2**28, 2**30, 2**32]:
        src = torch.empty(size // 2, device="cuda", dtype=torch.bfloat16).normal_()
        dst = torch.empty_like(src)
        ms = _time_ms(lambda: dst.copy_(src))
        add("hbm_copy", "bf16", "", "", "", size, 2 * size / (ms * 1e-3) / 1e12, "TB/s",
            f"read+write counted; {ms*1e3:.1f} us")
        ms = _time_ms(lambda: src.sum())
        add("hbm_read", "bf16", "", "", "", size, size / (ms * 1e-3) / 1e12, "TB/s",
            f"read only (sum); {ms*1e3:.1f} us")
        del src, dst
    with open(args.out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["gpu", "benchmark", "dtype", "m", "n", "k", "size_bytes", "ranks", "value", "unit",
                    "note", "system", "source"])
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
