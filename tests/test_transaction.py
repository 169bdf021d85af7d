"""The governed write path: receipts, vetoes, strictness, post-hooks, time limits, one writer."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyoxigraph as ox
import pytest

from kgc import (
    Delta,
    Hook,
    HookEvent,
    HookManager,
    KnowledgeEngine,
    OxigraphStore,
    Receipt,
    SparqlAsk,
    SparqlSelect,
    TransactionManager,
    Veto,
)
from kgc.errors import QuerySyntaxError
from kgc.hooks import ConditionResult, EvalContext
from kgc.receipt import ALGORITHMS

ADD_BAD = "ASK { GRAPH <urn:kgc:delta:additions> { <urn:bad> ?p ?o } }"
GOOD = Delta.from_text('<urn:good> <urn:p> "1" .')
BAD = Delta.from_text('<urn:bad> <urn:p> "1" .\n<urn:good> <urn:p> "2" .')


@dataclass(frozen=True)
class SlowCondition:
    """A condition that takes ``seconds`` to decide."""

    seconds: float
    fires: bool = False
    kind: str = "test-slow"
    text: str = "sleep"

    @property
    def digest(self) -> str:
        return "0" * 64

    def evaluate(self, ctx: EvalContext) -> ConditionResult:
        time.sleep(self.seconds)
        return ConditionResult(self.fires)


def _state(engine: KnowledgeEngine) -> tuple[int, str]:
    return len(engine), engine.state_digest


def _guarded(engine: KnowledgeEngine) -> KnowledgeEngine:
    engine.hooks.register(Hook("no-bad", SparqlAsk(ADD_BAD), message="<urn:bad> may not be added"))
    return engine


# Receipts ---------------------------------------------------------------------------------------


def test_committed_receipt_has_every_documented_field(engine: KnowledgeEngine) -> None:
    _guarded(engine)
    before = engine.state_digest

    receipt = engine.apply(GOOD, actor="building-integration")

    assert uuid.UUID(receipt.id).version == 4
    assert (receipt.actor, receipt.status, receipt.committed) == (
        "building-integration",
        "committed",
        True,
    )
    started = datetime.fromisoformat(receipt.started_at)
    finished = datetime.fromisoformat(receipt.finished_at)
    assert started.tzinfo == UTC and started <= finished
    counts = (receipt.additions, receipt.removals)
    assert counts == (1, 0)
    assert (receipt.ignored_additions, receipt.ignored_removals) == (0, 0)
    assert receipt.state_before == before != receipt.state_after == engine.state_digest
    assert set(receipt.delta_digest) == {"sha3-256", "blake3"}
    assert len(receipt.policy_digest) == 64
    (verdict,) = receipt.hooks
    assert (verdict.hook, verdict.phase, verdict.verdict, verdict.fired) == (
        "no-bad",
        "pre",
        "pass",
        False,
    )
    assert verdict.duration_ms >= 0
    assert set(receipt.timings_ms) == {"pre_hooks", "commit", "total"}
    assert receipt.error is None
    assert receipt.format_version == "kgc-receipt/1"
    assert receipt.algorithms == ALGORITHMS
    assert receipt.algorithms["state_digest"].startswith("lthash16-1024/blake3-xof")


def test_receipt_json_form(engine: KnowledgeEngine) -> None:
    receipt = _guarded(engine).apply(BAD)

    data = json.loads(receipt.to_json())

    assert data == json.loads(json.dumps(receipt.to_dict()))
    assert data["id"] == receipt.id
    assert data["hooks"][0]["verdict"] == "veto"
    assert data["format_version"] == "kgc-receipt/1"
    assert data["literal_rewrites"] == []


def test_delta_that_changes_nothing_commits_without_evaluating_hooks(
    engine: KnowledgeEngine,
) -> None:
    engine.apply(GOOD)
    _guarded(engine)

    receipt = engine.apply(Delta.from_text('<urn:good> <urn:p> "1" .', '<urn:x> <urn:y> "z" .'))

    assert receipt.committed
    assert (receipt.additions, receipt.ignored_additions, receipt.ignored_removals) == (0, 1, 1)
    assert receipt.state_after == receipt.state_before
    assert receipt.hooks == ()


def test_policy_digest_names_the_hooks_in_force(engine: KnowledgeEngine) -> None:
    bare = engine.apply(GOOD).policy_digest
    _guarded(engine)
    guarded = engine.apply(Delta.from_text('<urn:good> <urn:p> "2" .')).policy_digest
    engine.hooks.remove("no-bad")

    assert bare != guarded
    assert engine.apply(Delta.from_text('<urn:good> <urn:p> "3" .')).policy_digest == bare


def test_receipt_listeners_hear_every_receipt_and_cannot_break_apply(
    engine: KnowledgeEngine,
) -> None:
    heard: list[Receipt] = []

    def broken(receipt: Receipt) -> None:
        raise RuntimeError("listener down")

    engine.transactions.on_receipt.extend([broken, heard.append])

    receipt = engine.apply(GOOD)

    assert heard == [receipt]


# Vetoes -----------------------------------------------------------------------------------------


def test_veto_leaves_graph_and_digest_untouched(engine: KnowledgeEngine) -> None:
    engine.apply(GOOD)
    _guarded(engine)
    before = _state(engine)

    receipt = engine.apply(BAD)

    assert (receipt.status, receipt.committed) == ("vetoed", False)
    assert receipt.vetoed_by == ["no-bad"]
    assert receipt.hooks[0].reason == "<urn:bad> may not be added (ASK is true)"
    assert receipt.additions == 2
    assert receipt.state_after == receipt.state_before == before[1]
    assert _state(engine) == before
    assert engine.transactions.recompute_state_digest() == before[1]


def test_vetoed_removal_keeps_the_quad(engine: KnowledgeEngine) -> None:
    engine.apply(GOOD)
    query = "ASK { GRAPH <urn:kgc:delta:removals> { ?s ?p ?o } }"
    engine.hooks.register(Hook("append-only", SparqlAsk(query)))

    receipt = engine.apply(Delta([], GOOD.additions))

    assert receipt.status == "vetoed"
    assert engine.query('ASK { <urn:good> <urn:p> "1" }') is True


def test_select_veto_names_the_offending_rows(engine: KnowledgeEngine) -> None:
    query = (
        "SELECT ?s WHERE { GRAPH <urn:kgc:delta:additions> { ?s ?p ?o } FILTER(?s = <urn:bad>) }"
    )
    engine.hooks.register(Hook("rows", SparqlSelect(query), message="refused"))

    receipt = engine.apply(BAD)

    assert receipt.hooks[0].reason == "refused (?s=<urn:bad>)"


def test_every_pre_hook_is_evaluated_in_priority_order(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("b-low", SparqlAsk(ADD_BAD), priority=1))
    engine.hooks.register(Hook("a-low", SparqlAsk("ASK { FILTER(false) }"), priority=1))
    engine.hooks.register(Hook("z-high", SparqlAsk(ADD_BAD), priority=9))

    receipt = engine.apply(BAD)

    assert [v.hook for v in receipt.hooks] == ["z-high", "a-low", "b-low"]
    assert receipt.vetoed_by == ["z-high", "b-low"]


def test_run_callable_decides_on_the_proposed_state(engine: KnowledgeEngine) -> None:
    seen: list[tuple[bool, bool]] = []

    def decide(event: HookEvent) -> Veto | None:
        store = event.context.store
        seen.append((event.result.fired, BAD.additions[0] in store))
        return Veto("bad is banned") if event.context.additions[0] in BAD.additions else None

    engine.hooks.register(Hook("judge", SparqlAsk("ASK {}"), run=decide))

    vetoed = engine.apply(BAD)
    passed = engine.apply(GOOD)

    assert (vetoed.status, vetoed.hooks[0].reason) == ("vetoed", "bad is banned")
    assert (passed.status, passed.hooks[0].verdict) == ("committed", "pass")
    assert seen[0] == (True, True)


def test_pre_hook_run_callable_may_query_the_engine(engine: KnowledgeEngine) -> None:
    # Regression: engine.query from a pre-commit run callable waited forever on the writer lock.
    answers: list[object] = []

    def look(event: HookEvent) -> None:
        answers.append(engine.query('ASK { <urn:good> <urn:p> "1" }'))

    engine.hooks.register(Hook("looks", SparqlAsk("ASK {}"), run=look))
    receipts: list[Receipt] = []
    worker = threading.Thread(target=lambda: receipts.append(engine.apply(GOOD)), daemon=True)

    worker.start()
    worker.join(timeout=10)

    assert not worker.is_alive(), "apply() deadlocked"
    assert receipts[0].committed
    assert answers == [True]


def test_apply_from_a_pre_hook_is_refused_not_deadlocked(engine: KnowledgeEngine) -> None:
    # Regression: a second apply() on the writer's own thread waited for itself forever.
    def nested(event: HookEvent) -> None:
        engine.apply(Delta.from_text('<urn:nested> <urn:p> "1" .'))

    engine.hooks.register(Hook("nests", SparqlAsk("ASK {}"), run=nested))
    receipts: list[Receipt] = []
    worker = threading.Thread(target=lambda: receipts.append(engine.apply(GOOD)), daemon=True)

    worker.start()
    worker.join(timeout=10)

    assert not worker.is_alive(), "apply() deadlocked"
    assert receipts[0].status == "error"
    assert "TransactionError: a transaction cannot be applied while" in receipts[0].hooks[0].reason
    assert len(engine) == 0


# Strict and non-strict mode --------------------------------------------------------------------


def _raise(event: HookEvent) -> None:
    raise ValueError("shape registry offline")


def test_strict_mode_pre_hook_that_raises_refuses_the_transaction(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("fragile", SparqlAsk("ASK {}"), run=_raise))

    receipt = engine.apply(GOOD)

    assert (receipt.status, receipt.committed) == ("error", False)
    assert receipt.hooks[0].verdict == "error"
    assert receipt.hooks[0].reason == "ValueError: shape registry offline"
    assert receipt.error == (
        "pre-commit hook 'fragile' failed (error): ValueError: shape registry offline"
    )
    assert len(engine) == 0


def test_non_strict_mode_records_the_error_and_commits() -> None:
    engine = KnowledgeEngine(strict_mode=False)
    engine.hooks.register(Hook("fragile", SparqlAsk("ASK {}"), run=_raise))

    receipt = engine.apply(GOOD)

    assert (receipt.status, receipt.committed) == ("committed", True)
    assert receipt.hooks[0].verdict == "error"
    assert len(engine) == 1


def test_non_strict_mode_still_honours_a_veto() -> None:
    engine = _guarded(KnowledgeEngine(strict_mode=False))

    assert engine.apply(BAD).status == "vetoed"


# Post-commit hooks -----------------------------------------------------------------------------


def test_post_hook_runs_after_commit_and_sees_the_committed_state(
    engine: KnowledgeEngine,
) -> None:
    seen: list[object] = []

    def notify(event: HookEvent) -> None:
        seen.append(engine.query('ASK { <urn:good> <urn:p> "1" }'))
        seen.append(engine.query("ASK { GRAPH ?g { ?s ?p ?o } }"))

    query = "ASK { GRAPH <urn:kgc:delta:additions> { ?s ?p ?o } }"
    engine.hooks.register(Hook("notify", SparqlAsk(query), phase="post", run=notify))

    receipt = engine.apply(GOOD)

    assert receipt.committed
    assert receipt.hooks == ()
    assert [(v.hook, v.phase, v.verdict, v.fired) for v in receipt.effects] == [
        ("notify", "post", "ran", True)
    ]
    assert seen == [True, False]


def test_post_hook_whose_condition_does_not_fire_is_listed_as_pass(
    engine: KnowledgeEngine,
) -> None:
    calls: list[HookEvent] = []
    engine.hooks.register(
        Hook("quiet", SparqlAsk("ASK { FILTER(false) }"), phase="post", run=calls.append)
    )

    receipt = engine.apply(GOOD)

    assert [(v.verdict, v.fired) for v in receipt.hooks] == [("pass", False)]
    assert calls == []


def test_post_hook_failure_is_recorded_and_the_commit_stands(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("flaky", SparqlAsk("ASK {}"), phase="post", run=_raise))

    receipt = engine.apply(GOOD)

    assert (receipt.status, receipt.committed) == ("committed", True)
    assert (receipt.effects[0].verdict, receipt.effects[0].reason) == (
        "error",
        "ValueError: shape registry offline",
    )
    assert receipt.state_after == engine.transactions.recompute_state_digest()
    assert len(engine) == 1


def test_post_hooks_do_not_run_for_a_vetoed_transaction(engine: KnowledgeEngine) -> None:
    calls: list[HookEvent] = []
    _guarded(engine)
    engine.hooks.register(Hook("after", SparqlAsk("ASK {}"), phase="post", run=calls.append))

    receipt = engine.apply(BAD)

    assert receipt.status == "vetoed"
    assert [v.hook for v in receipt.hooks] == ["no-bad"]
    assert calls == []


# Time limits ------------------------------------------------------------------------------------


def test_slow_pre_hook_times_out_and_refuses_in_strict_mode(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("slow", SlowCondition(0.03), timeout_ms=1))

    receipt = engine.apply(GOOD)

    assert (receipt.status, receipt.committed) == ("timeout", False)
    assert receipt.hooks[0].verdict == "timeout"
    assert receipt.hooks[0].reason.endswith("ms; limit 1 ms")
    assert receipt.error is not None
    assert receipt.error.startswith("pre-commit hook 'slow' failed (timeout): took ")
    assert len(engine) == 0


def test_slow_run_callable_times_out() -> None:
    engine = KnowledgeEngine(strict_mode=False)
    engine.hooks.register(
        Hook("slow-run", SparqlAsk("ASK {}"), run=lambda event: time.sleep(0.03), timeout_ms=1)
    )

    receipt = engine.apply(GOOD)

    assert receipt.committed
    assert receipt.hooks[0].verdict == "timeout"


def test_transaction_budget_refuses_a_slow_transaction() -> None:
    engine = KnowledgeEngine(transaction_timeout_ms=5)
    engine.hooks.register(Hook("slow-but-in-limit", SlowCondition(0.03), timeout_ms=1000))

    receipt = engine.apply(GOOD)

    assert (receipt.status, receipt.committed) == ("timeout", False)
    assert receipt.hooks[0].verdict == "pass"
    assert receipt.error is not None
    assert receipt.error.startswith("transaction took ")
    assert receipt.error.endswith("ms before commit; limit 5.0 ms")
    assert len(engine) == 0


def test_slow_veto_still_vetoes_in_non_strict_mode() -> None:
    engine = KnowledgeEngine(strict_mode=False)
    engine.hooks.register(Hook("slow-veto", SlowCondition(0.03, fires=True), timeout_ms=1))

    receipt = engine.apply(GOOD)

    assert (receipt.status, receipt.committed) == ("vetoed", False)
    assert receipt.hooks[0].verdict == "veto"
    assert len(engine) == 0


def test_per_call_budget_overrides_the_configured_one() -> None:
    engine = KnowledgeEngine(transaction_timeout_ms=5)
    engine.hooks.register(Hook("slow-but-in-limit", SlowCondition(0.03), timeout_ms=1000))

    receipt = engine.apply(GOOD, timeout_ms=5000)

    assert receipt.committed


def test_load_budget_grows_with_the_file(tmp_path: Path) -> None:
    data = tmp_path / "many.nt"
    data.write_text("".join(f'<urn:s{i}> <urn:p> "{i}" .\n' for i in range(5000)))
    engine = KnowledgeEngine(transaction_timeout_ms=0.001)

    receipt = engine.load(data)

    assert receipt.committed, receipt.error
    assert len(engine) == 5000


# One writer at a time ---------------------------------------------------------------------------


def test_concurrent_writers_all_commit_in_one_chain(engine: KnowledgeEngine) -> None:
    # Regression: a receipt's state_after was read after unlocking, so under concurrent writers it
    # could report a later transaction's state; the receipts then formed no chain.
    _guarded(engine)
    empty = engine.state_digest
    receipts: list[Receipt] = []

    def writer(n: int) -> None:
        for i in range(25):
            receipts.append(engine.apply(Delta.from_text(f'<urn:w{n}> <urn:p> "{i}" .')))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(receipts) == 200 and all(r.committed for r in receipts)
    assert len(engine) == 200
    assert engine.state_digest == engine.transactions.recompute_state_digest()
    after = {r.state_before: r.state_after for r in receipts}
    digest = empty
    for _ in receipts:
        digest = after[digest]
    assert digest == engine.state_digest


# Reading ----------------------------------------------------------------------------------------


def test_query_results_are_plain_python(engine: KnowledgeEngine) -> None:
    engine.apply(GOOD)

    rows = engine.query("SELECT ?s ?o WHERE { ?s <urn:p> ?o }")
    triples = engine.query("CONSTRUCT { ?s <urn:q> ?o } WHERE { ?s <urn:p> ?o }")

    assert rows == [{"s": ox.NamedNode("urn:good"), "o": ox.Literal("1")}]
    assert triples == [ox.Triple(ox.NamedNode("urn:good"), ox.NamedNode("urn:q"), ox.Literal("1"))]
    assert engine.query("ASK { ?s ?p ?o }") is True


def test_query_that_does_not_parse_is_refused(engine: KnowledgeEngine) -> None:
    with pytest.raises(QuerySyntaxError, match=r"^SPARQL query does not parse: "):
        engine.query("SELECT WHERE {")


def test_manager_over_a_filled_store_starts_from_its_digest() -> None:
    store = OxigraphStore()
    store.add_all(GOOD.additions)
    fresh = TransactionManager(OxigraphStore(), HookManager())
    fresh.apply(GOOD)

    manager = TransactionManager(store, HookManager())

    assert manager.state_digest == fresh.state_digest == manager.recompute_state_digest()
