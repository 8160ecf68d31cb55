"""The typer applications (``tpplan`` and its ``models`` / ``gpus`` groups) every command module registers on, and
the root options (``--version``)."""

from typing import Annotated

import typer

from tpplan import __version__
from tpplan.cli.output import _out

app = typer.Typer(
    name="tpplan",
    help=(
        "Plan GPUs, parallel layouts (TP/PP/DP/CP/EP) and cost for serving and training LLMs.\n\n"
        "Examples:\n\n"
        "  tpplan recommend --model llama-70b --ctx 128k\n\n"
        "  tpplan estimate --model llama-70b --gpu h100-sxm --tp 4 --ctx 32k --concurrency 16\n\n"
        "  tpplan collective all-reduce --gpu h100-sxm --gpus 8 --size 1MiB,1GiB"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(help="List the model catalog, or show one model in full.\n\nExample: tpplan models show llama-70b",
                         invoke_without_command=True, no_args_is_help=False)
gpus_app = typer.Typer(help="List the GPU catalog, or show one GPU in full.\n\nExample: tpplan gpus show h100",
                       invoke_without_command=True, no_args_is_help=False)
app.add_typer(models_app, name="models")
app.add_typer(gpus_app, name="gpus")


def version_cb(value: bool) -> None:
    if value:
        _out(f"tpplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=version_cb, is_eager=True,
                                                 help="Print the version and exit.")] = False) -> None:
    """tpplan: analytical planner for LLM serving and training."""
