"""Typed results: one pydantic model per ``--format json`` output and for each object inside it, every metric
with its definition and unit (``Field(description=...)``). ``tpplan schema NAME`` is generated from these
(``tpplan/schemas.py``), and so is ``tpplan/result_types.py`` (``python -m tpplan._typegen``: one ``TypedDict``
per model, the static type of the dicts the library builds and renders); the tests validate real outputs against
the generated schemas and the models, and fail on a key no model declares.

Keys are a public contract (docs/metrics.md; the contract of the issues): add, never rename. The models allow
extra keys (a reader's schema check keeps passing when a later version adds one), but tpplan itself writes none
they do not declare (tests/test_schemas.py); a key listed here is required unless it has a default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from tpplan.catalog.spec import GpuSpec, ModelSpec

Num = Annotated[float, Field(ge=0)]
"""A non-negative number (a time, a rate, bytes, dollars)."""
NNum = Annotated[float | None, Field(ge=0)]
"""The same, or null where the figure does not exist (an unstable rate, training's $/1M tokens)."""


def d(text: str, **kw: Any) -> Any:
    """A required field with its definition."""
    return Field(..., description=text, **kw)


def opt(text: str, **kw: Any) -> Any:
    """A field present only in some outputs: absent, not null, when it does not apply (its type is the value's;
    the schema does not list it as required)."""
    return Field(None, description=text, **kw)


class Open(BaseModel):
    """An object whose listed keys are the contract; others may follow."""

    model_config = ConfigDict(extra="allow")


_CHANGED = (" Changed in issue 16 (same key, schema_version 1): this figure was an idle replica's; the idle "
            "figure is now serve.idle.")
_BAND = " [low, high] from the calibration spread (see docs/metrics.md, bands)."
Band = Annotated[list[float | None] | None, Field(min_length=2, max_length=2)]


LoadMode = Literal["concurrency", "sustainable", "rate"]
LimitedBy = Literal["batch", "kv", "step-budget", "prefill-chunks"]
SpecMethod = Literal["eagle", "eagle3", "mtp", "ngram", "draft"]
PriceTier = Literal["low", "typical", "high"]


class Tool(Open):
    name: Literal["tpplan"]
    version: str


class Envelope(Open):
    schema_version: Literal[1] = d("Output format version; bumped only on a breaking change.")
    tool: Tool


class Inputs(Open):
    """Resolved inputs: model, GPUs, tokens, dtypes, prices, catalog hash."""

    catalog_sha256: str = d("sha256 over every catalog file read.")
    price_tier: PriceTier = opt("Price tier the $ figures use.")
    price_overrides: dict[str, float] = opt("--price overrides: GPU name -> $/GPU-hour.")


class ServeInputs(Inputs):
    """The serving workload as the planner read it (estimate, recommend; the serving report)."""

    model: str = opt("Model catalog name.")
    gpus: list[str] = opt("GPU catalog names searched or estimated.")
    hf_id: str | None = opt("The model's Hugging Face id (catalog).")
    ctx_tokens: int = opt("--ctx: the longest sequence (prompt + output) planned for.", ge=1)
    input_len: int = opt("Prompt tokens of every request.", ge=0)
    output_len: int = opt("Output tokens of every request.", ge=0)
    concurrency: int = opt("--concurrency: sequences per replica (the closed loop, latency objective).", ge=1)
    weight_dtype: str = opt("Dtype the weights are stored in.")
    kv_dtype: str = opt("Dtype of the KV cache.")
    gpu_memory_utilization: Num = opt("Share of each GPU's memory the engine may use.")
    engine: str = opt("Serving engine profile (engines/*.yaml).")
    engine_version: str = opt("Its version.")
    assumptions: dict[str, Any] = opt("estimate: the calibration figures, price and engine settings the numbers "
                                      "rest on (each with its source).")
    objective: str = opt("recommend / report: the ranking objective.")
    pareto: bool = opt("recommend --pareto.")
    rate_rps: NNum = opt("--rate: requests/s of the deployment; null without it.")
    slo_percentile: NNum = opt("--slo-percentile: the percentile the SLOs are judged at; null: the mean.")
    max_utilization: Num = opt("--max-utilization: the sustainable rate's share of saturation.")
    allow_cross_node_tp: bool = opt("--allow-cross-node-tp.")
    constraints: dict[str, Any] = opt("SLOs, budget, GPU and pipeline limits of the search.")
    utilization: Num = opt("report: share of the time the GPUs are billed.")


class TrainInputs(Inputs):
    """The training workload as the planner read it (estimate --train, recommend --train, the training report)."""

    model: str = opt("Model catalog name.")
    gpus: list[str] | int | None = opt("estimate --train: the GPU's catalog name (a list of one). recommend --train: "
                                       "--gpus, the exact GPU count asked for, or null (any count up to max_gpus).")
    seq_len: int = opt("Tokens per sequence.", ge=1)
    global_batch: int = opt("Sequences per optimizer step.", ge=1)
    tokens: NNum = opt("--tokens: tokens of the run; null without it.")
    train_dtype: str = opt("GEMM dtype (bf16, fp8).")
    optimizer: str = opt("The optimizer state the memory counts.")
    micro_batch: int = opt("estimate --train: sequences per micro-batch.", ge=1)
    recompute: str = opt("estimate --train: activation recomputation.")
    zero: int = opt("estimate --train: ZeRO stage.", ge=0, le=3)
    sequence_parallel: bool = opt("estimate --train: Megatron sequence parallelism.")
    objective: str = opt("recommend --train: the ranking objective.")
    max_gpus: int = opt("recommend --train: the most GPUs searched.", ge=1)
    deadline_days: NNum = opt("--deadline in days; null without it.")
    budget_usd: NNum = opt("--budget in USD; null without it.")
    excluded_gpus: dict[str, str] = opt("GPU types left out of the search and why.")


class RunInputs(Inputs):
    """report --gpu-hours: the $ of a run of known size."""

    model: str | None = opt("Model catalog name; null without --model.")
    gpus: list[str] = opt("GPU catalog names priced.")
    gpu_hours: Num = opt("GPU-hours of the run (--gpu-hours).")


class Layout(Open):
    """Where the model runs."""

    gpu: str = d("GPU catalog name.")
    tp: int = d("Tensor-parallel size.", ge=1)
    pp: int = d("Pipeline stages.", ge=1)
    dp: int = d("Data-parallel replicas (serving: the fewest that expert parallelism needs).", ge=1)
    cp: int = d("Context-parallel size.", ge=1)
    ep: int = d("Expert-parallel size, carved out of tp x dp x cp (not an extra factor of the GPU count).", ge=1)
    gpus: int = d("GPUs of the deployment = tp x pp x dp x cp.", ge=1)
    nodes: int = d("Nodes = ceil(gpus / GPUs per node).", ge=1)
    concurrency: int = opt("Serving: sequences of ctx tokens per replica the layout was evaluated at (the memory "
                           "check).", ge=1)
    micro_batch: int = opt("Training: sequences per micro-batch.", ge=1)
    gpus_per_node: int = opt("Serving: GPUs per node (host) the layout was placed on: --gpus-per-node or the "
                             "catalog's (a GB200 NVL72 node is a 4-GPU compute tray in a 72-GPU NVLink domain).",
                             ge=1)


class Memory(Open):
    """Bytes per GPU of the most loaded GPU."""

    weights: Num = d("Parameter bytes on the most loaded GPU (first or last pipeline stage; embeddings included).")
    kv_cache: Num = d("KV-cache bytes on that GPU for `concurrency` sequences of ctx tokens (serving; 0 in "
                      "training).")
    activations: Num = d("Serving: the activation peak of vLLM's profile run at max_num_batched_tokens. Training: "
                         "Korthikanti et al. 2022 activations of the micro-batches in flight on the first stage.")
    gradients: Num = d("Gradient bytes per GPU (training; ZeRO-2/3 shard them).")
    optimizer: Num = d("Adam fp32 master weights, momentum and variance per GPU (training; ZeRO-1+ shard them).")
    overhead: Num = d("CUDA context, NCCL buffers and the CUDA-graph pool.")
    total: Num = d("Sum of the components above.")
    capacity: Num = d("Driver-reported memory of one GPU (bytes).")
    usable: Num = opt("Serving: what the engine may use by its memory rule (vLLM: gpu_memory_utilization x capacity; "
                      "TRT-LLM: weights and buffers + the fraction of what they leave free; SGLang: capacity less its "
                      "static reserve).")
    stage: Literal["first", "last"] = opt("With pipeline stages: which stage is the most loaded.")
    free: Num = opt("Report: capacity - total.")


class Percentiles(Open):
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None


class EngineSettings(Open):
    """The engine profile's settings a load figure used (engines/*.yaml)."""

    name: str = d("vllm, sglang or trtllm.")
    version: str = d("The profile's version.")
    max_num_seqs: int = d("Most sequences in the running batch.", ge=1)
    max_num_batched_tokens: int = d("Most tokens in one step (the chunked-prefill budget).", ge=1)
    chunked_prefill: bool = d("Prompts split into chunks that share steps with decodes.")
    kv_reservation: str = d("How the KV pool admits a sequence: its blocks as it grows, or its full length.")
    memory_rule: str = d("How the engine sizes its KV pool (a fraction of the GPU, or of the free memory).")
    gpu_memory_utilization: Num = d("The fraction used.")


class LoadPoint(Open):
    """The operating point under load (tpplan/engine/load.py; docs/metrics.md 'Under load')."""

    mode: LoadMode = d(
        "Which operating point: 'concurrency' = a closed loop of --concurrency clients per replica, each sending "
        "its next request when the last one finishes (the latency objective); 'sustainable' = the largest request "
        "rate within --max-utilization of saturation and within the SLOs (throughput and cost objectives); "
        "'rate' = --rate spread over `replicas` replicas.")
    stable: bool = d("False when the rate exceeds the saturation rate: latencies are null (the queue grows without "
                     "bound).")
    rate_rps_per_replica: Num = d("Requests/s one replica serves at the operating point (Poisson arrivals).")
    replicas: Num = d("Engine instances (tp x pp x cp GPUs each) of the deployment.")
    rate_rps: Num = d("Requests/s of the whole deployment.")
    saturation_rate_rps_per_replica: Num = d("Requests/s at which the running batch (min(max_num_seqs, "
                                             "KV-admitted sequences)) or the step budget is full.")
    sustainable_rate_rps_per_replica: Num = d("Largest rate within --max-utilization x saturation and the SLOs; 0 "
                                              "when no rate meets the SLOs.")
    utilization: Num = d("rate / saturation rate.")
    limited_by: LimitedBy = d("What sets the saturation rate.")
    concurrency: NNum = d("Mean requests in one replica (queued, prefilling or decoding) = rate x request latency "
                          "(Little's law); null when unstable.")
    running_seqs: NNum = d("Mean sequences decoding in a step; null when unstable.")
    prefill_tokens_per_step: NNum = d("Mean prompt tokens per step (rate x input_len x step time); null when "
                                      "unstable.")
    step_time_s: NNum = d("Mean engine step (one token for every running sequence, plus prompt chunks); null when "
                          "unstable.")
    max_running_seqs: Num = d("min(max_num_seqs, sequences the KV pool holds at their mean length).")
    kv_admitted_seqs: Num = d("Sequences the KV pool holds: mean length (input + output/2) for paged engines, "
                              "input + output for TRT-LLM's GUARANTEED_NO_EVICT.")
    ttft_s: Percentiles = d("Time to first token: mean and percentiles (M/D/1 queueing wait, exponential tail; "
                            "the step in progress; the prompt's chunks through every stage).")
    tpot_s: Percentiles = d("Inter-token latency a decoding sequence sees: mean and percentiles (steps with and "
                            "without another request's prompt chunk).")
    engine: EngineSettings = d("The engine profile's settings used (engines/*.yaml).")


class PrefixCache(Open):
    """Present when prefix caching serves part of every prompt (--prefix-hit, --shared-prefix; issue 21)."""

    prefix_hit: Num = d("--prefix-hit as given: share of every prompt's tokens served from the cache.")
    shared_prefix_tokens: int = d("--shared-prefix as given: tokens every prompt shares.", ge=0)
    cached_prompt_tokens: int = d("Prompt tokens of each request not computed: the shared prefix in whole KV "
                                  "blocks or prefix_hit x input_len, whichever is more, at most input_len - 1.", ge=0)
    prefill_tokens: int = d("Prompt tokens each request's prefill computes (attending over the whole prompt "
                            "before them).", ge=0)
    shared_kv_bytes_per_gpu: Num = d("KV bytes of the shared prefix, held once per GPU beside the sequences'.")
    assumption: str = d("The hit rate or shared prefix the figures rest on.")


class Speculative(Open):
    """Present with --speculative (issue 21): what speculative decoding gains at this operating point."""

    method: SpecMethod = d("--speculative.")
    draft_tokens: int = d("k: tokens drafted per target step.", ge=1)
    acceptance: Num = d("Probability that a drafted token is accepted given the ones before it were (given).")
    tokens_per_step: Num = d("E = (1 - a^(k+1)) / (1 - a): tokens a target step yields per sequence (Leviathan et "
                             "al. 2023, eq. 1); tpot_s is the step over E.")
    verify_tokens: int = d("k + 1: tokens per decoding sequence the target runs in one step.", ge=2)
    draft_model: str | None = d("What drafts: the EAGLE head or MTP layer (one decoder layer), the draft model, "
                                "or null.")
    running_seqs: Num = d("Sequences decoding at the operating point.")
    speedup_at_operating_point: Num = d("E x plain decode step / (verification step + draft passes) there.")
    pays_off: bool = d("speedup_at_operating_point > 1.")
    break_even_batch: NNum = d("Smallest decode batch at which the speedup falls to 1; null: not up to 8,192.")
    verify_compute_bound_batch: NNum = d("Smallest decode batch at which the k + 1-token verification step is "
                                         "compute-bound; null: not up to 8,192.")
    assumption: str = d("The acceptance rate the figures rest on.")


class Features(Open):
    """Prefix caching and speculative decoding at a layout's operating point, each present only when enabled (the
    report's features.with.features; the same objects as serve.prefix_cache and serve.speculative)."""

    prefix_cache: PrefixCache = opt("With --prefix-hit or --shared-prefix.")
    speculative: Speculative = opt("With --speculative.")


class Idle(Open):
    """One request on an idle replica (serve.idle)."""

    ttft_s: NNum = d("One prefill of the prompt with nothing else running.")
    tpot_s: NNum = d("The decode step of a batch of `concurrency` sequences.")
    request_latency_s: NNum = d("ttft_s + output_len x tpot_s.")
    throughput_tokens_per_s: Num = d("dp x concurrency / tpot_s.")


class Serve(Open):
    """Serving latency and throughput at the operating point under load (docs/metrics.md)."""

    ttft_s: NNum = d("Mean time to first token at the operating point (serve.load): queueing, the step in "
                     "progress and the prompt's chunks; null when the rate is unstable." + _CHANGED)
    tpot_s: NNum = d("Mean inter-token latency at the operating point: the step a decoding sequence sees, with the "
                     "other running sequences and other requests' prompt chunks; null when unstable." + _CHANGED)
    request_latency_s: NNum = d("ttft_s + output_len x tpot_s at the operating point; null when unstable.")
    throughput_tokens_per_s: Num = d("Output tokens/s of the whole deployment at the operating point: replicas x "
                                     "rate x output_len (past saturation, the saturation rate). Prefill counted. "
                                     "Changed in issue 16: it was dp x concurrency / TPOT with prefill left out.")
    throughput_tokens_per_s_per_gpu: Num = opt("throughput_tokens_per_s / gpus.")
    total_tokens_per_s: Num = opt("(input + output) tokens/s of the deployment at the operating point.")
    idle: Idle = opt(
        "The idle-replica figures (what ttft_s/tpot_s meant before issue 16): ttft_s = one prefill on an idle "
        "replica; tpot_s = the decode step of a batch of `concurrency` sequences; throughput_tokens_per_s = dp x "
        "concurrency / tpot_s.")
    load: LoadPoint = opt("The operating point under load (every serving estimate since issue 16).")
    prefix_cache: PrefixCache = opt("With --prefix-hit or --shared-prefix.")
    speculative: Speculative = opt("With --speculative.")
    decode_bound: Literal["memory", "compute"] = opt("What bounds the idle decode step: HBM traffic or compute.")
    tpot_hbm_lower_bound_s: Num = opt("The decode step if it only read the weights and the KV cache at peak HBM "
                                      "bandwidth: no layout can do better.")


class Cost(Open):
    """Dollars."""

    usd_per_hour: Num = d("gpus x $/GPU-hour (the chosen price tier, or a --price override).")
    usd_per_million_tokens: NNum = d("usd_per_hour / (throughput_tokens_per_s x 3600) x 1e6: output tokens only, at "
                                     "the operating point (prefill counted since issue 16); null in training.")
    usd_total: NNum = d("Training: $ of the whole run (gpu_hours x $/GPU-hour); null for serving.")
    usd_per_gpu_hour: Num = opt("The price of one GPU-hour used.")
    usd_per_million_total_tokens: NNum = opt("Serving: usd_per_hour per 1M (input + output) tokens at the operating "
                                             "point.")
    usd_total_by_tier: dict[str, float] = opt("Training with --tokens: usd_total at each catalog price tier.")
    usd_per_hour_by_tier: dict[str, float] = opt("Report: usd_per_hour at each price tier.")
    usd_per_million_tokens_by_tier: dict[str, float] = opt("Report: usd_per_million_tokens at each price tier.")
    usd_per_month: Num = opt("Report: usd_per_hour x 730 h x --utilization.")


class Comm(Open):
    """Tensor-parallel communication of one decode step."""

    tp_allreduce_bytes_per_layer: Num = d("Bytes per rank of one TP all-reduce during decode (concurrency x hidden "
                                          "x activation bytes).")
    tp_allreduce_s_per_layer: Num = d("Time of the two TP all-reduces of one layer in one decode step.")
    comm_fraction: Num = d("Share of the decode step spent in communication.")


class Params(Open):
    total: int = d("Parameters of the model.", ge=0)
    active: int = d("Parameters used per token (MoE: shared + routed experts hit).", ge=0)
    per_gpu: Num = opt("Training: parameters held by the most loaded GPU.")


class ServeBands(Open):
    ttft_s: Band = d("ttft_s" + _BAND)
    tpot_s: Band = d("tpot_s" + _BAND)
    request_latency_s: Band = d("request_latency_s" + _BAND)
    throughput_tokens_per_s: Band = d("throughput_tokens_per_s" + _BAND)


class CostBands(Open):
    usd_per_hour: Band = d("usd_per_hour" + _BAND)
    usd_per_million_tokens: Band = d("usd_per_million_tokens" + _BAND)


class Bands(Open):
    serve: ServeBands
    cost: CostBands


class TrainBands(Open):
    step_time_s: Band = d("step_time_s" + _BAND)
    mfu: Band = d("mfu" + _BAND)


class TrainCostBands(Open):
    usd_total: Band = d("usd_total" + _BAND)


class TrainEstimateBands(Open):
    train: TrainBands
    cost: TrainCostBands


class ServeEstimate(Open):
    """One serving layout in full."""

    layout: Layout
    params: Params
    memory_per_gpu_bytes: Memory
    fits: bool = d("Weights, one ctx-token sequence and the requested concurrency fit in gpu_memory_utilization x "
                   "capacity.")
    feasible: bool = opt("No rejection reason at all (memory, layout rules, SLOs, budget).")
    kv_cache_bytes_per_token: Num = d("KV bytes per token of the whole model (all layers, before any split).")
    max_concurrency: int = d("Sequences of ctx tokens whose KV fits in what is left per replica (vLLM's KV "
                             "budget).", ge=0)
    max_context_one_sequence: int = opt("Longest single sequence that fits (vLLM's 'estimated maximum model "
                                               "length').", ge=0)
    kv_cache_bytes_per_token_per_gpu: Num = opt("KV bytes per token held by one GPU (its layers and KV heads).")
    kv_cache_bytes_per_sequence_per_gpu: Num = opt("KV bytes per GPU of one sequence of ctx tokens.")
    too_close_to_call: bool = opt("recommend: this row's objective band overlaps the first row's.")
    headroom_fraction: float = opt("Report: (usable - total) / capacity of the most loaded GPU.")
    comm: Comm
    serve: Serve
    cost: Cost
    warnings: list[str] = d("Things that work but cost (TP across nodes, PCIe-only TP > 2, ...).")
    reasons: list[str] = d("Why infeasible, by stable name (tpplan.engine.grid.Reason).")
    bands: Bands = opt("Low/high band of each figure from the calibration spread.")


class Train(Open):
    """Training step and run."""

    step_time_s: Num = d("One optimizer step: 1F1B pipeline (Narayanan et al. 2021) with bubble and exposed "
                         "TP/PP/DP/EP/CP communication.")
    mfu: Num = d("Model FLOPs (Narayanan's count, 3 x forward, full attention) / (step time x GPUs x dense peak of "
                 "the GEMM dtype).")
    hfu: Num = opt("mfu plus recomputation FLOPs.")
    tokens_per_s: Num = d("global_batch x seq_len / step_time_s.")
    gpu_hours: NNum = d("gpus x days x 24 for the whole run (null without --tokens).")
    days: NNum = opt("Wall-clock days for --tokens, never stopping (null without --tokens).")
    steps: NNum = opt("Optimizer steps of the run: tokens / (global_batch x seq_len); null without --tokens.")
    breakdown_s: dict[str, float | None] = opt("The step's terms in seconds (compute, gemm, attention, elementwise, "
                                        "bubble, tp_comm, pp_comm, dp_comm, ep_comm, cp_comm, optimizer, ...).")
    gemm_by_operator_s: dict[str, float] = opt("The GEMM term by operator (qkv, attention output, MLP, experts, "
                                               "logits), seconds per step.")
    model_flops_per_step: Num = opt("Model FLOPs of one step (the numerator of mfu).")


class TrainSettings(Open):
    """How the step was run: the settings a --framework profile or the flags chose."""

    recompute: str = d("Activation recomputation: none, selective or full.")
    sequence_parallel: bool = d("Megatron sequence parallelism.")
    zero: int = d("ZeRO stage.", ge=0, le=3)
    train_dtype: str = d("GEMM dtype.")
    micro_batches: int = d("Micro-batches per step on each pipeline.", ge=1)
    interleave: int = d("Virtual pipeline stages per GPU.", ge=1)
    ep_overlap: bool = d("Expert all-to-alls overlapped with compute.")
    attention: str = d("Attention kernels: flash (FlashAttention-2), flash1 (FlashAttention 1.x) or eager.")
    shard_group: int | None = d("ZeRO shards over groups of this many data-parallel ranks; null: all of them.")
    grad_reduce_dtype: Literal["bf16", "fp32"] = d("Dtype gradients are kept and reduced in.")
    overlap_grad_reduce: bool = d("ZeRO 0-2: the reduction behind the backward (else after it).")
    elementwise: str = d("Norms, activations and residual adds: fused kernels or eager PyTorch ops.")


class TrainEstimate(Open):
    """One training layout in full."""

    layout: Layout
    memory_per_gpu_bytes: Memory
    train: Train
    cost: Cost
    fits: bool = d("Model states plus activations fit the GPU.")
    params: Params = opt("Parameters of the model and of the most loaded GPU.")
    feasible: bool = opt("No rejection reason at all (memory, batch divisibility, deadline, budget).")
    bands: TrainEstimateBands = opt("Low/high band of each figure from the calibration spread.")
    settings: TrainSettings = d("micro-batches, recompute, ZeRO stage, sequence parallelism, GEMM dtype, virtual "
                                 "stages, expert-parallel overlap, attention kernels (flash | flash1 | eager), shard "
                                 "group, grad_reduce_dtype (bf16 | fp32: the dtype gradients are kept and reduced in) "
                                 "and overlap_grad_reduce (ZeRO 0-2: the reduction behind the backward, or after it).")
    warnings: list[str] = opt("Things that work but cost.")
    reasons: list[str]


class Search(Open):
    layouts_evaluated: int = d("Layout x concurrency rows evaluated.", ge=0)
    seconds: Num = d("Wall time of the search: enumerating, evaluating and ranking every layout (the figures of the "
                     "printed rows, such as an idle replica's, are computed after it).")
    feasible: int = opt("Rows with no rejection reason.", ge=0)


class PoolLayout(Open):
    """One instance of a disaggregated pool."""

    gpu: str
    tp: int = d("Tensor-parallel size.", ge=1)
    pp: int = d("Pipeline stages.", ge=1)
    dp: int = d("Data-parallel ranks of its expert-parallel group.", ge=1)
    ep: int = d("Expert-parallel size.", ge=1)


class DisaggPool(Open):
    """A prefill or decode pool of a disaggregated pair, sized to the rate."""

    layout: PoolLayout
    replicas: int = d("Instances.", ge=0)
    ranks: int = d("replicas x dp.", ge=0)
    gpus: int = d("GPUs of the pool.", ge=0)
    rate_rps_per_replica: Num = d("Requests/s one instance serves.")
    saturation_rate_rps_per_replica: Num = d("Requests/s at which one instance saturates.")
    sustainable_rate_rps_per_replica: Num = d("Largest rate per instance within --max-utilization and the SLO.")
    capacity_rps: Num = d("replicas x the sustainable rate.")
    usd_per_hour: Num
    ttft_s_without_transfer: NNum = opt("Prefill pool: queueing + the prompt's chunks.")
    tpot_s: NNum = opt("Decode pool: the mean decode step.")
    max_running_seqs: Num = opt("Decode pool: sequences one instance holds (engine cap and KV pool).")


class KvTransfer(Open):
    bytes_per_request: Num = d("input_len x KV bytes per token.")
    seconds: Num = d("Over the slower side's NICs.")
    overlapped: bool = d("Whether the transfer hides behind compute (not modelled: false).")


class AggregatedBest(Open):
    """The cheapest feasible aggregated deployment of a search."""

    layout: Layout
    usd_per_hour: Num
    ttft_s: NNum
    tpot_s: NNum


class DisaggPair(Open):
    """A prefill pool and a decode pool at the deployment's rate (tpplan/plan/disagg.py): prefill and decode
    (layout of one instance: tp, pp, dp ranks of its expert-parallel group, ep; replicas = instances, ranks =
    replicas x dp, gpus, rate_rps_per_replica (per instance), saturation_rate_rps_per_replica,
    sustainable_rate_rps_per_replica, capacity_rps, usd_per_hour; ttft_s_without_transfer or tpot_s), ratio
    'xPyD', kv_transfer (bytes_per_request, seconds, overlapped), ttft_s = prefill queueing + chunks + transfer,
    tpot_s from the decode pool, request_latency_s, gpus, usd_per_hour, throughput_tokens_per_s and
    usd_per_million_tokens (output tokens at the rate), commands (vLLM / SGLang and NVIDIA Dynamo); with
    --slo-percentile q also slo_percentile, ttft_s_at_slo_percentile and tpot_s_at_slo_percentile (what the SLOs
    were judged on)."""

    prefill: DisaggPool = d("The prefill pool.")
    decode: DisaggPool = d("The decode pool.")
    ratio: str = d("'xPyD': prefill and decode instances.")
    kv_transfer: KvTransfer
    ttft_s: NNum = d("Prefill queueing + chunks + the KV transfer; null when the prefill pool is unstable.")
    tpot_s: NNum = d("The decode pool's TPOT; null when it is unstable.")
    gpus: int = d("GPUs of both pools.", ge=1)
    usd_per_hour: Num = d("$ per hour of both pools.")
    request_latency_s: NNum = opt("ttft_s + output_len x tpot_s; null when a pool is unstable.")
    throughput_tokens_per_s: Num = opt("Output tokens/s of the pair at the rate.")
    usd_per_million_tokens: NNum = opt("usd_per_hour per 1M output tokens at the rate.")
    commands: dict[str, str] = opt("The first pair's serve commands, by pool.")
    slo_percentile: int = opt("With --slo-percentile: the percentile the SLOs were judged at.")
    ttft_s_at_slo_percentile: Num = opt("With --slo-percentile: the pair's TTFT at that percentile.")
    tpot_s_at_slo_percentile: Num = opt("With --slo-percentile: the pair's TPOT at that percentile.")


class DisaggEstimatePair(DisaggPair):
    feasible: bool = opt("Both pools serve the rate (and fit).")
    problems: list[str] = opt("What fails: a pool that does not fit or saturates below the rate.")


class Disaggregated(Open):
    """With --disagg (issue 21; docs/metrics.md 'Disaggregated serving')."""

    pairs: list[DisaggPair] = d(
        "Cheapest first; each pool sized to replicas = ceil(rate / its sustainable rate per replica); kv_transfer "
        "bytes_per_request = input_len x KV bytes per token, seconds over the slower side's NICs, not overlapped; "
        "the first pair has `commands`.")
    aggregated_best: AggregatedBest | None = d("The cheapest feasible aggregated deployment of the whole search "
                                                "(layout, usd_per_hour, ttft_s, tpot_s; recommend's "
                                                "cheapest_feasible).")
    cheaper: Literal["aggregated", "disaggregated"] | None = d("Which costs less per hour.")
    message: str = d("The comparison, or why no pair meets the SLOs.")
    notes: list[str]
    rows_evaluated: int = d("Prefill and decode rows evaluated.", ge=0)


class MeasuredRatio(Open):
    """One metric's replay of published runs (tpplan validate --category e2e)."""

    description: str
    n: int = d("Published runs replayed.", ge=0)
    median_ratio: Num = d("Median predicted / published.")
    min_ratio: Num = d("Lowest predicted / published.")
    max_ratio: Num = d("Highest predicted / published.")
    mean_abs_error: Num = d("Mean |predicted / published - 1|.")


class Accuracy(Open):
    """How far tpplan's end-to-end figures of this kind were from published runs, reported beside the estimate and
    never applied to it (hardware/validation/e2e-summary.json, written with docs/accuracy.md). Empty where the
    summary is not installed."""

    metrics: dict[str, MeasuredRatio] = d("Per e2e metric (train_tokens_per_s_per_gpu; serving: "
                                          "output_tokens_per_s, ttft_s, tpot_s, online_output_tokens_per_s).")
    source: str


_ACCURACY = ("Measured accuracy of this kind of figure on published runs (predicted / published), reported not "
             "applied: the bands are the calibration spread only.")


class PhaseBreakdown(Open):
    """One phase of an idle replica (estimate --breakdown)."""

    per_layer_s: dict[str, float] = d("Each term of one layer, seconds (x layers for the phase).")
    per_step_s: dict[str, float] = d("Each term paid once per phase (embedding, logits, launch), seconds.")
    total_s: Num = d("The phase's time: sum(per_layer_s) x layers + sum(per_step_s).")
    gemm_term: str = opt("The per_layer_s key the GEMMs are in (compute- or memory-bound).")
    gemm_by_operator_s: dict[str, float] = opt("That GEMM term by operator for the whole phase, seconds.")


class Breakdown(Open):
    """estimate --breakdown: where an idle replica's prefill and decode step go."""

    layers: int = d("Decoder layers of the model.", ge=1)
    prefill: PhaseBreakdown = d("One prefill of the prompt (serve.idle.ttft_s).")
    decode: PhaseBreakdown = d("One decode step (serve.idle.tpot_s).")


class EstimateResult(Envelope, ServeEstimate):
    """tpplan estimate --format json"""

    inputs: ServeInputs
    breakdown: Breakdown = opt("With --breakdown.")
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)


class EstimateDisaggResult(Envelope):
    """tpplan estimate --disagg --format json"""

    inputs: ServeInputs
    rate_rps: Num = d("Requests/s of the deployment (--rate).")
    disaggregated: DisaggEstimatePair


class RecommendResult(Envelope):
    """tpplan recommend --format json"""

    inputs: ServeInputs
    candidates: list[ServeEstimate] = d(
        "Ranked by the objective, then fewer GPUs, then lower $/hour; a row is listed only if it uses fewer GPUs "
        "than every better-ranked feasible row of its GPU type (docs/metrics.md).")
    relax: list[str] = opt("Present when nothing is feasible: changes that each make at least one layout "
                                  "feasible, every one tried by a search with it applied (limits rounded up).")
    serving_command: str = opt("vllm serve command line for the first candidate.")
    explain: list[str] = opt("With --explain: why the named layout is rejected or not listed.")
    rejected: dict[str, int] = d("Rows rejected per reason (a row can have several).")
    search: Search
    cheapest_feasible: ServeEstimate = opt("With --rate: the feasible layout with the lowest $/hour over the whole "
                                           "search (fewer GPUs on a tie), whatever the objective ranks first; "
                                           "--disagg compares its pools with it.")
    disaggregated: Disaggregated = opt("With --disagg.")
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)
    assumptions: dict[str, Any] = opt("Per GPU type of the listed rows whose figures rest on a price or datasheet "
                                      "figure to check: the calibration, price and engine settings used.")


class TrainEstimateResult(Envelope, TrainEstimate):
    """tpplan estimate --train --format json"""

    inputs: TrainInputs
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)
    notes: list[str] = opt("What to know about the inputs as the estimate read them (a global batch not given, and "
                           "the one assumed).")


class TrainRecommendResult(Envelope):
    """tpplan recommend --train --format json"""

    inputs: TrainInputs
    candidates: list[TrainEstimate]
    rejected: dict[str, int]
    relax: list[str] = opt("Present when nothing is feasible: changes that each make at least one layout feasible.")
    search: Search = opt("How many layouts were evaluated, and how long it took.")
    notes: list[str] = opt("What to know about the inputs as the search read them (a global batch rounded from "
                           "--global-batch-tokens, or one whose few divisors leave data parallelism no room).")
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)


class Finding(Open):
    rule: str = d("Stable rule id (docs/check-rules.md).", pattern=r"^TPP[0-9]{3}$")
    name: str
    level: Literal["error", "warning"]
    file: str = d("Path as given on the command line.")
    line: int = d("1-based line of the offending key (or value, for input errors).", ge=1)
    column: int = d("1-based column.", ge=1)
    document: int = d("1-based YAML document in the file.", ge=1)
    path: str = d("JSON path of the key, in the user's spelling.")
    message: str
    fix: str
    suggestion: dict[str, Any] = d("Machine-readable fix: key -> valid values or a value.")


class CheckSummary(Open):
    files: int = d("Files read.", ge=0)
    documents: int = d("YAML documents checked.", ge=0)
    errors: int = d("Findings at level error.", ge=0)
    warnings: int = d("Findings at level warning.", ge=0)
    input_errors: int = d("TPP100 findings (the exit code is 2 when non-zero).", ge=0)


class Skipped(Open):
    file: str
    document: int = d("1-based document.", ge=1)
    reason: str


class CheckResult(Envelope):
    """tpplan check --format json"""

    summary: CheckSummary
    findings: list[Finding]
    skipped: list[Skipped] = opt("YAML documents that are not deployments (no model, engine or server "
                                        "settings: a CI workflow), skipped with a note; they never change the exit "
                                        "code.")


E2eMetric = Literal["train_tokens_per_s_per_gpu", "ttft_s", "tpot_s", "output_tokens_per_s",
                    "online_output_tokens_per_s"]
_E2E_METRIC = ("train_tokens_per_s_per_gpu: training tokens per second per GPU over whole optimizer steps; ttft_s: "
               "mean time to first token at the row's request rate; tpot_s: mean inter-token latency at that rate; "
               "output_tokens_per_s: maximum output tokens per second of one engine instance (the TP group) with "
               "every request queued at once; online_output_tokens_per_s: output tokens per second served at the "
               "row's rate.")


class E2eMetricSummary(Open):
    metric: E2eMetric = d(_E2E_METRIC)
    description: str
    unit: str
    tolerance: Num
    rows: int = d("Rows with this metric.", ge=0)
    n: int = d("Rows run (the rest are not expressible yet).", ge=0)
    not_expressible: int = Field(..., ge=0)
    mean_abs_error: NNum = d("Mean |error| over the rows run.")
    median_abs_error: NNum
    max_abs_error: NNum
    bias: float | None = d("Signed mean error (+: tpplan predicts more than published).")
    median_ratio: NNum = d("Median predicted / published over rows with a non-zero prediction.")
    min_ratio: NNum = opt("Lowest predicted / published over those rows.")
    max_ratio: NNum = opt("Highest predicted / published over those rows.")
    within_tolerance: int = Field(..., ge=0)
    regressed: int = d("Guarded rows now outside the tolerance.", ge=0)


class E2eRow(Open):
    id: str
    kind: Literal["train", "serve"]
    metric: E2eMetric = d(_E2E_METRIC)
    unit: str
    predicted: float | None = d("null: not expressible.")
    published: Num = d("The published figure (NeMo TFLOP/s turned into tokens/s, see assumptions).")
    error: float | None = d("predicted / published - 1.")
    tolerance: Num
    within_tolerance: bool | None
    guarded: bool
    regressed: bool
    not_expressible: str | None
    settings: dict[str, Any] = d("tpplan inputs the row was run with.")
    assumptions: list[str] = d("Settings the row does not state or tpplan cannot express exactly.")
    warnings: list[str]
    source: str = d("repository, path, commit, table, row (file:line).")


class E2e(Open):
    """Published end-to-end runs replayed through estimate's code (present when the e2e category runs)."""

    file: str = d("The shipped rows (with sources), tolerances and guard list.")
    tolerance: dict[str, float] = d("Largest |predicted / published - 1| accepted, per metric.")
    metrics: list[E2eMetricSummary]
    rows: list[E2eRow]
    regressions: list[str]


class ValidateCategory(Open):
    category: str
    metric: str = opt("e2e: the metric of this line.")
    description: str
    tolerance: Num = d("Largest |predicted / published - 1| accepted.")
    rows: int = Field(..., ge=0)
    mean_abs_error: NNum
    max_abs_error: NNum
    failed: int = d("Rows past the tolerance; for e2e, guarded rows that regressed.", ge=0)


class ValidateRow(Open):
    category: str
    name: str
    predicted: float
    published: float
    unit: str
    error: float = d("predicted / published - 1.")
    within_tolerance: bool
    source: str


class ValidateResult(Envelope):
    """tpplan validate --format json"""

    passed: bool = d("No row past its tolerance; for e2e, no guarded row regressed.")
    inputs: dict[str, Any] = opt("catalog_sha256 and the categories run.")
    categories: list[ValidateCategory]
    e2e: E2e = opt("With the e2e category.")
    rows: list[ValidateRow]


class CostTier(Open):
    tier: str = d("low, typical, high, override, or a --prices row's tier, commitment and SKU.")
    usd_per_gpu_hour: Num = d("Price of one GPU for one hour, USD.")
    as_of: str | None = d("Date of the quote (ISO).")
    source: str
    assumed: bool = d("The price is a stand-in, not a quote.")
    usd_per_hour: Num = d("gpus x usd_per_gpu_hour x utilization.")
    usd_per_month: Num = d("usd_per_hour x 730.")
    total_usd: Num = d("billed_gpu_hours x usd_per_gpu_hour.")


class Rental(Open):
    """What a number of GPUs of one type cost for a period (tpplan/engine/cost.py rental_cost)."""

    gpu: str = d("Catalog name of the GPU.")
    gpus: int = d("GPUs rented.", ge=1)
    nodes: int = opt("Nodes of gpus_per_node needed (rounded up).", ge=1)
    gpus_per_node: int = opt("", ge=1)
    period_s: Num = d("Rental period, wall clock (a month = 730 h).")
    period_hours: Num = opt("period_s / 3600.")
    utilization: Num = d("Fraction of the period the GPUs are rented and billed, in (0, 1].")
    billed_gpu_hours: Num = d("gpus x period_hours x utilization.")
    tiers: list[CostTier] = d("One row per catalog tier (low, typical, high), or one 'override' row when --price "
                              "names this GPU.")
    source_tags: dict[str, str] = opt("Meaning of each source tag ([V], [S], [D], [recalled], [assumed]) that "
                                             "occurs.")
    notes: list[str] = opt("Notes on the figures.")


class CostResult(Envelope, Rental):
    """tpplan cost --format json"""


class BlockedGpu(Open):
    """A GPU type of the report with no feasible layout."""

    gpu: str
    why: list[str] = d("What would make one layout feasible, or the first rejection reason.")
    rejected: dict[str, int] = opt("Serving: its rows rejected per reason.")


class ChartPoint(Open):
    """A point of the report's cost-latency chart."""

    gpu: str
    usd_per_million_tokens: Num = d("$ per 1M output tokens at the row's operating point.")
    request_latency_s: Num = d("Request latency at that point.")
    layout: str = opt("Pareto points: the layout ('8x l40s TP1/PP8').")
    gpus: int = opt("Scatter points: GPUs of the deployment.", ge=1)


class ContextRow(Open):
    """The best layout on the winner's GPU type at one context length."""

    ctx_tokens: int = d("The context length.", ge=1)
    requested: bool = d("The context the report was asked for.")
    gpu: str
    layout: str | None = d("The best layout ('8x l40s TP1/PP8'); null when none fits.")
    gpus: int = opt("GPUs of the deployment.", ge=1)
    concurrency: NNum = opt("Mean requests in one replica at the operating point.")
    tpot_s: NNum = opt("Mean TPOT at the operating point.")
    ttft_s: NNum = opt("Mean TTFT at the operating point.")
    throughput_tokens_per_s: Num = opt("Output tokens/s of the deployment.")
    usd_per_million_tokens_by_tier: dict[str, float] = opt("$ per 1M output tokens at each price tier.")


class Sensitivity(Open):
    context: list[ContextRow] = d("The winner's GPU type at 8k, 32k, 128k tokens and the requested context.")


class FeatureRow(Open):
    """The best layout of one side of the report's with-and-without comparison."""

    layout: Layout
    ttft_s: NNum
    tpot_s: NNum
    request_latency_s: NNum
    throughput_tokens_per_s: Num
    usd_per_hour: Num
    usd_per_million_tokens: NNum


class FeatureComparison(Open):
    """The best layout on the winner's GPU type with prefix caching / speculative decoding and without."""

    gpu: str
    with_: FeatureRow = Field(..., alias="with", description="With the features as planned.")
    without: FeatureRow | None = d("Without them; null when no layout is feasible.")
    features: Features = d("What the features change at the 'with' layout's operating point.")


class PriceQuote(Open):
    usd_per_hour: Num = d("$ per GPU-hour.")
    as_of: str = d("Date of the quote (ISO).")
    source: str


class PriceRow(Open):
    """One GPU type's price tiers (hardware/*.yaml) and any override."""

    gpu: str
    low: PriceQuote
    typical: PriceQuote
    high: PriceQuote
    override: bool = d("--price or --prices sets this GPU's price.")
    override_source: str | None
    override_as_of: str | None


class RunCost(Open):
    """report --gpu-hours: the run's $ on one GPU type."""

    gpu: str
    gpu_hours: Num
    usd_per_gpu_hour_by_tier: dict[str, float]
    usd_total_by_tier: dict[str, float] = d("gpu_hours x $/GPU-hour at each tier.")


class ServeReportResult(Envelope):
    """tpplan report --format json, serving"""

    kind: Literal["serve"]
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)
    inputs: ServeInputs
    comparison: list[ServeEstimate] = d("Best layout per GPU type, ranked by the objective (with $ at each price "
                                        "tier, per month, free memory and headroom).")
    blocked: list[BlockedGpu] = d("GPU types with no feasible layout.")
    rejected: dict[str, int] = d("Rows rejected per reason.")
    layouts_evaluated: int = d("Layout x concurrency rows evaluated.", ge=0)
    pareto: list[ChartPoint] = d("The Pareto front of $/1M tokens against request latency.")
    scatter: list[ChartPoint] = d("Every GPU type's ranked rows for the chart.")
    winner: ServeEstimate = opt("The first row of comparison.")
    runner_up: ServeEstimate | None = opt("The second row of comparison, or null.")
    too_close_to_call: list[str] = opt("GPU types whose objective band overlaps the winner's.")
    serving_command: str = opt("The engine command line of the winner.")
    assumptions: dict[str, Any] = opt("The winner's calibration, price and engine settings.")
    sensitivity: Sensitivity = opt("The winner's GPU type at other contexts.")
    features: FeatureComparison = opt("With prefix caching or speculative decoding.")
    disaggregated: Disaggregated = opt("With --disagg.")
    prices: list[PriceRow] = d("Each GPU's price tiers with date and source.")


class TrainReportResult(Envelope):
    """tpplan report --train --format json"""

    kind: Literal["train"]
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)
    inputs: TrainInputs
    comparison: list[TrainEstimate] = d("Best plan per GPU type, fastest first (with free memory).")
    blocked: list[BlockedGpu] = d("GPU types with no feasible plan.")
    winner: TrainEstimate = opt("The first row of comparison.")
    runner_up: TrainEstimate | None = opt("The second row of comparison, or null.")
    prices: list[PriceRow] = d("Each GPU's price tiers with date and source.")
    notes: list[str] = opt("What to know about the inputs as the search read them (a global batch not given).")


class RunReportResult(Envelope):
    """tpplan report --train --gpu-hours N --format json: a run of known size"""

    kind: Literal["train"]
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)
    inputs: RunInputs
    runs: list[RunCost] = d("The run's $ per GPU type and tier.")
    prices: list[PriceRow] = d("Each GPU's price tiers with date and source.")


class ReportResult(RootModel[ServeReportResult | TrainReportResult | RunReportResult]):
    """tpplan report --format json: a serving report, a training report, or the cost of a run of known size
    (report --train --gpu-hours)"""


class ModelDerived(Open):
    """What ``tpplan models show`` derives from a model's config."""

    params_total: int = d("Parameters.", ge=0)
    params_active: int = d("Parameters used per token (MoE: shared + routed experts hit).", ge=0)
    kv_cache_bytes_per_token: dict[str, float] = d("KV-cache bytes per token of the whole model, by KV dtype.")
    valid_tp: list[int] = d("Tensor-parallel sizes the attention heads allow.")
    layer_kinds: dict[str, int] = d("Layers by attention kind (full, sliding, chunked), where the model mixes them.")
    kv_cache_bytes_per_token_at_context: dict[str, float] = d(
        "KV-cache bytes per token of one sequence of 8K / 32K / 128K tokens at the model's dtype (a sliding window "
        "or chunk caps what its layers cache).")


class ModelShow(ModelSpec):
    """A catalog model in full (models/*.yaml, the keys of tpplan/catalog/spec.py ModelSpec) and its derived
    counts."""

    derived: ModelDerived


class ModelShowResult(Envelope):
    """tpplan models show NAME --format json"""

    model: ModelShow


class GpuShowResult(Envelope):
    """tpplan gpus show NAME --format json"""

    gpu: GpuSpec = d("A catalog GPU in full (hardware/*.yaml, the keys of tpplan/catalog/spec.py GpuSpec), every "
                     "figure with its source.")


class CatalogRow(Open):
    name: str = d("Catalog name.")
    aliases: list[str] = d("Other names the commands accept.")
    file: str = d("The catalog file it was read from.")


class ModelRow(CatalogRow):
    """One model of ``tpplan models``."""

    family: str = d("Architecture family (Hugging Face model_type).")
    hf_id: str | None = d("Hugging Face id, or null.")
    params_total: int = d("Parameters.", ge=0)
    params_active: int = d("Parameters used per token (MoE: shared + routed experts hit).", ge=0)
    kv_cache_bytes_per_token: Num = d("KV-cache bytes per token of the whole model at 2 bytes a value (bf16).")
    kv_cache_dtype: str = d("The model's dtype: the KV cache's default ('auto').")
    max_context: int = d("max_position_embeddings (after any rope scaling in its config).", ge=1)
    attention: str = d("mha, gqa, mqa or mla.")
    moe: bool = d("Mixture of experts.")


class ModelsResult(Envelope):
    """tpplan models --format json"""

    catalog_sha256: str = d("sha256 over every catalog file read.")
    models: list[ModelRow]


class ScaleUp(Open):
    kind: str = d("nvlink, infinity-fabric, pcie, ...")
    bandwidth_bytes_per_s: Num = d("Scale-up bandwidth per GPU, one direction.")
    domain_gpus: int = d("GPUs in one scale-up domain (a node, or an NVL72 rack).", ge=1)


class GpuRow(CatalogRow):
    """One GPU of ``tpplan gpus``."""

    vendor: str
    memory_bytes: int = d("Memory of one GPU (bytes).", ge=0)
    hbm_bandwidth_bytes_per_s: Num = d("Peak HBM bandwidth of one GPU.")
    dense_flops_per_s: dict[str, float] = d("Dense (no 2:4 sparsity) tensor-core peak per dtype, FLOP/s.")
    dtypes: list[str] = d("The dtypes with a tensor-core rate (training refuses others).")
    scale_up: ScaleUp
    gpus_per_node: int = d("GPUs in one node.", ge=1)
    nic_bandwidth_bytes_per_s: Num = d("Scale-out (NIC) bandwidth per GPU, one direction.")
    tdp_w: Num = d("Board power (W).")
    price_usd_per_hour: dict[str, float] = d("$ per GPU-hour at each catalog price tier (low, typical, high).")


class GpusResult(Envelope):
    """tpplan gpus --format json"""

    catalog_sha256: str = d("sha256 over every catalog file read.")
    gpus: list[GpuRow]


class EngineRow(CatalogRow):
    """One serving engine profile of ``tpplan engines``."""

    default_version: str = d("The version --engine-version takes when not given.")
    versions: list[str] = d("Versions with a profile.")
    source: str


class EnginesResult(Envelope):
    """tpplan engines --format json"""

    catalog_sha256: str = d("sha256 over every catalog file read.")
    engines: list[EngineRow]


class ProfileSetting(Open):
    value: Any = d("The setting (a list: the choices the framework offers, its first the default).")
    source: str


class FrameworkRow(CatalogRow):
    """One training framework profile of ``tpplan frameworks``."""

    description: str
    settings: dict[str, ProfileSetting] = d("Each setting the profile states, with its source.")
    source: str
    defaults: str = d("The settings in words (the table's column).")


class FrameworksResult(Envelope):
    """tpplan frameworks --format json"""

    catalog_sha256: str = d("sha256 over every catalog file read.")
    frameworks: list[FrameworkRow]


class CollectiveRow(Open):
    size_bytes: int = d("Message size per rank, as nccl-tests' size column.", ge=0)
    time_s: Num = d("Time of one collective.")
    algbw_bytes_per_s: Num = d("size / time (nccl-tests doc/PERFORMANCE.md).")
    busbw_bytes_per_s: Num = d("algbw x 2(n-1)/n for all-reduce, x (n-1)/n for all-gather, reduce-scatter and "
                               "all-to-all (nccl-tests doc/PERFORMANCE.md).")


class Collective(Open):
    """One collective's time, algbw and busbw at each size (tpplan/engine/comm.py collective_report)."""

    op: str = d("all-reduce, all-gather, reduce-scatter, all-to-all or p2p.")
    gpu: str
    ranks: int = d("GPUs taking part.", ge=1)
    algorithm: str = d("ring, tree or NVLS, or hierarchical across scale-up domains.")
    nodes: int = d("Nodes spanned.", ge=1)
    rows: list[CollectiveRow] = d("One per --size.")
    time_s: Num = d("The first size's time.")
    algbw_bytes_per_s: Num = d("The first size's algbw.")
    busbw_bytes_per_s: Num = d("The first size's busbw.")
    calibration_source: str = d("Where the alpha-beta fit of this GPU's fabric comes from.")


class CollectiveResult(Envelope, Collective):
    """tpplan collective --format json"""


RESULTS: dict[str, type[BaseModel]] = {
    "estimate": EstimateResult, "estimate-disagg": EstimateDisaggResult, "recommend": RecommendResult,
    "train-estimate": TrainEstimateResult, "train-recommend": TrainRecommendResult, "check": CheckResult,
    "validate": ValidateResult, "cost": CostResult, "report": ReportResult, "models": ModelsResult,
    "gpus": GpusResult, "engines": EnginesResult, "frameworks": FrameworksResult, "collective": CollectiveResult,
    "model": ModelShowResult, "gpu": GpuShowResult,
}
"""The result model of each ``tpplan schema NAME``."""

