"""``Resolver`` on a real engine: rounds close by count, timeout or call, and commit governed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from proposals import propose, quad

from kgc import Delta, Hook, KnowledgeEngine, Proposal, Resolver, SparqlAsk, resolve
from kgc.errors import ProposalError, ResolutionDisabled, RoundMismatch, UnknownRound

A, B, C = quad("a"), quad("b"), quad("c")
BAD = quad("x", "p", "bad")


@pytest.fixture
def engine() -> Iterator[KnowledgeEngine]:
    with KnowledgeEngine(enable_resolution=True, resolution_strategy="voting") as engine:
        yield engine


def test_the_layer_is_off_unless_enabled() -> None:
    with KnowledgeEngine() as engine, pytest.raises(ResolutionDisabled, match="ENABLE_RESOLUTION"):
        Resolver(engine)


def test_a_round_closes_at_its_count_and_commits_with_the_record_sealed(
    engine: KnowledgeEngine,
) -> None:
    resolver = Resolver(engine)
    one, two = propose("bms", add=[A, B]), propose("survey", add=[A])
    three = propose("model", remove=[B], add=[C], confidence=0.9)

    first = resolver.submit(one, topic="ahu-1", expected=3)
    resolver.submit(two, topic="ahu-1")
    done = resolver.submit(three, topic="ahu-1")

    assert first.status == "open" and first.id == done.id
    assert done.status == "committed" and done.closed_by == "count"
    assert done.receipt is not None and done.receipt.actor == f"resolution:{done.id}"
    assert len(engine) == 2  # A and C; for B neither side reaches 0.6 (1.0 vs 0.9 of 1.9)
    sealed = done.receipt.provenance
    assert sealed is not None
    record = sealed["resolution"]
    assert record["round"] == done.id and record["strategy"] == "voting"
    assert record["threshold"] == 0.6
    assert {p["digest"] for p in record["proposals"]} == {one.digest, two.digest, three.digest}
    assert [c["kind"] for c in record["conflicts"]] == ["add-remove"]
    model = next(p for p in record["proposals"] if p["agent"] == "model")
    assert model["status"] == "partial"
    assert "below the threshold 0.6" in model["rejected"][0]["reason"]


def test_a_round_resolves_when_its_timeout_expires(engine: KnowledgeEngine) -> None:
    resolver = Resolver(engine, timeout_ms=50)
    opened = resolver.submit(propose("bms", add=[A]))

    done = resolver.wait(opened.id, timeout_s=10)

    assert (done.status, done.closed_by) == ("committed", "timeout")
    assert len(engine) == 1


def test_a_hook_veto_on_the_resolved_delta_is_in_the_record(engine: KnowledgeEngine) -> None:
    engine.hooks.register(
        Hook("no-bad", SparqlAsk("ASK { ?s ?p <urn:ex:bad> }"), message="refused by no-bad")
    )
    resolver = Resolver(engine)
    opened = resolver.open("ahu-1", expected=2)
    resolver.submit(propose("bms", add=[A]), topic="ahu-1")
    done = resolver.submit(propose("model", add=[BAD]), topic="ahu-1")

    assert opened.status == "open"
    assert done.status == "vetoed"
    assert done.receipt is not None and done.receipt.vetoed_by == ["no-bad"]
    assert done.to_json()["receipt"]["vetoed_by"] == ["no-bad"]
    assert len(engine) == 0


def test_nothing_to_apply_runs_no_transaction(engine: KnowledgeEngine) -> None:
    resolver = Resolver(engine, strategy="consensus")
    opened = resolver.submit(propose("bms", add=[A]), expected=2)
    receipts: list[object] = []
    engine.transactions.on_receipt.append(receipts.append)

    done = resolver.submit(propose("model", remove=[A], confidence=0.5), expected=2)

    assert done.id == opened.id
    assert (done.status, done.receipt) == ("empty", None)
    assert done.outcome is not None and done.outcome.note is not None
    assert done.outcome.note.startswith("no consensus")
    assert receipts == []


def test_round_parameters_must_agree_and_unknown_rounds_are_named(
    engine: KnowledgeEngine,
) -> None:
    resolver = Resolver(engine)
    resolver.submit(propose("bms", add=[A]), expected=3)

    with pytest.raises(RoundMismatch, match="expects 3 proposals; this proposal says expected=2"):
        resolver.submit(propose("model", add=[B]), expected=2)
    with pytest.raises(UnknownRound, match="no resolution round 'round-nope'"):
        resolver.record("round-nope")
    resolver.shutdown()


def test_close_resolves_now_and_a_closed_round_takes_no_more(engine: KnowledgeEngine) -> None:
    resolver = Resolver(engine)
    first = resolver.submit(propose("bms", add=[A]))

    closed = resolver.close(first.id)
    later = resolver.submit(propose("bms", add=[B]))

    assert (closed.status, closed.closed_by) == ("committed", "close")
    assert later.id != first.id and later.status == "open"
    resolver.shutdown()


def test_concurrent_submissions_give_the_order_free_outcome(engine: KnowledgeEngine) -> None:
    proposals = [
        propose(f"agent-{n}", add=[A] if n % 3 else [], remove=[] if n % 3 else [A], priority=n)
        for n in range(12)
    ]
    resolver = Resolver(engine, strategy="priority")
    opened = resolver.open("zone", expected=len(proposals))
    seen: list[str] = []

    def send(proposal: Proposal) -> None:
        seen.append(resolver.submit(proposal, topic="zone").id)

    threads = [threading.Thread(target=send, args=(p,)) for p in proposals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    done = resolver.record(opened.id)
    assert set(seen) == {opened.id} and done.status == "committed"
    assert done.outcome is not None
    assert done.outcome.to_json() == resolve(proposals, strategy="priority").to_json()


def test_functional_properties_declared_in_the_graph_are_used(engine: KnowledgeEngine) -> None:
    owl = "http://www.w3.org/2002/07/owl#FunctionalProperty"
    declare = f"<urn:ex:setpoint> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{owl}> ."
    engine.apply(Delta.from_text(declare))
    resolver = Resolver(engine, strategy="merging")
    resolver.submit(propose("bms", add=[quad("sp", "setpoint", "v20")], confidence=0.4), expected=2)

    done = resolver.submit(propose("model", add=[quad("sp", "setpoint", "v22")]), expected=2)

    assert done.outcome is not None
    assert done.outcome.functional == ("urn:ex:setpoint",)
    assert [c.kind for c in done.outcome.conflicts] == ["functional"]
    assert engine.query("ASK { <urn:ex:sp> <urn:ex:setpoint> <urn:ex:v22> }") is True
    assert engine.query("ASK { <urn:ex:sp> <urn:ex:setpoint> <urn:ex:v20> }") is False


def test_a_library_proposal_with_a_rewritten_literal_is_refused_under_the_refuse_policy() -> None:
    # HTTP proposals were refused at parsing; a Proposal built in Python went around the policy.
    written = '<urn:s> <urn:p> "01"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    with KnowledgeEngine(enable_resolution=True, literal_policy="refuse") as strict:
        resolver = Resolver(strict)
        proposal = Proposal("bms", Delta.from_text(written), confidence=1.0)
        with pytest.raises(ProposalError, match=r"'delta'.*would be stored as .*\"1\"") as refused:
            resolver.submit(proposal, expected=1)
        assert refused.value.field == "delta"
        assert len(strict) == 0 and resolver.open_rounds == 0
    with KnowledgeEngine(enable_resolution=True) as lenient:
        done = Resolver(lenient).submit(Proposal("bms", Delta.from_text(written), 1.0), expected=1)
        assert done.status == "committed" and len(lenient) == 1


def test_rounds_still_open_at_shutdown_are_logged_with_their_proposals(
    engine: KnowledgeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = Resolver(engine, timeout_ms=60_000)
    one, two = propose("bms", add=[A]), propose("survey", add=[B])
    opened = resolver.submit(one, topic="ahu-1", expected=3)
    resolver.submit(two, topic="ahu-1")
    resolver.submit(propose("model", add=[C]), topic="ahu-2", expected=1)  # closes, committed
    with caplog.at_level("WARNING", logger="kgc.resolution"):
        resolver.shutdown()
    [warning] = [r for r in caplog.records if "abandoned at shutdown" in r.getMessage()]
    assert opened.id in warning.getMessage() and "'ahu-1'" in warning.getMessage()
    assert warning.proposals == sorted([one.digest, two.digest])  # type: ignore[attr-defined]
    assert len(engine) == 1  # only ahu-2's C: the open round committed nothing
