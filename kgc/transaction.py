"""``TransactionManager``: the governed write path.

Pipeline:

1. intake: the caller builds a ``Delta`` (validated, literals in stored form);
2. lock: take the writer lock and pin the hook snapshot (its policy digest);
3. effective delta: drop additions already present and removals not present;
4. pre-hooks: with a journal, first append an ``intent`` record; stage the delta in the store and
   evaluate every pre-commit hook on the proposed state; a veto, or (strict mode) a hook error or
   timeout, or the transaction's own timeout, reverts the staged change before the lock is released;
5. commit: keep the staged change and update the state digest;
6. receipt: digests before and after, verdicts, timings, algorithms; with a journal it is chained,
   signed and fsynced (``Journal.seal``) before the lock is released, and only then committed;
7. unlock;
8. after: post-commit hooks whose conditions fired (evaluated under the lock, on the committed
   state) run their callables; failures are recorded and cannot undo the commit. The anchorer
   commits batches of sealed receipts to git in the background.

Durability is the journal's. Without one, an on-disk store keeps committed changes across a killed
process (RocksDB's own write-ahead log) but not across power loss; kgc does not flush RocksDB's
memtable per commit (16 ms per transaction, measured).

Isolation: readers that go through ``query`` take the shared side of the lock, so they never see a
staged, vetoed or half-applied state. Code that reads the raw pyoxigraph store bypasses this.

Timeouts are measured, not preemptive: a hook that overruns its ``timeout_ms`` is recorded as a
timeout when it returns (and, for a pre-commit hook in strict mode, the transaction is refused),
but a SPARQL query running inside pyoxigraph cannot be interrupted in process.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pyoxigraph as ox

from kgc.effects.cascade import run_effects
from kgc.effects.pool import SandboxConfig
from kgc.effects.runner import EffectRunner
from kgc.errors import (
    InputError,
    KGCError,
    LockchainError,
    QuerySyntaxError,
    RecoveryError,
    StoreError,
)
from kgc.hooks.cache import ConditionCache, cacheable
from kgc.hooks.conditions import ConditionResult, EvalContext, HistoryEntry
from kgc.hooks.manager import HookManager, HookSnapshot
from kgc.hooks.model import Hook, HookVerdict
from kgc.hooks.planner import Planner, Selection
from kgc.hooks.runner import Evaluate, Outcome, judge, plain_evaluate
from kgc.hooks.views import Views
from kgc.locks import ReadWriteLock
from kgc.rdf.delta import Delta
from kgc.rdf.digest import StateDigest, delta_digests
from kgc.rdf.guard import check_query
from kgc.rdf.terms import RESERVED_GRAPH_PREFIX, quad_line
from kgc.receipt import Receipt, Status
from kgc.store.base import Store
from kgc.telemetry import tracing

if TYPE_CHECKING:
    from kgc.lockchain.journal import Journal

logger = logging.getLogger(__name__)
# Receipts of changes that effects caused during one outer apply, announced after it.
_caused: ContextVar[list[Receipt] | None] = ContextVar("kgc_caused_receipts", default=None)
_EMPTY_STATE = StateDigest().hexdigest()
HISTORY_SIZE = 1024
QueryResult = bool | list[dict[str, Any]] | list[ox.Triple]
T = TypeVar("T")


def _provenance(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A JSON-clean copy of ``apply(provenance=...)``, refused with the reason when it is not."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InputError("apply(provenance=...) takes a mapping with string keys")
    try:
        copy: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InputError(f"apply(provenance=...) must hold JSON values only: {exc}") from exc
    return copy


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 4)


@dataclass
class _Tx:
    """Working state of one transaction while the pipeline runs."""

    delta: Delta
    actor: str
    snapshot: HookSnapshot
    state_before: str
    state_after: str = ""
    budget_ms: float = 0.0
    provenance: dict[str, Any] | None = None
    t0: float = field(default_factory=time.perf_counter)
    started_at: str = field(default_factory=_now)
    additions: list[ox.Quad] = field(default_factory=list)
    removals: list[ox.Quad] = field(default_factory=list)
    verdicts: list[HookVerdict] = field(default_factory=list)
    # Post-commit hooks with work left after the commit (a fired run, an after callable).
    fired_post: list[Outcome] = field(default_factory=list)
    post_verdicts: list[HookVerdict] = field(default_factory=list)
    selection: Selection | None = None
    # The state digest the delta would produce, computed before governance when a cache needs it.
    proposed: StateDigest | None = None
    timings: dict[str, float] = field(default_factory=dict)
    status: Status = "committed"
    error: str | None = None
    # Canonical N-Quads lines of the effective delta, once computed (by the commit's digest update).
    lines: tuple[list[str], list[str]] | None = None

    def delta_lines(self) -> tuple[list[str], list[str]]:
        if self.lines is None:
            self.lines = (
                [quad_line(q) for q in self.additions],
                [quad_line(q) for q in self.removals],
            )
        return self.lines

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0


class TransactionManager:
    """Applies deltas one at a time, governed by the hooks of a ``HookManager``."""

    def __init__(
        self,
        store: Store,
        hooks: HookManager | None = None,
        *,
        strict: bool = True,
        timeout_ms: float = 2000.0,
        journal: Journal | None = None,
        clock: Callable[[], float] = time.time,
        history_size: int = HISTORY_SIZE,
        plan: bool = True,
        cache: ConditionCache | None = None,
        effects: EffectRunner | None = None,
    ) -> None:
        """``effects`` runs post-commit hooks' sandboxed effect code (default: a sandbox with
        default limits, strict like this manager, started when an effect first fires).
        ``clock`` times the history that ``window`` conditions read (seconds; injectable for
        tests); ``history_size`` bounds that history (0 keeps none). ``plan=False`` evaluates
        every hook on every transaction instead of skipping those the delta cannot affect
        (``kgc.hooks.planner``); verdicts are the same, only slower. ``cache`` keeps condition
        results by condition digest and graph version (``kgc.hooks.cache``)."""
        if history_size < 0:
            raise InputError(f"history_size must be >= 0, got {history_size}")
        self.store = store
        self.hooks = hooks if hooks is not None else HookManager()
        self.strict = strict
        self.timeout_ms = timeout_ms
        self.journal = journal
        self.recovery = journal.recover(store, persistent=_persistent(store)) if journal else None
        self._lock = ReadWriteLock()
        self._state = StateDigest.of(_user_lines(store))
        self._state_hex = self._state.hexdigest()
        self.on_receipt: list[Callable[[Receipt], None]] = []
        self.clock = clock
        self.history: deque[HistoryEntry] = deque(maxlen=history_size)
        self._commits = 0
        self.planner = Planner(enabled=plan)
        self.cache = cache
        self.effects = effects or EffectRunner(SandboxConfig(strict=strict))
        if journal is not None:
            _check_recovered(journal, self._state_hex)

    # Reading --------------------------------------------------------------------------------

    @property
    def state_digest(self) -> str:
        """The current state digest (hex), as the last receipt reported it."""
        return self._state_hex

    def recompute_state_digest(self) -> str:
        """The state digest computed from scratch over the store, in O(n)."""
        with self._lock.read():
            return StateDigest.of(_user_lines(self.store)).hexdigest()

    def snapshot(self) -> tuple[list[ox.Quad], int | None, str]:
        """One committed state: its quads (reserved graphs left out), last sequence, digest."""
        with self._lock.read():
            quads = [q for q in self.store if not _reserved(q)]
            seq = self.journal.last_seq if self.journal is not None else None
            return quads, seq, self._state_hex

    def query(self, sparql: str) -> QueryResult:
        """Run a SPARQL query on a committed state; results are materialized under the lock."""
        check_query(sparql)
        with self._lock.read():
            try:
                result = self.store.query(sparql)
            except SyntaxError as exc:
                raise QuerySyntaxError(f"SPARQL query does not parse: {exc.msg}") from exc
            if isinstance(result, ox.QueryBoolean):
                return bool(result)
            if isinstance(result, ox.QuerySolutions):
                names = [v.value for v in result.variables]
                return [{n: row[n] for n in names if row[n] is not None} for row in result]
            return list(result)

    def query_with(self, sparql: str, consume: Callable[[Any], T], **options: Any) -> T:
        """Run a SPARQL query on a committed state and hand pyoxigraph's result to ``consume``
        under the lock, to serialize it in one pass rather than materialize it.

        ``options`` go to pyoxigraph's ``Store.query`` (``default_graph``, ``named_graphs``).
        """
        check_query(sparql)
        with self._lock.read():
            try:
                result = self.store.query(sparql, **options)
            except SyntaxError as exc:
                raise QuerySyntaxError(f"SPARQL query does not parse: {exc.msg}") from exc
            try:
                return consume(result)
            except BaseException as exc:
                # pyoxigraph's result must be dropped on the thread that made it (it panics
                # otherwise); the traceback's frames would carry it to whoever handles ``exc``.
                traceback.clear_frames(exc.__traceback__)
                del result
                raise

    # Writing --------------------------------------------------------------------------------

    def apply(
        self,
        delta: Delta,
        actor: str = "anonymous",
        *,
        timeout_ms: float | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> Receipt:
        """Apply ``delta`` as one governed transaction and return its receipt.

        The receipt's ``committed`` flag is the truth: ``False`` means the graph is exactly as
        before. Errors in input raise before anything is attempted; a ``StoreError`` during
        revert means the store itself failed and should be treated as unavailable.
        ``timeout_ms`` overrides the manager's pre-commit budget for this one transaction.
        ``provenance`` (JSON values) says why the transaction exists; it is sealed in the receipt.
        """
        if not isinstance(delta, Delta):
            raise InputError(f"apply() takes a Delta, got {type(delta).__name__}")
        if not isinstance(actor, str) or not actor.strip():
            raise InputError("apply() needs a non-empty actor")
        origin = _provenance(provenance)
        outer = _caused.get()
        if outer is not None:  # caused by an effect: announced after the change that caused it
            receipt = self._traced_apply(delta, actor, timeout_ms, origin)
            outer.append(receipt)
            return receipt
        caused: list[Receipt] = []
        token = _caused.set(caused)
        try:
            receipt = self._traced_apply(delta, actor, timeout_ms, origin)
            self._announce(receipt)
        finally:
            _caused.reset(token)
            # What its effects caused follows it, in commit order: listeners (the server's
            # receipt log and streams, the anchorer) see receipts in sequence.
            for later in sorted(caused, key=lambda r: r.finished_at):
                self._announce(later)
        return receipt

    def _traced_apply(
        self, delta: Delta, actor: str, timeout_ms: float | None, origin: dict[str, Any] | None
    ) -> Receipt:
        with tracing.span("kgc.transaction", {"kgc.actor": actor}) as span:
            try:
                receipt = self._apply(delta, actor, timeout_ms, origin)
            except Exception as exc:
                logger.error(
                    "Transaction failed: by %s, raised %s: %s",
                    actor,
                    type(exc).__name__,
                    exc,
                    extra={"actor": actor},
                )
                raise
            tracing.transaction_ended(span, receipt)
        return receipt

    def _apply(
        self, delta: Delta, actor: str, timeout_ms: float | None, origin: dict[str, Any] | None
    ) -> Receipt:
        with self._lock.write():
            tx = _Tx(delta, actor, self.hooks.snapshot(), self._state_hex)
            tx.budget_ms = self.timeout_ms if timeout_ms is None else timeout_ms
            tx.provenance = origin
            self._effective(tx)
            if tx.additions or tx.removals:
                self._intent(tx)
                self._govern_and_commit(tx)
            receipt = self._seal(self._receipt(tx), tx)
        if tx.status == "committed" and tx.fired_post:
            receipt = self._run_post(tx, receipt)
        return receipt

    def _intent(self, tx: _Tx) -> None:
        if self.journal is not None:
            added, removed = tx.delta_lines()
            self.journal.intent(self.journal.next_seq(), added, removed)

    def _seal(self, receipt: Receipt, tx: _Tx) -> Receipt:
        """Chain and durably journal the receipt (pipeline step 6), under the lock."""
        if self.journal is None:
            return receipt
        added, removed = tx.delta_lines()
        try:
            sealed = self.journal.seal(receipt.body(), added, removed)
        except OSError:
            self._unapply(tx)  # the journal cut the record off: no receipt, so no change
            raise
        if receipt.committed and _persistent(self.store):
            self.journal.mark_applied(self.store, sealed.seq)
        return replace(
            receipt,
            seq=sealed.seq,
            prev=sealed.body["prev"],
            key_id=sealed.body.get("key_id"),
            hash=sealed.hash,
            signature=sealed.signature,
        )

    def _unapply(self, tx: _Tx) -> None:
        """Take a committed change back out of the store and the digest, as recovery would."""
        if tx.status != "committed" or not (tx.additions or tx.removals):
            return
        self._revert(tx, [])
        self.planner.forget()
        added, removed = tx.delta_lines()
        self._state.update(added=removed, removed=added)
        self._state_hex = tx.state_before
        if self.history and self.history[-1].seq == self._commits:
            self.history.pop()

    def _effective(self, tx: _Tx) -> None:
        store = self.store
        tx.additions = [q for q in tx.delta.additions if q not in store]
        tx.removals = [q for q in tx.delta.removals if q in store]

    def _govern_and_commit(self, tx: _Tx) -> None:
        selection = self.planner.select(
            tx.snapshot.plan, tx.additions, tx.removals, tx.state_before
        )
        tx.selection = selection
        if self.cache is not None and self.cache.enabled and selection.evaluate:
            tx.proposed = self._state.copy()
            tx.proposed.update(*tx.delta_lines())
        evaluate = self._evaluator(tx)
        pre, post = selection.hooks("pre"), selection.hooks("post")
        # Every channel's copies of the delta graphs, not only the selected hooks' ones: a query
        # without a channel can see them through GRAPH ?g, so they must not depend on the plan.
        views = Views(self._context(tx), tx.snapshot.plan.channels)
        # Only conditions read the delta graphs. Staging them when no hook is evaluated would
        # cost a bulk load twice, and pyoxigraph's in-memory store keeps removed quads as dead
        # index entries that every later scan of those graphs walks through.
        staged = views.staged() if pre or post else []
        try:
            self.store.add_all(staged)
            early = [
                self._judge(h, views, evaluate) for h in [*pre, *post] if h.channel.view == "before"
            ]
            self.store.add_all(tx.additions)
            self.store.remove_all(tx.removals)
            self._pre_hooks(tx, views, pre, early, evaluate)
            if tx.status == "committed":
                self._post_conditions(tx, views, post, early, evaluate)
        except BaseException:
            self._revert(tx, staged)
            raise
        self._learn(tx)
        if tx.status != "committed":
            self._revert(tx, staged)
            return
        self._commit(tx, staged)

    def _context(self, tx: _Tx) -> EvalContext:
        return EvalContext(
            self.store,
            tx.additions,
            tx.removals,
            uuid.uuid4().hex,
            actor=tx.actor,
            now=self.clock(),
            history=tuple(self.history),
        )

    def _judge(self, hook: Hook, views: Views, evaluate: Evaluate) -> Outcome:
        return judge(hook, views.context(hook), evaluate, self._lock.lend)

    def _evaluator(self, tx: _Tx) -> Evaluate:
        """Condition evaluation through the cache, keyed by condition, channel and graph version."""
        cache, selection = self.cache, tx.selection
        if cache is None or not cache.enabled or tx.proposed is None or selection is None:
            return plain_evaluate
        transition = f"{tx.state_before}>{tx.proposed.hexdigest()}"
        planner = self.planner

        def evaluate(hook: Hook, ctx: EvalContext) -> ConditionResult:
            condition = hook.when
            if not cacheable(condition):
                return condition.evaluate(ctx)
            key = f"{condition.digest}|{hook.channel.key}"
            version = planner.version(selection, hook, transition)
            result = cache.get(key, version)
            if result is None:
                result = condition.evaluate(ctx)
                cache.put(key, version, result)
            return result

        return evaluate

    def _pre_hooks(
        self, tx: _Tx, views: Views, hooks: list[Hook], early: list[Outcome], evaluate: Evaluate
    ) -> None:
        t = time.perf_counter()
        done = {o.hook.name: o for o in early}
        for hook in hooks:
            outcome = done.get(hook.name) or self._judge(hook, views, evaluate)
            tx.verdicts.append(outcome.verdict)
        tx.timings["pre_hooks"] = _ms(time.perf_counter() - t)
        kinds = {v.verdict for v in tx.verdicts}
        if kinds & {"veto", "cancelled"}:
            tx.status = "vetoed"
        elif self.strict and kinds & {"error", "timeout"}:
            bad = next(v for v in tx.verdicts if v.verdict in ("error", "timeout"))
            tx.status = "error" if bad.verdict == "error" else "timeout"
            tx.error = f"pre-commit hook {bad.hook!r} failed ({bad.verdict}): {bad.reason}"
        elif tx.elapsed_ms() > tx.budget_ms:
            tx.status = "timeout"
            took = tx.elapsed_ms()
            tx.error = f"transaction took {took:.1f} ms before commit; limit {tx.budget_ms} ms"

    def _post_conditions(
        self, tx: _Tx, views: Views, hooks: list[Hook], early: list[Outcome], evaluate: Evaluate
    ) -> None:
        done = {o.hook.name: o for o in early}
        for hook in hooks:
            outcome = done.get(hook.name) or self._judge(hook, views, evaluate)
            fired = outcome.result is not None and outcome.result.fired
            tx.post_verdicts.append(outcome.verdict)
            if (fired and outcome.verdict.verdict == "pass") or hook.after is not None:
                tx.fired_post.append(outcome)
            else:
                tx.verdicts.append(outcome.verdict)

    def _learn(self, tx: _Tx) -> None:
        if tx.selection is None:
            return
        verdicts = {v.hook: v for v in [*tx.verdicts, *tx.post_verdicts]}
        proposed = tx.proposed.hexdigest() if tx.proposed is not None else ""
        committed = tx.status == "committed"
        self.planner.learn(tx.selection, verdicts, committed=committed, state=proposed)

    def _revert(self, tx: _Tx, staged: list[ox.Quad]) -> None:
        try:
            self.store.remove_all([*tx.additions, *staged])
            self.store.add_all(tx.removals)
        except StoreError:
            logger.critical(
                "Revert of transaction by %s failed; the store may hold a staged change", tx.actor
            )
            raise

    def _commit(self, tx: _Tx, staged: list[ox.Quad]) -> None:
        t = time.perf_counter()
        self.store.remove_all(staged)
        if tx.proposed is not None:  # already updated, for the cache's version
            self._state = tx.proposed
        else:
            added, removed = tx.delta_lines()
            self._state.update(added=added, removed=removed)
        self._state_hex = self._state.hexdigest()
        tx.state_after = self._state_hex
        self._remember(tx)
        tx.timings["commit"] = _ms(time.perf_counter() - t)

    def _remember(self, tx: _Tx) -> None:
        """Add the committed transaction to the bounded history ``window`` conditions read."""
        self._commits += 1
        if not self.history.maxlen:
            return
        entry = HistoryEntry(self._commits, self.clock(), tx.actor)
        if tx.snapshot.reads_history:  # otherwise no condition would read the quads
            entry = replace(entry, additions=tuple(tx.additions), removals=tuple(tx.removals))
        self.history.append(entry)

    def _run_post(self, tx: _Tx, receipt: Receipt) -> Receipt:
        """Effects of fired post-commit hooks, outside the lock; then what they proposed, each
        as a transaction of its own; then the journal's record of it all. One change and every
        change its effects cause share one budget (``kgc.effects.cascade``)."""
        effects = run_effects(self, tx.fired_post, receipt, tx.delta_lines())
        if self.journal is not None and receipt.seq is not None:
            try:
                self.journal.after(receipt.seq, [asdict(v) for v in effects])
            except (OSError, KGCError, ValueError, RecursionError) as exc:
                # The transaction is committed and sealed; its effects are in the receipt.
                logger.error("Journal could not record effects of receipt %s: %s", receipt.seq, exc)
        return replace(receipt, effects=tuple(effects))

    def _receipt(self, tx: _Tx) -> Receipt:
        committed = tx.status == "committed"
        additions, removals = tx.delta_lines()
        tx.timings["total"] = _ms(time.perf_counter() - tx.t0)
        return Receipt(
            id=str(uuid.uuid4()),
            actor=tx.actor,
            status=tx.status,
            committed=committed,
            started_at=tx.started_at,
            finished_at=_now(),
            additions=len(additions),
            removals=len(removals),
            ignored_additions=len(tx.delta.additions) - len(tx.additions),
            ignored_removals=len(tx.delta.removals) - len(tx.removals),
            literal_rewrites=tx.delta.rewrites,
            delta_digest=delta_digests(additions, removals),
            state_before=tx.state_before,
            # Not self._state_hex: another writer may have committed since this one unlocked.
            state_after=tx.state_after or tx.state_before,
            policy_digest=tx.snapshot.digest,
            policy_packs=tx.snapshot.packs,
            hooks=tuple(tx.verdicts),
            hooks_skipped=tx.selection.skipped if tx.selection is not None else 0,
            timings_ms=dict(tx.timings),
            error=tx.error,
            provenance=tx.provenance,
        )

    def _announce(self, receipt: Receipt) -> None:
        logger.debug("transaction %s by %s: %s", receipt.id, receipt.actor, receipt.status)
        if receipt.status in ("error", "timeout"):
            logger.warning(
                "Transaction failed: %s by %s refused (%s): %s",
                receipt.id,
                receipt.actor,
                receipt.status,
                receipt.error,
                extra={"receipt_id": receipt.id, "actor": receipt.actor, "status": receipt.status},
            )
        for listener in self.on_receipt:
            try:
                listener(receipt)
            except Exception:
                logger.exception("receipt listener %r failed", listener)


def _persistent(store: Store) -> bool:
    return getattr(store, "path", None) is not None


def _check_recovered(journal: Journal, state: str) -> None:
    if journal.last_seq == 0 and state != _EMPTY_STATE:
        raise LockchainError(
            f"{journal.path}: the lockchain is empty but the store already holds data; a "
            "lockchain must start from the empty graph so that anyone can replay it (open the "
            "store with its own lockchain, or load the data through an engine that has one)"
        )
    expected = journal.last_committed_state()
    if expected is not None and expected != state:
        raise RecoveryError(
            f"after recovery from {journal.path} the graph's state digest is {state}, but the "
            f"last committed receipt (seq {journal.last_seq} or before) says {expected}"
        )


def _reserved(quad: ox.Quad) -> bool:
    graph = quad.graph_name
    return isinstance(graph, ox.NamedNode) and graph.value.startswith(RESERVED_GRAPH_PREFIX)


def _user_lines(store: Store) -> Any:
    for quad in store:
        if not _reserved(quad):
            yield quad_line(quad)
