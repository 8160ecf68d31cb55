"""tpplan cost: what N GPUs cost for a period (issue 20 item 6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpplan.catalog.load import load_catalog
from tpplan.engine.cost import rental_cost
from tpplan.units import UnitError, parse_period


def test_128_h100_for_30_days_at_each_tier(cli_json):
    _, d = cli_json("cost", "--gpu", "h100-sxm", "--gpus", "128", "--for", "30d")
    # 128 GPUs x 720 h = 92,160 GPU-hours; hardware/h100-sxm.yaml tiers $1.49 / $2.49 / $6.88 per GPU-hour
    assert d["billed_gpu_hours"] == pytest.approx(92_160)
    by = {r["tier"]: r for r in d["tiers"]}
    assert list(by) == ["low", "typical", "high"]
    assert by["typical"]["total_usd"] == pytest.approx(92_160 * 2.49)
    assert by["low"]["total_usd"] == pytest.approx(137_318.4)
    assert by["high"]["usd_per_hour"] == pytest.approx(128 * 6.88)
    assert by["typical"]["usd_per_month"] == pytest.approx(128 * 2.49 * 730)
    assert d["nodes"] == 16 and d["notes"] == [] and "S" in d["source_tags"]


def test_deepseek_v3_price_and_assumed_flags(cli_json):
    # DeepSeek-V3 report: 2,788K H800 GPU-hours at $2 = $5.576M; 2,048 H800 for 2,788,000 / 2,048 h
    hours = 2_788_000 / 2048
    _, d = cli_json("cost", "--gpu", "h800", "--gpus", "2048", "--for", f"{hours}h")
    by = {r["tier"]: r for r in d["tiers"]}
    assert by["typical"]["total_usd"] == pytest.approx(5.576e6)
    # H800 low/high tiers are H100 stand-ins: flagged, with the legend and a note saying how to override
    assert by["low"]["assumed"] and by["high"]["assumed"] and not by["typical"]["assumed"]
    assert "assumed" in d["source_tags"] and any("--price" in n for n in d["notes"])


def test_override_utilization_and_node_rounding(cli_json):
    _, d = cli_json("cost", "--gpu", "h100", "--gpus", "130", "--for", "1mo", "--utilization", "0.5",
                 "--price", "h100-sxm=2.10")
    assert [r["tier"] for r in d["tiers"]] == ["override"]
    assert d["period_hours"] == 730 and d["billed_gpu_hours"] == pytest.approx(130 * 730 * 0.5)
    assert d["tiers"][0]["total_usd"] == pytest.approx(130 * 730 * 0.5 * 2.10)
    assert d["nodes"] == 17 and "17 nodes (136 GPUs)" in d["notes"][0]


def test_markdown_and_table(cli):
    code, out, _ = cli("cost", "--gpu", "h800", "--gpus", "16", "--for", "1w", "--format", "markdown")
    assert code == 0 and "| low [assumed] |" in out and "- [assumed] = " in out and "2,688 GPU-hours" in out
    code, out, _ = cli("cost", "--gpu", "a100-sxm-80gb", "--gpus", "8")
    assert code == 0 and "5,840 GPU-hours billed" in out  # default period: a month of 730 h


@pytest.mark.parametrize("args", [["--gpus", "0"], ["--gpus", "-1"], ["--gpus", "8", "--for", "0d"],
                                  ["--gpus", "8", "--for", "soon"], ["--gpus", "8", "--utilization", "0"],
                                  ["--gpus", "8", "--utilization", "nan"], ["--gpus", "8", "--price", "nosuch=2"],
                                  ["--gpus", "8", "--for", "1e9y"], ["--gpus", "2M"]])
def test_bad_input_exits_2(cli, args):
    code, out, err = cli("cost", "--gpu", "h100", *args)
    assert code == 2 and out == "" and "Traceback" not in err


def test_parse_period():
    assert parse_period("30d") == 30 * 86400 and parse_period("2w") == 14 * 86400
    assert parse_period("1mo") == 730 * 3600 and parse_period("1y") == 8760 * 3600
    assert parse_period("720h") == 720 * 3600
    for bad in ("0h", "-1d", "1 fortnight", ""):
        with pytest.raises(UnitError):
            parse_period(bad)


@given(st.integers(1, 100_000), st.floats(1.0, 1e7), st.floats(0.01, 1.0))
def test_total_is_linear_in_gpus_time_and_utilization(n, seconds, util):
    gpu = load_catalog().gpu("h100-sxm")
    one = rental_cost(gpu, 1, seconds, 1.0)
    r = rental_cost(gpu, n, seconds, util)
    for a, b in zip(r["tiers"], one["tiers"], strict=True):
        assert a["total_usd"] == pytest.approx(b["total_usd"] * n * util, rel=1e-9)
        assert a["total_usd"] == pytest.approx(a["usd_per_hour"] * seconds / 3600, rel=1e-9)


SHEET = """gpu,usd_per_gpu_hour,price,tier,sku,commitment,currency,fx_usd_per_unit,as_of,source
h100-sxm,1.85,,typical,p5.48xlarge,reserved-1y,USD,,2026-10-01,ACME contract
h100,2.90,,high,p5.48xlarge,on-demand,USD,,2026-10-01,ACME contract
h200,,2.40,low,,spot,EUR,1.08,2026-11-01,spot quote
"""


def test_price_sheet_in_cost_and_recommend(cli_json, tmp_path):
    sheet = tmp_path / "prices.csv"
    sheet.write_text(SHEET)
    _, d = cli_json("cost", "--gpu", "h100", "--gpus", "128", "--for", "30d", "--prices", str(sheet))
    assert [(r["tier"], r["usd_per_gpu_hour"]) for r in d["tiers"]] == [
        ("typical reserved-1y p5.48xlarge", 1.85), ("high on-demand p5.48xlarge", 2.90)]
    assert d["tiers"][0]["total_usd"] == pytest.approx(92_160 * 1.85)
    # a EUR quote converted at the row's fx rate: 2.40 EUR x 1.08 = $2.592
    _, d = cli_json("cost", "--gpu", "h200", "--gpus", "8", "--prices", str(sheet))
    assert d["tiers"][0]["usd_per_gpu_hour"] == pytest.approx(2.592) and "2.4 EUR" in d["tiers"][0]["source"]
    # recommend: each GPU's row at --price-tier (or its only row); the source names the sheet and line
    _, r = cli_json("recommend", "--model", "llama-8b", "--ctx", "8k", "--gpu", "h100", "--gpu", "h200",
                    "--prices", str(sheet), "--top", "2")
    a = r["assumptions"]
    assert a["h100-sxm"]["price"]["usd_per_gpu_hour"] == 1.85 and "line 2" in a["h100-sxm"]["price"]["source"]
    assert a["h200"]["price"]["usd_per_gpu_hour"] == pytest.approx(2.592)
    # --price wins over the sheet
    _, r = cli_json("recommend", "--model", "llama-8b", "--ctx", "8k", "--gpu", "h100", "--prices", str(sheet),
                    "--price", "h100=1.5", "--top", "1")
    assert r["assumptions"]["h100-sxm"]["price"]["usd_per_gpu_hour"] == 1.5


def test_yaml_price_sheet(cli_json, tmp_path):
    sheet = tmp_path / "prices.yaml"
    sheet.write_text("prices:\n  - {gpu: b200, usd_per_gpu_hour: 3.75, commitment: reserved-3y, source: quote}\n")
    _, d = cli_json("cost", "--gpu", "b200", "--gpus", "72", "--for", "1y", "--prices", str(sheet))
    assert d["tiers"][0]["total_usd"] == pytest.approx(72 * 8760 * 3.75)


@pytest.mark.parametrize("text,needle", [
    ("gpu,usd_per_gpu_hour\nnosuch,2\n", ":2: unknown GPU 'nosuch'"),
    ("gpu,usd_per_gpu_hour\nh100,abc\n", ":2: price 'abc' is not a number"),
    ("gpu,usd_per_gpu_hour\nh100,-1\n", "not a plausible price"),
    ("gpu,price,currency\nh100,2,EUR\n", "needs fx_usd_per_unit"),
    ("gpu,usd_per_gpu_hour,colour\nh100,2,red\n", "unknown column 'colour'"),
    ("", "empty"),
])
def test_bad_price_sheets_exit_2(cli, tmp_path, text, needle):
    sheet = tmp_path / "prices.csv"
    sheet.write_text(text)
    code, out, err = cli("cost", "--gpu", "h100", "--gpus", "8", "--prices", str(sheet))
    assert code == 2 and out == "" and needle in err, err


def test_report_prices_table_names_the_sheet(cli, tmp_path):
    sheet = tmp_path / "prices.csv"
    sheet.write_text(SHEET)
    code, out, _ = cli("report", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--prices", str(sheet))
    assert code == 0
    assert "| h100-sxm | --prices | $1.85 | 2026-10-01 | ACME contract (" in out and "line 2, reserved-1y)" in out
