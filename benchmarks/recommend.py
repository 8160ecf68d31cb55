"""Speed of the design-card search: layouts per second (engine alone) and the whole process wall time.

    python benchmarks/recommend.py

Goals (issue 5): the whole ``tpplan recommend --model llama-70b --ctx 128k`` under 0.5 s on a 2-core
machine, the engine over 1 million layouts per second; issue 16: the load model over 1 million layout x
load rows per second and the design-card command at 0.3 s.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time


def main() -> int:
    from tpplan.catalog.load import get_catalog
    from tpplan.engine import grid, memory, perf
    from tpplan.engine.workload import Context, ServeWorkload
    from tpplan.plan.serve import Constraints, Pricing, search_serve

    cat = get_catalog()
    m = cat.model("llama-70b")
    w = ServeWorkload(ctx=128_000, input_len=127_744, output_len=256)
    gpus = [cat.gpus[n].spec for n in cat.gpu_names()]
    # engine alone: memory + time over a large grid on one GPU type
    base = grid.enumerate_layouts(m, 4096, 8)
    ctx = Context(model=m, gpu=cat.gpu("h100-sxm"), serve=w)

    def fresh(g: grid.Grid) -> grid.Grid:
        """A copy of the grid: figures that depend on the grid and model alone are memoized per grid object
        (engine.grid.memo, shared by a search's GPU types), so a repetition on the same object would time
        less than one GPU type's evaluation does."""
        return g.take(np.arange(len(g)))

    import numpy as np

    times = []
    for _ in range(5):
        b = fresh(base)
        t0 = time.perf_counter()
        memory.serve_memory(ctx, b)
        perf.serve_time(ctx, b)
        times.append(time.perf_counter() - t0)
    rate = len(base) / statistics.median(times)
    print(f"engine: {len(base):,} layouts in {statistics.median(times) * 1e3:.1f} ms = {rate:,.0f} layouts/s")
    # the load model (issue 16) on the same grid: step coefficients and saturation, then the operating
    # point at a rate (open loop) and for one client per replica (closed loop, the latency objective)
    from tpplan.engine.load import Engine

    wl = ServeWorkload(ctx=128_000, input_len=127_744, output_len=256,
                       engine_profile=cat.engine("vllm")).for_gpu(cat.gpu("h100-sxm"))
    ctx_l = Context(model=m, gpu=cat.gpu("h100-sxm"), serve=wl)
    mem = memory.serve_memory(ctx_l, base)
    # Engine.of solves each distinct replica (and each distinct replica x load pair) once: the grid's 40k
    # layouts are ~1.4k replica shapes times their replica counts. "every row solved" turns that off
    # (Engine._of), the cost of a grid whose rows are all distinct
    for what, run in (("rate", lambda e: e.evaluate(e.saturation * 0.5)),
                      ("closed loop", lambda e: e.closed_loop(np.ones(len(base))))):
        for how, make in (("", Engine.of), (", every row solved", Engine._of)):
            lt = []
            for _ in range(3):
                b = fresh(base)
                t0 = time.perf_counter()
                run(make(ctx_l, b, mem))
                lt.append(time.perf_counter() - t0)
            print(f"load model ({what}{how}): {len(base):,} layout x load rows in {statistics.median(lt) * 1e3:.1f} "
                  f"ms = {len(base) / statistics.median(lt):,.0f} rows/s")
    s = search_serve(m, gpus, ServeWorkload(ctx=128_000, input_len=127_744, output_len=256,
                                            engine_profile=cat.engine("vllm")), Constraints(), Pricing(), "cost")
    print(f"search ({len(gpus)} GPUs, cost objective, each layout at its sustainable rate): {s.layouts:,} rows in "
          f"{s.seconds * 1e3:.1f} ms = {s.layouts / s.seconds:,.0f} rows/s")
    # the training search behind `recommend --train ... --max-gpus 1024` (all GPU types)
    from tpplan.engine.workload import TrainWorkload
    from tpplan.plan import train as training

    tw = TrainWorkload(seq_len=8192, global_batch=2048, tokens=15e12)
    res = training.recommend_train(m, gpus, tw, global_batch_tokens=None, max_gpus=1024, pricing=Pricing())
    sr = res["search"]
    print(f"training search ({len(gpus)} GPUs, up to 1,024 each): {sr['layouts_evaluated']:,} layouts in "
          f"{sr['seconds'] * 1e3:.0f} ms = {sr['layouts_evaluated'] / sr['seconds']:,.0f} layouts/s")
    walls, cpus = [], []
    # as an installed package runs: with its bytecode cached (pip compiles it at install; a shell with
    # PYTHONDONTWRITEBYTECODE=1 would recompile tpplan's modules on every start), after one warm-up run
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [sys.executable, "-m", "tpplan", "recommend", "--model", "llama-70b", "--ctx", "128k"]
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    for _ in range(11):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    # wall time is what the user waits; CPU time (user + system) is less disturbed by other load on a
    # shared machine, so a wall median well above it means the machine was busy
    print(f"whole command (process start included): wall median {statistics.median(walls):.3f} s, "
          f"min {min(walls):.3f} s; CPU median {statistics.median(cpus):.3f} s over {len(walls)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
