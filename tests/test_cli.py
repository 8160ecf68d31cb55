"""CLI contracts: exit codes, JSON keys, bad input, import-hf."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tpplan.cli.app import app

DATA = Path(__file__).parent / "data"


def test_estimate_json_contract(cli_json):
    code, d = cli_json("estimate", "--model", "llama-70b", "--gpu", "h100-sxm", "--tp", "4", "--ctx", "128k")
    assert code == 0
    for key in ("schema_version", "tool", "inputs", "layout", "params", "memory_per_gpu_bytes", "fits",
                "kv_cache_bytes_per_token", "max_concurrency", "comm", "serve", "cost", "warnings", "reasons", "bands"):
        assert key in d
    assert set(d["memory_per_gpu_bytes"]) >= {"weights", "kv_cache", "activations", "gradients", "optimizer",
                                             "overhead", "total", "capacity"}
    assert d["inputs"]["ctx_tokens"] == 128_000 and d["kv_cache_bytes_per_token"] == 327_680
    assert d["fits"] is True and d["max_concurrency"] >= 1
    lo, hi = d["bands"]["serve"]["tpot_s"]
    assert lo <= d["serve"]["tpot_s"] <= hi
    assert d["inputs"]["assumptions"]["engine"]["gpu_memory_utilization"] == 0.9
    code, d = cli_json("estimate", "--model", "llama-70b", "--gpu", "h100-sxm", "--tp", "2", "--ctx", "128K")
    assert d["fits"] is False and "KV_BELOW_ONE_REQUEST" in d["reasons"]


@pytest.mark.parametrize("args,needle", [
    (["--tp", "3"], "must be divisible by tensor parallel size (3)"),
    (["--tp", "12"], "Valid --tp"),
    (["--ep", "2"], "dense model"),
    (["--pp", "100"], "exceeds the number of layers (80)"),
    (["--tp", "-1"], "positive"),
    (["--ctx", "-5"], "--ctx"),
    (["--concurrency", "0"], "--concurrency"),
    (["--kv-dtype", "fp7"], "unknown dtype"),
    (["--gpu-memory-utilization", "1.5"], "(0, 1]"),
])
def test_impossible_layouts_and_bad_numbers_exit_2(cli, args, needle):
    base = ["estimate", "--model", "llama-70b", "--gpu", "h100", "--ctx", "8k"]
    for i in range(0, len(args), 2):  # later flags override earlier ones
        if args[i] in base:
            j = base.index(args[i])
            base[j + 1] = args[i + 1]
            args = args[:i] + args[i + 2:]
            break
    code, out, err = cli(*base, *args)
    assert code == 2, (out, err)
    assert needle in err and "Traceback" not in err


def test_moe_ep_rules(cli):
    code, _, err = cli("estimate", "--model", "mixtral-8x7b", "--gpu", "h100", "--ctx", "8k", "--tp", "2",
                       "--ep", "3")
    assert code == 2 and "divide the number of experts (8)" in err
    code, out, _ = cli("estimate", "--model", "mixtral-8x7b", "--gpu", "h100", "--ctx", "8k", "--tp", "2",
                       "--dp", "4", "--ep", "8", "--format", "json")
    assert code == 0 and json.loads(out)["layout"]["ep"] == 8


def test_recommend_formats_and_exit_codes(cli, cli_json):
    code, d = cli_json("recommend", "--model", "llama-8b", "--ctx", "8k", "--gpu", "h100", "--max-gpus", "8")
    assert code == 0 and d["candidates"] and d["search"]["layouts_evaluated"] > 0
    assert {"candidates", "rejected", "search", "inputs", "schema_version"} <= set(d)
    code, out, _ = cli("recommend", "--model", "llama-8b", "--ctx", "8k", "--gpu", "h100", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("rank,gpu,gpus,nodes,tp,pp,dp,cp,ep,mem_total_bytes,")
    first = out.splitlines()[1].split(",")
    assert float(first[9]) > 1e9 and float(first[12]) > 0  # base units: bytes and seconds, not "16.2 GB"
    code, out, _ = cli("recommend", "--model", "llama-8b", "--ctx", "8k", "--gpu", "h100", "--format", "markdown")
    assert code == 0 and "| rank |" in out
    code, out, _ = cli("recommend", "--model", "llama-405b", "--ctx", "128k", "--gpu", "l40s", "--max-gpus", "4")
    assert code == 1 and "To get one layout" in out
    code, out, _ = cli("recommend", "--model", "llama-70b", "--ctx", "128k", "--gpu", "h100",
                       "--explain", "h100-sxm tp=2 pp=1 dp=1")
    assert code == 0 and "KV_BELOW_ONE_REQUEST" in out and "usable" in out
    code, _, err = cli("recommend", "--model", "llama-8b", "--max-gpus", "0")
    assert code == 2 and "--max-gpus" in err
    code, out, _ = cli("recommend", "--model", "llama-8b", "--ctx", "8k", "--gpu", "h100", "--pareto")
    assert code == 0 and "Pareto" in out


def test_import_hf_roundtrip(cli, tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64,
           "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 128256,
           "max_position_embeddings": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    code, out, _ = cli("import-hf", str(p), "--name", "my-70b")
    assert code == 0 and "name: my-70b" in out
    # the config is accepted wherever a model name is
    code, out, _ = cli("estimate", "--model", str(p), "--gpu", "h100", "--tp", "8", "--ctx", "8k", "--format", "json")
    assert code == 0 and json.loads(out)["params"]["total"] == 70_553_706_496
    out_file = tmp_path / "m.yaml"
    assert cli("import-hf", str(p), "-o", str(out_file))[0] == 0 and out_file.read_text().count("num_layers: 80") == 1


def test_import_hf_deepseek_and_errors(cli, tmp_path):
    ds = {"model_type": "deepseek_v3", "hidden_size": 7168, "num_hidden_layers": 61, "num_attention_heads": 128,
          "num_key_value_heads": 128, "intermediate_size": 18432, "moe_intermediate_size": 2048,
          "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
          "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
          "v_head_dim": 128, "vocab_size": 129280, "max_position_embeddings": 163840, "topk_method": "noaux_tc",
          "tie_word_embeddings": False, "quantization_config": {"quant_method": "fp8"}}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(ds))
    from tpplan.catalog.load import load_model_file

    spec = load_model_file(p, str(p))
    assert spec.params_total == pytest.approx(671.0e9, rel=0.005)
    assert spec.kv_cache_bytes_per_token(2) == 70_272 and spec.weight_dtype == "fp8"
    p.write_text(json.dumps({"model_type": "gpt_neox"}))
    code, _, err = cli("import-hf", str(p))
    assert code == 2 and "unsupported model_type 'gpt_neox'" in err
    p.write_text("{not json")
    code, _, err = cli("import-hf", str(p))
    assert code == 2 and "malformed JSON" in err and ":1:" in err
    code, _, err = cli("import-hf", str(tmp_path))
    assert code == 2 and "directory" in err
    code, _, err = cli("import-hf", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err


def test_every_command_has_help_with_example():
    import typer.main

    from tpplan._docgen import _commands

    cmd = typer.main.get_command(app)
    assert "Examples" in (cmd.help or "")
    for name, sub in cmd.commands.items():
        assert sub.help and "xample" in sub.help, name
    for path, sub in _commands(cmd):  # subcommands too (calibrate nccl-tests, models show, ...)
        assert sub.help and "xample" in sub.help, path


def test_readme_reference_is_generated_from_the_cli():
    import typer.main

    from tpplan._docgen import _commands, reference_markdown

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert reference_markdown() in readme, "README reference is stale: run python -m tpplan._docgen README.md"
    section = readme[readme.index("## Command reference"):]
    for path, sub in _commands(typer.main.get_command(app)):
        assert f"### `tpplan {' '.join(path)}" in section, path
        for p in sub.params:
            if p.param_type_name == "option" and not p.hidden and p.name != "help":
                for o in p.opts:
                    assert f"`{o}`" in section, (path, o)


def test_module_entry_point_and_version():
    r = subprocess.run([sys.executable, "-m", "tpplan", "--version"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.strip().startswith("tpplan 0.")


@pytest.mark.parametrize("width", [100, 160, 220])
def test_recommend_table_never_crops_a_figure(cat, width):
    """At any terminal width every figure is printed whole (a narrow terminal wraps cells instead of
    cutting them: '178.6 GB' must not become '178.')."""
    import io

    from rich.console import Console

    from tpplan.engine.workload import ServeWorkload
    from tpplan.plan import serve as planner
    from tpplan.render import tables

    w = ServeWorkload(ctx=32_000, input_len=31_744, output_len=256)
    res = planner.recommend_serve(cat.model("llama-70b"), [cat.gpus[n].spec for n in cat.gpu_names()], w,
                                  planner.Constraints(), planner.Pricing(), "cost", 6)
    buf = io.StringIO()
    tables.render_recommend(Console(file=buf, width=width, markup=False, emoji=False, highlight=False), res,
                            "table", lambda s: None)
    tokens = set(buf.getvalue().split())
    # TTFT/TPOT ranges give way first when the table is too wide, and the footer says so
    assert ("ranges are left out" in buf.getvalue()) == (width < 160)
    _, rows = tables.recommend_rows(res)
    for r in rows:
        for cell in (r[4], r[10], r[11]):  # mem/GPU, $/hour, $/1M tok: the number, whole, on one line
            assert str(cell).split()[0] in tokens, (width, cell)


def test_kv_dtype_per_engine(cli, cli_json):
    # vLLM's CacheDType (vllm/config/cache.py) has no int8; TensorRT-LLM's KvCacheConfig does: half of bf16's
    # 131,072 B/token for Llama-3.1-8B (32 layers x 2 x 8 KV heads x 128 x 1 B)
    code, _, err = cli("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--kv-dtype", "int8")
    assert code == 2 and "int8 is TensorRT-LLM's" in err
    _, d = cli_json("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--kv-dtype", "int8",
                    "--engine", "trtllm")
    assert d["kv_cache_bytes_per_token"] == 65_536
    # weight dtype spellings of the engines: awq -> int4
    _, d = cli_json("estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--weight-dtype", "awq")
    assert d["inputs"]["weight_dtype"] == "int4"


def test_train_estimate_prints_csv_and_markdown(cli):
    """Issue 19: estimate --train --format csv|markdown printed a rich table."""
    args = ["estimate", "--train", "--model", "llama-8b", "--gpu", "h100", "--tp", "2", "--seq-len", "4k",
            "--global-batch", "64", "--tokens", "1T"]
    code, out, _ = cli(*args, "--format", "csv")
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.startswith("gpu,gpus,nodes,tp,pp,dp,cp,ep,micro_batch,fits,mem_total_bytes,step_time_s")
    assert row.startswith("h100-sxm,2,1,2,1,1,1,1,1,") and "┃" not in out
    code, out, _ = cli(*args, "--format", "markdown")
    assert code == 0 and out.startswith("## training llama-3.1-8b on 2 x h100-sxm") and "| weights |" in out
    assert "┃" not in out


@pytest.mark.parametrize("width", [80, 120])
def test_recommend_table_fits_the_terminal_without_wrapped_rows(cli_json, width):
    """Issue 19: COLUMNS=80 tpplan recommend --model llama-70b --ctx 128k printed rows wrapped over two
    lines (a minimum width of 100 was forced). Rendered on rich's recording console at the width."""
    from rich.console import Console

    from tpplan.render import tables

    _, res = cli_json("recommend", "--model", "llama-70b", "--ctx", "128k")
    console = Console(record=True, width=width, file=open(os.devnull, "w"), markup=False, highlight=False)  # noqa: SIM115
    tables.render_recommend(console, res, "table", lambda s: None)
    text = console.export_text()
    lines = text.splitlines()
    names = "|".join(sorted({c["layout"]["gpu"] for c in res["candidates"]}))
    rows = [ln for ln in lines if re.match(rf"^\s+\d+\s+({names})\s", ln)]
    assert len(rows) == len(res["candidates"])  # one line per candidate: nothing wrapped
    table = lines[:lines.index(rows[-1]) + 1]
    assert all(len(ln.rstrip()) <= width for ln in table)
    for c, row in zip(res["candidates"], rows, strict=True):
        assert c["layout"]["gpu"] in row and "TTFT" in text and "TPOT" in text
    if width == 80:
        assert "Columns left out to fit 80 columns" in text and "$/1M tok" in text


def test_every_format_a_command_lists_is_in_the_format_registry():
    """issue 19: one format registry (tpplan/render/formats.py); each command's --format choices and the
    registry's formats for its result are the same list, and a format a kind lacks is an exit-2 error."""
    from tpplan.cli.app import CheckFormat, OutFormat, ReportFormat, ValidateFormat
    from tpplan.errors import TpplanError
    from tpplan.render import formats

    reg = formats.registry()
    for kind in ("estimate", "train-estimate", "recommend", "train-recommend"):
        assert set(reg[kind]) == {f.value for f in OutFormat}
    assert set(reg["cost"]) == set(reg["validate"]) == {f.value for f in ValidateFormat}
    assert set(reg["report"]) == {f.value for f in ReportFormat}
    assert set(reg["check"]) == {f.value for f in CheckFormat} - {"auto"}  # auto picks github or text
    with pytest.raises(TpplanError, match="valid: table, json, markdown"):
        formats.get("cost", "csv")


def test_recommend_disagg_csv_lists_the_pairs_too(cli):
    """recommend --disagg --format csv: the aggregated candidates (deployment 'aggregated') and one row per
    disaggregated pair (deployment 'disaggregated', its pools in prefill_pool / decode_pool, the KV it moves per
    request), the columns added after the old ones so a reader of the old header still parses it."""
    import csv
    import io

    code, out, _ = cli("recommend", "--model", "llama-70b", "--ctx", "8k", "--input-len", "4k", "--output-len", "512",
                       "--gpu", "h100", "--rate", "20/s", "--ttft-slo", "2s", "--tpot-slo", "50ms", "--disagg",
                       "--objective", "cost", "--top", "2", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:21][-2:] == ["load_mode", "notes"]  # the old columns first, in their old order
    kinds = [r["deployment"] for r in rows]
    assert kinds[0] == "aggregated" and "disaggregated" in kinds
    pair = next(r for r in rows if r["deployment"] == "disaggregated")
    assert pair["prefill_pool"].startswith("gpu=h100-sxm,tp=") and "replicas=" in pair["decode_pool"]
    assert float(pair["kv_transfer_bytes_per_request"]) > 0 and float(pair["rate_rps"]) == 20.0
    # the pair's GPUs pay its $/hour: 36 H100 x $2.49
    assert float(pair["usd_per_hour"]) == pytest.approx(int(pair["gpus"]) * 2.49)


def test_max_pp_bounds_every_search_and_says_so(cli, cli_json):
    """--max-pp N: the serving search, the disaggregated pools, the report and the training search enumerate
    pipeline parallelism up to N stages only (serving charges no per-stage engine overhead, so the cost ranking
    otherwise leads with deep pipelines: Llama-3.1-70B at 8k on H100, TP1/PP27 over four nodes), and the JSON
    inputs say which bound was searched; 0 or less is refused with exit 2."""
    serve = ("--model", "llama-3.1-70b", "--ctx", "8k", "--gpu", "h100-sxm")
    _, free = cli_json("recommend", *serve, "--objective", "cost")
    assert max(c["layout"]["pp"] for c in free["candidates"]) > 2 and free["inputs"]["constraints"]["max_pp"] is None
    _, capped = cli_json("recommend", *serve, "--objective", "cost", "--max-pp", "2")
    assert capped["candidates"] and all(c["layout"]["pp"] <= 2 for c in capped["candidates"])
    assert capped["inputs"]["constraints"]["max_pp"] == 2
    assert capped["search"]["layouts_evaluated"] < free["search"]["layouts_evaluated"]
    _, pools = cli_json("recommend", *serve, "--rate", "10/s", "--disagg", "--max-pp", "1")
    assert all(c["layout"]["pp"] == 1 for c in pools["candidates"])
    assert all(p[role]["layout"]["pp"] == 1 for p in pools["disaggregated"]["pairs"] for role in ("prefill", "decode"))
    _, rep = cli_json("report", *serve, "--rate", "10/s", "--max-pp", "2")
    assert all(c["layout"]["pp"] <= 2 for c in rep["comparison"]) and rep["inputs"]["constraints"]["max_pp"] == 2
    _, train = cli_json("recommend", "--train", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--seq-len", "8K",
                        "--global-batch-tokens", "16M", "--tokens", "15T", "--max-gpus", "1024", "--max-pp", "2")
    assert train["candidates"] and all(c["layout"]["pp"] <= 2 for c in train["candidates"])
    code, _, err = cli("recommend", *serve, "--max-pp", "0")
    assert code == 2 and "--max-pp must be a positive integer" in err


@pytest.mark.parametrize("width", [80, 100, 160])
def test_catalog_listings_never_cut_a_name_at_any_width(cli, cli_json, monkeypatch, width):
    """Issue 19 (tables for 80 columns, never split a number or a GPU name): `tpplan gpus` at 100 columns printed
    'a100-pcie-8…' and `tpplan models` at 80 'deepseek…' with its columns squeezed to two letters. The names and
    figures now keep their widths; the descriptive columns wrap, or are left out (and named) where even that
    does not fit."""
    monkeypatch.setenv("COLUMNS", str(width))
    for what, key in (("gpus", "gpus"), ("models", "models")):
        _, listing = cli_json(what)
        code, out, _ = cli(what)
        assert code == 0 and "\u2026" not in out
        assert all(len(line) <= width for line in out.splitlines())
        for row in listing[key]:
            assert re.search(rf"\u2502 {re.escape(row['name'])} +\u2502", out), row["name"]
        if width in (80, 160):
            assert ("Columns left out to fit" in out) == (width == 80)


@pytest.mark.parametrize("width", [80, 120])
def test_cost_table_never_splits_a_figure(cli, monkeypatch, width):
    """`tpplan cost` at 80 columns split '$139,226/mo' and '2026-01-15' over two lines; the figures keep their
    width and the source text wraps, or is left out (and named) where it cannot."""
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = cli("cost", "--gpu", "h100-sxm", "--gpus", "128", "--for", "30d")
    assert code == 0 and all(len(line) <= width for line in out.splitlines())
    for figure in ("$1.49/GPU-h", "$139,226/mo", "$137,318", "$2.49/GPU-h", "$229,478", "2026-05-15"):
        assert figure in out, figure
    assert ("Columns left out to fit 80 columns: Source" in out) == (width == 80)


@pytest.mark.parametrize("width", [80, 120])
def test_train_recommend_table_fits_the_terminal_without_split_figures(cli_json, width):
    """Issue 19 for the training table: at 80 columns `recommend --train` split 'h100-sxm' into 'h100' / '-sxm'
    and '138.1' days into '138.' / '1'. The least essential columns now go first (named under the table), the
    objective's own always stays, and each candidate is one line."""
    from rich.console import Console

    from tpplan.render import tables

    _, res = cli_json("recommend", "--train", "--model", "llama-70b", "--gpu", "h100-sxm", "--seq-len", "8K",
                      "--global-batch-tokens", "16M", "--tokens", "15T", "--max-gpus", "1024")
    console = Console(record=True, width=width, file=open(os.devnull, "w"), markup=False, highlight=False)  # noqa: SIM115
    tables.print_train_recommend(console, res)
    lines = console.export_text().splitlines()
    rows = [ln for ln in lines if re.match(r"^\s*\d+\s+h100-sxm\s", ln)]
    assert len(rows) == len(res["candidates"])  # one line per candidate: nothing wrapped
    assert all(len(ln.rstrip()) <= width for ln in lines[:lines.index(rows[-1]) + 1])
    for c, row in zip(res["candidates"], rows, strict=True):
        assert f"{c['train']['days']:.1f}" in row  # the time objective's column, whole
    assert any("Columns left out to fit 80 columns" in ln for ln in lines) == (width == 80)
