"""JSON Schemas (draft 2020-12) of every ``--format json`` output, generated from the typed result models of
``tpplan/results.py`` (``model_json_schema``), each metric defined precisely there.

``tpplan schema NAME`` prints one; the tests validate real outputs against them and against the models. Keys are
a public contract (docs/metrics.md; the contract of the issues): add, never rename. Bump the results'
``schema_version`` only for a breaking change. The schemas are self-contained: pydantic's ``$defs`` are inlined
where referenced, so a reader walks ``properties`` as before.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/X"}`` replaced by (an inlined copy of) X."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline(defs[ref.rsplit("/", 1)[1]], defs)
            rest = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **rest}  # a description next to the $ref wins over the model's docstring
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(x, defs) for x in node]
    return node


@functools.cache
def _spec_docs() -> dict[str, dict[str, str]]:
    """Each catalog spec class's field docstrings (tpplan/catalog/spec.py documents every field with the string
    under it), read from the source with ast: turning them into pydantic descriptions at class creation would
    cost every command's start 35 ms (spec.Strict), so the schemas take them here."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(__file__).with_name("catalog").joinpath("spec.py").read_text(encoding="utf-8"))
    out: dict[str, dict[str, str]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        docs = out.setdefault(cls.name, {})
        for a, b in zip(cls.body, cls.body[1:], strict=False):
            if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                    and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                docs[a.target.id] = " ".join(b.value.value.split())
    return out


def _describe_specs(defs: dict[str, Any]) -> None:
    """Give the properties of catalog spec classes among ``defs`` (by class name, and a result class extending
    one) their field docstrings where pydantic has no description."""
    from tpplan import results
    from tpplan.catalog import spec

    docs = _spec_docs()
    for name, node in defs.items():
        cls = getattr(spec, name, None) or getattr(results, name, None)
        if not isinstance(cls, type):
            continue
        fields: dict[str, str] = {}
        for base in reversed(cls.__mro__):
            fields.update(docs.get(base.__name__, {}) if base.__module__ == spec.__name__ else {})
        for key, prop in (node.get("properties") or {}).items():
            if key in fields and "description" not in prop:
                prop["description"] = fields[key]


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of one result model, as ``tpplan schema`` prints it."""
    raw = model.model_json_schema(mode="serialization")
    defs = raw.pop("$defs", {})
    _describe_specs(defs)
    out = _inline(raw, defs)
    title = (model.__doc__ or model.__name__).strip().splitlines()[0]
    out.pop("title", None)
    return {"$schema": DIALECT, "title": title, **out}


def schema(name: str) -> dict[str, Any]:
    """``tpplan schema NAME``: the schema of one output (KeyError for an unknown name)."""
    from tpplan.results import RESULTS

    return schema_of(RESULTS[name])


def __getattr__(attr: str) -> Any:
    """``SCHEMAS``: every output's schema by name, generated on first use (pydantic takes ~0.2 s for all nine)."""
    if attr == "SCHEMAS":
        from tpplan.results import RESULTS

        globals()["SCHEMAS"] = out = {name: schema_of(model) for name, model in RESULTS.items()}
        return out
    raise AttributeError(attr)
