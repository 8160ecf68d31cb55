"""The catalog commands: ``models``, ``gpus``, ``engines``, ``frameworks`` and ``import-hf``."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tpplan import __version__
from tpplan.cli.apps import app, gpus_app, models_app
from tpplan.cli.options import CatalogOpt, ListFormat
from tpplan.cli.output import _catalog, _console, _out, _stamp, _write_or_print
from tpplan.errors import TpplanError

if TYPE_CHECKING:
    from tpplan import result_types as rt

# ---------------------------------------------------------------------------------------------------
# catalogs
# ---------------------------------------------------------------------------------------------------


@models_app.callback()
def models_list(ctx: typer.Context, fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
                catalog: CatalogOpt = None) -> None:
    """List models with derived parameter counts and KV-cache bytes per token.

    Example: tpplan models --format json
    """
    if ctx.invoked_subcommand:
        return
    from tpplan.render import to_json
    from tpplan.units import format_count

    cat = _catalog(catalog)
    rows: list[rt.ModelRow] = []
    for name in cat.model_names():
        m = cat.models[name].spec
        rows.append({"name": m.name, "aliases": m.aliases, "family": m.family, "hf_id": m.hf_id,
                     "params_total": m.params_total, "params_active": m.params_active,
                     "kv_cache_bytes_per_token": m.kv_cache_bytes_per_token(2.0),
                     "kv_cache_dtype": m.dtype, "max_context": m.max_position_embeddings,
                     "attention": m.attention.kind, "moe": m.moe is not None, "file": cat.models[name].file})
    if fmt == ListFormat.json:
        _out(to_json(_stamp({"catalog_sha256": cat.digest, "models": rows})))
        return

    from tpplan.render.tables import catalog_table, plain_cells

    heads = ["name", "aliases", "params", "active", "KV B/token", "max ctx", "attention"]
    cells = [plain_cells(r["name"], ", ".join(r["aliases"]), format_count(r["params_total"]),
                         format_count(r["params_active"]), f"{r['kv_cache_bytes_per_token']:,.0f}",
                         f"{r['max_context']:,}", r["attention"] + (" + MoE" if r["moe"] else "")) for r in rows]
    catalog_table(_console(), "Models (parameters derived from the architecture; KV at the native dtype)", heads,
                  cells, {"name", "params", "active", "KV B/token", "max ctx"}, ["aliases", "attention", "active"],
                  "--format json shows them", right={"params", "active", "KV B/token", "max ctx"})


@models_app.command("show")
def models_show(name: str, fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
                catalog: CatalogOpt = None) -> None:
    """Show one model in full, with its source and derived counts.

    Example: tpplan models show llama-70b
    """
    from tpplan.catalog.spec import DTYPE_BYTES
    from tpplan.render import to_json

    cat = _catalog(catalog)
    m = cat.model(name)
    d = m.model_dump(mode="json")
    d["derived"] = {"params_total": m.params_total, "params_active": m.params_active,
                    "kv_cache_bytes_per_token": {dt: m.kv_cache_bytes_per_token(b) for dt, b in
                                                 (("bf16", 2.0), ("fp8", 1.0))},
                    "valid_tp": m.valid_tp(),
                    "layer_kinds": {k: m.layer_kinds.count(k) for k in ("full", "sliding", "chunked")
                                    if k in m.layer_kinds},
                    # a sliding-window or chunked layer caches at most its window: the cache of one sequence
                    # of N tokens, per token, at the model's dtype (vLLM v1 hybrid KV cache manager)
                    "kv_cache_bytes_per_token_at_context": {
                        f"{n // 1024}K": m.kv_cache_bytes_per_sequence(n, DTYPE_BYTES[m.dtype]) / n
                        for n in (8192, 32768, 131072) if n <= max(m.max_position_embeddings, 8192)}}
    if fmt == ListFormat.json:
        _out(to_json(_stamp({"model": d})))
        return
    import yaml

    _out(yaml.safe_dump(d, sort_keys=False, width=110))


@gpus_app.callback()
def gpus_list(ctx: typer.Context, fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
              catalog: CatalogOpt = None) -> None:
    """List GPUs: memory, HBM bandwidth, dense FLOP/s, fabric, prices.

    Example: tpplan gpus --format json
    """
    if ctx.invoked_subcommand:
        return
    from tpplan.render import to_json
    from tpplan.units import format_bytes, format_rate

    cat = _catalog(catalog)
    rows: list[rt.GpuRow] = []
    for name in cat.gpu_names():
        g = cat.gpus[name].spec
        rows.append({"name": g.name, "aliases": g.aliases, "vendor": g.vendor,
                     "memory_bytes": g.memory.capacity_bytes,
                     "hbm_bandwidth_bytes_per_s": g.hbm.bandwidth_bytes_per_s,
                     "dense_flops_per_s": dict(g.compute.dense_flops_per_s),
                     # the dtypes with tensor-core rates: training refuses others, serving states a slower path
                     "dtypes": list(g.compute.dense_flops_per_s),
                     "scale_up": {"kind": g.scale_up.kind, "bandwidth_bytes_per_s": g.scale_up.bandwidth_bytes_per_s,
                                  "domain_gpus": g.scale_up.domain_gpus},
                     "gpus_per_node": g.node.gpus_per_node,
                     "nic_bandwidth_bytes_per_s": g.scale_out.nic_bandwidth_bytes_per_s,
                     "tdp_w": g.power.tdp_w,
                     "price_usd_per_hour": {t: getattr(g.prices, t).usd_per_hour for t in ("low", "typical", "high")},
                     "file": cat.gpus[name].file})
    if fmt == ListFormat.json:
        _out(to_json(_stamp({"catalog_sha256": cat.digest, "gpus": rows})))
        return

    from tpplan.render.tables import catalog_table, plain_cells

    heads = ["name", "memory", "HBM", "bf16 TFLOP/s", "fp8 TFLOP/s", "fabric", "$/h"]
    cells = []
    for r in rows:
        f = r["dense_flops_per_s"]
        p = r["price_usd_per_hour"]
        cells.append(plain_cells(
            r["name"], format_bytes(r["memory_bytes"], binary=True), format_rate(r["hbm_bandwidth_bytes_per_s"]),
            f"{f.get('bf16', 0) / 1e12:,.0f}", f"{f['fp8'] / 1e12:,.0f}" if "fp8" in f else "-",
            f"{r['scale_up']['kind']} {format_rate(r['scale_up']['bandwidth_bytes_per_s'])} x{r['scale_up']['domain_gpus']}",
            f"{p['low']:.2f} / {p['typical']:.2f} / {p['high']:.2f}"))
    catalog_table(_console(), "GPUs (dense FLOP/s; bandwidth per GPU, one direction; $/GPU-hour low/typical/high)",
                  heads, cells, {"name", "memory", "HBM", "bf16 TFLOP/s", "fp8 TFLOP/s"}, ["fabric", "fp8 TFLOP/s", "$/h"],
                  "--format json shows them")


@app.command()
def engines(fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
            catalog: CatalogOpt = None) -> None:
    """List the serving engine profiles (engines/*.yaml): versions and where their defaults come from.

    Example: tpplan engines --format json
    """
    cat = _catalog(catalog)
    rows: list[rt.EngineRow] = [{"name": e.spec.name, "aliases": e.spec.aliases, "default_version": e.spec.default_version,
             "versions": [v.version for v in e.spec.versions], "source": e.spec.source, "file": e.file}
            for e in (cat.engines[n] for n in sorted(cat.engines))]
    _list_rows("engines", rows, cat.digest, fmt, ("name", "default_version", "versions", "source"))


@app.command()
def frameworks(fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
               catalog: CatalogOpt = None) -> None:
    """List the training framework profiles (frameworks/*.yaml) --framework takes: each setting with its source.

    Example: tpplan frameworks --format json
    """
    cat = _catalog(catalog)
    rows: list[rt.FrameworkRow] = []
    for n in sorted(cat.frameworks):
        f = cat.frameworks[n].spec
        settings: dict[str, rt.ProfileSetting] = {k: {"value": x.value, "source": x.source}
                                                   for k in type(f.framework).model_fields
                                                   if (x := getattr(f.framework, k)) is not None}
        defaults = "; ".join(f"{k} " + ("/".join(map(str, v["value"])) if isinstance(v["value"], list)
                                        else str(v["value"]).lower()) for k, v in settings.items())
        rows.append({"name": f.name, "aliases": f.aliases, "description": f.description, "settings": settings,
                     "source": f.source, "file": cat.frameworks[n].file, "defaults": defaults})
    _list_rows("frameworks", rows, cat.digest, fmt, ("name", "description", "defaults"))


def _list_rows(key: str, rows: Sequence[Mapping[str, Any]], digest: str, fmt: Any, cols: tuple[str, ...]) -> None:
    """A catalog listing: JSON (schema_version, the catalog's hash, the rows) or a table of ``cols``."""
    if fmt == ListFormat.json:
        from tpplan.render import to_json

        _out(to_json(_stamp({"catalog_sha256": digest, key: rows})))
        return
    from rich.table import Table

    from tpplan.render.tables import plain_cells

    t = Table(title=key)
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*plain_cells(*(", ".join(map(str, r[c])) if isinstance(r[c], list) else str(r[c]) for c in cols)))
    _console().print(t)


@gpus_app.command("show")
def gpus_show(name: str, fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
              catalog: CatalogOpt = None) -> None:
    """Show one GPU in full, with the source of every figure.

    Example: tpplan gpus show h100
    """
    from tpplan.render import to_json

    g = _catalog(catalog).gpu(name)
    d = g.model_dump(mode="json")
    if fmt == ListFormat.json:
        _out(to_json(_stamp({"gpu": d})))
        return
    import yaml

    _out(yaml.safe_dump(d, sort_keys=False, width=110))


@app.command("import-hf")
def import_hf(path: Annotated[str, typer.Argument(help="Path to a Hugging Face config.json (read offline).")],
              name: Annotated[str | None, typer.Option(help="Catalog name for the model.")] = None,
              output: Annotated[str | None, typer.Option("--output", "-o", help="Write the YAML here.")] = None
              ) -> None:
    """Convert a Hugging Face config.json to a tpplan model YAML (stdout or --output).

    Example: tpplan import-hf ./Llama-3.1-8B/config.json --name my-llama -o models/my-llama.yaml
    """
    import yaml

    from tpplan.catalog.load import load_model_file

    if not path.endswith(".json") and not Path(path).is_dir():
        raise TpplanError("expected a Hugging Face config.json", file=path)
    spec = load_model_file(Path(path), path, name)
    body = yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=False), sort_keys=False, width=110)
    text_out = f"# imported by tpplan {__version__} from {path}\n" + body
    _write_or_print(text_out, output)
