"""One registry of output formats (as pip-audit's formatters): for each kind of result, every ``--format``
name maps to a Format with one rendering of that result. Commands pick one by name (``emit``, ``text``);
adding a format is its renderer plus one entry here, and a test holds each command's --format choices and
this registry to the same list."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tpplan.errors import TpplanError

Out = Callable[[str], None]


@dataclass(frozen=True)
class Format:
    """One output format of one kind of result: text written through ``out`` (JSON, markdown, CSV, SARIF,
    annotations) or a rich rendering printed on the terminal's console (tables)."""

    name: str
    text: Callable[[Any], str] | None = None
    rich: Callable[[Any, Any], None] | None = None

    def render(self, result: Any, console: Callable[[], Any], out: Out) -> None:
        if self.text is not None:
            out(self.text(result))
        else:
            assert self.rich is not None
            self.rich(console(), result)


def _json() -> Format:
    from tpplan.render import to_json

    return Format("json", text=to_json)


def _four(table: str, markdown: str, csv: str) -> dict[str, Format]:
    """table / json / markdown / csv of a result rendered by tpplan/render/tables.py's functions of these names."""
    from tpplan.render import tables

    return {"table": Format("table", rich=getattr(tables, table)), "json": _json(),
            "markdown": Format("markdown", text=getattr(tables, markdown)),
            "csv": Format("csv", text=getattr(tables, csv))}


def _cost() -> dict[str, Format]:
    from tpplan.render import tables

    return {"table": Format("table", rich=tables.print_cost), "json": _json(),
            "markdown": Format("markdown", text=tables.cost_markdown)}


def _check() -> dict[str, Format]:
    import json

    from tpplan.check import formats as chk
    from tpplan.render import to_json

    return {"text": Format("text", text=chk.render_text),
            "json": Format("json", text=lambda rep: to_json(rep.to_json())),
            "github": Format("github", text=chk.render_github),
            "sarif": Format("sarif", text=lambda rep: json.dumps(chk.render_sarif(rep), indent=2)),
            "markdown": Format("markdown", text=chk.render_markdown)}


def _validate() -> dict[str, Format]:
    from tpplan.render import to_json
    from tpplan.render.tables import validate_text

    return {"table": Format("table", text=lambda v: validate_text(v, False)),
            "json": Format("json", text=lambda v: to_json(v.res)),
            "markdown": Format("markdown", text=lambda v: validate_text(v, True))}


def _report() -> dict[str, Format]:
    from tpplan.render import report as rr
    from tpplan.render import to_json

    return {"markdown": Format("markdown", text=rr.report_markdown), "html": Format("html", text=rr.report_html),
            "csv": Format("csv", text=rr.report_csv), "json": Format("json", text=lambda v: to_json(v.res))}


KINDS: dict[str, Callable[[], dict[str, Format]]] = {
    "estimate": lambda: _four("print_estimate", "estimate_markdown", "estimate_csv"),
    "train-estimate": lambda: _four("print_train_estimate", "train_estimate_markdown", "train_estimate_csv"),
    "recommend": lambda: _four("print_recommend", "recommend_markdown", "recommend_csv"),
    "train-recommend": lambda: _four("print_train_recommend", "train_recommend_markdown", "train_recommend_csv"),
    "cost": _cost,
    "check": _check,
    "validate": _validate,
    "report": _report,
}
"""kind -> its formats, built when first asked for (a command imports only its own renderers). Kinds: the
result dicts of tpplan/results.py, check's Report, validate's ValidateView and report's Stamped (a result
with what the reader asked to see)."""


@functools.cache
def formats_of(kind: str) -> dict[str, Format]:
    return KINDS[kind]()


def registry() -> dict[str, dict[str, Format]]:
    """Every kind's formats (for tests and docs)."""
    return {kind: formats_of(kind) for kind in KINDS}


def get(kind: str, fmt: str) -> Format:
    """The format ``fmt`` of ``kind``; a one-paragraph error (exit 2) naming the valid ones otherwise."""
    fmts = formats_of(kind)
    if fmt not in fmts:
        raise TpplanError(f"--format {fmt} is not available here; valid: {', '.join(fmts)}")
    return fmts[fmt]


def emit(kind: str, fmt: str, result: Any, console: Callable[[], Any], out: Out) -> None:
    """Render ``result`` in ``fmt``: text through ``out``, tables on ``console()`` (made only when needed)."""
    get(kind, fmt).render(result, console, out)


def text(kind: str, fmt: str, result: Any) -> str:
    """``result`` as text in ``fmt`` (for a file, or a format without a terminal rendering)."""
    f = get(kind, fmt)
    assert f.text is not None, f"{kind} {fmt} renders on a terminal only"
    return f.text(result)
