"""Report rendering: the report dict -> a list of blocks -> markdown, self-contained HTML or CSV.

One block list feeds both markdown and HTML so the two never disagree. Output is deterministic: no clock
unless the caller passes ``stamp``; numbers are formatted with fixed rules.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tpplan.engine.grid import REASON_TEXT
from tpplan.render import (
    accuracy_lines,
    csv_text,
    instance_nodes,
    layout_label,
    markdown_table,
    md_text,
    multi_node_note,
    pool_command_label,
)
from tpplan.units import HOURS_PER_MONTH, format_count, format_seconds, format_sig, format_usd

if TYPE_CHECKING:
    from tpplan.result_types import (
        DisaggPool,
        ReportResult,
        RunReportResult,
        ServeEstimate,
        ServeInputs,
        ServeReportResult,
        TrainEstimate,
        TrainReportResult,
    )

GIB = 2**30
Block = tuple[Any, ...]
# ("h", level, text) | ("p", text) | ("list", [items]) | ("table", headers, rows, align) | ("chart", key)
#  | ("code", text)


def _gib(x: float) -> str:
    return f"{x / GIB:.1f} GiB"


def _layout(c: ServeEstimate | TrainEstimate) -> str:
    return layout_label(c["layout"])


def _nodes(c: ServeEstimate | TrainEstimate) -> str:
    n = c["layout"]["nodes"]
    return f"{c['layout']['gpus']:,} ({n:,} node{'s' if n != 1 else ''})"


def _tok_s(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


# ---------------------------------------------------------------------------------------------------
# serving
# ---------------------------------------------------------------------------------------------------


def _sentence(c: ServeEstimate, inp: ServeInputs) -> str:
    s, k = c["serve"], c["cost"]
    ld = s["load"]
    return (f"{c['layout']['gpus']}x {c['layout']['gpu']} ({c['layout']['nodes']} node"
            f"{'s' if c['layout']['nodes'] != 1 else ''}, {_layout(c)}), at {format_sig(ld['rate_rps'])} requests/s "
            f"({format_sig(ld['concurrency'])} in each replica on average, up to {inp['ctx_tokens']:,} tokens each): "
            f"TTFT {format_seconds(s['ttft_s'])}, TPOT "
            f"{format_seconds(s['tpot_s'])}, request latency {format_seconds(s['request_latency_s'])}, "
            f"{_tok_s(s['throughput_tokens_per_s'])} output tokens/s, {format_usd(k['usd_per_hour'])}/hour, "
            f"{format_usd(k['usd_per_million_tokens'])} per 1M output tokens")


def _disagg_blocks(res: ServeReportResult) -> list[Block]:
    """recommend --disagg's answer in the report: the cheapest prefill / decode pools against the winner."""
    d = res.get("disaggregated")
    if not d:
        return []
    b: list[Block] = [("h", 2, "Disaggregated prefill and decode")]
    b.append(("p", d["message"] + " Each pool is sized to the rate on its own (replicas = rate / sustainable rate "
                   "per replica, rounded up); the prompt's KV moves between them over the NICs after the prefill "
                   "(docs/metrics.md, 'disaggregated serving')."))
    if d["pairs"]:
        headers = ["", "Prefill pool", "Decode pool", "KV hand-off", "TTFT", "TPOT", "GPUs", "$/hour",
                   "$/1M tokens"]
        rows = []
        for i, x in enumerate(d["pairs"], 1):
            def pool(p: DisaggPool) -> str:
                return f"{p['replicas']} x {layout_label(p['layout'])} {p['layout']['gpu']}"
            rows.append([f"{i} ({x['ratio']})", pool(x["prefill"]), pool(x["decode"]),
                         format_seconds(x["kv_transfer"]["seconds"]), format_seconds(x["ttft_s"]),
                         format_seconds(x["tpot_s"]), str(x["gpus"]), format_usd(x["usd_per_hour"]),
                         format_usd(x["usd_per_million_tokens"])])
        b.append(("table", headers, rows, ["l", "l", "l", "r", "r", "r", "r", "r", "r"]))
        for role, cmd in d["pairs"][0].get("commands", {}).items():
            b.append(("p", f"Serve {pool_command_label(role)} with: `{cmd}`"))
    return b


def _feature_blocks(res: ServeReportResult) -> list[Block]:
    """Prefix caching and speculative decoding: the best layout on the winner's GPU type with and without."""
    f = res.get("features")
    if not f:
        return []
    from tpplan.render.tables import feature_lines

    names = " and ".join(x for x, k in (("prefix caching", "prefix_cache"), ("speculative decoding", "speculative"))
                         if k in f["features"])
    b: list[Block] = [("h", 2, f"With and without {names}")]
    b.append(("p", f"The best layout on {f['gpu']} with {names} as planned, and without, at the same load, SLOs and "
                   "objective. " + " ".join(x[0].upper() + x[1:] + "." for x in feature_lines(f["features"]))))
    headers = ["", "Layout", "GPUs", "TTFT", "TPOT", "Tokens/s", "$/hour", "$/1M tokens"]
    rows = []
    for label, r in (("with", f["with"]), ("without", f["without"])):
        if r is None:
            rows.append([label, "no feasible layout", "", "", "", "", "", ""])
            continue
        lay = r["layout"]
        rows.append([label, layout_label(lay), str(lay["gpus"]), format_seconds(r["ttft_s"]),
                     format_seconds(r["tpot_s"]), _tok_s(r["throughput_tokens_per_s"]), format_usd(r["usd_per_hour"]),
                     format_usd(r["usd_per_million_tokens"])])
    b.append(("table", headers, rows, ["l", "l", "r", "r", "r", "r", "r", "r"]))
    return b


def serve_blocks(res: ServeReportResult, stamp: str | None = None) -> list[Block]:
    from tpplan.plan.report import OBJECTIVE_WORDS

    inp = res["inputs"]
    u = inp["utilization"]
    b: list[Block] = [("h", 1, f"Serving cost report: {inp['model']} at {inp['ctx_tokens']:,} tokens")]
    meta = (f"tpplan {res['tool']['version']}, catalog sha256 {inp['catalog_sha256'][:16]}, ranked by "
            f"{OBJECTIVE_WORDS[inp['objective']]}, {inp['price_tier']} prices")
    b.append(("p", meta + (f", generated {stamp}" if stamp else "") + "."))
    b.append(("h", 2, "Summary"))
    win = res.get("winner")
    if not win:
        b.append(("p", "No GPU type in the search can serve this workload within the constraints."))
        for x in res["blocked"]:
            b.append(("p", f"{x['gpu']}: {'; '.join(x['why'])}"))
        return b + _serve_sources(res)
    overridden = any(p["gpu"] == win["layout"]["gpu"] and p["override"] for p in res.get("prices", []))
    b.append(("p", f"**Recommended:** {_sentence(win, inp)} "
                   f"({'your --price / --prices' if overridden else inp['price_tier'] + ' price'})."))
    b += _caveats(win)
    b += _assumed_price(res, win["layout"]["gpu"], inp["price_tier"])
    ru = res.get("runner_up")
    if ru:
        b.append(("p", f"**Runner-up on another GPU type:** {_sentence(ru, inp)}."))
    close = res.get("too_close_to_call") or []
    if close:
        b.append(("p", f"**Too close to call:** the uncertainty band of {', '.join(close)} on "
                       f"{OBJECTIVE_WORDS[inp['objective']]} overlaps the recommendation's, so the calibration data "
                       "cannot separate them; price quotes or a benchmark on both should decide."))
    else:
        b.append(("p", "The recommendation's lead holds across the uncertainty bands of every other GPU type."))
    if inp["objective"] == "cost" and len(res["comparison"]) > 1:
        for tier in ("low", "high"):
            best = min(res["comparison"], key=lambda c: c["cost"]["usd_per_million_tokens_by_tier"][tier])
            if best["layout"]["gpu"] != win["layout"]["gpu"]:
                b.append(("p", f"At every GPU's {tier} price tier, {best['layout']['gpu']} would be cheapest "
                               f"({format_usd(best['cost']['usd_per_million_tokens_by_tier'][tier])} per 1M tokens): "
                               "the price you negotiate can change the answer."))
    b.append(("p", f"Serve it with: `{res['serving_command']}`"))
    launch = multi_node_note(instance_nodes(win["layout"]), inp.get("engine", "vllm"))
    if launch:
        b.append(("p", f"Launch: {launch}."))

    b.append(("h", 2, "Comparison across GPU types"))
    b.append(("p", f"The best layout on each GPU type ({inp['input_len']:,}-token prompt, {inp['output_len']:,} "
                   f"output tokens, weights {inp['weight_dtype']}, KV cache {inp['kv_dtype']}). Headroom is usable "
                   f"memory left per GPU; $/month is 730 hours x {_pct(u)} utilisation at the typical price."))
    headers = ["GPU", "GPUs (nodes)", "Layout", "Conc", "Mem/GPU", "Headroom", "TTFT", "TPOT", "Tokens/s",
               "$/hour", "$/1M low", "$/1M typical", "$/1M high", f"$/month at {_pct(u)}"]
    rows = []
    for c in res["comparison"]:
        t = c["cost"]["usd_per_million_tokens_by_tier"]
        rows.append([c["layout"]["gpu"], _nodes(c), _layout(c), format_sig(c['serve']['load']['concurrency']),
                     _gib(c["memory_per_gpu_bytes"]["total"]), _pct(c["headroom_fraction"]),
                     format_seconds(c["serve"]["ttft_s"]), format_seconds(c["serve"]["tpot_s"]),
                     _tok_s(c["serve"]["throughput_tokens_per_s"]), format_usd(c["cost"]["usd_per_hour"]),
                     format_usd(t["low"]), format_usd(t["typical"]), format_usd(t["high"]),
                     format_usd(c["cost"]["usd_per_month"])])
    b.append(("table", headers, rows, ["l", "r", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"]))
    if res["blocked"]:
        b.append(("p", "Not feasible: " + "; ".join(f"{x['gpu']} ({'; '.join(x['why'])})" for x in res["blocked"])
                  + "."))
    b.append(("chart", "cost_latency"))

    b += _feature_blocks(res)
    b += _disagg_blocks(res)

    b.append(("h", 2, "Where the bytes go"))
    m = win["memory_per_gpu_bytes"]
    cap = m["capacity"]
    b.append(("p", f"Per GPU of the recommendation ({win['layout']['gpu']}, {_layout(win)}, "
                   f"the memory check holds {win['layout']['concurrency']} sequence(s) of {inp['ctx_tokens']:,} "
                   "tokens; "
                   f"the engine admits up to {win['serve']['load']['max_running_seqs']:.0f} at their mean length). "
                   f"The engine may use {_gib(m['usable'])} of {_gib(cap)}."))
    parts = [("Weights", m["weights"]), ("KV cache", m["kv_cache"]), ("Activations (profile run)", m["activations"]),
             ("Runtime overhead (CUDA context, NCCL, CUDA graphs)", m["overhead"]), ("Free", m["free"])]
    b.append(_memory_table(parts, cap))
    b.append(("chart", "memory"))

    b.append(("h", 2, "Sensitivity"))
    b.append(("h", 3, "Price"))
    prows = []
    for tier in ("low", "typical", "high"):
        uh = win["cost"]["usd_per_hour_by_tier"][tier]
        prows.append([tier, format_usd(uh / win["layout"]["gpus"]), format_usd(uh),
                      format_usd(win["cost"]["usd_per_million_tokens_by_tier"][tier]),
                      format_usd(uh * HOURS_PER_MONTH * u)])
    b.append(("table", ["Tier", "$/GPU-hour", "$/hour", "$/1M tokens", f"$/month at {_pct(u)}"], prows,
              ["l", "r", "r", "r", "r"]))
    b.append(("h", 3, "Context length"))
    crow = []
    for r in res["sensitivity"]["context"]:
        if r["layout"] is None:
            crow.append([f"{r['ctx_tokens']:,}", "none fits", "", "", "", ""])
            continue
        t = r["usd_per_million_tokens_by_tier"]
        crow.append([f"{r['ctx_tokens']:,}" + (" (requested)" if r["requested"] else ""), r["layout"],
                     format_sig(r['concurrency']), format_seconds(r["tpot_s"]), format_usd(t["typical"]),
                     f"{format_usd(t['low'])}-{format_usd(t['high'])}"])
    b.append(("p", f"The best layout on {win['layout']['gpu']} at each context length (same objective and "
                   "constraints)."))
    b.append(("table", ["Context", "Best layout", "Conc", "TPOT", "$/1M typical", "$/1M low-high"], crow,
              ["l", "l", "r", "r", "r", "r"]))
    return b + _serve_sources(res)


def _memory_table(parts: list[tuple[str, float]], capacity: float) -> Block:
    """Where the bytes of one GPU go: each component, its GiB and its share of the capacity."""
    return ("table", ["Component", "Per GPU", "Share of capacity"],
            [[k, _gib(v), _pct(v / capacity)] for k, v in parts] + [["Capacity", _gib(capacity), "100%"]],
            ["l", "r", "r"])


def _caveats(win: ServeEstimate | TrainEstimate) -> list[Block]:
    """The recommended layout's warnings (its JSON ``warnings``), under the recommendation."""
    if not win.get("warnings"):
        return []
    return [("p", "**Caveats of this layout:** " + "; ".join(win["warnings"]) + ".")]


def _assumed_price(res: ServeReportResult | TrainReportResult, gpu: str,
                   tier: Literal["low", "typical", "high"] = "typical") -> list[Block]:
    """A sentence when the recommendation's price is a stand-in (a source tagged [assumed]), not a quote."""
    for p in res["prices"]:
        q = p[tier]
        if p["gpu"] == gpu and not p["override"] and "[assumed]" in q["source"]:
            return [("p", f"**Price caveat:** the {tier} price of {gpu} "
                          f"({format_usd(q['usd_per_hour'])}/GPU-hour) is assumed, not a market quote "
                          f"({q['source']}); give a quote with --price {gpu}=USD.")]
    return []


def _price_legend(res: ReportResult) -> list[Block]:
    """What the source tags of the price table mean."""
    from tpplan.engine.cost import source_legend

    srcs = [p[t]["source"] for p in res.get("prices", []) if not p["override"] for t in ("low", "typical", "high")]
    legend = source_legend(srcs)
    return [("p", "Source tags: " + "; ".join(f"[{k}] {v}" for k, v in legend.items()) + ".")] if legend else []


def _prices_table(res: ReportResult) -> Block:
    """Each GPU's price tiers with date and source (one row when --price overrides them)."""
    rows = []
    for p in res["prices"]:
        if p["override"]:
            rows.append([p["gpu"], "--price" if (p["override_source"] or "").startswith("--price") else "--prices",
                         format_usd(p["typical"]["usd_per_hour"]), p.get("override_as_of") or "",
                         p.get("override_source") or "command line"])
        else:
            rows += [[p["gpu"], t, format_usd(p[t]["usd_per_hour"]), p[t]["as_of"], p[t]["source"]]
                     for t in ("low", "typical", "high")]
    return ("table", ["GPU", "Tier", "$/GPU-hour", "As of", "Source"], rows, ["l", "l", "r", "l", "l"])


def _serve_sources(res: ServeReportResult) -> list[Block]:
    inp = res["inputs"]
    b: list[Block] = [("h", 2, "Assumptions and sources")]
    items = [f"Tool: tpplan {res['tool']['version']}; catalog sha256 `{inp['catalog_sha256']}`.",
             f"Workload: model {inp['model']} ({inp['hf_id'] or 'no HF id'}), max context {inp['ctx_tokens']:,} "
             f"tokens, timed request {inp['input_len']:,} prompt + {inp['output_len']:,} output tokens, weights "
             f"{inp['weight_dtype']}, KV cache {inp['kv_dtype']}.",
             "Metrics, each at the layout's operating point under load (tpplan/engine/load.py): the largest "
             "sustainable request rate for the cost and throughput objectives (85% of saturation, within the SLOs), "
             "one request after another for latency, or --rate. TTFT = mean time to first token (queueing + prompt "
             "chunks); TPOT = mean inter-token latency; Conc = mean requests in one replica; request latency = "
             "TTFT + output tokens x TPOT; tokens/s = output tokens/s of the whole deployment; $/1M tokens = "
             "$/hour / (tokens/s x 3600) x 1e6 (docs/metrics.md). Ranges are the calibration bands.",
             f"Utilisation {_pct(inp['utilization'])}: the share of the month's 730 hours the deployment runs "
             "(and is billed); $/1M tokens assume it runs fully loaded while up."]
    a = res.get("assumptions")
    if a:
        e = a["engine"]
        items.append(f"Engine: {e['name']} defaults: gpu_memory_utilization {e['gpu_memory_utilization']}, "
                     f"max_num_batched_tokens {e['max_num_batched_tokens']:,}, kernel gap "
                     f"{e['kernel_gap_s_per_layer'] * 1e6:.1f} us/layer at TP 1, "
                     f"CUDA graphs {_gib(e['cuda_graph_bytes'])}, "
                     f"CUDA context {_gib(e['cuda_context_bytes'])} ({e['source']}).")
        for key, label in (("flops_efficiency", "Tensor-core efficiency"), ("hbm_efficiency", "HBM efficiency")):
            x = a[key]
            items.append(f"{label} ({res['winner']['layout']['gpu']}): {x['value']} (band {x['low']}-{x['high']}); "
                         f"{x['source']}")
        k = a.get("gemm_inner_dimension")
        if k:
            items.append(f"GEMMs of inner dimension K below {k['k_ref']:,.0f} (TP shards, small hidden sizes) run "
                         f"slower than that efficiency: {k['rule']}, k0 = {k['k0']:,.0f} (band "
                         f"{k['k0_band'][0]:,.0f}-{k['k0_band'][1]:,.0f}); {k['source']}")
        ar = a["allreduce_intra_node"]
        items.append(f"All-reduce within a node: {ar['alpha_per_step_s'] * 1e6:.1f} us per step, bus bandwidth "
                     f"{ar['busbw_bytes_per_s'] / 1e9:.0f} GB/s; {ar['source']}")
        items.append(f"Conventions: FLOPS are {a['flops_convention']}; bandwidths are {a['bandwidth_convention']}.")
    items += accuracy_lines(res)
    b.append(("list", items))
    b.append(("h", 3, "Prices"))
    b.append(_prices_table(res))
    b += _price_legend(res)
    b.append(("h", 3, "Why the other layouts were rejected"))
    b.append(("p", f"{res['layouts_evaluated']:,} layouts were evaluated (each at its operating point); "
                   "a layout can fail several rules."))
    b.append(("table", ["Rule", "Meaning", "Layouts"],
              [[k, REASON_TEXT.get(k, k), f"{v:,}"] for k, v in res["rejected"].items()], ["l", "l", "r"]))
    return b


# ---------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------


def _train_head(res: TrainReportResult | RunReportResult, stamp: str | None) -> list[Block]:
    inp = res["inputs"]
    title = (f"Training cost report: {inp['model']}" if inp.get("model") else "Training run cost")
    return [("h", 1, title), ("p", f"tpplan {res['tool']['version']}, catalog sha256 {inp['catalog_sha256'][:16]}"
                                   + (f", generated {stamp}" if stamp else "") + ".")]


def run_blocks(res: RunReportResult, stamp: str | None = None) -> list[Block]:
    """report --train --gpu-hours: the $ of a run of known size at each tier."""
    b = _train_head(res, stamp)
    b.append(("h", 2, "Cost of a run of known size"))
    b.append(("p", f"{format_count(res['inputs']['gpu_hours'])} GPU-hours priced at each tier ($ = GPU-hours x "
                   "$/GPU-hour)."))
    b.append(("table", ["GPU", "GPU-hours", "$/GPU-hour low-typical-high", "$ low", "$ typical", "$ high"],
              [[r["gpu"], f"{r['gpu_hours']:,.0f}",
                "-".join(format_usd(r["usd_per_gpu_hour_by_tier"][t]) for t in ("low", "typical", "high")),
                *[format_usd(r["usd_total_by_tier"][t]) for t in ("low", "typical", "high")]]
               for r in res["runs"]], ["l", "r", "r", "r", "r", "r"]))
    return b + _train_sources(res)


def train_blocks(res: TrainReportResult, stamp: str | None = None) -> list[Block]:
    inp = res["inputs"]
    b = _train_head(res, stamp)
    win = res.get("winner")
    tok = inp.get("tokens")
    b.append(("h", 2, "Summary"))
    if not win:
        b.append(("p", "No GPU type can run this training job within the constraints: "
                       + "; ".join(f"{x['gpu']}: {', '.join(x['why'])}" for x in res["blocked"]) + "."))
        return b + _train_sources(res)

    def sent(c: TrainEstimate) -> str:
        t = c["train"]
        return (f"{c['layout']['gpus']:,}x {c['layout']['gpu']} ({c['layout']['nodes']:,} nodes, {_layout(c)}, "
                f"micro-batch {c['layout']['micro_batch']}, recompute {c['settings']['recompute']}, ZeRO "
                f"{c['settings']['zero']}): step {format_seconds(t['step_time_s'])}, MFU {t['mfu'] * 100:.1f}%, "
                f"{t['days']:.1f} days, {format_count(t['gpu_hours'])} GPU-hours, "
                f"{format_usd(c['cost']['usd_total_by_tier']['typical'])} at the typical price")
    b.append(("p", f"**Recommended:** {sent(win)} for {format_count(tok or 0)} tokens of {inp['seq_len']:,}-token "
                   f"sequences, {inp['global_batch']:,} sequences per step."))
    b += [("p", f"Note: {x}.") for x in res.get("notes", [])]
    b += _caveats(win)
    b += _assumed_price(res, win["layout"]["gpu"])
    ru = res.get("runner_up")
    if ru:
        b.append(("p", f"**Runner-up on another GPU type:** {sent(ru)}."))
    b.append(("h", 2, "Comparison across GPU types"))
    rows = []
    for c in res["comparison"]:
        t, k = c["train"], c["cost"]["usd_total_by_tier"]
        rows.append([c["layout"]["gpu"], _nodes(c), _layout(c), f"{t['mfu'] * 100:.1f}%",
                     format_seconds(t["step_time_s"]), f"{t['days']:.1f}", format_count(t["gpu_hours"]),
                     format_usd(k["low"]), format_usd(k["typical"]), format_usd(k["high"])])
    b.append(("table", ["GPU", "GPUs (nodes)", "Layout", "MFU", "Step", "Days", "GPU-hours", "$ low", "$ typical",
                        "$ high"], rows, ["l", "r", "l", "r", "r", "r", "r", "r", "r", "r"]))
    b.append(("h", 2, "Where the bytes go"))
    m = win["memory_per_gpu_bytes"]
    cap = m["capacity"]
    parts = [("Weights", m["weights"]), ("Gradients", m["gradients"]), ("Optimizer state", m["optimizer"]),
             ("Activations", m["activations"]), ("Runtime overhead", m["overhead"]), ("Free", m["free"])]
    b.append(_memory_table(parts, cap))
    b.append(("chart", "memory"))
    return b + _train_sources(res)


def _train_sources(res: TrainReportResult | RunReportResult) -> list[Block]:
    b: list[Block] = [("h", 2, "Assumptions and sources"),
                      ("list", [f"Tool: tpplan {res['tool']['version']}; catalog sha256 "
                                f"`{res['inputs']['catalog_sha256']}`.",
                                "GPU-hours = GPUs x wall-clock hours; $ = GPU-hours x $/GPU-hour at each tier. "
                                "Days assume the run never stops (no failures, restarts or evaluation pauses).",
                                "Step time: 1F1B pipeline with bubble, exposed TP/PP/DP/EP/CP communication and "
                                "calibrated GEMM efficiency (docs/calibration.md); MFU uses Narayanan et al. (2021) "
                                "model FLOPs.", *accuracy_lines(res)]),
                      ("h", 3, "Prices"), _prices_table(res), *_price_legend(res)]
    return b


# ---------------------------------------------------------------------------------------------------
# block renderers
# ---------------------------------------------------------------------------------------------------


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind == "h":
            out.append("#" * blk[1] + " " + md_text(blk[2]) + "\n")
        elif kind == "p":
            out.append(md_text(blk[1]) + "\n")
        elif kind == "list":
            out.append("\n".join(f"- {md_text(x)}" for x in blk[1]) + "\n")
        elif kind == "table":
            out.append(markdown_table(blk[1], blk[2], blk[3]))
        elif kind == "code":
            out.append(f"```\n{blk[1]}\n```\n")
        # charts are HTML / --plot only: markdown stays plain text that pastes anywhere
    return "\n".join(out)


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1b1f24;max-width:1180px;margin:2em auto;
padding:0 1.5em;line-height:1.45;font-size:14px}
h1{font-size:1.6em;border-bottom:2px solid #1f6feb;padding-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;
border-bottom:1px solid #d0d7de;padding-bottom:.15em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top}th{background:#f3f5f8;text-align:left}
td[style*="right"],th[style*="right"]{white-space:nowrap}tr:nth-child(even) td{background:#fafbfc}
code{background:#f3f5f8;padding:1px 4px;border-radius:3px;font-size:12px;word-break:break-all}
.chart{margin:1em 0;max-width:100%}.chart svg{max-width:100%;height:auto}.note{color:#57606a;font-size:12px}
@media print{body{max-width:none;margin:0;font-size:11px}h2{break-after:avoid}table,.chart{break-inside:avoid}
a{color:inherit}}
"""


def to_html(blocks: list[Block], charts: dict[str, str], title: str) -> str:
    """The report as one self-contained HTML page: the markdown of ``to_markdown`` rendered by markdown-it-py
    (CommonMark plus tables; raw HTML off, so every catalog string is escaped), with the charts' SVG between
    the blocks where they stand."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style></head><body>"]
    pending: list[Block] = []

    def flush() -> None:
        if pending:
            out.append(md.render(to_markdown(pending)).rstrip("\n"))
            pending.clear()

    for blk in blocks:
        if blk[0] != "chart":
            pending.append(blk)
            continue
        flush()
        svg = charts.get(blk[1])
        if svg:
            out.append(f'<div class="chart">{svg}</div>')
        elif charts.get("_missing"):
            out.append(f'<p class="note">{html.escape(charts["_missing"])}</p>')
    flush()
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def comparison_csv(res: ReportResult) -> str:
    """The comparison rows in base units (seconds, tokens/s, USD, bytes) for spreadsheets."""
    if "runs" in res:
        return csv_text(["gpu", "gpu_hours", "usd_low", "usd_typical", "usd_high"],
                        [[r["gpu"], r["gpu_hours"], *[r["usd_total_by_tier"][t] for t in ("low", "typical", "high")]]
                         for r in res["runs"]])
    if res["kind"] == "train":
        return csv_text(["gpu", "gpus", "nodes", "tp", "pp", "dp", "cp", "ep", "micro_batch", "step_time_s", "mfu",
                         "days", "gpu_hours", "usd_low", "usd_typical", "usd_high"],
                        [[c["layout"][k] for k in ("gpu", "gpus", "nodes", "tp", "pp", "dp", "cp", "ep", "micro_batch")]
                         + [c["train"]["step_time_s"], c["train"]["mfu"], c["train"]["days"], c["train"]["gpu_hours"]]
                         + [c["cost"]["usd_total_by_tier"].get(t) for t in ("low", "typical", "high")]
                         for c in res["comparison"]])
    headers = ["gpu", "gpus", "nodes", "tp", "pp", "dp", "cp", "ep", "concurrency", "memory_per_gpu_bytes",
               "headroom_fraction", "ttft_s", "tpot_s", "request_latency_s", "throughput_tokens_per_s",
               "usd_per_hour", "usd_per_million_tokens_low", "usd_per_million_tokens_typical",
               "usd_per_million_tokens_high", "usd_per_month"]
    rows = []
    for c in res["comparison"]:
        t = c["cost"]["usd_per_million_tokens_by_tier"]
        rows.append([c["layout"][k] for k in ("gpu", "gpus", "nodes", "tp", "pp", "dp", "cp", "ep", "concurrency")]
                    + [c["memory_per_gpu_bytes"]["total"], round(c["headroom_fraction"], 4)]
                    + [c["serve"][k] for k in ("ttft_s", "tpot_s", "request_latency_s", "throughput_tokens_per_s")]
                    + [c["cost"]["usd_per_hour"], t["low"], t["typical"], t["high"], c["cost"]["usd_per_month"]])
    return csv_text(headers, rows)


@dataclass(frozen=True)
class Stamped:
    """A report result and its optional time stamp (report --stamp): what the report's formats render."""

    res: ReportResult
    stamp: str | None = None


def _blocks(v: Stamped) -> list[Any]:
    res = v.res
    if res["kind"] == "serve":
        return serve_blocks(res, v.stamp)
    return run_blocks(res, v.stamp) if "runs" in res else train_blocks(res, v.stamp)


def report_markdown(v: Stamped) -> str:
    return to_markdown(_blocks(v))


def report_html(v: Stamped) -> str:
    """The report as one HTML page with its charts inline (or a line saying how to get them)."""
    from tpplan.render import charts

    blocks = _blocks(v)
    svgs: dict[str, str] = (charts.svg_strings(v.res) if charts.available()
                            else {"_missing": "Charts omitted: " + charts.INSTALL_HINT})
    return to_html(blocks, svgs, str(blocks[0][2]))


def report_csv(v: Stamped) -> str:
    return comparison_csv(v.res)
