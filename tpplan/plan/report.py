"""``tpplan report``: the data of a procurement report (serving or training), as plain dicts.

The report reuses the recommend search (one vectorized evaluation per GPU type) and adds what a buyer needs:
the best layout on every GPU type with $ at each price tier and per month, where the bytes go, how $ per 1M
tokens moves with price and context length, and every assumption with its source. Rendering (markdown, HTML,
CSV, charts) lives in ``tpplan.render.report``; nothing here prints or reads the clock.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from tpplan.catalog import accuracy
from tpplan.catalog.spec import GpuSpec, ModelSpec
from tpplan.engine import cost
from tpplan.engine.workload import ServeWorkload, TrainWorkload
from tpplan.plan import serve as planner
from tpplan.plan.serve import Constraints, Objective, Pricing

if TYPE_CHECKING:
    from tpplan import result_types as rt

OBJECTIVE_KEY = {"latency": ("serve", "request_latency_s", "lower"),
                 "throughput": ("serve", "throughput_tokens_per_s_per_gpu", "higher"),
                 "cost": ("cost", "usd_per_million_tokens", "lower")}
OBJECTIVE_WORDS = {"latency": "request latency", "throughput": "output tokens/s per GPU",
                   "cost": "$ per 1M output tokens"}


def _sort_key(ev: planner.ServeEval, r: int, objective: str) -> tuple[float, int, float]:
    """Row ``r``'s objective (lower is better: throughput negated), then fewer GPUs, then $/hour: the figures
    its estimate object reports (OBJECTIVE_KEY), read from the evaluation."""
    assert ev.load is not None
    gpus = planner.deployment(ev, r)[1]
    v = {"latency": lambda: planner._f(ev.load.request_latency[r]),
         "throughput": lambda: planner._f(ev.load.output_tokens_per_s[r]) / gpus,
         "cost": lambda: planner._f(ev.usd_per_mtok[r])}[objective]()
    return (-v if OBJECTIVE_KEY[objective][2] == "higher" else v, gpus, planner._f(ev.usd_per_hour[r]))


def _with_tiers(c: rt.ServeEstimate, ev: planner.ServeEval, r: int, pricing: Pricing,
                utilization: float) -> rt.ServeEstimate:
    """Row ``r``'s estimate object with what a buyer adds: $ at each price tier and per month, free memory."""
    assert ev.load is not None
    n = planner.deployment(ev, r)[1]
    tps = planner._f(ev.load.output_tokens_per_s[r])
    tiers = pricing.tiers(ev.ctx.gpu)
    c["cost"]["usd_per_hour_by_tier"] = {t: n * p for t, p in tiers.items()}
    c["cost"]["usd_per_million_tokens_by_tier"] = {
        t: float(cost.usd_per_million_tokens(n * p, tps)) for t, p in tiers.items()}
    c["cost"]["usd_per_month"] = float(cost.monthly_cost(planner._f(ev.usd_per_hour[r]), utilization))
    cap, total, usable = ev.mem.capacity, planner._f(ev.mem.total[r]), planner._f(ev.mem.usable[r])
    c["memory_per_gpu_bytes"]["free"] = max(0.0, cap - total)
    c["headroom_fraction"] = (usable - total) / cap
    return c


def serve_report(model: ModelSpec, gpus: list[GpuSpec], w: ServeWorkload, cons: Constraints, pricing: Pricing,
                 objective: str = "cost", utilization: float = 1.0, contexts: list[int] | None = None,
                 gpus_per_node: int | None = None, digest: str = "", disagg: bool = False) -> rt.ServeReportResult:
    """Best layout per GPU type, the winner and runner-up, memory, sensitivity, assumptions; with ``disagg``
    the cheapest prefill / decode pools against the winner (planner.recommend_disagg)."""
    obj: Objective = objective  # type: ignore[assignment]
    s = planner.search_serve(model, gpus, w, cons, pricing, obj, gpus_per_node)
    best: list[tuple[planner.ServeEval, int, planner.Bands]] = []  # each GPU type's pick
    blocked: list[rt.BlockedGpu] = []
    scatter: list[rt.ChartPoint] = []
    for ev, gpu in zip(s.evals, gpus, strict=True):
        sub = dataclasses.replace(s, evals=[ev], seconds=0.0, layouts=len(ev.g))
        pick = planner.rank_serve(sub, obj, 12)
        if not pick:
            counts = planner.rejected_counts(sub)
            blocked.append({"gpu": gpu.name, "rejected": counts,
                            "why": planner.relax_hints(sub, cons, w)[:1] or [next(iter(counts), "no layout")]})
            continue
        r = pick[0][1]
        best.append((ev, r, planner.serve_bands(ev, np.array([r]))[0]))
        for _, rr in pick:
            scatter.append({"gpu": gpu.name, "usd_per_million_tokens": float(ev.usd_per_mtok[rr]),
                            "request_latency_s": float(ev.load.request_latency[rr]) if ev.load else 0.0,
                            "gpus": int(ev.g.gpus[rr])})
    best.sort(key=lambda x: _sort_key(x[0], x[1], objective))
    rows = [_with_tiers(planner.serve_object(ev, r, b), ev, r, pricing, utilization) for ev, r, b in best]
    res: rt.ServeReportResult = {
        "schema_version": planner.SCHEMA_VERSION, "tool": planner.tool_info(), "kind": "serve",
        "accuracy": accuracy.measured("serve"),
        "inputs": {**planner.serve_inputs(model, gpus, w, pricing, digest), "objective": objective,
                   "utilization": utilization,
                   "constraints": cons.to_json()},
        "comparison": rows, "blocked": blocked, "rejected": planner.rejected_counts(s),
        "layouts_evaluated": s.layouts,
        "pareto": [{"gpu": s.evals[k].ctx.gpu.name, "usd_per_million_tokens": float(s.evals[k].usd_per_mtok[r]),
                    "request_latency_s": float(_latency(s.evals[k])[r]),
                    "layout": _label(s.evals[k], r)} for k, r in planner.pareto_serve(s)],
        "scatter": scatter, "prices": _price_rows(gpus, pricing),
    }
    if rows:
        win = rows[0]
        res["winner"] = win
        res["runner_up"] = rows[1] if len(rows) > 1 else None
        wlo, whi = planner.objective_band(*best[0], objective)
        res["too_close_to_call"] = [ev.ctx.gpu.name for ev, r, b in best[1:]
                                    if (band := planner.objective_band(ev, r, b, objective))[0] <= whi
                                    and band[1] >= wlo]
        res["serving_command"] = planner.serving_command(best[0][0], best[0][1])
        ctx = best[0][0].ctx
        wgpu = ctx.gpu
        res["assumptions"] = planner.assumptions(ctx, pricing)
        res["sensitivity"] = {"context": _context_sensitivity(model, wgpu, w, cons, pricing, obj, contexts,
                                                              gpus_per_node)}
        if w.cached_prompt_tokens or w.speculative is not None:
            res["features"] = _with_and_without(model, wgpu, w, cons, pricing, obj, gpus_per_node, best[0][:2])
    if disagg:
        cheap = planner.cheapest_feasible(s)
        agg_best = None if cheap is None else (s.evals[cheap[0]], cheap[1])
        res["disaggregated"] = planner.recommend_disagg(model, gpus, w, cons, pricing, agg_best, gpus_per_node)
    return res


def _feature_row(ev: planner.ServeEval, r: int) -> rt.FeatureRow:
    """Row ``r``'s layout, latencies, throughput and cost, as its estimate object reports them."""
    le = ev.load
    assert le is not None
    f = planner._f
    return {"layout": planner.layout_object(ev, r), "ttft_s": f(le.load.ttft[r]), "tpot_s": f(le.load.tpot[r]),
            "request_latency_s": f(le.request_latency[r]), "throughput_tokens_per_s": f(le.output_tokens_per_s[r]),
            "usd_per_hour": f(ev.usd_per_hour[r]), "usd_per_million_tokens": f(ev.usd_per_mtok[r])}


def _with_and_without(model: ModelSpec, gpu: GpuSpec, w: ServeWorkload, cons: Constraints, pricing: Pricing,
                      objective: Objective, gpus_per_node: int | None,
                      win: tuple[planner.ServeEval, int]) -> rt.FeatureComparison:
    """The winner's GPU type with prefix caching / speculative decoding as given and without either: the best
    layout of each, at the same rate, SLOs and objective (the report's 'with and without' section)."""
    out: rt.FeatureComparison = {"gpu": gpu.name, "with": _feature_row(*win), "without": None,
                                 "features": planner.serve_features(*win)}
    s = planner.search_serve(model, [gpu], w.plain(), cons, pricing, objective, gpus_per_node)
    pick = planner.rank_serve(s, objective, 1)
    if pick:
        out["without"] = _feature_row(s.evals[0], pick[0][1])
    return out


def _latency(ev: planner.ServeEval) -> Any:
    assert ev.load is not None
    return ev.load.request_latency


def _label(ev: planner.ServeEval, r: int) -> str:
    g = ev.g
    parts = [f"TP{int(g.tp[r])}"]
    for name, v in (("PP", g.pp), ("CP", g.cp), ("EP", g.ep), ("DP", g.dp)):
        if int(v[r]) > 1:
            parts.append(f"{name}{int(v[r])}")
    return f"{int(g.gpus[r])}x {ev.ctx.gpu.name} {'/'.join(parts)}"


def _context_sensitivity(model: ModelSpec, gpu: GpuSpec, w: ServeWorkload, cons: Constraints, pricing: Pricing,
                         objective: Objective, contexts: list[int] | None,
                         gpus_per_node: int | None) -> list[rt.ContextRow]:
    """The best layout on the winner's GPU type at each context length (same output length)."""
    out = []
    wanted = contexts or [8_000, 32_000, 128_000]
    for c in sorted({*wanted, w.ctx}):
        if c > model.max_position_embeddings or c <= w.output_len:
            continue
        wc = dataclasses.replace(w, ctx=c, input_len=c - w.output_len)
        s = planner.search_serve(model, [gpu], wc, cons, pricing, objective, gpus_per_node)
        pick = planner.rank_serve(s, objective, 1)
        row: rt.ContextRow = {"ctx_tokens": c, "requested": c == w.ctx, "gpu": gpu.name, "layout": None}
        if pick:
            ev = s.evals[0]
            r = pick[0][1]
            tiers = pricing.tiers(gpu)
            n = int(ev.g.gpus[r])
            le = ev.load
            assert le is not None
            n = int(le.gpus[r])
            tps = float(le.output_tokens_per_s[r])
            row.update({"layout": _label(ev, r), "gpus": n, "concurrency": float(le.load.in_system[r]),
                        "tpot_s": float(le.load.tpot[r]), "ttft_s": float(le.load.ttft[r]),
                        "throughput_tokens_per_s": tps,
                        "usd_per_million_tokens_by_tier": {
                            t: float(cost.usd_per_million_tokens(n * p, tps)) for t, p in tiers.items()}})
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------


def run_report(model: ModelSpec | None, gpus: list[GpuSpec], gpu_hours: float, pricing: Pricing,
               digest: str = "") -> rt.RunReportResult:
    """The $ of a run of known size on each GPU type at each price tier: $ = GPU-hours x $/GPU-hour
    (DeepSeek-V3: 2,788K H800-hours x $2 = $5.576M)."""
    runs: list[rt.RunCost] = []
    for g in gpus:
        tiers = pricing.tiers(g)
        runs.append({"gpu": g.name, "gpu_hours": gpu_hours, "usd_per_gpu_hour_by_tier": tiers,
                     "usd_total_by_tier": {t: float(cost.run_cost(gpu_hours, p)) for t, p in tiers.items()}})
    return {"schema_version": planner.SCHEMA_VERSION, "tool": planner.tool_info(), "kind": "train", "accuracy": {},
            "inputs": {"model": model.name if model else None, "gpus": [g.name for g in gpus],
                       "catalog_sha256": digest, "price_tier": pricing.tier,
                       "price_overrides": dict(pricing.overrides), "gpu_hours": gpu_hours},
            "runs": runs, "prices": _price_rows(gpus, pricing)}


def train_report(model: ModelSpec, gpus: list[GpuSpec], tw: TrainWorkload, pricing: Pricing,
                 search: dict[str, tuple[rt.TrainRecommendResult, list[tuple[Any, int]]]],
                 digest: str = "") -> rt.TrainReportResult:
    """Per GPU type: the best training layout (``search``: each GPU's ``recommend_train`` result and the
    evaluation and row of its candidates) with GPU-hours, days and $ at each tier."""
    from tpplan.plan import train as training

    best = []  # (days or inf, GPUs, the estimate object) of each GPU type's first candidate
    blocked: list[rt.BlockedGpu] = []
    for g in gpus:
        got = search.get(g.name)
        if got is None or not got[1]:
            blocked.append({"gpu": g.name, "why": got[0].get("relax", []) if got else []})
            continue
        out, picks = got
        ev, r = picks[0]
        c = out["candidates"][0]  # the same row's estimate object (its output, written to below)
        c["memory_per_gpu_bytes"]["free"] = max(0.0, float(ev.mem.capacity - ev.mem.total[r]))
        secs = training.run_seconds(ev, r)
        best.append((secs / 86400 if secs else float("inf"), int(ev.g.gpus[r]), c))
    best.sort(key=lambda x: (x[0], x[1]))
    rows = [c for _, _, c in best]
    res: rt.TrainReportResult = {
        "schema_version": planner.SCHEMA_VERSION, "tool": planner.tool_info(), "kind": "train",
        "accuracy": accuracy.measured("train"),
        "inputs": {"model": model.name, "gpus": [g.name for g in gpus], "catalog_sha256": digest,
                   "price_tier": pricing.tier, "price_overrides": dict(pricing.overrides), "seq_len": tw.seq_len,
                   "global_batch": tw.global_batch, "tokens": tw.tokens, "train_dtype": tw.train_dtype},
        "comparison": rows, "blocked": blocked, "prices": _price_rows(gpus, pricing)}
    if rows:
        res["winner"] = rows[0]
        res["runner_up"] = rows[1] if len(rows) > 1 else None
    return res


def train_report_search(model: ModelSpec, gpus: list[GpuSpec], tw: TrainWorkload, pricing: Pricing, *,
                        global_batch_tokens: str | None, gpus_exact: int | None, max_gpus: int,
                        deadline_days: float | None, budget_usd: str | None, objective: str,
                        gpus_per_node: int | None, digest: str = "", framework: Any = None,
                        max_pp: int | None = None, default_batch: bool = False) -> rt.TrainReportResult:
    """The training report: one ``recommend_train`` search per GPU type (its best plan), then the table.
    ``default_batch``: the workload's global batch is the default one (said in the notes)."""
    from tpplan.plan import train as training

    gpus = training.require_dtype(tw.train_dtype, gpus, every=False)
    search: dict[str, tuple[rt.TrainRecommendResult, list[tuple[Any, int]]]] = {}
    for g in gpus:
        picks: list[tuple[Any, int]] = []
        out = training.recommend_train(
            model, [g], tw, global_batch_tokens=global_batch_tokens, gpus=gpus_exact, max_gpus=max_gpus,
            deadline_days=deadline_days, budget_usd=budget_usd, objective=objective, pricing=pricing, top=1,
            gpus_per_node=gpus_per_node, digest=digest, framework=framework, picked=picks, max_pp=max_pp)
        search[g.name] = (out, picks)
    resolved = training.resolve_global_batch(tw, global_batch_tokens)
    res = train_report(model, gpus, resolved, pricing, search=search, digest=digest)
    if default_batch:
        res["notes"] = [training.default_batch_note(resolved)]
    return res


def _quote(usd_per_hour: float, price: Any) -> rt.PriceQuote:
    """One price tier of a GPU (hardware/*.yaml prices) at the price used."""
    return {"usd_per_hour": usd_per_hour, "as_of": str(price.as_of), "source": price.source}


def _price_rows(gpus: list[GpuSpec], pricing: Pricing) -> list[rt.PriceRow]:
    rows: list[rt.PriceRow] = []
    for g in gpus:
        tiers = pricing.tiers(g)
        src = pricing.override_source(g)
        low, typical, high = (_quote(tiers[t], getattr(g.prices, t)) for t in ("low", "typical", "high"))
        rows.append({"gpu": g.name, "low": low, "typical": typical, "high": high,
                     "override": src is not None, "override_source": src[1] if src else None,
                     "override_as_of": src[0] if src else None})
    return rows
