"""Typed results: one pydantic model per ``--format json`` output and for each object inside it, every metric
with its definition and unit (``Field(description=...)``). ``tpplan schema NAME`` is generated from these
(``tpplan/schemas.py``); the tests validate real outputs against the generated schemas and the models.

Keys are a public contract (docs/metrics.md; the contract of the issues): add, never rename. The models allow
extra keys (a result may carry more than its schema names, as it always has); a key listed here is required
unless it has a default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class Tool(Open):
    name: Literal["tpplan"]
    version: str


class Envelope(Open):
    schema_version: Literal[1] = d("Output format version; bumped only on a breaking change.")
    tool: Tool


class Inputs(Open):
    """Resolved inputs: model, GPUs, tokens, dtypes, prices, catalog hash."""

    catalog_sha256: str = d("sha256 over every catalog file read.")


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


class Percentiles(Open):
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None


class LoadPoint(Open):
    """The operating point under load (tpplan/engine/load.py; docs/metrics.md 'Under load')."""

    mode: Literal["concurrency", "sustainable", "rate"] = d(
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
    limited_by: Literal["batch", "kv", "step-budget", "prefill-chunks"] = d("What sets the saturation rate.")
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
    engine: dict[str, Any] = d("The engine profile's settings used (engines/*.yaml).")


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

    method: Literal["eagle", "eagle3", "mtp", "ngram", "draft"] = d("--speculative.")
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
    idle: dict[str, Any] = opt(
        "The idle-replica figures (what ttft_s/tpot_s meant before issue 16): ttft_s = one prefill on an idle "
        "replica; tpot_s = the decode step of a batch of `concurrency` sequences; throughput_tokens_per_s = dp x "
        "concurrency / tpot_s.")
    load: LoadPoint = opt("The operating point under load (every serving estimate since issue 16).")
    prefix_cache: PrefixCache = opt("With --prefix-hit or --shared-prefix.")
    speculative: Speculative = opt("With --speculative.")


class Cost(Open):
    """Dollars."""

    usd_per_hour: Num = d("gpus x $/GPU-hour (the chosen price tier, or a --price override).")
    usd_per_million_tokens: NNum = d("usd_per_hour / (throughput_tokens_per_s x 3600) x 1e6: output tokens only, at "
                                     "the operating point (prefill counted since issue 16); null in training.")
    usd_total: NNum = d("Training: $ of the whole run (gpu_hours x $/GPU-hour); null for serving.")


class Comm(Open):
    """Tensor-parallel communication of one decode step."""

    tp_allreduce_bytes_per_layer: Num = d("Bytes per rank of one TP all-reduce during decode (concurrency x hidden "
                                          "x activation bytes).")
    tp_allreduce_s_per_layer: Num = d("Time of the two TP all-reduces of one layer in one decode step.")
    comm_fraction: Num = d("Share of the decode step spent in communication.")


class Params(Open):
    total: int = d("Parameters of the model.", ge=0)
    active: int = d("Parameters used per token (MoE: shared + routed experts hit).", ge=0)


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


class TrainEstimate(Open):
    """One training layout in full."""

    layout: Layout
    memory_per_gpu_bytes: Memory
    train: Train
    cost: Cost
    fits: bool = d("Model states plus activations fit the GPU.")
    settings: dict[str, Any] = d("micro-batches, recompute, ZeRO stage, sequence parallelism, GEMM dtype, virtual "
                                 "stages, expert-parallel overlap, attention kernels (flash | flash1 | eager), shard "
                                 "group, grad_reduce_dtype (bf16 | fp32: the dtype gradients are kept and reduced in) "
                                 "and overlap_grad_reduce (ZeRO 0-2: the reduction behind the backward, or after it).")
    warnings: list[str] = opt("Things that work but cost.")
    reasons: list[str]


class Search(Open):
    layouts_evaluated: int = d("Layout x concurrency rows evaluated.", ge=0)
    seconds: Num = d("Wall time of the search: enumerating, evaluating and ranking every layout (the figures of the "
                     "printed rows, such as an idle replica's, are computed after it).")


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

    prefill: Any
    decode: Any
    ratio: Any
    kv_transfer: Any
    ttft_s: Any
    tpot_s: Any
    gpus: Any
    usd_per_hour: Any


class DisaggEstimatePair(DisaggPair):
    feasible: bool = opt("Both pools serve the rate (and fit).")
    problems: list[str] = opt("What fails: a pool that does not fit or saturates below the rate.")


class Disaggregated(Open):
    """With --disagg (issue 21; docs/metrics.md 'Disaggregated serving')."""

    pairs: list[DisaggPair] = d(
        "Cheapest first; each pool sized to replicas = ceil(rate / its sustainable rate per replica); kv_transfer "
        "bytes_per_request = input_len x KV bytes per token, seconds over the slower side's NICs, not overlapped; "
        "the first pair has `commands`.")
    aggregated_best: dict[str, Any] | None = d("The cheapest feasible aggregated deployment of the whole search "
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


class EstimateResult(Envelope, ServeEstimate):
    """tpplan estimate --format json"""

    inputs: Inputs
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)


class EstimateDisaggResult(Envelope):
    """tpplan estimate --disagg --format json"""

    inputs: Inputs
    rate_rps: Num = d("Requests/s of the deployment (--rate).")
    disaggregated: DisaggEstimatePair


class RecommendResult(Envelope):
    """tpplan recommend --format json"""

    inputs: Inputs
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


class TrainEstimateResult(Envelope, TrainEstimate):
    """tpplan estimate --train --format json"""

    inputs: Inputs
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)


class TrainRecommendResult(Envelope):
    """tpplan recommend --train --format json"""

    inputs: Inputs
    candidates: list[TrainEstimate]
    rejected: dict[str, int]
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


class CostResult(Envelope):
    """tpplan cost --format json"""

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


class ReportResult(Envelope):
    """tpplan report --format json"""

    kind: Literal["serve", "train"]
    inputs: Inputs
    comparison: list[Any] = opt("Best layout per GPU type, ranked by the objective.")
    prices: list[Any] = d("Each GPU's price tiers with date and source.")
    accuracy: Accuracy | dict[str, Any] = opt(_ACCURACY)


RESULTS: dict[str, type[BaseModel]] = {
    "estimate": EstimateResult, "estimate-disagg": EstimateDisaggResult, "recommend": RecommendResult,
    "train-estimate": TrainEstimateResult, "train-recommend": TrainRecommendResult, "check": CheckResult,
    "validate": ValidateResult, "cost": CostResult, "report": ReportResult,
}
"""The result model of each ``tpplan schema NAME``."""
