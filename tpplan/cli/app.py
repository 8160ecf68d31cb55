"""tpplan's command line: parse -> build a request -> call the library -> render. No math here."""

import errno
import os
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

# pydantic scans every installed distribution's entry points for plugins when the first model class is
# built (importlib.metadata, ~20 ms); tpplan uses none. Set before tpplan.catalog.spec builds its models.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# numpy's OpenBLAS starts a spinning thread per core at import (~0.1 s of CPU on a 2-core machine, competing
# with the main thread); tpplan's arrays are element-wise and never call BLAS. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _skip_pydantic_plugin_loader() -> None:
    """With plugins disabled, pydantic's plugin loader still imports importlib.metadata at module level
    (email, zipfile, csv: ~20 ms, 5% of a recommend run) only to return no plugins. Stand in for that module
    with one whose ``get_plugins`` returns none, as the real one does when disabled; any other name is
    taken from the real module, loaded on first use."""
    name = "pydantic.plugin._loader"
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in ("__all__", "1", "true") or name in sys.modules:
        return
    import types

    stub = types.ModuleType(name)

    def get_plugins() -> tuple[()]:
        return ()

    def __getattr__(attr: str) -> Any:  # pragma: no cover - a newer pydantic asking for more
        if attr.startswith("__"):  # import machinery probing (__path__, __file__): not a package
            raise AttributeError(attr)
        import importlib.util
        from importlib.machinery import PathFinder

        import pydantic.plugin

        spec = PathFinder.find_spec(name.rpartition(".")[2], list(pydantic.plugin.__path__))
        if spec is None or spec.loader is None:
            raise AttributeError(attr)
        real = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(real)
        return getattr(real, attr)

    stub.get_plugins = get_plugins  # type: ignore[attr-defined]
    stub.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = stub


_skip_pydantic_plugin_loader()

import typer  # noqa: E402

from tpplan import __version__  # noqa: E402
from tpplan.errors import TpplanError  # noqa: E402

app = typer.Typer(
    name="tpplan",
    help=(
        "Plan GPUs, parallel layouts (TP/PP/DP/CP/EP) and cost for serving and training LLMs.\n\n"
        "Examples:\n\n"
        "  tpplan recommend --model llama-70b --ctx 128k\n\n"
        "  tpplan estimate --model llama-70b --gpu h100-sxm --tp 4 --ctx 32k --concurrency 16\n\n"
        "  tpplan collective all-reduce --gpu h100-sxm --gpus 8 --size 1MiB,1GiB"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(help="List the model catalog, or show one model in full.\n\nExample: tpplan models show llama-70b",
                         invoke_without_command=True, no_args_is_help=False)
gpus_app = typer.Typer(help="List the GPU catalog, or show one GPU in full.\n\nExample: tpplan gpus show h100",
                       invoke_without_command=True, no_args_is_help=False)
app.add_typer(models_app, name="models")
app.add_typer(gpus_app, name="gpus")


class ListFormat(str, Enum):
    table = "table"
    json = "json"


class OutFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


class Objective(str, Enum):
    latency = "latency"
    throughput = "throughput"
    cost = "cost"
    time = "time"
    mfu = "mfu"


class ValidateFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class Tier(str, Enum):
    low = "low"
    typical = "typical"
    high = "high"


CatalogOpt = Annotated[list[str] | None, typer.Option(
    "--catalog", help="Extra catalog folder (hardware/ and models/ YAML, or YAML files); repeatable; searched "
                      "before the bundled catalog. TPPLAN_CATALOG_PATH adds more.")]

# options shared by estimate, recommend and report (one declaration each, bundled below, so they cannot drift)
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Catalog name, alias, HF id, path to config.json, or a folder holding one (a Hugging Face cache snapshot; or give --layers/--hidden/--heads/--vocab).")]
LayersOpt = Annotated[int | None, typer.Option(help="Model by dimensions (GPT-style): transformer layers.")]
HiddenOpt = Annotated[int | None, typer.Option(help="Model by dimensions: hidden size.")]
HeadsOpt = Annotated[int | None, typer.Option(help="Model by dimensions: attention heads.")]
VocabOpt = Annotated[int | None, typer.Option(help="Model by dimensions: vocabulary size.")]
FfnOpt = Annotated[int | None, typer.Option(help="Model by dimensions: GELU MLP width (default 4 x hidden).")]
KvHeadsOpt = Annotated[int | None, typer.Option(help="Model by dimensions: KV heads (default = heads, MHA).")]
CtxOpt = Annotated[str, typer.Option(help="Max tokens per sequence: 128k = 128,000, 128K = 131,072.")]
GpuListOpt = Annotated[list[str] | None, typer.Option("--gpu", "-g", help="Restrict to these GPUs; repeatable.")]
InputLenOpt = Annotated[str | None, typer.Option(help="Prompt tokens of the timed request (default ctx - output).")]
OutputLenOpt = Annotated[str, typer.Option(help="Output tokens of the timed request.")]
ConcurrencyOpt = Annotated[str, typer.Option(help="Clients per replica, each sending its next request when the last one finishes: the operating point of estimate (without --rate) and of recommend's latency objective.")]
WeightDtypeOpt = Annotated[str | None, typer.Option(help="bf16 | fp16 | fp8 | int8 | int4 (also awq, gptq) | fp4 (also nvfp4, mxfp4); default: the checkpoint's.")]
KvDtypeOpt = Annotated[str, typer.Option(help="auto (model dtype) | bf16 | fp8 (also fp8_e4m3, fp8_e5m2) | int8 (TensorRT-LLM only).")]
MaxGpusOpt = Annotated[int, typer.Option(help="Largest GPU count searched (at most 1,048,576).")]
MinConcOpt = Annotated[int, typer.Option(help="Sequences of ctx tokens that must fit per replica.")]
ObjectiveOpt = Annotated[Objective, typer.Option(help="Serving: latency (request latency), throughput (tokens/s per GPU), cost ($/1M tokens). Training (--train): time, cost ($ of the run) or mfu.")]
TtftOpt = Annotated[str | None, typer.Option(help="Max time to first token (2s, 500ms).")]
TpotOpt = Annotated[str | None, typer.Option(help="Max time per output token (50ms).")]
BudgetHourOpt = Annotated[float | None, typer.Option(help="Max $/hour of the deployment.")]
PriceOpt = Annotated[list[str] | None, typer.Option(help="GPU=USD per GPU-hour override; repeatable.")]
RopeOpt = Annotated[str | None, typer.Option("--rope-scaling", help="Serve with the positions extended, TYPE:FACTOR (yarn, linear or dynamic): yarn:4 takes Qwen2.5's 32,768 to 131,072 as its model card documents; the serving command gets --hf-overrides rope_scaling.")]
LongOpt = Annotated[bool, typer.Option("--allow-long-context", help="Allow --ctx beyond the model's trained length without scaling (vLLM VLLM_ALLOW_LONG_MAX_MODEL_LEN=1); outputs past that length may degrade.")]
PricesOpt = Annotated[str | None, typer.Option("--prices", help="Your price sheet, CSV or YAML (gpu, usd_per_gpu_hour, tier, sku, commitment, currency, fx_usd_per_unit, as_of, source): a GPU's row at --price-tier (or its only row) replaces the catalog price; --price wins over it.")]
TierOpt = Annotated[Tier, typer.Option(help="Price tier of the catalog.")]
UtilOpt = Annotated[float | None, typer.Option(help="vLLM memory fraction (default 0.9).")]
NodeOpt = Annotated[int | None, typer.Option(help="Override the GPUs' node size.")]
TrainOpt = Annotated[bool, typer.Option("--train", help="Plan a training run instead (see --tokens).")]
SeqLenOpt = Annotated[str | None, typer.Option(help="Training sequence length.")]
GlobalBatchOpt = Annotated[str | None, typer.Option(help="Training sequences per step.")]
GlobalBatchTokensOpt = Annotated[str | None, typer.Option(help="Training tokens per step (16M).")]
TokensOpt = Annotated[str | None, typer.Option(help="Training tokens of the run, decimal (15T, 300B).")]
TrainGpusOpt = Annotated[int | None, typer.Option(help="Training: exactly this many GPUs.")]
DeadlineOpt = Annotated[float | None, typer.Option(help="Training: longest acceptable run.")]
BudgetUsdOpt = Annotated[str | None, typer.Option(help="Training: most $ for the run.")]
TrainObjectiveOpt = Annotated[str, typer.Option("--train-objective", help="Training: time | cost | mfu (same as --objective with --train).")]
TrainDtypeOpt = Annotated[str, typer.Option(help="Training GEMM dtype: bf16 | fp8.")]
AttentionOpt = Annotated[str | None, typer.Option(help="Training attention kernels: flash (FlashAttention, the measured FA2 rate) | eager (the s x s scores through HBM as Megatron ran in 2021, stored under --recompute none); default: the --framework's, else flash.")]
FrameworkOpt = Annotated[str | None, typer.Option(help="Training: run as this framework does by default (frameworks/*.yaml, `tpplan frameworks`: megatron-core, nemo, torchtitan, deepspeed, llm-foundry, megatron-2021, megatron-2022): its attention kernels, sequence parallelism, ZeRO stages, recompute modes, virtual stages, gradient-reduce dtype and overlap, elementwise kernels, each overridable by its own flag.")]
EngineOpt = Annotated[str, typer.Option(help="Serving engine whose scheduler and memory defaults are modelled: vllm | sglang | trtllm.")]
EngineVersionOpt = Annotated[str | None, typer.Option(help="Engine profile version (default: the profile's; vllm 0.11.0 / 0.33.0 / 0.6.6, sglang 0.5.3, trtllm serve-2025 / bench-2025).")]
RateOpt = Annotated[str | None, typer.Option(help="Requests/s the deployment must sustain (12/s, 720/min; Poisson arrivals): sizes the replicas.")]
SloPctOpt = Annotated[int | None, typer.Option(help="Percentile the SLOs hold at: 50 | 90 | 99 (default: the mean).")]
MaxUtilOpt = Annotated[float, typer.Option(help="Plan each replica at most at this share of its saturation rate.")]
PrefixHitOpt = Annotated[str | None, typer.Option("--prefix-hit", help="Serving: share of every prompt's tokens found in the prefix cache (0.6, 60%): their prefill is skipped; the sequences still hold their KV.")]
SharedPrefixOpt = Annotated[str | None, typer.Option("--shared-prefix", help="Serving: tokens at the start of every prompt shared by all requests (a 2k system prompt): computed once, held once per replica.")]
SpeculativeOpt = Annotated[str | None, typer.Option("--speculative", help="Serving: speculative decoding method: eagle | eagle3 | mtp (the model's own MTP layers) | ngram | draft (with --draft-model).")]
DraftTokensOpt = Annotated[int | None, typer.Option("--draft-tokens", help="Speculative: tokens drafted per step, k (default 3; mtp: the model's MTP layers).")]
AcceptanceOpt = Annotated[str | None, typer.Option("--acceptance", help="Speculative: probability that a drafted token is accepted given the ones before it were (0.7); required with --speculative.")]
DraftModelOpt = Annotated[str | None, typer.Option("--draft-model", help="Speculative draft model (catalog name, HF id or config.json) for --speculative draft.")]
EpOverlapOpt = Annotated[bool, typer.Option("--ep-overlap", help="Training: expert-parallel all-to-alls run behind another micro-batch's computation (DeepSeek DualPipe, Megatron-core --overlap-moe-expert-parallel-comm); default: exposed, as plain 1F1B runs them.")]
GradReduceOpt = Annotated[str | None, typer.Option(help="Training: dtype data parallelism keeps and reduces the gradients in: bf16 | fp32 (Megatron-core under --bf16, torchtitan's mixed_precision_reduce); default: the --framework's, else bf16.")]
OverlapGradOpt = Annotated[bool | None, typer.Option("--overlap-grad-reduce/--no-overlap-grad-reduce", help="Training, ZeRO 0-2: the gradient reduction (and the parameter gather) runs behind the backward pass (Megatron-core --overlap-grad-reduce / --overlap-param-gather, DDP buckets, DeepSpeed overlap_comm) or after it, exposed; default: the --framework's, else behind. ZeRO-3 always prefetches.")]
ElementwiseOpt = Annotated[str | None, typer.Option(help="Training: the norms, residual adds, activation and rotary run as fused kernels (Apex / Transformer Engine / Megatron; the GPU's calibrated HBM efficiency) or as PyTorch eager ops (0.43 of peak HBM, measured; frameworks without fused kernels or torch.compile): fused | eager; default: the --framework's, else fused.")]
DisaggOpt = Annotated[bool, typer.Option("--disagg", help="Serving: also plan disaggregated prefill and decode pools (each its own GPU type, layout and replicas, the KV moved between them) sized to --rate, and compare with aggregated serving.")]
CrossNodeTpOpt = Annotated[bool, typer.Option("--allow-cross-node-tp", help="Serving: also search tensor parallelism beyond one node / NVLink domain.")]


# ---------------------------------------------------------------------------------------------------
# option bundles: each option shared by estimate / recommend / report is declared once, here
# ---------------------------------------------------------------------------------------------------

Opt = tuple[str, Any, Any]
"""(parameter name, Annotated type with its typer.Option, default)."""

MODEL_OPTS: tuple[Opt, ...] = (
    ("model", ModelOpt, None), ("layers", LayersOpt, None), ("hidden", HiddenOpt, None),
    ("heads", HeadsOpt, None), ("vocab", VocabOpt, None), ("ffn", FfnOpt, None), ("kv_heads", KvHeadsOpt, None))
WORKLOAD_OPTS: tuple[Opt, ...] = (
    ("input_len", InputLenOpt, None), ("output_len", OutputLenOpt, "256"), ("concurrency", ConcurrencyOpt, "1"),
    ("weight_dtype", WeightDtypeOpt, None), ("kv_dtype", KvDtypeOpt, "auto"), ("gpu_memory_utilization", UtilOpt, None),
    ("engine", EngineOpt, "vllm"), ("engine_version", EngineVersionOpt, None), ("rope_scaling", RopeOpt, None),
    ("allow_long_context", LongOpt, False))
PRICE_OPTS: tuple[Opt, ...] = (("price", PriceOpt, None), ("prices", PricesOpt, None),
                               ("price_tier", TierOpt, Tier.typical))
LOAD_OPTS: tuple[Opt, ...] = (("rate", RateOpt, None), ("slo_percentile", SloPctOpt, None),
                              ("max_utilization", MaxUtilOpt, 0.85))
FEATURE_OPTS: tuple[Opt, ...] = (
    ("prefix_hit", PrefixHitOpt, None), ("shared_prefix", SharedPrefixOpt, None), ("speculative", SpeculativeOpt, None),
    ("draft_tokens", DraftTokensOpt, None), ("acceptance", AcceptanceOpt, None), ("draft_model", DraftModelOpt, None))
SEARCH_OPTS: tuple[Opt, ...] = (
    ("max_gpus", MaxGpusOpt, 64), ("min_concurrency", MinConcOpt, 1), ("ttft_slo", TtftOpt, None),
    ("tpot_slo", TpotOpt, None), ("budget_usd_per_hour", BudgetHourOpt, None),
    ("allow_cross_node_tp", CrossNodeTpOpt, False), ("disagg", DisaggOpt, False), ("gpus_per_node", NodeOpt, None))
TRAIN_SEARCH_OPTS: tuple[Opt, ...] = (
    ("train", TrainOpt, False), ("seq_len", SeqLenOpt, None), ("global_batch", GlobalBatchOpt, None),
    ("global_batch_tokens", GlobalBatchTokensOpt, None), ("tokens", TokensOpt, None), ("gpus", TrainGpusOpt, None),
    ("deadline_days", DeadlineOpt, None), ("budget_usd", BudgetUsdOpt, None),
    ("train_objective", TrainObjectiveOpt, "time"), ("train_dtype", TrainDtypeOpt, "bf16"),
    ("ep_overlap", EpOverlapOpt, False), ("attention", AttentionOpt, None), ("framework", FrameworkOpt, None),
    ("grad_reduce_dtype", GradReduceOpt, None), ("overlap_grad_reduce", OverlapGradOpt, None),
    ("elementwise", ElementwiseOpt, None))


def _with_options(*groups: tuple[Opt, ...]) -> Any:
    """Give a command the options of ``groups`` (declared once above): they join its signature after its
    ``ctx`` parameter, so ``--help`` lists them with the command's own, and reach it in ``**opts``."""
    import functools
    import inspect

    def deco(fn: Any) -> Any:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.kind != p.VAR_KEYWORD]
        at = next(i for i, p in enumerate(own) if p.name == "ctx") + 1
        added = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=ann)
                 for g in groups for name, ann, default in g]
        params = own[:at] + added + own[at:]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            return fn(**kwargs)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer reads the signature above, not the function's own
        return command

    return deco


class _Namespace:
    """A command's bundled options by attribute (``o.rate``)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # only for a name no bundle of the command declares
        raise AttributeError(f"the command has no option {name!r} (see its _with_options bundles)")


def _catalog(dirs: list[str] | None) -> Any:
    from tpplan.catalog.load import get_catalog

    return get_catalog(dirs or [], os.environ.get("TPPLAN_CATALOG_PATH"))


def _out(text: str) -> None:
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        raise OSError(errno.EBADF, "standard output is closed")
    from tpplan.render import printable_lines

    # data is printed as data: no escape sequence or carriage return from a catalog string reaches a terminal
    # (JSON escapes them already, so this changes no JSON)
    text = printable_lines(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()  # a full device (/dev/full) fails here, inside the command's error handling


def _console() -> Any:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # the reader went away (`tpplan ... | head`): stop quietly with 128 + SIGPIPE, as coreutils do
            # (rich's default exits 1, which scripts would read as "nothing feasible")
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(141)

        def print(self, *objects: Any, **kwargs: Any) -> None:
            # catalog strings are data: no escape sequence or carriage return reaches the terminal
            from tpplan.render import printable_lines

            super().print(*(printable_lines(o) if isinstance(o, str) else o for o in objects), **kwargs)

    # output is data: never read as rich markup ("[D]" in a source), emoji codes or highlighted numbers
    return _Console(width=_WIDE or max(40, min(400, _term_width())), soft_wrap=False, markup=False, emoji=False,
                    highlight=False)


_WIDE: int | None = None
"""Set by --wide: tables take every column whatever the terminal's width."""


def _term_width() -> int:
    """COLUMNS when set (rich's own rule), else the terminal's width; 160 when the output is not a terminal."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 160


def _unit(fn: Any, text: Any, what: str) -> Any:
    from tpplan.units import UnitError

    try:
        return fn(text, what)
    except UnitError as exc:
        raise TpplanError(str(exc)) from None


def version_cb(value: bool) -> None:
    if value:
        _out(f"tpplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=version_cb, is_eager=True,
                                                 help="Print the version and exit.")] = False) -> None:
    """tpplan: analytical planner for LLM serving and training."""


# ---------------------------------------------------------------------------------------------------
# catalogs
# ---------------------------------------------------------------------------------------------------


@models_app.callback()
def models_list(ctx: typer.Context, fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
                catalog: CatalogOpt = None) -> None:
    """List models with derived parameter counts and KV-cache bytes per token.

    Example: tpplan models --format json
    """
    if ctx.invoked_subcommand:
        return
    from tpplan.render import to_json
    from tpplan.units import format_count

    cat = _catalog(catalog)
    rows = []
    for name in cat.model_names():
        m = cat.models[name].spec
        rows.append({"name": m.name, "aliases": m.aliases, "family": m.family, "hf_id": m.hf_id,
                     "params_total": m.params_total, "params_active": m.params_active,
                     "kv_cache_bytes_per_token": m.kv_cache_bytes_per_token(2.0),
                     "kv_cache_dtype": m.dtype, "max_context": m.max_position_embeddings,
                     "attention": m.attention.kind, "moe": m.moe is not None, "file": cat.models[name].file})
    if fmt == ListFormat.json:
        _out(to_json(_stamp({"catalog_sha256": cat.digest, "models": rows})))
        return
    from rich.table import Table

    from tpplan.render.tables import plain_cells

    t = Table(title="Models (parameters derived from the architecture; KV at the native dtype)")
    for col in ("name", "aliases", "params", "active", "KV B/token", "max ctx", "attention"):
        t.add_column(col, justify="right" if col in ("params", "active", "KV B/token", "max ctx") else "left")
    for r in rows:
        t.add_row(*plain_cells(r["name"], ", ".join(r["aliases"]), format_count(r["params_total"]),
                          format_count(r["params_active"]), f"{r['kv_cache_bytes_per_token']:,.0f}",
                          f"{r['max_context']:,}", r["attention"] + (" + MoE" if r["moe"] else "")))
    _console().print(t)


@models_app.command("show")
def models_show(name: str, fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
                catalog: CatalogOpt = None) -> None:
    """Show one model in full, with its source and derived counts.

    Example: tpplan models show llama-70b
    """
    from tpplan.catalog.spec import DTYPE_BYTES
    from tpplan.render import to_json

    cat = _catalog(catalog)
    m = cat.model(name)
    d = m.model_dump(mode="json")
    d["derived"] = {"params_total": m.params_total, "params_active": m.params_active,
                    "kv_cache_bytes_per_token": {dt: m.kv_cache_bytes_per_token(b) for dt, b in
                                                 (("bf16", 2.0), ("fp8", 1.0))},
                    "valid_tp": m.valid_tp(),
                    "layer_kinds": {k: m.layer_kinds.count(k) for k in ("full", "sliding", "chunked")
                                    if k in m.layer_kinds},
                    # a sliding-window or chunked layer caches at most its window: the cache of one sequence
                    # of N tokens, per token, at the model's dtype (vLLM v1 hybrid KV cache manager)
                    "kv_cache_bytes_per_token_at_context": {
                        f"{n // 1024}K": m.kv_cache_bytes_per_sequence(n, DTYPE_BYTES[m.dtype]) / n
                        for n in (8192, 32768, 131072) if n <= max(m.max_position_embeddings, 8192)}}
    if fmt == ListFormat.json:
        _out(to_json(_stamp({"model": d})))
        return
    import yaml

    _out(yaml.safe_dump(d, sort_keys=False, width=110))


@gpus_app.callback()
def gpus_list(ctx: typer.Context, fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
              catalog: CatalogOpt = None) -> None:
    """List GPUs: memory, HBM bandwidth, dense FLOP/s, fabric, prices.

    Example: tpplan gpus --format json
    """
    if ctx.invoked_subcommand:
        return
    from tpplan.render import to_json
    from tpplan.units import format_bytes, format_rate

    cat = _catalog(catalog)
    rows = []
    for name in cat.gpu_names():
        g = cat.gpus[name].spec
        rows.append({"name": g.name, "aliases": g.aliases, "vendor": g.vendor,
                     "memory_bytes": g.memory.capacity_bytes,
                     "hbm_bandwidth_bytes_per_s": g.hbm.bandwidth_bytes_per_s,
                     "dense_flops_per_s": dict(g.compute.dense_flops_per_s),
                     # the dtypes with tensor-core rates: training refuses others, serving states a slower path
                     "dtypes": list(g.compute.dense_flops_per_s),
                     "scale_up": {"kind": g.scale_up.kind, "bandwidth_bytes_per_s": g.scale_up.bandwidth_bytes_per_s,
                                  "domain_gpus": g.scale_up.domain_gpus},
                     "gpus_per_node": g.node.gpus_per_node,
                     "nic_bandwidth_bytes_per_s": g.scale_out.nic_bandwidth_bytes_per_s,
                     "tdp_w": g.power.tdp_w,
                     "price_usd_per_hour": {t: getattr(g.prices, t).usd_per_hour for t in ("low", "typical", "high")},
                     "file": cat.gpus[name].file})
    if fmt == ListFormat.json:
        _out(to_json(_stamp({"catalog_sha256": cat.digest, "gpus": rows})))
        return
    from rich.table import Table

    from tpplan.render.tables import plain_cells

    t = Table(title="GPUs (dense FLOP/s; bandwidth per GPU, one direction; $/GPU-hour low/typical/high)")
    for col in ("name", "memory", "HBM", "bf16 TFLOP/s", "fp8 TFLOP/s", "fabric", "$/h"):
        t.add_column(col)
    for r in rows:
        f = r["dense_flops_per_s"]
        p = r["price_usd_per_hour"]
        t.add_row(*plain_cells(
            r["name"], format_bytes(r["memory_bytes"], binary=True), format_rate(r["hbm_bandwidth_bytes_per_s"]),
            f"{f.get('bf16', 0) / 1e12:,.0f}", f"{f['fp8'] / 1e12:,.0f}" if "fp8" in f else "-",
            f"{r['scale_up']['kind']} {format_rate(r['scale_up']['bandwidth_bytes_per_s'])} x{r['scale_up']['domain_gpus']}",
            f"{p['low']:.2f} / {p['typical']:.2f} / {p['high']:.2f}"))
    _console().print(t)


@app.command()
def engines(fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
            catalog: CatalogOpt = None) -> None:
    """List the serving engine profiles (engines/*.yaml): versions and where their defaults come from.

    Example: tpplan engines --format json
    """
    cat = _catalog(catalog)
    rows = [{"name": e.spec.name, "aliases": e.spec.aliases, "default_version": e.spec.default_version,
             "versions": [v.version for v in e.spec.versions], "source": e.spec.source, "file": e.file}
            for e in (cat.engines[n] for n in sorted(cat.engines))]
    _list_rows("engines", rows, cat.digest, fmt, ("name", "default_version", "versions", "source"))


@app.command()
def frameworks(fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
               catalog: CatalogOpt = None) -> None:
    """List the training framework profiles (frameworks/*.yaml) --framework takes: each setting with its source.

    Example: tpplan frameworks --format json
    """
    cat = _catalog(catalog)
    rows = []
    for n in sorted(cat.frameworks):
        f = cat.frameworks[n].spec
        rows.append({"name": f.name, "aliases": f.aliases, "description": f.description,
                     "settings": {k: {"value": x.value, "source": x.source}
                                  for k in type(f.framework).model_fields
                                  if (x := getattr(f.framework, k)) is not None},
                     "source": f.source, "file": cat.frameworks[n].file})
    for r in rows:
        r["defaults"] = "; ".join(f"{k} " + ("/".join(map(str, v["value"])) if isinstance(v["value"], list)
                                               else str(v["value"]).lower()) for k, v in r["settings"].items())
    _list_rows("frameworks", rows, cat.digest, fmt, ("name", "description", "defaults"))


def _stamp(body: dict[str, Any]) -> dict[str, Any]:
    """A JSON result's header (schema_version, the tool's name and version) ahead of ``body``."""
    return {"schema_version": 1, "tool": {"name": "tpplan", "version": __version__}, **body}


def _list_rows(key: str, rows: list[dict[str, Any]], digest: str, fmt: Any, cols: tuple[str, ...]) -> None:
    """A catalog listing: JSON (schema_version, the catalog's hash, the rows) or a table of ``cols``."""
    if fmt == ListFormat.json:
        from tpplan.render import to_json

        _out(to_json(_stamp({"catalog_sha256": digest, key: rows})))
        return
    from rich.table import Table

    from tpplan.render.tables import plain_cells

    t = Table(title=key)
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*plain_cells(*(", ".join(map(str, r[c])) if isinstance(r[c], list) else str(r[c]) for c in cols)))
    _console().print(t)


@gpus_app.command("show")
def gpus_show(name: str, fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
              catalog: CatalogOpt = None) -> None:
    """Show one GPU in full, with the source of every figure.

    Example: tpplan gpus show h100
    """
    from tpplan.render import to_json

    g = _catalog(catalog).gpu(name)
    d = g.model_dump(mode="json")
    if fmt == ListFormat.json:
        _out(to_json(_stamp({"gpu": d})))
        return
    import yaml

    _out(yaml.safe_dump(d, sort_keys=False, width=110))


@app.command("import-hf")
def import_hf(path: Annotated[str, typer.Argument(help="Path to a Hugging Face config.json (read offline).")],
              name: Annotated[str | None, typer.Option(help="Catalog name for the model.")] = None,
              output: Annotated[str | None, typer.Option("--output", "-o", help="Write the YAML here.")] = None
              ) -> None:
    """Convert a Hugging Face config.json to a tpplan model YAML (stdout or --output).

    Example: tpplan import-hf ./Llama-3.1-8B/config.json --name my-llama -o models/my-llama.yaml
    """
    import yaml

    from tpplan.catalog.load import load_model_file

    if not path.endswith(".json") and not Path(path).is_dir():
        raise TpplanError("expected a Hugging Face config.json", file=path)
    spec = load_model_file(Path(path), path, name)
    body = yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=False), sort_keys=False, width=110)
    text_out = f"# imported by tpplan {__version__} from {path}\n" + body
    _write_or_print(text_out, output)


def _write_or_print(text: str, output: str | None) -> None:
    """Write atomically (temp file + rename) so a failure never leaves a partial file."""
    if not output or output == "-":
        _out(text)
        return
    _write_bytes(text.encode("utf-8"), output)


def _check_target(output: str) -> Path:
    """The folder an output goes to, checked before anything is written. An existing target must be a
    regular file we may write: a device, FIFO or symlink is never replaced by the rename, nor a read-only
    file."""
    import os
    import stat

    target = Path(output)
    if target.is_dir():
        raise TpplanError("is a directory; give a file name", file=output)
    if target.is_symlink():
        raise TpplanError("is a symbolic link; give the file it points to, or another name", file=output)
    if target.exists():
        if not stat.S_ISREG(target.stat().st_mode):
            raise TpplanError("exists and is not a regular file (a device, FIFO or socket); give a file name",
                              file=output)
        # by its mode bits, not os.access: root may write anything, but a file marked read-only stays
        if not target.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(target, os.W_OK):
            raise TpplanError("is read-only; make it writable or give another name", file=output)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise TpplanError("the folder does not exist", file=str(parent))
    return parent


def _write_bytes(data: bytes, output: str) -> None:
    _write_all([(data, output)])


def _write_all(outputs: list[tuple[bytes, str]]) -> None:
    """Write several outputs all or none: each is first written to a temp file beside its target (where a
    full disk or a read-only folder fails), and only when every one is staged are they renamed into place.
    SIGTERM (or Ctrl-C) in the window removes the temp files instead of leaving them behind."""
    import signal
    import tempfile

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    staged: list[tuple[str, str]] = []
    previous = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:
        for data, output in outputs:
            parent = _check_target(output)
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=".tpplan-", suffix=Path(output).suffix)
            staged.append((tmp, output))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        for tmp, output in staged:
            os.replace(tmp, output)
    except BaseException:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ---------------------------------------------------------------------------------------------------
# serving workload options shared by estimate and recommend
# ---------------------------------------------------------------------------------------------------


def _serve_workload(model: Any, ctx: str, input_len: str | None, output_len: str, concurrency: str,
                    weight_dtype: str | None, kv_dtype: str, util: float | None, cat: Any = None,
                    engine: str = "vllm", engine_version: str | None = None) -> Any:
    from tpplan.catalog.spec import normalize_dtype
    from tpplan.engine.workload import VLLM, ServeWorkload, kv_cache_dtypes, resolve_dtype
    from tpplan.units import parse_count, parse_tokens

    n_ctx = _unit(parse_tokens, ctx, "--ctx")
    n_out = _unit(parse_tokens, output_len, "--output-len")
    n_in = _unit(parse_tokens, input_len, "--input-len") if input_len else max(1, n_ctx - n_out)
    if n_in + n_out > n_ctx:
        raise TpplanError(f"--input-len ({n_in}) + --output-len ({n_out}) exceeds --ctx ({n_ctx}); a sequence "
                          "holds at most ctx tokens.")
    conc = _unit(parse_count, concurrency, "--concurrency")
    try:
        wdt = normalize_dtype(weight_dtype) if weight_dtype else (model.weight_dtype or model.dtype)
        kdt = resolve_dtype(kv_dtype, model.dtype)
    except ValueError as exc:
        raise TpplanError(str(exc)) from None
    if util is not None and not (0 < util <= 1):
        raise TpplanError(f"--gpu-memory-utilization must be in (0, 1]; got {util}")
    u = util if util is not None else VLLM.gpu_memory_utilization
    profile = cat.engine(engine) if cat is not None else None
    if profile is not None:
        try:
            profile.version(engine_version)
        except ValueError as exc:
            raise TpplanError(f"--engine-version: {exc}") from None
    kv_ok = kv_cache_dtypes(profile.name if profile is not None else "vllm")
    if kdt not in kv_ok:
        raise TpplanError(f"--kv-dtype {kv_dtype}: the {profile.name if profile else 'vllm'} KV cache takes auto, "
                          f"{', '.join(kv_ok)}" + ("; int8 is TensorRT-LLM's (--engine trtllm)" if kdt == "int8"
                                                    else ""))
    return ServeWorkload(ctx=n_ctx, input_len=n_in, output_len=n_out, concurrency=conc, weight_dtype=wdt,
                         kv_dtype=kdt, gpu_memory_utilization=u, engine_profile=profile,
                         engine_version=engine_version, memory_fraction_given=util is not None)


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
    seq_len: Annotated[str | None, typer.Option(help="Training sequence length.")] = None,
    global_batch: Annotated[str | None, typer.Option(help="Training sequences per step.")] = None,
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
        tw = _with_attention(tw, attention or ("flash" if fw["flash_attention"] else "eager"))
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
        res = training.estimate_train(m, g, tw, tp, pp, dp, cp, ep, pricing, gpus_per_node, cat.digest)
        _render_train_estimate(res, fmt)
        if breakdown and fmt in (OutFormat.table, OutFormat.markdown):
            from tpplan.render import tables

            _out(tables.train_breakdown_markdown(res))
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
                     "--elementwise": elementwise is not None}
    if any(serving_flags.values()):
        flag = next(k for k, v in serving_flags.items() if v)
        raise TpplanError(f"{flag} applies to training (--train), not to serving")
    w = _serve_workload(m, length, o.input_len, o.output_len, o.concurrency, o.weight_dtype, o.kv_dtype,
                        o.gpu_memory_utilization, cat, o.engine, o.engine_version)
    w = _serve_features(w, m, cat, o.prefix_hit, o.shared_prefix, o.speculative, o.draft_tokens, o.acceptance, o.draft_model)
    cons = _constraints(None, None, None, 64, 1, o.rate, o.slo_percentile, o.max_utilization)
    if disagg or prefill or decode:
        _estimate_disagg(m, w, cat, g, pricing, cons, prefill, decode, gpus_per_node, fmt)
        return
    res = planner.estimate_serve(m, g, w, tp, pp, dp, cp, ep, pricing, gpus_per_node, cat.digest, cons)
    from tpplan.render import formats, tables

    formats.emit("estimate", fmt.value, res, _console, _out)
    if breakdown and fmt in (OutFormat.table, OutFormat.markdown):
        _out(tables.breakdown_markdown(res))


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
    pair["commands"] = {role: disagg.pool_command(m, w, pools[role]["gpu"], pair[role], role)
                        for role in ("prefill", "decode")}
    res = {"schema_version": planner.SCHEMA_VERSION, "tool": planner.tool_info(),
           "inputs": planner.serve_inputs(m, [p["gpu"] for p in pools.values()], w, pricing, cat.digest),
           "rate_rps": cons.rate_rps, "disaggregated": pair}
    if fmt == OutFormat.json:
        from tpplan.render import to_json

        _out(to_json(res))
    else:
        from tpplan.render import tables

        lines = tables.disagg_lines({"disaggregated": {"pairs": [pair], "message": (
            "Both pools serve the rate." if pair["feasible"] else "Not feasible: " + "; ".join(pair["problems"]))}})
        if fmt == OutFormat.csv:
            _out("\n".join(lines) + "\n")
        else:
            _out("\n".join(f"- {x}" if fmt == OutFormat.markdown else x for x in lines) + "\n")
    if not pair["feasible"]:
        raise typer.Exit(1)


def _train_defaults() -> Any:
    """engine.workload.TRAIN_DEFAULTS (imported when a training command needs it: the CLI starts lazily)."""
    from tpplan.engine.workload import TRAIN_DEFAULTS

    return TRAIN_DEFAULTS


def _search_workload(seq_len: str | None, global_batch: str | None, tokens: str | None, dtype: str | None) -> Any:
    """A training search's workload before --framework and the search's own knobs: the defaults but for what
    the command states (recommend and report --train)."""
    d = _train_defaults()
    return _train_workload(seq_len or str(d.seq_len), global_batch, 1, tokens, d.recompute, d.sequence_parallel,
                           d.zero, dtype)


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
    """--attention flash | eager on a training workload."""
    import dataclasses

    if attention not in ("flash", "eager"):
        raise TpplanError(f"--attention must be flash or eager; got {attention!r}")
    return dataclasses.replace(tw, flash_attention=attention == "flash")


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
    return _with_attention(tw, attention or ("flash" if fw["flash_attention"] else "eager"))


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


def _render_train_estimate(res: dict[str, Any], fmt: OutFormat) -> None:
    from tpplan.render import formats

    formats.emit("train-estimate", fmt.value, res, _console, _out)




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
                 max_utilization: float = 0.85, allow_cross_node_tp: bool = False) -> Any:
    from tpplan.plan import serve as planner
    from tpplan.units import parse_seconds

    if slo_percentile is not None and slo_percentile not in (50, 90, 99):
        raise TpplanError(f"--slo-percentile must be 50, 90 or 99; got {slo_percentile}")
    if not 0 < max_utilization <= 1:
        raise TpplanError(f"--max-utilization must be in (0, 1]; got {max_utilization}")
    if min_concurrency < 1:
        raise TpplanError(f"--min-concurrency must be a positive integer; got {min_concurrency}")
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
        slo_percentile=slo_percentile, max_utilization=max_utilization, allow_cross_node_tp=allow_cross_node_tp)


def _serving_only(**given: Any) -> None:
    """Serving options have no meaning in a training plan: refuse them rather than ignore them."""
    used = [k for k, v in given.items() if v is not None]
    if used:
        flags = ", ".join("--" + k.replace("_", "-") for k in used)
        raise TpplanError(f"{flags} {'applies' if len(used) == 1 else 'apply'} to serving, not to --train; a "
                          "training plan takes --deadline-days, --budget-usd, --gpus or --max-gpus")


def _train_search(m: Any, gpu_specs: list[Any], seq_len: str | None, global_batch: str | None, tokens: str | None,
                  train_dtype: str, pricing: Any, digest: str, top: int, *, global_batch_tokens: str | None,
                  gpus: int | None, max_gpus: int, deadline_days: float | None, budget_usd: str | None,
                  objective: str, gpus_per_node: int | None, ep_overlap: bool = False,
                  attention: str | None = None, framework: Any = None, grad_reduce_dtype: str | None = None,
                  overlap_grad_reduce: bool | None = None, elementwise: str | None = None) -> dict[str, Any]:
    import dataclasses

    from tpplan.plan import train as training

    tw = _search_workload(seq_len, global_batch, tokens, train_dtype)
    tw = _framework_workload(dataclasses.replace(tw, ep_overlap=ep_overlap), framework, attention,
                             grad_reduce_dtype, overlap_grad_reduce, elementwise)
    return training.recommend_train(
        m, gpu_specs, tw, global_batch_tokens=global_batch_tokens, gpus=gpus, max_gpus=max_gpus,
        deadline_days=deadline_days, budget_usd=budget_usd, objective=objective, pricing=pricing,
        top=top, gpus_per_node=gpus_per_node, digest=digest, framework=framework)


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

    global _WIDE
    _WIDE = 400 if wide else None
    _check_max_gpus(o.max_gpus)
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
        res = _train_search(m, gpu_specs, o.seq_len, o.global_batch, o.tokens, o.train_dtype, pricing, cat.digest, top,
                            global_batch_tokens=o.global_batch_tokens, gpus=o.gpus, max_gpus=o.max_gpus,
                            deadline_days=o.deadline_days, budget_usd=o.budget_usd, objective=obj,
                            gpus_per_node=o.gpus_per_node, ep_overlap=o.ep_overlap, attention=o.attention,
                            framework=cat.framework(o.framework) if o.framework is not None else None,
                            grad_reduce_dtype=o.grad_reduce_dtype, overlap_grad_reduce=o.overlap_grad_reduce,
                            elementwise=o.elementwise)
        formats.emit("train-recommend", fmt.value, res, _console, _out)
        if not res["candidates"]:
            raise typer.Exit(1)
        return
    w = _serve_workload(m, ctx, o.input_len, o.output_len, o.concurrency, o.weight_dtype, o.kv_dtype, o.gpu_memory_utilization,
                        cat, o.engine, o.engine_version)
    w = _serve_features(w, m, cat, o.prefix_hit, o.shared_prefix, o.speculative, o.draft_tokens, o.acceptance, o.draft_model)
    cons = _constraints(o.ttft_slo, o.tpot_slo, o.budget_usd_per_hour, o.max_gpus, o.min_concurrency, o.rate, o.slo_percentile,
                        o.max_utilization, o.allow_cross_node_tp)
    _training_only(o)
    if o.disagg and cons.rate_rps is None:
        raise TpplanError("--disagg sizes a prefill and a decode pool to a request rate: give --rate (e.g. --rate "
                          "12/s), and the SLOs the pools must meet (--ttft-slo, --tpot-slo)")
    res = planner.recommend_serve(m, gpu_specs, w, cons, pricing, obj, top, pareto, explain,
                                  o.gpus_per_node, cat.digest)
    if o.disagg:
        res["disaggregated"] = planner.recommend_disagg(m, gpu_specs, w, cons, pricing, res.get("cheapest_feasible"),
                                                       o.gpus_per_node)
    formats.emit("recommend", fmt.value, res, _console, _out)
    if not res["candidates"] and not (o.disagg and res["disaggregated"]["pairs"]):
        raise typer.Exit(1)


class ReportFormat(str, Enum):
    markdown = "markdown"
    html = "html"
    csv = "csv"
    json = "json"


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
    obj = _objectives(ctx_, objective, o.train, o.train_objective)
    util = _fraction(utilization, "--utilization")
    cat = _catalog(catalog)
    gpu_specs = _gpu_specs(cat, gpu)
    pricing = _check_prices(cat, _prices(o.price, o.price_tier, o.prices, cat))
    if o.train and gpu_hours:
        from tpplan.units import parse_usd

        hours = _unit(parse_usd, gpu_hours, "--gpu-hours")
        m = (_resolve_model(cat, o.model, o.layers, o.hidden, o.heads, o.vocab, o.ffn, o.kv_heads)
             if o.model or o.layers is not None else None)
        res = rep.train_report(m, gpu_specs, None, pricing, gpu_hours=hours, digest=cat.digest)
    elif o.train:
        from dataclasses import replace

        _serving_only(ttft_slo=o.ttft_slo, tpot_slo=o.tpot_slo, budget_usd_per_hour=o.budget_usd_per_hour, rate=o.rate,
                      slo_percentile=o.slo_percentile, prefix_hit=o.prefix_hit, shared_prefix=o.shared_prefix,
                      speculative=o.speculative, draft_tokens=o.draft_tokens, acceptance=o.acceptance,
                      draft_model=o.draft_model, disagg=o.disagg or None)
        m = _resolve_model(cat, o.model, o.layers, o.hidden, o.heads, o.vocab, o.ffn, o.kv_heads, o.seq_len or str(_train_defaults().seq_len))
        tw = _search_workload(o.seq_len, o.global_batch, o.tokens, o.train_dtype)
        fw = cat.framework(o.framework) if o.framework is not None else None
        tw = _framework_workload(replace(tw, ep_overlap=bool(o.ep_overlap)), fw, o.attention, o.grad_reduce_dtype,
                                 o.overlap_grad_reduce, o.elementwise)
        res = rep.train_report_search(m, gpu_specs, tw, pricing, global_batch_tokens=o.global_batch_tokens,
                                      gpus_exact=o.gpus, max_gpus=o.max_gpus, deadline_days=o.deadline_days,
                                      budget_usd=o.budget_usd, objective=obj, gpus_per_node=o.gpus_per_node,
                                      digest=cat.digest, framework=fw)
    else:
        m = _resolve_model(cat, o.model, o.layers, o.hidden, o.heads, o.vocab, o.ffn, o.kv_heads, max(contexts.split(",") + [ctx],
                                                                                        key=_tok_or_zero))
        m = _extend_context(m, o.rope_scaling, o.allow_long_context, max(contexts.split(",") + [ctx], key=_tok_or_zero))
        w = _serve_workload(m, ctx, o.input_len, o.output_len, o.concurrency, o.weight_dtype, o.kv_dtype,
                            o.gpu_memory_utilization, cat, o.engine, o.engine_version)
        w = _serve_features(w, m, cat, o.prefix_hit, o.shared_prefix, o.speculative, o.draft_tokens, o.acceptance, o.draft_model)
        cons = _constraints(o.ttft_slo, o.tpot_slo, o.budget_usd_per_hour, o.max_gpus, o.min_concurrency, o.rate,
                            o.slo_percentile, o.max_utilization, o.allow_cross_node_tp)
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


@app.command()
def collective(
    op: Annotated[str, typer.Argument(help="all-reduce | all-gather | reduce-scatter | all-to-all | p2p")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog name or alias.")],
    gpus: Annotated[int, typer.Option("--gpus", "-n", help="Ranks in the group.")] = 8,
    size: Annotated[str, typer.Option(help="Bytes per rank: 1GiB, a list 1MiB,1GiB, or a range 1KiB:8GiB (x2 steps).")] = "1GiB",
    algo: Annotated[str, typer.Option(help="ring | tree | nvls | auto.")] = "auto",
    gpus_per_node: Annotated[int | None, typer.Option(help="Override the GPU's node size.")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
    catalog: CatalogOpt = None,
) -> None:
    """Time, algbw and busbw of one collective (nccl-tests conventions), or a size sweep.

    Example: tpplan collective all-reduce --gpu h100 --gpus 8 --size 1KiB:8GiB
    """
    from tpplan.engine import comm
    from tpplan.render import tables

    if op not in comm.OPS:
        raise TpplanError(f"unknown collective {op!r}; valid: {', '.join(comm.OPS)}")
    if algo not in ("ring", "tree", "nvls", "auto"):
        raise TpplanError(f"--algo must be ring, tree, nvls or auto; got {algo!r}")
    if gpus < 1 or gpus > 1_000_000:
        raise TpplanError(f"--gpus must be between 1 and 1,000,000; got {gpus}")
    cat = _catalog(catalog)
    g = cat.gpu(gpu)
    sizes = _size_list(size)
    res = comm.collective_report(g, op, sizes, gpus, algo, gpus_per_node)
    res = _stamp(res)
    if fmt == ListFormat.json:
        from tpplan.render import to_json

        _out(to_json(res))
    else:
        tables.print_collective(_console(), res)


@app.command()
def cost(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog name or alias.")],
    gpus: Annotated[str, typer.Option("--gpus", "-n", help="How many GPUs (e.g. 128).")],
    period: Annotated[str, typer.Option("--for", help="Rental period: 30d, 720h, 2w, 1mo (730 h) or 1y (8,760 h).")] = "1mo",
    utilization: Annotated[float, typer.Option(help="Fraction of the period the GPUs are rented and billed, in (0, 1]: 1 = held throughout (a reservation is billed used or not); 0.6 = on-demand capacity released 40% of the time.")] = 1.0,
    price: PriceOpt = None,
    prices: PricesOpt = None,
    fmt: Annotated[ValidateFormat, typer.Option("--format", "-f")] = ValidateFormat.table,
    catalog: CatalogOpt = None,
) -> None:
    """What N GPUs cost for a period, at each catalog price tier (low / typical / high) or your --price.

    Example: tpplan cost --gpu h100-sxm --gpus 128 --for 30d
    """
    from tpplan.engine import cost as cost_mod
    from tpplan.units import parse_count, parse_period

    n = _unit(parse_count, gpus, "--gpus")
    if not 1 <= n <= 1_000_000:
        raise TpplanError(f"--gpus must be between 1 and 1,000,000; got {gpus}")
    seconds = _unit(parse_period, period, "--for")
    if seconds > 100 * 8760 * 3600:
        raise TpplanError(f"--for {period!r} is longer than 100 years; give a rental period such as 30d or 1y")
    if not 0 < utilization <= 1:
        raise TpplanError(f"--utilization must be in (0, 1] (the fraction of the period billed); got {utilization}")
    cat = _catalog(catalog)
    g = cat.gpu(gpu)
    pricing = _check_prices(cat, _prices(price, Tier.typical))
    sheet = [r for r in _sheet_rows(prices, cat) if r["gpu"] == g.name]
    if prices and not sheet and not pricing.overridden(g):
        raise TpplanError(f"the price sheet {prices} has no row for {g.name}",
                          hint="Add a row for it, or leave --prices out to use the catalog's tiers.")
    res = _stamp(cost_mod.rental_cost(g, n, seconds, utilization, pricing.overrides, sheet))
    from tpplan.render import formats

    formats.emit("cost", fmt.value, res, _console, _out)


@app.command()
def schema(
    name: Annotated[str, typer.Argument(help="estimate | estimate-disagg | recommend | train-estimate | train-recommend | check | validate | report | cost")],
) -> None:
    """Print the JSON Schema of a command's --format json output, with every metric defined.

    Example: tpplan schema recommend > recommend.schema.json
    """
    import json

    from tpplan.results import RESULTS
    from tpplan.schemas import schema as schema_for

    if name not in RESULTS:
        raise TpplanError(f"unknown schema {name!r}; valid: {', '.join(RESULTS)}")
    _out(json.dumps(schema_for(name), indent=2))


@app.command()
def validate(
    category: Annotated[list[str] | None, typer.Option(help="Only these categories (activation, kv, params, zero, gemm, decode, decode-fp8, hbm, collective, attention, decode-attention, gemm-shape, e2e); repeatable. e2e replays published end-to-end runs and fails only when a guarded row regresses.")] = None,
    rows: Annotated[bool, typer.Option("--rows", help="Print every row, not only the failing ones (table format).")] = False,
    fmt: Annotated[ValidateFormat, typer.Option("--format", "-f")] = ValidateFormat.table,
    catalog: CatalogOpt = None,
) -> None:
    """Replay the published measurements shipped with tpplan (nccl-tests, GEMM, HBM, Korthikanti, KV, ZeRO,
    parameter counts, end-to-end training and serving runs) through the model; exit 1 when any row exceeds its
    category's tolerance (e2e: when a guarded row falls out of its metric's tolerance).

    Example: tpplan validate --format markdown --rows
    """
    from tpplan.calibration import validate as val

    res = val.run_validation(_catalog(catalog), category)
    from tpplan.render import formats
    from tpplan.render.tables import ValidateView

    _out(formats.text("validate", fmt.value, ValidateView(res, rows, bool(category))))
    if not res["passed"]:
        raise typer.Exit(1)


calibrate_app = typer.Typer(help="Fit tpplan's parameters to your own measurements and write a catalog overlay.\n\n"
                                 "Example: tpplan calibrate nccl-tests all_reduce.log --gpu h100 --ranks 8 -o my-cluster.yaml")
app.add_typer(calibrate_app, name="calibrate")


def _write_overlay(overlay: dict[str, Any], command: str, output: str | None, cat: Any = None) -> None:
    """The overlay as YAML, after loading it the way --catalog will: one that would not load (efficiencies
    above 1, duplicate sizes, NaN) is refused with the loader's reason instead of written."""
    from tpplan.calibration.calibrate import overlay_yaml
    from tpplan.catalog.load import apply_overlays
    from tpplan.yamlio import parse_one

    text = overlay_yaml(overlay, command)
    if cat is not None:
        import copy

        trial = copy.copy(cat)
        trial.gpus = {k: copy.copy(v) for k, v in cat.gpus.items()}
        trial.pending_overlays = [parse_one(text, output or "the overlay")]
        try:
            apply_overlays(trial)
        except TpplanError as exc:
            raise TpplanError(f"the fitted overlay would not load, so it is not written: {exc.message}",
                              hint="The measurements are outside what the model accepts; check the file and "
                                   "--gpu.") from None
    _write_or_print(text, output)


@calibrate_app.command("nccl-tests")
def calibrate_nccl(
    logs: Annotated[list[str], typer.Argument(help="nccl-tests output files (all_reduce_perf, all_gather_perf, reduce_scatter_perf, alltoall_perf).")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU the logs were measured on.")],
    nodes: Annotated[int, typer.Option(help="Nodes the ranks spanned (1: fit the NVLink level; more: the network level).")] = 1,
    ranks: Annotated[int | None, typer.Option(help="Ranks per test (default: counted from the log's '#  Rank' lines).")] = None,
    column: Annotated[str, typer.Option(help="in-place | out-of-place busbw column.")] = "in-place",
    op: Annotated[str | None, typer.Option(help="Collective, when the file name and log do not say.")] = None,
    gpus_per_node: NodeOpt = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Overlay YAML to write (default: stdout).")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Fit alpha, bus bandwidth and the bandwidth ramp to nccl-tests logs; write an overlay for --catalog.

    Example: tpplan calibrate nccl-tests all_reduce_perf.log --gpu h100-sxm --ranks 8 -o my-cluster.yaml

    Then: tpplan collective all-reduce --gpu h100-sxm --gpus 8 --size 1MiB:8GiB --catalog my-cluster.yaml
    """
    from tpplan.calibration import calibrate as cal
    from tpplan.engine import comm

    if column not in ("in-place", "out-of-place"):
        raise TpplanError(f"--column must be in-place or out-of-place; got {column!r}")
    if op is not None and op not in comm.OPS:
        raise TpplanError(f"--op must be one of {', '.join(comm.OPS[:4])}; got {op!r}")
    if nodes < 1 or (ranks is not None and ranks < 2):
        raise TpplanError("--nodes must be >= 1 and --ranks >= 2")
    cat = _catalog(catalog)
    g = cat.gpu(gpu)
    parsed = [cal.parse_nccl_log(Path(p), p, column, op) for p in logs]
    res = cal.fit_nccl(g, parsed, ranks, nodes, gpus_per_node)
    for name, f in res["fits"].items():
        sys.stderr.write(f"tpplan: {name} x{f['ranks']} ({f['points']} sizes): alpha {f['alpha_per_step_s'] * 1e6:.2f} us/step, "
                         f"busbw {f['busbw_bytes_per_s'] / 1e9:.0f} GB/s, ramp {f['ramp_bytes'] / 2**20:.1f} MiB^"
                         f"{f['ramp_exponent']:.2f}; max error {f['max_rel_error']:.1%} >= 1 MiB, rms {f['rms_rel_error']:.1%}\n")
    _write_overlay(res, "tpplan calibrate nccl-tests " + " ".join(Path(p).name for p in logs), output, cat)


def _calibrate_csv(kind: str, csv_path: str, gpu: str, output: str | None, catalog: list[str] | None) -> None:
    from tpplan.calibration import calibrate as cal
    from tpplan.catalog.microbench import read_microbench

    cat = _catalog(catalog)
    g = cat.gpu(gpu)
    rows = read_microbench(Path(csv_path), csv_path)
    res = cal.efficiency_from_csv(g, rows, kind, csv_path)
    for key, e in res["overlay"]["calibration"].items():
        sys.stderr.write(f"tpplan: {key} efficiency {e['value']} (band {e['low']}-{e['high']})\n")
    chk = res.get("shape_check")
    if chk:
        w = chk["worst"]
        sys.stderr.write(f"tpplan: shape check: tpplan's GEMM time at these efficiencies against {chk['rows']} "
                         f"measured GEMMs of every shape: mean |error| {chk['mean_abs_error']:.1%}, max "
                         f"{chk['max_abs_error']:.1%} ({w['shape']}{', ' + w['note'] if w['note'] else ''}: "
                         f"{w['error']:+.1%}; + = tpplan faster than measured)\n")
    _write_overlay(res, f"tpplan calibrate {kind} {Path(csv_path).name}", output, cat)


@calibrate_app.command("gemm")
def calibrate_gemm(
    csv_path: Annotated[str, typer.Argument(metavar="CSV", help="CSV with columns gpu,benchmark,dtype,m,n,k,size_bytes,ranks,value,unit (benchmark gemm_*, unit TFLOP/s).")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU the rows were measured on (rows of other GPUs are ignored).")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Overlay YAML to write (default: stdout).")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Tensor-core efficiency (bf16 and fp8) from your GEMM measurements; shapes of at least 4096 x 4096 x 8192.

    Example: tpplan calibrate gemm hardware/calibration/microbenchmarks.csv --gpu h200 -o h200-gemm.yaml
    """
    _calibrate_csv("gemm", csv_path, gpu, output, catalog)


@calibrate_app.command("hbm")
def calibrate_hbm(
    csv_path: Annotated[str, typer.Argument(metavar="CSV", help="CSV as for gemm; benchmark hbm_* (copy/STREAM, >= 1 GiB) or *gemv* / *decode*, unit TB/s or GB/s.")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU the rows were measured on.")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Overlay YAML to write (default: stdout).")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Decode-relevant HBM efficiency from copy/STREAM or GEMV measurements.

    Example: tpplan calibrate hbm my-stream.csv --gpu mi300x -o mi300x-hbm.yaml
    """
    _calibrate_csv("hbm", csv_path, gpu, output, catalog)


class CheckFormat(str, Enum):
    auto = "auto"
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"
    markdown = "markdown"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


@app.command()
def check(
    files: Annotated[list[str], typer.Argument(help="Deployment YAML files, folders or quoted globs ('deploy/**/*.yaml').")],
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="auto = github when GITHUB_ACTIONS is set, else text.")] = CheckFormat.auto,
    fail_on: Annotated[FailOn, typer.Option(help="Lowest level that makes the exit code 1.")] = FailOn.error,
    strict: Annotated[bool, typer.Option("--strict", help="Same as --fail-on warning.")] = False,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even with findings (input errors still exit 2).")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    price: Annotated[list[str] | None, typer.Option(help="GPU=USD per GPU-hour override for budget rules; repeatable.")] = None,
    prices: PricesOpt = None,
    price_tier: Annotated[Tier, typer.Option(help="Price tier for budget rules.")] = Tier.typical,
    gpu: Annotated[str | None, typer.Option("--gpu", "-g", help="GPU for deployments that name none (a plain `vllm serve --config` file has no gpu key).")] = None,
    ttft_slo: Annotated[str | None, typer.Option(help="TTFT SLO for deployments without slo.ttft_s (2s, 500ms).")] = None,
    tpot_slo: Annotated[str | None, typer.Option(help="TPOT SLO for deployments without slo.tpot_s (50ms).")] = None,
    budget_usd_per_hour: Annotated[float | None, typer.Option(help="$/hour budget for deployments without budget.usd_per_hour.")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Lint serving deployment configs (vLLM / SGLang / TRT-LLM keys): layout rules, memory, SLOs, budget.

    Exit 0 clean, 1 findings at or above --fail-on, 2 unreadable or invalid input. Rules: docs/check-rules.md.

    Example: tpplan check deploy/*.yaml --format sarif -o tpplan.sarif

    A deployment file (several YAML documents allowed):

      model: llama-3.1-70b

      gpu: h100-sxm

      tensor_parallel_size: 4

      max_model_len: 32k

      max_num_seqs: 64

      slo: {ttft_s: 2.0, tpot_s: 0.05}

      budget: {usd_per_hour: 40}
    """
    from tpplan.check import deployment as chk

    cat = _catalog(catalog)
    if gpu is not None:
        cat.gpu(gpu)  # an unknown name fails here, naming the valid ones
    cons = _constraints(ttft_slo, tpot_slo, budget_usd_per_hour, 64, 1)
    defaults = {"gpu": gpu, "slo": {"ttft_s": cons.ttft_slo_s, "tpot_s": cons.tpot_slo_s},
                "budget": {"usd_per_hour": cons.budget_usd_per_hour}}
    rep = chk.check_paths(files, cat, _check_prices(cat, _prices(price, price_tier, prices, cat)), defaults)
    kind = fmt.value
    in_actions = bool(os.environ.get("GITHUB_ACTIONS"))
    if kind == "auto":
        kind = "github" if in_actions else "text"
    from tpplan.render import formats

    text = formats.text("check", kind, rep)
    if kind == "text" and not (output and output != "-"):
        chk.print_text(rep, _console())
    elif text:
        _write_or_print(text, output)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt == CheckFormat.auto and in_actions and summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(chk.render_markdown(rep))
        except OSError as exc:
            sys.stderr.write(f"tpplan: warning: cannot append to GITHUB_STEP_SUMMARY ({exc})\n")
    code = rep.exit_code("warning" if strict else fail_on.value, exit_zero)
    if code:
        raise typer.Exit(code)


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


# ---------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------


def _command_for(argv: list[str]) -> Any:
    """The click command for this invocation. Building every command's parameters from its signature costs
    ~60 ms (typer reflects ~200 options); a call names one command, so only that one (or its group) is
    built. ``tpplan``, ``tpplan --help`` and shell completion get the full tree."""
    import copy

    first = argv[0] if argv and not argv[0].startswith("-") else None
    if first is None or os.environ.get("_TPPLAN_COMPLETE"):
        return typer.main.get_command(app)
    cmds = [c for c in app.registered_commands
            if (c.name or (c.callback.__name__ if c.callback else "").replace("_", "-")) == first]
    groups = [g for g in app.registered_groups if g.name == first]
    if not cmds and not groups:
        return typer.main.get_command(app)  # an unknown name: click lists the valid ones
    lite = copy.copy(app)
    lite.registered_commands, lite.registered_groups = cmds, groups
    return typer.main.get_command(lite)


COMMANDS = ("recommend", "estimate", "report", "check", "validate", "calibrate", "collective", "models", "gpus",
            "import-hf", "schema", "cost")


def _interruptible() -> Any:
    """Inside the command, Ctrl-C raises KeyboardInterrupt (staged outputs are removed on the way out, exit 130).
    Outside it (argument parsing, interpreter shutdown) the console script's quiet handler stays, so no
    interrupt can print a traceback; returns the handler to put back."""
    import signal

    if not _main_thread():
        return None
    current = signal.getsignal(signal.SIGINT)
    if not getattr(current, "tpplan_quiet", False):
        return None

    def _raise(signum: int, frame: Any) -> None:
        _INTERRUPTED.append(signum)  # remembered: a library may turn the KeyboardInterrupt into its own error
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _raise)
    return current


_INTERRUPTED: list[int] = []
"""Signals the command received (console script only): an error after one is the interrupt, not a bug."""


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (0 ok, 1 findings / nothing feasible, 2 bad input)."""
    try:  # typer >= 0.20 vendors click as typer._click
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover - older typer on click
        from click import exceptions as click_exc  # type: ignore[no-redef]

    debug = False
    if argv is None:
        argv = sys.argv[1:]
    if "--debug" in argv:
        debug = True
        argv = [a for a in argv if a != "--debug"]
    if sys.stdout is None and not {"-o", "--output"} & set(argv):
        # started with stdout closed (`>&-`): rich would drop the output silently
        sys.stderr.write("tpplan: error: cannot write the output: standard output is closed\n")
        return 2
    cmd = _command_for(argv)
    quiet = _interruptible()
    try:
        rv = cmd.main(args=argv, prog_name="tpplan", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else 0
    except TpplanError as exc:
        sys.stderr.write(f"tpplan: error: {exc.render()}\n")
        return exc.exit_code
    except (typer.Exit, SystemExit) as exc:
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            return 141  # click met EPIPE (reader closed the pipe, e.g. `| head`): 128 + SIGPIPE, like coreutils
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        return int(code) if isinstance(code, int) else 0
    except click_exc.UsageError as exc:
        # one paragraph, as every other input error (click prints Usage / Try / Error on three)
        where = "tpplan -h"
        if exc.ctx is not None and exc.ctx.command_path != "tpplan":
            where = f"{exc.ctx.command_path} -h"
        elif argv and argv[0] in COMMANDS:
            where = f"tpplan {argv[0]} -h"
        sys.stderr.write(f"tpplan: error: {exc.format_message()} ({where} lists the valid options and commands)\n")
        return 2
    except click_exc.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("tpplan: aborted\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("tpplan: interrupted\n")
        return 130  # 128 + SIGINT; staged outputs were removed on the way out
    except BrokenPipeError:
        return 141
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 141
        # the output could not be written: a full disk or device, a closed descriptor
        sys.stderr.write(f"tpplan: error: cannot write the output: {exc.strerror or exc}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - the last net: never a traceback without --debug
        if _INTERRUPTED:
            # Ctrl-C inside a lazy import or a pydantic schema build comes back wrapped (RuntimeError "Error
            # calling __set_name__", SchemaError): it is still the interrupt
            sys.stderr.write("tpplan: interrupted\n")
            return 130
        if debug:
            raise
        sys.stderr.write(f"tpplan: internal error: {type(exc).__name__}: {exc}. Run again with --debug for a "
                         "traceback and report it.\n")
        return 3
    finally:
        if quiet is not None:
            import signal

            signal.signal(signal.SIGINT, quiet)


def main() -> None:
    code = run()
    # the console script ends here: flush what was printed, then leave without the interpreter's teardown
    # (unloading numpy, pydantic and rich takes 20-30 ms of every command; every file the command wrote is
    # closed and renamed into place by now)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with the descriptor closed (run() said so)
                stream.flush()
        except BrokenPipeError:  # the reader went away: 128 + SIGPIPE, as coreutils
            code = code or 141
        except (OSError, ValueError) as exc:  # a full device at the last flush, or a closed stream
            if stream is sys.stdout and sys.stderr is not None:
                sys.stderr.write(f"tpplan: error: cannot write the output: {getattr(exc, 'strerror', None) or exc}\n")
                sys.stderr.flush()
            code = code or 2
    os._exit(code)
