"""Hostile and malformed inputs for tpplan (issue 22), shared by tests/test_fuzz.py (hypothesis, bounded) and
benchmarks/fuzz.py (the long run). Each generator takes a ``random.Random`` and returns one case: the argv
and the files it reads, all inside a scratch folder the caller provides."""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HOSTILE = ["0", "-1", "1", "2", "3", "8", "1e20", "1e-300", "nan", "inf", "-inf", "9223372036854775808",
           "1" * 40, "", " ", "x" * 300, "$(touch PWNED)", "; touch PWNED", "../../etc/passwd", "/dev/zero",
           "\x1b[31mred", "12/s", "0/s", "50ms", "50", "2s", "-5ms", "128k", "128K", "1M", "16M", "15T", "0.5",
           "100%", "fp8", "bf16", "int4", "fp4", "awq", "auto", "h100", "h100-sxm", "b200", "mi300x", "l40s",
           "a100-sxm-80gb", "gb200-nvl72", "l4", "a10g", "mi355x", "llama-8b", "llama-70b", "mixtral-8x7b",
           "deepseek-v3", "gpt3-175b", "nosuch",
           "h100=2.5", "nosuchgpu=3", "h100=-1", "h100=inf", "selective", "full", "none", "vllm", "sglang",
           "trtllm", "tensorrt-llm", "bench-2025", "9.9", "90", "99", "95", "latency", "throughput", "cost"]
OPTIONS = {
    "estimate": ["--model", "--gpu", "--tp", "--pp", "--dp", "--cp", "--ep", "--ctx", "--input-len", "--output-len",
                 "--concurrency", "--weight-dtype", "--kv-dtype", "--gpu-memory-utilization", "--price",
                 "--price-tier", "--seq-len", "--global-batch", "--global-batch-tokens", "--micro-batch", "--tokens",
                 "--recompute",
                 "--zero", "--train-dtype", "--engine", "--engine-version", "--rate", "--slo-percentile",
                 "--max-utilization", "--format", "--layers", "--hidden", "--heads", "--vocab", "--gpus-per-node",
                 "--prefix-hit", "--shared-prefix", "--speculative", "--draft-tokens", "--acceptance", "--draft-model",
                 "--prefill", "--decode", "--virtual-stages", "--framework", "--attention", "--grad-reduce-dtype",
                 "--elementwise"],
    "recommend": ["--model", "--ctx", "--gpu", "--input-len", "--output-len", "--concurrency", "--weight-dtype",
                  "--kv-dtype", "--max-gpus", "--min-concurrency", "--objective", "--ttft-slo", "--tpot-slo",
                  "--budget-usd-per-hour", "--price", "--top", "--explain", "--seq-len", "--global-batch-tokens",
                  "--tokens", "--gpus", "--deadline-days", "--budget-usd", "--engine", "--rate",
                  "--slo-percentile", "--max-utilization", "--format", "--prefix-hit", "--shared-prefix",
                  "--speculative", "--draft-tokens", "--acceptance", "--framework", "--attention",
                  "--grad-reduce-dtype", "--elementwise"],
    "report": ["--ctx", "--objective", "--utilization", "--contexts", "--format", "--rate", "--ttft-slo", "--tokens",
               "--gpu-hours", "--seq-len", "--global-batch", "--global-batch-tokens", "--price", "--engine",
               "--speculative", "--acceptance", "--prefix-hit", "--framework"],
    "collective": ["--gpu", "--gpus", "--size", "--algo", "--format", "--gpus-per-node"],
    "models": ["--format"],
    "gpus": ["--format"],
    "engines": ["--format"],
    "frameworks": ["--format"],
    "schema": [],
    "validate": ["--category", "--format"],
    "cost": ["--gpu", "--gpus", "--for", "--utilization", "--price", "--format"],
}
FLAGS = {"estimate": ["--train", "--breakdown", "--no-sequence-parallel", "--disagg", "--ep-overlap",
                      "--no-overlap-grad-reduce", "--overlap-grad-reduce"],
         "recommend": ["--train", "--pareto", "--allow-cross-node-tp", "--disagg", "--ep-overlap", "--wide",
                       "--no-overlap-grad-reduce"],
         "report": ["--train", "--disagg", "--stamp"]}
SMALL = {"--max-gpus": ["1", "2", "8", "16", "0", "-3", "2000000", "x"], "--gpus": ["1", "8", "16", "0", "x"],
         "--format": ["table", "json", "markdown", "csv", "html", "sarif", "x"],
         "--gpu-hours": ["2.788M", "1000", "0", "-5", "x"], "--contexts": ["8k,32k", "4k", "0", "x", ""],
         "--top": ["1", "3", "0", "-1", "x"], "--for": ["30d", "1mo", "2w", "0h", "1e400y", "x"],
         "--utilization": ["1", "0.5", "0", "1.5", "nan", "x"],
         "--category": ["kv", "e2e", "gemm", "attention", "decode-attention", "gemm-shape", "nope"],
         "--framework": ["megatron-2021", "megatron-2022", "Megatron-2021", "megatron-core", "nemo", "torchtitan",
                         "deepspeed", "llm-foundry", "", "x"],
         "--grad-reduce-dtype": ["bf16", "fp32", "FP32", "fp16", ""],
         "--elementwise": ["fused", "eager", "Eager", "x"],
         "--attention": ["flash", "flash1", "eager", "EAGER", "flash2", "x"],
         "--speculative": ["eagle", "mtp", "ngram", "draft", "x"], "--draft-model": ["llama-8b", "mixtral-8x7b", "x"],
         "--prefill": ["tp=4,replicas=2", "tp=3,replicas=1,gpu=b200", "tp=0", "x"],
         "--decode": ["tp=8,replicas=1", "tp=2,pp=2,replicas=3", "replicas=1", "x=1"]}


def cli_case(rng: random.Random) -> list[str]:
    """A command line: a command and a handful of its options with valid or hostile values."""
    cmd = rng.choice(list(OPTIONS))
    argv = [cmd]
    if cmd == "collective":
        argv.append(rng.choice(["all-reduce", "all-gather", "reduce-scatter", "all-to-all", "p2p", "nope"]))
    if cmd == "schema":
        return argv + [rng.choice(["estimate", "recommend", "train-estimate", "check", "validate", "report", "x"])]
    if cmd == "cost":
        argv += ["--gpu", rng.choice(["h100", "h800", "mi300x", "nosuch"])]
    if cmd in ("models", "gpus") and rng.random() < 0.5:
        argv += ["show", rng.choice(HOSTILE)]
    opts = OPTIONS[cmd]
    if cmd == "report":  # a small search on one or two GPU types
        argv += ["--model", rng.choice(["llama-8b", "mixtral-8x7b", "llama-70b", "nosuch"]), "--max-gpus",
                 rng.choice(["1", "8", "16"])]
        argv += [x for g in rng.sample(["h100", "l40s", "b200", "h800"], rng.randint(1, 2)) for x in ("--gpu", g)]
    if cmd in ("estimate", "recommend"):  # mostly runnable: a model and a small search
        argv += ["--model", rng.choice(["llama-8b", "mixtral-8x7b", "llama-70b", "gpt3-175b", "x" * 300,
                                        "/dev/zero", "nosuch"])]
        if cmd == "estimate":
            argv += ["--gpu", rng.choice(["h100", "a100-sxm-80gb", "l40s", "b200", "nosuch"])]
        if cmd == "recommend":
            argv += ["--max-gpus", rng.choice(["1", "2", "8"]), "--gpu", rng.choice(["h100", "l40s", "b200"])]
        argv += ["--ctx", rng.choice(["4k", "32k", "128k", "1M", "0", "1e20", "x"])]
    for _ in range(rng.randint(0, 4)):
        opt = rng.choice(opts) if opts else None
        if opt is None:
            break
        argv += [opt, rng.choice(SMALL.get(opt, HOSTILE))]
    for flag in FLAGS.get(cmd, []):
        if rng.random() < 0.15:
            argv.append(flag)
    return argv


def _value(rng: random.Random, depth: int = 0) -> object:
    r = rng.random()
    if depth < 2 and r < 0.1:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 2 and r < 0.2:
        return {rng.choice(["a", "ttft_s", "tpot_s", "usd_per_hour", "x"]): _value(rng, depth + 1)}
    if r < 0.35:
        return rng.choice([0, -1, 1, 4, 8, 10**30, 1e20, 1e-300, float("inf"), True, None])
    return rng.choice(HOSTILE)


DEPLOY_KEYS = ["model", "gpu", "tensor_parallel_size", "tp_size", "pipeline_parallel_size", "data_parallel_size",
               "max_model_len", "max_num_seqs", "max_running_requests", "max_batch_size", "kv_cache_dtype",
               "gpu_memory_utilization", "mem_fraction_static", "quantization", "dtype", "input_len", "output_len",
               "slo", "budget", "rate", "engine", "enable_expert_parallel", "max_num_batched_tokens",
               "price_usd_per_gpu_hour", "port", "served-model-name", "nosuch_key"]
YAML_ODDITIES = ["!!int llama", "!!bool maybe", "2026-02-30", "!!python/object:os.system x", "&a [*a]", "*undefined",
                 "{", "[1, 2", "'unterminated", "|\n  block", "0x1F", "0o17", "1_000", "~", "yes", "on", ".inf"]


def deployment_case(rng: random.Random) -> str:
    """A deployment file: real keys (vLLM, SGLang, TRT-LLM spellings) with valid, hostile or odd YAML values;
    sometimes several documents."""
    docs = []
    for _ in range(rng.choice([1, 1, 1, 2])):
        lines = []
        if rng.random() < 0.8:
            lines.append("model: " + rng.choice(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "nosuch"]))
        if rng.random() < 0.8:
            lines.append("gpu: " + rng.choice(["h100-sxm", "a100-sxm-80gb", "l40s", "nosuch"]))
        for key in rng.sample(DEPLOY_KEYS, rng.randint(0, 6)):
            if rng.random() < 0.15:
                lines.append(f"{key}: {rng.choice(YAML_ODDITIES)}")
            else:
                lines.append(f"{key}: {json.dumps(_value(rng))}")
        docs.append("\n".join(lines))
    return "\n---\n".join(docs) + "\n"


def catalog_case(rng: random.Random) -> tuple[str, str]:
    """A catalog file: a real GPU or model YAML with one to three values replaced by hostile ones."""
    src = rng.choice([ROOT / "hardware" / "h100-sxm.yaml", ROOT / "models" / "llama-3.1-8b.yaml",
                      ROOT / "models" / "mixtral-8x7b.yaml", ROOT / "engines" / "vllm.yaml"])
    lines = src.read_text().splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        if ":" in lines[i] and not lines[i].lstrip().startswith("#"):
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {rng.choice(YAML_ODDITIES + ['.inf', '-1', '1e-300', '0', '1e300', '[]', '{}'])}"
    return src.name, "\n".join(lines) + "\n"


HF_KEYS = ["num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "intermediate_size",
           "vocab_size", "max_position_embeddings", "head_dim", "num_local_experts", "num_experts_per_tok",
           "tie_word_embeddings", "torch_dtype", "model_type", "sliding_window", "kv_lora_rank", "n_routed_experts"]


def config_case(rng: random.Random) -> str:
    """A Hugging Face config.json: a real one with values replaced, or random JSON."""
    if rng.random() < 0.2:
        return rng.choice(["[" * rng.randint(1, 5000), "{", "null", "[]", '{"hidden_size": ' + "9" * 5000 + "}",
                           "\x00\x01", '{"a": NaN}'])
    base = json.loads((ROOT / "tests" / "data" / "hf" / "llama-3.1-8b.json").read_text()) \
        if (ROOT / "tests" / "data" / "hf" / "llama-3.1-8b.json").exists() else {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 32,
            "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
            "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
    for _ in range(rng.randint(1, 4)):
        base[rng.choice(HF_KEYS)] = _value(rng)
    return json.dumps(base)


def calibrate_case(rng: random.Random) -> tuple[list[str], str, str]:
    """(argv tail, file name, text) for calibrate: a GEMM / HBM CSV or an nccl-tests log, mangled."""
    if rng.random() < 0.5:
        kind = rng.choice(["gemm", "hbm"])
        rows = ["gpu,benchmark,dtype,m,n,k,size_bytes,ranks,value,unit"]
        for _ in range(rng.randint(0, 5)):
            rows.append(",".join(rng.choice([c, str(_value(rng))]) for c in
                                 ["h100-sxm", f"{kind}_bf16", "bf16", "8192", "8192", "8192", "4294967296", "",
                                  rng.choice(["700", "3000", "0", "-5", "nan", "5000", "١٢"]),
                                  rng.choice(["TFLOP/s", "TB/s", "GB/s", "x"])]))
        return [kind], "m.csv", "\n".join(rows) + "\n"
    log = (ROOT / "tests" / "data" / "nccl" / "nccl-tests-allreduce-h100x8.txt").read_text().splitlines()
    for _ in range(rng.randint(0, 6)):
        i = rng.randrange(len(log))
        log[i] = rng.choice(["", "nan nan nan", "# Rank 0", log[i][::-1], "1024 256 float sum -1 ١٢ 0.1 0.1 0",
                             log[i].replace("0", "9")])
    return ["nccl-tests"], "all_reduce_perf.log", "\n".join(log) + "\n"


def make_case(rng: random.Random, scratch: Path) -> list[str]:
    """One case of any kind, its files written under ``scratch``; the argv to run."""
    kind = rng.random()
    if kind < 0.35:
        return cli_case(rng)
    if kind < 0.6:
        f = scratch / "deploy.yaml"
        f.write_text(deployment_case(rng))
        return ["check", str(f), "--format", rng.choice(["text", "json", "sarif", "github", "markdown"])]
    if kind < 0.75:
        name, text = catalog_case(rng)
        d = scratch / "cat"
        d.mkdir(exist_ok=True)
        for old in d.iterdir():
            old.unlink()
        (d / name).write_text(text)
        return rng.choice([["models", "--catalog", str(d)], ["gpus", "--catalog", str(d)],
                           ["recommend", "--model", "llama-8b", "--ctx", "4k", "--gpu", "h100", "--max-gpus", "2",
                            "--catalog", str(d), "--format", "json"]])
    if kind < 0.88:
        f = scratch / "config.json"
        f.write_text(config_case(rng), errors="surrogateescape")
        return rng.choice([["import-hf", str(f)],
                           ["estimate", "--model", str(f), "--gpu", "h100", "--ctx", "4k", "--format", "json"]])
    tail, name, text = calibrate_case(rng)
    f = scratch / name
    f.write_text(text)
    return ["calibrate", *tail, str(f), "--gpu", "h100-sxm", "-o", str(scratch / "overlay.yaml")]


# ---------------------------------------------------------------------------------------------------
# running one case: a forked child per case (Linux), so each run's wall time and peak memory are its own
# ---------------------------------------------------------------------------------------------------

ALLOWED_EXITS = {0, 1, 2, 141}


def run_case(argv: list[str], scratch: Path, timeout_s: float = 10.0) -> dict[str, object]:
    """Run ``tpplan argv`` in a forked child with ``scratch`` as its working folder; returns the exit code,
    stdout, stderr, wall seconds, peak RSS (KiB) and the files it created there (besides its own inputs)."""
    import os
    import signal
    import time

    before = {p.name for p in scratch.iterdir()}
    out_f, err_f = scratch / ".stdout", scratch / ".stderr"
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            os.chdir(scratch)
            signal.alarm(int(timeout_s) + 1)
            fo = os.open(out_f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            fe = os.open(err_f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fo, 1)
            os.dup2(fe, 2)
            import sys

            from tpplan.cli.app import run

            code = run(list(argv))
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException as exc:  # noqa: BLE001 - whatever escapes run() is the finding
            os.write(2, f"ESCAPED {type(exc).__name__}: {exc}\n".encode())
            code = 99
        os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    created = sorted({p.name for p in scratch.iterdir()} - before - {".stdout", ".stderr"})
    return {"argv": argv, "code": code, "stdout": out_f.read_text(errors="replace"),
            "stderr": err_f.read_text(errors="replace"), "seconds": seconds, "max_rss_kb": usage.ru_maxrss,
            "created": created}


def problems(res: dict[str, object], max_seconds: float, max_rss_kb: int, allowed_files: set[str]) -> list[str]:
    """What is wrong with one run (empty: fine)."""
    out: list[str] = []
    code, stdout, stderr = res["code"], str(res["stdout"]), str(res["stderr"])
    if code not in ALLOWED_EXITS:
        out.append(f"exit {code}")
    if "internal error" in stderr or "Traceback" in stderr + stdout or "ESCAPED" in stderr:
        out.append("internal error: " + stderr.strip().splitlines()[-1][:200] if stderr.strip() else "internal error")
    argv = [str(a) for a in res["argv"]]  # type: ignore[attr-defined]
    # the format that applies: the last --format / -f given (click keeps the last value of an option)
    fmts = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--format", "-f")]
    if code in (0, 1) and fmts and fmts[-1] == "json" and stdout.strip():
        bad: list[str] = []
        try:
            json.loads(stdout, parse_constant=lambda c: bad.append(c))
        except ValueError as exc:
            out.append(f"JSON output does not parse: {exc}")
        if bad:
            out.append(f"JSON carries {bad[0]}")
    if float(res["seconds"]) > max_seconds:  # type: ignore[arg-type]
        out.append(f"took {float(res['seconds']):.1f} s")  # type: ignore[arg-type]
    if int(res["max_rss_kb"]) > max_rss_kb:  # type: ignore[call-overload]
        out.append(f"peak memory {int(res['max_rss_kb']) // 1024} MiB")  # type: ignore[call-overload]
    extra = [f for f in res["created"] if f not in allowed_files]  # type: ignore[attr-defined]
    if extra:
        out.append(f"wrote {extra}")
    return out
