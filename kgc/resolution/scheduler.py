"""``Deadlines``: one thread that expires every round of a resolver when its deadline passes.

A heap of (deadline, key) and a condition variable: however many rounds are open, a resolver has
at most one timer thread (a daemon, started on the first deadline). ``fire`` runs on that thread,
one key after another, so a round that takes long to resolve and apply delays the expiry of the
rounds due after it (by that long; none is skipped).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Deadlines:
    def __init__(self, fire: Callable[[str], None], *, name: str = "kgc-resolution-deadlines"):
        self._fire = fire
        self._name = name
        self._heap: list[tuple[float, int, str]] = []
        self._live: set[str] = set()
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._generation = 0  # a stopped thread's generation is stale: it ends

    def add(self, key: str, delay_s: float) -> None:
        """Call ``fire(key)`` ``delay_s`` seconds from now (unless cancelled first)."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._order), key))
            self._live.add(key)
            self._start()
            self._cond.notify()

    def cancel(self, key: str) -> None:
        with self._cond:
            self._live.discard(key)
            if len(self._heap) > 2 * len(self._live) + 64:  # drop the cancelled entries
                self._heap = [entry for entry in self._heap if entry[2] in self._live]
                heapq.heapify(self._heap)

    def stop(self) -> None:
        """Forget every deadline and end the thread (a later ``add`` starts a new one)."""
        with self._cond:
            self._heap.clear()
            self._live.clear()
            self._generation += 1
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._live)

    def _start(self) -> None:
        if self._thread is None:
            args = (self._generation,)
            self._thread = threading.Thread(
                target=self._run, args=args, name=self._name, daemon=True
            )
            self._thread.start()

    def _run(self, generation: int) -> None:
        while True:
            key = self._next(generation)
            if key is None:
                return
            try:
                self._fire(key)
            except Exception:  # the timer thread has no caller to raise to
                logger.exception("Resolution deadline for %s failed", key)

    def _next(self, generation: int) -> str | None:
        """The next key due, waiting for it; None once stopped."""
        with self._cond:
            while generation == self._generation:
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, key = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if key in self._live:
                    self._live.discard(key)
                    return key
            return None
