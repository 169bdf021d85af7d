"""``JournalTail``: follow the journal from outside its writer, reading only what was appended.

The anchorer runs beside the writer (another thread, or another process), so it never takes the
journal's writer lock. It reads complete lines only: a last line without its newline is still being
written (or was torn by a crash, which recovery drops) and is left for the next read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgc.errors import JournalCorrupt
from kgc.lockchain import fastjson

_PREFIX = b'{"type":"receipt","seq":'


@dataclass(frozen=True)
class JournalReceipt:
    """One ``receipt`` record of the journal, parsed for the fast canonical form."""

    seq: int
    record: dict[str, Any]
    fast: bool

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.record["receipt"]
        return body


class JournalTail:
    """Reads the receipt records appended to ``path`` since the previous ``read``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_seq = 0
        self._offset = 0
        self._lines = 0
        self._inode: int | None = None

    def read(self, *, sync: bool = True) -> tuple[list[JournalReceipt], bool]:
        """New receipt records, and whether the file was replaced or shrank (read from the start).

        With ``sync``, the bytes read are fsynced before returning: whatever is anchored is then
        durable in the journal too, even if the writer had not reached its own fsync yet.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return [], False
        except OSError as exc:
            raise JournalCorrupt(f"{self.path}: cannot be read ({exc.strerror})") from exc
        try:
            reset = self._check_identity(fd)
            os.lseek(fd, self._offset, os.SEEK_SET)
            data = _read_all(fd)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return self._parse(data), reset

    def poll_last_seq(self) -> int:
        """Advance over what was appended and return the last receipt's seq, parsing only that."""
        try:
            with self.path.open("rb") as handle:
                self._check_identity(handle.fileno())
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return self.last_seq
        end = data.rfind(b"\n") + 1
        for raw in reversed(data[:end].splitlines()):
            if raw.startswith(_PREFIX):
                digits = raw[len(_PREFIX) : raw.find(b",", len(_PREFIX))]
                if digits.isdigit():
                    self.last_seq = max(self.last_seq, int(digits))
                break
        self._offset += end
        return self.last_seq

    def _check_identity(self, fd: int) -> bool:
        stat = os.fstat(fd)
        reset = self._inode is not None and (
            stat.st_ino != self._inode or stat.st_size < self._offset
        )
        if reset:
            self._offset = self._lines = self.last_seq = 0
        self._inode = stat.st_ino
        return reset

    def _parse(self, data: bytes) -> list[JournalReceipt]:
        end = data.rfind(b"\n") + 1
        found: list[JournalReceipt] = []
        for raw in data[:end].splitlines():
            self._lines += 1
            if not raw.startswith(_PREFIX):
                continue
            try:
                record, fast = fastjson.parse(raw)
                seq = int(record["seq"])
            except (ValueError, KeyError, TypeError) as exc:
                raise JournalCorrupt(
                    f"{self.path}, line {self._lines}: unreadable receipt record ({exc})"
                ) from exc
            found.append(JournalReceipt(seq, record, fast))
            self.last_seq = max(self.last_seq, seq)
        self._offset += end
        return found


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
