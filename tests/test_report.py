"""`tpplan report`: golden markdown on a frozen catalog, determinism, HTML, CSV, charts, training arithmetic."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tpplan.engine import cost

DATA = Path(__file__).parent / "data"
FROZEN = ["--catalog", str(DATA / "report-catalog"), "--model", "golden-70b", "--gpu", "golden-h100",
          "--gpu", "golden-h200", "--ctx", "32k"]


def _normalise(text: str) -> str:
    """The catalog hash covers the bundled catalog too and the version moves with releases: mask both."""
    from tpplan import __version__

    text = re.sub(r"[0-9a-f]{64}", "<sha256>", text)
    text = re.sub(r"sha256 [0-9a-f]{16}", "sha256 <sha256>", text)
    return text.replace(f"tpplan {__version__}", "tpplan <version>")


def test_golden_markdown(cli):
    code, out, err = cli("report", *FROZEN)
    assert code == 0, err
    path = DATA / "golden" / "report-golden-70b.md"
    text = _normalise(out)
    if os.environ.get("TPPLAN_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), "report changed; rerun with TPPLAN_UPDATE_GOLDEN=1 if intended"


def test_markdown_is_byte_identical_across_processes(tmp_path):
    outs = []
    for seed in ("1", "2"):
        target = tmp_path / f"r{seed}.md"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "tpplan", "report", *FROZEN, "-o", str(target)], check=True, env=env)
        outs.append(target.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 2000


def test_report_content(cli_json):
    code, d = cli_json("report", *FROZEN)
    assert code == 0 and d["kind"] == "serve"
    rows = d["comparison"]
    assert [r["layout"]["gpu"] for r in rows] == sorted(
        (r["layout"]["gpu"] for r in rows), key=lambda g: next(x["cost"]["usd_per_million_tokens"]
                                                                 for x in rows if x["layout"]["gpu"] == g))
    for r in rows:
        lay, k = r["layout"], r["cost"]
        assert lay["gpus"] == lay["tp"] * lay["pp"] * lay["dp"] * lay["cp"]
        tiers = k["usd_per_million_tokens_by_tier"]
        assert tiers["low"] <= tiers["typical"] <= tiers["high"]
        # $/month = $/hour x 730 h x utilisation (100% by default)
        assert k["usd_per_month"] == pytest.approx(k["usd_per_hour"] * 730)
        m = r["memory_per_gpu_bytes"]
        assert m["weights"] + m["kv_cache"] + m["activations"] + m["overhead"] + m["free"] == \
            pytest.approx(m["capacity"])
    assert d["winner"] == rows[0] and d["runner_up"]["layout"]["gpu"] != rows[0]["layout"]["gpu"]
    ctxs = [r["ctx_tokens"] for r in d["sensitivity"]["context"]]
    assert ctxs == [8_000, 32_000, 128_000]
    cost_8k, cost_32k, cost_128k = (r["usd_per_million_tokens_by_tier"]["typical"] for r in d["sensitivity"]["context"])
    assert cost_8k < cost_32k < cost_128k  # longer contexts hold fewer sequences per GPU
    assert d["prices"][0]["typical"]["as_of"] and d["prices"][0]["typical"]["source"]
    code, half = cli_json("report", *FROZEN, "--utilization", "50%")
    assert half["winner"]["cost"]["usd_per_month"] == pytest.approx(d["winner"]["cost"]["usd_per_month"] / 2)


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append(tag)


def test_html_is_self_contained_with_tables_and_svg(cli, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "r.html"
    code, _, err = cli("report", *FROZEN, "--format", "html", "-o", str(target))
    assert code == 0, err
    text = target.read_text()
    p = _Collect()
    p.feed(text)
    assert p.tags.count("table") >= 5 and p.tags.count("svg") == 2 and "style" in p.tags
    # self-contained: no scripts, stylesheets, images or fonts fetched from anywhere
    assert "<script" not in text and "<link" not in text
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "Comparison across GPU types" in text and "golden-h200" in text


def test_csv_rows(cli):
    code, out, _ = cli("report", *FROZEN, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    # ranked by $ per 1M output tokens at each type's maximum sustainable rate: 31,744-token prompts make this
    # prefill-bound, where the H100's price per FLOP wins (it lost when prefill was left out)
    assert code == 0 and [r["gpu"] for r in rows] == ["golden-h100", "golden-h200"]
    assert float(rows[0]["usd_per_million_tokens_low"]) < float(rows[0]["usd_per_million_tokens_high"])


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_writes_valid_image(cli, tmp_path, suffix):
    pytest.importorskip("matplotlib")
    target = tmp_path / f"c.{suffix}"
    code, out, err = cli("report", *FROZEN, "--plot", str(target))
    assert code == 0, err
    data = target.read_bytes()
    if suffix == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    else:
        import xml.etree.ElementTree as ET

        assert ET.fromstring(data).tag.endswith("svg")


def test_plot_without_matplotlib_exits_2_and_writes_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out_md, out_png = tmp_path / "r.md", tmp_path / "c.png"
    code, out, err = cli("report", *FROZEN, "-o", str(out_md), "--plot", str(out_png))
    assert code == 2 and "pip install 'tpplan[plot]'" in err
    assert not out_md.exists() and not out_png.exists()
    code, _, _ = cli("report", *FROZEN, "-o", str(out_md))  # the rest of the report still works
    assert code == 0 and out_md.read_text().startswith("# Serving cost report")
    code, out, _ = cli("report", *FROZEN, "--format", "html")
    assert code == 0 and "Charts omitted" in out and "<table>" in out


def test_deepseek_v3_run_cost(cli_json):
    # DeepSeek-V3 technical report (arXiv:2412.19437, Table 1): 2,788K H800 GPU-hours at $2/GPU-hour = $5.576M
    assert float(cost.run_cost(2_788_000, 2.0)) == 5_576_000.0
    code, d = cli_json("report", "--train", "--gpu-hours", "2788k", "--gpu", "h800", "--price", "h800=2")
    assert code == 0
    assert d["runs"][0]["usd_total_by_tier"] == {"low": 5_576_000.0, "typical": 5_576_000.0, "high": 5_576_000.0}


def test_training_report(cli_json, cli):
    args = ["report", "--train", "--model", "llama-8b", "--tokens", "1T", "--seq-len", "4096", "--global-batch", "512",
            "--max-gpus", "64", "--gpu", "h100", "--gpu", "a100-sxm-80gb"]
    code, d = cli_json(*args)
    assert code == 0 and d["kind"] == "train" and len(d["comparison"]) == 2
    for c in d["comparison"]:
        t = c["train"]
        assert t["gpu_hours"] == pytest.approx(c["layout"]["gpus"] * t["days"] * 24)
        tiers = c["cost"]["usd_total_by_tier"]
        assert tiers["low"] <= tiers["typical"] <= tiers["high"]
        # 1T tokens is decimal (10^12), as every paper counts training tokens
        assert t["steps"] == pytest.approx(1e12 / (512 * 4096))
    code, out, _ = cli(*args)
    assert "## Comparison across GPU types" in out and "GPU-hours" in out


def test_report_bad_input(cli):
    assert cli("report", "--model", "llama-70b", "--utilization", "150%")[0] == 2
    assert cli("report", "--model", "llama-70b", "--plot", "chart.gif")[0] == 2
    assert cli("report", "--model", "nope")[0] == 2
    d = json.loads(cli("report", "--model", "llama-405b", "--gpu", "l40s", "--max-gpus", "2", "-f", "json")[1])
    assert "winner" not in d and d["blocked"][0]["gpu"] == "l40s"


def test_assumed_price_is_flagged_in_the_summary_with_a_tag_legend(cli):
    # hardware/mi300x.yaml: the typical tier is a stand-in ("[assumed]"); issue 20 item 6
    code, out, err = cli("report", "--model", "llama-8b", "--gpu", "mi300x", "--ctx", "8k")
    assert code == 0, err
    summary = out[out.index("## Summary"):out.index("## Comparison")]
    assert "**Price caveat:** the typical price of mi300x ($2.00/GPU-hour) is assumed" in summary
    assert "--price mi300x=USD" in summary
    assert "Source tags: " in out and "[assumed] no published figure found" in out
    # a quoted price raises no caveat
    code, out, _ = cli("report", "--model", "llama-8b", "--gpu", "mi300x", "--ctx", "8k", "--price", "mi300x=2.5")
    assert code == 0 and "Price caveat" not in out


def test_summary_names_the_price_tier_it_used(cli):
    # hardware/h100-sxm.yaml: high tier $6.88/GPU-hour; the summary's $/hour is at the tier asked for
    code, out, _ = cli("report", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--price-tier", "high")
    line = next(x for x in out.splitlines() if x.startswith("**Recommended:**"))
    gpus = int(line.split("**Recommended:** ")[1].split("x ")[0])
    assert code == 0 and line.endswith("(high price).") and f"${gpus * 6.88:.2f}/hour" in line
    code, out, _ = cli("report", "--model", "llama-8b", "--gpu", "h100", "--ctx", "8k", "--price", "h100=2")
    assert "(your --price / --prices)." in out


def test_html_escapes_every_catalog_string(cli, tmp_path):
    """Issue 19 item 6: the HTML report is the markdown rendered by markdown-it-py with raw HTML off; a catalog
    string carrying markup (a source, a description) reaches the page as text."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    (tmp_path / "hardware").mkdir()
    text = (root / "hardware" / "h100-sxm.yaml").read_text()
    text = text.replace("name: h100-sxm", "name: evil-h100", 1)
    text = text.replace('typical: {usd_per_hour: 2.49, as_of: 2026-05-15, source: "',
                        'typical: {usd_per_hour: 2.49, as_of: 2026-05-15, source: "<script>alert(1)</script> **x** ', 1)
    assert "<script>" in text
    (tmp_path / "hardware" / "evil.yaml").write_text(text)
    code, out, err = cli("report", "--model", "llama-8b", "--gpu", "evil-h100", "--catalog", str(tmp_path),
                         "--format", "html")
    assert code == 0, err
    assert "<script" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<table>" in out and "<strong>Recommended:</strong>" in out


def test_a_training_report_needs_the_runs_size(cli):
    """report --train without --tokens had no days, GPU-hours or $ to print and crashed formatting a null; it
    now says what it needs (exit 2)."""
    code, _, err = cli("report", "--train", "--model", "llama-8b", "--gpu", "h100", "--max-gpus", "16")
    assert code == 2 and "--tokens" in err and "--gpu-hours" in err
