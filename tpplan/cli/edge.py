"""The edge: option values (human strings) parsed once into the library's typed requests (ServeWorkload,
TrainWorkload, Constraints, Pricing, models and GPUs from the catalog), with the one-paragraph errors of bad input."""

import re
from typing import Any

import typer

from tpplan.cli.options import Objective, Tier
from tpplan.errors import TpplanError


def _unit(fn: Any, text: Any, what: str) -> Any:
    from tpplan.units import UnitError

    try:
        return fn(text, what)
    except UnitError as exc:
        raise TpplanError(str(exc)) from None


# ---------------------------------------------------------------------------------------------------
# serving workload options shared by estimate and recommend
# ---------------------------------------------------------------------------------------------------


def _serve_workload(model: Any, ctx: str, input_len: str | None, output_len: str, concurrency: str,
                    weight_dtype: str | None, kv_dtype: str, util: float | None, cat: Any = None,
                    engine: str = "vllm", engine_version: str | None = None) -> Any:
    """The serving workload the flags state (plan.request.ServeRequest: its rules and defaults, in flag words)."""
    from tpplan.plan.request import RequestError, ServeRequest
    from tpplan.units import parse_count, parse_tokens

    req = ServeRequest(ctx=_unit(parse_tokens, ctx, "--ctx"), output_len=_unit(parse_tokens, output_len, "--output-len"),
                       input_len=_unit(parse_tokens, input_len, "--input-len") if input_len else None,
                       concurrency=_unit(parse_count, concurrency, "--concurrency"), weight_dtype=weight_dtype,
                       kv_dtype=kv_dtype, gpu_memory_utilization=None if util is None else float(util), engine=engine,
                       engine_version=engine_version)
    try:
        return req.workload(model, cat)
    except RequestError as exc:
        raise TpplanError(exc.text(lambda f: "--" + f.replace("_", "-"))) from None


def _serving(o: Any, m: Any, ctx: str, cat: Any) -> Any:
    """The serving workload the option bundles state (WORKLOAD_OPTS, LOAD_OPTS, FEATURE_OPTS of ``o``): the
    request (_serve_workload) with prefix caching and speculative decoding (_serve_features); estimate,
    recommend and report build it here alike."""
    w = _serve_workload(m, ctx, o.input_len, o.output_len, o.concurrency, o.weight_dtype, o.kv_dtype,
                        o.gpu_memory_utilization, cat, o.engine, o.engine_version)
    return _serve_features(w, m, cat, o.prefix_hit, o.shared_prefix, o.speculative, o.draft_tokens, o.acceptance,
                           o.draft_model)


def _search_constraints(o: Any) -> Any:
    """A serving search's constraints from the option bundles of ``o`` (SEARCH_OPTS, LOAD_OPTS: SLOs, budget,
    GPU and pipeline limits, the rate and its percentile); recommend and report alike."""
    return _constraints(o.ttft_slo, o.tpot_slo, o.budget_usd_per_hour, o.max_gpus, o.min_concurrency, o.rate,
                        o.slo_percentile, o.max_utilization, o.allow_cross_node_tp, o.max_pp)


def _serve_features(w: Any, m: Any, cat: Any, prefix_hit: str | None, shared_prefix: str | None,
                    speculative: str | None, draft_tokens: int | None, acceptance: str | None,
                    draft_model: str | None) -> Any:
    """The workload with prefix caching and speculative decoding as the flags give them (issue 21)."""
    from dataclasses import replace

    from tpplan.engine import speculative as sp
    from tpplan.units import parse_tokens

    hit = 0.0
    if prefix_hit is not None:
        share = _share(prefix_hit)
        hit = float("nan") if share is None else share
        if not 0.0 <= hit < 1.0:  # nan fails too
            raise TpplanError(f"--prefix-hit must be a share of the prompt in [0, 1) such as 0.6 or 60% (the last "
                              f"prompt token is always computed); got {prefix_hit!r}")
    shared = _unit(parse_tokens, shared_prefix, "--shared-prefix") if shared_prefix is not None else 0
    if shared > w.input_len:
        raise TpplanError(f"--shared-prefix ({shared:,} tokens) is longer than the prompt (--input-len "
                          f"{w.input_len:,}); the shared part is a prefix of every prompt.")
    spec = None
    if speculative is None:
        extra = [f for f, v in (("--draft-tokens", draft_tokens), ("--acceptance", acceptance),
                                ("--draft-model", draft_model)) if v is not None]
        if extra:
            raise TpplanError(f"{', '.join(extra)} {'needs' if len(extra) == 1 else 'need'} --speculative "
                              f"METHOD ({' | '.join(sp.METHODS)})")
    else:
        method = speculative.strip().lower().replace("draft_model", "draft")
        if method not in sp.METHODS:
            raise TpplanError(f"--speculative {speculative!r} is not a method; valid: {', '.join(sp.METHODS)}")
        if acceptance is None:
            raise TpplanError("--speculative needs --acceptance A: the probability that a drafted token is accepted "
                              "given the ones before it were (it sets every speculative figure; measure it on your "
                              "traffic, e.g. from vLLM's spec_decode acceptance metrics). tpplan ships no default.")
        a = _fraction(acceptance, "--acceptance")
        if method == "mtp" and not m.mtp_layers:
            mtp = [n for n in cat.model_names() if cat.model(n).mtp_layers] if cat is not None else []
            raise TpplanError(f"--speculative mtp: {m.name} has no multi-token-prediction layers (config.json "
                              f"num_nextn_predict_layers); models with them: {', '.join(mtp) or 'none'}. Use eagle, "
                              "ngram or draft --draft-model NAME.")
        if method == "draft" and draft_model is None:
            raise TpplanError("--speculative draft needs --draft-model NAME (a smaller model with the target's "
                              "tokenizer, e.g. --draft-model llama-3.1-8b for llama-3.1-70b)")
        if method != "draft" and draft_model is not None:
            raise TpplanError(f"--draft-model goes with --speculative draft; {method} drafts with "
                              + ("the model's own MTP layers" if method == "mtp" else
                                 "n-gram lookup in the prompt" if method == "ngram" else "an EAGLE head"))
        k = draft_tokens if draft_tokens is not None else (m.mtp_layers if method == "mtp" else 3)
        if not 1 <= k <= sp.MAX_DRAFT_TOKENS:
            raise TpplanError(f"--draft-tokens must be 1 to {sp.MAX_DRAFT_TOKENS}; got {k}")
        if method == "draft":
            assert draft_model is not None
            draft = _resolve_model(cat, draft_model, None, None, None, None, None, None, None)
            if draft.vocab_size != m.vocab_size:
                raise TpplanError(f"--draft-model {draft.name} has a vocabulary of {draft.vocab_size:,} tokens, "
                                  f"{m.name} {m.vocab_size:,}: a draft model must share the target's tokenizer")
        elif method == "ngram":
            draft = None
        else:
            draft = sp.head_spec(m, "mtp" if method == "mtp" else "eagle")
        spec = sp.Speculative(method=method, draft_tokens=k, acceptance=a, draft=draft, draft_model=draft_model)
    return replace(w, prefix_hit=hit, shared_prefix=shared, speculative=spec)


def _check_prices(cat: Any, pricing: Any) -> Any:
    """Every --price names a GPU of the catalog (a typo would silently price nothing)."""
    for key in pricing.overrides:
        cat.gpu(key)  # raises with the valid names
    return pricing


def _sheet_rows(prices: str | None, cat: Any) -> list[dict[str, Any]]:
    """The --prices sheet's rows, each GPU resolved to its catalog name (an unknown GPU names its line)."""
    if not prices:
        return []
    from tpplan.engine.cost import load_price_sheet

    rows = load_price_sheet(prices)
    for r in rows:
        try:
            r["gpu"] = cat.gpu(r["gpu"]).name
        except TpplanError as exc:
            raise TpplanError(exc.message, file=prices, line=r["line"]) from None
    return rows


def _prices(price: list[str] | None, tier: Tier, prices: str | None = None, cat: Any = None) -> Any:
    from tpplan.plan.serve import Pricing
    from tpplan.units import parse_usd

    overrides: dict[str, float] = {}
    sources: dict[str, tuple[str | None, str]] = {}
    rows = _sheet_rows(prices, cat)
    for g in dict.fromkeys(r["gpu"] for r in rows):
        mine = [r for r in rows if r["gpu"] == g]
        pick = next((r for r in mine if r["tier"] == tier.value), mine[0] if len(mine) == 1 else None)
        if pick is not None:
            overrides[g] = pick["usd_per_gpu_hour"]
            sources[g] = (pick["as_of"], f"{pick['source']} ({prices} line {pick['line']}"
                          + (f", {pick['commitment']}" if pick["commitment"] else "") + ")")
    for p in price or []:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise TpplanError(f"--price must look like GPU=USD (e.g. h100-sxm=2.10); got {p!r}")
        usd = _unit(parse_usd, v, "--price")
        if usd > 100_000:
            raise TpplanError(f"--price {p!r}: ${usd:,.0f} per GPU-hour is not a plausible price (at most $100,000)")
        overrides[k.strip().lower()] = usd
        if cat is not None:  # --price wins over a sheet row for the same GPU
            name = cat.gpu(k.strip()).name
            if name != k.strip().lower():
                overrides.pop(name, None)
            sources.pop(name, None)
    return Pricing(tier=tier.value, overrides=overrides, sources=sources)


def _pool_spec(text: str | None, flag: str, cat: Any, gpu: Any) -> dict[str, Any]:
    """--prefill / --decode: 'tp=4,pp=1,ep=1,replicas=6,gpu=h100' (tp and replicas required; dp: ranks of one
    instance, as an expert-parallel group with data-parallel attention needs)."""
    if not text:
        raise TpplanError(f"--disagg needs {flag} POOL, e.g. {flag} tp=4,replicas=2 (keys: tp, pp, ep, replicas, gpu)")
    out: dict[str, Any] = {"pp": 1, "dp": 1, "ep": 1, "gpu": gpu}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("tp", "pp", "dp", "ep", "replicas", "gpu"):
            raise TpplanError(f"{flag} {text!r}: each part is KEY=VALUE with KEY one of tp, pp, dp, ep, replicas, "
                              f"gpu; got {part!r}")
        if key == "gpu":
            out["gpu"] = cat.gpu(value.strip())
            continue
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise TpplanError(f"{flag} {key}={value.strip()!r}: must be a positive integer")
        out[key] = n
    missing = [k for k in ("tp", "replicas") if k not in out]
    if missing:
        raise TpplanError(f"{flag} {text!r} is missing {' and '.join(missing)}, e.g. {flag} tp=4,replicas=2")
    return out


def _train_defaults() -> Any:
    """engine.workload.TRAIN_DEFAULTS (imported when a training command needs it: the CLI starts lazily)."""
    from tpplan.engine.workload import TRAIN_DEFAULTS

    return TRAIN_DEFAULTS


def _search_workload(seq_len: str | None, global_batch: str | None, tokens: str | None, dtype: str | None,
                     global_batch_tokens: str | None = None) -> Any:
    """A training search's workload before --framework and the search's own knobs: the defaults but for what
    the command states (recommend and report --train); without --global-batch or --global-batch-tokens, the
    default global batch (plan.train.default_global_batch)."""
    import dataclasses

    from tpplan.plan.train import default_global_batch

    d = _train_defaults()
    tw = _train_workload(seq_len or str(d.seq_len), global_batch, 1, tokens, d.recompute, d.sequence_parallel,
                         d.zero, dtype)
    if not global_batch and not global_batch_tokens:
        tw = dataclasses.replace(tw, global_batch=default_global_batch(tw.seq_len))
    return tw


def _train_workload(seq_len: str, global_batch: str | None, micro_batch: int, tokens: str | None,
                    recompute: str, sp: bool, zero: int, dtype: str | None) -> Any:
    from tpplan.engine.workload import TrainWorkload
    from tpplan.units import parse_count, parse_dataset_tokens, parse_tokens

    if recompute not in ("none", "selective", "full"):
        raise TpplanError(f"--recompute must be none, selective or full; got {recompute!r}")
    if zero not in (0, 1, 2, 3):
        raise TpplanError(f"--zero must be 0, 1, 2 or 3; got {zero}")
    if micro_batch < 1:
        raise TpplanError(f"--micro-batch must be a positive integer; got {micro_batch}")
    s = _unit(parse_tokens, seq_len, "--seq-len")
    gb = _unit(parse_count, global_batch, "--global-batch") if global_batch else micro_batch
    tok = float(_unit(parse_dataset_tokens, tokens, "--tokens")) if tokens else None
    from tpplan.plan.train import train_dtype

    tdt = train_dtype(dtype)
    return TrainWorkload(seq_len=s, global_batch=gb, micro_batch=micro_batch, tokens=tok,
                         recompute=recompute, sequence_parallel=sp, zero=zero, train_dtype=tdt)  # type: ignore[arg-type]


def _stage_split(layers: int, pp: int, v: int, first: int | None, last: int | None) -> tuple[int, int]:
    """--first-stage-layers / --last-stage-layers as Megatron-core takes them: the other stages share the
    remaining layers evenly, so what is left must divide among them (megatron/core/transformer/
    transformer_block.py get_num_layers_to_build)."""
    if pp < 2:
        raise TpplanError("--first-stage-layers / --last-stage-layers need --pp 2 or more")
    if v != 1:
        raise TpplanError("--first-stage-layers / --last-stage-layers with --virtual-stages is not modelled; "
                          "give one or the other")
    given = [x for x in (first, last) if x is not None]
    if any(x < 1 for x in given):
        raise TpplanError(f"a pipeline stage holds at least one layer; got {min(given)}")
    others = pp - len(given)  # stages sharing the rest
    rest = layers - sum(given)
    if others == 0:
        if rest != 0:
            raise TpplanError(f"with --pp 2 the first and last stages hold all {layers} layers; got "
                              f"{first} + {last} = {sum(given)}")
    elif rest < others:
        raise TpplanError(f"the first/last stages take {sum(given)} of the {layers} layers, leaving {max(rest, 0)} for "
                          f"the other {others} stage(s) of --pp {pp}: each needs at least one")
    elif rest % others:
        raise TpplanError(f"the {rest} layers left after the first/last stages must split evenly over the other "
                          f"{others} stages of --pp {pp} ({layers} layers in all)")
    share = rest // others if others else 0
    return (first if first is not None else share, last if last is not None else share)


def _with_attention(tw: Any, attention: str) -> Any:
    """--attention flash | flash1 | eager on a training workload."""
    import dataclasses

    from tpplan.catalog.spec import ATTENTION_KERNELS
    from tpplan.plan.train import attention_fields

    if attention not in ATTENTION_KERNELS:
        raise TpplanError(f"--attention must be {', '.join(ATTENTION_KERNELS[:-1])} or {ATTENTION_KERNELS[-1]}; "
                          f"got {attention!r}")
    return dataclasses.replace(tw, **attention_fields(attention))


def _training_only(o: Any) -> None:
    """Refuse a serving search given a training-only option of TRAIN_SEARCH_OPTS."""
    given = {"--ep-overlap": o.ep_overlap, "--attention": o.attention is not None,
             "--framework": o.framework is not None, "--grad-reduce-dtype": o.grad_reduce_dtype is not None,
             "--overlap-grad-reduce": o.overlap_grad_reduce is not None, "--elementwise": o.elementwise is not None}
    flag = next((k for k, v in given.items() if v), None)
    if flag is not None:
        raise TpplanError(f"{flag} applies to training (--train), not to serving")


def _with_framework_knobs(tw: Any, fw: dict[str, Any], dtype: str | None, overlap: bool | None,
                          elementwise: str | None) -> Any:
    """--grad-reduce-dtype, --overlap-grad-reduce and --elementwise, else ``fw`` (plan.train.framework_defaults:
    the framework's, else tpplan's)."""
    import dataclasses

    elementwise = elementwise if elementwise is not None else fw["elementwise"]
    if elementwise not in ("fused", "eager"):
        raise TpplanError(f"--elementwise must be fused or eager; got {elementwise!r}")
    if dtype is not None and dtype not in ("bf16", "fp32"):
        raise TpplanError(f"--grad-reduce-dtype must be bf16 or fp32; got {dtype!r}")
    grad_bytes = fw["grad_bytes"] if dtype is None else 4 if dtype == "fp32" else 2
    return dataclasses.replace(tw, elementwise=elementwise, grad_bytes=grad_bytes,
                               dp_overlap=bool(fw["dp_overlap"] if overlap is None else overlap))


def _framework_workload(tw: Any, framework: Any, attention: str | None, grad_reduce_dtype: str | None = None,
                        overlap_grad_reduce: bool | None = None, elementwise: str | None = None) -> Any:
    """A training search's workload under --framework: its sequence parallelism, attention kernels and gradient
    reduction (an explicit flag wins); the ZeRO stages, recompute modes and virtual stages it offers bound the
    search (plan.train.recommend_train)."""
    import dataclasses

    from tpplan.plan.train import framework_defaults

    fw = framework_defaults(framework.framework if framework is not None else None)
    tw = dataclasses.replace(tw, sequence_parallel=fw["sequence_parallel"])
    tw = _with_framework_knobs(tw, fw, grad_reduce_dtype, overlap_grad_reduce, elementwise)
    return _with_attention(tw, attention or fw["attention"])


def _interleaved(tw: Any, m: Any, pp: int, dp: int, v: int) -> Any:
    """--virtual-stages: Megatron's interleaved schedule needs pp > 1, the layers in pp x v equal chunks and a
    number of micro-batches that is a multiple of pp (megatron/core/pipeline_parallel/schedules.py)."""
    import dataclasses

    if v == 1:
        return tw
    micro = tw.global_batch // max(dp * tw.micro_batch, 1)
    if v < 1 or pp < 2 or m.num_layers % (pp * v) or micro % pp:
        why = ("it must be a positive integer" if v < 1 else "it needs --pp 2 or more" if pp < 2 else
               f"{m.num_layers} layers do not split into pp x v = {pp * v} equal chunks" if m.num_layers % (pp * v)
               else f"{micro} micro-batches per step are not a multiple of pp = {pp}")
        valid = [x for x in range(2, 17) if pp >= 2 and m.num_layers % (pp * x) == 0]
        raise TpplanError(f"--virtual-stages {v}: {why}; values that split {m.name}'s layers at pp = {pp}: "
                          f"{', '.join(map(str, valid)) or 'none'}")
    return dataclasses.replace(tw, interleave=v)




def _resolve_model(cat: Any, model: str | None, layers: int | None, hidden: int | None, heads: int | None,
                   vocab: int | None, ffn: int | None, kv_heads: int | None, positions: str | None = None) -> Any:
    """A catalog model, or a GPT-style model given by its dimensions (not both). ``positions`` (the context
    or sequence length asked for) sizes the learned position table, as GPT-3's 2,048."""
    dims = {"--layers": layers, "--hidden": hidden, "--heads": heads, "--vocab": vocab}
    if any(v is not None for v in (*dims.values(), ffn, kv_heads)):
        if model:
            raise TpplanError("give either --model or the dimensions (--layers --hidden --heads --vocab), not both")
        missing = [k for k, v in dims.items() if v is None]
        if missing:
            raise TpplanError(f"a model by dimensions needs {', '.join(missing)} too "
                              "(e.g. --layers 96 --hidden 12288 --heads 96 --vocab 51200)")
        from tpplan.catalog.spec import model_from_dimensions
        from tpplan.units import parse_tokens

        npos = _unit(parse_tokens, positions, "--ctx / --seq-len") if positions else None
        from pydantic import ValidationError

        try:
            return model_from_dimensions(layers, hidden, heads, vocab, ffn, kv_heads, npos)  # type: ignore[arg-type]
        except ValidationError as exc:
            # the first problem, named by the flag that set it (pydantic's own text is several lines and a URL)
            flag_of = {"num_layers": "--layers", "hidden_size": "--hidden", "vocab_size": "--vocab",
                       "attention.num_heads": "--heads", "attention.num_kv_heads": "--kv-heads",
                       "mlp.intermediate_size": "--ffn"}
            e = exc.errors()[0]
            where = ".".join(str(x) for x in e["loc"])
            raise TpplanError(f"invalid model dimensions: {flag_of.get(where, where)} {e.get('input')!r}: "
                              f"{e['msg']}") from None
        except ValueError as exc:
            raise TpplanError(str(exc).splitlines()[0]) from None
    if not model:
        raise TpplanError("missing --model (a catalog name, alias, HF id or config.json), or give the model's "
                          "dimensions: --layers --hidden --heads --vocab [--ffn] [--kv-heads]. Run 'tpplan models' "
                          "for the catalog.")
    return cat.model(model)


def _extend_context(m: Any, rope_scaling: str | None, allow_long: bool, ctx: str | None) -> Any:
    """--rope-scaling TYPE:FACTOR extends the model's positions (vLLM: max_model_len up to native x factor);
    --allow-long-context lifts the limit to --ctx without scaling (VLLM_ALLOW_LONG_MAX_MODEL_LEN=1)."""
    from tpplan.catalog.spec import valid_rope_scaling
    from tpplan.units import parse_tokens

    if rope_scaling:
        kind, sep, fac = rope_scaling.partition(":")
        kind = kind.strip().lower()
        try:
            factor = float(fac)
        except ValueError:
            factor = float("nan")
        if not sep or not valid_rope_scaling(kind, factor):
            raise TpplanError(f"--rope-scaling must be TYPE:FACTOR with TYPE yarn, linear or dynamic and 1 < FACTOR "
                              f"<= 64 (e.g. yarn:4); got {rope_scaling!r}")
        m = m.with_rope_scaling(kind, factor)
    if allow_long and ctx:
        want = _unit(parse_tokens, ctx, "--ctx")
        m = type(m).model_validate({**m.model_dump(), "allow_long_context": True,
                                    "max_position_embeddings": max(m.max_position_embeddings, want)})
    return m


def _objectives(ctx: typer.Context, objective: Objective, train: bool, train_objective: str) -> str:
    """The objective to rank by. With --train, an explicit --objective time|cost|mfu wins over
    --train-objective; without, time and mfu are training-only."""
    from typer._click.core import ParameterSource

    explicit = ctx.get_parameter_source("objective") not in (ParameterSource.DEFAULT, None)
    if train:
        if explicit:
            if objective.value not in ("time", "cost", "mfu"):
                raise TpplanError(f"--objective {objective.value} is a serving objective; with --train use time, "
                                  "cost or mfu")
            return objective.value
        return train_objective
    if objective.value in ("time", "mfu"):
        raise TpplanError(f"--objective {objective.value} ranks training runs; add --train, or use latency, "
                          "throughput or cost for serving")
    return objective.value


def _gpu_specs(cat: Any, gpu: list[str] | None) -> list[Any]:
    return [cat.gpu(x) for x in gpu] if gpu else [cat.gpus[n].spec for n in cat.gpu_names()]


def _check_max_gpus(max_gpus: int) -> None:
    if max_gpus < 1 or max_gpus > 1_048_576:
        raise TpplanError(f"--max-gpus must be between 1 and 1,048,576; got {max_gpus} (plan per cluster "
                          "of at most 2^20 GPUs)")


def _rate(text: str | None) -> float | None:
    from tpplan.units import parse_request_rate

    return _unit(parse_request_rate, text, "--rate") if text is not None else None


def _constraints(ttft_slo: str | None, tpot_slo: str | None, budget: float | None, max_gpus: int,
                 min_concurrency: int, rate: str | None = None, slo_percentile: int | None = None,
                 max_utilization: float = 0.85, allow_cross_node_tp: bool = False, max_pp: int | None = None) -> Any:
    from tpplan.plan import serve as planner
    from tpplan.units import parse_seconds

    if slo_percentile is not None and slo_percentile not in (50, 90, 99):
        raise TpplanError(f"--slo-percentile must be 50, 90 or 99; got {slo_percentile}")
    if not 0 < max_utilization <= 1:
        raise TpplanError(f"--max-utilization must be in (0, 1]; got {max_utilization}")
    if min_concurrency < 1:
        raise TpplanError(f"--min-concurrency must be a positive integer; got {min_concurrency}")
    _check_max_pp(max_pp)
    if budget is not None and not budget > 0:
        raise TpplanError(f"--budget-usd-per-hour must be positive; got {budget}")
    for flag, text in (("--ttft-slo", ttft_slo), ("--tpot-slo", tpot_slo)):
        # a bare number is ambiguous on the command line (50 meant 50 ms, read as 50 s): a unit is required
        if text is not None and re.fullmatch(r"\s*[0-9.eE+-]+\s*", text):
            raise TpplanError(f"{flag} {text} needs a unit: {text}ms or {text}s")
    return planner.Constraints(
        ttft_slo_s=_unit(parse_seconds, ttft_slo, "--ttft-slo") if ttft_slo else None,
        tpot_slo_s=_unit(parse_seconds, tpot_slo, "--tpot-slo") if tpot_slo else None,
        budget_usd_per_hour=budget, max_gpus=max_gpus, min_concurrency=min_concurrency, rate_rps=_rate(rate),
        slo_percentile=slo_percentile, max_utilization=max_utilization, allow_cross_node_tp=allow_cross_node_tp,
        max_pp=max_pp)


def _check_max_pp(max_pp: int | None) -> None:
    if max_pp is not None and max_pp < 1:
        raise TpplanError(f"--max-pp must be a positive integer (1: no pipeline parallelism); got {max_pp}")


def _serving_only(**given: Any) -> None:
    """Serving options have no meaning in a training plan: refuse them rather than ignore them."""
    used = [k for k, v in given.items() if v is not None]
    if used:
        flags = ", ".join("--" + k.replace("_", "-") for k in used)
        raise TpplanError(f"{flags} {'applies' if len(used) == 1 else 'apply'} to serving, not to --train; a "
                          "training plan takes --deadline-days, --budget-usd, --gpus or --max-gpus")


def _tok_or_zero(text: str) -> int:
    from tpplan.units import UnitError, parse_tokens

    try:
        return parse_tokens(text.strip())
    except UnitError:
        return 0


def _share(text: str) -> float | None:
    """A share written as a fraction (0.6) or a percentage (60%); None when it is neither."""
    t = str(text).strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        return None


def _fraction(text: str, what: str) -> float:
    v = _share(text)
    if v is None:
        raise TpplanError(f"{what} must be a fraction such as 0.5 or a percentage such as 50%; got {text!r}")
    if not 0 < v <= 1:
        raise TpplanError(f"{what} must be in (0, 100%]; got {text!r}")
    return v


def _size_list(text: str) -> list[int]:
    from tpplan.units import parse_bytes

    if ":" in text:
        lo_s, _, hi_s = text.partition(":")
        lo, hi = _unit(parse_bytes, lo_s, "--size"), _unit(parse_bytes, hi_s, "--size")
        if lo < 1 or hi < lo:
            raise TpplanError(f"--size range must be LOW:HIGH with 1 <= LOW <= HIGH; got {text!r}")
        out: list[int] = []
        s = lo
        while s <= hi and len(out) < 64:
            out.append(s)
            s *= 2
        return out
    sizes = [_unit(parse_bytes, x, "--size") for x in text.split(",") if x.strip()]
    if not sizes:
        raise TpplanError("--size needs at least one size")
    return sizes
