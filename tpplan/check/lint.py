"""Judging deployment files: each document's Settings evaluated by the planner (memory, time under load, cost) and
the rules' findings; the file globbing and the entry points (``check_paths``, ``check_text``)."""

from __future__ import annotations

import functools
import glob
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tpplan.check.deployment import (
    _INTERNAL,
    _QUIET_KEYS,
    ENGINE_KEYS,
    Settings,
    _apply_defaults,
    _Doc,
    _Input,
    _normalise,
    _pool_sections,
    _resolve,
    _server_argv,
    _snake,
)
from tpplan.check.rules import RULE_BY_ID, Finding, Level, Report
from tpplan.engine import grid
from tpplan.engine.grid import RULE_OF, Reason
from tpplan.engine.load import MAX_UTILIZATION
from tpplan.errors import TpplanError
from tpplan.plan import serve as planner
from tpplan.units import format_sig
from tpplan.yamlio import Located, load_documents, read_text


def check_document(doc: _Doc, cat: Any, pricing: planner.Pricing, base_dir: Path,
                   defaults: dict[str, Any] | None = None) -> list[Finding]:
    out: list[Finding] = []
    file = doc.loc.file
    if not isinstance(doc.loc.data, dict):
        out.append(Finding("TPP100", "error", file, *doc.loc.doc_mark,
                           "a deployment document must be a mapping of settings (key: value)",
                           fix="See `tpplan check --help` for an example.", document=doc.index))
        return out
    sections = _pool_sections(doc.loc.data)
    if sections and doc.pool is None:
        views = [_Doc(loc=doc.loc, index=doc.index, pool=(sections[r], r)) for r in ("prefill", "decode")]
        found = [f for v in views for f in check_document(v, cat, pricing, base_dir, defaults)]
        seen: set[tuple[str, int, int, str]] = set()
        for f in found:  # a shared key's finding once, not once per pool
            k = (f.rule, f.line, f.column, f.message)
            if k not in seen:
                seen.add(k)
                out.append(f)
        return out
    _normalise(doc, out)
    try:
        _apply_defaults(doc, defaults)
        s = _resolve(doc, cat, base_dir)
    except _Input as exc:
        # point at the offending value when there is one (unknown model name, bad number)
        line, col = (doc.loc.value_marks.get(exc.key) or doc.at(exc.key)) if exc.key else doc.loc.doc_mark
        out.append(Finding("TPP100", "error", file, line, col, str(exc), doc.jpath(exc.key) if exc.key else "$",
                           exc.fix, document=doc.index))
        return out
    if doc.pool is not None:
        out.extend(_pool_findings(doc, s, pricing))
        # the pool's rate and SLO are judged by the disaggregated model above, not as an aggregated engine
        s = replace(s, rate=None, slo={})
    out.extend(evaluate(doc, s, pricing))
    return out


def _pool_findings(doc: _Doc, s: Settings, pricing: planner.Pricing) -> list[Finding]:
    """TPP023: one pool of a disaggregated deployment at the document's rate (tpplan/plan/disagg.py): the prefill
    pool's TTFT (without the KV transfer, which depends on the other pool) or the decode pool's TPOT within
    the SLO, and its replicas' sustainable rate at least the rate."""
    from tpplan.engine.workload import Context
    from tpplan.plan import disagg

    assert doc.pool is not None
    role = doc.pool[1]
    if s.rate is None:
        return []
    g = grid.make(s.tp, s.pp, 1, s.cp, s.ep)
    ctx = Context(model=s.model, gpu=s.gpu, serve=s.workload, gpus_per_node=s.gpus_per_node)
    price = s.price_override if s.price_override is not None else pricing.price(s.gpu)
    slo_key = "ttft_s" if role == "prefill" else "tpot_s"
    slo = s.slo.get(slo_key, (None, ()))[0]
    fn = disagg.prefill_pool if role == "prefill" else disagg.decode_pool
    p = fn(ctx, g, s.rate / s.dp, None, 1.0, price, True)
    lat = float(p.latency[0]) if np.isfinite(p.replicas[0]) else float("inf")
    sat = float(p.saturation[0])
    what = "TTFT (before the KV hand-off)" if role == "prefill" else "TPOT"
    if s.rate > s.dp * sat * (1 - 1e-9):
        need = int(np.ceil(s.rate / max(sat * MAX_UTILIZATION, 1e-300)))
        return [_find(doc, "TPP023", "dp", f"the {role} pool's {s.dp} replica(s) saturate at {format_sig(s.dp * sat)} "
                      f"requests/s, below the rate {s.rate:g}/s", suggestion={"replicas": need},
                      fix=f"Use at least {need} {role} replicas ({MAX_UTILIZATION:.0%} of saturation each).")]
    if slo is not None and lat > slo:
        return [_find(doc, "TPP023", "dp", f"the {role} pool's {what} at {s.rate:g} requests/s over {s.dp} "
                      f"replica(s) is {_ms(lat)}, above the SLO {_ms(slo)}")]
    return []


def _find(doc: _Doc, rule: str, anchor: str, message: str, fix: str = "",
          suggestion: dict[str, Any] | None = None, level: Level | None = None) -> Finding:
    """A finding at the user's key for ``anchor`` (or the nearest thing they wrote)."""
    line, col = doc.at(anchor) if anchor in doc.keys else doc.at("model")
    return Finding(rule, level or RULE_BY_ID[rule].level, doc.loc.file, line, col, message,
                   doc.jpath(anchor) if anchor in doc.keys else "$", fix or RULE_BY_ID[rule].fix,
                   suggestion or {}, doc.index)


def evaluate(doc: _Doc, s: Settings, pricing: planner.Pricing) -> list[Finding]:
    """The rules, on the same vectorized evaluation ``estimate`` and ``recommend`` use."""
    from tpplan.engine.workload import Context

    m, gpu, w = s.model, s.gpu, s.workload
    out: list[Finding] = []
    tp_key = doc.shown("tp")
    g0 = grid.make(s.tp, s.pp, s.dp, s.cp, s.ep, w.concurrency)
    bits = int(grid.structural_reasons(m, g0, w.ctx)[0])
    valid_tp = [t for t in m.valid_tp() if t <= 1024]
    a = m.attention
    if bits & Reason.HEADS_NOT_DIVISIBLE:
        out.append(_find(doc, RULE_OF[Reason.HEADS_NOT_DIVISIBLE], "tp",
                         f"{tp_key} ({s.tp}) must divide the number of attention heads "
                         f"({a.num_heads}) of {m.name}", f"Use one of {valid_tp}.", {tp_key: valid_tp}))
    elif bits & Reason.KV_HEADS_NOT_DIVISIBLE:
        out.append(_find(doc, RULE_OF[Reason.KV_HEADS_NOT_DIVISIBLE], "tp",
                         f"{tp_key} ({s.tp}) must divide the {a.num_kv_heads} KV heads "
                         f"of {m.name} or be a multiple of them", f"Use one of {valid_tp}.", {tp_key: valid_tp}))
    ep_anchor = "ep" if "ep" in doc.keys else "enable_ep"
    if bits & Reason.EP_ON_DENSE_MODEL:
        out.append(_find(doc, RULE_OF[Reason.EP_ON_DENSE_MODEL], ep_anchor,
                         f"{m.name} is a dense model (no experts); expert "
                         f"parallelism (size {s.ep}) does not apply"))
    if bits & Reason.EXPERTS_NOT_DIVISIBLE:
        assert m.moe is not None
        valid = grid.divisors(m.moe.num_experts)
        how = "" if "ep" in doc.keys else f" (vLLM: EP = TP x DP = {s.ep})"
        out.append(_find(doc, RULE_OF[Reason.EXPERTS_NOT_DIVISIBLE], ep_anchor,
                         f"expert-parallel size {s.ep}{how} must divide the "
                         f"{m.moe.num_experts} experts of {m.name}", f"Use an EP size among {valid}.",
                         {"expert_parallel_size": valid}))
    elif bits & Reason.EP_NOT_IN_GROUP:
        out.append(_find(doc, RULE_OF[Reason.EP_NOT_IN_GROUP], ep_anchor,
                         f"expert-parallel size {s.ep} must divide TP x DP x CP "
                         f"({s.tp * s.dp * s.cp}); experts are spread over those ranks"))
    if bits & Reason.PP_EXCEEDS_LAYERS:
        out.append(_find(doc, RULE_OF[Reason.PP_EXCEEDS_LAYERS], "pp",
                         f"{doc.shown('pp')} ({s.pp}) exceeds the {m.num_layers} layers "
                         f"of {m.name}", f"Use at most {m.num_layers}.", {doc.shown("pp"): [1, m.num_layers]}))
    if bits & Reason.CP_NOT_DIVIDING:
        out.append(_find(doc, RULE_OF[Reason.CP_NOT_DIVIDING], "cp",
                         f"{doc.shown('cp')} ({s.cp}) must divide {doc.shown('ctx')} "
                         f"({w.ctx})"))
    if w.ctx > m.max_position_embeddings:
        out.append(_find(doc, RULE_OF[Reason.CTX_ABOVE_MODEL_MAX], "ctx",
                         f"{doc.shown('ctx')} ({w.ctx:,}) exceeds {m.name}'s "
                         f"max_position_embeddings ({m.max_position_embeddings:,}); vLLM refuses it",
                         f"Use {doc.shown('ctx')}: {m.max_position_embeddings} or less.",
                         {doc.shown("ctx"): m.max_position_embeddings}))
    if bits:
        return out  # memory and time of an impossible layout would mislead
    ctx = Context(model=m, gpu=gpu, serve=w, gpus_per_node=s.gpus_per_node)
    if s.price_override is not None:
        pricing = planner.Pricing(tier=pricing.tier, overrides={**pricing.overrides, gpu.name: s.price_override})
    ev = _evaluate(ctx, g0, pricing, s)
    # the same deployment at every TP size within a node, evaluated once when a fix needs it
    alternatives = functools.cache(lambda: _tp_grid(ctx, s, pricing))
    r = int(ev.reasons[0])
    mem = ev.mem
    gib = 2**30
    if r & Reason.WEIGHTS_DONT_FIT:
        need = float(mem.weights[0] + mem.activations[0] + mem.overhead[0])
        sugg = _tp_that_clear(alternatives(), int(Reason.WEIGHTS_DONT_FIT | Reason.KV_BELOW_ONE_REQUEST))
        out.append(_find(doc, RULE_OF[Reason.WEIGHTS_DONT_FIT], "tp", f"{m.name} on {s.tp * s.pp} x {gpu.name} needs "
                         f"{need / gib:.1f} GiB per GPU before any KV cache (weights "
                         f"{float(mem.weights[0]) / gib:.1f} GiB in {w.weight_dtype}); "
                         f"{float(mem.usable[0]) / gib:.1f} "
                         f"GiB usable ({w.gpu_memory_utilization:g} x {mem.capacity / gib:.1f} GiB)",
                         _tp_fix(tp_key, sugg), {tp_key: sugg} if sugg else {}))
        return out
    if r & Reason.KV_BELOW_ONE_REQUEST:
        fit = int(min(mem.max_ctx_one_sequence[0], w.ctx))
        sugg = _tp_that_clear(alternatives(), int(Reason.WEIGHTS_DONT_FIT | Reason.KV_BELOW_ONE_REQUEST))
        ck = doc.shown("ctx")
        tpfix = _tp_fix(tp_key, sugg)
        out.append(_find(doc, RULE_OF[Reason.KV_BELOW_ONE_REQUEST], "ctx",
                         f"the KV cache of one {w.ctx:,}-token sequence needs "
                         f"{float(mem.kv_bytes_per_sequence[0]) / gib:.2f} GiB per GPU but "
                         f"{float(mem.kv_pool[0]) / gib:.2f} "
                         "GiB are left after weights, activations and runtime overhead; "
                         f"the largest {ck} that fits is {fit:,}",
                         f"Set {ck}: {fit} or less, "
                         + ("use kv_cache_dtype: fp8, " if w.kv_dtype not in ("fp8", "int8") else "")
                         + "or " + tpfix[0].lower() + tpfix[1:],
                         {ck: fit, **({tp_key: sugg} if sugg else {})}))
        return out
    timed = ev
    if r & Reason.CONCURRENCY_DOESNT_FIT:
        fits = int(mem.max_concurrency[0])
        out.append(_find(doc, RULE_OF[Reason.CONCURRENCY_DOESNT_FIT], "concurrency",
                         f"{w.concurrency} sequences of {w.ctx:,} tokens need "
                         f"{float(mem.kv_bytes_per_sequence[0]) * w.concurrency / gib:.1f} GiB of KV cache per GPU; "
                         f"{fits} fit (the engine queues or preempts the rest)",
                         f"Set {doc.shown('concurrency')}: {fits}, or add GPUs.",
                         {doc.shown("concurrency"): fits}))
        timed = _evaluate(ctx, grid.make(s.tp, s.pp, s.dp, s.cp, s.ep, max(fits, 1)), pricing, s)
    assert timed.load is not None
    ld = timed.load.load
    ttft, tpot = float(ld.ttft[0]), float(ld.tpot[0])
    if s.rate is not None:
        where = f"at {s.rate:g} requests/s over {s.dp} replica(s)"
        if not ld.stable[0]:
            where += (f", above the {format_sig(float(ld.saturation_rate[0]) * s.dp)} requests/s they can serve (the "
                      "queue grows without bound)")
    else:
        clients = int(timed.g.concurrency[0])
        where = f"with {clients} request{'s' if clients > 1 else ''} in flight per replica"
    req = f"a {w.input_len:,}-token prompt {where}"
    if s.rate is not None and not ld.stable[0]:
        # the root cause of any SLO finding below, and a failure on its own: the load model's saturation rate
        # (tpplan/engine/load.py), the replicas each planned at MAX_UTILIZATION of it as recommend sizes them
        sat = float(ld.saturation_rate[0])
        need = int(np.ceil(s.rate / max(sat * MAX_UTILIZATION, 1e-300)))
        dp_key = doc.shown("dp")
        out.append(_find(doc, "TPP024", "rate", f"{s.dp} replica(s) of {s.tp * s.pp * s.cp} x {gpu.name} saturate "
                         f"at {format_sig(sat * s.dp)} requests/s of {w.input_len:,}-token prompts and "
                         f"{w.output_len:,} output tokens, below the rate {s.rate:g}/s: the queue grows without bound",
                         f"Set {dp_key}: {need} ({MAX_UTILIZATION:.0%} of saturation each), raise "
                         f"{tp_key}, or use faster GPUs.", {dp_key: need}))
    if "ttft_s" in s.slo and ttft > s.slo["ttft_s"][0]:
        lim, path = s.slo["ttft_s"]
        out.append(_at(doc, path, RULE_OF[Reason.TTFT_SLO], f"predicted mean TTFT {_ms(ttft)} for {req} exceeds the "
                       f"SLO of {_ms(lim)}", _slo_fix(alternatives(), "ttft", lim, tp_key)))
    if "tpot_s" in s.slo and tpot > s.slo["tpot_s"][0]:
        lim, path = s.slo["tpot_s"]
        out.append(_at(doc, path, RULE_OF[Reason.TPOT_SLO],
                       f"predicted mean TPOT {_ms(tpot)} {where} exceeds the SLO of "
                       f"{_ms(lim)}", _slo_fix(alternatives(), "tpot", lim, tp_key)))
    if "usd_per_hour" in s.budget and float(ev.usd_per_hour[0]) > s.budget["usd_per_hour"][0]:
        lim, path = s.budget["usd_per_hour"]
        n = int(g0.gpus[0])
        out.append(_at(doc, path, RULE_OF[Reason.BUDGET], f"{n} x {gpu.name} at ${ev.price:.2f}/GPU-hour "
                       f"({pricing.tier} tier) cost ${float(ev.usd_per_hour[0]):.2f}/hour, above the budget of "
                       f"${lim:.2f}/hour", f"At most {int(lim // ev.price) if ev.price > 0 else 0} "
                       f"{gpu.name} GPUs fit the budget."))
    node = ctx.node_size
    domain = grid.tp_domain(gpu, node)  # the node, or a multi-node NVLink domain (GB200 NVL72: 72)
    if s.tp > max(node, domain):
        out.append(_find(doc, RULE_OF[Reason.CROSS_NODE_TP], "tp",
                         f"{tp_key} ({s.tp}) spans nodes of {node} GPUs: every layer's "
                         "all-reduces cross the network", f"Use {tp_key} <= {node} and "
                         f"pipeline_parallel_size {math.ceil(s.tp / node)} across nodes."))
    elif s.tp > domain:
        out.append(_find(doc, RULE_OF[Reason.CROSS_NODE_TP], "tp", f"{tp_key} ({s.tp}) spans more GPUs than the "
                         f"{gpu.scale_up.domain_gpus}-GPU NVLink domain of {gpu.name}: all-reduces cross PCIe"))
    if gpu.pcie_only and s.tp > 2:
        out.append(_find(doc, "TPP031", "tp", f"{gpu.name} has no GPU-to-GPU link: {tp_key} {s.tp} all-reduces "
                         "go over PCIe every layer"))
    return out


def _at(doc: _Doc, path: tuple[str, ...], rule: str, message: str, fix: str) -> Finding:
    line, col = doc.at(path)
    return Finding(rule, RULE_BY_ID[rule].level, doc.loc.file, line, col, message, doc.jpath(path),
                   fix or RULE_BY_ID[rule].fix, {}, doc.index)


def _ms(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _tp_fix(tp_key: str, sugg: list[int]) -> str:
    if sugg:
        return f"Raise {tp_key} to {sugg[0]} (fits: {sugg}), quantize the weights, or use a larger GPU."
    return "No TP size within a node fits: add pipeline_parallel_size, quantize, or use a larger GPU."


def _tp_grid(ctx: Any, s: Settings, pricing: planner.Pricing) -> tuple[list[int], planner.ServeEval]:
    tps = [t for t in s.model.valid_tp() if t <= grid.tp_domain(ctx.gpu, ctx.node_size)]
    g = grid.make(np.array(tps), s.pp, s.dp, s.cp, s.ep if s.ep == 1 else np.array(tps) * s.dp * s.cp,
                  s.workload.concurrency)
    g = g.with_reasons(grid.structural_reasons(s.model, g, s.workload.ctx))
    return tps, _evaluate(ctx, g, pricing, s)


def _evaluate(ctx: Any, g: Any, pricing: planner.Pricing, s: Settings) -> planner.ServeEval:
    """The deployment at its operating point: ``rate`` over its dp replicas, or ``max_num_seqs`` clients per
    replica (every slot busy), as estimate evaluates it (the layout is the file's; TP may cross nodes)."""
    cons = planner.Constraints(max_gpus=1 << 62, allow_cross_node_tp=True, rate_rps=s.rate)
    return planner.evaluate_given(ctx, g, pricing, cons)


def _tp_that_clear(alternatives: tuple[list[int], planner.ServeEval], mask: int) -> list[int]:
    """TP sizes (within a node, same PP/DP) for which none of the ``mask`` reasons holds."""
    tps, ev = alternatives
    structural = int(Reason.HEADS_NOT_DIVISIBLE | Reason.KV_HEADS_NOT_DIVISIBLE | Reason.EXPERTS_NOT_DIVISIBLE
                     | Reason.EP_NOT_IN_GROUP)
    return [t for t, r in zip(tps, ev.reasons.tolist(), strict=True) if not r & (mask | structural)]


def _slo_fix(alternatives: tuple[list[int], planner.ServeEval], which: str, limit: float, tp_key: str) -> str:
    tps, ev = alternatives
    assert ev.load is not None
    vals = ev.load.load.ttft if which == "ttft" else ev.load.load.tpot
    ok = [t for t, v, r in zip(tps, vals.tolist(), ev.reasons.tolist(), strict=True)
          if v <= limit and not r & int(Reason.WEIGHTS_DONT_FIT | Reason.KV_BELOW_ONE_REQUEST
                                        | Reason.HEADS_NOT_DIVISIBLE | Reason.KV_HEADS_NOT_DIVISIBLE)]
    if ok:
        return f"{tp_key}: {ok[0]} meets it (predicted {_ms(float(vals[tps.index(ok[0])]))})."
    return RULE_BY_ID["TPP020" if which == "ttft" else "TPP021"].fix


# ---------------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------------


def expand(patterns: list[str]) -> tuple[list[str], list[Finding]]:
    """Files named by paths, globs (quoted in CI) or folders (their *.yaml / *.yml), in a stable order."""
    files: list[str] = []
    errors: list[Finding] = []
    for p in patterns:
        if any(c in p for c in "*?["):
            hits = _glob(p)
            if not hits:
                errors.append(Finding("TPP100", "error", p, 1, 1, "no file matches this pattern",
                                      fix="Check the path (it is relative to the current directory)."))
            files.extend(h for h in hits if not os.path.isdir(h))
        elif os.path.isdir(p):
            hits = [h for h in _walk(p) if h.endswith((".yaml", ".yml"))]
            if not hits:
                errors.append(Finding("TPP100", "error", p, 1, 1, "folder holds no .yaml or .yml files",
                                      fix="Name the deployment files, or a folder that holds some."))
            files.extend(hits)
        else:
            files.append(p)
    # one file reached by two paths (a link) is checked once
    seen: set[str] = set()
    out = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out, errors


def _walk(top: str) -> list[str]:
    """Files under ``top``, sorted, without following links to folders (a link to '..' would loop)."""
    found = []
    for root, dirs, names in os.walk(top, followlinks=False):
        dirs.sort()
        found += [os.path.join(root, n) for n in names if os.path.isfile(os.path.join(root, n))]
    return sorted(found)


def _glob(pattern: str) -> list[str]:
    """glob.glob, except that ``**`` walks the tree without following links to folders (Python's recursive
    glob follows them, so a link to '..' multiplies the matches at every level)."""
    if "**" not in pattern:
        return sorted(glob.glob(pattern))
    import re

    parts = pattern.split("/")
    fixed = []
    for part in parts:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    base = "/".join(fixed) or ("/" if pattern.startswith("/") else ".")
    rx = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            rx, i = rx + "(?:[^/]*/)*", i + 3
        elif pattern.startswith("**", i):
            rx, i = rx + ".*", i + 2
        elif pattern[i] == "*":
            rx, i = rx + "[^/]*", i + 1
        elif pattern[i] == "?":
            rx, i = rx + "[^/]", i + 1
        else:
            rx, i = rx + re.escape(pattern[i]), i + 1
    matcher = re.compile(rx + r"\Z")
    prefix = "" if fixed else "./"
    return [h for h in _walk(base) if matcher.match(h if fixed else h.removeprefix("./")) or matcher.match(prefix + h)]


def check_paths(patterns: list[str], cat: Any, pricing: planner.Pricing | None = None,
                defaults: dict[str, Any] | None = None) -> Report:
    pricing = pricing or planner.Pricing()
    files, errors = expand(patterns)
    rep = Report(files=files, findings=errors)
    for f in files:
        try:
            text = read_text(Path(f), f)
            docs = load_documents(text, f)
        except TpplanError as exc:
            rep.findings.append(Finding("TPP100", "error", f, exc.line or 1, exc.column or 1, exc.message,
                                        fix=exc.hint or "Check the path, and that the file is UTF-8 YAML."))
            continue
        if not docs:
            rep.findings.append(Finding("TPP100", "error", f, 1, 1, "the file holds no YAML document",
                                        fix="Add a deployment (model:, gpu:, tensor_parallel_size: ...)."))
        skip = [_not_a_deployment(d) for d in docs]
        deploy = [(i, d) for i, (d, no) in enumerate(zip(docs, skip, strict=True), 1) if not no]
        rep.skipped += [{"file": f, "document": i, "reason": "not a deployment: no model, engine or server "
                         "settings (a CI workflow, a manifest without a server container)"}
                        for i, no in enumerate(skip, 1) if no]
        found: list[Finding] = []
        for i, loc in deploy:
            found.extend(check_document(_Doc(loc=loc, index=i), cat, pricing, Path(f).parent, defaults))
        rep.findings.extend(sorted(found, key=lambda x: (x.line, x.column, x.rule)))
        rep.documents += len(deploy)
    return rep


def _not_a_deployment(loc: Located) -> bool:
    """A mapping none of whose settings tpplan or an engine knows, and no server container in it."""
    if not isinstance(loc.data, dict) or not loc.data:
        return False
    import difflib

    known = (set(_INTERNAL) - {"name", "description"}) | ENGINE_KEYS | _QUIET_KEYS | {"x_tpplan"}
    keys = {_snake(k) for k in loc.data}
    if keys & known:
        return False
    # a deployment whose every key is misspelt (modle:, tensor_paralel_size:) is still a deployment: flag it
    choices = sorted(known)
    near = any(difflib.get_close_matches(k, choices, n=1, cutoff=0.75) for k in keys)
    return not near and _server_argv(loc.data, ()) is None


def check_text_docs(docs: list[Located], cat: Any, pricing: planner.Pricing, base_dir: Path,
                    defaults: dict[str, Any] | None = None) -> list[Finding]:
    out: list[Finding] = []
    for i, loc in enumerate(docs, 1):
        out.extend(check_document(_Doc(loc=loc, index=i), cat, pricing, base_dir, defaults))
    return out


def check_text(text: str, file: str, cat: Any, pricing: planner.Pricing | None = None,
               defaults: dict[str, Any] | None = None) -> list[Finding]:
    """Check YAML text (library entry point; used by the tests and the recommend -> check property)."""
    return check_text_docs(load_documents(text, file), cat, pricing or planner.Pricing(), Path("."), defaults)
