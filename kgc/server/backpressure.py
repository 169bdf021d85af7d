"""A bounded queue in front of the single writer, with high and low watermarks.

Every write (``submit``) is admitted or refused at once, on the event loop, so a flood never
blocks the loop or grows memory without bound:

1. depth (admitted, not yet finished) at ``capacity``: refused with 503, the queue is full;
2. throttling (depth reached the high watermark, and has not yet fallen below the low one):
   refused with 429;
3. otherwise admitted: the work runs on the one writer thread, in arrival order.

Both refusals carry ``Retry-After`` (whole seconds, from the mean time of recent writes and the
depth). With the high watermark below the capacity, throttling engages first and 503 is only
reached when the high watermark equals the capacity. Reads are not queued here.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from kgc.server.errors import Backpressure

T = TypeVar("T")
_SMOOTHING = 0.1


class WriteQueue:
    def __init__(self, capacity: int, high: int, low: int) -> None:
        if not 0 <= low < high <= capacity:
            raise ValueError(f"need 0 <= low < high <= capacity, got {low}, {high}, {capacity}")
        self.capacity = capacity
        self.high = high
        self.low = low
        self.depth = 0
        self.throttling = False
        self.rejected = {"throttled": 0, "full": 0}
        self.mean_s = 0.001
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgc-writer")

    async def submit(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the writer thread, or raise ``Backpressure`` (429 or 503) at once."""
        self._admit()
        loop = asyncio.get_running_loop()
        self.depth += 1
        if self.depth >= self.high:
            self.throttling = True
        started = loop.time()
        try:
            # The request's context (its trace span) goes with the work to the writer thread.
            return await loop.run_in_executor(self._writer, contextvars.copy_context().run, work)
        finally:
            self.depth -= 1
            if self.depth < self.low or self.depth == 0:
                self.throttling = False
            elapsed = loop.time() - started
            self.mean_s += _SMOOTHING * (elapsed - self.mean_s)

    def _admit(self) -> None:
        if self.depth >= self.capacity:
            self.rejected["full"] += 1
            raise Backpressure(
                503,
                f"the write queue is full ({self.depth} of {self.capacity}); retry later",
                {"Retry-After": self.retry_after()},
            )
        if self.throttling:
            self.rejected["throttled"] += 1
            raise Backpressure(
                429,
                f"too many writes in flight ({self.depth}; high watermark {self.high}, admitting "
                f"again below {self.low}); retry later",
                {"Retry-After": self.retry_after()},
            )

    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.mean_s * max(self.depth, 1))))

    def close(self) -> None:
        """Finish the writes already admitted, then stop the writer thread."""
        self._writer.shutdown(wait=True)
