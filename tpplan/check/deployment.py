"""``tpplan check``: lint deployment configs (vLLM / SGLang / TRT-LLM spellings) against the planner.

A deployment document is read with the safe YAML loader, its keys are normalised to tpplan's names while
remembering where the user wrote them, and the layout is evaluated with the very functions ``estimate`` and
``recommend`` use (``planner.evaluate_serve``), so the three commands agree on feasibility. Each problem
becomes a ``Finding`` with a stable rule id, the 1-based line and column of the offending key, a message
with the numbers, and a fix.

Conventions (exit codes, GitHub annotation escaping, SARIF 2.1.0) follow ruff / ty / yamllint and the
actions/toolkit ``packages/core/src/command.ts`` escaping rules (docs/check-rules.md).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tpplan.engine import grid
from tpplan.engine.grid import RULE_OF, Reason
from tpplan.engine.load import MAX_UTILIZATION
from tpplan.errors import TpplanError
from tpplan.plan import serve as planner
from tpplan.yamlio import Located, load_documents, read_text

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    level: str
    """Default level: error (the deployment fails or breaks a stated limit) or warning."""
    summary: str
    example: str
    fix: str


RULES: tuple[Rule, ...] = (
    Rule("TPP001", "tp-heads", "error", "tensor_parallel_size does not divide the attention heads",
         "tensor_parallel_size: 3 with llama-3.1-70b (64 heads)",
         "Use a TP size that divides the number of attention heads (vLLM refuses to start otherwise)."),
    Rule("TPP002", "tp-kv-heads", "error", "tensor_parallel_size breaks the KV-head rule",
         "tensor_parallel_size: 12 with 8 KV heads (12 is neither a divisor nor a multiple of 8)",
         "Use a TP size that divides the KV heads or is a multiple of them (KV heads are replicated)."),
    Rule("TPP003", "ep-dense", "error", "expert parallelism on a dense model",
         "enable_expert_parallel: true with llama-3.1-70b",
         "Remove enable_expert_parallel / expert_parallel_size: the model has no experts."),
    Rule("TPP004", "ep-experts", "error", "the expert-parallel size does not divide the experts",
         "enable_expert_parallel: true, tensor_parallel_size: 3 with 8 experts (EP = TP x DP = 3)",
         "Choose TP x DP (vLLM) or expert_parallel_size dividing the number of experts."),
    Rule("TPP005", "pp-layers", "error", "more pipeline stages than layers",
         "pipeline_parallel_size: 128 with 80 layers", "Use at most one pipeline stage per layer."),
    Rule("TPP006", "cp-divides", "error", "context_parallel_size does not divide max_model_len",
         "context_parallel_size: 3 with max_model_len: 32768",
         "Use a context-parallel size that divides the context length."),
    Rule("TPP010", "weights-oom", "error", "the weights (plus activations and runtime overhead) do not fit",
         "llama-3.1-70b bf16 on one h100-sxm",
         "Raise tensor_parallel_size / pipeline_parallel_size, quantize the weights, or use a larger GPU."),
    Rule("TPP011", "kv-one-sequence", "error", "the KV cache of one max_model_len sequence does not fit",
         "llama-3.1-70b, tensor_parallel_size: 2, max_model_len: 131072 on h100-sxm",
         "Lower max_model_len to the largest context that fits, use kv_cache_dtype: fp8, or raise TP."),
    Rule("TPP012", "concurrency-oom", "warning", "max_num_seqs sequences of full length do not fit in KV memory",
         "max_num_seqs: 256 with max_model_len: 131072",
         "Lower max_num_seqs to the concurrency that fits (the engine would queue or preempt the rest)."),
    Rule("TPP013", "ctx-above-model-max", "error", "max_model_len exceeds the model's max_position_embeddings",
         "max_model_len: 262144 with a 131072-position model",
         "Lower max_model_len to the model's limit, or configure RoPE scaling deliberately."),
    Rule("TPP020", "ttft-slo", "error", "predicted time to first token above the SLO",
         "slo: {ttft_s: 0.1} with a 32k-token prompt",
         "Raise tensor parallelism, use a faster GPU, or set a realistic input_len / SLO."),
    Rule("TPP021", "tpot-slo", "error", "predicted time per output token above the SLO",
         "slo: {tpot_s: 0.01} for a 70B model at TP=2",
         "Raise tensor parallelism, lower max_num_seqs, quantize the weights, or use a faster GPU."),
    Rule("TPP023", "disagg-pool", "error",
         "a disaggregated pool's replicas cannot serve the rate within its SLO",
         "prefill: {replicas: 1, tensor_parallel_size: 2} for rate: 20 with 4k-token prompts",
         "Add replicas to the pool, raise its tensor parallelism, or relax the SLO it carries (prefill: TTFT, "
         "decode: TPOT)."),
    Rule("TPP024", "rate-saturates", "error", "the replicas cannot serve the document's rate (above saturation)",
         "rate: 30 with one tensor_parallel_size: 4 replica of llama-3.1-70b and 2k-token prompts",
         "Add data_parallel_size replicas (planned at 85% of saturation each), raise tensor parallelism, or use "
         "faster GPUs; past saturation the queue, and with it TTFT, grows without bound."),
    Rule("TPP022", "budget", "error", "$/hour of the deployment above the budget",
         "budget: {usd_per_hour: 10} for 8 x h100-sxm",
         "Use fewer or cheaper GPUs, or raise the budget."),
    Rule("TPP030", "tp-spans-nodes", "warning", "tensor parallelism crosses a node or the NVLink domain",
         "tensor_parallel_size: 16 on 8-GPU nodes",
         "Keep TP within a node; use pipeline_parallel_size across nodes instead."),
    Rule("TPP031", "tp-pcie", "warning", "TP > 2 on GPUs without a GPU-to-GPU link (all-reduces over PCIe)",
         "tensor_parallel_size: 4 on l40s",
         "Use TP <= 2 with pipeline or data parallelism, or GPUs with NVLink."),
    Rule("TPP040", "unknown-key", "warning", "a key tpplan and the engines it knows do not recognise",
         "tensor_paralel_size: 4 (typo)", "Fix the spelling, or remove the key."),
    Rule("TPP041", "duplicate-setting", "error", "the same setting is given under two spellings",
         "tp: 4 and tensor_parallel_size: 8 in one document", "Keep one spelling."),
    Rule("TPP100", "input-error", "error",
         "the deployment cannot be read: unreadable file, malformed YAML, unknown model or GPU, bad value",
         "model: llama-71b", "Fix the value; the message lists the valid choices."),
)
RULE_BY_ID = {r.id: r for r in RULES}

# ---------------------------------------------------------------------------------------------------
# key spellings: internal name -> accepted spellings (snake case; kebab case is folded to it)
# vLLM EngineArgs / SGLang ServerArgs / TRT-LLM LlmArgs names from ecosystem-conventions.md 2.2
# ---------------------------------------------------------------------------------------------------

SPELLINGS: dict[str, tuple[str, ...]] = {
    "model": ("model", "model_path"),
    "gpu": ("gpu", "gpu_type", "accelerator"),
    "gpus_per_node": ("gpus_per_node",),
    "tp": ("tensor_parallel_size", "tp", "tp_size"),
    "pp": ("pipeline_parallel_size", "pp", "pp_size"),
    "dp": ("data_parallel_size", "dp", "dp_size"),
    "cp": ("context_parallel_size", "cp", "prefill_context_parallel_size"),
    "ep": ("expert_parallel_size", "ep", "ep_size", "moe_expert_parallel_size"),
    "enable_ep": ("enable_expert_parallel",),
    "ctx": ("max_model_len", "ctx", "context_length", "max_seq_len"),
    "concurrency": ("max_num_seqs", "concurrency", "max_running_requests", "max_batch_size"),
    "dtype": ("dtype",),
    "quantization": ("quantization",),
    "weight_dtype": ("weight_dtype",),
    "kv_dtype": ("kv_cache_dtype", "kv_dtype"),
    "util": ("gpu_memory_utilization", "mem_fraction_static", "free_gpu_memory_fraction",
             "kv_cache_free_gpu_memory_fraction"),
    "budget_tokens": ("max_num_batched_tokens", "chunked_prefill_size", "max_num_tokens"),
    "engine": ("engine",),
    "rate": ("rate", "request_rate", "rate_rps"),
    "input_len": ("input_len",),
    "output_len": ("output_len",),
    "slo": ("slo",),
    "budget": ("budget",),
    "price": ("price_usd_per_gpu_hour",),
    "name": ("name", "description"),
    "rope_scaling": ("rope_scaling",),
    "hf_overrides": ("hf_overrides", "json_model_override_args"),
}
_INTERNAL = {s: k for k, v in SPELLINGS.items() for s in v}


def _snake(key: Any) -> str:
    """A key as the spellings tables hold it: kebab and snake case are the same key (max-model-len)."""
    return str(key).strip().replace("-", "_").lower()

# vLLM ``serve`` arguments tpplan does not model: accepted silently so real engine configs pass through
# (vllm/engine/arg_utils.py EngineArgs and vllm/entrypoints/openai/cli_args.py; snake case).
ENGINE_KEYS = frozenset("""
host port uds uvicorn_log_level api_key served_model_name tokenizer tokenizer_mode skip_tokenizer_init
trust_remote_code download_dir load_format config_format seed revision code_revision tokenizer_revision
max_num_batched_tokens max_num_partial_prefills max_long_partial_prefills long_prefill_token_threshold
block_size enable_prefix_caching prefix_caching_hash_algo swap_space cpu_offload_gb kv_cache_memory_bytes
num_gpu_blocks_override enforce_eager max_seq_len_to_capture disable_custom_all_reduce
distributed_executor_backend data_parallel_size_local data_parallel_address data_parallel_rpc_port
data_parallel_backend data_parallel_start_rank decode_context_parallel_size enable_eplb
num_redundant_experts eplb_config max_parallel_loading_workers ray_workers_use_nsight enable_lora
max_loras max_lora_rank lora_modules enable_chunked_prefill speculative_config kv_transfer_config
kv_events_config compilation_config async_scheduling scheduling_policy preemption_mode generation_config
override_generation_config chat_template chat_template_content_format response_role
enable_auto_tool_choice tool_call_parser reasoning_parser rope_scaling rope_theta hf_overrides hf_config_path
task runner convert limit_mm_per_prompt mm_processor_kwargs disable_log_stats disable_log_requests
enable_log_requests max_logprobs api_server_count allowed_origins allowed_methods allowed_headers
ssl_keyfile ssl_certfile ssl_ca_certs root_path middleware guided_decoding_backend structured_outputs_config
worker_cls worker_extension_cls calculate_kv_scales logits_processors enable_sleep_mode
otlp_traces_endpoint collect_detailed_traces model_impl override_pooler_config pooler_config
enable_prompt_tokens_details enable_server_load_tracking max_cudagraph_capture_size cuda_graph_sizes
mem_fraction_static chunked_prefill_size page_size trust_remote_code enable_dp_attention
""".split())

QUANT_TO_DTYPE = {"fp8": "fp8", "fbgemm_fp8": "fp8", "modelopt": "fp8", "compressed-tensors": None,
                  "compressed_tensors": None, "awq": "int4", "awq_marlin": "int4", "gptq": "int4",
                  "gptq_marlin": "int4", "bitsandbytes": "int4", "marlin": "int4", "mxfp4": "fp4",
                  "nvfp4": "fp4", "modelopt_fp4": "fp4"}


@dataclass
class Finding:
    rule: str
    level: str
    file: str
    line: int
    column: int
    message: str
    path: str = "$"
    fix: str = ""
    suggestion: dict[str, Any] = field(default_factory=dict)
    document: int = 1

    def __post_init__(self) -> None:
        self.fix = self.fix or RULE_BY_ID[self.rule].fix

    @property
    def name(self) -> str:
        return RULE_BY_ID[self.rule].name

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "name": self.name, "level": self.level, "file": self.file,
                "line": self.line, "column": self.column, "document": self.document, "path": self.path,
                "message": self.message, "fix": self.fix, "suggestion": self.suggestion}


@dataclass
class Report:
    files: list[str] = field(default_factory=list)
    documents: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """Documents that are not deployments (a CI workflow): file, document, reason."""

    def count(self, level: str) -> int:
        return sum(1 for f in self.findings if f.level == level)

    @property
    def input_errors(self) -> int:
        return sum(1 for f in self.findings if f.rule == "TPP100")

    def summary(self) -> dict[str, int]:
        return {"files": len(self.files), "documents": self.documents, "errors": self.count("error"),
                "warnings": self.count("warning"), "input_errors": self.input_errors}

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "tool": planner.tool_info(), "summary": self.summary(),
                "findings": [f.to_json() for f in self.findings], "skipped": self.skipped}

    def exit_code(self, fail_on: str = "error", exit_zero: bool = False) -> int:
        """0 clean, 1 findings at or above ``fail_on``, 2 input errors (ruff / ty convention)."""
        if self.input_errors:
            return 2
        if exit_zero:
            return 0
        levels = {"error"} if fail_on == "error" else {"error", "warning"}
        return 1 if any(f.level in levels for f in self.findings) else 0


# ---------------------------------------------------------------------------------------------------
# reading a deployment document
# ---------------------------------------------------------------------------------------------------


class _Input(Exception):
    """An input problem inside one document (reported as TPP100 at a key)."""

    def __init__(self, message: str, key: tuple[str, ...] = (), fix: str = ""):
        super().__init__(message)
        self.key, self.fix = key, fix


@dataclass
class _Doc:
    loc: Located
    index: int
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """internal name -> YAML path of the key the user wrote (their spelling)."""
    values: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    """internal name -> the spelling the user wrote, where the path does not end in it (a container argument)."""
    pool: tuple[str, str] | None = None
    """A disaggregated deployment's pool this document view reads: (its section key, 'prefill' | 'decode')."""

    def at(self, name: str | tuple[str, ...]) -> tuple[int, int]:
        path = self.keys.get(name, ()) if isinstance(name, str) else name
        return self.loc.where(path)

    def shown(self, name: str, default: str | None = None) -> str:
        if name in self.names:
            return self.names[name]
        path = self.keys.get(name)
        return str(path[-1]) if path else (default or SPELLINGS[name][0])

    def jpath(self, name: str | tuple[str, ...]) -> str:
        path = self.keys.get(name, ()) if isinstance(name, str) else name
        return "$" + "".join(f".{p}" for p in path)


# TensorRT-LLM's nested KV-cache settings (tensorrt_llm/llmapi/llm_args.py KvCacheConfig): the two tpplan
# models; the others (enable_block_reuse, max_tokens, host_cache_size, ...) pass through
_TRT_KV_CACHE = {"dtype": "kv_cache_dtype", "free_gpu_memory_fraction": "free_gpu_memory_fraction"}
# short options of `vllm serve` (vllm/engine/arg_utils.py) and SGLang's --tp (server_args.py)
_SHORT = {"tp": "tensor_parallel_size", "pp": "pipeline_parallel_size", "dp": "data_parallel_size",
          "q": "quantization"}


def _entries(doc: _Doc) -> list[tuple[str, Any, tuple[Any, ...], str | None]]:
    """(key as written, value, YAML path, display name) of every setting of a document: its top-level keys,
    tpplan's own keys under an ``x-tpplan:`` mapping (engines that reject unknown keys never see them there),
    TensorRT-LLM's nested ``kv_cache_config``, or, in a Kubernetes manifest or Helm values file, the
    ``command:`` / ``args:`` of the container that runs vllm serve / sglang.launch_server / trtllm-serve."""
    data = doc.loc.data
    argv = _server_argv(data, ())
    out: list[tuple[str, Any, tuple[Any, ...], str | None]] = []
    if argv is not None:
        out += argv
    sections = _pool_sections(data)
    if doc.pool is not None and argv is None:
        key = doc.pool[0]
        own = _section_entries(data[key], key)
        mine = {_INTERNAL.get(_snake(k)) for k, _, _, _ in own}
        out += own
        # the shared settings (model, gpu, rate, slo, ...) unless the pool sets its own
        data = {k: v for k, v in data.items() if k not in sections.values()
                and _INTERNAL.get(_snake(k)) not in mine - {None}}
    for key, value in data.items():
        snake = _snake(key)
        if snake == "x_tpplan" and isinstance(value, dict):
            out += [(str(k), v, (str(key), str(k)), None) for k, v in value.items()]
        elif argv is not None:
            continue  # a manifest: its other keys (apiVersion, image, resources, ...) are not engine settings
        elif snake == "kv_cache_config" and isinstance(value, dict):
            out += [(_TRT_KV_CACHE[str(k)], v, (str(key), str(k)), f"{key}.{k}") for k, v in value.items()
                    if str(k) in _TRT_KV_CACHE]
        else:
            out.append((str(key), value, (str(key),), None))
    return out


POOL_KEYS = {"prefill": ("prefill", "prefill_worker", "prefillworker", "vllm_prefill_worker"),
             "decode": ("decode", "decode_worker", "decodeworker", "vllm_decode_worker")}
"""Sections of a disaggregated deployment (llm-d values' prefill / decode, NVIDIA Dynamo's PrefillWorker /
DecodeWorker): each a mapping of engine settings plus ``replicas``; keys outside them are shared."""
_PARALLELISM = {"tensor": "tensor_parallel_size", "pipeline": "pipeline_parallel_size",
                "data": "data_parallel_size", "expert": "expert_parallel_size"}


def _pool_sections(data: Any) -> dict[str, str]:
    """role -> the section key of a disaggregated deployment (both pools present), else {}."""
    if not isinstance(data, dict):
        return {}
    found = {}
    for key, value in data.items():
        snake = _snake(key)
        for role, names in POOL_KEYS.items():
            if snake in names and isinstance(value, dict):
                found[role] = key
    return found if len(found) == 2 else {}


def _section_entries(section: dict[Any, Any], top: str) -> list[tuple[str, Any, tuple[Any, ...], str | None]]:
    """A pool's settings: its keys (``replicas`` is the pool's data-parallel count) and an llm-d
    ``parallelism: {tensor, pipeline, data, expert}`` mapping."""
    out: list[tuple[str, Any, tuple[Any, ...], str | None]] = []
    for key, value in section.items():
        snake = _snake(key)
        if snake == "parallelism" and isinstance(value, dict):
            out += [(_PARALLELISM.get(str(k), str(k)), v, (top, str(key), str(k)), f"{top}.{key}.{k}")
                    for k, v in value.items()]
        elif snake == "replicas":
            out.append(("data_parallel_size", value, (top, str(key)), f"{top}.{key}"))
        else:
            out.append((str(key), value, (top, str(key)), f"{top}.{key}"))
    return out


_SERVERS = ("vllm", "sglang", "trtllm-serve", "launch_server", "api_server")


def _server_argv(node: Any, path: tuple[Any, ...]) -> list[tuple[str, Any, tuple[Any, ...], str | None]] | None:
    """The options of the first container (a mapping with ``command`` and/or ``args`` lists) that starts an
    inference server, each with the path of the list item that holds it; None when there is none."""
    if isinstance(node, dict):
        cmd, args = node.get("command"), node.get("args")
        items: list[tuple[str, tuple[Any, ...]]] = []
        for name, lst in (("command", cmd), ("args", args)):
            if isinstance(lst, list):
                items += [(str(x), (*path, name, i)) for i, x in enumerate(lst) if isinstance(x, str | int | float)]
            elif isinstance(lst, str):
                items.append((lst, (*path, name)))
        text = " ".join(t for t, _ in items)
        # the vllm/vllm-openai and lmsysorg/sglang images start the server themselves: --model alone marks it
        if items and "--" in text and (any(srv in text for srv in _SERVERS) or "--model" in text):
            return _parse_argv(items)
        for k, v in node.items():
            found = _server_argv(v, (*path, str(k)))
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found = _server_argv(v, (*path, i))
            if found is not None:
                return found
    return None


def _scalar(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _parse_argv(items: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, Any, tuple[Any, ...], str | None]]:
    """``--key value``, ``--key=value``, a bare ``--flag`` (true), and ``vllm serve MODEL``'s positional model;
    a ``sh -c "vllm serve ..."`` string is split as the shell would."""
    import shlex

    tokens: list[tuple[str, tuple[Any, ...]]] = []
    for text, path in items:
        try:
            parts = shlex.split(text) if (" " in text.strip()) else [text]
        except ValueError:
            parts = text.split()
        tokens += [(t, path) for t in parts]
    out: list[tuple[str, Any, tuple[Any, ...], str | None]] = []
    # options before the server (python3 -m, sh -c) belong to the launcher
    i = next((j + 1 for j, (t, _) in enumerate(tokens) if any(srv in t for srv in _SERVERS)), 0)
    if i and tokens[i - 1][0] == "vllm":
        i -= 1  # keep `serve MODEL`
    while i < len(tokens):
        tok, path = tokens[i]
        if tok == "serve" and i + 1 < len(tokens) and not tokens[i + 1][0].startswith("-"):
            out.append(("model", tokens[i + 1][0], tokens[i + 1][1], "serve MODEL"))
            i += 2
            continue
        if tok.startswith("-") and len(tok) > 1 and not _is_number(tok):
            written = tok.partition("=")[0]
            name, eq, val = tok.lstrip("-").partition("=")
            name = _SHORT.get(name, name) if not tok.startswith("--") else name
            if eq:
                out.append((name, _scalar(val), path, written))
            elif i + 1 < len(tokens) and (not tokens[i + 1][0].startswith("-") or _is_number(tokens[i + 1][0])):
                out.append((name, _scalar(tokens[i + 1][0]), tokens[i + 1][1], written))
                i += 1
            else:
                out.append((name, True, path, written))
        i += 1
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _normalise(doc: _Doc, out: list[Finding]) -> None:
    for key, value, path, display in _entries(doc):
        snake = _snake(key)
        internal = _INTERNAL.get(snake)
        if internal is None:
            if snake not in ENGINE_KEYS and snake not in _QUIET_KEYS:
                line, col = doc.at(path)
                out.append(Finding("TPP040", "warning", doc.loc.file, line, col,
                                   f"unknown key {display or key!r}: tpplan ignores it", doc.jpath(path),
                                   _closest_key(snake), document=doc.index))
            continue
        if internal in doc.keys:
            first = doc.shown(internal)
            line, col = doc.at(path)
            out.append(Finding("TPP041", "error", doc.loc.file, line, col,
                               f"{display or key!r} sets the same thing as {first!r} (given earlier); keep one",
                               doc.jpath(path), "Remove one of the two keys.", document=doc.index))
            continue
        doc.keys[internal] = path
        doc.values[internal] = value
        if display:
            doc.names[internal] = display


# TensorRT-LLM / SGLang settings tpplan does not model, accepted silently like ENGINE_KEYS
_QUIET_KEYS = frozenset("""
kv_cache_config backend build_config enable_chunked_prefill cuda_graph_config enable_attention_dp
disable_overlap_schedule print_config scheduler_config moe_config speculative_config stream_interval
attention_backend sampling_backend grammar_backend disable_radix_cache enable_torch_compile log_level
""".split())


def _closest_key(snake: str) -> str:
    import difflib

    known = sorted(set(_INTERNAL) | ENGINE_KEYS)
    close = difflib.get_close_matches(snake, known, n=1, cutoff=0.75)
    return f"Did you mean {close[0]!r}?" if close else "Remove the key, or check the engine's argument names."


def _int(doc: _Doc, name: str, default: int, minimum: int = 1) -> int:
    if name not in doc.values:
        return default
    v = doc.values[name]
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise _Input(f"{doc.shown(name)} must be an integer; got {v!r}", doc.keys[name])
    if isinstance(v, str):
        from tpplan.units import UnitError, parse_count

        try:
            v = parse_count(v, doc.shown(name))
        except UnitError as exc:
            raise _Input(str(exc), doc.keys[name]) from None
    if v < minimum:
        raise _Input(f"{doc.shown(name)} must be at least {minimum}; got {v}", doc.keys[name])
    if v > 1_000_000_000:
        raise _Input(f"{doc.shown(name)} is implausibly large ({v})", doc.keys[name])
    return int(v)


def _tokens(doc: _Doc, name: str) -> int | None:
    if name not in doc.values:
        return None
    from tpplan.units import UnitError, parse_tokens

    v = doc.values[name]
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise _Input(f"{doc.shown(name)} must be a token count such as 32768 or '32k'; got {v!r}",
                     doc.keys[name])
    try:
        return parse_tokens(v, doc.shown(name))
    except UnitError as exc:
        raise _Input(str(exc), doc.keys[name]) from None


def _number(doc: _Doc, path: tuple[str, ...], value: Any, kind: str) -> float:
    from tpplan.units import UnitError, parse_request_rate, parse_seconds, parse_usd

    fn = {"s": parse_seconds, "rate": parse_request_rate}.get(kind, parse_usd)
    try:
        if isinstance(value, bool):
            raise UnitError(f"{path[-1]} must be a number; got {value!r}")
        v = float(fn(value, path[-1]))
    except UnitError as exc:
        raise _Input(str(exc), path) from None
    if not math.isfinite(v) or v <= 0:
        raise _Input(f"{path[-1]} must be a positive number; got {value!r}", path)
    return v


def _mapping(doc: _Doc, name: str, allowed: dict[str, str]) -> dict[str, tuple[float, tuple[str, ...]]]:
    """A nested mapping such as ``slo: {ttft_s: 2}``: its numbers with their YAML paths."""
    if name not in doc.values:
        return {}
    v = doc.values[name]
    top = doc.keys[name]
    if not isinstance(v, dict):
        raise _Input(f"{doc.shown(name)} must be a mapping such as "
                     f"{{{', '.join(k + ': ...' for k in allowed)}}}; got {v!r}", top)
    out = {}
    for k, val in v.items():
        key = str(k).replace("-", "_").lower()
        canon = {"ttft": "ttft_s", "tpot": "tpot_s", "usd_per_hour": "usd_per_hour"}.get(key, key)
        if canon not in allowed:
            raise _Input(f"{name}.{k} is not a known setting; valid: {', '.join(allowed)}", (*top, str(k)))
        out[canon] = (_number(doc, (*top, str(k)), val, allowed[canon]), (*top, str(k)))
    return out


# ---------------------------------------------------------------------------------------------------
# checking one document
# ---------------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """A deployment resolved to tpplan's names (what ``check`` evaluates)."""

    model: Any
    gpu: Any
    tp: int
    pp: int
    dp: int
    cp: int
    ep: int
    workload: Any
    gpus_per_node: int | None
    rate: float | None
    """Requests/s the deployment serves (``rate:``), spread over its dp replicas; None: judged with
    ``max_num_seqs`` clients per replica (every slot busy)."""
    concurrency_given: bool
    slo: dict[str, tuple[float, tuple[str, ...]]]
    budget: dict[str, tuple[float, tuple[str, ...]]]
    price_override: float | None


def _resolve(doc: _Doc, cat: Any, base_dir: Path) -> Settings:
    from tpplan.catalog.spec import normalize_dtype
    from tpplan.engine.workload import VLLM, ServeWorkload, kv_cache_dtypes, resolve_dtype

    for req in ("model", "gpu"):
        if req not in doc.values:
            raise _Input(f"missing required key {SPELLINGS[req][0]!r}",
                         fix=f"Add '{SPELLINGS[req][0]}: <name>' (see `tpplan {req}s`)"
                             + (", or pass --gpu to check (vLLM config files have no gpu key)." if req == "gpu"
                                else "."))
    model = _rope_scaled(doc, _lookup(doc, "model", cat, base_dir))
    gpu = _lookup(doc, "gpu", cat, base_dir)
    tp = _int(doc, "tp", 1)
    pp = _int(doc, "pp", 1)
    dp = _int(doc, "dp", 1)
    cp = _int(doc, "cp", 1)
    enable_ep = doc.values.get("enable_ep", False)
    if not isinstance(enable_ep, bool):
        raise _Input(f"{doc.shown('enable_ep')} must be true or false; got {enable_ep!r}", doc.keys["enable_ep"])
    # vLLM: EP is a switch and the EP size is TP x DP (x PCP) (vllm/config/parallel.py)
    ep = _int(doc, "ep", tp * dp * cp if enable_ep else 1)
    node = _int(doc, "gpus_per_node", gpu.node.gpus_per_node) if "gpus_per_node" in doc.values else None
    ctx = _tokens(doc, "ctx") or model.max_position_embeddings
    out_len = _tokens(doc, "output_len") or min(256, max(1, ctx // 2))
    in_len = _tokens(doc, "input_len") or max(1, ctx - out_len)
    if in_len + out_len > ctx:
        raise _Input(f"input_len ({in_len}) + output_len ({out_len}) exceed {doc.shown('ctx')} ({ctx})",
                     doc.keys.get("input_len", doc.keys.get("output_len", ())))
    conc = _int(doc, "concurrency", 1)
    try:
        wdt = model.weight_dtype or model.dtype
        if "quantization" in doc.values and doc.values["quantization"] is not None:
            q = str(doc.values["quantization"]).lower()
            if q not in QUANT_TO_DTYPE:
                raise ValueError(f"unknown quantization {q!r}; known: {', '.join(sorted(QUANT_TO_DTYPE))}")
            wdt = QUANT_TO_DTYPE[q] or wdt
        elif "weight_dtype" in doc.values:
            wdt = normalize_dtype(doc.values["weight_dtype"])
        elif "dtype" in doc.values and str(doc.values["dtype"]).lower() != "auto" and wdt in ("bf16", "fp16", "fp32"):
            wdt = normalize_dtype(doc.values["dtype"])
    except ValueError as exc:
        key = next((k for k in ("quantization", "weight_dtype", "dtype") if k in doc.values), "dtype")
        raise _Input(str(exc), doc.keys.get(key, ())) from None
    try:
        kdt = resolve_dtype(doc.values.get("kv_dtype"), model.dtype)
    except ValueError as exc:
        raise _Input(str(exc), doc.keys["kv_dtype"]) from None
    util = doc.values.get("util", VLLM.gpu_memory_utilization)
    if isinstance(util, bool) or not isinstance(util, int | float) or not (0 < util <= 1):
        raise _Input(f"{doc.shown('util')} must be a number in (0, 1]; got {util!r}", doc.keys.get("util", ()))
    price = None
    if "price" in doc.values:
        price = _number(doc, doc.keys["price"], doc.values["price"], "usd")
    engine = _engine_of(doc)
    try:
        profile = cat.engine(engine)
    except TpplanError as exc:
        raise _Input(exc.message, doc.keys.get("engine", ())) from None
    kv_ok = kv_cache_dtypes(profile.name)
    if kdt not in kv_ok:
        raise _Input(f"{doc.shown('kv_dtype')} {doc.values.get('kv_dtype')!r}: the {profile.name} KV cache takes "
                     f"auto, {', '.join(kv_ok)}", doc.keys.get("kv_dtype", ()))
    rate = None
    if "rate" in doc.values:
        rate = _number(doc, doc.keys["rate"], doc.values["rate"], "rate")
    w = ServeWorkload(ctx=ctx, input_len=in_len, output_len=out_len, concurrency=conc, weight_dtype=wdt,
                      kv_dtype=kdt, gpu_memory_utilization=float(util), engine_profile=profile,
                      memory_fraction_given="util" in doc.values,
                      max_num_seqs=conc if "concurrency" in doc.values else None,
                      max_num_batched_tokens=_int(doc, "budget_tokens", 1) if "budget_tokens" in doc.values
                      else None).for_gpu(gpu)
    return Settings(model=model, gpu=gpu, tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, workload=w, gpus_per_node=node,
                    rate=rate, concurrency_given="concurrency" in doc.values,
                    slo=_mapping(doc, "slo", {"ttft_s": "s", "tpot_s": "s"}),
                    budget=_mapping(doc, "budget", {"usd_per_hour": "usd"}), price_override=price)


def _rope_scaled(doc: _Doc, model: Any) -> Any:
    """A deployment's context extension: vLLM ``hf-overrides: {rope_scaling: ...}`` (a mapping or its JSON
    text), SGLang ``json-model-override-args``, or an older vLLM's ``rope-scaling``; the model's limit becomes
    its native maximum x factor, as vLLM derives max_model_len."""
    import json

    from tpplan.catalog.spec import valid_rope_scaling

    name = "hf_overrides" if "hf_overrides" in doc.values else "rope_scaling"
    if name not in doc.values:
        return model
    value = doc.values[name]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _Input(f"{doc.shown(name)} is not valid JSON ({exc.msg})", doc.keys[name]) from None
    rs = value.get("rope_scaling") if name == "hf_overrides" and isinstance(value, dict) else value
    if rs is None:
        return model
    if not isinstance(rs, dict):
        raise _Input(f"rope_scaling in {doc.shown(name)} must be a mapping (rope_type, factor)", doc.keys[name])
    kind = str(rs.get("rope_type") or rs.get("type") or "").lower()
    factor = rs.get("factor")
    if not valid_rope_scaling(kind, factor):
        raise _Input(f"rope_scaling in {doc.shown(name)} needs rope_type yarn, linear or dynamic and a factor in "
                     f"(1, 64]; got {rs!r}", doc.keys[name])
    assert isinstance(factor, int | float)  # valid_rope_scaling checked it
    return model.with_rope_scaling(kind, float(factor))


# keys only one engine spells this way (ecosystem-conventions.md 2.2): they name the engine a file is for
_ENGINE_MARKERS = {
    "sglang": {"tp_size", "pp_size", "dp_size", "ep_size", "context_length", "max_running_requests",
               "chunked_prefill_size", "mem_fraction_static", "model_path"},
    "trtllm": {"max_batch_size", "max_num_tokens", "max_seq_len", "free_gpu_memory_fraction",
               "kv_cache_free_gpu_memory_fraction", "moe_expert_parallel_size"},
}


def _engine_of(doc: _Doc) -> str:
    """The engine a deployment file configures: its ``engine:`` key, else the engine whose own spelling of a
    setting it uses (SGLang's tp_size, TRT-LLM's max_batch_size), else vLLM."""
    if "engine" in doc.values:
        return str(doc.values["engine"])
    used = {str(p[-1]).replace("-", "_").lower() for p in doc.keys.values() if p}
    for engine, marks in _ENGINE_MARKERS.items():
        if used & marks:
            return engine
    return "vllm"


def _lookup(doc: _Doc, name: str, cat: Any, base_dir: Path) -> Any:
    v = doc.values[name]
    if not isinstance(v, str) or not v.strip():
        raise _Input(f"{doc.shown(name)} must be a name; got {v!r}", doc.keys[name])
    try:
        if name == "gpu":
            return cat.gpu(v)
        rel = base_dir / v
        if v.endswith((".json", ".yaml", ".yml")) and not Path(v).is_absolute() and rel.exists():
            return cat.model(str(rel))  # a config.json next to the deployment file
        return cat.model(v)
    except TpplanError as exc:
        raise _Input(exc.message if not exc.file or exc.file == v else exc.render(), doc.keys[name],
                     exc.hint or "") from None


def _apply_defaults(doc: _Doc, defaults: dict[str, Any] | None) -> None:
    """Settings from the command line (check --gpu, --ttft-slo, ...) for what a document does not set: a plain
    `vllm serve --config` file has no gpu key (vLLM rejects one) and no SLOs."""
    for key, value in (defaults or {}).items():
        if value is None:
            continue
        if key in ("slo", "budget"):
            got = doc.values.get(key)
            have: dict[str, Any] = got if isinstance(got, dict) else {}
            merged = {**{k: v for k, v in value.items() if v is not None}, **have}
            if merged:
                doc.values[key] = merged
                doc.keys.setdefault(key, (key,))
        elif key not in doc.values:
            doc.values[key] = value
            doc.keys.setdefault(key, (key,))


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
        return [_find(doc, "TPP023", "dp", f"the {role} pool's {s.dp} replica(s) saturate at {s.dp * sat:.3g} "
                      f"requests/s, below the rate {s.rate:g}/s", suggestion={"replicas": need},
                      fix=f"Use at least {need} {role} replicas ({MAX_UTILIZATION:.0%} of saturation each).")]
    if slo is not None and lat > slo:
        return [_find(doc, "TPP023", "dp", f"the {role} pool's {what} at {s.rate:g} requests/s over {s.dp} "
                      f"replica(s) is {_ms(lat)}, above the SLO {_ms(slo)}")]
    return []


def _find(doc: _Doc, rule: str, anchor: str, message: str, fix: str = "",
          suggestion: dict[str, Any] | None = None, level: str | None = None) -> Finding:
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
            where += (f", above the {float(ld.saturation_rate[0]) * s.dp:.3g} requests/s they can serve (the "
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
                         f"at {sat * s.dp:.3g} requests/s of {w.input_len:,}-token prompts and {w.output_len:,} "
                         f"output tokens, below the rate {s.rate:g}/s: the queue grows without bound",
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


# ---------------------------------------------------------------------------------------------------
# renderers
# ---------------------------------------------------------------------------------------------------


def _rel(path: str) -> str:
    """Repo-relative, '/'-separated path for GitHub and SARIF (as given when it is outside the cwd)."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            return p.as_posix()
    return p.as_posix().removeprefix("./")


_Styled = tuple[str, list[tuple[int, int, str]]]
"""A text line and its (start, end, rich style) spans."""


def _text_lines(rep: Report) -> list[_Styled]:
    """The text report, grouped by file, with the styles a terminal shows."""
    lines: list[_Styled] = []
    by_file: dict[str, list[Finding]] = {}
    for f in rep.findings:
        by_file.setdefault(f.file, []).append(f)
    level_style = {"error": "bold red", "warning": "yellow"}
    for file, fs in by_file.items():
        lines.append((file, [(0, len(file), "bold")]))
        for f in sorted(fs, key=lambda x: (x.line, x.column)):
            head = f"  {f.line}:{f.column}  "
            text = f"{head}{f.level:<7} {f.rule} [{f.name}] {f.message}"
            lvl_end = len(head) + len(f.level)
            rule_at = len(head) + max(len(f.level), 7) + 1
            lines.append((text, [(len(head), lvl_end, level_style[f.level]),
                                 (rule_at, rule_at + len(f.rule), "cyan")]))
            if f.fix:
                fix = f"{'':>10}fix: {f.fix}"
                lines.append((fix, [(0, len(fix), "dim")]))
    for sk in rep.skipped:
        note = f"note: {sk['file']} (document {sk['document']}) skipped: {sk['reason']}"
        lines.append((note, [(0, len(note), "dim")]))
    s = rep.summary()
    tail = (f"{s['errors']} error{'s' * (s['errors'] != 1)}, {s['warnings']} warning{'s' * (s['warnings'] != 1)} "
            f"in {s['files']} file{'s' * (s['files'] != 1)} ({s['documents']} deployment"
            f"{'s' * (s['documents'] != 1)} checked)")
    if rep.findings or rep.skipped:
        lines += [("", []), (("All checks passed: " if not rep.findings else "") + tail, [])]
    else:
        lines.append(("All checks passed: " + tail, []))
    return lines


def render_text(rep: Report) -> str:
    return "\n".join(text for text, _ in _text_lines(rep))


def print_text(rep: Report, console: Any) -> None:
    """``render_text`` with colour on a terminal (rich drops the styles when output is piped)."""
    from rich.text import Text

    for text, spans in _text_lines(rep):
        t = Text(text)
        for start, end, style in spans:
            t.stylize(style, start, end)
        console.print(t, highlight=False, soft_wrap=True)


def _escape_data(s: str) -> str:
    # actions/toolkit packages/core/src/command.ts escapeData
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    # actions/toolkit packages/core/src/command.ts escapeProperty
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def render_github(rep: Report) -> str:
    out = []
    for f in rep.findings:
        props = (f"file={_escape_property(_rel(f.file))},line={f.line},col={f.column},"
                 f"title={_escape_property(f'{f.rule} {f.name}')}")
        msg = f.message + (f"\nfix: {f.fix}" if f.fix else "")
        out.append(f"::{f.level} {props}::{_escape_data(msg)}")
    return "\n".join(out)


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(rep: Report) -> str:
    s = rep.summary()
    head = (f"### tpplan check: {s['errors']} error(s), {s['warnings']} warning(s) in {s['files']} file(s), "
            f"{s['documents']} deployment(s)\n")
    if not rep.findings:
        return head + "\nAll checks passed.\n"
    lines = [head]
    by_file: dict[str, list[Finding]] = {}
    for f in rep.findings:
        by_file.setdefault(f.file, []).append(f)
    for file, fs in by_file.items():
        lines += [f"\n#### `{_rel(file)}`\n", "| Line | Level | Rule | Message | Fix |", "|---:|---|---|---|---|"]
        for f in sorted(fs, key=lambda x: (x.line, x.column)):
            lines.append(f"| {f.line}:{f.column} | {f.level} | {f.rule} {f.name} | {_md_cell(f.message)} "
                         f"| {_md_cell(f.fix)} |")
    return "\n".join(lines) + "\n"


def render_sarif(rep: Report) -> dict[str, Any]:
    """SARIF 2.1.0 (GitHub code scanning): stable ruleIds, relative URIs, startLine, fingerprints."""
    rules = [{"id": r.id, "name": r.name, "shortDescription": {"text": r.summary},
              "fullDescription": {"text": f"{r.summary}. Example: {r.example}."},
              "help": {"text": f"Fix: {r.fix}", "markdown": f"**Example:** {r.example}\n\n**Fix:** {r.fix}"},
              "defaultConfiguration": {"level": r.level}} for r in RULES]
    index = {r.id: i for i, r in enumerate(RULES)}
    results = []
    for f in rep.findings:
        uri = _rel(f.file)
        fp = hashlib.sha256(f"{f.rule}|{uri}|{f.document}|{f.path}".encode()).hexdigest()[:32]
        results.append({
            "ruleId": f.rule, "ruleIndex": index[f.rule], "level": f.level,
            "message": {"text": f.message + (f" Fix: {f.fix}" if f.fix else "")},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                                "region": {"startLine": f.line, "startColumn": f.column}}}],
            "partialFingerprints": {"tpplanFinding/v1": fp},
        })
    tool = planner.tool_info()
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "tpplan", "version": tool["version"],
                                          "informationUri": "https://pypi.org/project/tpplan/", "rules": rules}},
                      "columnKind": "unicodeCodePoints", "results": results}]}


def rules_markdown() -> str:
    """docs/check-rules.md, generated from RULES (a test keeps the file in step)."""
    lines = ["# `tpplan check` rules", "",
             "Generated from `tpplan/check/deployment.py` (`RULES`); ids are stable and appear in JSON (`rule`), SARIF "
             "(`ruleId`) and GitHub annotations (`title`).", "",
             "Levels: **error** findings fail the check (exit 1) by default; **warning** findings fail it only "
             "with `--fail-on warning` / `--strict`. TPP100 (input error) always exits 2.", "",
             "How the numbers are made: memory and time rules run the same vectorized evaluation as "
             "`tpplan estimate` (docs/metrics.md). The engine is the file's `engine:` key, else the one whose "
             "spelling the file uses (SGLang's `tp_size`, TRT-LLM's `max_batch_size`), else vLLM; its profile "
             "(engines/*.yaml) gives the scheduler defaults, and the file's `max_num_seqs` / "
             "`max_num_batched_tokens` (or the engine's names for them) replace them. SLO rules judge the mean "
             "TTFT and TPOT under load: at the file's `rate:` (requests/s over its data-parallel replicas) if "
             "it has one, else with `max_num_seqs` requests in flight per replica (every slot busy, capped by "
             "what fits), each a prompt of `max_model_len - output_len` tokens unless `input_len` / "
             "`output_len` say otherwise (prompt chunks of other requests share the decode steps). Budget rules "
             "use the catalog's typical price unless `--price` / `--price-tier` or `price_usd_per_gpu_hour` say "
             "otherwise.", "",
             "What is read: a vLLM `--config` file as vLLM takes it (no tpplan keys needed: pass `--gpu`, "
             "`--ttft-slo`, `--tpot-slo`, `--budget-usd-per-hour` to `tpplan check`, or put tpplan's own keys "
             "under an `x-tpplan:` mapping where the engine ignores it); SGLang keys (`model-path`, `tp-size`, "
             "`context-length`, `mem-fraction-static`); TensorRT-LLM keys including the nested "
             "`kv_cache_config.dtype` and `kv_cache_config.free_gpu_memory_fraction`; a Kubernetes manifest or "
             "Helm values file whose container `command:` / `args:` start vllm serve, sglang.launch_server or "
             "trtllm-serve (or pass `--model` to a server image), read as the server's command line. A YAML "
             "document with none of these (a CI workflow, a Kustomization) is skipped with a note, not an "
             "error.", "",
             "Disaggregated deployments: a document with both a prefill and a decode section (`prefill` / "
             "`decode` as in llm-d values, `PrefillWorker` / `DecodeWorker` as in NVIDIA Dynamo configs, "
             "`prefill_worker` / `decode_worker`) is checked as two pools. Each section takes the engine keys "
             "above plus `replicas` (the pool's instances) and llm-d's `parallelism: {tensor, pipeline, data, "
             "expert}`; keys outside the sections (model, gpu, max_model_len, rate, slo, ...) are shared unless "
             "a section sets its own. Every rule runs on each pool; at the document's `rate:`, TPP023 judges "
             "the prefill pool on saturation and TTFT (before the KV hand-off, which depends on the other pool) "
             "and the decode pool on saturation and TPOT (tpplan/plan/disagg.py, docs/metrics.md).", "",
             "| Id | Name | Level | What |", "|---|---|---|---|"]
    lines += [f"| {r.id} | {r.name} | {r.level} | {r.summary} |" for r in RULES]
    for r in RULES:
        lines += ["", f"## {r.id} {r.name}", "", f"{r.summary[0].upper()}{r.summary[1:]} ({r.level}).", "",
                  f"- Example: {r.example}", f"- Fix: {r.fix}"]
    lines += ["", "## Accepted keys", "",
              "Kebab and snake case are the same key. Unknown keys are TPP040 warnings, except `vllm serve` "
              "arguments tpplan does not model (port, served-model-name, enable-prefix-caching, ...), which "
              "pass silently.", "", "| Setting | Spellings |", "|---|---|"]
    lines += [f"| {k} | {', '.join(f'`{s}`' for s in v)} |" for k, v in SPELLINGS.items()]
    lines += ["| slo | `slo: {ttft_s: 2.0, tpot_s: 0.05}` (numbers in seconds or strings such as `50ms`) |",
              "| budget | `budget: {usd_per_hour: 40}` |"]
    return "\n".join(lines) + "\n"
