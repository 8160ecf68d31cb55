"""The rules ``tpplan check`` applies to deployment files: each rule's id, name, severity and text (``RULES``,
the single source of docs/check-rules.md, SARIF and the annotations), and the findings and report they produce."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tpplan.plan import serve as planner

SCHEMA_VERSION: Literal[1] = 1
Level = Literal["error", "warning"]

if TYPE_CHECKING:
    from tpplan import result_types as rt


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    level: Level
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


@dataclass
class Finding:
    rule: str
    level: Level
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

    def to_json(self) -> rt.Finding:
        return {"rule": self.rule, "name": self.name, "level": self.level, "file": self.file,
                "line": self.line, "column": self.column, "document": self.document, "path": self.path,
                "message": self.message, "fix": self.fix, "suggestion": self.suggestion}


@dataclass
class Report:
    files: list[str] = field(default_factory=list)
    documents: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[rt.Skipped] = field(default_factory=list)
    """Documents that are not deployments (a CI workflow): file, document, reason."""

    def count(self, level: str) -> int:
        return sum(1 for f in self.findings if f.level == level)

    @property
    def input_errors(self) -> int:
        return sum(1 for f in self.findings if f.rule == "TPP100")

    def summary(self) -> rt.CheckSummary:
        return {"files": len(self.files), "documents": self.documents, "errors": self.count("error"),
                "warnings": self.count("warning"), "input_errors": self.input_errors}

    def to_json(self) -> rt.CheckResult:
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
