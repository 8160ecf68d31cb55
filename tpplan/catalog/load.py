"""Find, load and validate the YAML catalogs of GPUs and models; resolve names and aliases.

Search order: user catalogs (``--catalog DIR``, repeatable, then ``TPPLAN_CATALOG_PATH``), then the bundled
catalogs (``tpplan/_catalog`` in a wheel, the repository's ``hardware/`` and ``models/`` in a checkout or
editable install). A user entry shadows a bundled entry of the same name; the same name twice across user
catalogs is an error naming both files.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tpplan.catalog.spec import EngineProfile, FrameworkProfile, GpuSpec, ModelSpec
from tpplan.errors import TpplanError
from tpplan.yamlio import Located, load_one, parse_one, read_text

T = TypeVar("T", bound=BaseModel)


SPEC_OF: dict[str, type[Any]] = {"gpu": GpuSpec, "model": ModelSpec, "engine": EngineProfile,
                                 "framework": FrameworkProfile}


def bundled_root() -> Path:
    """Bundled catalogs in an installed wheel; the repo's top-level folders in a checkout. (The package is
    always on disk, never zipped: the catalogs are read as files.)"""
    here = Path(__file__).resolve().parent.parent  # the tpplan package
    bundled = here / "_catalog"
    return bundled if bundled.is_dir() else here.parent


def format_validation_error(exc: ValidationError, loc: Located) -> TpplanError:
    """First pydantic error as file:line:col with the offending key."""
    errors = exc.errors()
    # an unknown key is usually a typo of a missing one: report it first
    errors = sorted(errors, key=lambda e: 0 if e["type"] == "extra_forbidden" else 1)
    err = errors[0]
    path = tuple(err["loc"])
    line, col = loc.where(path)
    key = ".".join(str(p) for p in path) or "(document)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        missing = [".".join(str(p) for p in e["loc"]) for e in errors if e["type"] == "missing"]
        msg = "required key is missing" + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else "")
    extra = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return TpplanError(f"invalid value for '{key}': {msg}{extra}", file=loc.file, line=line, column=col)


def validate_located(model: type[T], loc: Located) -> T:
    try:
        return model.model_validate(loc.data)
    except ValidationError as exc:
        raise format_validation_error(exc, loc) from None


@dataclass
class Entry:
    spec: Any
    file: str
    user: bool


@dataclass
class Catalog:
    """Loaded catalogs: name -> spec, alias -> name, and where each came from."""

    gpus: dict[str, Entry] = field(default_factory=dict)
    models: dict[str, Entry] = field(default_factory=dict)
    engines: dict[str, Entry] = field(default_factory=dict)
    frameworks: dict[str, Entry] = field(default_factory=dict)
    gpu_alias: dict[str, str] = field(default_factory=dict)
    model_alias: dict[str, str] = field(default_factory=dict)
    engine_alias: dict[str, str] = field(default_factory=dict)
    framework_alias: dict[str, str] = field(default_factory=dict)
    digest: str = ""
    """sha256 over every catalog file's bytes (for reproducible reports)."""
    pending_overlays: list[Located] = field(default_factory=list)
    """Calibration overlays read but not merged yet (merged once every catalog is loaded)."""

    # ---- look-ups -----------------------------------------------------------------------------------

    def gpu(self, name: str) -> GpuSpec:
        key = _norm(name)
        real = self.gpu_alias.get(key)
        if real is None:
            raise TpplanError(_unknown("GPU", name, list(self.gpu_alias), "tpplan gpus"))
        spec: GpuSpec = self.gpus[real].spec
        return spec

    def model(self, name: str) -> ModelSpec:
        """A catalog name or alias, or a path to a Hugging Face config.json or model YAML."""
        key = _norm(name)
        real = self.model_alias.get(key)
        if real is None and "/" in key and not _exists(Path(name)):
            # a Hugging Face id as engines take it (meta-llama/Llama-3.1-70B-Instruct): match hf_id, then
            # the repository name against names and aliases
            real = next((n for n, e in self.models.items() if _norm(e.spec.hf_id or "") == key), None)
            real = real or self.model_alias.get(key.rsplit("/", 1)[1])
        if real is not None:
            spec: ModelSpec = self.models[real].spec
            return spec
        p = Path(name)
        if _is_dir(p):
            return load_model_dir(p, name)
        if name.endswith((".json", ".yaml", ".yml")) or _exists(p):
            return load_model_file(p, name)
        msg = _unknown("model", name, list(self.model_alias), "tpplan models")
        if "/" in name.strip("/") and not name.startswith((".", "/", "~")):
            org_repo = name.strip()
            msg += (f" {org_repo!r} looks like a Hugging Face id: tpplan works offline, so fetch its config.json "
                    f"(`huggingface-cli download {org_repo} config.json`) and pass the file, its folder or the "
                    f"Hugging Face cache snapshot to --model, or import it once with `tpplan import-hf "
                    f"config.json -o models/NAME.yaml` and use --catalog.")
        raise TpplanError(msg)

    def engine(self, name: str) -> EngineProfile:
        spec: EngineProfile = self._entry("engine", name, self.engines, self.engine_alias).spec
        return spec

    def framework(self, name: str) -> FrameworkProfile:
        spec: FrameworkProfile = self._entry("framework", name, self.frameworks, self.framework_alias).spec
        return spec

    @staticmethod
    def _entry(kind: str, name: str, table: dict[str, Entry], aliases: dict[str, str]) -> Entry:
        """The entry a name or alias denotes; an unknown one names the closest and the listing command."""
        real = aliases.get(_norm(name))
        if real is None:
            raise TpplanError(_unknown(kind, name, list(aliases), f"tpplan {kind}s"))
        return table[real]

    def gpu_names(self) -> list[str]:
        return sorted(self.gpus)

    def model_names(self) -> list[str]:
        return sorted(self.models)


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def hf_cache_repo_id(path: Path) -> str | None:
    """``org/name`` of a Hugging Face cache snapshot folder (.../models--org--name/snapshots/<revision>)."""
    parts = path.resolve().parts
    for i, part in enumerate(parts):
        if part.startswith("models--") and i + 1 < len(parts) and parts[i + 1] == "snapshots":
            org_name = part[len("models--"):].split("--", 1)
            return "/".join(org_name)
    return None


def load_model_dir(path: Path, shown: str) -> ModelSpec:
    """A model folder holding config.json (a checkout or a Hugging Face cache snapshot): the model is named
    after the repository (cache snapshot: the repo id's name, with hf_id set) or the folder."""
    cfg = path / "config.json"
    if not _exists(cfg):
        raise TpplanError("a folder given as a model must hold a Hugging Face config.json", file=shown,
                          hint="Pass a catalog name (tpplan models), a config.json, a model YAML, or a folder "
                               "holding config.json (a Hugging Face cache snapshot works).")
    repo = hf_cache_repo_id(path)
    name = (repo.rsplit("/", 1)[-1] if repo else path.resolve().name or "model").lower()
    spec = load_model_file(cfg, str(cfg), name=name)
    return ModelSpec.model_validate({**spec.model_dump(), "hf_id": repo}) if repo and not spec.hf_id else spec


def _exists(p: Path) -> bool:
    """Path.exists() that takes an OS refusal (a 300-character name: ENAMETOOLONG) as 'no such file'."""
    try:
        return p.exists()
    except OSError:
        return False


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def _unknown(kind: str, name: str, choices: Iterable[str], cmd: str) -> str:
    close = difflib.get_close_matches(_norm(name), list(choices), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else "."
    return f"unknown {kind} {name!r}{hint} Run '{cmd}' to list the valid names."


def load_model_file(path: Path, shown: str, name: str | None = None) -> ModelSpec:
    """A model YAML in tpplan's schema, or a Hugging Face config.json (named ``name`` or after its folder)."""
    if path.suffix == ".json" or path.name == "config.json":
        from tpplan.catalog.hf import spec_from_hf

        text = read_text(path, shown)
        try:
            cfg = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TpplanError(f"malformed JSON: {exc.msg}", file=shown, line=exc.lineno, column=exc.colno) from None
        except RecursionError:
            raise TpplanError("JSON nested too deep for a config.json", file=shown) from None
        except ValueError as exc:  # an integer of thousands of digits (int_max_str_digits)
            raise TpplanError(f"unreadable JSON number ({exc})", file=shown) from None
        if not isinstance(cfg, dict):
            raise TpplanError("expected a JSON object (a Hugging Face config.json)", file=shown)
        stem = path.stem if path.stem != "config" else ""
        return spec_from_hf(cfg, name=name or stem or path.resolve().parent.name or "model", file=shown)
    return validate_located(ModelSpec, load_one(path, shown))


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_catalog(user_dirs: Sequence[str | Path] = (), env_path: str | None = None) -> Catalog:
    """Load user catalogs first, then the bundled ones. ``env_path`` is TPPLAN_CATALOG_PATH's value
    (the CLI reads the environment; the library does not)."""
    import os

    dirs: list[tuple[Path, bool]] = [(Path(d), True) for d in user_dirs]
    if env_path:
        dirs += [(Path(d), True) for d in env_path.split(os.pathsep) if d]
    root = bundled_root()
    dirs.append((root, False))
    cat = Catalog()
    h = hashlib.sha256()
    for base, user in dirs:
        single = user and base.is_file() and base.suffix in (".yaml", ".yml")
        if user and not base.is_dir() and not single:
            raise TpplanError("catalog path does not exist or is not a folder or YAML file", file=str(base),
                              hint="Pass a folder holding hardware/ and/or models/ YAML files, or one YAML file "
                                   "(a GPU, a model, or an overlay written by `tpplan calibrate`).")
        # a user folder may hold hardware/ and models/ subfolders, or YAML files directly (sniffed by keys)
        groups: list[tuple[Path, str | None]] = [(base, None)] if single else _bundled_groups(base)
        if user and not single:
            groups += [(p, None) for p in _yaml_files(base)]
        compiled = None if user else _compiled_bundle(groups)
        for path, kind in groups:
            shown = str(path) if user else f"{path.parent.name}/{path.name}"
            spec: GpuSpec | ModelSpec | EngineProfile | FrameworkProfile | None = None
            if compiled is not None:
                raw, data = compiled[shown]
                h.update(path.name.encode())
                h.update(raw)
                try:
                    spec = SPEC_OF[kind or "model"].model_validate(data)
                except ValidationError:
                    spec = None  # reparse the YAML below for an error with its line
            if spec is None:
                text = read_text(path, shown)
                loc = parse_one(text, shown)
                if compiled is None:
                    h.update(path.name.encode())
                    h.update(text.encode())
                if kind is None:
                    data = loc.data if isinstance(loc.data, dict) else {}
                    kind = ("overlay" if "overlay" in data else "gpu" if "hbm" in data
                            else "engine" if "versions" in data else "framework" if "framework" in data
                            else "model")
                if kind == "overlay":
                    _apply_overlay(cat, loc)
                    continue
                spec = validate_located(SPEC_OF[kind], loc)
            assert kind is not None
            table = {"gpu": cat.gpus, "model": cat.models, "engine": cat.engines, "framework": cat.frameworks}[kind]
            aliases = {"gpu": cat.gpu_alias, "model": cat.model_alias, "engine": cat.engine_alias,
                       "framework": cat.framework_alias}[kind]
            prev = table.get(spec.name)
            if prev is not None:
                if prev.user and user:
                    raise TpplanError(f"{kind} {spec.name!r} is defined twice: in {prev.file} and in {shown}",
                                      file=shown, hint="Rename or remove one of them.")
                continue  # a user entry shadows the bundled one
            table[spec.name] = Entry(spec=spec, file=shown, user=user)
            for alias in [spec.name, *spec.aliases]:
                aliases.setdefault(_norm(alias), spec.name)
    cat.digest = h.hexdigest()
    return cat


# The bundled catalog compiled to JSON (python -m tpplan.catalog): parsing 24 YAML files and importing PyYAML
# were an eighth of a recommend run. Each entry carries the sha256 of the YAML file it came from; the JSON is
# used only when every bundled YAML file's bytes still match, so an edited checkout falls back to the YAML.
COMPILED = Path(__file__).resolve().parent.parent / "_bundled_catalog.json"


def _bundle_entries(groups: Sequence[tuple[Path, str | None]]) -> list[tuple[str, bytes]]:
    return [(f"{p.parent.name}/{p.name}", p.read_bytes()) for p, _ in groups]


def _compiled_bundle(groups: Sequence[tuple[Path, str | None]]) -> dict[str, tuple[bytes, Any]] | None:
    """{"hardware/h100-sxm.yaml": (YAML bytes, parsed data)} from the compiled catalog, or None when it is
    missing or any bundled YAML file differs from what it was compiled from."""
    try:
        doc = json.loads(COMPILED.read_bytes())
        entries = _bundle_entries(groups)
    except (OSError, ValueError):
        return None
    files_ = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files_, list) or not all(isinstance(f, dict) and isinstance(f.get("data"), dict)
                                               for f in files_):
        return None  # not what compile_bundle writes: read the YAML
    if [(f.get("path"), f.get("sha256")) for f in files_] != [
            (name, hashlib.sha256(raw).hexdigest()) for name, raw in entries]:
        return None
    return {name: (raw, f["data"]) for (name, raw), f in zip(entries, files_, strict=True)}


def _bundled_groups(root: Path) -> list[tuple[Path, str | None]]:
    out: list[tuple[Path, str | None]] = [(p, "gpu") for p in _yaml_files(root / "hardware")]
    out += [(p, "model") for p in _yaml_files(root / "models")]
    out += [(p, "engine") for p in _yaml_files(root / "engines")]
    return out + [(p, "framework") for p in _yaml_files(root / "frameworks")]


def compiled_bundle_current() -> bool:
    """Whether the bundled catalog loads from its compiled JSON (every YAML file matches its hash)."""
    return _compiled_bundle(_bundled_groups(bundled_root())) is not None


def compile_bundle(root: Path | None = None) -> str:
    """The compiled catalog's text: every bundled GPU and model file, parsed, with the sha256 of its bytes.
    Dates become ISO strings (pydantic reads them back as dates); nothing else needs converting."""
    import datetime as dt

    groups = _bundled_groups(root or bundled_root())

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, list):
            return [plain(v) for v in x]
        if isinstance(x, dt.date):
            return x.isoformat()
        if x is None or isinstance(x, str | int | float | bool):
            return x
        raise TypeError(f"cannot compile a {type(x).__name__} value")

    lines = [json.dumps({"path": name, "sha256": hashlib.sha256(raw).hexdigest(),
                         "data": plain(parse_one(raw.decode("utf-8"), name).data)}, ensure_ascii=False)
             for name, raw in _bundle_entries(groups)]
    return ('{"generated_by": "python -m tpplan.catalog (from hardware/, models/, engines/ and frameworks/*.yaml; '
            'do not edit)",\n'
            '"files": [\n' + ",\n".join(lines) + "\n]}\n")


def _apply_overlay(cat: Catalog, loc: Located) -> None:
    """A calibration overlay (written by ``tpplan calibrate``): ``overlay: {gpu: NAME, calibration: {...}}``
    deep-merges into a GPU loaded later (bundled) or earlier."""
    data = loc.data.get("overlay")
    if not isinstance(data, dict) or "gpu" not in data:
        raise TpplanError("an overlay needs 'overlay: {gpu: NAME, calibration: {...}}'", file=loc.file,
                          line=loc.where(("overlay",))[0])
    cat.pending_overlays.append(loc)


def apply_overlays(cat: Catalog) -> None:
    """Merge pending overlays into their GPUs (called once all catalogs are loaded)."""
    pending, cat.pending_overlays = cat.pending_overlays, []
    for loc in pending:
        data = loc.data["overlay"]
        name = cat.gpu_alias.get(_norm(str(data["gpu"])))
        if name is None:
            raise TpplanError(_unknown("GPU", str(data["gpu"]), list(cat.gpu_alias), "tpplan gpus"),
                              file=loc.file, line=loc.where(("overlay", "gpu"))[0])
        entry = cat.gpus[name]
        merged = _deep_merge(entry.spec.model_dump(mode="json"), {k: v for k, v in data.items() if k != "gpu"})
        try:
            entry.spec = GpuSpec.model_validate(merged)
        except ValidationError as exc:
            err = format_validation_error(exc, loc)
            raise TpplanError(err.message, file=loc.file, line=loc.where(("overlay",))[0]) from None
        entry.file = f"{entry.file} + {loc.file}"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


_CACHE: dict[tuple[tuple[str, ...], str | None], Catalog] = {}


def get_catalog(user_dirs: Sequence[str | Path] = (), env_path: str | None = None) -> Catalog:
    """Load once per (dirs, env) and apply overlays."""
    key = (tuple(str(d) for d in user_dirs), env_path)
    if key not in _CACHE:
        cat = load_catalog(user_dirs, env_path)
        apply_overlays(cat)
        _CACHE[key] = cat
    return _CACHE[key]


def main() -> None:
    """python -m tpplan.catalog: rewrite the compiled bundled catalog."""
    COMPILED.write_text(compile_bundle(), encoding="utf-8")
    print(f"wrote {COMPILED}")


if __name__ == "__main__":
    main()
