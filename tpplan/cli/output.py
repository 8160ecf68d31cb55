"""Where a command's output goes: the console (rich, its width), stdout, and files written whole or not at all
(staged and renamed at the end of the command)."""

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpplan import __version__
from tpplan.errors import TpplanError

if TYPE_CHECKING:
    from tpplan import result_types as rt


def _catalog(dirs: list[str] | None) -> Any:
    from tpplan.catalog.load import get_catalog

    return get_catalog(dirs or [], os.environ.get("TPPLAN_CATALOG_PATH"))


def _out(text: str) -> None:
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        raise OSError(errno.EBADF, "standard output is closed")
    from tpplan.render import printable_lines

    # data is printed as data: no escape sequence or carriage return from a catalog string reaches a terminal
    # (JSON escapes them already, so this changes no JSON)
    text = printable_lines(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()  # a full device (/dev/full) fails here, inside the command's error handling


def _console() -> Any:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # the reader went away (`tpplan ... | head`): stop quietly with 128 + SIGPIPE, as coreutils do
            # (rich's default exits 1, which scripts would read as "nothing feasible")
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(141)

        def print(self, *objects: Any, **kwargs: Any) -> None:
            # catalog strings are data: no escape sequence or carriage return reaches the terminal
            from tpplan.render import printable_lines

            super().print(*(printable_lines(o) if isinstance(o, str) else o for o in objects), **kwargs)

    # output is data: never read as rich markup ("[D]" in a source), emoji codes or highlighted numbers
    return _Console(width=_WIDE or max(40, min(400, _term_width())), soft_wrap=False, markup=False, emoji=False,
                    highlight=False)


_WIDE: int | None = None
"""Set by --wide (set_wide): tables take every column whatever the terminal's width."""


def set_wide(wide: bool) -> None:
    """--wide: the console takes every column whatever the terminal's width."""
    global _WIDE
    _WIDE = 400 if wide else None


def _term_width() -> int:
    """COLUMNS when set (rich's own rule), else the terminal's width; 160 when the output is not a terminal."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 160


def envelope() -> "rt.Envelope":
    """A JSON result's header: schema_version, the tool's name and version."""
    return {"schema_version": 1, "tool": {"name": "tpplan", "version": __version__}}


def _stamp(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` behind a JSON result's header (envelope)."""
    return {**envelope(), **body}


def _write_or_print(text: str, output: str | None) -> None:
    """Write atomically (temp file + rename) so a failure never leaves a partial file."""
    if not output or output == "-":
        _out(text)
        return
    _write_bytes(text.encode("utf-8"), output)


def _check_target(output: str) -> Path:
    """The folder an output goes to, checked before anything is written. An existing target must be a
    regular file we may write: a device, FIFO or symlink is never replaced by the rename, nor a read-only
    file."""
    import os
    import stat

    target = Path(output)
    if target.is_dir():
        raise TpplanError("is a directory; give a file name", file=output)
    if target.is_symlink():
        raise TpplanError("is a symbolic link; give the file it points to, or another name", file=output)
    if target.exists():
        if not stat.S_ISREG(target.stat().st_mode):
            raise TpplanError("exists and is not a regular file (a device, FIFO or socket); give a file name",
                              file=output)
        # by its mode bits, not os.access: root may write anything, but a file marked read-only stays
        if not target.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(target, os.W_OK):
            raise TpplanError("is read-only; make it writable or give another name", file=output)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise TpplanError("the folder does not exist", file=str(parent))
    return parent


def _write_bytes(data: bytes, output: str) -> None:
    _write_all([(data, output)])


def _write_all(outputs: list[tuple[bytes, str]]) -> None:
    """Write several outputs all or none: each is first written to a temp file beside its target (where a
    full disk or a read-only folder fails), and only when every one is staged are they renamed into place.
    SIGTERM (or Ctrl-C) in the window removes the temp files instead of leaving them behind."""
    import signal
    import tempfile

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    staged: list[tuple[str, str]] = []
    previous = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:
        for data, output in outputs:
            parent = _check_target(output)
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=".tpplan-", suffix=Path(output).suffix)
            staged.append((tmp, output))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        for tmp, output in staged:
            os.replace(tmp, output)
    except BaseException:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
