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


@functools.cache
def registry() -> dict[str, dict[str, Format]]:
    """kind -> format name -> Format. Kinds: estimate, train-estimate, recommend, train-recommend, cost, check
    (check's result is its Report; the others are the result dicts of tpplan/results.py)."""
    import json

    from tpplan.check import deployment as chk
    from tpplan.render import tables, to_json

    js = Format("json", text=to_json)

    def four(table: Callable[[Any, Any], None], markdown: Callable[[Any], str],
             csv: Callable[[Any], str]) -> dict[str, Format]:
        return {"table": Format("table", rich=table), "json": js, "markdown": Format("markdown", text=markdown),
                "csv": Format("csv", text=csv)}

    return {
        "estimate": four(tables.print_estimate, tables.estimate_markdown, tables.estimate_csv),
        "train-estimate": four(tables.print_train_estimate, tables.train_estimate_markdown, tables.train_estimate_csv),
        "recommend": four(tables.print_recommend, tables.recommend_markdown, tables.recommend_csv),
        "train-recommend": four(tables.print_train_recommend, tables.train_recommend_markdown,
                                tables.train_recommend_csv),
        "cost": {"table": Format("table", rich=tables.print_cost), "json": js,
                 "markdown": Format("markdown", text=tables.cost_markdown)},
        "check": {"text": Format("text", text=chk.render_text),
                  "json": Format("json", text=lambda rep: to_json(rep.to_json())),
                  "github": Format("github", text=chk.render_github),
                  "sarif": Format("sarif", text=lambda rep: json.dumps(chk.render_sarif(rep), indent=2)),
                  "markdown": Format("markdown", text=chk.render_markdown)},
    }


def get(kind: str, fmt: str) -> Format:
    """The format ``fmt`` of ``kind``; a one-paragraph error (exit 2) naming the valid ones otherwise."""
    fmts = registry()[kind]
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
