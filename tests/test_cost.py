"""tpplan cost: what N GPUs cost for a period (issue 20 item 6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpplan.catalog import load_catalog
from tpplan.cost import rental_cost
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
