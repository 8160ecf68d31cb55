"""Microbenchmark CSVs of the catalog (hardware/calibration/*.csv): one reader for the engine (FlashAttention
rates), `tpplan validate` and `tpplan calibrate`. Columns: gpu, benchmark, dtype, m, n, k, size_bytes, ranks,
value, unit, and optional note, system, source."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tpplan.errors import TpplanError
from tpplan.yamlio import read_text

CSV_COLUMNS = ("gpu", "benchmark", "dtype", "m", "n", "k", "size_bytes", "ranks", "value", "unit")


def _unit_scale(unit: str) -> float:
    u = unit.strip().lower()
    table = {"tflop/s": 1e12, "gflop/s": 1e9, "pflop/s": 1e15, "tb/s": 1e12, "gb/s": 1e9, "mb/s": 1e6,
             "s": 1.0, "ms": 1e-3, "us": 1e-6}
    if u not in table:
        raise ValueError(f"unknown unit {unit!r}; use one of {', '.join(table)}")
    return table[u]


def read_microbench(path: Path, shown: str | None = None) -> list[dict[str, str]]:
    """Rows of a microbenchmark CSV (columns: gpu, benchmark, dtype, m, n, k, size_bytes, ranks, value, unit,
    and optional note, system, source). Missing required columns are an input error naming them."""
    shown = shown or str(path)
    text = read_text(path, shown)
    # '#' lines before the header carry the file's provenance
    lines = text.splitlines()
    skip = next((k for k, ln in enumerate(lines) if not ln.startswith("#")), len(lines))
    reader = csv.DictReader(lines[skip:])
    missing = [c for c in ("gpu", "benchmark", "value", "unit") if c not in (reader.fieldnames or [])]
    if missing:
        raise TpplanError(f"CSV lacks the column(s) {', '.join(missing)}; expected the header "
                          f"{','.join(CSV_COLUMNS)} (see docs/calibration.md)", file=shown, line=1)
    rows = []
    for i, r in enumerate(reader, 2 + skip):
        short = [c for c in ("gpu", "benchmark", "value", "unit") if r.get(c) in (None, "")]
        if short:
            raise TpplanError(f"row lacks {', '.join(short)}; expected the columns {','.join(CSV_COLUMNS)}",
                              file=shown, line=i)
        try:
            v = float(r["value"])
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"value must be a positive number; got {r['value']!r}")
            _unit_scale(r["unit"])
            for col in ("m", "n", "k", "size_bytes", "ranks"):
                x = (r.get(col) or "").strip()
                if x and not (x.replace(".", "", 1).isdigit() and float(x) == int(float(x)) and float(x) < 2**62):
                    raise ValueError(f"{col} must be a whole non-negative number; got {x!r}")
        except (TypeError, ValueError) as exc:
            raise TpplanError(f"bad row: {exc}", file=shown, line=i) from None
        r["_line"] = str(i)
        rows.append(r)
    return rows
