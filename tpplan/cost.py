"""Dollars: $/hour of a deployment, $ per 1M output tokens, GPU-hours and $ of a training run."""

from __future__ import annotations

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
