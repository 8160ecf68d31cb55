"""Bytes per GPU by component, vectorized over a :class:`~tpplan.engine.grid.Grid`.

Rules (docs/architecture.md, docs/metrics.md):
- Weights: attention and MLP matrices split by TP (column-parallel QKV/gate/up, row-parallel out/down,
  Megatron-LM, Shoeybi et al. 2019); K/V projections replicated once tp > kv_heads (vLLM
  QKVParallelLinear); vocab-parallel embedding and LM head; norms replicated; layers split by PP with the
  largest stage counted (vLLM get_pp_indices: remainder layers on all but the last stage); embedding on
  the first stage, LM head on the last; routed experts split by EP (each expert whole) or, without EP, by
  TP; quantization scales added per dtype.
- KV cache per GPU per token = layers_on_stage x 2 x max(1, kv_heads // tp) x head_dim x bytes (vLLM
  ModelConfig.get_num_kv_heads); MLA caches kv_lora_rank + qk_rope_head_dim per layer on every TP rank;
  a sliding window caps cached tokens; CP splits tokens.
- Training: mixed-precision Adam states 2 + grad_bytes + 12 per parameter with ZeRO sharding (Rajbhandari
  et al. 2020); activations from Korthikanti et al. 2022 (Table 2, generalized to GQA and gated MLPs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from tpplan.catalog.spec import DTYPE_BYTES, ModelSpec
from tpplan.engine.grid import Grid, memo
from tpplan.engine.workload import Context

FArray = npt.NDArray[np.float64]

# Extra bytes per weight for quantization scales:
#  fp8: one fp32 scale per 128x128 block (DeepSeek-V3 / vLLM block-fp8): 4 / 16384
#  int8: one fp32 scale per output channel of ~8192 inputs: 4 / 8192
#  int4: AWQ/GPTQ group 128 with an fp16 scale and a packed 4-bit zero point: (2 + 0.5) / 128
#  fp4: NVFP4, one fp8 scale per 16 elements: 1 / 16
QUANT_SCALE_BYTES = {"fp8": 4 / 16384, "int8": 4 / 8192, "int4": 2.5 / 128, "fp4": 1 / 16}


def weight_bytes_per_param(dtype: str) -> float:
    """Storage bytes per weight element including quantization scales. MXFP4 (OCP Microscaling spec v1.0):
    4-bit elements with one 8-bit E8M0 scale per block of 32 = 0.5 + 1/32 bytes."""
    if dtype == "mxfp4":
        return 0.5 + 1 / 32
    return DTYPE_BYTES[dtype] + QUANT_SCALE_BYTES.get(dtype, 0.0)


def serve_expert_bytes(model: ModelSpec, weight_dtype: str) -> float:
    """Bytes per expert weight when serving: the checkpoint's narrower expert format (GPT-OSS MXFP4 experts,
    which vLLM loads as MXFP4) unless the chosen weight dtype is narrower still."""
    wb = weight_bytes_per_param(weight_dtype)
    if model.moe is not None and model.moe.expert_weight_dtype:
        return min(wb, weight_bytes_per_param(model.moe.expert_weight_dtype))
    return wb


StageSplit = tuple[int, int] | None
"""Layers on the first and on the last pipeline stage when the user states them (Megatron-core
--decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers), the others sharing the rest
evenly; None: the even split below."""


def stage_layers(num_layers: int, pp: npt.ArrayLike, split: StageSplit = None) -> tuple[FArray, FArray]:
    """(layers on the first stage, layers on the last stage). vLLM's get_pp_indices gives every stage
    floor(L/pp) layers and the remainder, one each, to the stages before the last: the last stage has
    floor(L/pp), the largest ceil(L/pp). The first stage is sized as the largest (it also holds the
    embedding), which overstates it by at most one layer when the remainder stops short of it. ``split``:
    the user's first and last stage sizes (pp >= 2)."""
    pp = np.asarray(pp, dtype=np.float64)
    if split is not None:
        return np.where(pp > 1, float(split[0]), num_layers), np.where(pp > 1, float(split[1]), num_layers)
    first = np.ceil(num_layers / pp)
    last = np.where(pp > 1, np.floor(num_layers / np.maximum(pp, 1.0)), num_layers)
    return first, last


def middle_layers(num_layers: int, pp: npt.ArrayLike, split: StageSplit = None) -> FArray:
    """Layers on the heaviest middle stage (pp >= 3): ceil(L/pp) of the even split, or the layers left by the
    user's first and last stages shared evenly (Megatron-core requires them to divide)."""
    pp = np.asarray(pp, dtype=np.float64)
    if split is not None:
        return np.ceil((num_layers - split[0] - split[1]) / np.maximum(pp - 2.0, 1.0))
    return stage_layers(num_layers, pp)[0]


def moe_layer_split(model: ModelSpec, layers: FArray, first_stage: bool) -> tuple[FArray, FArray]:
    """(dense layers, MoE layers) among ``layers`` of a stage; the dense layers come first in the model."""
    if model.moe is None:
        return layers, np.zeros_like(layers)
    step = model.moe.layer_step
    if step > 1:  # interleaved (Llama 4 Maverick): layers i with (i + 1) % step == 0 are MoE
        moe = np.floor(layers / step) if first_stage else np.minimum(np.ceil(layers / step), model.num_moe_layers)
        return layers - moe, moe
    k = float(model.moe.first_dense_layers)
    if first_stage:
        dense = np.minimum(layers, k)
    else:  # the last stage holds the model's last ``layers`` layers: dense only if those reach into the first k
        dense = np.clip(k - (model.num_layers - layers), 0.0, layers)
    return dense, layers - dense


@dataclass(frozen=True, eq=False)
class WeightSplit:
    """Per-GPU weight elements of one layer kind, after TP/EP sharding."""

    attention: FArray
    dense_mlp: FArray
    moe_mlp: FArray
    norms: float
    embedding: FArray
    lm_head: FArray


def weight_elements(model: ModelSpec, g: Grid) -> WeightSplit:
    """Weight elements per GPU per layer kind (not bytes) after tensor and expert parallel sharding."""
    tp = g.tp.astype(np.float64)
    ep = g.ep.astype(np.float64)
    a, h = model.attention, model.hidden_size
    if a.kind == "mla":
        assert a.kv_lora_rank and a.qk_rope_head_dim and a.qk_nope_head_dim and a.v_head_dim
        # q_a_proj and kv_a_proj_with_mqa are replicated (vLLM ReplicatedLinear); the rest split by TP
        replicated = h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank
        if a.q_lora_rank:
            replicated += h * a.q_lora_rank + a.q_lora_rank
        attn = replicated + (model.attention_params_per_layer - replicated) / tp
    else:
        q_out = a.num_heads * a.head_dim
        kv_heads_gpu = np.maximum(1.0, a.num_kv_heads / tp)  # replicated once tp > kv_heads
        kv_out = kv_heads_gpu * a.head_dim
        attn = h * q_out / tp + 2 * h * kv_out + q_out * h / tp
        if a.qkv_bias:
            attn = attn + q_out / tp + 2 * kv_out
        if a.out_bias:
            attn = attn + h
        if a.sinks:
            attn = attn + a.num_heads / tp
        if a.qk_norm:
            attn = attn + 2.0 * a.head_dim
    dense = np.full_like(tp, float(model.dense_mlp_params)) / tp
    if model.moe is not None:
        # with EP each expert stays whole on 1/ep of the ranks; without EP every expert is TP-sharded
        routed = model.moe.num_experts * model.expert_params / np.where(ep > 1, ep, tp)
        moe = routed + model.shared_expert_params / tp + model.router_params
    else:
        moe = np.zeros_like(tp)
    emb = model.vocab_size * h / tp
    if model.position_embedding == "learned":
        emb = emb + model.max_position_embeddings * h
    head = np.where(model.tie_word_embeddings, 0.0, model.vocab_size * h / tp) + np.zeros_like(tp)
    return WeightSplit(attention=np.asarray(attn, dtype=np.float64) + np.zeros_like(tp), dense_mlp=dense,
                       moe_mlp=moe, norms=float(model.norms_per_layer * model.norm_params),
                       embedding=emb + np.zeros_like(tp),
                       lm_head=head)


def weight_bytes_per_gpu(model: ModelSpec, g: Grid, weight_dtype: str, act_dtype: str = "bf16",
                         split: WeightSplit | None = None, expert_bytes: float | None = None,
                         stages: StageSplit = None) -> tuple[FArray, FArray, FArray]:
    """(bytes on the most loaded GPU, bytes on a first-stage GPU, bytes on a last-stage GPU).

    Quantized weights apply to the linear layers; embeddings, LM head and norms stay in the activation
    dtype (vLLM keeps VocabParallelEmbedding / ParallelLMHead unquantized for fp8 and int4 checkpoints).
    With pp = 1 the first and last stage are the same GPU. With pp >= 3 a middle stage of ceil(L/pp)
    layers, as many of them MoE as the model has, is a candidate for the most loaded: a MoE model's dense
    layers come first, so its first stage is light (DeepSeek-V3: 3 dense layers of 61).
    """
    w = split if split is not None else weight_elements(model, g)  # ``split``: already computed for ``g``
    pp = g.pp.astype(np.float64)
    wb = weight_bytes_per_param(weight_dtype)
    eb = wb if expert_bytes is None else expert_bytes  # ``expert_bytes``: serving, serve_expert_bytes()
    ab = DTYPE_BYTES[act_dtype]
    first_l, last_l = stage_layers(model.num_layers, pp, stages)

    def stage(layers: FArray, first: bool) -> FArray:
        dense_l, moe_l = moe_layer_split(model, layers, first)
        linear = layers * w.attention + dense_l * w.dense_mlp
        return linear * wb + moe_l * w.moe_mlp * eb + layers * w.norms * ab

    single = pp == 1
    emb_b = w.embedding * ab
    head_b = w.lm_head * ab + model.norm_params * ab  # final norm sits with the LM head
    first_b = stage(first_l, True) + emb_b + np.where(single, head_b, 0.0)
    last_b = np.where(single, first_b, stage(last_l, False) + head_b)
    if model.tie_word_embeddings:
        # tied: the last stage holds its own copy of the (vocab-parallel) embedding as LM head
        last_b = np.where(single, first_b, last_b + w.embedding * ab)
    return np.maximum(np.maximum(first_b, last_b), np.where(pp >= 3, middle_stage_bytes(model, g, w, wb, ab,
                                                                                         expert_bytes=eb,
                                                                                         stages=stages),
                                                            0.0)), first_b, last_b


def middle_stage_bytes(model: ModelSpec, g: Grid, w: WeightSplit, wb: float, ab: float,
                       moe_unread: npt.ArrayLike = 0.0, expert_bytes: float | None = None,
                       stages: StageSplit = None) -> FArray:
    """Weight bytes of the heaviest middle pipeline stage: ceil(L/pp) layers (or the user's split's middle),
    MoE wherever the model has MoE layers left (``moe_unread``: bytes per MoE layer a decode step skips, for
    read bytes)."""
    layers = middle_layers(model.num_layers, g.pp, stages)
    if model.moe is None:
        moe_l = 0.0 * layers
    else:
        moe_l = np.minimum(np.ceil(layers / model.moe.layer_step), float(model.num_moe_layers))
    eb = wb if expert_bytes is None else expert_bytes
    linear = layers * w.attention + (layers - moe_l) * w.dense_mlp
    return (linear * wb + moe_l * w.moe_mlp * eb + layers * w.norms * ab
            - moe_l * np.asarray(moe_unread, dtype=np.float64))


def kv_bytes_per_token_per_gpu(model: ModelSpec, g: Grid, kv_dtype: str) -> FArray:
    """KV-cache bytes per cached token on the most loaded GPU (largest stage)."""
    first_l, _ = stage_layers(model.num_layers, g.pp)
    a = model.attention
    kvb = DTYPE_BYTES[kv_dtype]
    if a.kind == "mla":
        assert a.kv_lora_rank and a.qk_rope_head_dim
        per_layer = np.full(len(g), float(a.kv_lora_rank + a.qk_rope_head_dim))
    else:
        kv_heads_gpu = np.maximum(1, a.num_kv_heads // g.tp).astype(np.float64)
        per_layer = 2.0 * kv_heads_gpu * a.head_dim
    return first_l * per_layer * kvb


def cached_tokens_per_sequence(model: ModelSpec, ctx: int, g: Grid) -> FArray:
    """Tokens one sequence keeps in the cache of one GPU, per layer: a sliding-window or chunked layer keeps
    at most its window or chunk (ModelSpec.mean_cached_tokens, averaged over layers); split by CP."""
    tokens = float(model.mean_cached_tokens(float(ctx)))  # per layer, averaged over the layers' kinds
    return np.ceil(tokens / g.cp.astype(np.float64))


def serve_activation_bytes(model: ModelSpec, g: Grid, chunk_tokens: int, max_seqs: FArray,
                           act_dtype: str = "bf16") -> FArray:
    """Peak activation workspace of one forward step of ``chunk_tokens`` tokens on one GPU (vLLM's
    profile_run): residual and normed hidden states, the QKV output, the MLP gate/up output and its
    activation, plus fp32 logits of the sampled sequences (vocab-parallel)."""
    tp = g.tp.astype(np.float64)
    a, h = model.attention, model.hidden_size
    b = DTYPE_BYTES[act_dtype]
    if a.kind == "mla":
        assert a.qk_nope_head_dim and a.qk_rope_head_dim and a.v_head_dim
        qkv = a.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim) / tp
    else:
        # per GPU: heads / tp query heads and max(1, kv / tp) KV heads (KV replicated when TP > KV heads)
        qkv = (a.num_heads / tp + 2 * np.maximum(1.0, a.num_kv_heads / tp)) * a.head_dim
    d_ff = float(model.mlp.intermediate_size)
    if model.moe is not None:
        d_ff = max(d_ff if model.num_dense_layers else 0.0,
                   model.moe.experts_per_token * model.moe.expert_intermediate_size)
    mlp = 3.0 * d_ff / tp if model.mlp.kind == "gated" else 2.0 * d_ff / tp
    per_token = (2.0 * h + qkv + mlp) * b
    tokens = float(chunk_tokens)
    logits = np.minimum(max_seqs, tokens) * model.vocab_size / tp * 4.0
    return tokens * per_token + logits


def overhead_bytes(ctx: Context, g: Grid) -> FArray:
    """CUDA context + NCCL buffers (when the GPU shares a communicator) + CUDA-graph pool."""
    o = ctx.gpu.overheads
    group = (g.tp * g.pp * g.ep) > 1
    return (o.cuda_context_bytes + np.where(group, o.nccl_bytes_per_group, 0) + o.cuda_graph_bytes
            + np.zeros(len(g))).astype(np.float64)


@dataclass(frozen=True, eq=False)
class ServeMemory:
    weights: FArray
    kv_cache: FArray
    activations: FArray
    overhead: FArray
    total: FArray
    capacity: float
    usable: FArray
    """Memory the engine lets weights, activations, overhead and the KV cache use (per its memory rule)."""
    kv_pool: FArray
    """What is left of ``usable`` for the KV cache."""
    kv_bytes_per_token_per_gpu: FArray
    kv_bytes_per_sequence: FArray
    max_concurrency: FArray
    """Sequences of ctx tokens that fit in what is left after weights, activations and overhead."""
    max_ctx_one_sequence: FArray
    """Longest context of one sequence that fits (vLLM's 'estimated maximum model length')."""
    first_stage_weights: FArray
    last_stage_weights: FArray
    kv_shared: FArray | float = 0.0
    """KV bytes of the shared prefix (--shared-prefix), held once per GPU beside the sequences'."""

    @property
    def fixed(self) -> FArray:
        """Bytes held whatever the batch: weights, activations, runtime overhead and the shared prefix's KV."""
        return self.weights + self.activations + self.overhead + self.kv_shared


def draft_grid(g: Grid, draft: ModelSpec) -> Grid:
    """The grid a speculative draft runs on: each row's TP group, whole (one pipeline stage), its experts over
    the row's EP group when it has any (an MTP layer), else none."""
    return replace(g, pp=np.ones_like(g.pp), ep=g.ep if draft.moe is not None else np.ones_like(g.ep))


def draft_bytes_per_gpu(ctx: Context, g: Grid) -> tuple[FArray, FArray]:
    """(weight bytes, KV bytes per cached token) the speculative draft adds on a GPU. It runs on the target's
    TP group, whole on every pipeline stage's group (vLLM loads it beside the last stage). An EAGLE head or MTP
    layer shares the target's embedding and LM head (not loaded twice) and adds its 2h x h input projection,
    replicated (vLLM llama_eagle.py / deepseek_mtp.py); a draft model brings all its weights in its own
    checkpoint dtype. Each drafted layer caches its own KV."""
    from tpplan.engine.speculative import fc_params

    assert ctx.serve is not None
    w = ctx.serve
    spec = w.speculative
    zero = np.zeros(len(g))
    if spec is None or spec.draft is None:
        return zero, zero
    d = spec.draft
    gd = draft_grid(g, d)
    wdt = w.weight_dtype if spec.shares_lm_head else (d.weight_dtype or d.dtype)
    weights, _, _ = weight_bytes_per_gpu(d, gd, wdt, d.dtype, expert_bytes=serve_expert_bytes(d, wdt))
    if spec.shares_lm_head:
        act = DTYPE_BYTES[d.dtype]
        weights = weights - (d.embedding_params + d.lm_head_params) * act / gd.tp.astype(np.float64)
        weights = weights + fc_params(d) * act
    return weights, kv_bytes_per_token_per_gpu(d, gd, w.kv_dtype)


def serve_memory(ctx: Context, g: Grid) -> ServeMemory:
    """Per-GPU serving memory of the most loaded GPU (vLLM semantics: gpu_memory_utilization x total)."""
    assert ctx.serve is not None
    w = ctx.serve
    m = ctx.model
    # the weights and the KV bytes per token are the model's and the grid's alone: once for a search's GPU types
    weights, first_w, last_w = memo(g, m, ("serve_weights", w.weight_dtype), lambda: weight_bytes_per_gpu(
        m, g, w.weight_dtype, m.dtype, expert_bytes=serve_expert_bytes(m, w.weight_dtype)))
    draft_w, draft_kv = draft_bytes_per_gpu(ctx, g)
    weights, first_w, last_w = weights + draft_w, first_w + draft_w, last_w + draft_w
    kv_tok = memo(g, m, ("kv_per_token", w.kv_dtype), lambda: kv_bytes_per_token_per_gpu(m, g, w.kv_dtype)) + draft_kv
    # a shared prefix (--shared-prefix) is held once per replica; each sequence holds the rest of its tokens
    shared_tok = cached_tokens_per_sequence(m, w.shared_cached_tokens, g) if w.shared_cached_tokens else 0.0 * kv_tok
    shared_kv = kv_tok * shared_tok
    per_seq = kv_tok * (cached_tokens_per_sequence(m, w.ctx, g) - shared_tok)
    conc = g.concurrency.astype(np.float64)
    act = serve_activation_bytes(m, g, w.engine.max_num_batched_tokens, conc, m.dtype)
    ovh = overhead_bytes(ctx, g)
    capacity = float(ctx.gpu.memory.capacity_bytes)
    fixed = weights + act + ovh
    rule = w.engine.memory_rule
    if rule == "free":
        # TRT-LLM: the KV pool is a fraction of what weights and buffers leave (kvCacheConfig.h:49)
        usable = np.where(fixed > capacity, capacity, fixed + w.gpu_memory_utilization * (capacity - fixed))
    elif rule == "sglang-static":
        # SGLang 0.5.3 mem_fraction_static: weights + KV get the memory less a reserve for activations and
        # CUDA graphs of 512 + 1.5 x max(chunk, 2048) + 2 x cuda_graph_max_bs (256) + TP x PP / 8 x 1024 MiB,
        # at least 10240 MiB above 60 GiB (srt/server_args.py:637-674 @0.5.3)
        mib = 2.0**20
        reserve = (512 + 1.5 * max(w.engine.max_num_batched_tokens, 2048) + 512
                   + (g.tp * g.pp).astype(np.float64) / 8 * 1024) * mib
        if capacity > 60 * 2**30:
            reserve = np.maximum(reserve, 10240 * mib)
        usable = capacity - reserve + act + ovh
    else:
        usable = capacity * w.gpu_memory_utilization + 0.0 * fixed
    left = usable - fixed - shared_kv
    kv = per_seq * conc + shared_kv
    with np.errstate(divide="ignore", invalid="ignore"):
        max_conc = np.where(per_seq > 0, np.floor(np.maximum(left, 0) / per_seq), 0.0)
        tokens = np.where(kv_tok > 0, np.maximum(left, 0) / kv_tok * g.cp, 0.0)  # mean per layer
        # without a full-attention layer the cache stops growing past the largest window: any context fits
        cap = np.inf if m.has_full_attention else float(m.max_position_embeddings)
        max_ctx = np.floor(m.ctx_for_cached_tokens(tokens, cap))
    return ServeMemory(weights=weights, kv_cache=kv, activations=act, overhead=ovh,
                       total=weights + kv + act + ovh, capacity=capacity, usable=usable, kv_pool=left,
                       kv_bytes_per_token_per_gpu=kv_tok, kv_bytes_per_sequence=per_seq,
                       max_concurrency=max_conc, max_ctx_one_sequence=max_ctx,
                       first_stage_weights=first_w, last_stage_weights=last_w, kv_shared=shared_kv)


# ---------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------


def params_per_gpu(model: ModelSpec, g: Grid, stages: StageSplit = None) -> FArray:
    """Parameters held by the most loaded GPU before ZeRO (TP/PP/EP sharding; ``stages``: the user's split)."""
    elems, _, _ = weight_bytes_per_gpu(model, g, "fp32", "fp32", stages=stages)
    return elems / 4.0


def model_state_bytes(params: FArray, g: Grid, zero: npt.ArrayLike, grad_bytes: int = 2,
                      shard_group: int | None = None) -> tuple[FArray, FArray, FArray]:
    """(params, grads, optimizer) bytes per GPU for mixed-precision Adam: 2 + grad_bytes + 12 per parameter
    (fp32 master, momentum, variance), ZeRO-1 shards the 12, ZeRO-2 also the grads, ZeRO-3 also the params
    (Rajbhandari et al. 2020, Fig. 1). Sharded over dp x cp (Megatron distributed optimizer), or over
    ``shard_group`` ranks of it, replicated across the groups (hybrid sharding: PyTorch FSDP HYBRID_SHARD,
    torchtitan's data_parallel_shard_degree). ``zero`` is one stage or one per row."""
    shard = (g.dp * g.cp).astype(np.float64)
    if shard_group is not None:
        shard = np.minimum(shard, float(shard_group))
    z = np.asarray(zero)
    p = params * 2.0 / np.where(z >= 3, shard, 1.0)
    gr = params * float(grad_bytes) / np.where(z >= 2, shard, 1.0)
    opt = params * 12.0 / np.where(z >= 1, shard, 1.0)
    return p, gr, opt


def layer_activation_bytes(model: ModelSpec, s: npt.ArrayLike, b: npt.ArrayLike, t: npt.ArrayLike,
                           sequence_parallel: bool, recompute: str, flash_attention: bool) -> FArray:
    """Activation bytes of one transformer layer (Korthikanti et al. 2022, Table 2), generalized.

    GPT (MHA, 4h GELU MLP, dropout): sbh(34 + 5as/h) with no parallelism; sbh(10 + 24/t + 5as/(ht)) with
    TP; sbh(34/t + 5as/(ht)) with TP+SP; selective recompute drops the 5as/h score term; full recompute
    keeps 2sbh (the layer input; /t with SP). Generalization: the TP-split part is attention
    (Q 2 + K,V 4 g + output-projection input 2, with g = kv_heads / heads) plus the MLP intermediates
    (GELU: 4 d_ff/h; gated with the fused SwiGLU kernel: 6 d_ff/h; MoE: top-k experts); the unsplit part is
    the two LayerNorm inputs 4, the two block inputs 4 and, for models trained with dropout, the two dropout
    masks 2.
    """
    s = np.asarray(s, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    a, h = model.attention, model.hidden_size
    sbh = s * b * h
    if recompute == "full":
        return 2.0 * sbh / np.where(sequence_parallel, t, 1.0)
    dropout = model.family == "gpt"
    g = 1.0 if a.kind == "mla" else a.num_kv_heads / a.num_heads
    attn_split = 2.0 + 4.0 * g + 2.0
    if model.moe is not None:
        d_ff = model.moe.experts_per_token * model.moe.expert_intermediate_size
    else:
        d_ff = model.mlp.intermediate_size
    # gated (SwiGLU): the fused kernel saves its input, gate and up (2 x 2 d_ff bytes), and fc2 saves its input
    # (2 d_ff): 6 d_ff/h (Megatron-core's default bias_swiglu_fusion, megatron/core/fusions/fused_bias_swiglu.py
    # SwiGLUFunction saves only its input; torch.compile fuses silu x up the same way); GELU 4h: fc1 output and
    # GELU output, 4 d_ff/h (Korthikanti Table 2's 16 sbh for d_ff = 4h)
    mlp_split = (6.0 if model.mlp.kind == "gated" else 4.0) * d_ff / h
    unsplit = 4.0 + 4.0 + (2.0 if dropout else 0.0)
    split = attn_split + mlp_split
    score = (5.0 if dropout else 2.0) * a.num_heads * s / h
    keep_score = not flash_attention and recompute == "none"
    if sequence_parallel:
        per = (unsplit + split) / t
    else:
        per = unsplit + split / t
    if keep_score:
        per = per + score / t
    return sbh * per


def train_activation_bytes(ctx: Context, g: Grid) -> FArray:
    """Activations on the first pipeline stage (the most loaded under 1F1B): layers_on_stage x
    min(pp, micro-batches) in flight (Korthikanti Eq. 5: PP does not divide activation memory), times
    (1 + (p-1)/(p v)) when interleaved; CP divides the sequence. The last stage's fp32 logits
    (4 s b v / t) are counted there."""
    assert ctx.train is not None
    tw = ctx.train
    m = ctx.model
    s = tw.seq_len / g.cp.astype(np.float64)
    b = g.micro_batch.astype(np.float64)
    t = g.tp.astype(np.float64)
    pp = g.pp.astype(np.float64)
    per_layer = layer_activation_bytes(m, s, b, t, tw.sequence_parallel, tw.recompute, tw.flash_attention)
    micro = np.maximum(1.0, tw.global_batch / np.maximum(g.dp * g.micro_batch, 1))
    in_flight = np.minimum(pp, micro)
    first_l, last_l = stage_layers(m.num_layers, pp, tw.stage_split)
    interleave = 1.0 + np.where(pp > 1, (pp - 1) / (pp * tw.interleave), 0.0) if tw.interleave > 1 else 1.0
    first = first_l * per_layer * in_flight * interleave
    # the second stage holds one micro-batch fewer (1F1B: stage i keeps pp - i in flight); with the even split
    # it never outweighs the first, with a user's lighter first stage it can
    second = np.where(pp >= 3, middle_layers(m.num_layers, pp, tw.stage_split) * per_layer
                      * np.minimum(pp - 1.0, micro) * interleave, 0.0)
    logits = 4.0 * s * b * m.vocab_size / t
    last = last_l * per_layer + logits
    return np.maximum(np.maximum(first, second), np.where(pp == 1, first + logits, last))


@dataclass(frozen=True, eq=False)
class TrainMemory:
    params: FArray
    gradients: FArray
    optimizer: FArray
    activations: FArray
    overhead: FArray
    total: FArray
    capacity: float
    params_per_gpu: FArray


def train_memory(ctx: Context, g: Grid, zero: npt.ArrayLike | None = None) -> TrainMemory:
    """Per-GPU training memory; ``zero`` (one stage per row) overrides the workload's ZeRO stage."""
    assert ctx.train is not None
    n_params = params_per_gpu(ctx.model, g, ctx.train.stage_split)
    p, gr, opt = model_state_bytes(n_params, g, ctx.train.zero if zero is None else zero, ctx.train.grad_bytes,
                                   ctx.train.shard_group)
    act = train_activation_bytes(ctx, g)
    o = ctx.gpu.overheads
    ovh = (o.cuda_context_bytes + np.where(g.gpus > 1, o.nccl_bytes_per_group, 0)).astype(np.float64)
    total = p + gr + opt + act + ovh
    return TrainMemory(params=p, gradients=gr, optimizer=opt, activations=act, overhead=ovh, total=total,
                       capacity=float(ctx.gpu.memory.capacity_bytes), params_per_gpu=n_params)
