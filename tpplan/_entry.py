"""The ``tpplan`` console script: exits quietly (130) on Ctrl-C even while the CLI is still importing, where a
KeyboardInterrupt would print a traceback; once the CLI runs, its own handling takes over."""

# no imports at module level: the SIGINT handler is installed before anything else is loaded


def main() -> None:
    import os
    import signal
    import sys

    def _interrupted(signum: int, frame: object) -> None:
        sys.stderr.write("tpplan: interrupted\n")
        os._exit(130)  # nothing is written yet: outputs are staged and renamed at the end

    signal.signal(signal.SIGINT, _interrupted)
    from tpplan.cli import main as cli_main

    signal.signal(signal.SIGINT, signal.default_int_handler)
    cli_main()
