"""Catalog sweep and golden counts (published-figures sections 2, 3 and 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpplan.catalog.load import bundled_root, get_catalog, load_catalog
from tpplan.catalog.spec import GpuSpec, ModelSpec
from tpplan.errors import TpplanError
from tpplan.yamlio import load_one

ROOT = bundled_root()
GPU_FILES = sorted((ROOT / "hardware").glob("*.yaml"))
MODEL_FILES = sorted((ROOT / "models").glob("*.yaml"))
REQUIRED_GPUS = ["h100-sxm", "h100-pcie", "h100-nvl", "h800", "h200", "a100-sxm-80gb", "a100-sxm-40gb",
                 "a100-pcie-80gb", "b200", "l40s", "mi300x"]
REQUIRED_MODELS = ["llama-3.1-8b", "llama-3.1-70b", "llama-3-70b", "llama-3.1-405b", "mistral-7b",
                   "mixtral-8x7b", "mixtral-8x22b", "qwen2.5-72b", "deepseek-v3", "gpt3-175b", "megatron-1t"]


def _sources(obj, path=""):
    """Every mapping that holds a number must also hold a 'source' somewhere up its path."""
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _sources(v, f"{path}.{k}")


@pytest.mark.parametrize("path", GPU_FILES, ids=lambda p: p.name)
def test_every_gpu_file_loads_and_cites_sources(path):
    spec = GpuSpec.model_validate(load_one(path).data)
    d = spec.model_dump(mode="json")
    for key in ("memory", "hbm", "compute", "scale_up", "pcie", "scale_out", "node", "power", "overheads"):
        assert d[key]["source"].strip(), f"{path.name}: {key} lacks a source"
    for tier in ("low", "typical", "high"):
        assert d["prices"][tier]["source"] and d["prices"][tier]["as_of"]
    for k in ("flops", "hbm", "intra_node", "inter_node"):
        assert d["calibration"][k]["source"].strip()


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.name)
def test_every_model_file_loads_and_cites_a_source(path):
    spec = ModelSpec.model_validate(load_one(path).data)
    assert spec.source.strip()
    assert spec.params_total >= spec.params_active > 0


def test_required_entries_and_aliases(cat):
    assert set(REQUIRED_GPUS) <= set(cat.gpu_names())
    assert set(REQUIRED_MODELS) <= set(cat.model_names())
    assert cat.model("llama-70b").name == "llama-3.1-70b"
    assert cat.model("llama-3.3-70b").name == "llama-3.1-70b"
    assert cat.model("llama-3-70b").max_position_embeddings == 8192  # separate 8K entry
    assert cat.model("llama-8b").name == "llama-3.1-8b"
    assert cat.model("llama-405b").name == "llama-3.1-405b"
    assert cat.gpu("H100").name == "h100-sxm"


def test_parameter_counts_are_exact(cat):
    # published-figures 3: Llama-3.1-70B config -> 70,553,706,496 parameters
    assert cat.model("llama-3.1-70b").params_total == 70_553_706_496
    # 405.85B (published-figures 3, derived from the config)
    assert cat.model("llama-3.1-405b").params_total == pytest.approx(405.85e9, rel=5e-4)
    # PARAM-D1: DeepSeek-V3 671.0B total (+-0.5%), ~37B active (+-3%) (README: 671B / 37B)
    ds = cat.model("deepseek-v3")
    assert ds.params_total == pytest.approx(671.0e9, rel=0.005)
    assert ds.params_active == pytest.approx(37.6e9, rel=0.03)
    # WEIGHT-2: Mixtral 46.70B / 12.88B +-1% (Mistral AI: 46.7B / 12.9B)
    mx = cat.model("mixtral-8x7b")
    assert mx.params_total == pytest.approx(46.70e9, rel=0.01)
    assert mx.params_active == pytest.approx(12.88e9, rel=0.01)
    # Qwen2.5-72B with QKV bias: 72.71B (published-figures 3)
    assert cat.model("qwen2.5-72b").params_total == pytest.approx(72.71e9, rel=5e-4)


def test_kv_bytes_per_token(cat):
    # KV-1, KV-2, KV-D1 (published-figures 2.2, 3; ISCA'25 Table 1)
    assert cat.model("llama-3.1-70b").kv_cache_bytes_per_token(2) == 327_680
    assert cat.model("llama-3.1-405b").kv_cache_bytes_per_token(2) == 516_096
    assert cat.model("llama-3.1-405b").kv_cache_bytes_per_token(1) == 258_048
    assert cat.model("deepseek-v3").kv_cache_bytes_per_token(2) == 70_272
    assert cat.model("qwen2.5-72b").kv_cache_bytes_per_token(2) == 327_680
    assert cat.model("llama-3.1-70b").kv_cache_bytes_per_token(2) * 131_072 == 42_949_672_960


def test_gpu_specs_match_published_table(cat):
    # HW-2: dense figures, never the sparsity-doubled ones (published-figures 6.1)
    h100 = cat.gpu("h100-sxm")
    assert h100.compute.dense_flops_per_s["bf16"] == pytest.approx(989.4e12)
    assert h100.compute.dense_flops_per_s["fp8"] == pytest.approx(1978.9e12)
    assert h100.hbm.bandwidth_bytes_per_s == 3.35e12
    assert cat.gpu("h200").hbm.bandwidth_bytes_per_s == 4.8e12
    assert cat.gpu("a100-sxm-80gb").compute.dense_flops_per_s["bf16"] == 312e12
    assert cat.gpu("h800").scale_up.bandwidth_bytes_per_s == 200e9  # 400 GB/s bidirectional
    assert cat.gpu("l40s").scale_up.kind == "pcie"
    # HW-1 ridge points (FLOPs/byte): H100 295, H200 206, A100 153, MI300X 247
    ridge = {n: cat.gpu(n).compute.dense_flops_per_s["bf16"] / cat.gpu(n).hbm.bandwidth_bytes_per_s
             for n in ("h100-sxm", "h200", "a100-sxm-80gb", "mi300x")}
    assert round(ridge["h100-sxm"]) == 295 and round(ridge["h200"]) == 206
    assert round(ridge["a100-sxm-80gb"]) == 153 and round(ridge["mi300x"]) == 247


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    p = tmp_path / "models" / name
    p.write_text(text)
    return p


def test_bad_catalog_yaml_names_file_line_and_key(tmp_path):
    src = (ROOT / "models" / "llama-3.1-8b.yaml").read_text()
    _write(tmp_path, "x.yaml", src.replace("name: llama-3.1-8b", "name: mine").replace("num_layers: 32",
                                                                                       "num_layers: -3"))
    with pytest.raises(TpplanError) as err:
        load_catalog([tmp_path])
    msg = err.value.render()
    assert "x.yaml:" in msg and "num_layers" in msg
    line = [i for i, ln in enumerate(src.splitlines(), 1) if ln.startswith("num_layers")][0]
    assert f":{line}:" in msg


def test_unknown_key_and_malformed_yaml(tmp_path):
    _write(tmp_path, "a.yaml", "name: a\nfamily: x\nbogus_key: 1\n")
    with pytest.raises(TpplanError, match="bogus_key"):
        load_catalog([tmp_path])
    d2 = tmp_path / "b"
    (d2 / "models").mkdir(parents=True)
    (d2 / "models" / "b.yaml").write_text("name: [unclosed\n")
    with pytest.raises(TpplanError, match=r"b\.yaml:\d+:\d+: malformed YAML"):
        load_catalog([d2])


def test_user_catalog_shadows_and_duplicates_error(tmp_path):
    src = (ROOT / "models" / "llama-3.1-8b.yaml").read_text().replace("num_layers: 32", "num_layers: 16")
    _write(tmp_path, "mine.yaml", src)
    cat = load_catalog([tmp_path])
    assert cat.model("llama-3.1-8b").num_layers == 16  # user first
    assert cat.models["llama-3.1-8b"].user
    other = tmp_path / "other"
    (other / "models").mkdir(parents=True)
    (other / "models" / "again.yaml").write_text(src)
    with pytest.raises(TpplanError, match="defined twice"):
        load_catalog([tmp_path, other])


def test_models_json_contract(cli):
    code, out, _ = cli("models", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["schema_version"] == 1
    row = next(m for m in data["models"] if m["name"] == "llama-3.1-70b")
    assert {"name", "aliases", "params_total", "params_active", "kv_cache_bytes_per_token", "max_context"} <= set(row)
    assert row["params_total"] == 70_553_706_496
    code, out, _ = cli("gpus", "--format", "json")
    g = next(x for x in json.loads(out)["gpus"] if x["name"] == "h100-sxm")
    assert set(g["price_usd_per_hour"]) == {"low", "typical", "high"}
    assert g["dense_flops_per_s"]["bf16"] == pytest.approx(989.4e12)
    assert g["memory_bytes"] > 80e9


def test_show_and_unknown_names(cli):
    code, out, _ = cli("models", "show", "deepseek-v3")
    assert code == 0 and "kv_lora_rank: 512" in out and "source" in out
    code, out, _ = cli("gpus", "show", "h100")
    assert code == 0 and "nvidia-smi" in out
    code, _, err = cli("estimate", "--model", "lama-70b", "--gpu", "h100", "--ctx", "8k")
    assert code == 2 and "did you mean llama-70b" in err and "tpplan models" in err
    code, _, err = cli("gpus", "show", "h1000")
    assert code == 2 and "tpplan gpus" in err


def test_catalog_env_path(tmp_path, monkeypatch, cli):
    src = (ROOT / "models" / "llama-3.1-8b.yaml").read_text().replace("name: llama-3.1-8b", "name: env-model")
    src = src.replace("- llama-8b", "- env-alias")
    _write(tmp_path, "env.yaml", src)
    monkeypatch.setenv("TPPLAN_CATALOG_PATH", str(tmp_path))
    get_catalog.__globals__["_CACHE"].clear()
    code, out, _ = cli("models", "--format", "json")
    assert code == 0 and "env-model" in out


def test_catalog_strings_print_as_written_not_as_rich_markup(tmp_path, cli):
    src = (ROOT / "models" / "llama-3.1-8b.yaml").read_text()
    _write(tmp_path, "x.yaml", src.replace("name: llama-3.1-8b", "name: mine[bold]").replace(
        "- llama-8b\n- llama-3.1-8b-instruct\n", '- "[red]x[/red]"\n- ":smile:"\n'))
    code, out, err = cli("models", "--catalog", str(tmp_path))
    assert code == 0, err
    assert "mine[bold]" in out and "[red]x[/red]" in out and ":smile:" in out


def test_compiled_catalog_is_current_and_equals_the_yaml(monkeypatch):
    """tpplan/_bundled_catalog.json is what `python -m tpplan.catalog` writes from the YAML today, it is the
    one in use, and it gives the very catalog (specs and digest) the YAML gives."""
    from tpplan.catalog import load as catalog

    assert catalog.COMPILED.read_text(encoding="utf-8") == catalog.compile_bundle(), \
        "bundled YAML changed: run python -m tpplan.catalog"
    assert catalog.compiled_bundle_current()
    fast = load_catalog()
    monkeypatch.setattr(catalog, "COMPILED", catalog.COMPILED.with_name("missing.json"))
    slow = load_catalog()
    assert fast.digest == slow.digest
    for table in ("gpus", "models"):
        a, b = getattr(fast, table), getattr(slow, table)
        assert list(a) == list(b)
        for name in a:
            assert repr(a[name].spec.model_dump()) == repr(b[name].spec.model_dump()), name
            assert a[name].file == b[name].file


def test_edited_bundled_yaml_wins_over_a_stale_compiled_catalog(tmp_path, monkeypatch):
    import shutil

    from tpplan.catalog import load as catalog

    for sub in ("hardware", "models"):
        shutil.copytree(ROOT / sub, tmp_path / sub)
    p = tmp_path / "hardware" / "h100-sxm.yaml"
    p.write_text(p.read_text().replace("tdp_w: 700", "tdp_w: 701"))
    monkeypatch.setattr(catalog, "bundled_root", lambda: tmp_path)
    assert not catalog.compiled_bundle_current()
    assert load_catalog().gpu("h100-sxm").power.tdp_w == 701


def test_recommend_does_not_import_pyyaml():
    import subprocess
    import sys

    code = ("import sys, io, contextlib\nfrom tpplan.cli.app import run\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    run(['recommend', '--model', 'llama-70b', '--ctx', '8k', '--gpu', 'h100'])\n"
            "assert 'yaml' not in sys.modules, 'PyYAML imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("text", ["", "{", "[]", '{"files": [1]}', '{"files": [{"path": "x"}]}', '{"files": {}}'])
def test_a_damaged_compiled_catalog_falls_back_to_the_yaml(tmp_path, monkeypatch, text):
    from tpplan.catalog import load as catalog

    bad = tmp_path / "compiled.json"
    bad.write_text(text)
    monkeypatch.setattr(catalog, "COMPILED", bad)
    assert not catalog.compiled_bundle_current()
    assert load_catalog().gpu("h100-sxm").name == "h100-sxm"


# issue 20: what is being bought now. Figures are the vendors' datasheets, tagged [recalled] where they were
# written without re-reading the page; each test value names the datasheet line it comes from.
NEW_GPUS = ["gb200-nvl72", "gb300-nvl72", "b300", "h20", "l4", "a10g", "mi325x", "mi355x"]


def test_new_gpus_are_listed_with_sources_and_dense_figures(cat, cli):
    assert set(NEW_GPUS) <= set(cat.gpu_names())
    # GB200 NVL72 product page, per rack with sparsity: BF16 360 PF, FP8 720 PF, FP4 1,440 PF; 576 TB/s; / 72, halved
    gb = cat.gpu("gb200")
    assert gb.compute.dense_flops_per_s["bf16"] == 360e15 / 72 / 2
    assert gb.compute.dense_flops_per_s["fp4"] == 1440e15 / 72 / 2
    assert gb.hbm.bandwidth_bytes_per_s == 576e12 / 72
    assert (gb.scale_up.domain_gpus, gb.node.gpus_per_node) == (72, 4)
    # L4 datasheet: FP8 485 TF and BF16 242 TF with sparsity, 300 GB/s, 72 W; H20: BF16 148 TF dense, 4.0 TB/s
    l4 = cat.gpu("l4")
    assert l4.compute.dense_flops_per_s["fp8"] == 485e12 / 2 and l4.hbm.bandwidth_bytes_per_s == 300e9
    assert l4.power.tdp_w == 72 and l4.pcie_only
    assert cat.gpu("h20").compute.dense_flops_per_s["bf16"] == 148e12
    # MI325X: MI300X compute with 256 GB at 6 TB/s; MI355X: 10 PF dense MXFP4, 288 GB at 8 TB/s
    assert cat.gpu("mi325x").compute.dense_flops_per_s == cat.gpu("mi300x").compute.dense_flops_per_s
    assert cat.gpu("mi355x").compute.dense_flops_per_s["fp4"] == 10e15
    assert "fp8" not in cat.gpu("a10g").compute.dense_flops_per_s  # Ampere
    assert "int8" not in cat.gpu("gb300-nvl72").compute.dense_flops_per_s  # cut on Blackwell Ultra
    for n in NEW_GPUS:
        g = cat.gpu(n)
        for part in (g.memory, g.hbm, g.compute, g.scale_up, g.node, g.power):
            assert "[" in part.source  # every figure carries its tag
    code, out, _ = cli("gpus", "--format", "json")
    assert code == 0 and set(NEW_GPUS) <= {r["name"] for r in json.loads(out)["gpus"]}


def test_the_recalled_tag_is_explained_in_source_legends():
    from tpplan.engine.cost import source_legend

    legend = source_legend(["NVIDIA GB200 NVL72 product page [recalled]; / 72 [D]"])
    assert list(legend) == ["D", "recalled"] and "not re-read" in legend["recalled"]
