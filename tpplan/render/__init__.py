"""Renderers: dicts from the library -> JSON, rich tables, markdown, CSV. No math here."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any


def clean(obj: Any) -> Any:
    """JSON-safe: non-finite floats become null (JSON has no Infinity/NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return clean(obj.item())
    return obj


def to_json(obj: Any) -> str:
    return json.dumps(clean(obj), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


_CONTROL = dict.fromkeys(range(32), " ") | {127: " "}


def printable(text: str) -> str:
    """Text with every control character (ANSI escapes, CR, LF, tabs) turned into a space: catalog strings
    printed to a terminal or a one-line format cannot move the cursor, recolour it or split a row."""
    return text.translate(_CONTROL)


_CONTROL_KEEP_LINES = {c: " " for c in range(32) if c != 10} | {127: " "}


def printable_lines(text: str) -> str:
    """``printable`` that keeps line breaks (multi-line terminal output)."""
    return text.translate(_CONTROL_KEEP_LINES)


def md_text(text: str) -> str:
    """One markdown line of prose: no control characters and no raw HTML (GitHub renders HTML in markdown)."""
    return printable(text).replace("<", "&lt;").replace(">", "&gt;")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                   align: Sequence[str] | None = None) -> str:
    """GitHub-flavoured markdown table; ``|`` in cells escaped."""
    def cell(x: Any) -> str:
        # one line, no control characters, no raw HTML (GitHub renders HTML in a table cell)
        text = printable(str(x)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text.replace("|", "\\|")

    align = align or ["l"] * len(headers)
    sep = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()


def band(value: float | None, lo_hi: Sequence[float | None] | None, fmt: Any) -> str:
    """``18.6 ms (15.1-22.4)``: the range shares the value's unit when all three have the same one
    (``0.98 s (850 ms-1.2 s)`` otherwise). A figure that does not exist (null, or infinite: an unstable rate's
    latency) is 'n/a' without a range."""
    if not lo_hi or value is None or not math.isfinite(value):
        return fmt(value)
    # an edge that does not exist: at a --rate, the deployment saturates at that edge of the calibration band
    v, lo, hi = (fmt(value), *(fmt(x) if x is not None and math.isfinite(x) else "unstable" for x in lo_hi[:2]))
    unit = v.rpartition(" ")[2] if " " in v else None
    if unit and all(x.rpartition(" ")[2] == unit and " " in x for x in (lo, hi)):
        lo, hi = lo.rpartition(" ")[0], hi.rpartition(" ")[0]
    return f"{v} ({lo}-{hi})"


def pool_command_label(role: str) -> str:
    """'the prefill pool', 'the decode pool with NVIDIA Dynamo': the words before a disaggregated pool's command."""
    return f"the {role.removeprefix('dynamo_')} pool" + (" with NVIDIA Dynamo" if role.startswith("dynamo_") else "")


def layout_label(lay: Mapping[str, Any]) -> str:
    """'TP8/PP2/EP4/DP2': a layout's parallel sizes above 1, tensor parallelism always (reports and pools)."""
    return "/".join([f"TP{lay['tp']}"] + [f"{k.upper()}{lay[k]}" for k in ("pp", "cp", "ep", "dp")
                                          if lay.get(k, 1) > 1])


def instance_nodes(lay: Mapping[str, Any]) -> int:
    """Nodes (hosts) one engine instance of a serving layout spans: its tp x pp x cp GPUs (its dp replicas are
    servers of their own)."""
    return -(-(lay["tp"] * lay["pp"] * lay["cp"]) // lay.get("gpus_per_node", lay["gpus"]))


def multi_node_note(nodes: int, engine: str) -> str:
    """How to launch a serve command whose one instance spans several nodes (hosts; a GB200 NVL72 'node' is a
    4-GPU compute tray), or '' for one node: the command alone starts one host's GPUs. [recalled] vLLM's
    multi-node serving runs the command on the head node of a Ray cluster over the hosts (its executor turns to
    Ray when the world size exceeds the local GPUs); SGLang runs it on every host with --nnodes, --node-rank and
    --dist-init-addr (server_args); trtllm-serve is launched under MPI (mpirun / trtllm-llmapi-launch)."""
    if nodes <= 1:
        return ""
    how = {"sglang": f"run it on each of the {nodes} hosts with --nnodes {nodes} --node-rank <0..{nodes - 1}> "
                     "--dist-init-addr <first host>:<port>",
           "trtllm": f"launch it under MPI across the {nodes} hosts (mpirun, or trtllm-llmapi-launch)"}.get(
        engine, f"run it on the head node of a Ray cluster over the {nodes} hosts (vLLM's multi-node serving)")
    return f"one instance spans {nodes} nodes: {how}"


def accuracy_lines(res: Mapping[str, Any]) -> list[str]:
    """The measured end-to-end accuracy a result carries (tpplan.catalog.accuracy), as one line (none without it):
    the tables, markdown and the report print the same sentence."""
    from tpplan.catalog.accuracy import sentence

    line = sentence(res.get("accuracy") or {})
    return [line] if line else []
