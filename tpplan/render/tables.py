"""Human renderings (rich tables, markdown, CSV) of the library's result dicts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tpplan.render import (
    accuracy_lines,
    band,
    csv_text,
    instance_nodes,
    layout_label,
    markdown_table,
    md_text,
    multi_node_note,
    pool_command_label,
)
from tpplan.units import format_bytes, format_count, format_seconds, format_sig, format_usd

if TYPE_CHECKING:
    from tpplan.result_types import (
        Band,
        CollectiveResult,
        CostResult,
        DisaggPair,
        DisaggPool,
        EstimateResult,
        Features,
        RecommendResult,
        Serve,
        ServeEstimate,
        TrainEstimate,
        TrainEstimateResult,
        TrainRecommendResult,
        TrainSettings,
        ValidateResult,
    )

SHORT = {"TP crosses nodes": "TP crosses nodes", "pipeline stages span nodes": "PP spans nodes"}
MEM_KEYS: tuple[Literal["weights", "kv_cache", "activations", "gradients", "optimizer", "overhead"], ...] = (
    "weights", "kv_cache", "activations", "gradients", "optimizer", "overhead")


def plain_cells(*values: Any) -> list[Any]:
    """Table cells as rich Text: a value is shown as is, never read as markup or emoji (``[b]``, ``:x:``),
    and rich skips parsing each cell."""
    from rich.text import Text

    from tpplan.render import printable

    return [Text(printable(str(v))) for v in values]


def _widths(headers: list[str], rows: list[list[Any]]) -> list[int]:
    from rich.cells import cell_len

    return [max(cell_len(str(x)) for x in [h, *(r[k] for r in rows)]) for k, h in enumerate(headers)]


def _fits(console: Any, headers: list[str], widths: list[int], folds: str | None = None) -> bool:
    """Whether every column but ``folds`` fits unwrapped (two spaces between columns, 12 for ``folds``)."""
    return sum(w for h, w in zip(headers, widths, strict=True) if h != folds) + 2 * len(headers) + (
        12 if folds else 0) <= console.width


def _list_columns(t: Any, console: Any, headers: list[str], rows: list[list[Any]], right: set[str] | None = None,
                  folds: str | None = None, widths: list[int] | None = None) -> None:
    """Columns of a ranked list. When the figures fit the terminal (two spaces between columns, 12 left for
    the ``folds`` column) they never wrap and get their exact width, so rich skips measuring every cell; a
    narrower terminal wraps cells rather than cutting them."""
    widths = widths or _widths(headers, rows)
    fits = _fits(console, headers, widths, folds)
    for k, h in enumerate(headers):
        fixed = fits and h != folds
        t.add_column(h, justify="right" if h in (right or ()) else "left", overflow="fold", no_wrap=fixed,
                     width=widths[k] if fixed else None)


def left_out_line(width: int, cols: list[str], where: str) -> str:
    """The line under a table that a narrow terminal made leave ``cols`` out, and ``where`` they show."""
    return f"Columns left out to fit {width} columns: {', '.join(cols)}; {where}."


CATALOG_WRAP_MIN = 12
"""Least width a wrapping column of a listing keeps (narrower, its words break letter by letter)."""


def catalog_table(console: Any, title: str, headers: list[str], rows: list[list[Any]], whole: set[str],
                  drop: list[str], where: str, right: set[str] | None = None, title_justify: str = "center") -> None:
    """A listing (tpplan gpus, models, cost) that fits the terminal: the ``whole`` columns (names, figures) at
    least as wide as their widest cell and never wrapped, so a narrow terminal wraps the descriptive ones rather
    than cutting a GPU or model name ("a100-pcie-8…") or splitting a number; where even that does not fit,
    the ``drop`` columns are left out in that order and named under the table, with ``where`` they show."""
    from rich.table import Table

    widths = _widths(headers, rows)
    shown = list(range(len(headers)))

    def need() -> int:
        return sum(widths[k] if headers[k] in whole else min(widths[k], CATALOG_WRAP_MIN) for k in shown) + \
            3 * len(shown) + 1

    left_out = []
    for name in drop:
        if need() <= console.width:
            break
        shown.remove(headers.index(name))
        left_out.append(name)
    t = Table(title=title, title_justify=title_justify)  # type: ignore[arg-type]
    for k in shown:
        keep = headers[k] in whole
        t.add_column(headers[k], justify="right" if headers[k] in (right or ()) else "left", no_wrap=keep,
                     min_width=widths[k] if keep else None, overflow="fold")
    for r in rows:
        t.add_row(*[r[k] for k in shown])
    console.print(t)
    if left_out:
        console.print(left_out_line(console.width, left_out, where), highlight=False, markup=False)


def _lay(c: ServeEstimate | TrainEstimate) -> str:
    lay = c["layout"]
    return f"{lay['tp']}/{lay['pp']}/{lay['dp']}/{lay['cp']}/{lay['ep']}"


def _note(c: ServeEstimate) -> str:
    notes = []
    if c.get("too_close_to_call"):
        notes.append("too close to call")
    for w in c.get("warnings", []):
        notes.append(SHORT.get(w.split(":")[0].split(" (")[0], w.split(":")[0]))
    s = c.get("serve", {})
    if s.get("decode_bound") == "memory" and c["memory_per_gpu_bytes"]["kv_cache"] > c["memory_per_gpu_bytes"]["weights"]:
        notes.append("KV-bound")
    elif s.get("decode_bound") == "compute":
        notes.append("compute-bound decode")
    if c.get("comm", {}).get("comm_fraction", 0) > 0.3:
        notes.append(f"comm {c['comm']['comm_fraction']:.0%}")
    return "; ".join(notes)


def _bands(c: ServeEstimate, key: Literal["ttft_s", "tpot_s"]) -> Band:
    b = c.get("bands")
    return b["serve"][key] if b else None


def recommend_rows(res: RecommendResult, bands: bool = True) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the recommend list; ``bands=False`` shows TTFT and TPOT without their ranges. Every
    row is at its operating point under load (``serve.load``); the ranked metric has its own column."""
    latency = res["inputs"].get("objective") == "latency"
    headers = ["rank", "GPU", "GPUs", "TP/PP/DP/CP/EP", "mem/GPU", "conc", "req/s", "TTFT", "TPOT",
               *(["latency"] if latency else []), "tok/s", "tok/s/GPU", "$/hour", "$/1M tok", "note"]
    rows = []
    for i, c in enumerate(res["candidates"], 1):
        lay, s, co = c["layout"], c["serve"], c["cost"]
        ld = s["load"]
        rows.append([
            i, lay["gpu"], f"{lay['gpus']} ({lay['nodes']})", _lay(c),
            format_bytes(c["memory_per_gpu_bytes"]["total"]), format_sig(ld['concurrency']), format_sig(ld['rate_rps']),
            band(s["ttft_s"], _bands(c, "ttft_s") if bands else None, format_seconds),
            band(s["tpot_s"], _bands(c, "tpot_s") if bands else None, format_seconds),
            *([format_seconds(s["request_latency_s"])] if latency else []),
            f"{s['throughput_tokens_per_s']:,.0f}", f"{s['throughput_tokens_per_s_per_gpu']:,.1f}",
            f"{co['usd_per_hour']:.2f}", format_sig(co['usd_per_million_tokens']), _note(c)])
    return headers, rows


RECOMMEND_CSV = ["rank", "gpu", "gpus", "nodes", "tp", "pp", "dp", "cp", "ep", "mem_total_bytes", "concurrency",
                 "rate_rps", "ttft_s", "tpot_s", "request_latency_s", "output_tokens_per_s",
                 "output_tokens_per_s_per_gpu", "usd_per_hour", "usd_per_million_tokens", "load_mode", "notes",
                 "deployment", "prefill_pool", "decode_pool", "kv_transfer_bytes_per_request"]
"""The last four columns were added with --disagg's rows: deployment is 'aggregated' (one row per candidate) or
'disaggregated' (one row per prefill/decode pair; its layout columns empty, each pool as 'gpu=G,tp=T,pp=P,
replicas=R', gpus the pair's)."""


def _pool(p: DisaggPool) -> str:
    lay = p["layout"]
    return (f"gpu={lay['gpu']},tp={lay['tp']},pp={lay['pp']}" + (f",ep={lay['ep']}" if lay.get("ep", 1) > 1 else "")
            + f",replicas={p['replicas']}")


def recommend_csv(res: RecommendResult) -> str:
    """The recommend list in base units (bytes, seconds, tokens/s, USD), one row per candidate; with --disagg
    also one row per disaggregated pair."""
    rows = []
    for i, c in enumerate(res["candidates"], 1):
        lay, s, co = c["layout"], c["serve"], c["cost"]
        ld = s["load"]
        rows.append([i, lay["gpu"], lay["gpus"], lay["nodes"], lay["tp"], lay["pp"], lay["dp"], lay["cp"], lay["ep"],
                     c["memory_per_gpu_bytes"]["total"], ld["concurrency"], ld["rate_rps"], s["ttft_s"], s["tpot_s"],
                     s["request_latency_s"], s["throughput_tokens_per_s"], s["throughput_tokens_per_s_per_gpu"],
                     co["usd_per_hour"], co["usd_per_million_tokens"], ld["mode"], _note(c), "aggregated", "", "",
                     ""])
    d = res.get("disaggregated")
    rate = res["inputs"].get("rate_rps")
    for i, x in enumerate(d["pairs"] if d else [], 1):
        gpus_of = {x["prefill"]["layout"]["gpu"], x["decode"]["layout"]["gpu"]}
        rows.append([i, "+".join(sorted(gpus_of)), x["gpus"], "", "", "", "", "", "", "", "", rate, x["ttft_s"],
                     x["tpot_s"], x["request_latency_s"], x["throughput_tokens_per_s"],
                     x["throughput_tokens_per_s"] / x["gpus"], x["usd_per_hour"], x["usd_per_million_tokens"], "rate",
                     x["ratio"], "disaggregated", _pool(x["prefill"]), _pool(x["decode"]),
                     x["kv_transfer"]["bytes_per_request"]])
    return csv_text(RECOMMEND_CSV, rows)


def load_caption(res: RecommendResult) -> str:
    """Which operating point the rows are at (recommend's caption and footer)."""
    inp = res["inputs"]
    pct = f"p{inp['slo_percentile']}" if inp.get("slo_percentile") else "mean"
    cons = inp.get("constraints") or {}
    slos = cons.get("ttft_slo_s") is not None or cons.get("tpot_slo_s") is not None
    if inp.get("rate_rps") is not None:
        return (f"each layout at {inp['rate_rps']:g} requests/s, over as many replicas as that needs"
                + (f" (SLOs at the {pct})" if slos else ""))
    if inp.get("objective") == "latency":
        return f"each layout at low load: {inp['concurrency']} client(s) per replica, one request after another"
    return (f"each layout at its maximum sustainable rate: within {inp.get('max_utilization', 0.85):.0%} of "
            f"saturation" + (f" and the SLOs (at the {pct})" if slos else " (no SLO given)"))


DROP_ORDER = ("note", "conc", "req/s", "tok/s", "mem/GPU", "$/hour", "tok/s/GPU", "latency", "GPUs", "$/1M tok")
"""recommend's columns in the order a narrow terminal leaves them out (the objective's own column stays):
rank, GPU, layout, TTFT and TPOT always show."""


def _drop_to_fit(console: Any, headers: list[str], rows: list[list[Any]], widths: list[int], order: tuple[str, ...],
                 keep: str) -> tuple[list[str], list[list[Any]], list[int], list[str]]:
    """The columns of a ranked list less those of ``order`` (never ``keep``, the objective's own) that must go,
    in that order, for every figure to fit the terminal unwrapped; and the names of those left out."""
    dropped: list[str] = []
    for name in order:
        if _fits(console, headers, widths) or not rows:
            break
        if name in headers and name != keep:
            k = headers.index(name)
            dropped.append(name)
            headers, widths = headers[:k] + headers[k + 1:], widths[:k] + widths[k + 1:]
            rows = [r[:k] + r[k + 1:] for r in rows]
    return headers, rows, widths, dropped


TRAIN_DROP_ORDER = ("GPU-hours", "mem/GPU", "step", "mb", "ZeRO", "recompute", "v", "days", "MFU", "$ (typical)")
"""recommend --train's columns in the order a narrow terminal leaves them out (the objective's own column stays):
rank, GPU, GPUs and layout always show."""


def render_recommend(console: Any, res: RecommendResult, fmt: str, out: Callable[[str], None]) -> None:
    """recommend's result in ``fmt`` (the format registry, tpplan/render/formats.py)."""
    from tpplan.render import formats

    formats.emit("recommend", fmt, res, lambda: console, out)


def print_recommend(console: Any, res: RecommendResult) -> None:
    """recommend's table for a terminal: as many columns as fit (DROP_ORDER), then the footer."""
    headers, rows = recommend_rows(res)
    from rich import box
    from rich.table import Table

    inp = res["inputs"]
    title = (f"{inp['model']} at ctx {inp['ctx_tokens']:,} tokens, objective: {inp['objective']}"
             + (" (Pareto front: $/1M tokens vs request latency)" if inp.get("pareto") else "")
             + f"; {load_caption(res)}")
    t = Table(title=plain_cells(title)[0], show_lines=False, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    widths = _widths(headers, rows)
    compact = not _fits(console, headers, widths, "note")
    if compact:  # a narrow terminal: the ranges go before any figure has to wrap
        headers, rows = recommend_rows(res, bands=False)
        widths = _widths(headers, rows)
    # still too wide (an 80-column terminal): the least essential columns go, never a split figure
    keep = {"latency": "latency", "throughput": "tok/s/GPU", "cost": "$/1M tok"}.get(inp.get("objective", ""), "")
    headers, rows, widths, dropped = _drop_to_fit(console, headers, rows, widths, DROP_ORDER, keep)
    _list_columns(t, console, headers, rows, right={"rank", "mem/GPU", "conc", "req/s", "latency", "tok/s",
                                                    "tok/s/GPU", "$/hour", "$/1M tok"}, folds="note", widths=widths)
    for r in rows:
        t.add_row(*plain_cells(*r))
    if rows:  # nothing feasible: the footer says what to relax
        console.print(t)
    footer = _footer(res)
    if dropped:
        footer.insert(0, left_out_line(console.width, dropped, "--wide, --format markdown or json show them"))
    if compact and rows:
        footer.insert(0, f"TTFT and TPOT ranges are left out to fit {console.width} columns; --format markdown "
                         "or json shows them.")
    for line in footer:  # long lines wrap in the terminal, not at a guessed width
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def disagg_lines(res: RecommendResult) -> list[str]:
    """recommend --disagg: the cheapest prefill/decode pools, against the cheapest aggregated deployment."""
    d = res.get("disaggregated")
    return [] if d is None else pair_lines(d["pairs"], d["message"], d["notes"])


def pair_lines(pairs: Sequence[DisaggPair], message: str, notes: list[str]) -> list[str]:
    """Disaggregated prefill/decode pairs in words (recommend --disagg, estimate --disagg), then the message and
    notes, and the first pair's serve commands."""

    def pool(p: DisaggPool) -> str:
        lay = p["layout"]
        return (f"{p['replicas']} x {layout_label(lay)} on {lay['gpu']} ({p['gpus']} GPUs, {format_sig(p['rate_rps_per_replica'])} of "
                f"{format_sig(p['sustainable_rate_rps_per_replica'])} sustainable requests/s each)")

    lines = []
    for i, x in enumerate(pairs, 1):
        lines.append(f"Disaggregated #{i} ({x['ratio']}): prefill {pool(x['prefill'])}; decode {pool(x['decode'])}; "
                     f"KV hand-off {format_bytes(x['kv_transfer']['bytes_per_request'])} per request in "
                     f"{format_seconds(x['kv_transfer']['seconds'])}; TTFT {format_seconds(x['ttft_s'])}, TPOT "
                     f"{format_seconds(x['tpot_s'])}; {x['gpus']} GPUs, {format_usd(x['usd_per_hour'])}/hour, "
                     f"{format_usd(x['usd_per_million_tokens'])} per 1M output tokens")
    lines.append(message)
    lines += notes
    if pairs and "commands" in pairs[0]:
        for role, cmd in pairs[0]["commands"].items():
            lines.append(f"Serve {pool_command_label(role)}: {cmd}")
    return lines


def _footer(res: RecommendResult) -> list[str]:
    inp = res["inputs"]
    lines = [f"Inputs: model {inp['model']}, ctx {inp['ctx_tokens']:,} tokens (prompt {inp['input_len']:,}, "
             f"output {inp['output_len']:,}), weights {inp['weight_dtype']}, KV {inp['kv_dtype']}, "
             f"engine {inp['engine']} (gpu_memory_utilization {inp['gpu_memory_utilization']}), prices: "
             f"{inp['price_tier']} tier" + (f", overrides {inp['price_overrides']}" if inp['price_overrides'] else "")]
    lines.append(f"Operating point: {load_caption(res)}. Metrics there: GPUs = GPUs of the deployment (nodes); conc = "
                 "mean requests in one replica; req/s = "
                 "requests/s of the deployment; TTFT = mean time to first token (queueing + prompt chunks); TPOT = "
                 "mean inter-token latency (steps shared with other requests' prompts); tok/s = output tokens/s of "
                 "the deployment; $/1M tok = per 1M output tokens; ranges are the calibration bands (docs/metrics.md"
                 + ("; at a --rate, the same deployment's, 'unstable' where it saturates at the slow edge)."
                    if inp.get("rate_rps") is not None else ")."))
    for gpu, a in res.get("assumptions", {}).items():
        lines.append(f"Assumptions {gpu}: flops eff {a['flops_efficiency']['value']}, HBM eff "
                     f"{a['hbm_efficiency']['value']}, all-reduce busbw "
                     f"{a['allreduce_intra_node']['busbw_bytes_per_s'] / 1e9:.0f} GB/s intra / "
                     f"{a['allreduce_inter_node']['busbw_bytes_per_s'] / 1e9:.0f} GB/s inter-node, price "
                     f"${a['price']['usd_per_gpu_hour']:.2f}/GPU-h ({a['price']['tier']}, as of {a['price']['as_of']}"
                     + (", a stand-in price [assumed]" if "[assumed]" in a["price"]["source"] else "") + ")"
                     + ("; datasheet figures [recalled]: check them" if a.get("datasheet_recalled") else "")
                     + (f"; {a['weight_path']}" if a.get("weight_path") else ""))
    s = res["search"]
    lines.append(f"Searched {s['layouts_evaluated']:,} layouts in {s['seconds'] * 1e3:.0f} ms; "
                 f"{s['feasible']:,} feasible.")
    if res["rejected"]:
        lines.append("Rejected (a row can have several reasons): "
                     + ", ".join(f"{k} {v:,}" for k, v in res["rejected"].items()))
    lines += accuracy_lines(res)
    if res.get("candidates"):
        lines += [f"Winner's {x}" for x in feature_lines(res["candidates"][0]["serve"])]
    if res.get("serving_command"):
        lines.append("Serve the winner: " + res["serving_command"])
        note = multi_node_note(instance_nodes(res["candidates"][0]["layout"]), res["inputs"].get("engine", "vllm"))
        if note:
            lines.append(f"Launch: {note}.")
    lines += disagg_lines(res)
    if res.get("relax"):
        lines.append("Nothing is feasible. To get one layout: " + "; or ".join(res["relax"]))
    for e in res.get("explain", []):
        lines.append("Explain: " + e)
    return lines


def recommend_markdown(res: RecommendResult) -> str:
    headers, rows = recommend_rows(res)
    inp = res["inputs"]
    md = [md_text(f"## tpplan recommend: {inp['model']}, ctx {inp['ctx_tokens']:,} tokens, objective "
                  f"{inp['objective']}") + "\n",
          markdown_table(headers, rows, ["r", "l", "l", "l", "r", "r", "r", "l", "l"]
                         + ["r"] * (len(headers) - 10) + ["l"]), ""]
    md += [f"- {md_text(line)}" for line in _footer(res)]
    return "\n".join(md) + "\n"


def _mem_rows(res: EstimateResult | TrainEstimateResult) -> list[list[str]]:
    mem = res["memory_per_gpu_bytes"]
    rows = [[k.replace("_", " "), format_bytes(mem[k]), f"{mem[k] / mem['capacity']:.1%}"]
            for k in MEM_KEYS if mem.get(k)]
    rows.append(["total", format_bytes(mem["total"]), f"{mem['total'] / mem['capacity']:.1%}"])
    if "usable" in mem:
        rows.append(["usable", format_bytes(mem["usable"]), f"{mem['usable'] / mem['capacity']:.1%}"])
    rows.append(["capacity", format_bytes(mem["capacity"]), "100%"])
    return rows


def _print_layout(console: Any, res: EstimateResult | TrainEstimateResult, what: str, after: str, lines: list[str]) -> None:
    """One layout in full: the per-GPU memory table, titled "<what> on N x GPU (layout)<after>", then the
    figure lines."""
    from rich.table import Table

    lay = res["layout"]
    # the heading on a line of its own: as the table's title it wrapped to the narrow table's width (three lines
    # that split "8,000 x 1 sequences")
    console.print(plain_cells(f"{what} on {lay['gpus']} x {lay['gpu']} (tp={lay['tp']} pp={lay['pp']} "
                              f"dp={lay['dp']} cp={lay['cp']} ep={lay['ep']}){after}")[0],
                  highlight=False, markup=False)
    t = Table()
    for col in ("component", "bytes", "of capacity"):
        t.add_column(col, justify="left" if col == "component" else "right")
    for r in _mem_rows(res):
        t.add_row(*plain_cells(*r))
    console.print(t)
    for line in lines:
        console.print(line, highlight=False, markup=False)


def print_estimate(console: Any, res: EstimateResult) -> None:
    lay, inp = res["layout"], res["inputs"]
    stage = res["memory_per_gpu_bytes"].get("stage")
    after = (f", ctx {inp['ctx_tokens']:,} x {lay['concurrency']} sequences: memory per GPU"
             + (f" ({stage} pipeline stage, the most loaded)" if stage else ""))
    _print_layout(console, res, inp["model"], after, estimate_lines(res))


def estimate_lines(res: EstimateResult) -> list[str]:
    s, c, co = res["serve"], res["comm"], res["cost"]
    b = res.get("bands", {})
    lines = [
        f"fits: {'yes' if res['fits'] else 'NO'}" + (f"; reasons: {', '.join(res['reasons'])}" if res["reasons"] else ""),
        f"params: {format_count(res['params']['total'])} total, {format_count(res['params']['active'])} active; "
        f"KV cache {res['kv_cache_bytes_per_token']:,.0f} B/token (whole model), "
        f"{res['kv_cache_bytes_per_token_per_gpu']:,.0f} B/token per GPU",
        f"max concurrency at this ctx: {res['max_concurrency']:,}; longest single sequence that fits: "
        f"{res['max_context_one_sequence']:,} tokens",
        *load_lines(s),
        f"TTFT {band(s['ttft_s'], b.get('serve', {}).get('ttft_s'), format_seconds)}, "
        f"TPOT {band(s['tpot_s'], b.get('serve', {}).get('tpot_s'), format_seconds)} "
        f"(HBM lower bound {format_seconds(s['tpot_hbm_lower_bound_s'])}, decode {s['decode_bound']}-bound), "
        f"request latency {format_seconds(s['request_latency_s'])}, "
        f"throughput {s['throughput_tokens_per_s']:,.1f} tok/s",
        f"idle replica (one request, nothing else running): TTFT {format_seconds(s['idle']['ttft_s'])}, "
        f"TPOT {format_seconds(s['idle']['tpot_s'])}",
        f"TP all-reduce per layer (decode): {format_bytes(c['tp_allreduce_bytes_per_layer'])} x 2 = "
        f"{format_seconds(c['tp_allreduce_s_per_layer'])}; communication {c['comm_fraction']:.0%} of the decode step",
        f"cost: {format_usd(co['usd_per_hour'])}/hour, {format_usd(co['usd_per_million_tokens'])} per 1M output tokens "
        f"at ${co['usd_per_gpu_hour']:.2f}/GPU-hour",
    ]
    lines += feature_lines(s)
    lines += [f"warning: {w}" for w in res.get("warnings", [])]
    lines += accuracy_lines(res)
    return lines


def feature_lines(s: Serve | Features) -> list[str]:
    """Prefix caching and speculative decoding with the assumption each figure rests on (issue 21)."""
    out = []
    pc = s.get("prefix_cache")
    if pc:
        out.append(f"prefix cache: {pc['cached_prompt_tokens']:,} prompt tokens cached, "
                   f"{pc['prefill_tokens']:,} computed per request"
                   + (f"; shared prefix held once: {format_bytes(pc['shared_kv_bytes_per_gpu'])} per GPU"
                      if pc["shared_kv_bytes_per_gpu"] else "") + f" (assumption: {pc['assumption']})")
    sp = s.get("speculative")
    if sp:
        be = sp["break_even_batch"]
        cb = sp["verify_compute_bound_batch"]
        out.append(f"speculative decoding ({sp['method']}, k={sp['draft_tokens']}): {format_sig(sp['tokens_per_step'])} "
                   f"tokens per target step; {sp['speedup_at_operating_point']:.2f}x the plain decode step at "
                   f"{format_sig(sp['running_seqs'])} running sequence{'' if sp['running_seqs'] == 1 else 's'} ("
                   + ("pays off" if sp["pays_off"] else "does NOT pay off here") + "); "
                   + (f"stops paying off above {be:,.0f} sequences" if be is not None
                      else "pays off at every batch up to 8,192 sequences")
                   + (f" (verification compute-bound from {cb:,.0f})" if cb is not None else "")
                   + f" (assumption: {sp['assumption']})")
    return out


def load_lines(s: Serve) -> list[str]:
    """The operating point under load, in words (estimate's text formats)."""
    ld = s["load"]
    e = ld["engine"]
    head = {"rate": f"at {format_sig(ld['rate_rps'])} requests/s over {ld['replicas']:.0f} replica(s)",
            "concurrency": f"closed loop: {format_sig(ld['concurrency'])} request(s) in each replica, each sent when the "
                           "last one finishes",
            "sustainable": "at the largest sustainable rate"}[ld["mode"]]
    lines = [f"under load ({e['name']} {e['version']}: max_num_seqs {e['max_num_seqs']}, step budget "
             f"{e['max_num_batched_tokens']} tokens, chunked prefill {'on' if e['chunked_prefill'] else 'off'}): "
             f"{head}"]
    sat = ld["saturation_rate_rps_per_replica"]
    if not ld["stable"]:
        lines.append(f"UNSTABLE: {format_sig(ld['rate_rps_per_replica'])} requests/s per replica exceeds its saturation rate "
                     f"{format_sig(sat)} requests/s (limited by {ld['limited_by']}); the queue grows without bound")
        return lines
    lines.append(f"per replica: {format_sig(ld['rate_rps_per_replica'])} requests/s = {ld['utilization']:.0%} of saturation "
                 f"({format_sig(sat)} requests/s, limited by {ld['limited_by']}; sustainable "
                 f"{format_sig(ld['sustainable_rate_rps_per_replica'])}); {format_sig(ld['running_seqs'])} sequences decoding, "
                 f"{format_sig(ld['prefill_tokens_per_step'])} prompt tokens per step, step {format_seconds(ld['step_time_s'])}")
    t, p = ld["ttft_s"], ld["tpot_s"]
    lines.append(f"TTFT p50/p90/p99 {format_seconds(t['p50'])} / {format_seconds(t['p90'])} / "
                 f"{format_seconds(t['p99'])}; TPOT p50/p90/p99 {format_seconds(p['p50'])} / "
                 f"{format_seconds(p['p90'])} / {format_seconds(p['p99'])}")
    return lines


def estimate_markdown(res: EstimateResult) -> str:
    return (markdown_table(["component", "bytes", "of capacity"], _mem_rows(res), ["l", "r", "r"]) + "\n"
            + "\n".join(f"- {x}" for x in estimate_lines(res)) + "\n")


def estimate_csv(res: EstimateResult) -> str:
    lay, s, co, mem = res["layout"], res["serve"], res["cost"], res["memory_per_gpu_bytes"]
    headers = ["gpu", "gpus", "tp", "pp", "dp", "cp", "ep", "concurrency", "fits", "mem_total_bytes",
               "max_concurrency", "ttft_s", "tpot_s", "throughput_tokens_per_s", "usd_per_hour",
               "usd_per_million_tokens"]
    row = [lay["gpu"], lay["gpus"], lay["tp"], lay["pp"], lay["dp"], lay["cp"], lay["ep"], lay["concurrency"],
           res["fits"], mem["total"], res["max_concurrency"], s["ttft_s"], s["tpot_s"],
           s["throughput_tokens_per_s"], co["usd_per_hour"], co["usd_per_million_tokens"]]
    return csv_text(headers, [row])


def print_collective(console: Any, res: CollectiveResult) -> None:
    from rich.table import Table

    # the heading on a line of its own (as the estimate's): a four-column table's title wrapped into three lines
    console.print(plain_cells(f"{res['op']} on {res['ranks']} x {res['gpu']} ({res['nodes']} node(s)), "
                              f"{res['algorithm']}")[0], highlight=False, markup=False)
    t = Table()
    for col in ("size", "time", "algbw", "busbw"):
        t.add_column(col, justify="right")
    for r in res["rows"]:
        t.add_row(*plain_cells(format_bytes(r["size_bytes"], binary=True), format_seconds(r["time_s"]),
                          f"{r['algbw_bytes_per_s'] / 1e9:.2f} GB/s", f"{r['busbw_bytes_per_s'] / 1e9:.2f} GB/s"))
    console.print(t)
    console.print("busbw = algbw x 2(n-1)/n for all-reduce, x (n-1)/n for all-gather / reduce-scatter / "
                  "all-to-all (nccl-tests doc/PERFORMANCE.md). Calibration: " + res["calibration_source"],
                  highlight=False, markup=False)


def print_train_estimate(console: Any, res: TrainEstimateResult) -> None:
    _print_layout(console, res, f"training {res['inputs']['model']}", ", memory per GPU", train_lines(res))


def train_lines(res: TrainEstimateResult) -> list[str]:
    tr, co = res["train"], res["cost"]
    b = res.get("bands", {}).get("train", {})
    lines = [f"fits: {'yes' if res['fits'] else 'NO'}" + (f"; reasons: {', '.join(res['reasons'])}" if res["reasons"] else ""),
             f"step {band(tr['step_time_s'], b.get('step_time_s'), format_seconds)} "
             f"(compute {format_seconds(tr['breakdown_s']['compute'])}, bubble {format_seconds(tr['breakdown_s']['bubble'])}, "
             f"TP {format_seconds(tr['breakdown_s']['tp_comm'])}, DP {format_seconds(tr['breakdown_s']['dp_comm'])}, "
             f"PP {format_seconds(tr['breakdown_s']['pp_comm'])}, EP {format_seconds(tr['breakdown_s']['ep_comm'])}, "
             f"CP {format_seconds(tr['breakdown_s'].get('cp_comm', 0.0))}, "
             f"optimizer {format_seconds(tr['breakdown_s'].get('optimizer', 0.0))}), "
             f"MFU {tr['mfu']:.1%}, HFU {tr['hfu']:.1%}, {tr['tokens_per_s']:,.0f} tokens/s"]
    st = res.get("settings")
    if st:
        lines.append(settings_line(st))
    inp = res["inputs"]
    if "global_batch" in inp and "seq_len" in inp:
        lines.append(f"global batch {inp['global_batch']:,} sequences of {inp['seq_len']:,} tokens"
                     + (f" ({st['micro_batches']} micro-batch{'es' if st['micro_batches'] != 1 else ''} of "
                        f"{res['layout'].get('micro_batch', 1)} per pipeline)" if st else ""))
    lines += [f"note: {x}" for x in res.get("notes", [])]
    if tr.get("gpu_hours") is not None:
        lines.append(f"run: {tr['days']:.1f} days, {tr['gpu_hours']:,.0f} GPU-hours, "
                     + ", ".join(f"{k} {format_usd(v)}" for k, v in co["usd_total_by_tier"].items()))
    lines += [f"warning: {w}" for w in res.get("warnings", [])]
    lines += accuracy_lines(res)
    return lines


def settings_line(st: TrainSettings) -> str:
    """How the step was run (the settings a --framework profile or the flags chose): the assumptions that drive
    the time."""
    from tpplan.catalog.spec import ATTENTION_WORDS

    v = st.get("interleave", 1)
    parts = [f"ZeRO-{st['zero']}", f"recompute {st['recompute']}", f"{st['micro_batches']} micro-batches",
             ATTENTION_WORDS.get(st.get("attention", ""), str(st.get("attention"))),
             f"sequence parallelism {'on' if st['sequence_parallel'] else 'off'}",
             f"{st.get('elementwise', 'fused')} elementwise kernels",
             f"gradients reduced in {st.get('grad_reduce_dtype', 'bf16')}"
             + (" behind the backward" if st.get("overlap_grad_reduce", True) else " after the backward"),
             f"{st['train_dtype']} GEMMs"]
    if v and v > 1:
        parts.append(f"{v} virtual stages")
    if st.get("shard_group"):
        parts.append(f"sharded over groups of {st['shard_group']}")
    if st.get("ep_overlap"):
        parts.append("expert all-to-alls overlapped")
    return "run as: " + ", ".join(parts)


def train_estimate_markdown(res: TrainEstimateResult) -> str:
    return (f"## training {md_text(res['inputs']['model'])} on {res['layout']['gpus']} x {md_text(res['layout']['gpu'])}\n\n"
            + markdown_table(["component", "bytes", "of capacity"], _mem_rows(res), ["l", "r", "r"]) + "\n"
            + "\n".join(f"- {md_text(x)}" for x in train_lines(res)) + "\n")


TRAIN_ESTIMATE_CSV = ["gpu", "gpus", "nodes", "tp", "pp", "dp", "cp", "ep", "micro_batch", "fits", "mem_total_bytes",
                      "step_time_s", "mfu", "hfu", "tokens_per_s", "gpu_hours", "days", "usd_per_hour", "usd_total"]


def train_estimate_csv(res: TrainEstimateResult) -> str:
    """One training layout in base units (bytes, seconds, USD), as recommend --train's CSV rows."""
    lay, tr, co = res["layout"], res["train"], res["cost"]
    row = [lay["gpu"], lay["gpus"], lay["nodes"], lay["tp"], lay["pp"], lay["dp"], lay["cp"], lay["ep"],
           lay["micro_batch"], res["fits"], res["memory_per_gpu_bytes"]["total"], tr["step_time_s"], tr["mfu"],
           tr["hfu"], tr["tokens_per_s"], tr["gpu_hours"], tr["days"], co["usd_per_hour"], co["usd_total"]]
    return csv_text(TRAIN_ESTIMATE_CSV, [row])


def render_train_recommend(console: Any, res: TrainRecommendResult, fmt: str, out: Callable[[str], None]) -> None:
    """recommend --train's result in ``fmt`` (the format registry, tpplan/render/formats.py)."""
    from tpplan.render import formats

    formats.emit("train-recommend", fmt, res, lambda: console, out)


def train_recommend_rows(res: TrainRecommendResult) -> tuple[list[str], list[list[Any]]]:
    headers = ["rank", "GPU", "GPUs (nodes)", "TP/PP/DP/CP/EP", "mb", "v", "recompute", "ZeRO", "mem/GPU", "step",
               "MFU", "days", "GPU-hours", "$ (typical)"]
    rows = []
    for i, c in enumerate(res["candidates"], 1):
        lay, tr = c["layout"], c["train"]
        rows.append([i, lay["gpu"], f"{lay['gpus']} ({lay['nodes']})", _lay(c), lay["micro_batch"],
                     c["settings"]["interleave"], c["settings"]["recompute"], c["settings"]["zero"],
                     format_bytes(c["memory_per_gpu_bytes"]["total"]), format_seconds(tr["step_time_s"]),
                     f"{tr['mfu']:.1%}", f"{tr['days']:.1f}" if tr.get("days") is not None else "-",
                     f"{tr['gpu_hours']:,.0f}" if tr.get("gpu_hours") is not None else "-",
                     format_usd(c["cost"]["usd_total"]) if c["cost"].get("usd_total") is not None else "-"])
    return headers, rows


def train_recommend_csv(res: TrainRecommendResult) -> str:
    return csv_text(*train_recommend_rows(res))


def train_recommend_markdown(res: TrainRecommendResult) -> str:
    return markdown_table(*train_recommend_rows(res))


def print_train_recommend(console: Any, res: TrainRecommendResult) -> None:
    headers, rows = train_recommend_rows(res)
    from rich import box
    from rich.table import Table

    inp = res["inputs"]
    title = (f"training {inp['model']}: seq {inp['seq_len']:,}, global batch {inp['global_batch']:,} sequences"
             + (f", {format_sig(inp['tokens'])} tokens" if inp.get("tokens") else ""))
    t = Table(title=plain_cells(title)[0], box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    keep = {"time": "days", "cost": "$ (typical)", "mfu": "MFU"}.get(inp.get("objective", ""), "")
    headers, rows, widths, dropped = _drop_to_fit(console, headers, rows, _widths(headers, rows), TRAIN_DROP_ORDER,
                                                  keep)
    _list_columns(t, console, headers, rows, widths=widths)
    for r in rows:
        t.add_row(*plain_cells(*r))
    console.print(t)
    if dropped:
        console.print(left_out_line(console.width, dropped, "--format markdown or json show them"), highlight=False,
                      markup=False)
    s = res["search"]
    console.print(f"Searched {s['layouts_evaluated']:,} layouts in {s['seconds'] * 1e3:.0f} ms; MFU counts model "
                  "FLOPs 6N + full attention (Narayanan et al. 2021) against the dense peak.", highlight=False,
                  markup=False)
    if res["rejected"]:
        console.print("Rejected: " + ", ".join(f"{k} {v:,}" for k, v in res["rejected"].items()),
                      highlight=False, markup=False)
    if res.get("relax"):
        console.print("Nothing is feasible. " + "; ".join(res["relax"]), highlight=False, markup=False)
    for note in res.get("notes", []):
        console.print("note: " + note, highlight=False, markup=False)
    for line in accuracy_lines(res):
        console.print(line, highlight=False, markup=False)


def breakdown_markdown(res: EstimateResult) -> str:
    """``estimate --breakdown``: each term of an idle replica's prefill and decode step, per layer and per step;
    the last line checks the sum against the reported time."""
    b = res["breakdown"]
    L = b["layers"]
    out = []
    phases: tuple[tuple[Literal["prefill", "decode"], str], ...] = (
        ("prefill", "one prefill of the prompt (serve.idle.ttft_s)"), ("decode", "one decode step (serve.idle.tpot_s)"))
    for phase, what in phases:
        p = b[phase]
        rows = []
        for k, v in p["per_layer_s"].items():
            rows.append([k, format_seconds(v), format_seconds(v * L), f"{v * L / p['total_s']:.1%}"])
            if k == p.get("gemm_term"):  # its operators, indented (not added again to the total)
                rows += [[f"- {op}", format_seconds(x / L), format_seconds(x), f"{x / p['total_s']:.1%}"]
                         for op, x in p["gemm_by_operator_s"].items()]
        rows += [[k + " (per step)", "", format_seconds(v), f"{v / p['total_s']:.1%}"] for k, v in p["per_step_s"].items()]
        total = sum(p["per_layer_s"].values()) * L + sum(p["per_step_s"].values())
        rows.append(["total", "", format_seconds(total), f"= {format_seconds(p['total_s'])}"])
        out.append(f"Where the time goes: {what}, {L} layers\n")
        out.append(markdown_table(["term", "per layer", f"x {L} layers", "share"], rows, ["l", "r", "r", "r"]))
    return "\n".join(out)


def train_breakdown_markdown(res: TrainEstimateResult) -> str:
    """``estimate --train --breakdown``: the step's terms (compute split into GEMMs, attention, elementwise)."""
    t = res["train"]
    b = t["breakdown_s"]
    step = t["step_time_s"]
    terms = {k: x for k in ("gemm", "attention", "elementwise", "bubble", "tp_comm", "pp_comm", "dp_comm", "ep_comm",
                            "cp_comm", "optimizer") if (x := b.get(k))}
    rows = []
    for k, x in terms.items():
        rows.append([k, format_seconds(x), f"{x / step:.1%}"])
        if k == "gemm":  # its operators, indented (not added again to the total)
            rows += [[f"- {op}", format_seconds(y), f"{y / step:.1%}"] for op, y in t.get("gemm_by_operator_s", {}).items()]
    rows.append(["total", format_seconds(sum(terms.values())), f"= {format_seconds(step)}"])
    return ("Where the time goes: one optimizer step\n\n"
            + markdown_table(["term", "seconds", "share"], rows, ["l", "r", "r"]))


def _cost_table(res: CostResult) -> tuple[str, list[str], list[list[Any]]]:
    """tpplan cost: the heading, columns and one row per price tier."""
    days = res["period_hours"] / 24
    head = (f"{res['gpus']:,} x {res['gpu']} for {res['period_hours']:,.0f} h ({days:,.1f} days)"
            + (f" at {res['utilization']:.0%} utilization" if res["utilization"] < 1 else "")
            + f": {res['billed_gpu_hours']:,.0f} GPU-hours billed")
    rows = [[r["tier"] + (" [assumed]" if r["assumed"] else ""), f"{format_usd(r['usd_per_gpu_hour'])}/GPU-h",
             f"{format_usd(r['usd_per_hour'])}/h", f"{format_usd(r['usd_per_month'])}/mo",
             format_usd(r["total_usd"]), r["as_of"] or "", r["source"]] for r in res["tiers"]]
    return head, ["Tier", "Price", "Cluster", "Per month (730 h)", "Total", "As of", "Source"], rows


def cost_markdown(res: CostResult) -> str:
    head, cols, rows = _cost_table(res)
    text = [f"**{md_text(head)}**", "", markdown_table(cols, rows, ["l", "r", "r", "r", "r", "l", "l"])]
    text[-1] = text[-1].rstrip("\n")
    notes = [*res["notes"], *(f"[{k}] = {v}" for k, v in res["source_tags"].items())]
    text += ["", *[f"- {md_text(x)}" for x in notes]] if notes else []
    return "\n".join(text) + "\n"


def print_cost(console: Any, res: CostResult) -> None:

    from tpplan.render import printable

    head, cols, rows = _cost_table(res)
    figures = {"Tier", "Price", "Cluster", "Per month (730 h)", "Total", "As of"}
    catalog_table(console, printable(head), cols, [[printable(str(x)) for x in r] for r in rows], figures,
                  ["Source", "As of"], "--format json or markdown shows them",
                  right={"Price", "Cluster", "Per month (730 h)", "Total"}, title_justify="left")
    for x in res["notes"]:
        console.print("note: " + x, highlight=False, markup=False)
    if res["source_tags"]:
        console.print("sources: " + "; ".join(f"[{k}] {v}" for k, v in res["source_tags"].items()),
                      highlight=False, markup=False)


@dataclass(frozen=True)
class ValidateView:
    """tpplan validate's result with what the reader asked to see: every row (--rows), the e2e rows when
    --category was given."""

    res: ValidateResult
    rows: bool = False
    categories_given: bool = False


def validate_text(v: ValidateView, md: bool) -> str:
    """The validate summary (categories, then the rows shown) as terminal text or markdown."""
    from tpplan.calibration.e2e import render as render_e2e

    res = v.res
    headline = "all categories within tolerance" if res["passed"] else "some rows exceed their tolerance"
    if "e2e" in res:
        e = res["e2e"]
        within = sum(bool(r["within_tolerance"]) for r in e["rows"])
        run = sum(r["predicted"] is not None for r in e["rows"])
        headline += (f" (e2e: {within} of {run} end-to-end figures within their metric's tolerance; "
                     + (f"{len(e['regressions'])} guarded row(s) regressed)" if e["regressions"]
                        else "no guarded row regressed)"))
    lines = [("## " if md else "") + "tpplan validate: " + headline, ""]
    head = ["Category", "Rows", "Mean abs error", "Max abs error", "Tolerance", "Failed", "What"]
    body = [[c["category"] + (f" {c['metric']}" if "metric" in c else ""), c["rows"],
             f"{c['mean_abs_error']:.1%}" if c["mean_abs_error"] is not None else "-",
             f"{c['max_abs_error']:.1%}" if c["max_abs_error"] is not None else "-",
             f"{c['tolerance']:.1%}", c["failed"], c["description"]] for c in res["categories"]]
    lines.append(markdown_table(head, body, ["l", "r", "r", "r", "r", "r", "l"]))
    shown = [r for r in res["rows"] if v.rows or md or not r["within_tolerance"]]
    if "e2e" in res and (v.rows or md or v.categories_given):
        lines.append(render_e2e(res["e2e"], "### " if md else ""))
    if shown:
        lines.append(markdown_table(
            ["Category", "Case", "Predicted", "Published", "Error", "OK", "Source"],
            [[r["category"], r["name"], f"{r['predicted']:.4g}", f"{r['published']:.4g}", f"{r['error']:+.1%}",
              "yes" if r["within_tolerance"] else "NO", r["source"]] for r in shown],
            ["l", "l", "r", "r", "r", "l", "l"]))
    return "\n".join(lines)
