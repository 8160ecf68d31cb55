"""``tpplan check``: gate deployment files (tpplan.check: read, judged, reported) with an exit code and annotations."""

import os
import sys
from typing import Annotated

import typer

from tpplan.cli.apps import app
from tpplan.cli.edge import _check_prices, _constraints, _prices
from tpplan.cli.options import CatalogOpt, CheckFormat, FailOn, PricesOpt, Tier
from tpplan.cli.output import _catalog, _console, _write_or_print


@app.command()
def check(
    files: Annotated[list[str], typer.Argument(help="Deployment YAML files, folders or quoted globs ('deploy/**/*.yaml').")],
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="auto = github when GITHUB_ACTIONS is set, else text.")] = CheckFormat.auto,
    fail_on: Annotated[FailOn, typer.Option(help="Lowest level that makes the exit code 1.")] = FailOn.error,
    strict: Annotated[bool, typer.Option("--strict", help="Same as --fail-on warning.")] = False,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even with findings (input errors still exit 2).")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    price: Annotated[list[str] | None, typer.Option(help="GPU=USD per GPU-hour override for budget rules; repeatable.")] = None,
    prices: PricesOpt = None,
    price_tier: Annotated[Tier, typer.Option(help="Price tier for budget rules.")] = Tier.typical,
    gpu: Annotated[str | None, typer.Option("--gpu", "-g", help="GPU for deployments that name none (a plain `vllm serve --config` file has no gpu key).")] = None,
    ttft_slo: Annotated[str | None, typer.Option(help="TTFT SLO for deployments without slo.ttft_s (2s, 500ms).")] = None,
    tpot_slo: Annotated[str | None, typer.Option(help="TPOT SLO for deployments without slo.tpot_s (50ms).")] = None,
    budget_usd_per_hour: Annotated[float | None, typer.Option(help="$/hour budget for deployments without budget.usd_per_hour.")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Lint serving deployment configs (vLLM / SGLang / TRT-LLM keys): layout rules, memory, SLOs, budget.

    Exit 0 clean, 1 findings at or above --fail-on, 2 unreadable or invalid input. Rules: docs/check-rules.md.

    Example: tpplan check deploy/*.yaml --format sarif -o tpplan.sarif

    A deployment file (several YAML documents allowed):

      model: llama-3.1-70b

      gpu: h100-sxm

      tensor_parallel_size: 4

      max_model_len: 32k

      max_num_seqs: 64

      slo: {ttft_s: 2.0, tpot_s: 0.05}

      budget: {usd_per_hour: 40}
    """
    from tpplan.check import formats as check_formats
    from tpplan.check import lint

    cat = _catalog(catalog)
    if gpu is not None:
        cat.gpu(gpu)  # an unknown name fails here, naming the valid ones
    cons = _constraints(ttft_slo, tpot_slo, budget_usd_per_hour, 64, 1)
    defaults = {"gpu": gpu, "slo": {"ttft_s": cons.ttft_slo_s, "tpot_s": cons.tpot_slo_s},
                "budget": {"usd_per_hour": cons.budget_usd_per_hour}}
    rep = lint.check_paths(files, cat, _check_prices(cat, _prices(price, price_tier, prices, cat)), defaults)
    kind = fmt.value
    in_actions = bool(os.environ.get("GITHUB_ACTIONS"))
    if kind == "auto":
        kind = "github" if in_actions else "text"
    from tpplan.render import formats

    text = formats.text("check", kind, rep)
    if kind == "text" and not (output and output != "-"):
        check_formats.print_text(rep, _console())
    elif text:
        _write_or_print(text, output)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt == CheckFormat.auto and in_actions and summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(check_formats.render_markdown(rep))
        except OSError as exc:
            sys.stderr.write(f"tpplan: warning: cannot append to GITHUB_STEP_SUMMARY ({exc})\n")
    code = rep.exit_code("warning" if strict else fail_on.value, exit_zero)
    if code:
        raise typer.Exit(code)
