"""Every option of the commands, declared once: the formats and enums, the typed option annotations, and the
bundles (model, workload, price, load, features, search, training) that estimate / recommend / report share."""

from enum import Enum
from typing import Annotated, Any

import typer


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
SeqLenOpt = Annotated[str | None, typer.Option(help="Training sequence length: 8k = 8,000, 8K = 8,192.")]
GlobalBatchOpt = Annotated[str | None, typer.Option(
    help="Training sequences per step (default: the power of two nearest 4M tokens, Llama 2's batch; the notes "
         "say so).")]
GlobalBatchTokensOpt = Annotated[str | None, typer.Option(help="Training tokens per step (16M).")]
TokensOpt = Annotated[str | None, typer.Option(help="Training tokens of the run, decimal (15T, 300B).")]
TrainGpusOpt = Annotated[int | None, typer.Option(help="Training: exactly this many GPUs.")]
DeadlineOpt = Annotated[float | None, typer.Option(help="Training: longest acceptable run.")]
BudgetUsdOpt = Annotated[str | None, typer.Option(help="Training: most $ for the run.")]
TrainObjectiveOpt = Annotated[str, typer.Option("--train-objective", help="Training: time | cost | mfu (same as --objective with --train).")]
TrainDtypeOpt = Annotated[str, typer.Option(help="Training GEMM dtype: bf16 | fp8.")]
AttentionOpt = Annotated[str | None, typer.Option(help="Training attention kernels: flash (FlashAttention-2, its measured rate) | flash1 (FlashAttention 1.x, its measured rate: about 0.45x FA2's at long sequences) | eager (the s x s scores through HBM as Megatron ran in 2021, stored under --recompute none); default: the --framework's, else flash.")]
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
MaxPpOpt = Annotated[int | None, typer.Option(help="Search pipeline parallelism up to this many stages (default: up to the layer count; serving charges no per-stage engine overhead, so deep pipelines are its least certain layouts).")]


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
    ("allow_cross_node_tp", CrossNodeTpOpt, False), ("disagg", DisaggOpt, False), ("gpus_per_node", NodeOpt, None),
    ("max_pp", MaxPpOpt, None))
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


class ReportFormat(str, Enum):
    markdown = "markdown"
    html = "html"
    csv = "csv"
    json = "json"


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
