"""Dollars: $/hour of a deployment, $ per 1M output tokens, GPU-hours and $ of a training run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tpplan.catalog.spec import GpuSpec
from tpplan.units import HOURS_PER_MONTH

if TYPE_CHECKING:
    from tpplan import result_types as rt

FArray = npt.NDArray[np.float64]
TIERS = ("low", "typical", "high")


def override_for(gpu: GpuSpec, overrides: dict[str, float] | None) -> float | None:
    """The ``--price GPU=USD`` override naming this GPU (by name, then alias), or None."""
    if overrides:
        for key in (gpu.name, *gpu.aliases):
            if key in overrides:
                return overrides[key]
    return None


def price_per_gpu_hour(gpu: GpuSpec, tier: str = "typical", overrides: dict[str, float] | None = None) -> float:
    """$/GPU-hour: a ``--price GPU=USD`` override (by name or alias) replaces every tier; else the tier."""
    override = override_for(gpu, overrides)
    if override is not None:
        return override
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
    return np.asarray(usd_hour, dtype=np.float64) * HOURS_PER_MONTH * utilization


# The catalog's source tags (hardware/*.yaml and models/*.yaml mark each figure with one)
SOURCE_TAGS = {
    "V": "read in the source itself (official repo file, doc page, maintainer comment)",
    "V-copy": "read in an exact copy of an official artifact kept in another public repo",
    "S": "secondhand: quoted by third-party notes, blogs or price trackers; [S xn] = n independent copies agree",
    "D": "derived by arithmetic from [V]/[S]/[recalled] inputs",
    "recalled": "a vendor datasheet figure written from the developers' knowledge, not re-read against the document "
                "when added (no network): check it before money depends on it",
    "assumed": "no published figure found; a stated stand-in",
}


def source_legend(sources: list[str]) -> dict[str, str]:
    """The tags that occur in ``sources`` with their meaning, in SOURCE_TAGS order."""
    import re

    found = {m.group(1) for s in sources for m in re.finditer(r"\[(V-copy|V|S|D|recalled|assumed)\b[^\]]*\]", s)}
    return {k: v for k, v in SOURCE_TAGS.items() if k in found}




def rental_cost(gpu: GpuSpec, gpus: int, seconds: float, utilization: float = 1.0,
                overrides: dict[str, float] | None = None,
                sheet: list[dict[str, Any]] | None = None) -> rt.Rental:
    """What ``gpus`` GPUs cost for ``seconds`` of wall-clock time at each catalog price tier (or the
    ``--price`` override): billed GPU-hours = gpus x hours x utilization, where utilization is the fraction of
    the period the GPUs are rented (1.0 = held the whole period, as a reservation is billed whether used or
    not; below 1, on-demand capacity released when idle). total = billed GPU-hours x $/GPU-hour."""
    hours = seconds / 3600.0
    billed = gpus * hours * utilization
    override = override_for(gpu, overrides)
    quotes: list[tuple[str, float, str | None, str, bool]] = []  # tier, $/GPU-hour, as of, source, assumed
    if override is not None:
        quotes.append(("override", override, None, "--price on the command line", False))
    elif sheet:  # every row of the user's price sheet for this GPU (each tier, SKU or commitment)
        for r in sheet:
            label = " ".join(x for x in (r["tier"], r["commitment"], r["sku"]) if x)
            quotes.append((label, r["usd_per_gpu_hour"], r["as_of"], r["source"] + (
                f" ({r['price']:,.4g} {r['currency']})" if r["currency"] != "USD" else ""), False))
    else:
        for t in TIERS:
            p = getattr(gpu.prices, t)
            quotes.append((t, p.usd_per_hour, str(p.as_of), p.source, "[assumed]" in p.source))
    tiers: list[rt.CostTier] = [
        {"tier": tier, "usd_per_gpu_hour": usd, "as_of": as_of, "source": source, "assumed": assumed,
         "usd_per_hour": gpus * usd * utilization, "usd_per_month": gpus * usd * utilization * HOURS_PER_MONTH,
         "total_usd": billed * usd} for tier, usd, as_of, source, assumed in quotes]
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


PRICE_COLUMNS = ("gpu", "usd_per_gpu_hour", "price", "tier", "sku", "commitment", "currency", "fx_usd_per_unit",
                 "as_of", "source")


def load_price_sheet(path: str) -> list[dict[str, Any]]:
    """A company price sheet (``--prices FILE``): CSV with a header row, or YAML (a list of mappings, or a
    mapping with ``prices:``), one row per GPU and tier. Columns: gpu and usd_per_gpu_hour (or ``price`` in
    ``currency`` with ``fx_usd_per_unit`` = USD per unit of it) required; tier (default ``typical``), sku,
    commitment (on-demand, reserved-1y, spot, ...), as_of, source optional. Returns rows with the price in
    USD per GPU-hour and the 1-based line each came from."""
    import csv
    import io
    import math
    from pathlib import Path

    from tpplan.errors import TpplanError
    from tpplan.yamlio import load_documents, read_text

    text = read_text(Path(path), path)
    raw: list[tuple[int, dict[str, Any]]] = []
    if path.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise TpplanError("the price sheet is empty; expected a header row", file=path, line=1,
                              hint=f"Columns: {', '.join(PRICE_COLUMNS)} (gpu and usd_per_gpu_hour required).")
        for row in reader:
            if None in row:
                raise TpplanError("a row has more cells than the header", file=path, line=reader.line_num)
            raw.append((reader.line_num, {str(k).strip().lower(): (v or "").strip() for k, v in row.items()}))
    else:
        docs = load_documents(text, path)
        data = docs[0].data if docs else None
        base: tuple[str, ...]
        if isinstance(data, dict) and isinstance(data.get("prices"), list):
            items, base = data["prices"], ("prices",)
        elif isinstance(data, list):
            items, base = data, ()
        else:
            raise TpplanError("a YAML price sheet is a list of rows (or a mapping with a 'prices:' list)",
                              file=path, line=1, hint="e.g. - {gpu: h100-sxm, usd_per_gpu_hour: 2.10, tier: "
                                                      "typical, commitment: reserved-1y, source: contract 2026}")
        for i, item in enumerate(items):
            line = docs[0].where((*base, i))[0]
            if not isinstance(item, dict):
                raise TpplanError("each price row must be a mapping (gpu:, usd_per_gpu_hour:, ...)", file=path,
                                  line=line)
            raw.append((line, {str(k).strip().lower(): v for k, v in item.items()}))
    if not raw:
        raise TpplanError("the price sheet has no rows", file=path)
    rows = []
    for line, r in raw:
        unknown = set(r) - set(PRICE_COLUMNS)
        if unknown:
            raise TpplanError(f"unknown column {sorted(unknown)[0]!r}; valid: {', '.join(PRICE_COLUMNS)}",
                              file=path, line=line)
        if not str(r.get("gpu") or "").strip():
            raise TpplanError("a row has no gpu", file=path, line=line)
        currency = str(r.get("currency") or "USD").strip().upper()
        amount = r.get("usd_per_gpu_hour") if currency == "USD" else r.get("price", r.get("usd_per_gpu_hour"))
        if currency == "USD" and amount in (None, ""):
            amount = r.get("price")
        try:
            value = float(str(amount).replace(",", "").lstrip("$"))
        except ValueError:
            raise TpplanError(f"price {amount!r} is not a number", file=path, line=line) from None
        fx = 1.0
        if currency != "USD":
            try:
                fx = float(str(r.get("fx_usd_per_unit")))
            except ValueError:
                raise TpplanError(f"a {currency} price needs fx_usd_per_unit (USD per {currency}) to convert it",
                                  file=path, line=line) from None
            if not (math.isfinite(fx) and fx > 0):
                raise TpplanError(f"fx_usd_per_unit must be a positive number; got {fx}", file=path, line=line)
        usd = value * fx
        if not (math.isfinite(usd) and 0 < usd <= 100_000):
            raise TpplanError(f"${usd:,.4g} per GPU-hour is not a plausible price (0 < price <= $100,000)",
                              file=path, line=line)
        rows.append({"gpu": str(r["gpu"]).strip().lower(), "usd_per_gpu_hour": usd,
                     "tier": str(r.get("tier") or "typical").strip().lower(),
                     "sku": str(r.get("sku") or "") or None, "commitment": str(r.get("commitment") or "") or None,
                     "currency": currency, "price": value,
                     "as_of": str(r.get("as_of") or "") or None,
                     "source": str(r.get("source") or "") or f"price sheet {path}", "line": line})
    return rows
