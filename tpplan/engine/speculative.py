"""Speculative decoding: a draft proposes k tokens, the target verifies k + 1 in one step (issue 21).

Owns the method list, the expected tokens per target step, and the draft a method runs on the GPU (an EAGLE
head, the model's own MTP layer, a separate draft model, or nothing for n-gram lookup).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tpplan.catalog.spec import ModelSpec

METHODS = ("eagle", "eagle3", "mtp", "ngram", "draft")
"""vLLM's speculative_config methods (vllm/config/speculative.py: eagle, eagle3, mtp, ngram, draft_model);
SGLang --speculative-algorithm EAGLE / EAGLE3 / NEXTN (MTP); TensorRT-LLM's speculative_config decoding_type
Eagle / MTP / NGram / DraftTarget."""

MAX_DRAFT_TOKENS = 16


def expected_tokens(acceptance: float, k: int) -> float:
    """Tokens a target step yields with k drafted tokens, each accepted with probability ``acceptance`` given
    the ones before it were (i.i.d.): 1 + a + a^2 + ... + a^k = (1 - a^(k+1)) / (1 - a), the accepted prefix
    plus the target's own next token (Leviathan, Kalman and Matias 2023, 'Fast Inference from Transformers
    via Speculative Decoding', arXiv 2211.17192, eq. 1)."""
    a = float(acceptance)
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


@dataclass(frozen=True)
class Speculative:
    """Speculative decoding as one deployment runs it."""

    method: str
    draft_tokens: int
    """k: tokens the draft proposes per target step (vLLM num_speculative_tokens)."""
    acceptance: float
    """Probability that a drafted token is accepted given that the ones before it were (Leviathan's
    alpha); not vLLM's per-position 'acceptance rate' of each draft position."""
    draft: ModelSpec | None = None
    """What runs once per drafted token: the EAGLE head or MTP layer (one decoder layer sharing the target's
    embedding and LM head), the draft model, or None (n-gram lookup on the CPU)."""
    draft_model: str | None = None
    """--draft-model as given (a catalog name or Hugging Face id)."""

    @property
    def tokens_per_step(self) -> float:
        return expected_tokens(self.acceptance, self.draft_tokens)

    @property
    def verify_tokens(self) -> int:
        """Tokens per decoding sequence the target runs in one step: the k drafts plus its own next token."""
        return self.draft_tokens + 1

    @property
    def shares_lm_head(self) -> bool:
        """The draft reuses the target's embedding and LM head (EAGLE, MTP): their weights are not loaded twice."""
        return self.method in ("eagle", "eagle3", "mtp")

    @property
    def draft_model_name(self) -> str | None:
        """What drafts: the EAGLE head or MTP layer as given, the draft model's name, or None."""
        return self.draft_model or (self.draft.name if self.draft is not None else None)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "draft_tokens": self.draft_tokens, "acceptance": self.acceptance,
                "tokens_per_step": self.tokens_per_step, "verify_tokens": self.verify_tokens,
                "draft_model": self.draft_model_name}


def head_spec(model: ModelSpec, method: str) -> ModelSpec:
    """The one decoder layer an EAGLE head or an MTP module runs per drafted token, as a one-layer model with
    the target's width, vocabulary and LM head.

    EAGLE (Li et al. 2024, arXiv 2401.15077): one dense decoder layer over the fused features and the
    token's embedding; the MLP is the target's dense MLP (yuhuili/EAGLE configs copy the target's
    intermediate_size). MTP (DeepSeek-V3 report, arXiv 2412.19437, section 2.2): one full transformer block of
    the target, MoE included, plus a 2h x h projection; vLLM reuses that layer for every drafted token when
    k exceeds num_nextn_predict_layers (vllm/model_executor/models/deepseek_mtp.py)."""
    d = model.model_dump()
    d.update(name=f"{model.name}-{method}-head", aliases=[], num_layers=1, hf_id=None,
             source=f"{method} head of {model.name}: one decoder layer of its width (tpplan/engine/speculative.py)")
    att = dict(d["attention"])
    att["layer_pattern"] = None
    if att.get("sliding_window") and model.has_full_attention:
        att["sliding_window"] = None  # the head attends over the whole context (a full-attention layer)
    d["attention"] = att
    if method == "mtp" and model.moe is not None:
        moe = dict(d["moe"])
        moe.update(first_dense_layers=0, layer_step=1)
        d["moe"] = moe
    else:
        d["moe"] = None  # EAGLE: the target's dense MLP (a MoE model's spec keeps its dense intermediate_size)
    return ModelSpec.model_validate(d)


def fc_params(model: ModelSpec) -> int:
    """The head's input projection: EAGLE's fc and MTP's eh_proj map [embedding; hidden] (2h) to h."""
    return 2 * model.hidden_size * model.hidden_size
