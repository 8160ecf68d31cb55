"""Dollars: $/hour of a deployment, $ per 1M output tokens, GPU-hours and $ of a training run."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tpplan.spec import GpuSpec

FArray = npt.NDArray[np.float64]
TIERS = ("low", "typical", "high")


def price_per_gpu_hour(gpu: GpuSpec, tier: str = "typical", overrides: dict[str, float] | None = None) -> float:
    """$/GPU-hour: a ``--price GPU=USD`` override (by name or alias) replaces every tier; else the tier."""
    if overrides:
        for key in (gpu.name, *gpu.aliases):
            if key in overrides:
                return overrides[key]
    if tier not in TIERS:
        raise ValueError(f"unknown price tier {tier!r}; valid: {', '.join(TIERS)}")
    price: float = getattr(gpu.prices, tier).usd_per_hour
    return price


def usd_per_hour(gpus: npt.ArrayLike, price: float) -> FArray:
    return np.asarray(gpus, dtype=np.float64) * price


def usd_per_million_tokens(usd_hour: npt.ArrayLike, tokens_per_s: npt.ArrayLike) -> FArray:
    """$ per 1M output tokens at the planned throughput: usd_per_hour / (tokens/s x 3600) x 1e6."""
    tps = np.asarray(tokens_per_s, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tps > 0, np.asarray(usd_hour, dtype=np.float64) / (tps * 3600.0) * 1e6, np.inf)


def gpu_hours(gpus: npt.ArrayLike, seconds: npt.ArrayLike) -> FArray:
    """GPU-hours = gpus x wall-clock hours (= gpus x days x 24)."""
    return np.asarray(gpus, dtype=np.float64) * np.asarray(seconds, dtype=np.float64) / 3600.0


def run_cost(gpu_hours_total: npt.ArrayLike, price: float) -> FArray:
    """$ of a run; e.g. DeepSeek-V3's 2,788K H800-hours at $2 = $5.576M (DeepSeek-V3 report)."""
    return np.asarray(gpu_hours_total, dtype=np.float64) * price


def monthly_cost(usd_hour: npt.ArrayLike, utilization: float = 1.0) -> FArray:
    """$ per month of 730 hours (8,760 / 12) at the given utilisation."""
    return np.asarray(usd_hour, dtype=np.float64) * 730.0 * utilization


# The catalog's source tags (../shared/reference/published-figures.md, "Legend and conventions")
SOURCE_TAGS = {
    "V": "read in the source itself (official repo file, doc page, maintainer comment)",
    "V-copy": "read in an exact copy of an official artifact kept in another public repo",
    "S": "secondhand: quoted by third-party notes, blogs or price trackers; [S xn] = n independent copies agree",
    "D": "derived by arithmetic from [V]/[S] inputs",
    "assumed": "no published figure found; a stated stand-in",
}


def source_legend(sources: list[str]) -> dict[str, str]:
    """The tags that occur in ``sources`` with their meaning, in SOURCE_TAGS order."""
    import re

    found = {m.group(1) for s in sources for m in re.finditer(r"\[(V-copy|V|S|D|assumed)\b[^\]]*\]", s)}
    return {k: v for k, v in SOURCE_TAGS.items() if k in found}


HOURS_PER_MONTH = 730.0  # 8,760 h / 12: the convention of AWS / GCP / Azure monthly estimates


def rental_cost(gpu: GpuSpec, gpus: int, seconds: float, utilization: float = 1.0,
                overrides: dict[str, float] | None = None) -> dict[str, Any]:
    """What ``gpus`` GPUs cost for ``seconds`` of wall-clock time at each catalog price tier (or the
    ``--price`` override): billed GPU-hours = gpus x hours x utilization, where utilization is the fraction of
    the period the GPUs are rented (1.0 = held the whole period, as a reservation is billed whether used or
    not; below 1, on-demand capacity released when idle). total = billed GPU-hours x $/GPU-hour."""
    hours = seconds / 3600.0
    billed = gpus * hours * utilization
    override = None
    for key in (gpu.name, *gpu.aliases):
        if overrides and key in overrides:
            override = overrides[key]
    tiers: list[dict[str, Any]] = []
    if override is not None:
        tiers.append({"tier": "override", "usd_per_gpu_hour": override, "as_of": None,
                      "source": "--price on the command line", "assumed": False})
    else:
        for t in TIERS:
            p = getattr(gpu.prices, t)
            tiers.append({"tier": t, "usd_per_gpu_hour": p.usd_per_hour, "as_of": str(p.as_of),
                          "source": p.source, "assumed": "[assumed]" in p.source})
    for row in tiers:
        row["usd_per_hour"] = gpus * row["usd_per_gpu_hour"] * utilization
        row["usd_per_month"] = row["usd_per_hour"] * HOURS_PER_MONTH
        row["total_usd"] = billed * row["usd_per_gpu_hour"]
    per_node = gpu.node.gpus_per_node
    nodes = -(-gpus // per_node)
    notes = []
    if gpus % per_node:
        notes.append(f"{gpu.name} is sold by nodes of {per_node}; {gpus} GPUs is {nodes} nodes "
                     f"({nodes * per_node} GPUs) where a provider rents whole nodes")
    if any(r["assumed"] for r in tiers):
        notes.append("a price marked [assumed] has no market quote of its own (see its source); "
                     "give yours with --price GPU=USD")
    return {"gpu": gpu.name, "gpus": gpus, "nodes": nodes, "gpus_per_node": per_node, "period_s": seconds,
            "period_hours": hours, "utilization": utilization, "billed_gpu_hours": billed,
            "tiers": tiers, "source_tags": source_legend([r["source"] for r in tiers]), "notes": notes}
