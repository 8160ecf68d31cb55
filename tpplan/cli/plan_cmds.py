"""The planning commands: ``estimate``, ``recommend`` and ``report`` (serving and ``--train``)."""

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tpplan.cli.apps import app
from tpplan.cli.edge import (
    _check_max_gpus,
    _check_max_pp,
    _check_prices,
    _constraints,
    _extend_context,
    _fraction,
    _framework_workload,
    _gpu_specs,
    _interleaved,
    _objectives,
    _pool_spec,
    _prices,
    _resolve_model,
    _search_constraints,
    _search_workload,
    _serving,
    _serving_only,
    _stage_split,
    _tok_or_zero,
    _train_defaults,
    _train_workload,
    _training_only,
    _unit,
    _with_attention,
    _with_framework_knobs,
)
from tpplan.cli.options import (
    FEATURE_OPTS,
    LOAD_OPTS,
    MODEL_OPTS,
    PRICE_OPTS,
    SEARCH_OPTS,
    TRAIN_SEARCH_OPTS,
    WORKLOAD_OPTS,
    AttentionOpt,
    CatalogOpt,
    CtxOpt,
    ElementwiseOpt,
    EpOverlapOpt,
    FrameworkOpt,
    GlobalBatchTokensOpt,
    GpuListOpt,
    GradReduceOpt,
    Objective,
    ObjectiveOpt,
    OutFormat,
    OverlapGradOpt,
    ReportFormat,
    _Namespace,
    _with_options,
)
from tpplan.cli.output import _catalog, _check_target, _console, _out, _write_all, set_wide
from tpplan.errors import TpplanError

if TYPE_CHECKING:
    from tpplan import result_types as rt


@app.command()
@_with_options(MODEL_OPTS, WORKLOAD_OPTS, PRICE_OPTS, LOAD_OPTS, FEATURE_OPTS)
def estimate(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog name or alias.")],
    ctx: Annotated[str | None, typer.Option(help="Max tokens per sequence (prompt + output): 128k = 128,000, 128K = 131,072. Required for serving; training uses --seq-len.")] = None,
    tp: Annotated[int, typer.Option(help="Tensor parallel size.")] = 1,
    pp: Annotated[int, typer.Option(help="Pipeline parallel size.")] = 1,
    dp: Annotated[int, typer.Option(help="Data parallel replicas.")] = 1,
    cp: Annotated[int, typer.Option(help="Context parallel size.")] = 1,
    ep: Annotated[int, typer.Option(help="Expert parallel size (MoE only).")] = 1,
    gpus_per_node: Annotated[int | None, typer.Option(help="Override the GPU's node size.")] = None,
    disagg: Annotated[bool, typer.Option("--disagg", help="Serving: estimate a disaggregated deployment at --rate: the --prefill and --decode pools.")] = False,
    prefill: Annotated[str | None, typer.Option("--prefill", help="With --disagg: the prefill pool, e.g. tp=4,replicas=6 (also pp, ep, gpu; default gpu: --gpu).")] = None,
    decode: Annotated[str | None, typer.Option("--decode", help="With --disagg: the decode pool, e.g. tp=8,replicas=2.")] = None,
    train: Annotated[bool, typer.Option("--train", help="Estimate a training step instead of serving.")] = False,
    seq_len: Annotated[str | None, typer.Option(help="Training sequence length: 8k = 8,000, 8K = 8,192.")] = None,
    global_batch: Annotated[str | None, typer.Option(
        help="Training sequences per step (default: the power of two nearest 4M tokens, Llama 2's batch, as a "
             "multiple of micro-batch x dp; the notes say so).")] = None,
    global_batch_tokens: GlobalBatchTokensOpt = None,
    micro_batch: Annotated[int, typer.Option(help="Training micro-batch size.")] = 1,
    tokens: Annotated[str | None, typer.Option(help="Training tokens of the run (15T).")] = None,
    recompute: Annotated[str | None, typer.Option(help="none | selective | full; default: the --framework's first, else selective.")] = None,
    sequence_parallel: Annotated[bool | None, typer.Option(help="Megatron sequence parallelism; default: the --framework's, else on.")] = None,
    attention: AttentionOpt = None,
    zero: Annotated[int | None, typer.Option(help="ZeRO stage 0-3; default: the --framework's first, else 1.")] = None,
    framework: FrameworkOpt = None,
    grad_reduce_dtype: GradReduceOpt = None,
    overlap_grad_reduce: OverlapGradOpt = None,
    elementwise: ElementwiseOpt = None,
    ep_overlap: EpOverlapOpt = False,
    virtual_stages: Annotated[int, typer.Option("--virtual-stages", help="Training: model chunks per pipeline rank (Megatron interleaved 1F1B, --num-layers-per-virtual-pipeline-stage); 1 = plain 1F1B.")] = 1,
    cp_comm_type: Annotated[str, typer.Option(help="Training: context parallelism's K/V exchange (Megatron-core --cp-comm-type): p2p (ring attention, passes behind the block attention) | allgather (the whole K/V gathered per layer, exposed; the Llama 3 paper's; its transient memory is not counted).")] = "p2p",
    shard_group: Annotated[int | None, typer.Option(help="Training: hybrid sharding: ZeRO shards over this many consecutive data-parallel ranks (a node, say) and replicates across the groups (PyTorch FSDP HYBRID_SHARD, torchtitan --parallelism.data_parallel_shard_degree); default: over all of dp x cp.")] = None,
    first_stage_layers: Annotated[int | None, typer.Option(help="Training: layers on the first pipeline stage (Megatron-core --decoder-first-pipeline-num-layers); the middle stages share the rest evenly.")] = None,
    last_stage_layers: Annotated[int | None, typer.Option(help="Training: layers on the last pipeline stage (Megatron-core --decoder-last-pipeline-num-layers), beside the LM head and loss.")] = None,
    train_dtype: Annotated[str | None, typer.Option(help="Training GEMM dtype: bf16 | fp8 (fp8 tensor-core peak, stated efficiency).")] = None,
    breakdown: Annotated[bool, typer.Option("--breakdown", help="Also print where the time goes: each term of the time model per layer and per step (prefill and decode; training: per step), the GEMM term split by operator (qkv_proj, o_proj, mlp_up, mlp_down, router, experts_up, experts_down, lm_head). JSON always carries it.")] = False,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = OutFormat.table,
    catalog: CatalogOpt = None,
    **opts: Any,
) -> None:
    """Memory, time and cost of one layout, in full.

    Example: tpplan estimate --model llama-70b --gpu h100-sxm --tp 4 --ctx 128k --format json
    """
    o = _Namespace(**opts)
    from tpplan.plan import serve as planner

    length = (seq_len or ctx) if train else ctx
    if length is None:
        raise TpplanError("--seq-len (or --ctx) is required with --train" if train else
                          "--ctx is required: the longest sequence (prompt + output) to plan for, e.g. --ctx 32k")
    cat = _catalog(catalog)
    m = _resolve_model(cat, o.model, o.layers, o.hidden, o.heads, o.vocab, o.ffn, o.kv_heads, length)
    m = m if train else _extend_context(m, o.rope_scaling, o.allow_long_context, ctx)
    g = cat.gpu(gpu)
    pricing = _check_prices(cat, _prices(o.price, o.price_tier, o.prices, cat))
    if train:
        import dataclasses

        from tpplan.plan import train as training

        _serving_only(prefix_hit=o.prefix_hit, shared_prefix=o.shared_prefix, speculative=o.speculative,
                      draft_tokens=o.draft_tokens, acceptance=o.acceptance, draft_model=o.draft_model)
        if train_dtype is None and o.weight_dtype is not None:
            from tpplan.plan.train import TRAIN_DTYPES

            if o.weight_dtype.lower() not in TRAIN_DTYPES:
                raise TpplanError(f"--weight-dtype {o.weight_dtype} is a serving checkpoint format; a training run "
                                  f"takes --train-dtype {' | '.join(TRAIN_DTYPES)}")
        prof = cat.framework(framework).framework if framework is not None else None
        if prof is not None and virtual_stages > prof.max_virtual_stages.value:
            raise TpplanError(f"--virtual-stages {virtual_stages}: {framework} runs at most "
                              f"{prof.max_virtual_stages.value} ({prof.max_virtual_stages.source})")
        fw = training.framework_defaults(prof)
        tw = _train_workload(length, global_batch, micro_batch, tokens, recompute or fw["recompute"],
                             sequence_parallel if sequence_parallel is not None else fw["sequence_parallel"],
                             zero if zero is not None else fw["zero"], train_dtype or o.weight_dtype)
        notes = []
        if global_batch and global_batch_tokens:
            raise TpplanError("give the global batch once: --global-batch (sequences) or --global-batch-tokens")
        if global_batch_tokens:  # tokens per step as sequences of seq_len, rounded (as recommend --train)
            from tpplan.units import parse_tokens

            per_step = _unit(parse_tokens, global_batch_tokens, "--global-batch-tokens")
            tw = training.with_batch_tokens(tw, per_step)
            notes += training.batch_notes(global_batch_tokens, per_step, tw.seq_len, tw.global_batch, search=False)
        elif not global_batch:  # the default batch, as a multiple of what one step splits over
            tw = dataclasses.replace(tw, global_batch=training.default_global_batch(tw.seq_len, micro_batch * dp))
            notes.append(training.default_batch_note(tw))
        tw = _with_attention(tw, attention or fw["attention"])
        tw = _with_framework_knobs(tw, fw, grad_reduce_dtype, overlap_grad_reduce, elementwise)
        tw = _interleaved(tw, m, pp, dp, virtual_stages)
        if cp_comm_type not in ("p2p", "allgather"):
            raise TpplanError(f"--cp-comm-type must be p2p or allgather; got {cp_comm_type!r}")
        tw = dataclasses.replace(tw, cp_comm=cp_comm_type)
        if shard_group is not None:
            from tpplan.engine.grid import divisors

            if shard_group < 1 or (dp * cp) % shard_group:
                raise TpplanError(f"--shard-group {shard_group} must divide the data-parallel ranks dp x cp = "
                                  f"{dp * cp} (valid: {', '.join(map(str, divisors(dp * cp)))})")
            if tw.zero == 0:
                raise TpplanError("--shard-group shards the optimizer states: it needs --zero 1, 2 or 3")
            tw = dataclasses.replace(tw, shard_group=shard_group)
        if first_stage_layers is not None or last_stage_layers is not None:
            tw = dataclasses.replace(tw, stage_split=_stage_split(m.num_layers, pp, virtual_stages,
                                                                  first_stage_layers, last_stage_layers))
        if ep_overlap:
            tw = dataclasses.replace(tw, ep_overlap=True)
        tres = training.estimate_train(m, g, tw, tp, pp, dp, cp, ep, pricing, gpus_per_node, cat.digest, notes)
        _render_train_estimate(tres, fmt)
        if breakdown and fmt in (OutFormat.table, OutFormat.markdown):
            from tpplan.render import tables

            _out(tables.train_breakdown_markdown(tres))
        return
    serving_flags = {"--virtual-stages": virtual_stages != 1, "--ep-overlap": ep_overlap,
                     "--shard-group": shard_group is not None, "--cp-comm-type": cp_comm_type != "p2p",
                     "--first-stage-layers": first_stage_layers is not None,
                     "--last-stage-layers": last_stage_layers is not None,
                     "--attention": attention is not None, "--framework": framework is not None,
                     "--recompute": recompute is not None, "--zero": zero is not None,
                     "--sequence-parallel": sequence_parallel is not None,
                     "--grad-reduce-dtype": grad_reduce_dtype is not None,
                     "--overlap-grad-reduce": overlap_grad_reduce is not None,
                     "--elementwise": elementwise is not None, "--global-batch": global_batch is not None,
                     "--global-batch-tokens": global_batch_tokens is not None}
    if any(serving_flags.values()):
        flag = next(k for k, v in serving_flags.items() if v)
        raise TpplanError(f"{flag} applies to training (--train), not to serving")
    w = _serving(o, m, length, cat)
    cons = _constraints(None, None, None, 64, 1, o.rate, o.slo_percentile, o.max_utilization)
    if disagg or prefill or decode:
        _estimate_disagg(m, w, cat, g, pricing, cons, prefill, decode, gpus_per_node, fmt)
        return
    res = planner.estimate_serve(m, g, w, tp, pp, dp, cp, ep, pricing, gpus_per_node, cat.digest, cons)
    from tpplan.render import formats, tables

    formats.emit("estimate", fmt.value, res, _console, _out)
    if breakdown and fmt in (OutFormat.table, OutFormat.markdown):
        _out(tables.breakdown_markdown(res))


def _estimate_disagg(m: Any, w: Any, cat: Any, gpu: Any, pricing: Any, cons: Any, prefill: str | None,
                     decode: str | None, gpus_per_node: int | None, fmt: OutFormat) -> None:
    from tpplan.plan import disagg
    from tpplan.plan import serve as planner

    if cons.rate_rps is None:
        raise TpplanError("estimate --disagg evaluates the two pools at a request rate: give --rate (e.g. --rate "
                          "12/s)")
    pools = {"prefill": _pool_spec(prefill, "--prefill", cat, gpu), "decode": _pool_spec(decode, "--decode", cat, gpu)}
    prices = {p["gpu"].name: pricing.price(p["gpu"]) for p in pools.values()}
    pair = disagg.estimate_pair(m, w, cons.rate_rps, pools, prices, None, None, gpus_per_node, cons.max_utilization)
    res = {"schema_version": planner.SCHEMA_VERSION, "tool": planner.tool_info(),
           "inputs": planner.serve_inputs(m, [p["gpu"] for p in pools.values()], w, pricing, cat.digest),
           "rate_rps": cons.rate_rps, "disaggregated": pair}
    if fmt == OutFormat.json:
        from tpplan.render import to_json

        _out(to_json(res))
    else:
        from tpplan.render import tables

        lines = tables.pair_lines([pair], "Both pools serve the rate." if pair["feasible"]
                                  else "Not feasible: " + "; ".join(pair["problems"]), [])
        if fmt == OutFormat.csv:
            _out("\n".join(lines) + "\n")
        else:
            _out("\n".join(f"- {x}" if fmt == OutFormat.markdown else x for x in lines) + "\n")
    if not pair["feasible"]:
        raise typer.Exit(1)


def _render_train_estimate(res: "rt.TrainEstimateResult", fmt: OutFormat) -> None:
    from tpplan.render import formats

    formats.emit("train-estimate", fmt.value, res, _console, _out)


def _train_search(m: Any, gpu_specs: list[Any], seq_len: str | None, global_batch: str | None, tokens: str | None,
                  train_dtype: str, pricing: Any, digest: str, top: int, *, global_batch_tokens: str | None,
                  gpus: int | None, max_gpus: int, deadline_days: float | None, budget_usd: str | None,
                  objective: str, gpus_per_node: int | None, ep_overlap: bool = False,
                  attention: str | None = None, framework: Any = None, grad_reduce_dtype: str | None = None,
                  overlap_grad_reduce: bool | None = None, elementwise: str | None = None,
                  max_pp: int | None = None) -> "rt.TrainRecommendResult":
    import dataclasses

    from tpplan.plan import train as training

    tw = _search_workload(seq_len, global_batch, tokens, train_dtype, global_batch_tokens)
    tw = _framework_workload(dataclasses.replace(tw, ep_overlap=ep_overlap), framework, attention,
                             grad_reduce_dtype, overlap_grad_reduce, elementwise)
    return training.recommend_train(
        m, gpu_specs, tw, global_batch_tokens=global_batch_tokens, gpus=gpus, max_gpus=max_gpus,
        deadline_days=deadline_days, budget_usd=budget_usd, objective=objective, pricing=pricing,
        top=top, gpus_per_node=gpus_per_node, digest=digest, framework=framework, max_pp=max_pp,
        default_batch=not global_batch and not global_batch_tokens)


@app.command()
@_with_options(MODEL_OPTS, WORKLOAD_OPTS, PRICE_OPTS, LOAD_OPTS, FEATURE_OPTS, SEARCH_OPTS, TRAIN_SEARCH_OPTS)
def recommend(
    ctx_: typer.Context,
    ctx: CtxOpt = "8k",
    gpu: GpuListOpt = None,
    objective: ObjectiveOpt = Objective.latency,
    top: Annotated[int, typer.Option(help="Rows to show.")] = 10,
    pareto: Annotated[bool, typer.Option("--pareto", help="Show the cost-latency Pareto front instead.")] = False,
    explain: Annotated[str | None, typer.Option(help='Why a layout is absent, e.g. "h100-sxm tp=2".')] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Table: every column, whatever the terminal's width (a narrow terminal otherwise leaves the least essential out).")] = False,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = OutFormat.table,
    catalog: CatalogOpt = None,
    **opts: Any,
) -> None:
    """Search every layout on every GPU and rank by latency, throughput or cost.

    Examples:

      tpplan recommend --model llama-70b --ctx 128k

      tpplan recommend --model llama-70b --ctx 32k --objective cost --tpot-slo 50ms --gpu h100 --gpu h200

      tpplan recommend --train --model llama-70b --tokens 15T --seq-len 8192 --global-batch-tokens 16M --max-gpus 1024
    """
    o = _Namespace(**opts)
    from tpplan.plan import serve as planner
    from tpplan.render import formats

    set_wide(wide)
    _check_max_gpus(o.max_gpus)
    _check_max_pp(o.max_pp)
    if top < 1:
        raise TpplanError(f"--top must be a positive integer; got {top}")
    obj = _objectives(ctx_, objective, o.train, o.train_objective)
    cat = _catalog(catalog)
    m = _resolve_model(cat, o.model, o.layers, o.hidden, o.heads, o.vocab, o.ffn, o.kv_heads, (o.seq_len or str(_train_defaults().seq_len)) if o.train else ctx)
    m = m if o.train else _extend_context(m, o.rope_scaling, o.allow_long_context, ctx)
    gpu_specs = _gpu_specs(cat, gpu)
    pricing = _check_prices(cat, _prices(o.price, o.price_tier, o.prices, cat))
    if o.train:
        _serving_only(ttft_slo=o.ttft_slo, tpot_slo=o.tpot_slo, budget_usd_per_hour=o.budget_usd_per_hour, rate=o.rate,
                      slo_percentile=o.slo_percentile, prefix_hit=o.prefix_hit, shared_prefix=o.shared_prefix,
                      speculative=o.speculative, draft_tokens=o.draft_tokens, acceptance=o.acceptance,
                      draft_model=o.draft_model, disagg=o.disagg or None)
        tres = _train_search(m, gpu_specs, o.seq_len, o.global_batch, o.tokens, o.train_dtype, pricing, cat.digest, top,
                            global_batch_tokens=o.global_batch_tokens, gpus=o.gpus, max_gpus=o.max_gpus,
                            deadline_days=o.deadline_days, budget_usd=o.budget_usd, objective=obj,
                            gpus_per_node=o.gpus_per_node, ep_overlap=o.ep_overlap, attention=o.attention,
                            framework=cat.framework(o.framework) if o.framework is not None else None,
                            grad_reduce_dtype=o.grad_reduce_dtype, overlap_grad_reduce=o.overlap_grad_reduce,
                            elementwise=o.elementwise, max_pp=o.max_pp)
        formats.emit("train-recommend", fmt.value, tres, _console, _out)
        if not tres["candidates"]:
            raise typer.Exit(1)
        return
    w = _serving(o, m, ctx, cat)
    cons = _search_constraints(o)
    _training_only(o)
    if o.disagg and cons.rate_rps is None:
        raise TpplanError("--disagg sizes a prefill and a decode pool to a request rate: give --rate (e.g. --rate "
                          "12/s), and the SLOs the pools must meet (--ttft-slo, --tpot-slo)")
    res = planner.recommend_serve(m, gpu_specs, w, cons, pricing, obj, top, pareto, explain,
                                  o.gpus_per_node, cat.digest, disagg=o.disagg)
    formats.emit("recommend", fmt.value, res, _console, _out)
    if not res["candidates"] and not (o.disagg and "disaggregated" in res and res["disaggregated"]["pairs"]):
        raise typer.Exit(1)


@app.command()
@_with_options(MODEL_OPTS, WORKLOAD_OPTS, PRICE_OPTS, LOAD_OPTS, FEATURE_OPTS, SEARCH_OPTS, TRAIN_SEARCH_OPTS)
def report(
    ctx_: typer.Context,
    ctx: CtxOpt = "8k",
    gpu: GpuListOpt = None,
    objective: ObjectiveOpt = Objective.cost,
    utilization: Annotated[str, typer.Option(help="Share of the month the deployment runs and is billed (100%, 0.5).")] = "100%",
    contexts: Annotated[str, typer.Option(help="Context lengths for the sensitivity table.")] = "8k,32k,128k",
    gpu_hours: Annotated[str | None, typer.Option(help="Training: price a run of known size (2788k GPU-hours) instead of searching.")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.markdown,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    plot: Annotated[str | None, typer.Option(help="Also write the charts to FILE.png or FILE.svg (needs the plot extra).")] = None,
    stamp: Annotated[bool, typer.Option("--stamp", help="Print the generation time (off: runs are byte-identical).")] = False,
    catalog: CatalogOpt = None,
    **opts: Any,
) -> None:
    """A procurement-ready report: the recommendation, every GPU type compared at each price tier, memory,
    sensitivity to price and context, and every assumption with its source. Ranked by cost unless --objective.

    Examples:

      tpplan report --model llama-70b --ctx 32k --format html -o report.html --plot charts.png

      tpplan report --train --model llama-70b --tokens 15T --seq-len 8192 --global-batch-tokens 16M --max-gpus 4096

      tpplan report --train --gpu-hours 2788k --gpu h800 --price h800=2
    """
    o = _Namespace(**opts)
    from tpplan.plan import report as rep
    from tpplan.render import report as rr
    from tpplan.units import parse_tokens

    if plot:
        from tpplan.render import charts

        if not charts.available():
            raise TpplanError("--plot needs matplotlib, which is not installed.", hint=charts.INSTALL_HINT)
        if not plot.lower().endswith((".png", ".svg")):
            raise TpplanError(f"--plot must name a .png or .svg file; got {plot!r}")
    _check_max_gpus(o.max_gpus)
    _check_max_pp(o.max_pp)
    obj = _objectives(ctx_, objective, o.train, o.train_objective)
    util = _fraction(utilization, "--utilization")
    cat = _catalog(catalog)
    gpu_specs = _gpu_specs(cat, gpu)
    pricing = _check_prices(cat, _prices(o.price, o.price_tier, o.prices, cat))
    res: rt.ReportResult
    if o.train and gpu_hours:
        from tpplan.units import parse_usd

        hours = _unit(parse_usd, gpu_hours, "--gpu-hours")
        m = (_resolve_model(cat, o.model, o.layers, o.hidden, o.heads, o.vocab, o.ffn, o.kv_heads)
             if o.model or o.layers is not None else None)
        res = rep.run_report(m, gpu_specs, hours, pricing, digest=cat.digest)
    elif o.train:
        from dataclasses import replace

        if not o.tokens:  # days, GPU-hours and $ are a run's: without its size the report has no figure to price
            raise TpplanError("report --train prices a training run: give its size with --tokens (e.g. --tokens 15T), "
                              "or --gpu-hours to price a run of known size; recommend --train ranks layouts "
                              "without one")
        _serving_only(ttft_slo=o.ttft_slo, tpot_slo=o.tpot_slo, budget_usd_per_hour=o.budget_usd_per_hour, rate=o.rate,
                      slo_percentile=o.slo_percentile, prefix_hit=o.prefix_hit, shared_prefix=o.shared_prefix,
                      speculative=o.speculative, draft_tokens=o.draft_tokens, acceptance=o.acceptance,
                      draft_model=o.draft_model, disagg=o.disagg or None)
        m = _resolve_model(cat, o.model, o.layers, o.hidden, o.heads, o.vocab, o.ffn, o.kv_heads, o.seq_len or str(_train_defaults().seq_len))
        tw = _search_workload(o.seq_len, o.global_batch, o.tokens, o.train_dtype, o.global_batch_tokens)
        fw = cat.framework(o.framework) if o.framework is not None else None
        tw = _framework_workload(replace(tw, ep_overlap=bool(o.ep_overlap)), fw, o.attention, o.grad_reduce_dtype,
                                 o.overlap_grad_reduce, o.elementwise)
        res = rep.train_report_search(m, gpu_specs, tw, pricing, global_batch_tokens=o.global_batch_tokens,
                                      gpus_exact=o.gpus, max_gpus=o.max_gpus, deadline_days=o.deadline_days,
                                      budget_usd=o.budget_usd, objective=obj, gpus_per_node=o.gpus_per_node,
                                      digest=cat.digest, framework=fw, max_pp=o.max_pp,
                                      default_batch=not o.global_batch and not o.global_batch_tokens)
    else:
        m = _resolve_model(cat, o.model, o.layers, o.hidden, o.heads, o.vocab, o.ffn, o.kv_heads, max(contexts.split(",") + [ctx],
                                                                                        key=_tok_or_zero))
        m = _extend_context(m, o.rope_scaling, o.allow_long_context, max(contexts.split(",") + [ctx], key=_tok_or_zero))
        w = _serving(o, m, ctx, cat)
        cons = _search_constraints(o)
        ctxs = [_unit(parse_tokens, x, "--contexts") for x in contexts.split(",") if x.strip()]
        _training_only(o)
        if o.disagg and cons.rate_rps is None:
            raise TpplanError("--disagg sizes a prefill and a decode pool to a request rate: give --rate (e.g. "
                              "--rate 12/s), and the SLOs the pools must meet (--ttft-slo, --tpot-slo)")
        res = rep.serve_report(m, gpu_specs, w, cons, pricing, obj, util, ctxs, o.gpus_per_node,
                               cat.digest, disagg=o.disagg)
    stamp_text = None
    if stamp:
        import datetime

        stamp_text = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    from tpplan.render import formats

    text = formats.text("report", fmt.value, rr.Stamped(res, stamp_text))
    chart_bytes = None
    if plot:
        from tpplan.render import charts

        chart_bytes = charts.save(res, plot)
        _check_target(plot)  # both targets are checked before either is written
    # the report and its charts are written together or not at all
    outputs = [(text.encode("utf-8"), output)] if output and output != "-" else []
    if chart_bytes is not None and plot:
        outputs.append((chart_bytes, plot))
    if not output or output == "-":
        _out(text)
    _write_all(outputs)
    if res["kind"] == "serve" and not res.get("winner") or res["kind"] == "train" and "runs" not in res \
            and not res.get("winner"):
        raise typer.Exit(1)
