"""`tpplan validate` (published figures replayed within stated tolerances) and `tpplan calibrate` (overlays)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tpplan.calibration.validate import CATEGORIES, TOLERANCE
from tpplan.catalog.load import load_catalog
from tpplan.engine import comm

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "data"
DATA = Path(__file__).parent / "data"
EXAMPLE_LOG = DATA / "nccl" / "nccl-tests-allreduce-h100x8.txt"  # copy of shared/reference/data's example


def test_validate_passes_every_category(cli):
    code, out, err = cli("validate", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["passed"] is True
    cats = {c["category"]: c for c in d["categories"]}
    assert set(cats) == set(CATEGORIES) == {*TOLERANCE, "e2e"}
    # e2e passes when no guarded row regressed; its rows are in d["e2e"] (tests/test_e2e.py)
    assert sum(c["category"] == "e2e" for c in d["categories"]) == 5 and d["e2e"]["regressions"] == []
    # closed forms are exact; the microbenchmark categories carry their spread
    assert cats["activation"]["max_abs_error"] == 0 and cats["kv"]["max_abs_error"] == 0
    assert cats["collective"]["rows"] >= 50 and cats["collective"]["mean_abs_error"] < 0.06
    assert cats["decode"]["max_abs_error"] < 0.05  # bf16 decode roofline on the H100 run
    for r in d["rows"]:
        assert r["source"] and r["within_tolerance"], r


def test_validate_markdown_and_exit_code(cli, tmp_path):
    code, out, _ = cli("validate", "--format", "markdown", "--category", "kv")
    assert code == 0 and "| kv | 6 |" in out and "Llama-3.1-70B" in out
    # a catalog that breaks a published figure fails validation: a 70B with 16 KV heads doubles KV bytes/token
    cat = tmp_path / "cat"
    (cat / "models").mkdir(parents=True)
    src = (Path(__file__).parents[1] / "models" / "llama-3.1-70b.yaml").read_text()
    (cat / "models" / "llama-3.1-70b.yaml").write_text(src.replace("num_kv_heads: 8", "num_kv_heads: 16"))
    code, out, _ = cli("validate", "--category", "kv", "--catalog", str(cat))
    assert code == 1 and "NO" in out and "+100.0%" in out
    assert cli("validate", "--category", "nope")[0] == 2


def test_example_log_is_the_shared_one():
    if SHARED.is_dir():
        assert EXAMPLE_LOG.read_text() == (SHARED / EXAMPLE_LOG.name).read_text()


def _measured(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return np.array([float(r[0]) for r in rows]), np.array([float(r[-2]) * 1e9 for r in rows])


def test_calibrate_nccl_then_collective_reproduces_the_log(cli, tmp_path):
    overlay = tmp_path / "my-cluster.yaml"
    code, _, err = cli("calibrate", "nccl-tests", str(EXAMPLE_LOG), "--gpu", "h100-sxm", "--ranks", "8",
                       "-o", str(overlay))
    assert code == 0, err
    text = overlay.read_text()
    assert "nccl-tests-allreduce-h100x8.txt" in text and "overlay:" in text  # provenance: file name and date
    code, out, err = cli("collective", "all-reduce", "--gpu", "h100-sxm", "--gpus", "8", "--size", "1MiB:8GiB",
                         "--catalog", str(overlay), "--format", "json")
    assert code == 0, err
    pred = {r["size_bytes"]: r["busbw_bytes_per_s"] for r in json.loads(out)["rows"]}
    sizes, busbw = _measured(EXAMPLE_LOG)
    checked = 0
    for s, b in zip(sizes, busbw, strict=True):
        if s >= 2**20:
            assert pred[int(s)] == pytest.approx(b, rel=0.05), s
            checked += 1
    assert checked == 14
    # the smooth part of the fit alone (alpha, bandwidth, ramp) is already within 6% from 1 MiB up
    fit = comm.fit_sweep("all-reduce", sizes, busbw, 8)
    assert fit.max_rel_error < 0.06 and fit.spread < 0.035


NCCL_HEADER = ("# nThread 1 nGpus 1 minBytes 1048576 maxBytes 1073741824 step: 2(factor) warmup iters: 5 iters: 20 "
               "agg iters: 1 validation: 1 graph: 0\n") + """#
# Using devices
{ranks}
#
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
"""


def _synthetic_log(path: Path, gpu, op: str, n: int, inplace_na: bool = False) -> None:
    """A log in nccl-tests' format whose busbw is tpplan's own prediction (so the fit must recover it)."""
    ranks = "\n".join(f"#  Rank {i:2d} Group  0 Pid {1000 + i} on node{i // 8} device  {i % 8} [0x1b] "
                      "NVIDIA H100 80GB HBM3" for i in range(n))
    lines = [NCCL_HEADER.format(ranks=ranks)]
    for k in range(20, 31):
        s = 2**k
        t = float(comm.collective_time(gpu, op, np.array([float(s)]), n)[0])
        alg, bus = comm.algbw_busbw(op, s, n, t)
        ip = ("       N/A     N/A     N/A    N/A" if inplace_na
              else f"{t * 1e6:10.2f} {alg / 1e9:7.2f} {bus / 1e9:7.2f}      0")
        lines.append(f"{s:12d} {s // 2:13d}     float    none      -1 {t * 1e6:8.2f} {float(alg) / 1e9:7.2f} "
                     f"{float(bus) / 1e9:7.2f}      0 {ip}")
    path.write_text("\n".join(lines) + "\n# Avg bus bandwidth    : 100\n")


def test_calibrate_reads_rank_lines_other_ops_and_na_columns(cli, cat, tmp_path):
    gpu = cat.gpu("h100-sxm")
    log = tmp_path / "all_gather_perf.log"
    _synthetic_log(log, gpu, "all-gather", 8, inplace_na=True)
    out = tmp_path / "ag.yaml"
    code, _, err = cli("calibrate", "nccl-tests", str(log), "--gpu", "h100-sxm", "-o", str(out))
    assert code == 0, err
    assert "all-gather x8 (11 sizes)" in err  # ranks counted from the '#  Rank' lines
    import yaml

    intra = yaml.safe_load(out.read_text())["overlay"]["calibration"]["intra_node"]
    # all-gather runs at ring speed: the fit recovers the catalog's 370 GB/s ring bus bandwidth
    assert intra["ring_busbw_bytes_per_s"] == pytest.approx(370e9, rel=0.1)


def test_calibrate_two_nodes_recovers_the_network_level(cli, cat, tmp_path):
    gpu = cat.gpu("h100-sxm")
    log = tmp_path / "all_reduce_perf_2nodes.log"
    _synthetic_log(log, gpu, "all-reduce", 16)
    out = tmp_path / "net.yaml"
    code, _, err = cli("calibrate", "nccl-tests", str(log), "--gpu", "h100-sxm", "--nodes", "2", "-o", str(out))
    assert code == 0, err
    import yaml

    inter = yaml.safe_load(out.read_text())["overlay"]["calibration"]["inter_node"]
    # subtracting the modelled NVLink phases leaves the per-NIC ring: 47 GB/s in the bundled catalog
    assert inter["busbw_bytes_per_s"] == pytest.approx(47e9, rel=0.1)
    code, o, _ = cli("collective", "all-reduce", "--gpu", "h100-sxm", "--gpus", "16", "--size", "1GiB",
                     "--catalog", str(out), "--format", "json")
    base = float(comm.algbw_busbw("all-reduce", 2**30, 16, comm.collective_time(gpu, "all-reduce", 2**30, 16))[1])
    assert json.loads(o)["rows"][0]["busbw_bytes_per_s"] == pytest.approx(base, rel=0.02)


def test_calibrate_gemm_and_hbm_from_csv(cli, tmp_path):
    import yaml

    csv = Path(__file__).parents[1] / "hardware" / "calibration" / "microbenchmarks.csv"
    out = tmp_path / "g.yaml"
    assert cli("calibrate", "gemm", str(csv), "--gpu", "h200", "-o", str(out))[0] == 0
    f8 = yaml.safe_load(out.read_text())["overlay"]["calibration"]["flops_fp8"]
    # Azure ND H200 v5 cuBLASLt fp8 at 8192^3 .. 6144x12288x12288: 1,300-1,366 TFLOP/s of 1,978.9
    assert f8["low"] <= f8["value"] <= f8["high"] and 0.6 < f8["value"] < 0.72
    assert cli("calibrate", "hbm", str(csv), "--gpu", "a100-sxm-80gb", "-o", str(out))[0] == 0
    hbm = yaml.safe_load(out.read_text())["overlay"]["calibration"]["hbm"]
    # STREAM copy 1.61 TB/s of 2.039 x 0.84 (decode / copy ratio) = 0.663, the catalog's derivation
    assert hbm["value"] == pytest.approx(1.61e12 / 2.039e12 * 0.84, abs=0.002)
    merged = load_catalog([str(out)])
    from tpplan.catalog.load import apply_overlays

    apply_overlays(merged)
    assert merged.gpu("a100-sxm-80gb").calibration.hbm.value == hbm["value"]
    bad = tmp_path / "bad.csv"
    bad.write_text("gpu,value\nh100,1\n")
    code, _, err = cli("calibrate", "gemm", str(bad), "--gpu", "h100")
    assert code == 2 and "benchmark" in err and "unit" in err


def test_gemm_shapes_and_grouped_moe_gemms_through_the_roofline(cat):
    """issue 17 item 2: DeepGEMM's fp8 GEMM table (H800, dense m = 64 / 128 / 4,096 and MoE-grouped 4-8 experts
    x 256-8,192 rows) replayed through perf.gemm_roofline at the catalog's fp8 efficiencies: the grouped rows
    within 21%, the decode-shaped dense rows pessimistic (DeepGEMM streams fp8 weights faster than the
    torch._scaled_mm figure the catalog keeps), everything within the category's 30%."""
    from tpplan.calibration.validate import run_validation

    res = run_validation(cat, ["gemm-shape"])
    rows = [r for r in res["rows"] if r["category"] == "gemm-shape"]
    assert len(rows) == 28 and res["passed"]
    grouped = [r for r in rows if "contiguous" in r["name"] or "masked" in r["name"]]
    assert len(grouped) == 10 and max(abs(r["error"]) for r in grouped) < 0.22
    decode = [r for r in rows if " 64x" in r["name"]]
    assert len(decode) == 6 and sum(r["error"] for r in decode) / 6 < -0.10  # pessimistic on average


def test_model_gemm_shapes_hand_counted(cat):
    """issue 17 item 2: the GEMMs benchmarks/gpu_microbench.py --model times. Llama-3.1-70B at TP4 (config.json:
    h 8192, 64 heads / 8 KV heads of 128, ffn 28672 gated, vocab 128256): QKV N = (16 + 2 x 2) x 128 = 2,560,
    output K = 16 x 128 = 2,048, MLP up N = 2 x 7,168, down K = 7,168, LM head N = 32,064. Mixtral-8x7B at TP2,
    1,024 tokens: 8 experts of 2 x 7,168 / 4,096 fed 1,024 x 2 / 8 = 256 rows each, as one batched GEMM."""
    from tpplan.calibration.shapes import gemm_shapes

    got = {s.op: (s.m, s.n, s.k, s.groups) for s in gemm_shapes(cat.model("llama-3.1-70b"), (4,), (128,))}
    assert got == {"qkv_proj": (128, 2560, 8192, 1), "o_proj": (128, 8192, 2048, 1),
                   "mlp_up": (128, 14336, 8192, 1), "mlp_down": (128, 8192, 7168, 1),
                   "lm_head": (128, 32064, 8192, 1)}
    moe = {s.op: s for s in gemm_shapes(cat.model("mixtral-8x7b"), (2,), (1024,))}
    assert (moe["experts_up"].m, moe["experts_up"].n, moe["experts_up"].k, moe["experts_up"].groups) == (
        256, 14336, 4096, 8)
    assert moe["experts_up"].benchmark == "gemm_grouped_bmm_x8" and "mlp_up" not in moe
    # TP sizes that do not divide the heads are skipped; a shape is listed once
    shapes = gemm_shapes(cat.model("llama-3.1-70b"), (3, 8))
    assert {s.tp for s in shapes} == {8} and len({(s.m, s.n, s.k, s.groups) for s in shapes}) == len(shapes)


def test_gpu_microbench_dry_run_lists_the_model_shapes():
    """The benchmark script (run on a GPU) lists what it would time without one: the fixed shapes and every GEMM
    of the --model at each --tp, in the CSV's benchmark names."""
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "gpu_microbench.py"
    out = subprocess.run([sys.executable, str(script), "--model", "llama-3.1-70b", "--model", "mixtral-8x7b",
                          "--tp", "4", "--dry-run"], capture_output=True, text=True, check=True).stdout
    assert "gemm_torch_matmul bf16 128 2560 8192 1 llama-3.1-70b qkv_proj tp4 tokens 128" in out
    assert "gemm_grouped_bmm_x8 bf16 4096 7168 4096 8 mixtral-8x7b experts_up tp4 tokens 16384" in out


def test_calibrate_gemm_checks_every_measured_shape_against_the_time_model(cli, cat, tmp_path):
    """tpplan calibrate gemm fits the plateau efficiency on the large shapes and then replays every GEMM row of
    the CSV (any shape, grouped too) through the GEMM roofline at that efficiency: rows made from the model
    itself check to 0; one measured at 1 / 1.1 of the model's rate reads +10.0% (tpplan faster than measured)."""
    from tpplan.engine import perf

    gpu = cat.gpu("h100-sxm")
    peak, bw = gpu.peak_flops("bf16") * 0.74, gpu.hbm.bandwidth_bytes_per_s * gpu.calibration.hbm.value

    def rate(m, n, k, g=1):
        fl = 2.0 * g * m * n * k
        return fl / float(perf.gemm_roofline(fl * float(perf.gemm_k_slowdown(k)) / peak,
                                             g * (2.0 * (m * k + k * n) + 2.0 * m * n) / bw)) / 1e12

    rows = ["gpu,benchmark,dtype,m,n,k,size_bytes,ranks,value,unit,note"]
    for m, n, k in ((8192, 8192, 8192), (16384, 16384, 16384), (8192, 28672, 8192)):
        rows.append(f"h100-sxm,gemm_torch_matmul,bf16,{m},{n},{k},,1,{0.74 * gpu.peak_flops('bf16') / 1e12},"
                    "TFLOP/s,")
    rows.append(f"h100-sxm,gemm_torch_matmul,bf16,128,2560,8192,,1,{rate(128, 2560, 8192)},TFLOP/s,qkv tp4")
    rows.append(f"h100-sxm,gemm_grouped_bmm_x8,bf16,256,14336,4096,,1,{rate(256, 14336, 4096, 8)},TFLOP/s,")
    rows.append(f"h100-sxm,gemm_torch_matmul,bf16,512,8192,7168,,1,{rate(512, 8192, 7168) / 1.1},TFLOP/s,"
                "llama down tp4; slow")
    f = tmp_path / "m.csv"
    f.write_text("\n".join(rows) + "\n")
    code, _, err = cli("calibrate", "gemm", str(f), "--gpu", "h100-sxm")
    assert code == 0
    assert "shape check" in err and "against 6 measured GEMMs" in err
    assert "max 10.0%" in err and "512x8192x7168, llama down tp4: +10.0%" in err
