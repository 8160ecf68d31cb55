"""JSON Schemas (draft 2020-12) of every ``--format json`` output, with each metric defined precisely.

``tpplan schema NAME`` prints one; the tests validate real outputs against them. Keys are a public contract
(docs/metrics.md; the contract of the issues): add, never rename. Bump ``SCHEMA_VERSION`` only for a breaking change.
"""

from __future__ import annotations

from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _num(desc: str, minimum: float | None = 0, nullable: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"type": ["number", "null"] if nullable else "number", "description": desc}
    if minimum is not None:
        d["minimum"] = minimum
    return d


def _int(desc: str, minimum: int = 0) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "description": desc}


def _obj(props: dict[str, Any], desc: str = "", required: list[str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"type": "object", "properties": props, "required": required or list(props)}
    if desc:
        d["description"] = desc
    return d


def _band(desc: str) -> dict[str, Any]:
    return {"type": ["array", "null"], "items": {"type": ["number", "null"]}, "minItems": 2, "maxItems": 2,
            "description": desc + " [low, high] from the calibration spread (see docs/metrics.md, bands)."}


def _e2e_schema() -> dict[str, Any]:
    metric = {"enum": ["train_tokens_per_s_per_gpu", "ttft_s", "tpot_s", "output_tokens_per_s",
                       "online_output_tokens_per_s"],
              "description": "train_tokens_per_s_per_gpu: training tokens per second per GPU over whole optimizer "
                             "steps; ttft_s: mean time to first token at the row's request rate; tpot_s: mean "
                             "inter-token latency at that rate; output_tokens_per_s: maximum output tokens per "
                             "second of one engine instance (the TP group) with every request queued at once; "
                             "online_output_tokens_per_s: output tokens per second served at the row's rate."}
    nullable_num = {"type": ["number", "null"]}
    return _obj({
        "file": {"type": "string", "description": "The shipped rows (with sources), tolerances and guard list."},
        "tolerance": {"type": "object", "additionalProperties": {"type": "number"},
                      "description": "Largest |predicted / published - 1| accepted, per metric."},
        "metrics": {"type": "array", "items": _obj({
            "metric": metric, "description": {"type": "string"}, "unit": {"type": "string"},
            "tolerance": _num(""), "rows": _int("Rows with this metric."),
            "n": _int("Rows run (the rest are not expressible yet)."), "not_expressible": _int(""),
            "mean_abs_error": _num("Mean |error| over the rows run.", nullable=True),
            "median_abs_error": _num("", nullable=True), "max_abs_error": _num("", nullable=True),
            "bias": _num("Signed mean error (+: tpplan predicts more than published).", None, nullable=True),
            "median_ratio": _num("Median predicted / published over rows with a non-zero prediction.",
                                 nullable=True),
            "within_tolerance": _int(""), "regressed": _int("Guarded rows now outside the tolerance.")})},
        "rows": {"type": "array", "items": _obj({
            "id": {"type": "string"}, "kind": {"enum": ["train", "serve"]}, "metric": metric,
            "unit": {"type": "string"}, "predicted": {**nullable_num, "description": "null: not expressible."},
            "published": _num("The published figure (NeMo TFLOP/s turned into tokens/s, see assumptions)."),
            "error": {**nullable_num, "description": "predicted / published - 1."}, "tolerance": _num(""),
            "within_tolerance": {"type": ["boolean", "null"]}, "guarded": {"type": "boolean"},
            "regressed": {"type": "boolean"}, "not_expressible": {"type": ["string", "null"]},
            "settings": {"type": "object", "description": "tpplan inputs the row was run with."},
            "assumptions": {"type": "array", "items": {"type": "string"},
                            "description": "Settings the row does not state or tpplan cannot express exactly."},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "source": {"type": "string", "description": "repository, path, commit, table, row (file:line)."}})},
        "regressions": {"type": "array", "items": {"type": "string"}}},
        "Published end-to-end runs replayed through estimate's code (present when the e2e category runs).",
        required=["file", "tolerance", "metrics", "rows", "regressions"])


E2E = _e2e_schema()
TOOL = _obj({"name": {"const": "tpplan"}, "version": {"type": "string"}})
ENVELOPE = {"schema_version": {"const": 1, "description": "Output format version; bumped only on a breaking change."},
            "tool": TOOL}

LAYOUT = _obj({
    "gpu": {"type": "string", "description": "GPU catalog name."},
    "tp": _int("Tensor-parallel size.", 1), "pp": _int("Pipeline stages.", 1),
    "dp": _int("Data-parallel replicas (serving: the fewest that expert parallelism needs).", 1),
    "cp": _int("Context-parallel size.", 1),
    "ep": _int("Expert-parallel size, carved out of tp x dp x cp (not an extra factor of the GPU count).", 1),
    "gpus": _int("GPUs of the deployment = tp x pp x dp x cp.", 1),
    "nodes": _int("Nodes = ceil(gpus / GPUs per node).", 1),
}, "Where the model runs.", ["gpu", "tp", "pp", "dp", "cp", "ep", "gpus", "nodes"])

MEMORY = _obj({
    "weights": _num("Parameter bytes on the most loaded GPU (first or last pipeline stage; embeddings included)."),
    "kv_cache": _num("KV-cache bytes on that GPU for `concurrency` sequences of ctx tokens (serving; 0 in training)."),
    "activations": _num("Serving: the activation peak of vLLM's profile run at max_num_batched_tokens. Training: "
                        "Korthikanti et al. 2022 activations of the micro-batches in flight on the first stage."),
    "gradients": _num("Gradient bytes per GPU (training; ZeRO-2/3 shard them)."),
    "optimizer": _num("Adam fp32 master weights, momentum and variance per GPU (training; ZeRO-1+ shard them)."),
    "overhead": _num("CUDA context, NCCL buffers and the CUDA-graph pool."),
    "total": _num("Sum of the components above."),
    "capacity": _num("Driver-reported memory of one GPU (bytes)."),
}, "Bytes per GPU of the most loaded GPU.", ["weights", "kv_cache", "activations", "gradients", "optimizer",
                                             "overhead", "total", "capacity"])

_CHANGED = (" Changed in issue 16 (same key, schema_version 1): this figure was an idle replica's; the idle "
            "figure is now serve.idle.")

_PCT = {"type": "object", "properties": {k: {"type": ["number", "null"]} for k in ("mean", "p50", "p90", "p99")},
        "required": ["mean", "p50", "p90", "p99"]}

LOAD = _obj({
    "mode": {"enum": ["concurrency", "sustainable", "rate"], "description": (
        "Which operating point: 'concurrency' = a closed loop of --concurrency clients per replica, each sending "
        "its next request when the last one finishes (the latency objective); 'sustainable' = the largest request "
        "rate within --max-utilization of saturation and within the SLOs (throughput and cost objectives); "
        "'rate' = --rate spread over `replicas` replicas.")},
    "stable": {"type": "boolean", "description": "False when the rate exceeds the saturation rate: latencies are "
                                                 "null (the queue grows without bound)."},
    "rate_rps_per_replica": _num("Requests/s one replica serves at the operating point (Poisson arrivals)."),
    "replicas": _num("Engine instances (tp x pp x cp GPUs each) of the deployment."),
    "rate_rps": _num("Requests/s of the whole deployment."),
    "saturation_rate_rps_per_replica": _num("Requests/s at which the running batch (min(max_num_seqs, KV-admitted "
                                            "sequences)) or the step budget is full."),
    "sustainable_rate_rps_per_replica": _num("Largest rate within --max-utilization x saturation and the SLOs; 0 "
                                             "when no rate meets the SLOs."),
    "utilization": _num("rate / saturation rate."),
    "limited_by": {"enum": ["batch", "kv", "step-budget", "prefill-chunks"],
                   "description": "What sets the saturation rate."},
    "concurrency": _num("Mean requests in one replica (queued, prefilling or decoding) = rate x request latency "
                        "(Little's law)."),
    "running_seqs": _num("Mean sequences decoding in a step."),
    "prefill_tokens_per_step": _num("Mean prompt tokens per step (rate x input_len x step time)."),
    "step_time_s": _num("Mean engine step (one token for every running sequence, plus prompt chunks)."),
    "max_running_seqs": _num("min(max_num_seqs, sequences the KV pool holds at their mean length)."),
    "kv_admitted_seqs": _num("Sequences the KV pool holds: mean length (input + output/2) for paged engines, "
                             "input + output for TRT-LLM's GUARANTEED_NO_EVICT."),
    "ttft_s": {**_PCT, "description": "Time to first token: mean and percentiles (M/D/1 queueing wait, exponential "
                                      "tail; the step in progress; the prompt's chunks through every stage)."},
    "tpot_s": {**_PCT, "description": "Inter-token latency a decoding sequence sees: mean and percentiles (steps "
                                      "with and without another request's prompt chunk)."},
    "engine": {"type": "object", "description": "The engine profile's settings used (engines/*.yaml)."},
}, "The operating point under load (tpplan/engine/load.py; docs/metrics.md 'Under load').")

SERVE = _obj({
    "ttft_s": _num("Mean time to first token at the operating point (serve.load): queueing, the step in "
                   "progress and the prompt's chunks; null when the rate is unstable." + _CHANGED, nullable=True),
    "tpot_s": _num("Mean inter-token latency at the operating point: the step a decoding sequence sees, with the "
                   "other running sequences and other requests' prompt chunks; null when unstable." + _CHANGED,
                   nullable=True),
    "request_latency_s": _num("ttft_s + output_len x tpot_s at the operating point; null when unstable.",
                              nullable=True),
    "throughput_tokens_per_s": _num("Output tokens/s of the whole deployment at the operating point: replicas x "
                                    "rate x output_len (past saturation, the saturation rate). Prefill counted. "
                                    "Changed in issue 16: it was dp x concurrency / TPOT with prefill left out."),
    "throughput_tokens_per_s_per_gpu": _num("throughput_tokens_per_s / gpus."),
    "total_tokens_per_s": _num("(input + output) tokens/s of the deployment at the operating point."),
    "idle": {"type": "object", "description": "The idle-replica figures (what ttft_s/tpot_s meant before issue "
             "16): ttft_s = one prefill on an idle replica; tpot_s = the decode step of a batch of `concurrency` "
             "sequences; throughput_tokens_per_s = dp x concurrency / tpot_s."},
    "load": LOAD,
    "prefix_cache": _obj({
        "prefix_hit": _num("--prefix-hit as given: share of every prompt's tokens served from the cache."),
        "shared_prefix_tokens": _int("--shared-prefix as given: tokens every prompt shares."),
        "cached_prompt_tokens": _int("Prompt tokens of each request not computed: the shared prefix in whole KV "
                                     "blocks or prefix_hit x input_len, whichever is more, at most input_len - 1."),
        "prefill_tokens": _int("Prompt tokens each request's prefill computes (attending over the whole prompt "
                               "before them)."),
        "shared_kv_bytes_per_gpu": _num("KV bytes of the shared prefix, held once per GPU beside the sequences'."),
        "assumption": {"type": "string", "description": "The hit rate or shared prefix the figures rest on."},
    }, "Present when prefix caching serves part of every prompt (--prefix-hit, --shared-prefix; issue 21)."),
    "speculative": _obj({
        "method": {"enum": ["eagle", "eagle3", "mtp", "ngram", "draft"], "description": "--speculative."},
        "draft_tokens": _int("k: tokens drafted per target step.", 1),
        "acceptance": _num("Probability that a drafted token is accepted given the ones before it were (given)."),
        "tokens_per_step": _num("E = (1 - a^(k+1)) / (1 - a): tokens a target step yields per sequence (Leviathan "
                                "et al. 2023, eq. 1); tpot_s is the step over E."),
        "verify_tokens": _int("k + 1: tokens per decoding sequence the target runs in one step.", 2),
        "draft_model": {"type": ["string", "null"], "description": "What drafts: the EAGLE head or MTP layer "
                                                                   "(one decoder layer), the draft model, or null."},
        "running_seqs": _num("Sequences decoding at the operating point."),
        "speedup_at_operating_point": _num("E x plain decode step / (verification step + draft passes) there."),
        "pays_off": {"type": "boolean", "description": "speedup_at_operating_point > 1."},
        "break_even_batch": _num("Smallest decode batch at which the speedup falls to 1; null: not up to 8,192.",
                                 nullable=True),
        "verify_compute_bound_batch": _num("Smallest decode batch at which the k + 1-token verification step is "
                                           "compute-bound; null: not up to 8,192.", nullable=True),
        "assumption": {"type": "string", "description": "The acceptance rate the figures rest on."},
    }, "Present with --speculative (issue 21): what speculative decoding gains at this operating point."),
}, "Serving latency and throughput at the operating point under load (docs/metrics.md).",
    ["ttft_s", "tpot_s", "request_latency_s", "throughput_tokens_per_s"])

COST = _obj({
    "usd_per_hour": _num("gpus x $/GPU-hour (the chosen price tier, or a --price override)."),
    "usd_per_million_tokens": _num("usd_per_hour / (throughput_tokens_per_s x 3600) x 1e6: output tokens only, at "
                                   "the operating point (prefill counted since issue 16); null in training.",
                                   nullable=True),
    "usd_total": _num("Training: $ of the whole run (gpu_hours x $/GPU-hour); null for serving.", nullable=True),
}, "Dollars.", ["usd_per_hour", "usd_per_million_tokens", "usd_total"])

COMM = _obj({
    "tp_allreduce_bytes_per_layer": _num("Bytes per rank of one TP all-reduce during decode (concurrency x hidden x "
                                         "activation bytes)."),
    "tp_allreduce_s_per_layer": _num("Time of the two TP all-reduces of one layer in one decode step."),
    "comm_fraction": _num("Share of the decode step spent in communication.", 0),
}, "Tensor-parallel communication of one decode step.")

SERVE_ESTIMATE = _obj({
    "layout": LAYOUT,
    "params": _obj({"total": _int("Parameters of the model."),
                    "active": _int("Parameters used per token (MoE: shared + routed experts hit).")}),
    "memory_per_gpu_bytes": MEMORY,
    "fits": {"type": "boolean", "description": "Weights, one ctx-token sequence and the requested concurrency fit "
                                               "in gpu_memory_utilization x capacity."},
    "feasible": {"type": "boolean", "description": "No rejection reason at all (memory, layout rules, SLOs, budget)."},
    "kv_cache_bytes_per_token": _num("KV bytes per token of the whole model (all layers, before any split)."),
    "max_concurrency": _int("Sequences of ctx tokens whose KV fits in what is left per replica (vLLM's KV budget)."),
    "max_context_one_sequence": _int("Longest single sequence that fits (vLLM's 'estimated maximum model length')."),
    "comm": COMM, "serve": SERVE, "cost": COST,
    "warnings": {"type": "array", "items": {"type": "string"}, "description": "Things that work but cost (TP across "
                                                                                "nodes, PCIe-only TP > 2, ...)."},
    "reasons": {"type": "array", "items": {"type": "string"}, "description": "Why infeasible, by stable name "
                                                                               "(tpplan.engine.grid.Reason)."},
    "bands": _obj({"serve": _obj({k: _band(k) for k in ("ttft_s", "tpot_s", "request_latency_s",
                                                          "throughput_tokens_per_s")}),
                   "cost": _obj({k: _band(k) for k in ("usd_per_hour", "usd_per_million_tokens")})}),
}, "One serving layout in full.", ["layout", "params", "memory_per_gpu_bytes", "fits", "kv_cache_bytes_per_token",
                                   "max_concurrency", "comm", "serve", "cost", "warnings", "reasons"])

INPUTS = {"type": "object", "description": "Resolved inputs: model, GPUs, tokens, dtypes, prices, catalog hash.",
          "properties": {"catalog_sha256": {"type": "string", "description": "sha256 over every catalog file read."}},
          "required": ["catalog_sha256"]}

TRAIN = _obj({
    "step_time_s": _num("One optimizer step: 1F1B pipeline (Narayanan et al. 2021) with bubble and exposed "
                        "TP/PP/DP/EP/CP communication."),
    "mfu": _num("Model FLOPs (Narayanan's count, 3 x forward, full attention) / (step time x GPUs x dense peak of the "
                "GEMM dtype).", 0),
    "hfu": _num("mfu plus recomputation FLOPs.", 0),
    "tokens_per_s": _num("global_batch x seq_len / step_time_s."),
    "gpu_hours": _num("gpus x days x 24 for the whole run (null without --tokens).", nullable=True),
    "days": _num("Wall-clock days for --tokens, never stopping (null without --tokens).", nullable=True),
}, "Training step and run.", ["step_time_s", "mfu", "tokens_per_s", "gpu_hours"])

TRAIN_ESTIMATE = _obj({
    "layout": LAYOUT, "memory_per_gpu_bytes": MEMORY, "train": TRAIN, "cost": COST,
    "fits": {"type": "boolean", "description": "Model states plus activations fit the GPU."},
    "settings": {"type": "object", "description": "micro-batches, recompute, ZeRO stage, sequence parallelism, "
                                                  "GEMM dtype."},
    "warnings": {"type": "array", "items": {"type": "string"}},
    "reasons": {"type": "array", "items": {"type": "string"}},
}, "One training layout in full.", ["layout", "memory_per_gpu_bytes", "train", "cost", "fits", "settings", "reasons"])

FINDING = _obj({
    "rule": {"type": "string", "pattern": "^TPP[0-9]{3}$", "description": "Stable rule id (docs/check-rules.md)."},
    "name": {"type": "string"}, "level": {"enum": ["error", "warning"]},
    "file": {"type": "string", "description": "Path as given on the command line."},
    "line": _int("1-based line of the offending key (or value, for input errors).", 1),
    "column": _int("1-based column.", 1), "document": _int("1-based YAML document in the file.", 1),
    "path": {"type": "string", "description": "JSON path of the key, in the user's spelling."},
    "message": {"type": "string"}, "fix": {"type": "string"},
    "suggestion": {"type": "object", "description": "Machine-readable fix: key -> valid values or a value."},
})


def _doc(title: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"$schema": DIALECT, "title": title, "type": "object",
            "properties": {**ENVELOPE, **props}, "required": ["schema_version", "tool", *required]}


DISAGG_PAIR = {"type": "object", "description": (
    "A prefill pool and a decode pool at the deployment's rate (tpplan/plan/disagg.py): prefill and decode (layout of "
    "one instance: tp, pp, dp ranks of its expert-parallel group, ep; replicas = instances, ranks = replicas x "
    "dp, gpus, rate_rps_per_replica (per instance), saturation_rate_rps_per_replica, "
    "sustainable_rate_rps_per_replica, capacity_rps, usd_per_hour; ttft_s_without_transfer or tpot_s), ratio "
    "'xPyD', kv_transfer (bytes_per_request, seconds, overlapped), ttft_s = prefill queueing + chunks + transfer,"
    " tpot_s from the decode pool, request_latency_s, gpus, usd_per_hour, throughput_tokens_per_s and "
    "usd_per_million_tokens (output tokens at the rate), commands (vLLM / SGLang and NVIDIA Dynamo)."),
    "required": ["prefill", "decode", "ratio", "kv_transfer", "ttft_s", "tpot_s", "gpus", "usd_per_hour"]}

SCHEMAS: dict[str, dict[str, Any]] = {
    "estimate": _doc("tpplan estimate --format json", {"inputs": INPUTS, **SERVE_ESTIMATE["properties"]},
                     ["inputs", *SERVE_ESTIMATE["required"]]),
    "estimate-disagg": _doc("tpplan estimate --disagg --format json", {
        "inputs": INPUTS, "rate_rps": _num("Requests/s of the deployment (--rate)."),
        "disaggregated": {**DISAGG_PAIR, "properties": {
            "feasible": {"type": "boolean", "description": "Both pools serve the rate (and fit)."},
            "problems": {"type": "array", "items": {"type": "string"},
                         "description": "What fails: a pool that does not fit or saturates below the rate."}}}},
        ["inputs", "rate_rps", "disaggregated"]),
    "recommend": _doc("tpplan recommend --format json", {
        "inputs": INPUTS,
        "candidates": {"type": "array", "items": SERVE_ESTIMATE, "description": (
            "Ranked by the objective, then fewer GPUs, then lower $/hour; a row is listed only if it uses fewer "
            "GPUs than every better-ranked feasible row of its GPU type (docs/metrics.md).")},
        "relax": {"type": "array", "items": {"type": "string"}, "description": (
            "Present when nothing is feasible: changes that each make at least one layout feasible, every one "
            "tried by a search with it applied (limits rounded up).")},
        "serving_command": {"type": "string", "description": "vllm serve command line for the first candidate."},
        "explain": {"type": "array", "items": {"type": "string"},
                    "description": "With --explain: why the named layout is rejected or not listed."},
        "rejected": {"type": "object", "additionalProperties": {"type": "integer"},
                     "description": "Rows rejected per reason (a row can have several)."},
        "search": _obj({"layouts_evaluated": _int("Layout x concurrency rows evaluated."),
                        "seconds": _num("Search time.")}, required=["layouts_evaluated", "seconds"]),
        "disaggregated": _obj({
            "pairs": {"type": "array", "description": (
                "Cheapest first; each pool sized to replicas = ceil(rate / its sustainable rate per replica); "
                "kv_transfer bytes_per_request = input_len x KV bytes per token, seconds over the slower side's "
                "NICs, not overlapped; the first pair has `commands`."), "items": DISAGG_PAIR},
            "aggregated_best": {"type": ["object", "null"], "description": (
                "The cheapest feasible aggregated candidate listed (layout, usd_per_hour, ttft_s, tpot_s).")},
            "cheaper": {"enum": ["aggregated", "disaggregated", None], "description": "Which costs less per hour."},
            "message": {"type": "string", "description": "The comparison, or why no pair meets the SLOs."},
            "notes": {"type": "array", "items": {"type": "string"}},
            "rows_evaluated": _int("Prefill and decode rows evaluated."),
        }, "With --disagg (issue 21; docs/metrics.md 'Disaggregated serving')."),
    }, ["inputs", "candidates", "rejected", "search"]),
    "train-estimate": _doc("tpplan estimate --train --format json", {"inputs": INPUTS,
                                                                     **TRAIN_ESTIMATE["properties"]},
                           ["inputs", *TRAIN_ESTIMATE["required"]]),
    "train-recommend": _doc("tpplan recommend --train --format json", {
        "inputs": INPUTS, "candidates": {"type": "array", "items": TRAIN_ESTIMATE},
        "rejected": {"type": "object", "additionalProperties": {"type": "integer"}},
        "search": _obj({"layouts_evaluated": _int(""), "seconds": _num("")})}, ["inputs", "candidates", "rejected"]),
    "check": _doc("tpplan check --format json", {
        "summary": _obj({"files": _int("Files read."), "documents": _int("YAML documents checked."),
                         "errors": _int("Findings at level error."), "warnings": _int("Findings at level warning."),
                         "input_errors": _int("TPP100 findings (the exit code is 2 when non-zero).")}),
        "findings": {"type": "array", "items": FINDING},
        "skipped": {"type": "array", "description": "YAML documents that are not deployments (no model, engine or "
                    "server settings: a CI workflow), skipped with a note; they never change the exit code.",
                    "items": _obj({"file": {"type": "string"}, "document": _int("1-based document.", 1),
                                   "reason": {"type": "string"}})}}, ["summary", "findings"]),
    "validate": _doc("tpplan validate --format json", {
        "passed": {"type": "boolean", "description": "No row past its tolerance; for e2e, no guarded row regressed."},
        "categories": {"type": "array", "items": _obj({
            "category": {"type": "string"}, "description": {"type": "string"},
            "tolerance": _num("Largest |predicted / published - 1| accepted."), "rows": _int(""),
            "mean_abs_error": _num("", nullable=True), "max_abs_error": _num("", nullable=True),
            "failed": _int("Rows past the tolerance; for e2e, guarded rows that regressed.")},
            required=["category", "description", "tolerance", "rows", "mean_abs_error", "max_abs_error",
                      "failed"])},
        "e2e": E2E,
        "rows": {"type": "array", "items": _obj({
            "category": {"type": "string"}, "name": {"type": "string"}, "predicted": _num("", None),
            "published": _num("", None), "unit": {"type": "string"},
            "error": _num("predicted / published - 1.", None), "within_tolerance": {"type": "boolean"},
            "source": {"type": "string"}})}}, ["passed", "categories", "rows"]),
    "cost": _doc("tpplan cost --format json", {
        "gpu": {"type": "string", "description": "Catalog name of the GPU."},
        "gpus": _int("GPUs rented.", 1),
        "nodes": _int("Nodes of gpus_per_node needed (rounded up).", 1), "gpus_per_node": _int("", 1),
        "period_s": _num("Rental period, wall clock (a month = 730 h)."), "period_hours": _num(""),
        "utilization": _num("Fraction of the period the GPUs are rented and billed, in (0, 1]."),
        "billed_gpu_hours": _num("gpus x period_hours x utilization."),
        "tiers": {"type": "array", "description": "One row per catalog tier (low, typical, high), or one "
                  "'override' row when --price names this GPU.", "items": _obj({
                      "tier": {"type": "string", "description": "low, typical, high, override, or a --prices "
                               "row's tier, commitment and SKU."},
                      "usd_per_gpu_hour": _num("Price of one GPU for one hour, USD."),
                      "as_of": {"type": ["string", "null"], "description": "Date of the quote (ISO)."},
                      "source": {"type": "string"},
                      "assumed": {"type": "boolean", "description": "The price is a stand-in, not a quote."},
                      "usd_per_hour": _num("gpus x usd_per_gpu_hour x utilization."),
                      "usd_per_month": _num("usd_per_hour x 730."),
                      "total_usd": _num("billed_gpu_hours x usd_per_gpu_hour.")})},
        "source_tags": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Meaning of each source tag ([V], [S], [D], [assumed]) that occurs."},
        "notes": {"type": "array", "items": {"type": "string"}}},
        ["gpu", "gpus", "period_s", "utilization", "billed_gpu_hours", "tiers"]),
    "report": _doc("tpplan report --format json", {
        "kind": {"enum": ["serve", "train"]}, "inputs": INPUTS,
        "comparison": {"type": "array", "description": "Best layout per GPU type, ranked by the objective."},
        "prices": {"type": "array", "description": "Each GPU's price tiers with date and source."}},
        ["kind", "inputs", "prices"]),
}
