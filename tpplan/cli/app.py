"""tpplan's command line: parse -> build a request -> call the library -> render. No math here.

The commands live in the ``*_cmds`` modules (imported here, in the order ``tpplan --help`` lists them); this
module runs one: Ctrl-C, broken pipes, exit codes and the one-paragraph error of bad input."""

import errno
import os
import sys
from typing import Any

import typer

from tpplan.cli.apps import app

# the commands, registered on ``app`` as their modules load, in the order ``tpplan --help`` lists them
# isort: off
from tpplan.cli import catalog_cmds  # noqa: F401
from tpplan.cli import plan_cmds  # noqa: F401
from tpplan.cli import tool_cmds  # noqa: F401
from tpplan.cli import check_cmd  # noqa: F401
# isort: on
from tpplan.cli.options import CheckFormat, OutFormat, ReportFormat, ValidateFormat  # noqa: F401 (re-exported)
from tpplan.cli.output import _main_thread
from tpplan.errors import TpplanError

# ---------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------


def _command_for(argv: list[str]) -> Any:
    """The click command for this invocation. Building every command's parameters from its signature costs
    ~60 ms (typer reflects ~200 options); a call names one command, so only that one (or its group) is
    built. ``tpplan``, ``tpplan --help`` and shell completion get the full tree."""
    import copy

    first = argv[0] if argv and not argv[0].startswith("-") else None
    if first is None or os.environ.get("_TPPLAN_COMPLETE"):
        return typer.main.get_command(app)
    cmds = [c for c in app.registered_commands
            if (c.name or (c.callback.__name__ if c.callback else "").replace("_", "-")) == first]
    groups = [g for g in app.registered_groups if g.name == first]
    if not cmds and not groups:
        return typer.main.get_command(app)  # an unknown name: click lists the valid ones
    lite = copy.copy(app)
    lite.registered_commands, lite.registered_groups = cmds, groups
    return typer.main.get_command(lite)


COMMANDS = ("recommend", "estimate", "report", "check", "validate", "calibrate", "collective", "models", "gpus",
            "import-hf", "schema", "cost")


def _interruptible() -> Any:
    """Inside the command, Ctrl-C raises KeyboardInterrupt (staged outputs are removed on the way out, exit 130).
    Outside it (argument parsing, interpreter shutdown) the console script's quiet handler stays, so no
    interrupt can print a traceback; returns the handler to put back."""
    import signal

    if not _main_thread():
        return None
    current = signal.getsignal(signal.SIGINT)
    if not getattr(current, "tpplan_quiet", False):
        return None

    def _raise(signum: int, frame: Any) -> None:
        _INTERRUPTED.append(signum)  # remembered: a library may turn the KeyboardInterrupt into its own error
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _raise)
    return current


_INTERRUPTED: list[int] = []
"""Signals the command received (console script only): an error after one is the interrupt, not a bug."""


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (0 ok, 1 findings / nothing feasible, 2 bad input)."""
    try:  # typer >= 0.20 vendors click as typer._click
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover - older typer on click
        from click import exceptions as click_exc  # type: ignore[no-redef]

    debug = False
    if argv is None:
        argv = sys.argv[1:]
    if "--debug" in argv:
        debug = True
        argv = [a for a in argv if a != "--debug"]
    if sys.stdout is None and not {"-o", "--output"} & set(argv):
        # started with stdout closed (`>&-`): rich would drop the output silently
        sys.stderr.write("tpplan: error: cannot write the output: standard output is closed\n")
        return 2
    cmd = _command_for(argv)
    quiet = _interruptible()
    try:
        rv = cmd.main(args=argv, prog_name="tpplan", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else 0
    except TpplanError as exc:
        sys.stderr.write(f"tpplan: error: {exc.render()}\n")
        return exc.exit_code
    except (typer.Exit, SystemExit) as exc:
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            return 141  # click met EPIPE (reader closed the pipe, e.g. `| head`): 128 + SIGPIPE, like coreutils
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        return int(code) if isinstance(code, int) else 0
    except click_exc.UsageError as exc:
        # one paragraph, as every other input error (click prints Usage / Try / Error on three)
        where = "tpplan -h"
        if exc.ctx is not None and exc.ctx.command_path != "tpplan":
            where = f"{exc.ctx.command_path} -h"
        elif argv and argv[0] in COMMANDS:
            where = f"tpplan {argv[0]} -h"
        sys.stderr.write(f"tpplan: error: {exc.format_message()} ({where} lists the valid options and commands)\n")
        return 2
    except click_exc.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("tpplan: aborted\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("tpplan: interrupted\n")
        return 130  # 128 + SIGINT; staged outputs were removed on the way out
    except BrokenPipeError:
        return 141
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 141
        # the output could not be written: a full disk or device, a closed descriptor
        sys.stderr.write(f"tpplan: error: cannot write the output: {exc.strerror or exc}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - the last net: never a traceback without --debug
        if _INTERRUPTED:
            # Ctrl-C inside a lazy import or a pydantic schema build comes back wrapped (RuntimeError "Error
            # calling __set_name__", SchemaError): it is still the interrupt
            sys.stderr.write("tpplan: interrupted\n")
            return 130
        if debug:
            raise
        sys.stderr.write(f"tpplan: internal error: {type(exc).__name__}: {exc}. Run again with --debug for a "
                         "traceback and report it.\n")
        return 3
    finally:
        if quiet is not None:
            import signal

            signal.signal(signal.SIGINT, quiet)


def main() -> None:
    code = run()
    # the console script ends here: flush what was printed, then leave without the interpreter's teardown
    # (unloading numpy, pydantic and rich takes 20-30 ms of every command; every file the command wrote is
    # closed and renamed into place by now)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with the descriptor closed (run() said so)
                stream.flush()
        except BrokenPipeError:  # the reader went away: 128 + SIGPIPE, as coreutils
            code = code or 141
        except (OSError, ValueError) as exc:  # a full device at the last flush, or a closed stream
            if stream is sys.stdout and sys.stderr is not None:
                sys.stderr.write(f"tpplan: error: cannot write the output: {getattr(exc, 'strerror', None) or exc}\n")
                sys.stderr.flush()
            code = code or 2
    os._exit(code)


__all__ = ["CheckFormat", "OutFormat", "ReportFormat", "ValidateFormat", "app", "main", "run"]
