"""GPU microbenchmarks for calibrating and checking tpplan's time model (issue 17).

Run on a machine with one NVIDIA GPU and PyTorch (tpplan installed for --model):

    python benchmarks/gpu_microbench.py --out results.csv
    python benchmarks/gpu_microbench.py --out results.csv --model llama-3.1-70b --model mixtral-8x7b --tp 1,2,4,8
    python benchmarks/gpu_microbench.py --model llama-3.1-70b --dry-run     # list what would be measured

then feed the CSV to tpplan:

    tpplan calibrate gemm results.csv --gpu h100-sxm -o my-h100.yaml   # efficiencies + a shape check
    tpplan calibrate hbm results.csv --gpu h100-sxm -o my-h100-hbm.yaml

It writes one CSV row per measurement in the column layout of ``hardware/calibration/microbenchmarks.csv``
(gpu, benchmark, dtype, m, n, k, size_bytes, ranks, value, unit, note, system, source); the header line
carries the date, GPU and software versions.

Method (each figure is the median of 20 timed repetitions after warm-up, CUDA events around 10 calls replayed
as a CUDA graph, so small kernels are timed without Python's dispatch; eagerly where a call cannot be captured):
- gemm_torch_matmul: ``torch.matmul`` of random bf16 (m x k) @ (k x n); FLOPs = 2 m n k. Square sizes, the
  skinny shapes of decode, and with --model every GEMM of that model (tpplan.calibration.shapes: QKV, output,
  MLP up / down, router, LM head as TP shards them, m = 1 to 16k tokens).
- gemm_grouped_bmm_xG: the routed experts as G equal groups (``torch.bmm``), m = tokens x top-k / experts each.
- gemm_scaled_mm fp8: ``torch._scaled_mm`` with e4m3 inputs, per-tensor scales, bf16 output.
- gemm_torch_matmul_sustained (--sustained S): an 8192^3 bf16 GEMM back to back for S seconds, the median rate of
  the last fifth: what a long training load keeps once power / clock throttling sets in (short runs measure the
  boost clock).
- attn_fa2_fwd_bwd_{causal,full}: ``scaled_dot_product_attention`` forced to the flash backend, forward +
  backward, batch x seq = 16k, heads x head_dim = 2048 (the FlashAttention-2 paper's sizes; m = seq, n = head
  dim, k = heads); FLOPs = 3.5 x 4 b s^2 h d (/ 2 causal), as the FA2 benchmark counts them.
- elementwise_eager_rmsnorm / elementwise_eager_silu_mul: bf16 RMSNorm (torch ops) and SiLU-and-mul over tokens x
  hidden;
  bytes = what they must read and write; rows in TB/s by size.
- hbm_copy / hbm_read: ``dst.copy_(src)`` (2 x size bytes) and ``src.sum()`` (size bytes).
- launch_eager / launch_graph: a chain of 100 tiny kernels launched one by one, and replayed as a CUDA graph;
  value = microseconds per kernel (the per-kernel floor of issue 17 item 5).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import statistics
import sys


def _capture(fn, calls: int):
    """``calls`` calls of ``fn`` captured as one CUDA graph (after a warm-up call on a side stream, as
    torch.cuda.graphs requires); its replay, or None where ``fn`` cannot be captured (autograd, host syncs)."""
    import torch

    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
        return graph.replay
    except Exception:  # noqa: BLE001 - not capturable: the caller times it eagerly
        torch.cuda.synchronize()
        return None


def _event_ms(run, reps: int = 20) -> float:
    """Median milliseconds of ``run()`` between CUDA events."""
    import torch

    run()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _time_ms(fn, warmup: int = 5, reps: int = 20, inner: int = 10) -> float:
    """Median milliseconds of one call of ``fn``: ``inner`` calls captured as a CUDA graph and replayed ``reps``
    times between CUDA events (so a small kernel is timed, not Python's dispatch of it), else (a call that cannot
    be captured: autograd) ``inner`` eager calls back to back."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    run = _capture(fn, inner)
    if run is None:
        def run():
            for _ in range(inner):
                fn()
    return _event_ms(run, reps) / inner


SQUARE = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192),
          (16384, 16384, 16384), (6144, 12288, 12288),
          # llama-70b layer GEMMs at TP=1 (hidden 8192, ffn 28672): prefill (m = tokens) and decode
          (8192, 28672, 8192), (8192, 8192, 28672), (4096, 10240, 8192),
          (1, 28672, 8192), (8, 28672, 8192), (32, 28672, 8192), (64, 28672, 8192),
          (128, 28672, 8192), (256, 28672, 8192), (512, 28672, 8192)]
ATTN_SEQ = (512, 1024, 2048, 4096, 8192, 16384)
ELEMENTWISE_TOKENS = (16, 256, 4096, 16384)


def plan(models: list[str], tps: tuple[int, ...]) -> list[tuple[str, str, int, int, int, int, str]]:
    """(benchmark, dtype, m, n, k, groups, note) of every GEMM to time: the fixed list, then each --model's."""
    rows = [("gemm_torch_matmul", "bf16", m, n, k, 1, "") for m, n, k in SQUARE]
    if models:
        from tpplan.calibration.shapes import gemm_shapes
        from tpplan.catalog.load import get_catalog

        cat = get_catalog()
        for name in models:
            model = cat.model(name)
            for s in gemm_shapes(model, tps):
                rows.append((s.benchmark, "bf16", s.m, s.n, s.k, s.groups,
                             f"{model.name} {s.op} tp{s.tp} tokens {s.tokens}"))
    seen, out = set(), []
    for r in rows:
        if r[:6] not in seen:
            seen.add(r[:6])
            out.append(r)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="CSV to write (required unless --dry-run)")
    parser.add_argument("--gpu", default="h100-sxm", help="tpplan catalog name of the GPU (the CSV's gpu column)")
    parser.add_argument("--model", action="append", default=[], help="also time this catalog model's GEMMs")
    parser.add_argument("--tp", default="1,2,4,8", help="tensor-parallel sizes for --model (comma-separated)")
    parser.add_argument("--dry-run", action="store_true", help="list the measurements, time nothing")
    parser.add_argument("--sustained", type=float, default=0.0, metavar="SECONDS",
                        help="also run an 8192^3 bf16 GEMM back to back for this long and report the rate of its "
                             "last fifth (power / clock throttling under a training-like load; 0: skip)")
    args = parser.parse_args()
    tps = tuple(int(x) for x in args.tp.split(",") if x.strip())
    gemms = plan(args.model, tps)
    if args.dry_run:
        for bench, dtype, m, n, k, groups, note in gemms:
            print(bench, dtype, m, n, k, groups, note)
        print(f"{len(gemms)} GEMMs; plus fp8 GEMMs, {2 * len(ATTN_SEQ) * 2} attention, "
              f"{2 * len(ELEMENTWISE_TOKENS)} elementwise, 12 HBM and 2 launch-floor measurements")
        return 0
    if not args.out:
        parser.error("--out is required")
    import torch
    import torch.nn.functional as F

    name = torch.cuda.get_device_name(0)
    today = dt.date.today().isoformat()
    system = f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}, measured {today}"
    source = "tpplan benchmarks/gpu_microbench.py"
    rows = []

    def add(bench, dtype, m, n, k, size, value, unit, note):
        rows.append([args.gpu, bench, dtype, m, n, k, size, 1, round(value, 3), unit, note, system, source])
        print(bench, dtype, m, n, k, size, round(value, 3), unit, note, flush=True)

    def tflops(flops: float, ms: float) -> float:
        return flops / (ms * 1e-3) / 1e12

    # ---- GEMMs (bf16), the fixed list and the models' shapes
    for bench, _, m, n, k, groups, note in gemms:
        if groups == 1:
            a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
            ms = _time_ms(lambda a=a, b=b: torch.matmul(a, b))
        else:
            a = torch.randn(groups, m, k, device="cuda", dtype=torch.bfloat16)
            b = torch.randn(groups, k, n, device="cuda", dtype=torch.bfloat16)
            ms = _time_ms(lambda a=a, b=b: torch.bmm(a, b))
        add(bench, "bf16", m, n, k, "", tflops(2.0 * groups * m * n * k, ms), "TFLOP/s",
            f"{note}; median of 20 x 10 graph-replayed calls, random normal; {ms * 1e3:.1f} us".lstrip("; "))
        del a, b
    # ---- sustained GEMM: the rate a training-like load keeps once the power limit bites (H800 runs at ~1,600 MHz
    # under DeepSeek's FlashMLA kernels, 865 of 990 TFLOP/s: FlashMLA docs/20250422-new-kernel-deep-dive.md)
    if args.sustained > 0:
        import time

        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        rates, t_end = [], time.perf_counter() + args.sustained
        while time.perf_counter() < t_end:
            ms = _event_ms(lambda a=a, b=b: torch.matmul(a, b), reps=10)
            rates.append(tflops(2.0 * 8192**3, ms))
        tail = rates[-max(1, len(rates) // 5):]
        clock = ""
        try:
            clock = f"; SM clock {torch.cuda.clock_rate()} MHz at the end"
        except Exception:  # noqa: BLE001 - needs pynvml
            pass
        add("gemm_torch_matmul_sustained", "bf16", 8192, 8192, 8192, "", statistics.median(tail), "TFLOP/s",
            f"median of the last fifth of {args.sustained:.0f} s back to back (first: {rates[0]:.0f}){clock}")
        del a, b
    # ---- fp8 GEMMs (Hopper and later)
    if hasattr(torch, "_scaled_mm") and hasattr(torch, "float8_e4m3fn"):
        for m, n, k in SQUARE:
            if m < 16:
                continue
            try:
                a = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
                b = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()
                one = torch.tensor(1.0, device="cuda")
                ms = _time_ms(lambda a=a, b=b, one=one: torch._scaled_mm(a, b, scale_a=one, scale_b=one,
                                                                         out_dtype=torch.bfloat16))
                add("gemm_scaled_mm", "fp8", m, n, k, "", tflops(2.0 * m * n * k, ms), "TFLOP/s",
                    f"e4m3 per-tensor scale; {ms * 1e3:.1f} us")
                del a, b
            except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                print("fp8 skipped:", exc, file=sys.stderr)
                break
    # ---- attention: flash forward + backward at the FA2 paper's sizes
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        for d in (64, 128):
            heads = 2048 // d
            for causal in (True, False):
                for s in ATTN_SEQ:
                    b = max(16384 // s, 1)
                    q, k_, v = (torch.randn(b, heads, s, d, device="cuda", dtype=torch.bfloat16,
                                            requires_grad=True) for _ in range(3))
                    grad = torch.randn(b, heads, s, d, device="cuda", dtype=torch.bfloat16)

                    def step(q=q, k_=k_, v=v, grad=grad, causal=causal):
                        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                            o = F.scaled_dot_product_attention(q, k_, v, is_causal=causal)
                        o.backward(grad)

                    ms = _time_ms(step)
                    fl = 3.5 * 4.0 * b * s * s * heads * d / (2.0 if causal else 1.0)
                    add(f"attn_fa2_fwd_bwd_{'causal' if causal else 'full'}", "bf16", s, d, heads, "",
                        tflops(fl, ms), "TFLOP/s", f"SDPA flash backend, batch {b}; {ms * 1e3:.1f} us")
                    del q, k_, v, grad
    except Exception as exc:  # noqa: BLE001
        print("attention skipped:", exc, file=sys.stderr)
    # ---- elementwise kernels (torch ops, as an unfused engine would run them)
    hidden = 8192
    for t in ELEMENTWISE_TOKENS:
        x = torch.randn(t, hidden, device="cuda", dtype=torch.bfloat16)
        w = torch.ones(hidden, device="cuda", dtype=torch.bfloat16)

        def rms(x=x, w=w):
            return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(x.dtype) * w

        ms = _time_ms(rms)
        size = 2 * t * hidden * 2  # read x, write y (bf16)
        add("elementwise_eager_rmsnorm", "bf16", t, hidden, "", size, size / (ms * 1e-3) / 1e12, "TB/s",
            f"torch ops (unfused); {ms * 1e3:.1f} us")
        gu = torch.randn(t, 2 * 28672 // 8, device="cuda", dtype=torch.bfloat16)

        def silu_mul(gu=gu):
            g, u = gu.chunk(2, dim=-1)
            return F.silu(g) * u

        ms = _time_ms(silu_mul)
        size = t * (2 * 28672 // 8) * 2 + t * (28672 // 8) * 2  # read gate + up, write the product
        add("elementwise_eager_silu_mul", "bf16", t, 28672 // 8, "", size, size / (ms * 1e-3) / 1e12, "TB/s",
            f"torch ops (unfused); {ms * 1e3:.1f} us")
        del x, gu
    # ---- HBM
    for size in [2**20, 2**24, 2**26, 2**28, 2**30, 2**32]:
        src = torch.empty(size // 2, device="cuda", dtype=torch.bfloat16).normal_()
        dst = torch.empty_like(src)
        ms = _time_ms(lambda dst=dst, src=src: dst.copy_(src))
        add("hbm_copy", "bf16", "", "", "", size, 2 * size / (ms * 1e-3) / 1e12, "TB/s",
            f"read+write counted; {ms * 1e3:.1f} us")
        ms = _time_ms(lambda src=src: src.sum())
        add("hbm_read", "bf16", "", "", "", size, size / (ms * 1e-3) / 1e12, "TB/s",
            f"read only (sum); {ms * 1e3:.1f} us")
        del src, dst
    # ---- launch floor: 100 tiny dependent kernels, launched one by one and replayed as a CUDA graph
    y = torch.zeros(256, device="cuda")

    def chain(y=y):
        for _ in range(100):
            y.add_(1.0)

    add("launch_eager", "fp32", 256, "", "", "", _event_ms(chain) * 1e3 / 100, "us",
        "100 dependent add_ kernels launched one by one, per kernel")
    replay = _capture(chain, 1)
    if replay is not None:
        add("launch_graph", "fp32", 256, "", "", "", _event_ms(replay) * 1e3 / 100, "us",
            "the same 100 kernels replayed as one CUDA graph, per kernel")
    else:
        print("graph replay skipped: the chain could not be captured", file=sys.stderr)
    with open(args.out, "w", newline="") as fh:
        fh.write(f"# {system}; {source}\n")
        w = csv.writer(fh)
        w.writerow(["gpu", "benchmark", "dtype", "m", "n", "k", "size_bytes", "ranks", "value", "unit",
                    "note", "system", "source"])
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
