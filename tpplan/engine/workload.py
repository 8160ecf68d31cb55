"""What is being planned: a serving workload or a training run, plus the engine's defaults.

Engine semantics (vLLM by default) are data here, not constants scattered in formulas; every output echoes
them in its assumptions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from tpplan.catalog.spec import DTYPE_BYTES, EngineProfile, GpuSpec, ModelSpec, normalize_dtype
from tpplan.engine.speculative import Speculative

GRAPH_NODE_GAP_S = 0.58e-6
"""GPU time between two kernels of a replayed CUDA graph, per kernel node: a chain of N no-op kernels took 82.9 us
for N = 117 as one graph against 735.4 us launched one by one (with a sync), i.e. ~15 us per replay plus ~0.58 us
per node (ahrefs/ocannl issue #488, RTX 5070 Ti laptop, driver 610.62, CUDA 13.3, WSL2, median of 200 reps;
shared/reference/data/operators/README.md 5c) [V-user]: a consumer GPU under WSL, so an upper edge for a
datacenter part; the serving engines decode under graphs. Paid once per kernel of every layer
(perf.kernels_per_layer) in each step; the band takes it x0.5 to x2 (Eff.gap_scale)."""


@dataclass(frozen=True)
class EngineDefaults:
    """Serving-engine behaviour that changes memory and time (vLLM v1 unless stated)."""

    name: str = "vllm"
    gpu_memory_utilization: float = 0.9
    """Fraction of the driver-reported total that the engine may use for everything (vLLM CacheConfig;
    0.9 for most releases, 0.92 in the newest snapshot)."""
    max_num_batched_tokens: int = 8192
    """Tokens per scheduler step; the profile run's activation peak is taken at this chunk size."""
    block_size: int = 16
    """KV-cache block size in tokens (vLLM CacheConfig.DEFAULT_BLOCK_SIZE)."""
    kernel_gap_s: float = GRAPH_NODE_GAP_S
    """Idle GPU time between two kernels of a replayed CUDA graph, paid per kernel (GRAPH_NODE_GAP_S, a
    graph-replay microbenchmark; perf.kernels_per_layer counts the kernels)."""
    decode_allreduce_latency_s: float | None = 6e-6
    """Fixed latency of one small all-reduce launched inside a CUDA graph on a GPU-to-GPU fabric: NCCL
    NVLSTree on HGX H100 under CUDA graphs ~6 us (NVIDIA/nccl issue #1259) [S]. vLLM
    decodes under CUDA graphs with a one-shot custom all-reduce for small messages. nccl-tests' per-call
    latency without graphs (25.6 us at 8 ranks) is kept as the pessimistic edge of the band. Applied to
    decode TP all-reduces inside one scale-up domain of NVLink / Infinity Fabric GPUs; None: use the
    nccl-tests alpha everywhere."""
    step_overhead_s: float = 0.0
    """Scheduler / sampling time per decode step not hidden by async scheduling (vLLM v1 overlaps it)."""
    version: str = "0.11.0"
    memory_rule: Literal["total", "free", "sglang-static"] = "total"
    """How the KV pool is sized (spec.EngineVersion.memory_rule)."""
    max_num_seqs: int = 1024
    """Sequences running at once (vLLM max_num_seqs, SGLang max_running_requests, TRT-LLM max_batch_size)."""
    chunked_prefill: bool = True
    kv_reservation: Literal["average", "full"] = "average"
    """KV held per running sequence: its mean length (paged, grows) or its whole length (reserved)."""
    source: str = ("vllm-project/vllm vllm/config/cache.py (gpu_memory_utilization 0.9, block_size 16), "
                   "vllm/v1/worker/gpu_worker.py (profile_run at max_num_batched_tokens); decode all-reduce "
                   "under CUDA graphs ~6 us (NVIDIA/nccl #1259)")


VLLM = EngineDefaults()


def resolve_engine(profile: EngineProfile, version: str | None, gpu: GpuSpec) -> EngineDefaults:
    """An engine profile's defaults for one GPU (its memory tier's scheduler limits)."""
    v = profile.version(version)
    lim = v.limits_for(gpu)
    return replace(VLLM, name=profile.name, version=v.version, gpu_memory_utilization=v.memory_fraction,
                   memory_rule=v.memory_rule, max_num_batched_tokens=lim.max_num_batched_tokens,
                   max_num_seqs=lim.max_num_seqs, block_size=v.block_size, chunked_prefill=v.chunked_prefill,
                   kv_reservation=v.kv_reservation, step_overhead_s=v.step_overhead_s,
                   source=f"{profile.name} {v.version}: {v.memory_source}; {lim.source}; {v.source}; "
                          f"step overhead: {v.step_overhead_source}; {VLLM.source.split('; ', 1)[-1]}")


@dataclass(frozen=True)
class ServeWorkload:
    """One deployment: every replica holds ``concurrency`` sequences of up to ``ctx`` tokens."""

    ctx: int
    """Maximum tokens per sequence (prompt + output): vLLM --max-model-len."""
    input_len: int
    """Prompt tokens of the request whose latency is reported (TTFT)."""
    output_len: int
    """Output tokens of that request (request latency = TTFT + output_len x TPOT)."""
    concurrency: int = 1
    """Sequences decoded together per replica (vLLM --max-num-seqs at full load)."""
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    engine: EngineDefaults = VLLM
    gpu_memory_utilization: float = 0.9
    engine_profile: EngineProfile | None = None
    """The engine whose per-GPU defaults ``for_gpu`` resolves into ``engine`` (None: ``engine`` as given)."""
    engine_version: str | None = None
    memory_fraction_given: bool = False
    """--gpu-memory-utilization was given: it replaces the engine's own memory fraction."""
    max_num_seqs: int | None = None
    """A deployment's own scheduler ceilings (a config file's max_num_seqs / max_num_batched_tokens):
    they replace the engine profile's defaults."""
    max_num_batched_tokens: int | None = None
    prefix_hit: float = 0.0
    """--prefix-hit: share of every prompt's tokens found in the prefix cache (earlier turns, documents
    other requests sent). The running sequences hold their whole prompt's KV; the hits come from blocks
    the pool keeps after requests finish (vLLM's evictable free-block queue), which do not shrink the batch."""
    shared_prefix: int = 0
    """--shared-prefix: tokens at the start of every prompt that all requests share (a system prompt): held
    once per replica, not per sequence, and never recomputed after the first request."""
    speculative: Speculative | None = None

    @property
    def cached_prompt_tokens(self) -> int:
        """Prompt tokens of a request served from the prefix cache: the shared prefix in whole KV blocks
        (vLLM and SGLang match full blocks only), or ``prefix_hit`` of the prompt, whichever is more; at
        least the last prompt token is always computed (vLLM v1 kv_cache_manager.get_computed_blocks: 'we
        must recompute the last token to get the logits')."""
        hit = int(round(self.prefix_hit * self.input_len))
        return max(0, min(max(self.shared_cached_tokens, hit), self.input_len - 1))

    @property
    def shared_cached_tokens(self) -> int:
        """Tokens of the shared prefix held once per replica (whole blocks, within the prompt)."""
        return (min(self.shared_prefix, self.input_len) // self.engine.block_size) * self.engine.block_size

    @property
    def prefill_len(self) -> int:
        """Prompt tokens a request's prefill computes: the prompt less what the prefix cache serves."""
        return self.input_len - self.cached_prompt_tokens

    @property
    def decode_tokens_per_step(self) -> float:
        """Output tokens a decoding sequence gains per engine step (speculative: the expected accepted
        prefix plus one)."""
        return self.speculative.tokens_per_step if self.speculative is not None else 1.0

    @property
    def verify_tokens(self) -> int:
        """Tokens each decoding sequence puts in a step (and in the step's token budget): 1, or k + 1."""
        return self.speculative.verify_tokens if self.speculative is not None else 1

    def plain(self) -> ServeWorkload:
        """This workload without prefix caching or speculative decoding (the report's comparison)."""
        return replace(self, prefix_hit=0.0, shared_prefix=0, speculative=None)

    def for_gpu(self, gpu: GpuSpec) -> ServeWorkload:
        """This workload with the engine profile's defaults for ``gpu`` (scheduler limits by memory tier)."""
        if self.engine_profile is None:
            return self
        e = resolve_engine(self.engine_profile, self.engine_version, gpu)
        if self.max_num_seqs is not None:
            e = replace(e, max_num_seqs=self.max_num_seqs)
        if self.max_num_batched_tokens is not None:
            e = replace(e, max_num_batched_tokens=self.max_num_batched_tokens)
        util = self.gpu_memory_utilization if self.memory_fraction_given else e.gpu_memory_utilization
        return replace(self, engine=e, gpu_memory_utilization=util)

    @property
    def kv_bytes(self) -> float:
        return DTYPE_BYTES[self.kv_dtype]

    def to_json(self) -> dict[str, Any]:
        spec = self.speculative
        d = asdict(replace(self, speculative=None))
        d["engine"] = asdict(self.engine)
        d.pop("engine_profile", None)
        d["cached_prompt_tokens"] = self.cached_prompt_tokens
        d["speculative"] = spec.to_json() if spec is not None else None
        return d


@dataclass(frozen=True)
class TrainWorkload:
    """One training run (Megatron-style mixed precision with Adam)."""

    seq_len: int
    global_batch: int
    """Sequences per optimizer step."""
    micro_batch: int = 1
    tokens: float | None = None
    """Tokens of the whole run (for GPU-hours and days)."""
    recompute: Literal["none", "selective", "full"] = "selective"
    sequence_parallel: bool = True
    zero: int = 1
    """ZeRO stage 0-3; shards over the data-parallel (x context-parallel) group, as Megatron's
    distributed optimizer does."""
    optimizer: Literal["adam"] = "adam"
    train_dtype: str = "bf16"
    """GEMM dtype: bf16, or fp8 (fp8 tensor-core peak for the GEMMs, bf16 master/param copies)."""
    grad_bytes: int = 2
    """Bytes per gradient element (2: bf16 grads as in the ZeRO paper; 4: fp32 accumulation)."""
    flash_attention: bool = True
    flash_kernel: Literal["fa2", "fa1"] = "fa2"
    """The FlashAttention generation under flash_attention: fa2 (FlashAttention-2's measured rate) or fa1
    (FlashAttention 1.x, about 0.45x of it at long sequences on A100 and H100; --attention flash1)."""
    interleave: int = 1
    """Virtual pipeline stages per rank (interleaved 1F1B); 1 = plain 1F1B."""
    cp_comm: Literal["p2p", "allgather"] = "p2p"
    """Context parallelism's K/V exchange (Megatron-core --cp-comm-type): p2p = ring attention, passes
    overlapped with the block attention; allgather = the whole K/V gathered per layer, exposed."""
    shard_group: int | None = None
    """Hybrid sharding: ZeRO shards over this many consecutive data-parallel ranks and replicates across the
    groups (PyTorch FSDP HYBRID_SHARD, torchtitan data_parallel_shard_degree); None: over all of dp x cp."""
    stage_split: tuple[int, int] | None = None
    """Layers on the first and the last pipeline stage as the user states them (Megatron-core
    --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers); None: the even split."""
    dp_overlap: bool = True
    """ZeRO 0-2: the gradient reduction (and ZeRO-1/2's parameter all-gather) runs behind the backward pass, as
    Megatron-core's --overlap-grad-reduce / --overlap-param-gather, PyTorch DDP's buckets and DeepSpeed's
    overlap_comm do; off: after it, exposed (Megatron-core's default). ZeRO-3 always prefetches."""
    elementwise: Literal["fused", "eager"] = "fused"
    """The elementwise kernels' bandwidth: fused kernels at the GPU's calibrated HBM efficiency, or PyTorch eager
    ops at perf.EAGER_ELEMENTWISE_FRACTION of peak (frameworks without fused kernels or torch.compile)."""
    ep_overlap: bool = False
    """Expert-parallel all-to-alls overlapped with another micro-batch's computation (DeepSeek's DualPipe,
    Megatron-core's --overlap-moe-expert-parallel-comm); off: exposed, as plain 1F1B runs them."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


TRAIN_DEFAULT_SEQ_LEN = 4096
"""--seq-len when a training command gives none (the model's length when built from --layers/--hidden)."""
TRAIN_DEFAULTS = TrainWorkload(seq_len=TRAIN_DEFAULT_SEQ_LEN, global_batch=1)
"""The training defaults every command starts from (recompute, sequence parallelism, ZeRO stage, attention
kernels, dtype): declared once, on the dataclass; a --framework profile and each flag override them."""


@dataclass(frozen=True)
class Context:
    """Everything a vectorized evaluation needs besides the grid."""

    model: ModelSpec
    gpu: GpuSpec
    serve: ServeWorkload | None = None
    train: TrainWorkload | None = None
    gpus_per_node: int | None = None

    @property
    def node_size(self) -> int:
        return self.gpus_per_node or self.gpu.node.gpus_per_node


def kv_cache_dtypes(engine: str) -> list[str]:
    """KV-cache dtypes an engine accepts: vLLM's CacheDType (vllm/config/cache.py) and SGLang's --kv-cache-dtype
    take auto / bf16 / fp8 (e4m3, e5m2); TensorRT-LLM's KvCacheConfig also int8."""
    return ["bf16", "fp16", "fp32", "fp8"] + (["int8"] if engine == "trtllm" else [])


def resolve_dtype(value: str | None, default: str) -> str:
    """``auto`` / None -> the model default; otherwise a normalized dtype name."""
    if value is None or str(value).lower() == "auto":
        return default
    return normalize_dtype(value)
