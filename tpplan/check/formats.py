"""The report of ``tpplan check`` as text, GitHub annotations, markdown and SARIF (JSON is the Report itself)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tpplan.check.deployment import SPELLINGS
from tpplan.check.rules import RULES, Finding, Report
from tpplan.plan import serve as planner

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
             "Generated from `tpplan/check/rules.py` (`RULES`); ids are stable and appear in JSON (`rule`), SARIF "
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
