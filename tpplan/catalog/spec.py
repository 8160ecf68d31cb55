"""Catalog schema: GPUs and models as validated pydantic models in base SI units.

Every number read from a catalog carries a ``source``; units are in field names (``_bytes``,
``_bytes_per_s``, ``_flops_per_s``, ``_s``, ``_usd_per_hour``). Bandwidths are per GPU, one direction.
FLOP rates are dense (never the 2:4-sparsity-doubled marketing figure).
"""



import datetime as _dt
import math
from functools import cached_property
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

# finite numbers only: a catalog's .inf bandwidth made the winner cost "inf" $ per 1M tokens (issue 22)
NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Pos = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(gt=0, le=2**62)]
MAX_LAYERS = 100_000
"""The most transformer layers a model may declare: far above any built (Megatron-1T: 128), low enough that walking
them (num_moe_layers, layer_kinds) stays instant; 2^40 layers from a hostile file hung `tpplan models`."""
NonNegInt = Annotated[int, Field(ge=0, le=2**62)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
# physical ranges, so that no figure derived from them overflows or vanishes (1e-300 B/s gave inf times)
BytesPerS = Annotated[float, Field(ge=1e6, le=1e15, allow_inf_nan=False)]
"""A bandwidth between 1 MB/s and 1 PB/s per GPU."""
FlopsPerS = Annotated[float, Field(ge=1e9, le=1e18, allow_inf_nan=False)]
"""A dense FLOP rate between 1 GFLOP/s and 1 EFLOP/s."""

DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "fp4": 0.5,
}
"""Bytes per element of each storage dtype (before quantization scales)."""

DTYPE_ALIASES = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float32": "fp32",
    "float": "fp32",
    "fp8_e4m3": "fp8",
    "fp8_e5m2": "fp8",
    "float8": "fp8",
    "e4m3": "fp8",
    "awq": "int4",
    "gptq": "int4",
    "nvfp4": "fp4",
}


def normalize_dtype(name: str) -> str:
    """Map engine spellings (``bfloat16``, ``fp8_e4m3``, ``awq``) to tpplan's dtype names."""
    key = str(name).strip().lower()
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        valid = ", ".join(sorted(DTYPE_BYTES))
        raise ValueError(f"unknown dtype {name!r}; valid: {valid} (or bfloat16, float16, fp8_e4m3)")
    return key


class Strict(BaseModel):
    """Base: unknown keys are errors; models are immutable."""

    # Attribute docstrings document every field in the source; turning them into pydantic descriptions
    # (use_attribute_docstrings) re-parses this module's source at import, 35 ms of every command's start.
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------------------------------
# GPU
# ----------------------------------------------------------------------------------------------------


class MemorySpec(Strict):
    capacity_bytes: Annotated[int, Field(ge=2**26, le=2**50)]
    """Device memory the driver reports as total (nvidia-smi / torch.cuda.mem_get_info). This is the base
    that vLLM's gpu_memory_utilization multiplies."""
    marketed: str
    """The vendor's figure as printed ("80 GB"), and how it is read (decimal or binary)."""
    source: str


class ComputeSpec(Strict):
    dense_flops_per_s: dict[str, FlopsPerS]
    """Dense tensor-core peak per dtype (fp32/tf32/bf16/fp16/fp8/int8/fp4), no 2:4 sparsity."""
    source: str


class HbmSpec(Strict):
    bandwidth_bytes_per_s: BytesPerS
    """Peak HBM (or GDDR) bandwidth, read+write combined as the vendor quotes it."""
    source: str


FabricKind = Literal["nvlink", "nvswitch", "infinity-fabric", "pcie"]


class ScaleUpSpec(Strict):
    kind: FabricKind
    """Intra-node fabric. ``pcie`` means no GPU-to-GPU link: collectives go through PCIe."""
    bandwidth_bytes_per_s: NonNeg
    """Per GPU, one direction, line rate (H100 NVLink4: 450 GB/s)."""
    domain_gpus: PosInt
    """GPUs in one scale-up domain (one HGX node: 8; NVL72: 72; a bridged pair: 2)."""
    source: str


class PcieSpec(Strict):
    generation: PosInt
    bandwidth_bytes_per_s: BytesPerS
    """Host link, x16, one direction."""
    source: str


class ScaleOutSpec(Strict):
    nic_bandwidth_bytes_per_s: BytesPerS
    """Inter-node network per GPU, one direction (8x 400 Gb/s NDR per 8-GPU node: 50 GB/s)."""
    source: str


class NodeSpec(Strict):
    gpus_per_node: PosInt
    """GPUs in one server (the unit a cloud rents and the boundary of the scale-up fabric)."""
    source: str


class PowerSpec(Strict):
    tdp_w: Pos
    source: str


class PriceTier(Strict):
    usd_per_hour: NonNeg
    """Dollars per GPU-hour."""
    as_of: _dt.date
    source: str


class PricesSpec(Strict):
    low: PriceTier
    typical: PriceTier
    high: PriceTier

    @model_validator(mode="after")
    def _ordered(self) -> "PricesSpec":
        if not (self.low.usd_per_hour <= self.typical.usd_per_hour <= self.high.usd_per_hour):
            raise ValueError("price tiers must satisfy low <= typical <= high")
        return self


class Efficiency(Strict):
    """An achieved fraction of a peak, with the spread of the measurements it was fitted to."""

    value: Fraction
    """Central value used for predictions."""
    low: Fraction
    """Lowest fraction seen across the calibration set (used for the pessimistic band)."""
    high: Fraction
    """Highest fraction seen across the calibration set (used for the optimistic band)."""
    source: str

    @model_validator(mode="after")
    def _ordered(self) -> "Efficiency":
        if not (self.low <= self.value <= self.high):
            raise ValueError("efficiency must satisfy low <= value <= high")
        return self


class CollectiveCalibration(Strict):
    """Fitted all-reduce model on one fabric (see ``tpplan.engine.comm``):

    t(S, n) = steps(n) * alpha_per_step_s + S_bus / B * (1 + (ramp_bytes / S) ** ramp_exponent),
    with S_bus the nccl-tests bus bytes, B the asymptotic bus bandwidth per GPU (one direction).
    """

    alpha_per_step_s: NonNeg
    """Latency per algorithm step (ring all-reduce has 2(n-1) steps)."""
    busbw_bytes_per_s: BytesPerS
    """Asymptotic nccl-tests bus bandwidth of the default algorithm (NVLS on NVSwitch Hopper)."""
    ring_busbw_bytes_per_s: BytesPerS | None = None
    """Asymptotic bus bandwidth with NCCL_ALGO=RING where it differs (H100: ~370 GB/s vs NVLS ~480)."""
    ramp_bytes: NonNeg = 0.0
    """Message size around which bandwidth ramps up to its asymptote (fitted)."""
    ramp_exponent: Annotated[float, Field(ge=0, le=3)] = 1.0
    """Shape of the bandwidth ramp (fitted)."""
    busbw_spread: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Relative spread of measured vs fitted bus bandwidth (for uncertainty bands)."""
    fitted_ranks: PosInt = 8
    """Number of ranks of the sweep the parameters were fitted to."""
    correction_sizes_bytes: list[Pos] | None = None
    """Per-rank message sizes of a measured correction table (``tpplan calibrate`` writes it): the bus
    bandwidth by message size that the smooth ramp cannot follow (NCCL protocol switches)."""
    correction: list[Pos] | None = None
    """Measured / fitted bus bandwidth at ``correction_sizes_bytes``; interpolated in log size and held at
    the end values outside the table."""
    source: str

    @model_validator(mode="after")
    def _table(self) -> "CollectiveCalibration":
        a, b = self.correction_sizes_bytes, self.correction
        if (a is None) != (b is None) or (a is not None and b is not None and len(a) != len(b)):
            raise ValueError("correction_sizes_bytes and correction must be given together, of equal length")
        if a is not None and any(x >= y for x, y in zip(a, a[1:], strict=False)):
            raise ValueError("correction_sizes_bytes must increase")
        return self


class CalibrationSpec(Strict):
    flops: Efficiency
    """Achieved fraction of dense bf16 peak on large GEMMs (cuBLASLt / torch.matmul)."""
    flops_fp8: Efficiency | None = None
    """Achieved fraction of dense fp8 peak on large GEMMs, where fp8 exists."""
    hbm: Efficiency
    """Achieved fraction of peak HBM bandwidth when decode streams bf16 weights (GEMV-shaped GEMMs)."""
    hbm_fp8: Efficiency | None = None
    """The same for fp8 weights (w8a8 scaled GEMMs at decode shapes), where measured; otherwise derived from
    ``hbm`` by the fp8/bf16 ratio measured on H100 (tpplan.engine.perf.FP8_STREAM_RATIO)."""
    intra_node: CollectiveCalibration
    """All-reduce on the scale-up fabric."""
    inter_node: CollectiveCalibration
    """All-reduce limited by the NIC per GPU when a group spans nodes."""


class RuntimeOverheads(Strict):
    """Memory the engine or framework takes besides weights, KV cache and activations (per GPU)."""

    cuda_context_bytes: NonNegInt
    """CUDA context, cuBLAS workspaces, allocator slack (non-torch memory in vLLM's profile)."""
    nccl_bytes_per_group: NonNegInt
    """NCCL buffers when the GPU is in a communicator of more than one rank (aiconfigurator nccl_mem)."""
    cuda_graph_bytes: NonNegInt
    """CUDA graph capture pool (vLLM captures graphs for decode batch sizes by default)."""
    source: str


class GpuSpec(Strict):
    name: str
    """Catalog name, lowercase with dashes (h100-sxm)."""
    aliases: list[str] = []
    vendor: Literal["nvidia", "amd", "intel", "google", "other"]
    description: str = ""
    memory: MemorySpec
    hbm: HbmSpec
    compute: ComputeSpec
    scale_up: ScaleUpSpec
    pcie: PcieSpec
    scale_out: ScaleOutSpec
    node: NodeSpec
    power: PowerSpec
    prices: PricesSpec
    calibration: CalibrationSpec
    overheads: RuntimeOverheads

    @model_validator(mode="after")
    def _needs_bf16(self) -> "GpuSpec":
        unknown = set(self.compute.dense_flops_per_s) - set(DTYPE_BYTES)
        if unknown:
            raise ValueError(f"unknown dtype(s) in dense_flops_per_s: {sorted(unknown)}")
        if "bf16" not in self.compute.dense_flops_per_s and "fp16" not in self.compute.dense_flops_per_s:
            raise ValueError("dense_flops_per_s needs a bf16 or fp16 entry")
        return self

    def peak_flops(self, dtype: str) -> float:
        """Dense peak for a compute dtype; falls back to bf16/fp16 when the GPU has no faster unit
        (an A100 runs fp8 weights through bf16 tensor cores after dequantizing)."""
        table = self.compute.dense_flops_per_s
        if dtype in table:
            return table[dtype]
        return table.get("bf16", table.get("fp16", 0.0))

    @property
    def pcie_only(self) -> bool:
        return self.scale_up.kind == "pcie"



# ----------------------------------------------------------------------------------------------------
# Serving engine profiles (engines/*.yaml)
# ----------------------------------------------------------------------------------------------------


class EngineLimits(Strict):
    """Scheduler ceilings for GPUs of one memory tier; a profile's first matching tier applies."""

    min_memory_gib: NonNeg = 0.0
    """Applies to GPUs with at least this much memory (GiB, as the engine reads it)."""
    not_named: list[str] = []
    """...whose catalog name and aliases contain none of these words (vLLM excludes "a100" by name)."""
    max_num_seqs: PosInt
    """Sequences running at once (vLLM max_num_seqs, SGLang max_running_requests, TRT-LLM max_batch_size)."""
    max_num_batched_tokens: PosInt
    """Tokens one scheduler step may carry (vLLM max_num_batched_tokens, SGLang chunked_prefill_size, TRT-LLM
    max_num_tokens): the prefill chunk budget, decode tokens included."""
    source: str


class EngineVersion(Strict):
    version: str
    label: str = ""
    memory_rule: Literal["total", "free", "sglang-static"]
    """How the KV pool is sized: ``total`` = fraction x device memory, minus weights, activations and
    overhead (vLLM gpu_memory_utilization); ``free`` = fraction x what weights and buffers leave (TRT-LLM
    free_gpu_memory_fraction); ``sglang-static`` = SGLang's mem_fraction_static, which reserves a fixed
    activation/graph budget and gives the rest after weights to the KV pool."""
    memory_fraction: Fraction
    memory_source: str
    kv_reservation: Literal["average", "full"]
    """``average``: paged blocks grow with each sequence (a running sequence holds its prompt and half its
    output on average, plus half a block); ``full``: a sequence is admitted only with its whole prompt +
    output reserved (TRT-LLM GUARANTEED_NO_EVICT)."""
    block_size: PosInt = 16
    chunked_prefill: bool
    """Prompts are split into chunks that share steps with decodes; off: a whole prompt is one step."""
    limits: list[EngineLimits]
    step_overhead_s: NonNeg = 0.0
    """Per-step CPU time (scheduling, sampling, detokenizing) that the GPU waits for; 0 where the engine
    overlaps it with the next step (vLLM V1 async scheduling, SGLang overlap scheduler, TRT-LLM overlap)."""
    step_overhead_source: str
    source: str

    def limits_for(self, gpu: "GpuSpec") -> EngineLimits:
        gib = gpu.memory.capacity_bytes / 2**30
        names = " ".join([gpu.name, *gpu.aliases]).lower()
        for lim in self.limits:
            if gib >= lim.min_memory_gib and not any(w.lower() in names for w in lim.not_named):
                return lim
        return self.limits[-1]


class EngineProfile(Strict):
    """One serving engine's scheduler and memory defaults, by version (engines/*.yaml, each value with its
    file and line in the engine's code)."""

    name: str
    aliases: list[str] = []
    default_version: str
    versions: list[EngineVersion]
    source: str

    @model_validator(mode="after")
    def _default_exists(self) -> "EngineProfile":
        names = [v.version for v in self.versions]
        if self.default_version not in names:
            raise ValueError(f"default_version {self.default_version!r} is not one of the versions {names}")
        return self

    def version(self, name: str | None) -> EngineVersion:
        want = name or self.default_version
        for v in self.versions:
            if v.version == want or (name and v.version.startswith(name)):
                return v
        raise ValueError(f"{self.name} has no profile for version {want!r}; valid: "
                         f"{', '.join(v.version for v in self.versions)}")

# ----------------------------------------------------------------------------------------------------
# Training framework profiles (frameworks/*.yaml)
# ----------------------------------------------------------------------------------------------------


class FrameworkSetting(Strict):
    """One setting a framework runs with by default (or a paper ran with), and where that is stated."""

    value: Any
    source: str


ATTENTION_KERNELS = ("flash", "flash1", "eager")
"""Training attention kernels a profile or --attention names: flash = FlashAttention-2, flash1 = FlashAttention
1.x (each at its measured rate, hardware/calibration/flash-attention-{2,1}.csv), eager = the s x s scores
through HBM."""
ATTENTION_WORDS = {"flash": "FlashAttention-2", "flash1": "FlashAttention 1.x", "eager": "eager attention"}
"""Each ATTENTION_KERNELS word as the outputs write it."""


class FrameworkSettings(Strict):
    attention: FrameworkSetting
    """flash | flash1 | eager (ATTENTION_KERNELS): FlashAttention-2 or 1.x kernels, or the s x s scores through
    HBM."""
    sequence_parallel: FrameworkSetting
    """bool: Megatron sequence parallelism (Korthikanti et al. 2022)."""
    zero: FrameworkSetting
    """list of ZeRO stages the framework offers (the first is its default): 0 = optimizer states replicated
    over data parallelism, 1 = Megatron's distributed optimizer, 3 = FSDP / ZeRO-3."""
    recompute: FrameworkSetting
    """list of activation-recompute modes it offers (none / selective / full; the first is its default)."""
    max_virtual_stages: FrameworkSetting
    """int: the most interleaved 1F1B chunks per rank it runs (1: plain 1F1B)."""
    grad_reduce_dtype: FrameworkSetting | None = None
    """bf16 | fp32: the dtype data parallelism reduces gradients in (absent: bf16, tpplan's default)."""
    overlap_grad_reduce: FrameworkSetting | None = None
    """bool: ZeRO 0-2 gradient reduction (and ZeRO-1/2's parameter gather) runs behind the backward pass
    (absent: true, tpplan's default); false: after it, exposed. ZeRO-3 always prefetches."""
    elementwise: FrameworkSetting | None = None
    """fused | eager: the norms, residual adds, activation and rotary run as hand-fused kernels (Apex / Transformer
    Engine / Megatron's fused ops; tpplan's default) or as PyTorch eager ops (perf.EAGER_ELEMENTWISE_FRACTION)."""

    @model_validator(mode="after")
    def _values(self) -> "FrameworkSettings":
        if self.attention.value not in ATTENTION_KERNELS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_KERNELS)}; got {self.attention.value!r}")
        if not isinstance(self.sequence_parallel.value, bool):
            raise ValueError("sequence_parallel must be true or false")
        zs, rs = self.zero.value, self.recompute.value
        if not (isinstance(zs, list) and zs and all(z in (0, 1, 2, 3) for z in zs)):
            raise ValueError(f"zero must be a non-empty list of stages 0-3; got {zs!r}")
        if not (isinstance(rs, list) and rs and all(r in ("none", "selective", "full") for r in rs)):
            raise ValueError(f"recompute must be a non-empty list of none / selective / full; got {rs!r}")
        v = self.max_virtual_stages.value
        if not (isinstance(v, int) and 1 <= v <= 64):
            raise ValueError(f"max_virtual_stages must be an integer 1-64; got {v!r}")
        if self.grad_reduce_dtype is not None and self.grad_reduce_dtype.value not in ("bf16", "fp32"):
            raise ValueError(f"grad_reduce_dtype must be bf16 or fp32; got {self.grad_reduce_dtype.value!r}")
        if self.overlap_grad_reduce is not None and not isinstance(self.overlap_grad_reduce.value, bool):
            raise ValueError("overlap_grad_reduce must be true or false")
        if self.elementwise is not None and self.elementwise.value not in ("fused", "eager"):
            raise ValueError(f"elementwise must be fused or eager; got {self.elementwise.value!r}")
        return self


class FrameworkProfile(Strict):
    """How one training framework (or one paper's setup) runs by default: the settings tpplan models, each with
    its source (frameworks/*.yaml). ``--framework NAME`` takes them as defaults; every one has its own flag."""

    name: str
    aliases: list[str] = []
    description: str
    framework: FrameworkSettings
    source: str


# ----------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------


class AttentionSpec(Strict):
    kind: Literal["mha", "gqa", "mqa", "mla"]
    num_heads: PosInt
    """Query heads."""
    num_kv_heads: PosInt
    """Key/value heads (== num_heads for MHA, 1 for MQA). Nominal for MLA (ignored for the cache)."""
    head_dim: PosInt
    """Per-head dimension of Q/K/V (for MLA: the value head dim v_head_dim)."""
    qkv_bias: bool = False
    out_bias: bool = False
    sliding_window: PosInt | None = None
    """If set, the sliding-window layers (every layer, unless ``layer_pattern`` says which) attend to at most
    this many past tokens and cache only those."""
    chunk_size: PosInt | None = None
    """Chunked local attention (Llama 4 ``attention_chunk_size``): a ``chunked`` layer attends only within
    its aligned chunk of this many tokens and caches at most one chunk."""
    layer_pattern: list[Literal["full", "sliding", "chunked"]] | None = None
    """Attention kind of each layer, repeated over the layers (layer i is ``layer_pattern[i % len]``):
    Gemma 2 and GPT-OSS ``[sliding, full]``, Gemma 3 five ``sliding`` then ``full``, Llama 4 three
    ``chunked`` then ``full``. None: every layer ``sliding`` if ``sliding_window`` is set, else ``full``."""
    sinks: bool = False
    """A learned attention-sink logit per head and layer (GPT-OSS): num_heads parameters per layer."""
    qk_norm: bool = False
    """RMSNorm weights on the query and key heads (Qwen3, Gemma 3): 2 x head_dim parameters per layer."""
    q_lora_rank: PosInt | None = None
    """MLA: rank of the query down-projection (None: full-rank query projection)."""
    kv_lora_rank: PosInt | None = None
    """MLA: rank of the compressed KV latent c_KV that is cached."""
    qk_rope_head_dim: PosInt | None = None
    """MLA: decoupled RoPE key dimension (cached alongside the latent)."""
    qk_nope_head_dim: PosInt | None = None
    """MLA: non-RoPE part of the query/key head."""
    v_head_dim: PosInt | None = None
    """MLA: value head dimension."""

    @model_validator(mode="after")
    def _consistent(self) -> "AttentionSpec":
        if self.kind == "mla":
            missing = [f for f in ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")
                       if getattr(self, f) is None]
            if missing:
                raise ValueError(f"MLA attention needs {', '.join(missing)}")
        else:
            if self.num_heads % self.num_kv_heads:
                raise ValueError(
                    f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
            if self.kind == "mha" and self.num_kv_heads != self.num_heads:
                raise ValueError("kind mha needs num_kv_heads == num_heads (use gqa otherwise)")
            if self.kind == "mqa" and self.num_kv_heads != 1:
                raise ValueError("kind mqa needs num_kv_heads == 1")
        kinds = set(self.layer_pattern or [])
        if "sliding" in kinds and not self.sliding_window:
            raise ValueError("layer_pattern has sliding layers but sliding_window is not set")
        if "chunked" in kinds and not self.chunk_size:
            raise ValueError("layer_pattern has chunked layers but chunk_size is not set")
        if self.layer_pattern is not None and not self.layer_pattern:
            raise ValueError("layer_pattern is empty")
        return self


class MlpSpec(Strict):
    kind: Literal["gated", "gelu", "relu2"]
    """``gated``: SwiGLU with gate, up and down matrices (3 d d_ff); ``gelu``: up and down (2 d d_ff);
    ``relu2``: up and down with a squared ReLU between (Nemotron), 2 d d_ff like gelu."""
    intermediate_size: PosInt
    """d_ff of the dense MLP (for MoE models: of the dense layers, if any)."""
    bias: bool = False


class MoeSpec(Strict):
    num_experts: PosInt
    """Routed experts per MoE layer."""
    experts_per_token: PosInt
    """Routed experts each token is sent to (top-k)."""
    expert_intermediate_size: PosInt
    """d_ff of one routed expert (gated, like the dense MLP)."""
    num_shared_experts: NonNegInt = 0
    """Always-active shared experts (DeepSeek)."""
    shared_expert_intermediate_size: PosInt | None = None
    """d_ff of one shared expert (defaults to expert_intermediate_size)."""
    first_dense_layers: NonNegInt = 0
    """The first k layers use the dense MLP instead of experts (DeepSeek first_k_dense_replace)."""
    router_bias: bool = False
    """A per-expert bias on the router (DeepSeek-V3 e_score_correction_bias, GPT-OSS router bias)."""
    expert_bias: bool = False
    """Biases on each expert's projections (GPT-OSS: gate_up 2 x d_ff, down hidden)."""
    layer_step: PosInt = 1
    """Every layer_step-th layer is MoE, the others dense (Llama 4 interleave_moe_layer_step: Maverick 2)."""
    expert_weight_dtype: Literal["fp8", "int4", "fp4", "mxfp4"] | None = None
    """Expert weights stored in a narrower format than the rest of the checkpoint (GPT-OSS: MXFP4 experts,
    bf16 attention). None: the model's weight dtype."""
    routing_groups: PosInt | None = None
    """Group-limited routing (DeepSeek-V3 config.json n_group: 8): the experts fall in this many groups..."""
    groups_per_token: PosInt | None = None
    """...and a token's experts come from at most this many of them (topk_group: 4). With one group per node
    of the expert-parallel group, a token reaches at most that many nodes (DeepSeek-V3 report, arXiv
    2412.19437, section 2.1.2, 'node-limited routing')."""

    @model_validator(mode="after")
    def _topk(self) -> "MoeSpec":
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token cannot exceed num_experts")
        return self


ROPE_TYPES = ("yarn", "linear", "dynamic")
MAX_ROPE_FACTOR = 64.0


def valid_rope_scaling(kind: object, factor: object) -> bool:
    """A context extension tpplan models: one of ROPE_TYPES and a factor in (1, MAX_ROPE_FACTOR]."""
    return (kind in ROPE_TYPES and isinstance(factor, int | float) and not isinstance(factor, bool)
            and math.isfinite(factor) and 1 < factor <= MAX_ROPE_FACTOR)


class RopeScalingSpec(Strict):
    """A context extension the deployment applies (vLLM ``--hf-overrides '{"rope_scaling": ...}'``): positions
    up to original_max_position_embeddings x factor."""

    rope_type: Literal["yarn", "linear", "dynamic"]
    factor: Annotated[float, Field(gt=1, le=MAX_ROPE_FACTOR, allow_inf_nan=False)]
    original_max_position_embeddings: PosInt


class ModelSpec(Strict):
    name: str
    aliases: list[str] = []
    family: str
    hf_id: str | None = None
    """Hugging Face repo id, used in the ready-to-paste serving command."""
    num_layers: Annotated[int, Field(gt=0, le=MAX_LAYERS)]
    """Transformer layers (at most MAX_LAYERS: per-layer properties such as layer_kinds walk them)."""
    hidden_size: PosInt
    vocab_size: PosInt
    tie_word_embeddings: bool = False
    max_position_embeddings: PosInt
    """Native maximum context (tokens)."""
    position_embedding: Literal["rope", "learned", "alibi", "none"] = "rope"
    """``learned`` adds a (max_position_embeddings x hidden) table (GPT-2/3)."""
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    """Activation dtype of the released checkpoint (config.json torch_dtype): the default KV-cache dtype
    (vLLM ``--kv-cache-dtype auto``) and the default weight dtype unless ``weight_dtype`` says otherwise."""
    weight_dtype: Literal["bf16", "fp16", "fp32", "fp8", "int8", "int4", "fp4"] | None = None
    """Dtype the released weights are stored in when quantized (DeepSeek-V3: fp8 with 128x128 block
    scales); None means ``dtype``."""
    rope_scaling: RopeScalingSpec | None = None
    """Set by ``--rope-scaling`` (or a deployment's rope_scaling / hf_overrides): the extension the serving
    command applies; max_position_embeddings is then the extended limit."""
    allow_long_context: bool = False
    """Set by ``--allow-long-context``: max_position_embeddings lifted without scaling (vLLM
    VLLM_ALLOW_LONG_MAX_MODEL_LEN=1); the model was not trained for the extra positions."""
    norms_per_layer: PosInt = 2
    """RMSNorm/LayerNorm modules per layer (Gemma 2/3: 4, pre and post attention and MLP)."""
    attention: AttentionSpec
    mlp: MlpSpec
    moe: MoeSpec | None = None
    mtp_layers: NonNegInt = 0
    """Multi-token-prediction modules shipped beside the main layers (config.json num_nextn_predict_layers;
    DeepSeek-V3: 1). Loaded only for speculative decoding (--speculative mtp); not in the parameter counts."""
    source: str

    @model_validator(mode="after")
    def _moe_layers(self) -> "ModelSpec":
        if self.moe is not None and self.moe.first_dense_layers > self.num_layers:
            raise ValueError("moe.first_dense_layers exceeds num_layers")
        return self

    # ---- derived (computed, not stored) -------------------------------------------------------------

    @property
    def num_moe_layers(self) -> int:
        """Layers i >= first_dense_layers with (i + 1) % layer_step == 0 (Llama 4 moe_layers)."""
        if self.moe is None:
            return 0
        k, step = self.moe.first_dense_layers, self.moe.layer_step
        return sum(1 for i in range(k, self.num_layers) if (i + 1) % step == 0)

    @cached_property
    def layer_kinds(self) -> list[str]:
        """Attention kind of each layer: full, sliding or chunked."""
        a = self.attention
        pattern = a.layer_pattern or (["sliding"] if a.sliding_window else ["full"])
        return [pattern[i % len(pattern)] for i in range(self.num_layers)]

    @cached_property
    def _kind_fractions(self) -> tuple[float, float, float]:
        """Shares of full, sliding and chunked layers."""
        kinds, n = self.layer_kinds, float(self.num_layers)
        return kinds.count("full") / n, kinds.count("sliding") / n, kinds.count("chunked") / n

    @property
    def has_full_attention(self) -> bool:
        return self._kind_fractions[0] > 0

    def mean_cached_tokens(self, ctx: npt.ArrayLike) -> Any:
        """Tokens a sequence of ``ctx`` tokens keeps in the KV cache, averaged over the layers: full layers all,
        sliding layers the window, chunked layers one chunk (vLLM v1 hybrid KV cache manager:
        FullAttentionSpec, SlidingWindowSpec, ChunkedLocalAttentionSpec in vllm/v1/kv_cache_interface.py)."""
        c = np.asarray(ctx, dtype=np.float64)
        f_full, f_slide, f_chunk = self._kind_fractions
        out = f_full * c
        if f_slide:
            out = out + f_slide * np.minimum(c, float(self.attention.sliding_window or 0))
        if f_chunk:
            out = out + f_chunk * np.minimum(c, float(self.attention.chunk_size or 0))
        return out

    def ctx_for_cached_tokens(self, tokens: npt.ArrayLike, cap: float) -> Any:
        """Inverse of mean_cached_tokens: the longest context whose cache fits ``tokens`` mean tokens per
        layer, at most ``cap`` (a model with no full-attention layer is capped only by ``cap``)."""
        t = np.asarray(tokens, dtype=np.float64)
        f_full, f_slide, f_chunk = self._kind_fractions
        if f_full == 1.0:
            return np.minimum(t, cap)
        # piecewise linear and increasing: solve on each segment between the window / chunk breakpoints
        points = sorted({0.0, *(float(w) for w, f in ((self.attention.sliding_window, f_slide),
                                                       (self.attention.chunk_size, f_chunk)) if f and w)})
        out = np.zeros_like(t)
        for i, lo in enumerate(points):
            hi = points[i + 1] if i + 1 < len(points) else np.inf
            base = float(self.mean_cached_tokens(lo))
            slope = f_full + sum(f for w, f in ((self.attention.sliding_window, f_slide),
                                                (self.attention.chunk_size, f_chunk)) if f and w and w > lo)
            if slope <= 0:
                seg = np.where(t >= base, cap, out)
            else:
                seg = lo + (t - base) / slope
            out = np.where(t >= base, np.minimum(seg, hi if slope > 0 else cap), out)
        return np.minimum(out, cap)

    def mean_attended(self, ctx: npt.ArrayLike, causal: bool) -> Any:
        """Keys a query attends to, averaged over layers and (causal: over the ``ctx`` query positions of a
        prompt; else: one query at position ``ctx``, as in decode). Sliding window W: min(c, W); causal
        prompt of P > W: W - W^2 / 2P. Chunked C: a decode token sees its chunk so far (C / 2 on average once
        past the first chunk); a causal prompt min(P, C) / 2 (Llama 4 chunked local attention)."""
        c = np.asarray(ctx, dtype=np.float64)
        f_full, f_slide, f_chunk = self._kind_fractions
        out = f_full * (c / 2.0 if causal else c)
        if f_slide:
            w = float(self.attention.sliding_window or 0)
            if causal:
                with np.errstate(divide="ignore", invalid="ignore"):
                    out = out + f_slide * np.where(c <= w, c / 2.0, w - w * w / (2.0 * np.maximum(c, 1.0)))
            else:
                out = out + f_slide * np.minimum(c, w)
        if f_chunk:
            ch = float(self.attention.chunk_size or 0)
            out = out + f_chunk * (np.minimum(c, ch) / 2.0 if causal else np.where(c < ch, c, ch / 2.0))
        return out

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    @property
    def norm_params(self) -> int:
        """Parameters of one norm (RMSNorm: weight; LayerNorm: weight and bias)."""
        return self.hidden_size * (2 if self.norm == "layernorm" else 1)

    @cached_property
    def attention_params_per_layer(self) -> int:
        """QKV and output projections of one layer, biases and MLA's internal norms included."""
        a, h = self.attention, self.hidden_size
        if a.kind == "mla":
            assert a.kv_lora_rank and a.qk_rope_head_dim and a.qk_nope_head_dim and a.v_head_dim
            qk_head = a.qk_nope_head_dim + a.qk_rope_head_dim
            if a.q_lora_rank:  # q_a_proj, q_a_layernorm, q_b_proj (DeepSeek-V2/V3 modeling code)
                q = h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * a.num_heads * qk_head
            else:
                q = h * a.num_heads * qk_head
            kv = (h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank  # kv_a_proj_with_mqa + norm
                  + a.kv_lora_rank * a.num_heads * (a.qk_nope_head_dim + a.v_head_dim))  # kv_b_proj
            o = a.num_heads * a.v_head_dim * h
            return q + kv + o
        q_out = a.num_heads * a.head_dim
        kv_out = a.num_kv_heads * a.head_dim
        params = h * (q_out + 2 * kv_out) + q_out * h
        if a.qkv_bias:
            params += q_out + 2 * kv_out
        if a.out_bias:
            params += h
        if a.sinks:
            params += a.num_heads  # GptOssAttention.sinks
        if a.qk_norm:
            params += 2 * a.head_dim  # q_norm and k_norm over head_dim (Qwen3Attention)
        return params

    def _mlp_params(self, d_ff: int, bias: bool) -> int:
        mats = 3 if self.mlp.kind == "gated" else 2
        params = mats * self.hidden_size * d_ff
        if bias:
            params += (mats - 1) * d_ff + self.hidden_size
        return params

    @cached_property
    def dense_mlp_params(self) -> int:
        return self._mlp_params(self.mlp.intermediate_size, self.mlp.bias)

    @cached_property
    def expert_params(self) -> int:
        """One routed expert."""
        return 0 if self.moe is None else self._mlp_params(self.moe.expert_intermediate_size, self.moe.expert_bias)

    @cached_property
    def shared_expert_params(self) -> int:
        """All shared experts of one MoE layer."""
        if self.moe is None or self.moe.num_shared_experts == 0:
            return 0
        d_ff = self.moe.shared_expert_intermediate_size or self.moe.expert_intermediate_size
        return self.moe.num_shared_experts * self._mlp_params(d_ff, False)

    @cached_property
    def router_params(self) -> int:
        if self.moe is None:
            return 0
        return self.moe.num_experts * self.hidden_size + (self.moe.num_experts if self.moe.router_bias else 0)

    @cached_property
    def embedding_params(self) -> int:
        """Input embedding (plus learned positions), counted once."""
        pos = self.max_position_embeddings * self.hidden_size if self.position_embedding == "learned" else 0
        return self.vocab_size * self.hidden_size + pos

    @cached_property
    def lm_head_params(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @cached_property
    def layer_params_dense(self) -> int:
        """One dense layer: attention + dense MLP + its norms."""
        return self.attention_params_per_layer + self.dense_mlp_params + self.norms_per_layer * self.norm_params

    @cached_property
    def layer_params_moe(self) -> int:
        """One MoE layer with all its experts."""
        if self.moe is None:
            return 0
        return (self.attention_params_per_layer + self.norms_per_layer * self.norm_params + self.router_params
                + self.shared_expert_params + self.moe.num_experts * self.expert_params)

    @cached_property
    def params_total(self) -> int:
        """Every parameter of the checkpoint (MTP/speculative heads excluded), tied embeddings once."""
        return (self.num_dense_layers * self.layer_params_dense + self.num_moe_layers * self.layer_params_moe
                + self.embedding_params + self.lm_head_params + self.norm_params)

    @cached_property
    def params_active(self) -> int:
        """Parameters one token touches: routed experts counted experts_per_token times per MoE layer."""
        if self.moe is None:
            return self.params_total
        inactive = self.num_moe_layers * (self.moe.num_experts - self.moe.experts_per_token) * self.expert_params
        return self.params_total - inactive

    @cached_property
    def bias_and_norm_params_per_layer(self) -> int:
        """Vector parameters of one layer (biases, norms, MLA's latent norms): no matmul FLOPs."""
        a, h = self.attention, self.hidden_size
        vec = self.norms_per_layer * self.norm_params + (a.num_heads if a.sinks else 0)
        vec += 2 * a.head_dim if a.qk_norm else 0
        if a.kind == "mla":
            vec += (a.q_lora_rank or 0) + (a.kv_lora_rank or 0)
        else:
            if a.qkv_bias:
                vec += (a.num_heads + 2 * a.num_kv_heads) * a.head_dim
            if a.out_bias:
                vec += h
        if self.mlp.bias:
            mats = 3 if self.mlp.kind == "gated" else 2
            vec += (mats - 1) * self.mlp.intermediate_size + h
        return vec

    @cached_property
    def matmul_params_active(self) -> int:
        """Weight-matrix elements one token multiplies through (embedding lookup, biases and norms
        excluded, LM head included even when tied): the N of 2N FLOPs per token (Kaplan et al. 2020;
        Narayanan et al. 2021 count 24 h^2 per layer + the logit layer). The MoE router is included."""
        vec = self.num_layers * self.bias_and_norm_params_per_layer + self.norm_params
        if self.moe is not None and self.moe.router_bias:
            vec += self.num_moe_layers * self.moe.num_experts
        lm = self.vocab_size * self.hidden_size
        return self.params_active - self.embedding_params - self.lm_head_params - vec + lm

    def kv_cache_bytes_per_token(self, kv_dtype_bytes: float) -> float:
        """KV cache of one token over all layers, before any split.

        Standard attention: 2 (K and V) x layers x kv_heads x head_dim x bytes (vLLM AttentionSpec page size).
        MLA: one latent of kv_lora_rank + qk_rope_head_dim per layer (DeepSeek-V2 paper, vLLM MLA spec).
        """
        a = self.attention
        if a.kind == "mla":
            assert a.kv_lora_rank and a.qk_rope_head_dim
            return self.num_layers * (a.kv_lora_rank + a.qk_rope_head_dim) * kv_dtype_bytes
        return self.num_layers * 2 * a.num_kv_heads * a.head_dim * kv_dtype_bytes

    def with_rope_scaling(self, rope_type: str, factor: float) -> "ModelSpec":
        """This model served with its positions extended (YaRN and friends): the limit becomes the native
        maximum x factor, as vLLM derives max_model_len from rope_scaling (vllm/config/model.py)."""
        native = self.rope_scaling.original_max_position_embeddings if self.rope_scaling else \
            self.max_position_embeddings
        rs = {"rope_type": rope_type, "factor": factor, "original_max_position_embeddings": native}
        # validated anew, not model_copy: a copy would carry the cached derived counts of the original
        return ModelSpec.model_validate({**self.model_dump(), "rope_scaling": rs,
                                         "max_position_embeddings": int(native * factor)})

    def kv_cache_bytes_per_sequence(self, ctx: int, kv_dtype_bytes: float) -> float:
        """KV cache of one sequence of ``ctx`` tokens over all layers, each layer's kind applied: a sliding-window
        layer holds at most its window, a chunked layer one chunk (vLLM v1 hybrid KV cache manager)."""
        return float(self.kv_cache_bytes_per_token(kv_dtype_bytes) * self.mean_cached_tokens(float(ctx)))

    def valid_tp(self, limit: int = 1024) -> list[int]:
        """TP sizes the engine accepts: TP divides the query heads; TP divides the KV heads, or (TP >
        KV heads) is a multiple of them (vLLM QKVParallelLinear). MLA has no KV-head constraint."""
        out = []
        a = self.attention
        for t in range(1, min(limit, a.num_heads) + 1):
            if a.num_heads % t:
                continue
            if a.kind != "mla":
                kv = a.num_kv_heads
                if (t <= kv and kv % t) or (t > kv and t % kv):
                    continue
            out.append(t)
        return out


def model_from_dimensions(layers: int, hidden: int, heads: int, vocab: int, ffn: int | None = None,
                          kv_heads: int | None = None, max_positions: int | None = None) -> ModelSpec:
    """A GPT-style model given by its dimensions (for models not released yet): MHA (or GQA with
    ``kv_heads``), GELU MLP of ``ffn`` (default 4 x hidden), biases, LayerNorm, learned positions and tied
    embeddings, as GPT-3 / Megatron-LM (Narayanan et al. 2021, Korthikanti et al. 2022). The learned position
    table holds ``max_positions`` rows (the caller passes the context or sequence length; 2,048 by default)."""
    for what, v in (("--layers", layers), ("--hidden", hidden), ("--heads", heads), ("--vocab", vocab)):
        if v < 1:
            raise ValueError(f"{what} must be a positive integer; got {v}")
    if hidden % heads:
        raise ValueError(f"--hidden ({hidden}) must be divisible by --heads ({heads})")
    kv = kv_heads or heads
    if heads % kv:
        raise ValueError(f"--heads ({heads}) must be divisible by --kv-heads ({kv})")
    f = ffn or 4 * hidden
    return ModelSpec.model_validate({
        "name": f"gpt-{layers}l-{hidden}h-{heads}a", "family": "gpt", "norm": "layernorm",
        "position_embedding": "learned", "dtype": "bf16", "tie_word_embeddings": True, "vocab_size": vocab,
        "num_layers": layers, "hidden_size": hidden, "max_position_embeddings": max_positions or 2048,
        "attention": {"kind": "mha" if kv == heads else "gqa", "num_heads": heads, "num_kv_heads": kv,
                      "head_dim": hidden // heads, "qkv_bias": True, "out_bias": True},
        "mlp": {"kind": "gelu", "intermediate_size": f, "bias": True},
        "source": f"given by dimensions on the command line: {layers} layers, hidden {hidden}, {heads} heads"
                  f"{f', {kv} KV heads' if kv != heads else ''}, vocab {vocab}, GELU MLP {f} [user]",
    })
