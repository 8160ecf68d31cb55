"""Reading a deployment file (vLLM / SGLang / TensorRT-LLM arguments, Kubernetes manifests, llm-d and Dynamo
values): every spelling of every setting, the server command lines, and the typed Settings the rules judge."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpplan.check.rules import Finding
from tpplan.errors import TpplanError
from tpplan.yamlio import Located

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
    from tpplan.plan.request import RequestError, ServeRequest

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
    conc = _int(doc, "concurrency", 1)
    # the weight dtype a file states: quantization, weight_dtype, or vLLM's --dtype over a 16/32-bit checkpoint
    dtype_key = next((k for k in ("quantization", "weight_dtype", "dtype") if k in doc.values), "dtype")
    wdt = None
    if "quantization" in doc.values and doc.values["quantization"] is not None:
        q = str(doc.values["quantization"]).lower()
        if q not in QUANT_TO_DTYPE:
            raise _Input(f"unknown quantization {q!r}; known: {', '.join(sorted(QUANT_TO_DTYPE))}",
                         doc.keys.get("quantization", ()))
        wdt = QUANT_TO_DTYPE[q]
    elif "weight_dtype" in doc.values:
        wdt = str(doc.values["weight_dtype"])
    elif ("dtype" in doc.values and str(doc.values["dtype"]).lower() != "auto"
          and (model.weight_dtype or model.dtype) in ("bf16", "fp16", "fp32")):
        wdt = str(doc.values["dtype"])
    util = doc.values.get("util")
    if "util" in doc.values and (isinstance(util, bool) or not isinstance(util, int | float)):
        raise _Input(f"{doc.shown('util')} must be a number in (0, 1]; got {util!r}", doc.keys.get("util", ()))
    price = None
    if "price" in doc.values:
        price = _number(doc, doc.keys["price"], doc.values["price"], "usd")
    kv = doc.values.get("kv_dtype")
    request = ServeRequest(ctx=ctx, output_len=out_len, input_len=_tokens(doc, "input_len") or None,
                           concurrency=conc,
                           weight_dtype=wdt or None, kv_dtype=None if kv is None else str(kv),
                           gpu_memory_utilization=None if util is None else float(util), engine=_engine_of(doc),
                           max_num_seqs=conc if "concurrency" in doc.values else None,
                           max_num_batched_tokens=_int(doc, "budget_tokens", 1) if "budget_tokens" in doc.values
                           else None)

    def key(field: str) -> str:  # the file's key of a request field
        return {"gpu_memory_utilization": "util", "weight_dtype": dtype_key}.get(field, field)

    try:
        w = request.workload(model, cat).for_gpu(gpu)
    except RequestError as exc:  # the rule in the file's own spelling, at the first of its keys the file has
        raise _Input(exc.text(lambda f: doc.shown(key(f), key(f))),
                     next((doc.keys[key(f)] for f in exc.fields if key(f) in doc.keys), ())) from None
    except TpplanError as exc:  # an unknown engine
        raise _Input(exc.message, doc.keys.get("engine", ())) from None
    rate = None
    if "rate" in doc.values:
        rate = _number(doc, doc.keys["rate"], doc.values["rate"], "rate")
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
