"""The ``tpplan`` console script: exits quietly (130) on Ctrl-C even while the CLI is still importing, where a
KeyboardInterrupt would print a traceback; once the CLI runs, its own handling takes over."""

# no imports at module level: the SIGINT handler is installed before anything else is loaded


def main() -> None:
    # _signal, os and sys are built in or loaded at interpreter start: no Python code runs before the handler
    # is in place (the signal module imports enum, tens of milliseconds in which Ctrl-C printed a traceback)
    import _signal
    import os
    import sys

    def _interrupted(signum: int, frame: object) -> None:
        sys.stderr.write("tpplan: interrupted\n")
        os._exit(130)  # nothing is written outside the command: its outputs are staged and renamed at its end

    _interrupted.tpplan_quiet = True  # type: ignore[attr-defined]
    _signal.signal(_signal.SIGINT, _interrupted)
    # a command is one short process: the cyclic garbage collector only re-walks the objects the imports made
    # (numpy, pydantic, typer, rich), 3-6 % of a design-card run in alternating measurements; reference counting
    # still frees everything acyclic, and the process ends
    import gc

    gc.disable()
    from tpplan.cli.app import main as cli_main

    # the command itself turns Ctrl-C into KeyboardInterrupt (cli.run); start-up, argument parsing and
    # interpreter shutdown keep this handler
    cli_main()
