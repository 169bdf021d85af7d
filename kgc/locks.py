"""A readers-writer lock that prefers the writer, so a stream of readers cannot starve commits.

The thread holding the write side may also read (a pre-commit hook's ``run`` callable that queries
the engine sees the proposed state, as its condition did); it may not take the write side again,
which would wait on itself forever, so that raises ``TransactionError`` instead.

Guests are held as ``Thread`` objects, not idents: the kernel hands a finished thread's ident to
the next thread it starts, and a writer started in that gap would be taken for the guest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kgc.errors import TransactionError


class ReadWriteLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._waiting_writers = 0
        self._guests: set[threading.Thread] = set()

    @contextmanager
    def lend(self, guest: threading.Thread) -> Iterator[None]:
        """Let thread ``guest`` read as the writer does, while the writer waits for it.

        A hook's callable runs on a watchdog thread so that a hung callable cannot hang the
        engine; lending keeps its reads on the proposed state instead of waiting on the writer.
        """
        self._guests.add(guest)
        try:
            yield
        finally:
            self._guests.discard(guest)

    @contextmanager
    def read(self) -> Iterator[None]:
        if self._writer == threading.get_ident() or threading.current_thread() in self._guests:
            yield
            return
        with self._cond:
            while self._writer is not None or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer == me or threading.current_thread() in self._guests:
            raise TransactionError(
                "a transaction cannot be applied while this thread is applying another one "
                "(was apply() called from a pre-commit hook?)"
            )
        with self._cond:
            self._waiting_writers += 1
            while self._writer is not None or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()
