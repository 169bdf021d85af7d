"""Receipts the server has seen, in memory and bounded, and live subscribers to new ones.

``ReceiptLog.add`` is the engine's ``on_receipt`` listener: it runs on the writer thread. Each
receipt gets a sequence number: its lockchain ``seq`` when a lockchain seals it, otherwise a
counter local to this process (so ``after=`` works either way; without a lockchain the numbers
restart with the process). The oldest receipts are dropped past ``capacity``; the lockchain, not
this log, is the durable record.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

from kgc.receipt import Receipt

DEFAULT_CAPACITY = 10_000
SUBSCRIBER_BUFFER = 1_000


@dataclass(frozen=True, slots=True)
class Entry:
    """A receipt in the log, kept as its JSON text (with ``log_seq``) and the fields routes read.

    Text, not the ``Receipt``: a receipt is dozens of objects the garbage collector walks on
    every full collection, and 10,000 of them made those walks the server's p99 latency.
    """

    seq: int
    id: str
    status: str
    committed: bool
    additions: int
    removals: int
    text: str

    @classmethod
    def of(cls, seq: int, receipt: Receipt) -> Entry:
        data = receipt.to_dict()
        data["log_seq"] = seq  # its place in this server's log (what ``after`` counts)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return cls(
            seq,
            receipt.id,
            receipt.status,
            receipt.committed,
            receipt.additions,
            receipt.removals,
            text,
        )


class Subscriber:
    """One live stream: a bounded buffer; ``None`` in it means the stream must end."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Entry | None] = asyncio.Queue(SUBSCRIBER_BUFFER + 1)
        self.overflowed = False

    def offer(self, entry: Entry | None) -> None:
        if self.overflowed:
            return
        if entry is not None and self.queue.qsize() >= SUBSCRIBER_BUFFER:
            self.overflowed = True  # too slow a reader: end its stream rather than grow
            entry = None
        self.queue.put_nowait(entry)


class ReceiptLog:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._by_id: OrderedDict[str, Entry] = OrderedDict()
        self._local_seq = 0
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def add(self, receipt: Receipt) -> None:
        with self._lock:
            self._local_seq += 1
            seq = receipt.seq if receipt.seq is not None else self._local_seq
            entry = Entry.of(seq, receipt)
            self._by_id[receipt.id] = entry
            if len(self._by_id) > self.capacity:
                self._by_id.popitem(last=False)
            self.counts[receipt.status] += 1
            subscribers = tuple(self._subscribers)
        if subscribers and self._loop is not None:
            for subscriber in subscribers:
                self._loop.call_soon_threadsafe(subscriber.offer, entry)

    def get(self, receipt_id: str) -> Entry | None:
        with self._lock:
            return self._by_id.get(receipt_id)

    def after(self, seq: int, limit: int) -> list[Entry]:
        """Up to ``limit`` receipts with a sequence number above ``seq``, oldest first."""
        with self._lock:
            entries = list(self._by_id.values())
        out = [e for e in entries if e.seq > seq]
        return out[:limit]

    def subscribe(self, after: int | None) -> tuple[Subscriber, list[Entry]]:
        """A new subscriber and the backlog after ``after`` (atomically: nothing missed twice)."""
        subscriber = Subscriber()
        with self._lock:
            self._subscribers.add(subscriber)
            backlog = [] if after is None else [e for e in self._by_id.values() if e.seq > after]
        return subscriber, backlog

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def close_streams(self) -> None:
        """End every live stream (at shutdown); call on the event loop."""
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscriber in subscribers:
            subscriber.offer(None)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
