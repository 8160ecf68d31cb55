"""Hardening: fuzzed catalogs, config.json, deployments and arguments never crash (exit 2 with a message, never
exit 3 / a traceback); bounded huge searches; no stray files; shell completion; cross-command consistency."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpplan.check import lint
from tpplan.engine import grid, memory, perf
from tpplan.engine.workload import Context, ServeWorkload
from tpplan.plan import serve as planner

ROOT = Path(__file__).parents[1]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# values that break naive code: wrong types, signs, magnitudes, unicode, containers
NASTY = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "1e400", "nan", "∞", "🚀", "128K", "0x10", "[1", "{a: 1}", "null"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _paths(v, (*prefix, i))
    yield prefix


def _mutate(doc, path, value, mode):
    if not path:
        return value
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    last = path[-1]
    if mode == "delete" and isinstance(cur, dict) and last in cur:
        del cur[last]
    elif mode == "rename" and isinstance(cur, dict) and last in cur:
        cur[f"{last}_x"] = cur.pop(last)
    else:
        cur[last] = value
    return doc


def _assert_clean(code, err):
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:  # our one-paragraph error, or click's usage error naming the option
        assert (err.startswith("tpplan: error:") or "Error: " in err) and len(err.strip()) > 20


@pytest.mark.parametrize("src", ["hardware/h100-sxm.yaml", "models/deepseek-v3.yaml"])
@FUZZ
@given(data=st.data())
def test_fuzzed_catalog_files_exit_0_or_2(cli, tmp_path_factory, src, data):
    doc = yaml.safe_load((ROOT / src).read_text())
    paths = list(_paths(doc))
    path = data.draw(st.sampled_from(paths))
    doc = _mutate(doc, path, data.draw(NASTY), data.draw(st.sampled_from(["set", "delete", "rename"])))
    folder = tmp_path_factory.mktemp("cat")
    (folder / Path(src).name).write_text(yaml.safe_dump(doc, allow_unicode=True) if doc is not None else "")
    kind = "gpus" if src.startswith("hardware") else "models"
    code, _, err = cli(kind, "--catalog", str(folder))
    _assert_clean(code, err)
    if code == 2:
        assert str(folder) in err  # the message names the file as given


@FUZZ
@given(data=st.data())
def test_fuzzed_config_json_import(cli, tmp_path_factory, data):
    cfg = json.loads((ROOT / "tests" / "data" / "deploy" / "qwen2.5-7b-config.json").read_text())
    key = data.draw(st.sampled_from(sorted(cfg)))
    cfg = _mutate(cfg, (key,), data.draw(NASTY), data.draw(st.sampled_from(["set", "delete"])))
    f = tmp_path_factory.mktemp("hf") / "config.json"
    f.write_text(json.dumps(cfg, allow_nan=True))
    code, out, err = cli("import-hf", str(f))
    _assert_clean(code, err)
    code, out, err = cli("estimate", "--model", str(f), "--gpu", "h100", "--ctx", "4k", "--tp", "2")
    _assert_clean(code, err)


@FUZZ
@given(data=st.data())
def test_fuzzed_deployments_never_crash_check(tmp_path_factory, cli, data):
    doc = next(yaml.safe_load_all((ROOT / "tests" / "data" / "deploy" / "good" / "llama70b-h100.yaml").read_text()))
    key = data.draw(st.sampled_from([*sorted(doc), "slo", "budget", "new_key"]))
    doc = _mutate(doc, (key,), data.draw(NASTY), data.draw(st.sampled_from(["set", "delete", "rename"])))
    f = tmp_path_factory.mktemp("dep") / "d.yaml"
    f.write_text(yaml.safe_dump(doc, allow_unicode=True))
    for fmt in ("json", "sarif", "github"):
        code, out, err = cli("check", str(f), "--format", fmt)
        assert code in (0, 1, 2) and "Traceback" not in err and "internal error" not in err, err
        if fmt != "github":
            json.loads(out)


ARGS = {
    "--ctx": st.sampled_from(["0", "-5", "1", "128k", "128K", "1e9", "abc", "2T", "9" * 30, "½"]),
    "--tp": st.sampled_from(["0", "-1", "3", "8", "1000000", "x"]),
    "--concurrency": st.sampled_from(["0", "1", "100000", "-3", "1.5"]),
    "--max-gpus": st.sampled_from(["0", "1", "100000", "2000000", "-1"]),
    "--price": st.sampled_from(["h100=2", "h100=-1", "=3", "h100=abc", "h100=1e308"]),
    "--ttft-slo": st.sampled_from(["0", "1ms", "-1s", "fast", "1e-30"]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=st.sampled_from(["estimate", "recommend", "report"]),
       picks=st.dictionaries(st.sampled_from(sorted(ARGS)), st.none(), max_size=4), data=st.data())
def test_fuzzed_arguments(cli, cmd, picks, data):
    argv = [cmd, "--model", "llama-8b"]
    if cmd == "estimate":
        argv += ["--gpu", "h100"]
        argv += [] if "--ctx" in picks else ["--ctx", "4k"]
    else:
        argv += ["--gpu", "h100", "--gpu", "l40s"]
    for opt in picks:
        if (cmd == "estimate" and opt in ("--max-gpus", "--ttft-slo")) or (cmd != "estimate" and opt == "--tp"):
            continue  # options the command does not have
        argv += [opt, data.draw(ARGS[opt])]
    code, out, err = cli(*argv)
    _assert_clean(code, err)
    if code == 0 and "--format" not in argv:
        assert "nan" not in out.lower().split()


@pytest.mark.parametrize("make", ["empty", "dir", "missing", "loop", "binary", "unicode", "python-tag", "bom"])
def test_special_files(cli, tmp_path, make):
    f = tmp_path / "m.yaml"
    if make == "empty":
        f.write_text("")
    elif make == "dir":
        f.mkdir()
    elif make == "loop":
        os.symlink(tmp_path / "m2.yaml", tmp_path / "m1.yaml")
        os.symlink(tmp_path / "m1.yaml", f)
    elif make == "binary":
        f.write_bytes(b"\x00\xff\xfe garbage \x89PNG")
    elif make == "unicode":
        f = tmp_path / "模型-ü.yaml"
        f.write_text("name: ünïcode\nfamily: 🚀\n")
    elif make == "python-tag":
        f.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    elif make == "bom":
        f.write_bytes("\ufeffname: x\n".encode())
    for argv in (["models", "show", str(f)], ["estimate", "--model", str(f), "--gpu", "h100", "--ctx", "4k"],
                 ["check", str(f)], ["calibrate", "gemm", str(f), "--gpu", "h100"],
                 ["calibrate", "nccl-tests", str(f), "--gpu", "h100", "--ranks", "8"]):
        code, out, err = cli(*argv)
        assert "Traceback" not in err and "internal error" not in err
        if argv[0] == "check" and make in ("unicode", "python-tag", "bom"):
            # a mapping with no deployment key (name:, family:) is not a deployment: skipped with a note (#20)
            assert code == 0 and "skipped: not a deployment" in out and f.name in out, (argv, code, out, err)
            continue
        assert code == 2, (argv, code, out, err)
        if argv[0] != "check":
            assert str(f) in err or f.name in err, err  # the path as given
        else:
            assert f.name in out


def test_safe_loader_never_runs_tags(cli, tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "d.yaml"
    f.write_text(f"model: !!python/object/apply:os.system ['touch {marker}']\ngpu: h100\n")
    code, out, _ = cli("check", str(f), "-f", "json")
    assert code == 2 and not marker.exists()


def test_huge_search_is_bounded_and_independent_of_max_gpus(cli, cli_json):
    _, small = cli_json("recommend", "--model", "llama-70b", "--ctx", "8k", "--max-gpus", "8192", "--gpu", "h100")
    code, huge = cli_json("recommend", "--model", "llama-70b", "--ctx", "8k", "--max-gpus", "100000",
                          "--gpu", "h100")
    assert code == 0
    # serving searches every model-parallel layout once (DP replicas never rank higher): 100,000 GPUs cost
    # what 8,192 do (TP <= 64 heads-valid sizes x PP <= 80 layers < 8,192 GPUs)
    assert huge["search"]["layouts_evaluated"] == small["search"]["layouts_evaluated"]
    assert huge["candidates"][0]["layout"] == small["candidates"][0]["layout"]
    code, _, err = cli("recommend", "--model", "llama-70b", "--max-gpus", "2000000")
    assert code == 2 and "1,048,576" in err


def test_huge_search_memory_under_500_mb():
    code = ("import resource, sys\nfrom tpplan.cli.app import run\n"
            "rc = run(['recommend', '--model', 'llama-405b', '--ctx', '128k', '--max-gpus', '100000', '--objective',"
            " 'cost', '--format', 'json'])\n"
            "rc2 = run(['recommend', '--train', '--model', 'llama-405b', '--tokens', '15T', '--seq-len', '8192',"
            " '--global-batch-tokens', '16M', '--max-gpus', '100000', '--gpu', 'h100', '--format', 'json'])\n"
            "sys.stderr.write(f'{rc} {rc2} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rc, rc2, kb = p.stderr.strip().split()[-3:]
    assert rc == "0" and rc2 == "0"
    assert int(kb) < 500 * 1024, f"peak RSS {int(kb) / 1024:.0f} MB"


def test_no_file_written_outside_output(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    deploy = ROOT / "tests" / "data" / "deploy" / "good"
    for argv in (["recommend", "--model", "llama-8b", "--ctx", "4k"],
                 ["estimate", "--model", "llama-8b", "--gpu", "h100",
                 "--ctx", "4k"], ["check", str(deploy)], ["validate", "--category", "kv"], ["models"], ["gpus"],
                 ["report", "--model", "llama-8b", "--gpu", "h100", "--format", "csv"]):
        cli(*argv)
    assert list(tmp_path.iterdir()) == []
    cli("report", "--model", "llama-8b", "--gpu", "h100", "-o", "r.md")
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]


def test_shell_completion_works():
    env = {**os.environ, "_TPPLAN_COMPLETE": "complete_bash", "COMP_WORDS": "tpplan rec", "COMP_CWORD": "1"}
    p = subprocess.run([sys.executable, "-m", "tpplan"], capture_output=True, text=True, env=env)
    assert "recommend" in p.stdout, p.stdout + p.stderr
    env["COMP_WORDS"], env["COMP_CWORD"] = "tpplan recommend --obj", "2"
    p = subprocess.run([sys.executable, "-m", "tpplan"], capture_output=True, text=True, env=env)
    assert "--objective" in p.stdout
    p = subprocess.run([sys.executable, "-m", "tpplan", "--show-completion", "bash"], capture_output=True, text=True,
                       env={**os.environ, "SHELL": "/bin/bash"})
    assert p.returncode == 0 and "_TPPLAN_COMPLETE" in p.stdout


# ---- engine invariants: monotonic in FLOPS and memory; estimate, recommend and check agree ----------------

CASE = st.tuples(st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen2.5-72b"]),
                 st.sampled_from(["h100-sxm", "a100-sxm-80gb", "l40s", "mi300x", "h200"]),
                 st.sampled_from([1, 2, 4, 8]), st.sampled_from([1, 2]), st.sampled_from([2048, 32768, 131072]),
                 st.sampled_from([1, 8, 64]))


def _scaled(gpu, flops=1.0, mem=1.0):
    d = gpu.model_dump()
    d["compute"]["dense_flops_per_s"] = {k: v * flops for k, v in d["compute"]["dense_flops_per_s"].items()}
    d["memory"]["capacity_bytes"] = int(d["memory"]["capacity_bytes"] * mem)
    return type(gpu).model_validate(d)


@settings(max_examples=40, deadline=None)
@given(CASE)
def test_more_flops_never_slower_more_memory_never_fewer_sequences(cat, case):
    model, gpu, tp, pp, ctx, conc = case
    m, g0 = cat.model(model), cat.gpu(gpu)
    w = ServeWorkload(ctx=ctx, input_len=ctx - 256, output_len=256, concurrency=conc)
    g = grid.make(tp=tp, pp=pp, concurrency=conc)
    base = perf.serve_time(Context(model=m, gpu=g0, serve=w), g)
    fast = perf.serve_time(Context(model=m, gpu=_scaled(g0, flops=2.0), serve=w), g)
    assert fast.ttft[0] <= base.ttft[0] * (1 + 1e-12) and fast.tpot[0] <= base.tpot[0] * (1 + 1e-12)
    small = memory.serve_memory(Context(model=m, gpu=g0, serve=w), g)
    big = memory.serve_memory(Context(model=m, gpu=_scaled(g0, mem=2.0), serve=w), g)
    assert big.max_concurrency[0] >= small.max_concurrency[0]


@settings(max_examples=25, deadline=None)
@given(CASE)
def test_estimate_recommend_and_check_agree_on_feasibility(cat, case):
    model, gpu, tp, pp, ctx, conc = case
    m, g = cat.model(model), cat.gpu(gpu)
    if ctx > m.max_position_embeddings:
        ctx = m.max_position_embeddings
    # the engine profile check resolves for a file without engine keys (vLLM), as the CLI's estimate does
    w = ServeWorkload(ctx=ctx, input_len=ctx - 256, output_len=256, concurrency=conc,
                      engine_profile=cat.engine("vllm"))
    est = planner.estimate_serve(m, g, w, tp, pp)
    doc = (f"model: {model}\ngpu: {gpu}\ntensor_parallel_size: {tp}\npipeline_parallel_size: {pp}\n"
           f"max_model_len: {ctx}\nmax_num_seqs: {conc}\ninput_len: {ctx - 256}\noutput_len: 256\n")
    findings = lint.check_text(doc, "d.yaml", cat)
    rules = {f.rule for f in findings}
    reasons = set(est["reasons"])
    # the same evaluation: each infeasibility reason is exactly one check rule
    mapping = {"WEIGHTS_DONT_FIT": "TPP010", "KV_BELOW_ONE_REQUEST": "TPP011", "CONCURRENCY_DOESNT_FIT": "TPP012",
               "CTX_ABOVE_MODEL_MAX": "TPP013"}
    for reason, rule in mapping.items():
        assert (reason in reasons) == (rule in rules), (reasons, rules)
    # recommend's search evaluates the same row identically
    s = planner.search_serve(m, [g], w, planner.Constraints(max_gpus=64), planner.Pricing())
    ev = s.evals[0]
    hit = np.nonzero((ev.g.tp == tp) & (ev.g.pp == pp) & (ev.g.dp == 1) & (ev.g.cp == 1) & (ev.g.ep == 1)
                     & (ev.g.concurrency == conc))[0]
    if hit.size:
        assert set(grid.Reason.names(int(ev.reasons[hit[0]]))) == reasons
        assert float(ev.t.tpot[hit[0]]) == pytest.approx(est["serve"]["idle"]["tpot_s"], rel=1e-12)
        # and the same operating point under load (the closed loop at the row's concurrency)
        assert float(ev.load.load.tpot[hit[0]]) == pytest.approx(est["serve"]["tpot_s"], rel=1e-9)


LOG_LINE = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(["1024", "256", "float", "sum", "-1", "25.6", "0.04", "0.07", "0", "N/A", "nan",
                              "-3", "1e999", "#", "#wrong", "bfloat16"]), min_size=0, max_size=14).map(" ".join),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LOG_LINE, max_size=30), name=st.sampled_from(["all_reduce_perf.log", "x.txt",
                                                                    "alltoall_perf.out"]))
def test_fuzzed_nccl_logs(cli, tmp_path_factory, lines, name):
    f = tmp_path_factory.mktemp("nccl") / name
    f.write_text("\n".join(lines))
    code, out, err = cli("calibrate", "nccl-tests", str(f), "--gpu", "h100", "--ranks", "8")
    _assert_clean(code, err)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["h100", "h200", "nope", ""]),
                               st.sampled_from(["gemm_x", "hbm_copy", "hbm_gemv", "other", ""]),
                               st.sampled_from(["bf16", "fp8", "", "fp64"]), NASTY, NASTY, NASTY, NASTY,
                               st.sampled_from(["TFLOP/s", "TB/s", "GB/s", "furlongs", ""])), max_size=8),
       kind=st.sampled_from(["gemm", "hbm"]))
def test_fuzzed_microbenchmark_csv(cli, tmp_path_factory, rows, kind):
    import csv as csv_mod
    import io

    buf = io.StringIO()
    w = csv_mod.writer(buf)
    w.writerow(["gpu", "benchmark", "dtype", "m", "n", "k", "value", "unit"])
    for r in rows:
        w.writerow(r)
    f = tmp_path_factory.mktemp("csv") / "m.csv"
    f.write_text(buf.getvalue())
    code, out, err = cli("calibrate", kind, str(f), "--gpu", "h100")
    _assert_clean(code, err)


def test_pasted_serve_command_runs_no_extra_command(tmp_path, cli_json):
    """issue 22: a catalog hf_id of `org/x; touch PWNED #` printed `vllm serve org/x; touch PWNED # ...`."""
    import shlex
    import subprocess

    src = (ROOT / "models" / "llama-3.1-8b.yaml").read_text()
    evil = src.replace("name: llama-3.1-8b", "name: evil-8b").replace(
        "hf_id: meta-llama/Llama-3.1-8B-Instruct", 'hf_id: "org/x; touch PWNED #$(touch PWNED2)"')
    evil = "\n".join(ln for ln in evil.splitlines() if not ln.startswith("- ")).replace("aliases:", "aliases: []")
    (tmp_path / "cat" / "models").mkdir(parents=True)
    (tmp_path / "cat" / "models" / "evil.yaml").write_text(evil + "\n")
    code, d = cli_json("recommend", "--model", "evil-8b", "--ctx", "4k", "--gpu", "h100", "--catalog",
                       str(tmp_path / "cat"))
    cmd = d["serving_command"]
    assert code == 0 and shlex.split(cmd)[2] == "org/x; touch PWNED #$(touch PWNED2)"
    # the shell parses it as one command whose argument holds the string: run it with `echo` in front
    out = subprocess.run(["bash", "-c", "echo " + cmd], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    # a model without a Hugging Face id gets a shell-safe placeholder word
    code, d = cli_json("recommend", "--layers", "12", "--hidden", "768", "--heads", "12", "--vocab", "50257",
                       "--ctx", "2k", "--gpu", "h100")
    assert " MODEL_PATH " in d["serving_command"] and "<" not in d["serving_command"]


def test_yaml_alias_bomb_and_recursive_alias_are_refused(cli, tmp_path):
    """issue 22: 8 levels of 9 aliases (~500 bytes) exhausted memory in check and --catalog."""
    import resource

    lines = ["model: llama-3.1-8b", "gpu: h100-sxm", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, out, _ = cli("check", str(bomb))
    assert code == 2 and "alias bomb" in out
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing was expanded
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "m.yaml").write_text("\n".join(lines) + "\n")
    assert cli("models", "--catalog", str(tmp_path / "cat"))[0] == 2
    rec = tmp_path / "rec.yaml"
    rec.write_text("a: &a [*a]\n")
    code, out, _ = cli("check", str(rec))
    assert code == 2 and "recursive YAML alias" in out
    # ordinary anchors and aliases still load
    ok = tmp_path / "ok.yaml"
    ok.write_text("base: &b {ttft_s: 2}\nmodel: llama-3.1-8b\ngpu: h100-sxm\nslo: *b\nmax_model_len: 4k\n")
    assert cli("check", str(ok))[0] in (0, 1)


def test_devices_fifos_and_huge_files_are_refused_by_type(cli, tmp_path):
    """issue 22: `check /dev/zero` and `--model /dev/zero` ran out of memory; `check fifo.yaml` hung."""
    import os

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for args in (["check", "/dev/zero"], ["check", str(fifo)], ["models", "show", "/dev/zero"],
                 ["estimate", "--model", "/dev/zero", "--gpu", "h100", "--ctx", "4k"]):
        code, out, err = cli(*args)
        assert code == 2 and "not a regular file" in out + err, args
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(65 * 2**20)
    code, out, _ = cli("check", str(big))
    assert code == 2 and "64 MiB at most" in out


def test_contract_errors_instead_of_silent_acceptance(cli, tmp_path):
    """issue 22 item 11: an unknown GPU in --price, a unit-less SLO and serving options with --train."""
    code, _, err = cli("recommend", "--model", "llama-8b", "--ctx", "4k", "--price", "nosuchgpu=3")
    assert code == 2 and "unknown GPU 'nosuchgpu'" in err
    code, _, err = cli("recommend", "--model", "llama-8b", "--ctx", "4k", "--tpot-slo", "50")
    assert code == 2 and "50ms or 50s" in err
    assert cli("recommend", "--model", "llama-8b", "--ctx", "4k", "--tpot-slo", "50ms", "--top", "1")[0] == 0
    code, _, err = cli("recommend", "--train", "--model", "llama-8b", "--tokens", "1T", "--seq-len", "4096",
                       "--global-batch", "256", "--ttft-slo", "1s", "--rate", "3/s")
    assert code == 2 and "--ttft-slo, --rate apply to serving" in err
    # -o never replaces a device, FIFO, symlink or read-only file
    ro = tmp_path / "ro.md"
    ro.write_text("keep")
    ro.chmod(0o444)
    link = tmp_path / "link.md"
    link.symlink_to(tmp_path / "elsewhere.md")
    for target in ("/dev/null", str(link), str(ro)):
        code, _, err = cli("report", "--model", "llama-8b", "--gpu", "h100", "--ctx", "4k", "-o", target)
        assert code == 2, target
    assert ro.read_text() == "keep" and not (tmp_path / "elsewhere.md").exists()


CORPUS = {  # issue 22 item 6: each of these ended in "internal error" (exit 3)
    "tag-int.yaml": "model: !!int llama\ngpu: h100-sxm\n",
    "tag-bool.yaml": "model: llama-3.1-8b\ngpu: !!bool maybe\n",
    "bad-date.yaml": "model: llama-3.1-8b\ngpu: h100-sxm\nas_of: 2026-02-30\n",
    "huge-ctx.yaml": "model: llama-3.1-8b\ngpu: h100-sxm\nmax_model_len: 1e20\n",
    "huge-int.yaml": "model: llama-3.1-8b\ngpu: h100-sxm\ntensor_parallel_size: " + "9" * 30 + "\n",
    "long-name.yaml": "model: " + "x" * 300 + "\ngpu: h100-sxm\n",
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_regression_corpus_exits_2_with_the_line(cli, tmp_path, name):
    f = tmp_path / name
    f.write_text(CORPUS[name])
    code, out, err = cli("check", str(f))
    assert code == 2 and "internal error" not in out + err and name in out and "TPP100" in out


@pytest.mark.parametrize("args", [
    ["estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "4k", "--tp", "9223372036854775808"],
    ["estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "1e20"],
    ["models", "show", "x" * 300],
    ["estimate", "--model", "x" * 300, "--gpu", "h100", "--ctx", "4k"],
    ["nosuchcommand"],
    ["estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx"],
    ["recommend", "--cp", "3"],
])
def test_cli_regression_corpus(cli, args):
    code, out, err = cli(*args)
    assert code == 2 and "internal error" not in err
    # one paragraph, not click's Usage / Try / Error form
    assert err.startswith("tpplan: error:") and "Usage:" not in err and err.count("\n") == 1


def test_deep_or_huge_json_config_exits_2(cli, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    big = tmp_path / "big.json"
    big.write_text('{"hidden_size": ' + "9" * 5000 + "}")
    for f, words in ((deep, "nested too deep"), (big, "unreadable JSON number")):
        code, _, err = cli("import-hf", str(f))
        assert code == 2 and words in err


def test_full_or_closed_stdout_exits_2_in_one_line(tmp_path):
    import subprocess
    import sys

    base = [sys.executable, "-m", "tpplan"]
    with open("/dev/full", "w") as full:
        r = subprocess.run([*base, "gpus"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 2 and "No space left on device" in r.stderr and r.stderr.count("\n") == 1
    r = subprocess.run(["sh", "-c", f"{sys.executable} -m tpplan models >&-"], capture_output=True, text=True)
    assert r.returncode == 2 and "standard output is closed" in r.stderr
    r = subprocess.run(["sh", "-c", f"{sys.executable} -m tpplan models show deepseek-v3 | true"],
                       capture_output=True, text=True)
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr


def _catalog_with(tmp_path, gpu_edit=None, model_edit=None):
    cat = tmp_path / "cat"
    (cat / "hardware").mkdir(parents=True, exist_ok=True)
    (cat / "models").mkdir(parents=True, exist_ok=True)
    if gpu_edit:
        src = (ROOT / "hardware" / "h100-sxm.yaml").read_text()
        (cat / "hardware" / "h100-sxm.yaml").write_text(gpu_edit(src))
    if model_edit:
        src = (ROOT / "models" / "llama-3.1-8b.yaml").read_text()
        (cat / "models" / "x.yaml").write_text(model_edit(src))
    return str(cat)


@pytest.mark.parametrize("value", [".inf", "1e-300", ".nan"])
def test_catalog_rejects_unphysical_bandwidths(cli, tmp_path, value):
    """issue 22 item 9: a .inf or 1e-300 HBM bandwidth made the winner cost 'inf' $ per 1M tokens."""
    import re

    cat = _catalog_with(tmp_path, gpu_edit=lambda s: re.sub(r"bandwidth_bytes_per_s: [0-9.e]+",
                                                             f"bandwidth_bytes_per_s: {value}", s, count=1))
    code, _, err = cli("recommend", "--model", "llama-8b", "--ctx", "4k", "--gpu", "h100", "--catalog", cat)
    assert code == 2 and "h100-sxm.yaml" in err and "bandwidth_bytes_per_s" in err


def test_control_characters_and_html_never_reach_the_output(cli, tmp_path):
    """issue 22 item 9: ANSI escapes in catalog names reached the terminal; raw HTML passed into markdown; a
    bare CR split a markdown table row."""
    cat = _catalog_with(tmp_path, model_edit=lambda s: s.replace(
        "name: llama-3.1-8b", 'name: "evil\\e[31m<b>x</b>\\rrow"').replace(
        "hf_id: meta-llama/Llama-3.1-8B-Instruct", "hf_id: org/evil").replace("- llama-8b\n", "").replace(
        "- llama-3.1-8b-instruct\n", "").replace("aliases:\n", "aliases: []\n"))
    for fmt in ("table", "markdown"):
        code, out, err = cli("recommend", "--model", "org/evil", "--ctx", "4k", "--gpu", "h100", "--catalog", cat,
                             "--format", fmt, "--top", "2")
        assert code == 0, err
        assert "\x1b" not in out and "\r" not in out
        if fmt == "markdown":
            assert "<b>" not in out and "&lt;b&gt;" in out
            assert all(line.count("|") >= 10 for line in out.splitlines() if line.startswith("| 1 "))


def test_report_and_plot_are_written_together_or_not_at_all(cli, tmp_path):
    pytest.importorskip("matplotlib")
    ok = tmp_path / "ok.html"
    # /proc takes no new files, even from root: the chart cannot be staged, so the report is not written
    code, _, err = cli("report", "--model", "llama-8b", "--gpu", "h100", "--ctx", "4k", "--format", "html",
                       "-o", str(ok), "--plot", "/proc/tpplan-c.svg")
    assert code == 2 and not ok.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tpplan-")]


def test_html_report_leaves_home_untouched(tmp_path):
    """issue 22 item 10: report --format html wrote matplotlib's font cache under ~/.cache and ~/.config."""
    pytest.importorskip("matplotlib")
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    r = subprocess.run([sys.executable, "-m", "tpplan", "report", "--model", "llama-8b", "--gpu", "h100", "--ctx",
                        "4k", "--format", "html", "-o", str(tmp_path / "r.html")], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert list(home.iterdir()) == []


def test_glob_does_not_follow_folder_links(cli, tmp_path, monkeypatch):
    """issue 22 item 4: `check 'dir/**/*.yaml'` with a link to '..' inside multiplied (or never finished)."""
    d = tmp_path / "deploy"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "up").symlink_to("..")
    (d / "a.yaml").write_text((ROOT / "tests" / "data" / "deploy" / "good" / "llama70b-h100.yaml").read_text())
    (d / "sub" / "b.yml").write_text("model: llama-3.1-8b\ngpu: h100-sxm\n")
    for pattern in (f"{d}/**/*.yaml", str(d)):
        code, out, _ = cli("check", pattern, "--format", "json")
        assert code == 0 and json.loads(out)["summary"]["files"] == (1 if "*" in pattern else 2)
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("check", "deploy/**/*.y*ml", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["files"] == 2


def test_divisors_by_square_root():
    from tpplan.engine.grid import divisors

    assert divisors(60) == [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]
    assert divisors(1) == [1] and divisors(49) == [1, 7, 49]
    assert len(divisors(10**9)) == 100  # 2^9 5^9: (9 + 1)^2, in milliseconds


def test_calibrate_never_writes_an_overlay_that_cannot_load(cli, tmp_path):
    """issue 22 item 5: two logs of one collective gave duplicate sizes ('correction_sizes_bytes must
    increase' when loaded); a GEMM faster than the peak wrote an efficiency above 1."""
    log = ROOT / "tests" / "data" / "nccl" / "nccl-tests-allreduce-h100x8.txt"
    ov = tmp_path / "ov.yaml"
    code, _, err = cli("calibrate", "nccl-tests", str(log), str(log), "--gpu", "h100-sxm", "--ranks", "8",
                       "-o", str(ov))
    assert code == 0, err
    assert cli("gpus", "show", "h100", "--catalog", str(ov))[0] == 0  # repeated sizes merged (median per size)
    assert cli("calibrate", "nccl-tests", str(log), "--gpu", "h100-sxm", "--ranks", "1", "-o",
               str(tmp_path / "one.yaml"))[0] == 2
    csv_ = tmp_path / "g.csv"
    csv_.write_text("gpu,benchmark,dtype,m,n,k,size_bytes,ranks,value,unit\n"
                    "h100-sxm,gemm_bf16,bf16,8192,8192,8192,,,5000,TFLOP/s\n")
    bad = tmp_path / "bad.yaml"
    code, _, err = cli("calibrate", "gemm", str(csv_), "--gpu", "h100", "-o", str(bad))
    assert code == 2 and "would not load" in err and not bad.exists()


def test_ctrl_c_at_any_moment_prints_no_traceback():
    """issue 22 item 10: SIGINT during start-up printed a traceback once in 40 tries."""
    import signal
    import subprocess
    import sys
    import time

    # from 0.1 s on: before that the interpreter itself is starting (its own traceback, not ours); on a loaded
    # 2-core CI runner the CLI import still runs until ~0.5 s
    for delay in (0.1, 0.2, 0.35, 0.6):
        p = subprocess.Popen([sys.executable, "-m", "tpplan", "models"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        # an interrupt while the interpreter itself starts (runpy, site, an editable install's .pth finder
        # __editable___tpplan_*_finder.py) is Python's to report; no frame of the tpplan package may show
        assert not re.search(r'File "[^"]*[/\\]tpplan[/\\]', err), (delay, p.returncode, err)
        assert p.returncode in (0, 1, 130, -2), (delay, p.returncode, err)


def test_yaml_merge_keys_and_yaml11_boolean_keys():
    """Issue 19: a valid merge key (<<: *base) was reported as malformed YAML, and a CI workflow's 'on:' key
    became True. Merge semantics as PyYAML's: explicit keys win, then the first merged mapping."""
    from tpplan import yamlio

    text = ("a: &a {tp: 2, ctx: 4096}\nb: &b {tp: 8, pp: 2}\n"
            "c:\n  <<: [*a, *b]\n  ctx: 8192\non: push\nyes: 1\n")
    loc = yamlio.parse_one(text, "x.yaml")
    assert loc.data["c"]["pp"] == 2 and loc.data["c"]["ctx"] == 8192
    assert "on" in loc.data and "yes" in loc.data and True not in loc.data
    assert loc.where(("c", "ctx")) == (5, 3)
    import yaml

    assert loc.data["c"] == yaml.safe_load(text)["c"]
    from tpplan.errors import TpplanError

    with pytest.raises(TpplanError, match="duplicate key .ctx."):
        yamlio.parse_one("c:\n  ctx: 1\n  ctx: 2\n", "x.yaml")


def test_a_huge_layer_count_is_refused_not_walked(cli, tmp_path):
    """num_layers up to 2^62 passed validation and per-layer properties walk the layers (num_moe_layers,
    layer_kinds): a DeepSeek-V3 file with 2^40 layers hung `tpplan models` (hypothesis drew it once). The schema
    now caps layers at spec.MAX_LAYERS (100,000), with the file and line; --layers says which flag."""
    import time

    doc = yaml.safe_load((ROOT / "models" / "deepseek-v3.yaml").read_text())
    doc.update(num_layers=2**40, name="huge", aliases=[])
    (tmp_path / "huge.yaml").write_text(yaml.safe_dump(doc))
    t0 = time.perf_counter()
    code, _, err = cli("models", "--catalog", str(tmp_path))
    assert code == 2 and "huge.yaml" in err and "num_layers" in err and "100000" in err
    code, _, err = cli("estimate", "--layers", "1000000000", "--hidden", "4096", "--heads", "32", "--vocab",
                       "32000", "--gpu", "h100", "--ctx", "4k")
    assert code == 2 and "--layers 1000000000" in err and "\n" not in err.strip()
    assert time.perf_counter() - t0 < 30
