"""``Resolver``: rounds of proposals on an engine, each resolved and committed as one transaction.

A proposal goes to the open round of its topic (a new round opens when there is none). A round
closes when it holds ``expected`` proposals (if set), when its timeout expires (one deadline
thread per resolver, ``kgc.resolution.scheduler``) or when ``close`` is called; it is then
resolved (``kgc.resolution.resolve``) and the resolved delta applied through the engine's
pipeline as ``resolution:<round id>``, with the resolution record in the receipt's provenance.
Hooks can veto it like any change.

Guarantees: the outcome of a round depends only on the set of proposals it holds. A round resolves
once. At most ``max_open_rounds`` rounds are open and a round holds at most ``max_proposals``
proposals (``ResolutionLimitExceeded`` otherwise). Non-guarantees: the records of the last ``keep``
finished rounds (and of every open one) are kept in memory only; a round still open when the
process stops is lost; a commit made by the deadline thread does not go through ``kgc serve``'s
write queue (it takes the writer lock like any apply).
"""

from __future__ import annotations

import logging
import math
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
    ResolutionLimitExceeded,
    RoundMismatch,
    UnknownRound,
)
from kgc.resolution.proposal import Proposal, check_printable
from kgc.resolution.record import ClosedBy, ResolutionRecord
from kgc.resolution.resolve import check_options, resolve
from kgc.resolution.round import Round, now_iso
from kgc.resolution.scheduler import Deadlines

if TYPE_CHECKING:
    from kgc.engine import KnowledgeEngine

logger = logging.getLogger(__name__)
FUNCTIONAL_QUERY = (
    "SELECT DISTINCT ?p WHERE { { ?p a <http://www.w3.org/2002/07/owl#FunctionalProperty> } "
    "UNION { GRAPH ?g { ?p a <http://www.w3.org/2002/07/owl#FunctionalProperty> } } }"
)
DEFAULT_TOPIC = "default"
MAX_TOPIC_LENGTH = 256
MAX_TIMEOUT_MS = 86_400_000.0  # 24 hours: a round's timeout is finite and at most this


class Resolver:
    """Collects proposals in rounds and commits each round's resolved delta through ``engine``.

    Strategy, threshold, timeout, CRDT bias and the two limits default to the engine's settings
    (``RESOLUTION_STRATEGY``, ``CONSENSUS_THRESHOLD``, ``RESOLUTION_TIMEOUT_MS``,
    ``KGC_RESOLUTION_CRDT_BIAS``, ``KGC_RESOLUTION_MAX_OPEN_ROUNDS``,
    ``KGC_RESOLUTION_MAX_PROPOSALS``). ``functional`` adds functional property IRIs to those the
    graph declares (``owl:FunctionalProperty``). Raises ``ResolutionDisabled`` unless
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
        max_open_rounds: int | None = None,
        max_proposals: int | None = None,
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
        self.max_open_rounds = _limit(
            max_open_rounds, settings.resolution_max_open_rounds, "max_open_rounds"
        )
        self.max_proposals = _limit(
            max_proposals, settings.resolution_max_proposals, "max_proposals"
        )
        self._keep = keep
        self._lock = threading.Lock()
        self._open: dict[str, Round] = {}
        self._rounds: dict[str, Round] = {}
        self._records: OrderedDict[str, ResolutionRecord] = OrderedDict()
        self._done: dict[str, threading.Event] = {}
        self._deadlines = Deadlines(self._expire)

    # Submitting ---------------------------------------------------------------------------------

    def submit(
        self,
        proposal: Proposal,
        *,
        topic: str = DEFAULT_TOPIC,
        expected: int | None = None,
        submitted_by: str | None = None,
    ) -> ResolutionRecord:
        """Add ``proposal`` to the open round of ``topic``; the round's record afterwards.

        When the proposal opens the round, ``expected`` sets how many proposals close it; a later
        proposal must give the same ``expected`` or none (``RoundMismatch``). When this proposal
        fills the round, the round is resolved and applied before ``submit`` returns.
        ``submitted_by`` (the authenticated principal, over HTTP) is recorded with the proposal.
        """
        return self.offer(proposal, topic=topic, expected=expected, submitted_by=submitted_by)[0]

    def offer(
        self,
        proposal: Proposal,
        *,
        topic: str = DEFAULT_TOPIC,
        expected: int | None = None,
        submitted_by: str | None = None,
    ) -> tuple[ResolutionRecord, bool]:
        """``submit``, also saying whether the round held the proposal already (a duplicate)."""
        check_round_fields(topic, expected)
        self._check_expected(expected)
        self._check_literals(proposal)
        with self._lock:
            current = self._open.get(topic)
            if current is None:
                current = self._start(topic, expected, self.timeout_ms)
            else:
                _check_same_count(current, expected)
            added = current.add(proposal, self.max_proposals)
            if added is None:
                raise ResolutionLimitExceeded(
                    "resolution_max_proposals",
                    f"round {current.id} on topic {topic!r} holds {self.max_proposals} proposals, "
                    "the most a round takes (resolution_max_proposals)",
                )
            held = self._records[current.id]
            by = _with(held.submitted_by, proposal, submitted_by)
            self._set(replace(held, proposals=tuple(current.digests()), submitted_by=by))
            if current.full:
                del self._open[topic]
        if current.full:
            return self._finish(current, "count"), not added
        return self.record(current.id), not added

    def _check_literals(self, proposal: Proposal) -> None:
        """Under ``literal_policy = "refuse"``, a proposal whose literals the store would rewrite
        is refused as ``engine.apply`` refuses such a delta (HTTP proposals never get this far)."""
        rewrites = proposal.delta.rewrites
        if self.engine.settings.literal_policy == "refuse" and rewrites:
            written, stored = rewrites[0]
            raise ProposalError(
                "delta",
                f"literal {written} would be stored as {stored}; literal policy 'refuse' does "
                f"not allow that ({len(rewrites)} such literal(s) in this proposal)",
            )

    def open(
        self,
        topic: str = DEFAULT_TOPIC,
        *,
        expected: int | None = None,
        timeout_ms: float | None = None,
    ) -> ResolutionRecord:
        """Open a round on ``topic`` now (one is opened by ``submit`` otherwise)."""
        check_round_fields(topic, expected)
        self._check_expected(expected)
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
        """Stop the deadline thread; rounds still open stay open and unresolved.

        Round records live in memory, so each round still open is logged (WARNING) with its
        topic and proposal digests: an agent must propose again after a restart.
        """
        self._deadlines.stop()
        with self._lock:
            left = [(r.id, r.topic, tuple(r.digests())) for r in self._open.values()]
        for round_id, topic, digests in left:
            logger.warning(
                "Resolution round abandoned at shutdown: %s on topic %r with %d proposal(s)",
                round_id,
                topic,
                len(digests),
                extra={"round": round_id, "topic": topic, "proposals": list(digests)},
            )

    @property
    def open_rounds(self) -> int:
        with self._lock:
            return len(self._open)

    # Internals ----------------------------------------------------------------------------------

    def _check_expected(self, expected: int | None) -> None:
        if expected is not None and expected > self.max_proposals:
            raise ProposalError(
                "expected",
                f"at most {self.max_proposals} (resolution_max_proposals), got {expected}",
            )

    def _start(self, topic: str, expected: int | None, timeout_ms: float) -> Round:
        """Open a round (the lock held), within ``max_open_rounds``."""
        if len(self._open) >= self.max_open_rounds:
            raise ResolutionLimitExceeded(
                "resolution_max_open_rounds",
                f"{len(self._open)} rounds are open, the most this resolver holds "
                f"(resolution_max_open_rounds); topic {topic!r} must wait for one to close",
            )
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
        self._deadlines.add(started.id, timeout_ms / 1000.0)
        return started

    def _set(self, record: ResolutionRecord) -> None:
        """Store ``record`` (the lock held), forgetting the oldest finished rounds past ``keep``
        (open and resolving rounds are never forgotten, and do not stop the forgetting)."""
        self._records[record.id] = record
        self._records.move_to_end(record.id)
        excess = len(self._records) - self._keep
        if excess <= 0:
            return
        finished = []
        for round_id, held in self._records.items():
            if held.done:
                finished.append(round_id)
                if len(finished) == excess:
                    break
        for round_id in finished:
            del self._records[round_id]
            self._rounds.pop(round_id, None)
            self._done.pop(round_id, None)

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
        self._deadlines.cancel(closing.id)
        with self._lock:
            base = replace(
                self._records[closing.id],
                status="resolving",
                proposals=tuple(p.digest for p in proposals),
                closed_at=now_iso(),
                closed_by=closed_by,
            )
            self._set(base)
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
    check_printable(topic, "topic")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise ProposalError("expected", f"expected a whole number, got {expected!r}")
    if expected is not None and expected < 1:
        raise ProposalError("expected", f"must be at least 1, got {expected}")


def _check_same_count(current: Round, expected: int | None) -> None:
    if expected is None or expected == current.expected:
        return
    if current.expected is None:
        raise RoundMismatch(
            f"round {current.id} on topic {current.topic!r} has no expected count (it closes on "
            f"its timeout or on close); this proposal says expected={expected}"
        )
    raise RoundMismatch(
        f"round {current.id} on topic {current.topic!r} expects {current.expected} "
        f"proposals; this proposal says expected={expected}"
    )


def _with(
    held: tuple[tuple[str, str], ...], proposal: Proposal, by: str | None
) -> tuple[tuple[str, str], ...]:
    """``held`` (digest, principal) pairs with this submission's, once each, sorted."""
    if by is None or (proposal.digest, by) in held:
        return held
    return tuple(sorted({*held, (proposal.digest, by)}))


def _timeout(given: float | None, default: float) -> float:
    timeout = default if given is None else given
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InputError(f"a round's timeout_ms must be a number, got {timeout!r}")
    if not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT_MS:
        raise InputError(
            f"a round's timeout_ms must be above 0 and at most {MAX_TIMEOUT_MS:.0f} (24 hours), "
            f"got {timeout!r}"
        )
    return float(timeout)


def _limit(given: int | None, default: int, name: str) -> int:
    value = default if given is None else given
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value
