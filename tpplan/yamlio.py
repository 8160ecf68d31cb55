"""Safe YAML loading that remembers where every key and value sits (1-based line and column)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpplan.errors import TpplanError

if TYPE_CHECKING:
    import yaml

Path_ = tuple[str | int, ...]


def _yaml() -> Any:
    """PyYAML, imported on first parse: a command that reads no YAML (the bundled catalog comes compiled,
    see catalog.py) does not pay its import."""
    import yaml

    return yaml


@dataclass
class Located:
    """A parsed YAML document plus the position of each key (for mappings) or item (for sequences)."""

    data: Any
    file: str
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    """Path -> (line, column) of the key that holds the value at that path."""
    value_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    """Path -> (line, column) of the value itself."""
    doc_mark: tuple[int, int] = (1, 1)

    def where(self, path: Path_) -> tuple[int, int]:
        """Best position for a path: its key, else the nearest enclosing key, else the document start."""
        p = tuple(path)
        while p:
            if p in self.key_marks:
                return self.key_marks[p]
            if p in self.value_marks:
                return self.value_marks[p]
            p = p[:-1]
        return self.doc_mark


_STR_TAG = "tag:yaml.org,2002:str"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct(node: yaml.Node, path: Path_, out: Located, loader: Any) -> Any:
    yaml = _yaml()
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for knode, vnode in node.value:
            if knode.tag == _MERGE_TAG:
                # a merge key (<<: *base, or a list of them): the merged mappings' keys, unless this mapping
                # sets them itself; among merged mappings the later one wins, as PyYAML's flatten_mapping does
                sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
                if not all(isinstance(x, yaml.MappingNode) for x in sources):
                    raise TpplanError("a merge key (<<) takes a mapping or a list of mappings", file=out.file,
                                      line=vnode.start_mark.line + 1, column=vnode.start_mark.column + 1)
                for src in sources:
                    merged = _construct(src, path, out, loader)
                    for k, v in merged.items():
                        if k not in explicit:
                            result[k] = v
                continue
            # plain string keys are most nodes: take them as the safe constructor would (node.value); a plain
            # key that YAML 1.1 reads as a boolean (on, off, yes, no: a CI workflow's 'on:') stays its text
            plain = isinstance(knode, yaml.ScalarNode) and (
                knode.tag == _STR_TAG or (knode.tag == _BOOL_TAG and not knode.style))
            key = knode.value if plain else loader.construct_object(knode, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise TpplanError("mapping keys must be plain scalars", file=out.file,
                                  line=knode.start_mark.line + 1, column=knode.start_mark.column + 1)
            sub = (*path, key if isinstance(key, str) else str(key))
            out.key_marks[sub] = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            out.value_marks[sub] = (vnode.start_mark.line + 1, vnode.start_mark.column + 1)
            if sub[-1] in explicit:
                raise TpplanError(f"duplicate key {sub[-1]!r}", file=out.file, line=out.key_marks[sub][0],
                                  column=out.key_marks[sub][1])
            explicit.add(sub[-1])
            result[sub[-1]] = _construct(vnode, sub, out, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            sub = (*path, i)
            out.value_marks[sub] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_construct(item, sub, out, loader))
        return items
    if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
        return node.value
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, KeyError, OverflowError, yaml.YAMLError) as exc:
        # a value its tag cannot hold: '!!int llama', '!!bool maybe', a date 2026-02-30, an unknown tag
        what = str(exc).splitlines()[0] if isinstance(exc, ValueError) else f"{type(exc).__name__} {exc}"
        raise TpplanError(f"invalid value {node.value!r} for YAML tag {node.tag} ({what})" if isinstance(
            node, yaml.ScalarNode) else f"invalid YAML value for tag {node.tag}", file=out.file,
                          line=node.start_mark.line + 1, column=node.start_mark.column + 1,
                          hint="Remove the tag, or give a value of that type.") from None


MAX_FILE_BYTES = 64 * 2**20
"""Largest file tpplan reads (YAML, config.json, CSV, logs): the largest real input is a few MiB."""

MAX_EXPANDED_NODES = 200_000
"""Largest YAML document, in nodes once aliases are expanded. Real catalogs and deployment files hold a few
hundred; a 440-byte alias bomb (8 levels of 9 aliases) expands to 43 million and would exhaust memory."""


def _expanded_size(root: yaml.Node, file: str) -> int:
    """Nodes the document has once every alias is expanded, counted on the composed graph (aliases share
    node objects, so each is sized once); refuses recursive aliases and documents past the limit before any
    of it is constructed."""
    yaml = _yaml()
    size: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    open_: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            kids = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
            total = 1 + sum(size[id(k)] for k in kids)
            if total > MAX_EXPANDED_NODES:
                line = node.start_mark.line + 1
                raise TpplanError(f"YAML expands to more than {MAX_EXPANDED_NODES:,} nodes through its aliases "
                                  "(an alias bomb?)", file=file, line=line,
                                  hint="Write the repeated values out, or use fewer nested aliases.")
            size[key] = total
            continue
        if key in size:
            continue
        if key in open_:
            raise TpplanError("recursive YAML alias (a node contains itself)", file=file,
                              line=node.start_mark.line + 1)
        open_.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            stack.extend((n, False) for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((n, False) for n in node.value)
    return size[id(root)]


def load_documents(text: str, file: str) -> list[Located]:
    """All documents of a YAML stream (safe loader only), each with its marks."""
    yaml = _yaml()
    try:
        # libyaml's safe loader when available (10x faster, same safe constructor and the same marks)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        docs: list[Located] = []
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    continue
                _expanded_size(node, file)
                loc = Located(data=None, file=file,
                              doc_mark=(node.start_mark.line + 1, node.start_mark.column + 1))
                loc.data = _construct(node, (), loc, loader)
                docs.append(loc)
        finally:
            loader.dispose()
        return docs
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise TpplanError(f"malformed YAML: {problem}", file=file, line=line, column=col,
                          hint="Fix the syntax at that position (indentation, quotes, colons).") from None
    except yaml.YAMLError as exc:
        raise TpplanError(f"malformed YAML: {exc}", file=file) from None
    except RecursionError:
        raise TpplanError("YAML nesting too deep", file=file) from None


def read_text(path: Path, shown: str | None = None) -> str:
    """Read a text file, turning every OS problem into a one-line input error."""
    import stat

    shown = shown or str(path)
    try:
        if path.is_dir():
            raise TpplanError("is a directory, expected a file", file=shown)
        st = path.stat()
        # refused by type before opening: a device (/dev/zero) never ends and a FIFO blocks on open
        if not stat.S_ISREG(st.st_mode):
            raise TpplanError("not a regular file (a device, FIFO or socket); give a file", file=shown)
        if st.st_size > MAX_FILE_BYTES:
            raise TpplanError(f"{st.st_size:,} bytes is larger than any catalog or deployment file "
                              f"({MAX_FILE_BYTES // 2**20} MiB at most)", file=shown)
        data = path.read_bytes()
    except TpplanError:
        raise
    except FileNotFoundError:
        raise TpplanError("no such file", file=shown) from None
    except PermissionError:
        raise TpplanError("permission denied", file=shown) from None
    except OSError as exc:
        raise TpplanError(f"cannot read file ({exc.strerror or exc})", file=shown) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TpplanError(f"not UTF-8 text (byte {exc.start})", file=shown) from None


def load_one(path: Path, shown: str | None = None) -> Located:
    """A YAML file holding exactly one mapping document."""
    shown = shown or str(path)
    return parse_one(read_text(path, shown), shown)


def parse_one(text: str, shown: str) -> Located:
    """YAML text holding exactly one mapping document (``shown`` names it in errors)."""
    docs = load_documents(text, shown)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise TpplanError("expected one YAML mapping (key: value pairs)", file=shown,
                          line=docs[0].doc_mark[0] if docs else None)
    return docs[0]
