"""`tpplan check`: every rule on an example file (rule id, line, exit code), formats, goldens, properties."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpplan.check import formats, lint
from tpplan.check import rules as check_rules
from tpplan.engine.workload import ServeWorkload
from tpplan.plan import serve as planner

DEPLOY = Path(__file__).parent / "data" / "deploy"
GOLDEN = DEPLOY / "golden"

# file under tests/data/deploy/bad -> (rule, line, column, exit code with the default --fail-on error)
# Lines and columns are 1-based positions of the offending key (or value for input errors) in the file.
CASES = {
    "tpp001-tp-heads.yaml": ("TPP001", 3, 1, 1),
    "tpp002-tp-kv-heads.yaml": ("TPP002", 4, 1, 1),
    "tpp003-ep-dense.yaml": ("TPP003", 5, 1, 1),
    "tpp004-ep-experts.yaml": ("TPP004", 5, 1, 1),
    "tpp005-pp-layers.yaml": ("TPP005", 3, 1, 1),
    "tpp006-cp-divides.yaml": ("TPP006", 3, 1, 1),
    "tpp010-weights-oom.yaml": ("TPP010", 3, 1, 1),
    "tpp011-kv-one-sequence.yaml": ("TPP011", 4, 1, 1),
    "tpp012-concurrency-oom.yaml": ("TPP012", 5, 1, 0),
    "tpp013-ctx-above-model-max.yaml": ("TPP013", 3, 1, 1),
    "tpp020-ttft-slo.yaml": ("TPP020", 6, 3, 1),
    "tpp021-tpot-slo.yaml": ("TPP021", 6, 3, 1),
    "tpp022-budget.yaml": ("TPP022", 6, 3, 1),
    "tpp023-disagg-pool.yaml": ("TPP023", 10, 3, 1),
    "tpp024-rate-saturates.yaml": ("TPP024", 7, 1, 1),
    "tpp030-tp-spans-nodes.yaml": ("TPP030", 3, 1, 0),
    "tpp031-tp-pcie.yaml": ("TPP031", 3, 1, 0),
    "tpp040-unknown-key.yaml": ("TPP040", 4, 1, 0),
    "tpp041-duplicate-setting.yaml": ("TPP041", 4, 1, 1),
    "tpp100-unknown-model.yaml": ("TPP100", 1, 8, 2),
    "tpp100-unknown-gpu.yaml": ("TPP100", 2, 6, 2),
    "tpp100-malformed.yaml": ("TPP100", 4, 1, 2),
    "tpp100-bad-value.yaml": ("TPP100", 3, 23, 2),
}


def test_every_rule_has_a_bad_example():
    covered = {rule for rule, *_ in CASES.values()}
    assert covered == {r.id for r in check_rules.RULES}
    assert sorted(CASES) == sorted(p.name for p in (DEPLOY / "bad").glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_example(cli, monkeypatch, name):
    rule, line, col, code = CASES[name]
    monkeypatch.chdir(DEPLOY)
    got, out, err = cli("check", f"bad/{name}", "--format", "json")
    assert got == code, out + err
    d = json.loads(out)
    assert [(f["rule"], f["line"], f["column"]) for f in d["findings"]] == [(rule, line, col)]
    f = d["findings"][0]
    assert f["file"] == f"bad/{name}" and f["fix"] and f["message"]
    assert f["level"] == check_rules.RULE_BY_ID[rule].level
    if code == 0:  # warnings fail with --fail-on warning / --strict, and never with --exit-zero
        assert cli("check", f"bad/{name}", "--fail-on", "warning")[0] == 1
        assert cli("check", f"bad/{name}", "--strict")[0] == 1
    if code == 1:
        assert cli("check", f"bad/{name}", "--exit-zero")[0] == 0
    if code == 2:
        assert cli("check", f"bad/{name}", "--exit-zero")[0] == 2


def test_good_examples_pass_strict(cli, monkeypatch):
    monkeypatch.chdir(DEPLOY)
    code, out, err = cli("check", "good", "--strict", "--format", "text")
    assert code == 0, out + err
    assert "All checks passed" in out and "4 files (5 deployments checked)" in out


def test_messages_carry_the_numbers(cli, monkeypatch):
    monkeypatch.chdir(DEPLOY)
    d = json.loads(cli("check", "bad/tpp011-kv-one-sequence.yaml", "-f", "json")[1])
    f = d["findings"][0]
    # KV of Llama-3.1-70B at TP=2: 327,680 B/token / 2 x 128,000 tokens = 19.53 GiB (config.json: 80 layers,
    # 8 KV heads, head_dim 128, bf16)
    assert "19.53 GiB" in f["message"]
    assert 20_000 < f["suggestion"]["max_model_len"] < 25_000
    assert f["suggestion"]["tensor_parallel_size"] == [4, 8]
    d = json.loads(cli("check", "bad/tpp001-tp-heads.yaml", "-f", "json")[1])
    assert d["findings"][0]["suggestion"] == {"tensor_parallel_size": [1, 2, 4, 8, 16, 32, 64]}
    d = json.loads(cli("check", "bad/tpp012-concurrency-oom.yaml", "-f", "json")[1])
    # 64 x 32,768 tokens x 81,920 B/token/GPU (TP=4) = 160 GiB; ~14 sequences fit in what TP=4 leaves
    assert "160.0 GiB" in d["findings"][0]["message"]
    assert 10 <= d["findings"][0]["suggestion"]["max_num_seqs"] <= 18


def test_globs_folders_and_multi_documents(cli, monkeypatch):
    monkeypatch.chdir(DEPLOY)
    code, out, _ = cli("check", "bad/tpp01*.yaml", "good", "-f", "json")
    d = json.loads(out)
    assert code == 1
    assert d["summary"]["files"] == 8 and d["summary"]["documents"] == 9
    assert cli("check", "nothing/*.yaml")[0] == 2
    assert cli("check", "missing.yaml")[0] == 2


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TPPLAN_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with TPPLAN_UPDATE_GOLDEN=1 if intended"


GOLDEN_FILES = ("bad/tpp011-kv-one-sequence.yaml", "bad/tpp040-unknown-key.yaml", "bad/tpp100-unknown-gpu.yaml",
                "good/mixtral-ep.yaml")


def test_golden_json(cli, monkeypatch):
    monkeypatch.chdir(DEPLOY)
    code, out, _ = cli("check", *GOLDEN_FILES, "--format", "json")
    assert code == 2
    _golden("check.json", out.replace(planner.tool_info()["version"], "VERSION"))


def test_golden_sarif_and_schema(cli, monkeypatch):
    monkeypatch.chdir(DEPLOY)
    code, out, _ = cli("check", *GOLDEN_FILES, "--format", "sarif")
    sarif = json.loads(out)
    schema = json.loads((DEPLOY.parent / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    run = sarif["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert ids == [r.id for r in check_rules.RULES]
    for res in run["results"]:
        loc = res["locations"][0]["physicalLocation"]
        assert not loc["artifactLocation"]["uri"].startswith("/") and loc["region"]["startLine"] >= 1
        assert ids[res["ruleIndex"]] == res["ruleId"] and res["partialFingerprints"]
    _golden("check.sarif", out.replace(planner.tool_info()["version"], "VERSION"))


def test_github_annotations_are_escaped():
    f = check_rules.Finding("TPP022", "error", "deploy/a,b:c.yaml", 3, 5, "100% over: $9, then\nmore", fix="x")
    text = formats.render_github(check_rules.Report(files=["x"], findings=[f]))
    # actions/toolkit command.ts: data escapes % CR LF; properties also escape : and ,
    assert text == ("::error file=deploy/a%2Cb%3Ac.yaml,line=3,col=5,title=TPP022 budget::"
                    "100%25 over: $9, then%0Amore%0Afix: x")


def test_auto_format_in_github_actions(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(DEPLOY)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = cli("check", "bad/tpp001-tp-heads.yaml", "bad/tpp030-tp-spans-nodes.yaml")
    assert code == 1
    assert out.startswith("::error file=bad/tpp001-tp-heads.yaml,line=3,col=1,title=TPP001 tp-heads::")
    assert "::warning file=bad/tpp030-tp-spans-nodes.yaml,line=3" in out
    md = summary.read_text()
    assert md.startswith("earlier step\n### tpplan check: 1 error(s), 1 warning(s)")
    assert "| 3:1 | error | TPP001 tp-heads |" in md


def test_output_file_and_markdown(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(DEPLOY)
    target = tmp_path / "report.md"
    code, out, _ = cli("check", "bad/tpp022-budget.yaml", "-f", "markdown", "-o", str(target))
    assert code == 1 and out == ""
    text = target.read_text()
    assert "#### `bad/tpp022-budget.yaml`" in text and "| 6:3 | error | TPP022 budget |" in text


def test_rules_doc_is_current():
    doc = Path(__file__).parents[1] / "docs" / "check-rules.md"
    assert doc.read_text() == formats.rules_markdown(), "regenerate docs/check-rules.md from formats.rules_markdown()"


# ---- recommend -> check: a deployment the planner recommends must pass the gate -------------------------

MODELS = ("llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen2.5-72b")
GPUS = ("h100-sxm", "a100-sxm-80gb", "l40s", "mi300x", "h200")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(MODELS), gpu=st.sampled_from(GPUS), ctx=st.sampled_from([4096, 32768]),
       objective=st.sampled_from(["latency", "throughput", "cost"]), kv=st.sampled_from(["bf16", "fp8"]),
       tpot=st.sampled_from([None, 0.05]))
def test_recommended_deployments_pass_check(cat, model, gpu, ctx, objective, kv, tpot):
    m, g = cat.model(model), cat.gpu(gpu)
    w = ServeWorkload(ctx=ctx, input_len=ctx - 256, output_len=256, weight_dtype=m.dtype, kv_dtype=kv,
                      engine_profile=cat.engine("vllm"))  # as the CLI and check resolve it
    cons = planner.Constraints(tpot_slo_s=tpot, max_gpus=16)
    res = planner.recommend_serve(m, [g], w, cons, planner.Pricing(), objective, top=3)
    for c in res["candidates"]:
        lay = c["layout"]
        doc = (f"model: {model}\ngpu: {gpu}\ntensor_parallel_size: {lay['tp']}\npipeline_parallel_size: {lay['pp']}\n"
               f"data_parallel_size: {lay['dp']}\ncontext_parallel_size: {lay['cp']}\n"
               f"expert_parallel_size: {lay['ep']}\nmax_model_len: {ctx}\nmax_num_seqs: {lay['concurrency']}\n"
               f"kv_cache_dtype: {kv}\ninput_len: {ctx - 256}\noutput_len: 256\n"
               + (f"slo: {{tpot_s: {tpot}}}\n" if tpot else ""))
        findings = lint.check_text(doc, "rec.yaml", cat)
        assert [f for f in findings if f.level == "error"] == [], (doc, findings)


def test_a_plain_vllm_config_with_gpu_and_slos_from_the_command_line(cli, tmp_path):
    """issue 20 item 5 (in part): `vllm serve --config` files carry no gpu key (vLLM rejects one) and no SLOs;
    check --gpu / --ttft-slo / --tpot-slo / --budget-usd-per-hour give them; a file's own keys still win."""
    cfg = tmp_path / "vllm.yaml"
    cfg.write_text("model: meta-llama/Llama-3.1-70B-Instruct\ntensor-parallel-size: 4\nmax-model-len: 32768\n"
                   "max-num-seqs: 8\ninput-len: 2048\noutput-len: 256\nport: 8000\n")
    code, out, _ = cli("check", str(cfg))
    assert code == 2 and "pass --gpu" in out
    assert cli("check", str(cfg), "--gpu", "h100-sxm")[0] == 0
    code, out, _ = cli("check", str(cfg), "--gpu", "h100-sxm", "--tpot-slo", "5ms", "--format", "json")
    assert code == 1 and [f["rule"] for f in json.loads(out)["findings"]] == ["TPP021"]
    code, out, _ = cli("check", str(cfg), "--gpu", "h100-sxm", "--budget-usd-per-hour", "1")
    assert code == 1 and "TPP022" in out
    # a gpu in the file wins over --gpu
    cfg.write_text(cfg.read_text().replace("port: 8000\n", "gpu: l40s\n"))
    code, out, _ = cli("check", str(cfg), "--gpu", "h100-sxm", "--format", "json")
    assert "l40s" in out
    assert cli("check", str(cfg), "--gpu", "nosuch")[0] == 2


ENGINES = DEPLOY / "engines"


def test_real_engine_files(cli):
    """issue 20 item 5: engine files as the engines take them, plus manifests; tests/data/deploy/engines/."""
    # vLLM config: no tpplan key; --gpu from the command line; 256 x 32K sequences do not fit 4 x H100
    code, out, err = cli("check", str(ENGINES / "vllm-serve-config.yaml"), "--gpu", "h100-sxm", "-f", "json")
    d = json.loads(out)
    assert code == 0 and [f["rule"] for f in d["findings"]] == ["TPP012"], err
    # SGLang: model-path is the model; 128K on TP2 needs more KV than is left (bf16 KV: 20 GiB per sequence)
    code, out, _ = cli("check", str(ENGINES / "sglang-server.yaml"), "--gpu", "h100-sxm", "-f", "json")
    rules = [f["rule"] for f in json.loads(out)["findings"]]
    assert code == 1 and rules == ["TPP011"]
    # TensorRT-LLM: the nested fp8 KV cache halves it (10 GiB per 128K sequence at TP2; bf16 would need 160 GiB
    # for the 8 sequences), and the free-memory fraction of 0.9 leaves room for one
    code, out, _ = cli("check", str(ENGINES / "trtllm-kv-config.yaml"), "--gpu", "h100-sxm", "-f", "json")
    f = json.loads(out)["findings"]
    assert code == 0 and [x["rule"] for x in f] == ["TPP012"]
    assert "8 sequences of 131,072 tokens need 80.0 GiB" in f[0]["message"] and "; 1 fit" in f[0]["message"]
    assert f[0]["path"] == "$.max_batch_size"


def test_manifests_and_non_deployments(cli):
    # Helm values: args read as the server's command line, gpu and SLO under x-tpplan
    code, out, _ = cli("check", str(ENGINES / "helm-values.yaml"), "-f", "json")
    d = json.loads(out)
    f = d["findings"]
    assert code == 1 and [x["rule"] for x in f] == ["TPP011"] and d["summary"]["documents"] == 1
    assert "--max-model-len" in f[0]["message"] and f[0]["line"] == 7  # the args list item
    # Kubernetes Deployment starting sglang.launch_server: python3 -m is the launcher's, not an option
    code, out, _ = cli("check", str(ENGINES / "k8s-sglang.yaml"), "--gpu", "l40s", "-f", "json")
    assert code == 0 and json.loads(out)["findings"] == []
    # a workflow next to the deployments is skipped with a note, not an error
    code, out, _ = cli("check", str(ENGINES / "github-workflow.yaml"), str(ENGINES / "k8s-sglang.yaml"),
                       "--gpu", "l40s", "-f", "json")
    d = json.loads(out)
    assert code == 0 and d["findings"] == [] and d["summary"]["documents"] == 1
    assert d["skipped"] == [{"file": str(ENGINES / "github-workflow.yaml"), "document": 1,
                             "reason": d["skipped"][0]["reason"]}] and "not a deployment" in d["skipped"][0]["reason"]
    code, out, _ = cli("check", str(ENGINES / "github-workflow.yaml"))
    assert code == 0 and "skipped: not a deployment" in out


def test_pre_commit_hook_reads_deploy_folders_only():
    import re

    import yaml

    hook = yaml.safe_load((Path(__file__).parents[1] / ".pre-commit-hooks.yaml").read_text())[0]
    pattern = re.compile(hook["files"])  # pre-commit matches `files` with re.search
    assert pattern.search("deploy/llama70b.yaml") and pattern.search("k8s/deploy/prod/vllm.yml")
    assert not pattern.search(".github/workflows/ci.yaml") and not pattern.search("docker-compose.yaml")


def test_a_deployment_with_every_key_misspelt_is_not_skipped(cli, tmp_path):
    f = tmp_path / "typo.yaml"
    f.write_text("modle: llama-70b\ntensor_paralel_size: 4\n")
    code, out, _ = cli("check", str(f), "--gpu", "h100")
    assert code == 2 and "Did you mean 'model'?" in out and "skipped" not in out


def test_hf_overrides_rope_scaling_lifts_the_context_limit(cli, tmp_path):
    f = ENGINES / "vllm-yarn.yaml"
    code, out, _ = cli("check", str(f), "--gpu", "h100", "-f", "json")
    assert code == 0 and json.loads(out)["findings"] == []
    plain = tmp_path / "plain.yaml"
    plain.write_text("\n".join(x for x in f.read_text().splitlines() if not x.startswith("hf-overrides")))
    code, out, _ = cli("check", str(plain), "--gpu", "h100", "-f", "json")
    assert code == 1 and [x["rule"] for x in json.loads(out)["findings"]] == ["TPP013"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(f.read_text().replace('"factor": 4.0', '"factor": 0.5'))
    code, out, _ = cli("check", str(bad), "--gpu", "h100", "-f", "json")
    assert code == 2 and "factor in (1, 64]" in json.loads(out)["findings"][0]["message"]


def test_disaggregated_pools_are_checked_each_at_the_rate(cli, tmp_path):
    """A Dynamo / llm-d document with prefill and decode sections: every rule per pool, TPP023 at the rate
    (tpplan/plan/disagg.py); the decode pool's own max-num-seqs is read from its section."""
    code, out, err = cli("check", str(DEPLOY / "good" / "llama70b-disagg.yaml"), "--strict", "-f", "json")
    assert code == 0, out + err
    text = (DEPLOY / "good" / "llama70b-disagg.yaml").read_text().replace("replicas: 2", "replicas: 1")
    bad = tmp_path / "disagg.yaml"
    bad.write_text(text)
    code, out, _ = cli("check", str(bad), "-f", "json")
    f = json.loads(out)["findings"]
    assert code == 1 and [x["rule"] for x in f] == ["TPP023"]
    assert f[0]["path"] == "$.DecodeWorker.replicas" and "decode pool's 1 replica(s)" in f[0]["message"]
    assert f[0]["suggestion"] == {"replicas": 2}


def test_one_reason_table_names_every_rejection_and_its_check_rule():
    """issue 19: one reason table (engine/grid.py REASONS): every rejection bit has its words, and those a
    deployment file can have name the check rule that reports them (an existing rule of docs/check-rules.md)."""
    from tpplan.engine import grid

    assert {r.reason for r in grid.REASONS} == set(grid.Reason)
    assert all(r.text for r in grid.REASONS)
    ids = {r.id for r in check_rules.RULES}
    assert set(grid.RULE_OF.values()) <= ids
    assert grid.RULE_OF[grid.Reason.KV_BELOW_ONE_REQUEST] == "TPP011"
    assert grid.REASON_TEXT["CROSS_NODE_TP"].startswith("tensor parallelism beyond one node")
