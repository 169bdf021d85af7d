"""One status line on stderr: rewritten in place on a terminal, one line per update otherwise."""

from __future__ import annotations

from typing import TextIO


class StatusLine:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.open_line = False

    def show(self, message: str) -> None:
        if self.tty:
            self.out.write(f"\r{message}\033[K")
            self.open_line = True
        else:
            self.out.write(message + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.open_line:
            self.out.write("\n")
            self.out.flush()
        self.open_line = False
