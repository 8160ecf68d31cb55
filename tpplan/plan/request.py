"""The serving request: a workload as a caller states it (command-line flags, a deployment file, the Python API),
checked in one place and turned into the engine's ``ServeWorkload``. It owns the serving workload's defaults and
rules; each edge says a broken rule in its own words (``--input-len`` on the command line, the file's own key and
line in ``tpplan check``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from tpplan.engine.workload import VLLM, ServeWorkload, kv_cache_dtypes, resolve_dtype


class RequestError(ValueError):
    """A request that breaks a rule. ``template`` writes the fields it concerns as ``{field}`` placeholders, which
    each edge fills with its own spelling of them (``text``); the first field is where it points."""

    def __init__(self, fields: tuple[str, ...], template: str):
        self.fields = fields
        self.template = template
        super().__init__(self.text(lambda f: f))

    def text(self, name: Callable[[str], str]) -> str:
        return self.template.format(**{f: name(f) for f in self.fields})


def _literal(text: str) -> str:
    """``text`` inside a RequestError template, its braces kept."""
    return text.replace("{", "{{").replace("}", "}}")


class ServeRequest(BaseModel):
    """What a caller asks to serve, in base units: the context and request lengths, the concurrency per replica,
    dtypes, the engine's memory fraction and profile. ``None`` takes the default: the prompt fills what the output
    leaves of the context, the model's own weight dtype, its dtype for the KV cache ('auto'), the engine profile's
    memory fraction and its newest version."""

    model_config = ConfigDict(frozen=True, strict=True)

    ctx: int
    output_len: int
    input_len: int | None = None
    concurrency: int = 1
    weight_dtype: str | None = None
    kv_dtype: str | None = None
    gpu_memory_utilization: float | None = None
    engine: str = "vllm"
    engine_version: str | None = None
    max_num_seqs: int | None = None
    """A running-batch cap the caller sets (a deployment's max_num_seqs); None: the engine profile's."""
    max_num_batched_tokens: int | None = None
    """A step budget the caller sets; None: the engine profile's."""

    def workload(self, model: Any, cat: Any = None) -> ServeWorkload:
        """The engine's workload for ``model``, with the engine profile of catalog ``cat`` (None: tpplan's vLLM
        defaults). Raises RequestError naming the fields of a broken rule (the catalog's TpplanError for an
        unknown engine)."""
        from tpplan.catalog.spec import normalize_dtype

        if self.input_len is None and self.output_len >= self.ctx:
            raise RequestError(("output_len", "ctx"),
                               f"{{output_len}} ({self.output_len}) leaves no room for a prompt in {{ctx}} "
                               f"({self.ctx}); a sequence holds at most ctx tokens, prompt and output.")
        n_in = self.input_len if self.input_len is not None else self.ctx - self.output_len
        if n_in + self.output_len > self.ctx:
            raise RequestError(("input_len", "output_len", "ctx"),
                               f"{{input_len}} ({n_in}) + {{output_len}} ({self.output_len}) exceeds {{ctx}} "
                               f"({self.ctx}); a sequence holds at most ctx tokens.")
        try:
            wdt = normalize_dtype(self.weight_dtype) if self.weight_dtype else (model.weight_dtype or model.dtype)
        except ValueError as exc:
            raise RequestError(("weight_dtype",), _literal(str(exc))) from None
        try:
            kdt = resolve_dtype(self.kv_dtype, model.dtype)
        except ValueError as exc:
            raise RequestError(("kv_dtype",), _literal(str(exc))) from None
        u = self.gpu_memory_utilization
        if u is not None and not (0 < u <= 1):
            raise RequestError(("gpu_memory_utilization",), f"{{gpu_memory_utilization}} must be in (0, 1]; got {u}")
        profile = None
        if cat is not None:
            profile = cat.engine(self.engine)  # an unknown name: the catalog's error, naming the closest
            try:
                profile.version(self.engine_version)
            except ValueError as exc:
                raise RequestError(("engine_version",), "{engine_version}: " + _literal(str(exc))) from None
        name = profile.name if profile is not None else "vllm"
        kv_ok = kv_cache_dtypes(name)
        if kdt not in kv_ok:
            raise RequestError(("kv_dtype",), "{kv_dtype} " + _literal(
                f"{self.kv_dtype}: the {name} KV cache takes auto, {', '.join(kv_ok)}"
                + ("; int8 is TensorRT-LLM's (engine trtllm)" if kdt == "int8" else "")))
        return ServeWorkload(ctx=self.ctx, input_len=n_in, output_len=self.output_len, concurrency=self.concurrency,
                             weight_dtype=wdt, kv_dtype=kdt,
                             gpu_memory_utilization=u if u is not None else VLLM.gpu_memory_utilization,
                             engine_profile=profile, engine_version=self.engine_version,
                             memory_fraction_given=u is not None, max_num_seqs=self.max_num_seqs,
                             max_num_batched_tokens=self.max_num_batched_tokens)
