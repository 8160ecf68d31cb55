"""Errors that reach the user as one clear paragraph and exit code 2 (bad input, never a traceback)."""

from __future__ import annotations


class TpplanError(Exception):
    """Bad input: unknown name, malformed file, impossible layout. The CLI prints it and exits 2."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, hint: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        text = where + self.message
        if self.hint:
            text += " " + self.hint
        return text


class LayoutError(TpplanError):
    """A parallel layout that the model or engine cannot run (e.g. TP not dividing the heads)."""
