"""``Round``: proposals on one topic, collected until a count is reached or a deadline passes.

Thread-safe: ``add`` and ``close`` take the round's lock, and a round closes once. The proposals
come out sorted by digest, so what a round resolves to never depends on arrival order; the same
proposal sent twice is held once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from kgc.resolution.proposal import Proposal


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Round:
    def __init__(
        self,
        topic: str,
        *,
        expected: int | None,
        timeout_ms: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = f"round-{uuid.uuid4().hex}"
        self.topic = topic
        self.expected = expected
        self.timeout_ms = timeout_ms
        self.opened_at = now_iso()
        self._deadline = clock() + timeout_ms / 1000.0
        self._clock = clock
        self._proposals: dict[str, Proposal] = {}
        self._lock = threading.Lock()
        self._closed = False

    def add(self, proposal: Proposal, limit: int | None = None) -> bool | None:
        """Hold ``proposal``: True if new, False if already held, None if the round is closed or
        already holds ``limit`` proposals."""
        with self._lock:
            if self._closed:
                return None
            if proposal.digest in self._proposals:
                return False
            if limit is not None and len(self._proposals) >= limit:
                return None
            self._proposals[proposal.digest] = proposal
            return True

    @property
    def full(self) -> bool:
        with self._lock:
            return self.expected is not None and len(self._proposals) >= self.expected

    @property
    def expired(self) -> bool:
        return self._clock() >= self._deadline

    @property
    def remaining_s(self) -> float:
        return max(0.0, self._deadline - self._clock())

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    def close(self) -> list[Proposal] | None:
        """Close the round and return its proposals by digest; None if it was closed already."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            return sorted(self._proposals.values(), key=lambda p: p.digest)

    def digests(self) -> list[str]:
        with self._lock:
            return sorted(self._proposals)
