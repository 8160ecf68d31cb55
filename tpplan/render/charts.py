"""Report charts with matplotlib (the optional ``plot`` extra): cost vs latency with the Pareto front, and a
stacked memory bar per GPU type. Deterministic output: Agg backend, fixed SVG hash salt, no date metadata."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any, Literal

from tpplan.errors import TpplanError

if TYPE_CHECKING:
    from tpplan.result_types import ReportResult, ServeReportResult, TrainReportResult

INSTALL_HINT = "Install the plot extra: pip install 'tpplan[plot]' (matplotlib)."
GIB = 2**30
# matplotlib's tab10 plus two dark tones, with a marker cycle so 12 GPU types stay apart in print
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf", "#393b79", "#637939")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")


MEMORY_COLORS = {"weights": "#1f6feb", "kv_cache": "#8250df", "gradients": "#bf3989", "optimizer": "#9a6700",
                 "activations": "#fb8500", "overhead": "#57606a", "free": "#d0d7de"}


def available() -> bool:
    """matplotlib is installed (found, not imported: importing it builds its font cache)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _private_config_dir() -> None:
    """matplotlib writes a font cache and config under ~/.cache and ~/.config on first import; tpplan gives it
    a private folder in the temp directory instead (kept between runs, so the cache is built once), unless the
    user set MPLCONFIGDIR. The folder must be ours and not a link; otherwise a fresh one is made."""
    import os
    import stat
    import tempfile

    if os.environ.get("MPLCONFIGDIR"):
        return
    path = os.path.join(tempfile.gettempdir(), f"tpplan-matplotlib-{os.getuid() if hasattr(os, 'getuid') else 0}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        path = tempfile.mkdtemp(prefix="tpplan-matplotlib-")
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        path = tempfile.mkdtemp(prefix="tpplan-matplotlib-")
    os.environ["MPLCONFIGDIR"] = path


def _plt() -> Any:
    _private_config_dir()
    try:
        import matplotlib
    except ImportError:
        raise TpplanError("--plot needs matplotlib, which is not installed.", hint=INSTALL_HINT) from None
    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update({"svg.hashsalt": "tpplan", "svg.fonttype": "path", "font.size": 9,
                                "font.family": "DejaVu Sans", "axes.spines.top": False,
                                "axes.spines.right": False})
    import matplotlib.pyplot as plt

    return plt


def _plain_log_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _cost_latency(ax: Any, res: ServeReportResult) -> None:
    pts_all = [*res["scatter"], *res["pareto"]]
    gpus = sorted({p["gpu"] for p in pts_all})
    for i, g in enumerate(gpus):
        pts = [p for p in pts_all if p["gpu"] == g]
        ax.scatter([p["request_latency_s"] for p in pts], [p["usd_per_million_tokens"] for p in pts], s=16,
                   color=COLORS[i % len(COLORS)], marker=MARKERS[i % len(MARKERS)], alpha=0.8, label=g,
                   linewidths=0)
    front = sorted(res["pareto"], key=lambda p: p["request_latency_s"])
    if front:
        ax.plot([p["request_latency_s"] for p in front], [p["usd_per_million_tokens"] for p in front],
                color="#1b1f24", lw=1.0, ls="--", label="Pareto front (cost vs latency)", zorder=1)
    win = res.get("winner")
    if win:
        ax.scatter([win["serve"]["request_latency_s"]], [win["cost"]["usd_per_million_tokens"]], marker="*", s=160,
                   color="#ffd33d", edgecolors="#1b1f24", linewidths=0.8, zorder=5, label="recommended")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_axis(ax.xaxis)
    _plain_log_axis(ax.yaxis)
    ax.set_xlabel("request latency (s)")
    ax.set_ylabel("$ per 1M output tokens")
    ax.set_title("Cost vs latency: the best layouts on each GPU type and the Pareto front")
    ax.grid(True, which="major", color="#d0d7de", lw=0.5)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _memory(ax: Any, res: ServeReportResult | TrainReportResult) -> None:
    rows = res["comparison"]
    train = res["kind"] == "train"
    parts: list[tuple[Literal["weights", "gradients", "optimizer", "kv_cache", "activations", "overhead", "free"],
                      str]] = ([("weights", "weights"), ("gradients", "gradients"), ("optimizer", "optimizer state")]
                               if train else [("weights", "weights"), ("kv_cache", "KV cache")])
    parts += [("activations", "activations"), ("overhead", "runtime overhead"), ("free", "free")]
    labels = [f"{c['layout']['gpu']}\n{c['layout']['gpus']} GPUs" for c in rows]
    left = [0.0] * len(rows)
    for key, name in parts:
        color = MEMORY_COLORS[key]
        vals = [c["memory_per_gpu_bytes"].get(key, 0.0) / GIB for c in rows]
        ax.barh(labels, vals, left=left, color=color, label=name, height=0.6)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("GiB per GPU")
    ax.set_title("Where the bytes go (best layout per GPU type)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="x", color="#d0d7de", lw=0.5)


def figures(res: ReportResult) -> dict[str, Any]:
    """Named matplotlib figures for a report dict (serving: both charts; training: the memory chart)."""
    plt = _plt()
    out: dict[str, Any] = {}
    if "runs" in res:  # a run of known size: nothing to chart
        return out
    if res["kind"] == "serve" and res["scatter"]:
        fig, ax = plt.subplots(figsize=(8.5, 4.4))
        _cost_latency(ax, res)
        fig.tight_layout()
        out["cost_latency"] = fig
    if res["comparison"]:
        fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(res["comparison"]) + 1.4))
        _memory(ax, res)
        fig.tight_layout()
        out["memory"] = fig
    return out


def svg_strings(res: ReportResult) -> dict[str, str]:
    """Figures as inline SVG (no XML prolog) for the HTML report."""
    plt = _plt()
    out = {}
    for name, fig in figures(res).items():
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "tpplan"})
        plt.close(fig)
        text = buf.getvalue()
        text = re.sub(r"<metadata>.*?</metadata>\s*", "", text[text.index("<svg"):], flags=re.S)
        out[name] = text
    return out


def save(res: ReportResult, path: str) -> bytes:
    """Both charts in one file (PNG or SVG by suffix); returns the bytes (the caller writes atomically)."""
    plt = _plt()
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in ("png", "svg"):
        raise TpplanError(f"--plot must name a .png or .svg file; got {path!r}")
    n = 0 if "runs" in res else len(res["comparison"])
    if "runs" in res or not n:
        raise TpplanError("nothing to plot: no GPU type has a feasible layout")
    serve = res if res["kind"] == "serve" and res["scatter"] else None
    fig, axes = plt.subplots(2 if serve else 1, 1, figsize=(9, (4.4 if serve else 0) + 0.55 * n + 1.6),
                             squeeze=False)
    if serve:
        _cost_latency(axes[0][0], serve)
    _memory(axes[-1][0], res)
    fig.tight_layout()
    buf = io.BytesIO()
    meta = {"Date": None, "Creator": "tpplan"} if suffix == "svg" else {"Software": "tpplan"}
    fig.savefig(buf, format=suffix, metadata=meta, dpi=150)
    plt.close(fig)
    return buf.getvalue()
