"""How far tpplan's end-to-end figures were from published runs: the shipped summary of `tpplan validate
--category e2e` (hardware/validation/e2e-summary.json, written with docs/accuracy.md by
``python -m tpplan.calibration.e2e``), quoted beside estimates so a reader sees the measured error, not only the
calibration band. Reported, never applied: no figure is scaled by it."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from tpplan.catalog.load import bundled_root

SUMMARY_FILE = Path("hardware") / "validation" / "e2e-summary.json"
METRICS = {"train": ("train_tokens_per_s_per_gpu",),
           "serve": ("output_tokens_per_s", "ttft_s", "tpot_s", "online_output_tokens_per_s")}
LABEL = {"train_tokens_per_s_per_gpu": "training tokens/s", "output_tokens_per_s": "max output tokens/s",
         "ttft_s": "TTFT", "tpot_s": "TPOT", "online_output_tokens_per_s": "online tokens/s"}


@lru_cache(maxsize=1)
def summary() -> dict[str, Any]:
    """The shipped summary ({} where the file is absent: a trimmed install)."""
    path = bundled_root() / SUMMARY_FILE
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def measured(kind: str) -> dict[str, Any]:
    """The `accuracy` block of a training (``kind`` train) or serving (serve) result: per metric the published runs
    replayed (n), the median, lowest and highest predicted / published ratio and the mean |error|, and where
    they come from."""
    s = summary()
    metrics = {m: s["metrics"][m] for m in METRICS[kind] if m in s.get("metrics", {}) and s["metrics"][m]["n"]}
    if not metrics:
        return {}
    return {"metrics": metrics, "source": s["source"]}


def sentence(block: dict[str, Any]) -> str | None:
    """One line for the table and markdown outputs."""
    if not block:
        return None
    parts = [f"{LABEL.get(k, k)} {v['median_ratio']:.2f}x median over {v['n']} runs ({v['min_ratio']:.2f}-"
             f"{v['max_ratio']:.2f}x)" for k, v in block["metrics"].items()]
    return ("Measured accuracy (tpplan validate --category e2e, docs/accuracy.md; reported, not applied): predicted / "
            "published " + ", ".join(parts) + "; tpplan's ranges are the calibration bands only.")
