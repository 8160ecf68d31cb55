"""The tools: ``collective``, ``cost``, ``schema``, ``validate`` and ``calibrate``."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tpplan.cli.apps import app
from tpplan.cli.edge import _check_prices, _prices, _sheet_rows, _size_list, _unit
from tpplan.cli.options import CatalogOpt, ListFormat, NodeOpt, PriceOpt, PricesOpt, Tier, ValidateFormat
from tpplan.cli.output import _catalog, _console, _out, _write_or_print, envelope
from tpplan.errors import TpplanError

if TYPE_CHECKING:
    from tpplan import result_types as rt


@app.command()
def collective(
    op: Annotated[str, typer.Argument(help="all-reduce | all-gather | reduce-scatter | all-to-all | p2p")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog name or alias.")],
    gpus: Annotated[int, typer.Option("--gpus", "-n", help="Ranks in the group.")] = 8,
    size: Annotated[str, typer.Option(help="Bytes per rank: 1GiB, a list 1MiB,1GiB, or a range 1KiB:8GiB (x2 steps).")] = "1GiB",
    algo: Annotated[str, typer.Option(help="ring | tree | nvls | auto.")] = "auto",
    gpus_per_node: Annotated[int | None, typer.Option(help="Override the GPU's node size.")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
    catalog: CatalogOpt = None,
) -> None:
    """Time, algbw and busbw of one collective (nccl-tests conventions), or a size sweep.

    Example: tpplan collective all-reduce --gpu h100 --gpus 8 --size 1KiB:8GiB
    """
    from tpplan.engine import comm
    from tpplan.render import tables

    if op not in comm.OPS:
        raise TpplanError(f"unknown collective {op!r}; valid: {', '.join(comm.OPS)}")
    if algo not in ("ring", "tree", "nvls", "auto"):
        raise TpplanError(f"--algo must be ring, tree, nvls or auto; got {algo!r}")
    if gpus < 1 or gpus > 1_000_000:
        raise TpplanError(f"--gpus must be between 1 and 1,000,000; got {gpus}")
    cat = _catalog(catalog)
    g = cat.gpu(gpu)
    sizes = _size_list(size)
    res: rt.CollectiveResult = {**envelope(), **comm.collective_report(g, op, sizes, gpus, algo, gpus_per_node)}
    if fmt == ListFormat.json:
        from tpplan.render import to_json

        _out(to_json(res))
    else:
        tables.print_collective(_console(), res)


@app.command()
def cost(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog name or alias.")],
    gpus: Annotated[str, typer.Option("--gpus", "-n", help="How many GPUs (e.g. 128).")],
    period: Annotated[str, typer.Option("--for", help="Rental period: 30d, 720h, 2w, 1mo (730 h) or 1y (8,760 h).")] = "1mo",
    utilization: Annotated[float, typer.Option(help="Fraction of the period the GPUs are rented and billed, in (0, 1]: 1 = held throughout (a reservation is billed used or not); 0.6 = on-demand capacity released 40% of the time.")] = 1.0,
    price: PriceOpt = None,
    prices: PricesOpt = None,
    fmt: Annotated[ValidateFormat, typer.Option("--format", "-f")] = ValidateFormat.table,
    catalog: CatalogOpt = None,
) -> None:
    """What N GPUs cost for a period, at each catalog price tier (low / typical / high) or your --price.

    Example: tpplan cost --gpu h100-sxm --gpus 128 --for 30d
    """
    from tpplan.engine import cost as cost_mod
    from tpplan.units import parse_count, parse_period

    n = _unit(parse_count, gpus, "--gpus")
    if not 1 <= n <= 1_000_000:
        raise TpplanError(f"--gpus must be between 1 and 1,000,000; got {gpus}")
    seconds = _unit(parse_period, period, "--for")
    if seconds > 100 * 8760 * 3600:
        raise TpplanError(f"--for {period!r} is longer than 100 years; give a rental period such as 30d or 1y")
    if not 0 < utilization <= 1:
        raise TpplanError(f"--utilization must be in (0, 1] (the fraction of the period billed); got {utilization}")
    cat = _catalog(catalog)
    g = cat.gpu(gpu)
    pricing = _check_prices(cat, _prices(price, Tier.typical))
    sheet = [r for r in _sheet_rows(prices, cat) if r["gpu"] == g.name]
    if prices and not sheet and not pricing.overridden(g):
        raise TpplanError(f"the price sheet {prices} has no row for {g.name}",
                          hint="Add a row for it, or leave --prices out to use the catalog's tiers.")
    res: rt.CostResult = {**envelope(), **cost_mod.rental_cost(g, n, seconds, utilization, pricing.overrides, sheet)}
    from tpplan.render import formats

    formats.emit("cost", fmt.value, res, _console, _out)


@app.command()
def schema(
    name: Annotated[str, typer.Argument(help="estimate | estimate-disagg | recommend | train-estimate | train-recommend | check | validate | report | cost | models | gpus | engines | frameworks | collective | model | gpu")],
) -> None:
    """Print the JSON Schema of a command's --format json output, with every metric defined.

    Example: tpplan schema recommend > recommend.schema.json
    """
    import json

    from tpplan.results import RESULTS
    from tpplan.schemas import schema as schema_for

    if name not in RESULTS:
        raise TpplanError(f"unknown schema {name!r}; valid: {', '.join(RESULTS)}")
    _out(json.dumps(schema_for(name), indent=2))


@app.command()
def validate(
    category: Annotated[list[str] | None, typer.Option(help="Only these categories (activation, kv, params, zero, gemm, decode, decode-fp8, hbm, collective, attention, decode-attention, gemm-shape, e2e); repeatable. e2e replays published end-to-end runs and fails only when a guarded row regresses.")] = None,
    rows: Annotated[bool, typer.Option("--rows", help="Print every row, not only the failing ones (table format).")] = False,
    fmt: Annotated[ValidateFormat, typer.Option("--format", "-f")] = ValidateFormat.table,
    catalog: CatalogOpt = None,
) -> None:
    """Replay the published measurements shipped with tpplan (nccl-tests, GEMM, HBM, Korthikanti, KV, ZeRO,
    parameter counts, end-to-end training and serving runs) through the model; exit 1 when any row exceeds its
    category's tolerance (e2e: when a guarded row falls out of its metric's tolerance).

    Example: tpplan validate --format markdown --rows
    """
    from tpplan.calibration import validate as val

    res = val.run_validation(_catalog(catalog), category)
    from tpplan.render import formats
    from tpplan.render.tables import ValidateView

    _out(formats.text("validate", fmt.value, ValidateView(res, rows, bool(category))))
    if not res["passed"]:
        raise typer.Exit(1)


calibrate_app = typer.Typer(help="Fit tpplan's parameters to your own measurements and write a catalog overlay.\n\n"
                                 "Example: tpplan calibrate nccl-tests all_reduce.log --gpu h100 --ranks 8 -o my-cluster.yaml")
app.add_typer(calibrate_app, name="calibrate")


def _write_overlay(overlay: dict[str, Any], command: str, output: str | None, cat: Any = None) -> None:
    """The overlay as YAML, after loading it the way --catalog will: one that would not load (efficiencies
    above 1, duplicate sizes, NaN) is refused with the loader's reason instead of written."""
    from tpplan.calibration.calibrate import overlay_yaml
    from tpplan.catalog.load import apply_overlays
    from tpplan.yamlio import parse_one

    text = overlay_yaml(overlay, command)
    if cat is not None:
        import copy

        trial = copy.copy(cat)
        trial.gpus = {k: copy.copy(v) for k, v in cat.gpus.items()}
        trial.pending_overlays = [parse_one(text, output or "the overlay")]
        try:
            apply_overlays(trial)
        except TpplanError as exc:
            raise TpplanError(f"the fitted overlay would not load, so it is not written: {exc.message}",
                              hint="The measurements are outside what the model accepts; check the file and "
                                   "--gpu.") from None
    _write_or_print(text, output)


@calibrate_app.command("nccl-tests")
def calibrate_nccl(
    logs: Annotated[list[str], typer.Argument(help="nccl-tests output files (all_reduce_perf, all_gather_perf, reduce_scatter_perf, alltoall_perf).")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU the logs were measured on.")],
    nodes: Annotated[int, typer.Option(help="Nodes the ranks spanned (1: fit the NVLink level; more: the network level).")] = 1,
    ranks: Annotated[int | None, typer.Option(help="Ranks per test (default: counted from the log's '#  Rank' lines).")] = None,
    column: Annotated[str, typer.Option(help="in-place | out-of-place busbw column.")] = "in-place",
    op: Annotated[str | None, typer.Option(help="Collective, when the file name and log do not say.")] = None,
    gpus_per_node: NodeOpt = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Overlay YAML to write (default: stdout).")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Fit alpha, bus bandwidth and the bandwidth ramp to nccl-tests logs; write an overlay for --catalog.

    Example: tpplan calibrate nccl-tests all_reduce_perf.log --gpu h100-sxm --ranks 8 -o my-cluster.yaml

    Then: tpplan collective all-reduce --gpu h100-sxm --gpus 8 --size 1MiB:8GiB --catalog my-cluster.yaml
    """
    from tpplan.calibration import calibrate as cal
    from tpplan.engine import comm

    if column not in ("in-place", "out-of-place"):
        raise TpplanError(f"--column must be in-place or out-of-place; got {column!r}")
    if op is not None and op not in comm.OPS:
        raise TpplanError(f"--op must be one of {', '.join(comm.OPS[:4])}; got {op!r}")
    if nodes < 1 or (ranks is not None and ranks < 2):
        raise TpplanError("--nodes must be >= 1 and --ranks >= 2")
    cat = _catalog(catalog)
    g = cat.gpu(gpu)
    parsed = [cal.parse_nccl_log(Path(p), p, column, op) for p in logs]
    res = cal.fit_nccl(g, parsed, ranks, nodes, gpus_per_node)
    for name, f in res["fits"].items():
        sys.stderr.write(f"tpplan: {name} x{f['ranks']} ({f['points']} sizes): alpha {f['alpha_per_step_s'] * 1e6:.2f} us/step, "
                         f"busbw {f['busbw_bytes_per_s'] / 1e9:.0f} GB/s, ramp {f['ramp_bytes'] / 2**20:.1f} MiB^"
                         f"{f['ramp_exponent']:.2f}; max error {f['max_rel_error']:.1%} >= 1 MiB, rms {f['rms_rel_error']:.1%}\n")
    _write_overlay(res, "tpplan calibrate nccl-tests " + " ".join(Path(p).name for p in logs), output, cat)


def _calibrate_csv(kind: str, csv_path: str, gpu: str, output: str | None, catalog: list[str] | None) -> None:
    from tpplan.calibration import calibrate as cal
    from tpplan.catalog.microbench import read_microbench

    cat = _catalog(catalog)
    g = cat.gpu(gpu)
    rows = read_microbench(Path(csv_path), csv_path)
    res = cal.efficiency_from_csv(g, rows, kind, csv_path)
    for key, e in res["overlay"]["calibration"].items():
        sys.stderr.write(f"tpplan: {key} efficiency {e['value']} (band {e['low']}-{e['high']})\n")
    chk = res.get("shape_check")
    if chk:
        w = chk["worst"]
        sys.stderr.write(f"tpplan: shape check: tpplan's GEMM time at these efficiencies against {chk['rows']} "
                         f"measured GEMMs of every shape: mean |error| {chk['mean_abs_error']:.1%}, max "
                         f"{chk['max_abs_error']:.1%} ({w['shape']}{', ' + w['note'] if w['note'] else ''}: "
                         f"{w['error']:+.1%}; + = tpplan faster than measured)\n")
    _write_overlay(res, f"tpplan calibrate {kind} {Path(csv_path).name}", output, cat)


@calibrate_app.command("gemm")
def calibrate_gemm(
    csv_path: Annotated[str, typer.Argument(metavar="CSV", help="CSV with columns gpu,benchmark,dtype,m,n,k,size_bytes,ranks,value,unit (benchmark gemm_*, unit TFLOP/s).")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU the rows were measured on (rows of other GPUs are ignored).")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Overlay YAML to write (default: stdout).")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Tensor-core efficiency (bf16 and fp8) from your GEMM measurements; shapes of at least 4096 x 4096 x 8192.

    Example: tpplan calibrate gemm hardware/calibration/microbenchmarks.csv --gpu h200 -o h200-gemm.yaml
    """
    _calibrate_csv("gemm", csv_path, gpu, output, catalog)


@calibrate_app.command("hbm")
def calibrate_hbm(
    csv_path: Annotated[str, typer.Argument(metavar="CSV", help="CSV as for gemm; benchmark hbm_* (copy/STREAM, >= 1 GiB) or *gemv* / *decode*, unit TB/s or GB/s.")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU the rows were measured on.")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Overlay YAML to write (default: stdout).")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Decode-relevant HBM efficiency from copy/STREAM or GEMV measurements.

    Example: tpplan calibrate hbm my-stream.csv --gpu mi300x -o mi300x-hbm.yaml
    """
    _calibrate_csv("hbm", csv_path, gpu, output, catalog)
