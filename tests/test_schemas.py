"""Every --format json output validates against its published JSON Schema (tpplan schema NAME)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from tpplan.results import RESULTS
from tpplan.schemas import SCHEMAS

DEPLOY = Path(__file__).parent / "data" / "deploy"

CASES = {
    "estimate": ["estimate", "--model", "llama-70b", "--gpu", "h100", "--tp", "4", "--ctx", "32k"],
    "recommend": ["recommend", "--model", "mixtral-8x7b", "--ctx", "8k", "--objective", "cost", "--top", "4"],
    "train-estimate": ["estimate", "--train", "--model", "llama-70b", "--gpu", "h100", "--tp", "8", "--pp", "4",
                       "--ctx", "4k", "--global-batch", "64", "--tokens", "1T"],
    "train-recommend": ["recommend", "--train", "--model", "llama-8b", "--tokens", "1T", "--seq-len", "4096",
                        "--global-batch", "256", "--max-gpus", "64", "--gpu", "h100"],
    "check": ["check", str(DEPLOY / "good"), str(DEPLOY / "bad" / "tpp011-kv-one-sequence.yaml")],
    "validate": ["validate", "--category", "kv", "--category", "zero", "--category", "e2e"],
    "report": ["report", "--model", "llama-8b", "--gpu", "h100", "--gpu", "l40s"],
    "cost": ["cost", "--gpu", "h800", "--gpus", "130", "--for", "30d", "--utilization", "0.5"],
    "estimate-disagg": ["estimate", "--model", "llama-70b", "--gpu", "h100", "--ctx", "8k", "--rate", "4/s",
                        "--disagg", "--prefill", "tp=4,replicas=2", "--decode", "tp=8,replicas=1"],
    "models": ["models"],
    "gpus": ["gpus"],
    "engines": ["engines"],
    "frameworks": ["frameworks"],
    "collective": ["collective", "all-reduce", "--gpu", "h100", "--gpus", "16", "--size", "1MiB,1GiB"],
    "model": ["models", "show", "gemma-2-27b"],
    "gpu": ["gpus", "show", "gb200-nvl72"],
}


# more outputs of the same schemas: the optional sections (load, prefix cache, speculative, disaggregated, e2e)
MORE = [
    ("recommend", ["recommend", "--model", "llama-70b", "--ctx", "8k", "--rate", "6/s", "--disagg", "--top", "3"]),
    ("recommend", ["recommend", "--model", "llama-70b", "--ctx", "16k", "--shared-prefix", "8k", "--speculative",
                   "eagle", "--acceptance", "0.7", "--top", "3", "--gpu", "h100"]),
    ("estimate", ["estimate", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--rate", "5/s",
                  "--prefix-hit", "0.5"]),
    ("recommend", ["recommend", "--model", "llama-405b", "--ctx", "8k", "--gpu", "h100", "--max-gpus", "8"]),
    ("report", ["report", "--train", "--model", "llama-8b", "--tokens", "1T", "--gpu", "h100", "--max-gpus", "16"]),
    ("report", ["report", "--train", "--gpu-hours", "2.788M", "--gpu", "h800", "--gpu", "h100"]),
    ("model", ["models", "show", "deepseek-v3"]),
    ("model", ["models", "show", "llama-4-scout-17b-16e"]),
    ("gpu", ["gpus", "show", "mi300x"]),
    ("report", ["report", "--model", "llama-8b", "--ctx", "16k", "--gpu", "h100", "--gpu", "l4", "--speculative",
                "eagle", "--acceptance", "0.7", "--rate", "4/s", "--disagg"]),
    ("train-recommend", ["recommend", "--train", "--model", "llama-8b", "--tokens", "1T", "--train-dtype", "fp8",
                         "--gpu", "a100-sxm-80gb", "--gpu", "h100", "--max-gpus", "16", "--top", "2"]),
]


def _undeclared(obj: Any, path: str) -> list[str]:
    """Keys of a validated result that its model does not declare (the models allow extra keys, so that an
    undeclared key would pass validation unseen, and be missing from the schema and tpplan/result_types.py)."""
    if isinstance(obj, BaseModel):
        out = [f"{path}.{k}" for k in obj.__pydantic_extra__ or {}]
        for k in type(obj).model_fields:
            out += _undeclared(getattr(obj, k), f"{path}.{k}")
        return out
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _undeclared(v, f"{path}[{i}]")]
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _undeclared(v, f"{path}.{k}")]
    return []


def _check(name: str, out: str) -> None:
    schema = SCHEMAS[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = json.loads(out)
    jsonschema.Draft202012Validator(schema).validate(doc)
    typed = RESULTS[name].model_validate(doc)  # and the typed model the schema is generated from
    assert _undeclared(typed, name) == [], "keys missing from tpplan/results.py (then run python -m tpplan._typegen)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_matches_schema(cli, name):
    assert set(CASES) == set(SCHEMAS) == set(RESULTS)
    code, out, err = cli(*CASES[name], "--format", "json")
    assert code in (0, 1), err
    _check(name, out)


@pytest.mark.parametrize("case", MORE, ids=lambda c: " ".join(c[1][:4]))
def test_more_outputs_match_their_schema(cli, case):
    name, args = case
    code, out, err = cli(*args, "--format", "json")
    assert code in (0, 1), err
    _check(name, out)


def test_schemas_are_generated_from_the_result_models():
    """issue 19: `tpplan schema NAME` comes from tpplan/results.py (no hand-written schema): every field's
    description is the model's, and an optional section is listed but not required."""
    from tpplan.results import Serve
    from tpplan.schemas import schema_of

    assert SCHEMAS["estimate"] == schema_of(RESULTS["estimate"])
    serve = SCHEMAS["estimate"]["properties"]["serve"]
    assert serve["properties"]["tpot_s"]["description"] == Serve.model_fields["tpot_s"].description
    assert "speculative" in serve["properties"] and "speculative" not in serve["required"]
    assert "$defs" not in json.dumps(SCHEMAS)  # self-contained: references inlined


def test_schema_command_and_descriptions(cli):
    code, out, _ = cli("schema", "recommend")
    d = json.loads(out)
    assert code == 0 and d["$schema"].endswith("2020-12/schema")
    serve = d["properties"]["candidates"]["items"]["properties"]["serve"]["properties"]
    # metrics say which request, which batch, which engine behaviour (issue 16: at the operating point under load)
    assert "operating point" in serve["ttft_s"]["description"] and "queueing" in serve["ttft_s"]["description"]
    assert "inter-token latency" in serve["tpot_s"]["description"]
    assert "idle replica" in serve["idle"]["description"]
    assert "Little's law" in serve["load"]["properties"]["concurrency"]["description"]
    assert cli("schema", "nope")[0] == 2


def test_result_types_are_generated_from_the_result_models():
    """tpplan/result_types.py (the TypedDicts mypy checks the builders and renderers with) is what
    `python -m tpplan._typegen` writes from tpplan/results.py: one description of every key."""
    from tpplan._typegen import TARGET, source

    assert TARGET.read_text() == source(), "stale: run python -m tpplan._typegen"


def test_result_types_cost_nothing_at_run_time():
    """The TypedDicts are imported for mypy only: a command never loads them (nor the pydantic result models)."""
    import subprocess
    import sys

    code = ("import sys, io, contextlib\n"
            "from tpplan.cli import app\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: app.run(['recommend', '--model', 'llama-8b', '--ctx', '8k', '--gpu', 'h100'])\n"
            "    except SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m in ('tpplan.result_types', 'tpplan.results')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_schema_help_names_every_schema():
    """`tpplan schema --help` lists the names it takes (written out, so that --help need not import the models)."""
    import typer

    from tpplan.cli.app import app

    cmd = typer.main.get_command(app).commands["schema"]  # type: ignore[attr-defined]
    listed = {x.strip() for x in cmd.params[0].help.split("|")}
    assert listed == set(RESULTS)


def test_catalog_spec_fields_carry_their_docstrings_in_the_schemas():
    """`tpplan schema gpu` / `model`: a catalog spec field is described by the docstring under it in
    tpplan/catalog/spec.py (read at schema time, not at every start)."""
    gpu = SCHEMAS["gpu"]["properties"]["gpu"]["properties"]
    assert gpu["memory"]["properties"]["capacity_bytes"]["description"].startswith("Device memory the driver reports")
    assert "no 2:4 sparsity" in gpu["compute"]["properties"]["dense_flops_per_s"]["description"]
    model = SCHEMAS["model"]["properties"]["model"]["properties"]
    assert model["hf_id"]["description"].startswith("Hugging Face repo id")
    valid_tp = model["derived"]["properties"]["valid_tp"]
    assert valid_tp["description"] == "Tensor-parallel sizes the attention heads allow."
