"""The long fuzz run of issue 22: N hostile or malformed inputs (tests/fuzz_cases.py), each in a forked child
whose wall time and peak memory are measured; prints the counts the closing note quotes.

    python benchmarks/fuzz.py --n 10000 [--seed 0] [--show 20]

Bounds: exit in {0, 1, 2, 141}, no internal error, under 2 s and 200 MiB per run, JSON without NaN or
Infinity, no file written but -o, and every calibrate overlay written loads.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fuzz_cases as fz  # noqa: E402

INPUTS = {"deploy.yaml", "cat", "config.json", "m.csv", "all_reduce_perf.log", "overlay.yaml"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=20, help="problems to print in full")
    ap.add_argument("--max-seconds", type=float, default=2.0)
    ap.add_argument("--max-mib", type=int, default=200)
    a = ap.parse_args()
    import tpplan.cli.app  # noqa: F401 - import once, before forking
    from tpplan.catalog.load import get_catalog

    get_catalog()
    rng = random.Random(a.seed)
    codes: collections.Counter[int] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    found: list[tuple[list[str], list[str]]] = []
    overlays = unusable = 0
    worst_s = worst_kb = 0.0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.n):
            scratch = Path(d) / str(i % 50)
            scratch.mkdir(exist_ok=True)
            argv = fz.make_case(rng, scratch)
            res = fz.run_case(argv, scratch)
            codes[int(res["code"])] += 1  # type: ignore[call-overload]
            worst_s = max(worst_s, float(res["seconds"]))  # type: ignore[arg-type]
            worst_kb = max(worst_kb, float(res["max_rss_kb"]))  # type: ignore[arg-type]
            pr = fz.problems(res, a.max_seconds, a.max_mib * 1024, INPUTS)
            if argv[0] == "calibrate" and res["code"] == 0:
                overlays += 1
                again = fz.run_case(["gpus", "show", "h100", "--catalog", str(scratch / "overlay.yaml")], scratch)
                if again["code"] != 0:
                    unusable += 1
                    pr.append("unusable overlay")
                (scratch / "overlay.yaml").unlink(missing_ok=True)
            for p in pr:
                kinds[p.split(":")[0].split(" (")[0]] += 1
            if pr:
                found.append((argv, pr))
    secs = time.perf_counter() - t0
    print(f"{a.n:,} inputs in {secs:.0f} s (seed {a.seed}); exit codes: "
          + ", ".join(f"{c}: {n:,}" for c, n in sorted(codes.items())))
    print(f"worst run {worst_s:.2f} s, peak memory {worst_kb / 1024:.0f} MiB; calibrate overlays written "
          f"{overlays}, unusable {unusable}")
    print(f"runs with a problem: {len(found)}" + (" (" + ", ".join(f"{k} {n}" for k, n in kinds.items()) + ")"
                                                  if kinds else ""))
    for argv, pr in found[:a.show]:
        print(" ", pr, [x[:80] for x in argv])
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
