"""``Resolver``: rounds of proposals on an engine, each resolved and committed as one transaction.

A proposal goes to the open round of its topic (a new round opens when there is none). A round
closes when it holds ``expected`` proposals (if set), when its timeout expires (a timer thread) or
when ``close`` is called; it is then resolved (``kgc.resolution.resolve``) and the resolved delta
applied through the engine's pipeline as ``resolution:<round id>``, with the resolution record in
the receipt's provenance. Hooks can veto it like any change.

Guarantees: the outcome of a round depends only on the set of proposals it holds. A round resolves
once. Non-guarantees: the records of the last ``keep`` rounds are kept in memory only; a round
still open when the process stops is lost; a commit made by the timer thread does not go through
``kgc serve``'s write queue (it takes the writer lock like any apply).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from kgc.errors import (
    InputError,
    KGCError,
    ProposalError,
    ResolutionDisabled,
    RoundMismatch,
    UnknownRound,
)
from kgc.resolution.proposal import Proposal
from kgc.resolution.record import ClosedBy, ResolutionRecord
from kgc.resolution.resolve import check_options, resolve
from kgc.resolution.round import Round, now_iso

if TYPE_CHECKING:
    from kgc.engine import KnowledgeEngine

logger = logging.getLogger(__name__)
FUNCTIONAL_QUERY = (
    "SELECT DISTINCT ?p WHERE { { ?p a <http://www.w3.org/2002/07/owl#FunctionalProperty> } "
    "UNION { GRAPH ?g { ?p a <http://www.w3.org/2002/07/owl#FunctionalProperty> } } }"
)
DEFAULT_TOPIC = "default"
MAX_TOPIC_LENGTH = 256


class Resolver:
    """Collects proposals in rounds and commits each round's resolved delta through ``engine``.

    Strategy, threshold, timeout and CRDT bias default to the engine's settings
    (``RESOLUTION_STRATEGY``, ``CONSENSUS_THRESHOLD``, ``RESOLUTION_TIMEOUT_MS``,
    ``KGC_RESOLUTION_CRDT_BIAS``). ``functional`` adds functional property IRIs to those the graph
    declares (``owl:FunctionalProperty``). Raises ``ResolutionDisabled`` unless
    ``enable_resolution`` is set.
    """

    def __init__(
        self,
        engine: KnowledgeEngine,
        *,
        strategy: str | None = None,
        threshold: float | None = None,
        timeout_ms: float | None = None,
        crdt_bias: str | None = None,
        functional: Iterable[str] = (),
        keep: int = 1000,
    ) -> None:
        settings = engine.settings
        if not settings.enable_resolution:
            raise ResolutionDisabled(
                "the resolution layer is disabled: set ENABLE_RESOLUTION=true "
                "(enable_resolution) to accept proposals"
            )
        self.engine = engine
        self.strategy = strategy if strategy is not None else settings.resolution_strategy
        self.threshold = threshold if threshold is not None else settings.consensus_threshold
        self.timeout_ms = _timeout(timeout_ms, settings.resolution_timeout_ms)
        self.crdt_bias = crdt_bias if crdt_bias is not None else settings.resolution_crdt_bias
        check_options(self.strategy, self.threshold, self.crdt_bias)
        self.functional = frozenset(functional)
        self._keep = keep
        self._lock = threading.Lock()
        self._open: dict[str, Round] = {}
        self._rounds: dict[str, Round] = {}
        self._records: OrderedDict[str, ResolutionRecord] = OrderedDict()
        self._done: dict[str, threading.Event] = {}
        self._timers: dict[str, threading.Timer] = {}

    # Submitting ---------------------------------------------------------------------------------

    def submit(
        self, proposal: Proposal, *, topic: str = DEFAULT_TOPIC, expected: int | None = None
    ) -> ResolutionRecord:
        """Add ``proposal`` to the open round of ``topic``; the round's record afterwards.

        When the proposal opens the round, ``expected`` sets how many proposals close it; a later
        proposal must give the same ``expected`` or none (``RoundMismatch``). When this proposal
        fills the round, the round is resolved and applied before ``submit`` returns.
        """
        check_round_fields(topic, expected)
        with self._lock:
            current = self._open.get(topic)
            if current is None:
                current = self._start(topic, expected, self.timeout_ms)
            elif expected is not None and expected != current.expected:
                raise RoundMismatch(
                    f"round {current.id} on topic {topic!r} expects {current.expected} "
                    f"proposals; this proposal says expected={expected}"
                )
            current.add(proposal)
            self._set(replace(self._records[current.id], proposals=tuple(current.digests())))
            if current.full:
                del self._open[topic]
        if current.full:
            return self._finish(current, "count")
        return self.record(current.id)

    def open(
        self,
        topic: str = DEFAULT_TOPIC,
        *,
        expected: int | None = None,
        timeout_ms: float | None = None,
    ) -> ResolutionRecord:
        """Open a round on ``topic`` now (one is opened by ``submit`` otherwise)."""
        check_round_fields(topic, expected)
        with self._lock:
            if topic in self._open:
                raise RoundMismatch(f"topic {topic!r} already has an open round")
            started = self._start(topic, expected, _timeout(timeout_ms, self.timeout_ms))
        return self.record(started.id)

    def close(self, round_id: str) -> ResolutionRecord:
        """Resolve and apply the round now, whatever it holds."""
        with self._lock:
            found = self._rounds.get(round_id)
            if found is None:
                raise UnknownRound(f"no resolution round {round_id[:80]!r}")
            if self._open.get(found.topic) is found:
                del self._open[found.topic]
        return self._finish(found, "close")

    # Reading ------------------------------------------------------------------------------------

    def record(self, round_id: str) -> ResolutionRecord:
        with self._lock:
            found = self._records.get(round_id)
        if found is None:
            raise UnknownRound(f"no resolution round {round_id[:80]!r} (unknown or forgotten)")
        return found

    def wait(self, round_id: str, timeout_s: float | None = None) -> ResolutionRecord:
        """The round's record once it is done (or as it stands when ``timeout_s`` runs out)."""
        with self._lock:
            event = self._done.get(round_id)
        if event is not None:
            event.wait(timeout_s)
        return self.record(round_id)

    def shutdown(self) -> None:
        """Stop the timers; rounds still open stay open and unresolved."""
        with self._lock:
            timers = list(self._timers.values())
            self._timers.clear()
        for timer in timers:
            timer.cancel()

    # Internals ----------------------------------------------------------------------------------

    def _start(self, topic: str, expected: int | None, timeout_ms: float) -> Round:
        started = Round(topic, expected=expected, timeout_ms=timeout_ms)
        self._open[topic] = started
        self._rounds[started.id] = started
        self._done[started.id] = threading.Event()
        self._set(
            ResolutionRecord(
                started.id,
                topic,
                self.strategy,
                self.threshold,
                self.crdt_bias,
                "open",
                expected,
                timeout_ms,
                started.opened_at,
                (),
            )
        )
        timer = threading.Timer(timeout_ms / 1000.0, self._expire, (started.id,))
        timer.daemon = True
        self._timers[started.id] = timer
        timer.start()
        return started

    def _set(self, record: ResolutionRecord) -> None:
        """Store ``record`` (the lock held), forgetting the oldest finished rounds past ``keep``."""
        self._records[record.id] = record
        self._records.move_to_end(record.id)
        while len(self._records) > self._keep:
            oldest = next(iter(self._records))
            if not self._records[oldest].done:
                break
            del self._records[oldest]
            self._rounds.pop(oldest, None)
            self._done.pop(oldest, None)

    def _expire(self, round_id: str) -> None:
        with self._lock:
            found = self._rounds.get(round_id)
            if found is None or self._open.get(found.topic) is not found:
                return
            del self._open[found.topic]
        try:
            self._finish(found, "timeout")
        except Exception:  # a timer thread has no caller to raise to
            logger.exception("Resolution round %s failed after its timeout", round_id)

    def _finish(self, closing: Round, closed_by: ClosedBy) -> ResolutionRecord:
        proposals = closing.close()
        if proposals is None:  # another thread is finishing it
            return self.wait(closing.id)
        base = self._resolving(closing, proposals, closed_by)
        try:
            final = self._resolve_and_apply(base, proposals)
        except KGCError as exc:
            final = replace(base, status="failed", error=str(exc))
        except Exception as exc:
            final = replace(base, status="failed", error=f"{type(exc).__name__}: {exc}")
            logger.error("Resolution round %s failed: %s", closing.id, final.error)
        with self._lock:
            self._set(final)
            event = self._done.get(closing.id)
        if event is not None:
            event.set()
        logger.info(
            "Resolution round %s: %s (%d proposals)", closing.id, final.status, len(proposals)
        )
        return final

    def _resolving(
        self, closing: Round, proposals: list[Proposal], closed_by: ClosedBy
    ) -> ResolutionRecord:
        """Record the round as closed and being resolved; stop its timer."""
        with self._lock:
            timer = self._timers.pop(closing.id, None)
            base = replace(
                self._records[closing.id],
                status="resolving",
                proposals=tuple(p.digest for p in proposals),
                closed_at=now_iso(),
                closed_by=closed_by,
            )
            self._set(base)
        if timer is not None:
            timer.cancel()
        return base

    def _resolve_and_apply(
        self, base: ResolutionRecord, proposals: list[Proposal]
    ) -> ResolutionRecord:
        # 1. resolve on the set of proposals (sorted by digest), with the functional properties
        #    the committed graph declares at this moment;
        outcome = resolve(
            proposals,
            strategy=self.strategy,
            threshold=self.threshold,
            crdt_bias=self.crdt_bias,
            functional=self.functional | self._declared_functional(),
        )
        resolved = replace(base, outcome=outcome)
        if not outcome.additions and not outcome.removals:
            return replace(resolved, status="empty")
        # 2. apply through the pipeline: hooks judge the resolved delta like any other, and the
        #    receipt seals the resolution record. The caller must still read the status: a
        #    vetoed round changed nothing.
        receipt = self.engine.apply(
            outcome.delta, actor=f"resolution:{base.id}", provenance=resolved.provenance()
        )
        return replace(resolved, status=receipt.status, receipt=receipt)

    def _declared_functional(self) -> frozenset[str]:
        rows = self.engine.query(FUNCTIONAL_QUERY)
        assert isinstance(rows, list)
        return frozenset(
            row["p"].value for row in rows if isinstance(row, dict) and hasattr(row["p"], "value")
        )


def check_round_fields(topic: object, expected: object) -> None:
    """Refuse a bad ``topic`` or ``expected`` with ``ProposalError`` naming the field."""
    if not isinstance(topic, str) or not topic.strip() or len(topic) > MAX_TOPIC_LENGTH:
        raise ProposalError("topic", f"a non-empty string of at most {MAX_TOPIC_LENGTH} characters")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise ProposalError("expected", f"expected a whole number, got {expected!r}")
    if expected is not None and expected < 1:
        raise ProposalError("expected", f"must be at least 1, got {expected}")


def _timeout(given: float | None, default: float) -> float:
    timeout = default if given is None else given
    if isinstance(timeout, bool) or not timeout > 0:
        raise InputError(f"a round's timeout_ms must be above 0, got {timeout!r}")
    return float(timeout)
