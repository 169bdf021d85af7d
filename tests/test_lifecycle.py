"""Hook lifecycle: before/run/after, cancel, channels and views, priority, watchdog timeouts."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from kgc import (
    AfterEvent,
    BeforeEvent,
    Cancel,
    Channel,
    Delta,
    Hook,
    HookEvent,
    KnowledgeEngine,
    SparqlAsk,
    Veto,
)
from kgc.errors import HookDefinitionError
from kgc.hooks import load_hook_file

ANY_ADDED = "ASK { GRAPH <urn:kgc:delta:additions> { ?s ?p ?o } }"
X_HAS_P = "ASK { <urn:x> <urn:p> ?v }"
ADD_X = Delta.from_text('<urn:x> <urn:p> "1" .')


class Calls:
    """Counts and orders the callables' calls."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.lock = threading.Lock()

    def note(self, what: str) -> None:
        with self.lock:
            self.log.append(what)

    def before(self, name: str, answer: Cancel | None = None) -> object:
        def before(event: BeforeEvent) -> Cancel | None:
            self.note(f"{name}.before")
            return answer

        return before

    def run(self, name: str, answer: Veto | None = None) -> object:
        def run(event: HookEvent) -> Veto | None:
            self.note(f"{name}.run")
            return answer

        return run

    def after(self, name: str, seen: list[AfterEvent] | None = None) -> object:
        def after(event: AfterEvent) -> None:
            self.note(f"{name}.after")
            if seen is not None:
                seen.append(event)

        return after


def test_each_callable_runs_once_per_transaction_in_priority_order(engine: KnowledgeEngine) -> None:
    calls = Calls()
    for name, priority in (("low", 1), ("high", 9), ("mid", 5)):
        engine.hooks.register(
            Hook(
                name,
                SparqlAsk(ANY_ADDED),
                priority=priority,
                before=calls.before(name),  # type: ignore[arg-type]
                run=calls.run(name),  # type: ignore[arg-type]
                after=calls.after(name),  # type: ignore[arg-type]
            )
        )
    receipt = engine.apply(ADD_X)
    assert receipt.committed
    assert calls.log == [
        f"{n}.{step}" for n in ("high", "mid", "low") for step in ("before", "run", "after")
    ]
    assert [v.hook for v in receipt.hooks] == ["high", "mid", "low"]


def test_before_cancel_vetoes_with_its_reason_and_changes_nothing(engine: KnowledgeEngine) -> None:
    calls = Calls()
    seen: list[AfterEvent] = []
    engine.hooks.register(
        Hook(
            "gate",
            SparqlAsk(ANY_ADDED),
            before=calls.before("gate", Cancel("maintenance window")),  # type: ignore[arg-type]
            run=calls.run("gate"),  # type: ignore[arg-type]
            after=calls.after("gate", seen),  # type: ignore[arg-type]
        )
    )
    before = engine.state_digest
    receipt = engine.apply(ADD_X)
    assert (receipt.status, receipt.committed) == ("vetoed", False)
    assert (receipt.hooks[0].verdict, receipt.hooks[0].reason) == (
        "cancelled",
        "maintenance window",
    )
    assert receipt.vetoed_by == ["gate"]
    assert engine.state_digest == before and len(engine) == 0
    assert calls.log == ["gate.before", "gate.after"]  # run never called
    assert seen[0].verdict.verdict == "cancelled" and seen[0].result is None


def test_post_hook_runs_after_commit_and_never_on_a_veto(engine: KnowledgeEngine) -> None:
    calls = Calls()
    engine.hooks.register(
        Hook(
            "notify",
            SparqlAsk(ANY_ADDED),
            phase="post",
            before=calls.before("notify"),  # type: ignore[arg-type]
            run=calls.run("notify"),  # type: ignore[arg-type]
            after=calls.after("notify"),  # type: ignore[arg-type]
        )
    )
    engine.hooks.register(Hook("no-bad", SparqlAsk("ASK { <urn:bad> ?p ?o }")))
    assert engine.apply(ADD_X).committed
    assert calls.log == ["notify.before", "notify.run", "notify.after"]
    calls.log.clear()
    vetoed = engine.apply(Delta.from_text("<urn:bad> <urn:p> <urn:o> ."))
    assert vetoed.status == "vetoed"
    assert calls.log == []


def test_post_hook_cancelled_by_before_skips_run(engine: KnowledgeEngine) -> None:
    calls = Calls()
    engine.hooks.register(
        Hook(
            "notify",
            SparqlAsk(ANY_ADDED),
            phase="post",
            before=calls.before("notify", Cancel("muted")),  # type: ignore[arg-type]
            run=calls.run("notify"),  # type: ignore[arg-type]
        )
    )
    receipt = engine.apply(ADD_X)
    assert receipt.committed  # a post hook cannot veto
    assert calls.log == ["notify.before"]
    assert [(v.hook, v.verdict, v.reason) for v in receipt.hooks] == [
        ("notify", "cancelled", "muted")
    ]


def test_a_hung_run_callable_times_out_and_the_engine_goes_on(engine: KnowledgeEngine) -> None:
    release = threading.Event()

    def hang(event: HookEvent) -> Veto | None:
        release.wait(30)
        return None

    engine.hooks.register(Hook("hang", SparqlAsk(ANY_ADDED), run=hang, timeout_ms=100))
    t = time.perf_counter()
    receipt = engine.apply(ADD_X)
    took = time.perf_counter() - t
    release.set()
    assert took < 5, f"apply waited {took:.1f} s for a hook with a 100 ms limit"
    assert (receipt.status, receipt.committed) == ("timeout", False)
    assert receipt.hooks[0].verdict == "timeout"
    assert "abandoned" in receipt.hooks[0].reason
    assert len(engine) == 0
    engine.hooks.remove("hang")
    assert engine.apply(ADD_X).committed


def test_lenient_mode_records_a_failing_hook_and_commits() -> None:
    engine = KnowledgeEngine(strict_mode=False)

    def broken(event: BeforeEvent) -> Cancel | None:
        raise RuntimeError("lookup service down")

    engine.hooks.register(Hook("flaky", SparqlAsk(ANY_ADDED), before=broken))
    receipt = engine.apply(ADD_X)
    assert receipt.committed
    assert receipt.hooks[0].verdict == "error"
    assert "lookup service down" in receipt.hooks[0].reason


def test_strict_mode_refuses_when_a_before_callable_fails(engine: KnowledgeEngine) -> None:
    def broken(event: BeforeEvent) -> Cancel | None:
        raise RuntimeError("lookup service down")

    engine.hooks.register(Hook("flaky", SparqlAsk(ANY_ADDED), before=broken))
    receipt = engine.apply(ADD_X)
    assert (receipt.status, receipt.committed) == ("error", False)
    assert "flaky" in (receipt.error or "") and "lookup service down" in (receipt.error or "")
    assert len(engine) == 0


def test_a_failing_after_callable_is_recorded_as_the_hooks_error(engine: KnowledgeEngine) -> None:
    def broken(event: AfterEvent) -> None:
        raise ValueError("audit sink full")

    engine.hooks.register(Hook("audit", SparqlAsk(X_HAS_P), after=broken))
    receipt = engine.apply(Delta.from_text("<urn:y> <urn:p> <urn:o> ."))
    assert receipt.status == "error"
    assert receipt.hooks[0].reason == "after: ValueError: audit sink full"


def test_run_reads_the_proposed_state_through_the_engine(engine: KnowledgeEngine) -> None:
    seen: list[object] = []

    def look(event: HookEvent) -> Veto | None:
        seen.append(engine.query(X_HAS_P))
        return Veto("looked")

    engine.hooks.register(Hook("look", SparqlAsk(ANY_ADDED), run=look, timeout_ms=5000))
    receipt = engine.apply(ADD_X)
    assert seen == [True]  # the staged addition, not a deadlock on the writer's lock
    assert receipt.status == "vetoed" and engine.query(X_HAS_P) is False


def test_apply_from_inside_a_hook_is_refused_not_deadlocked(engine: KnowledgeEngine) -> None:
    def nested(event: HookEvent) -> Veto | None:
        engine.apply(Delta.from_text("<urn:z> <urn:p> <urn:o> ."))
        return None

    engine.hooks.register(Hook("nested", SparqlAsk(ANY_ADDED), run=nested, timeout_ms=5000))
    receipt = engine.apply(ADD_X)
    assert receipt.status == "error"
    assert "TransactionError" in receipt.hooks[0].reason
    assert engine.query("ASK { <urn:z> ?p ?o }") is False


def test_view_before_reads_the_state_before_the_change(engine: KnowledgeEngine) -> None:
    # Fires when x has no value yet: a "first value only" rule, vetoing overwrites.
    engine.hooks.register(
        Hook(
            "no-overwrite",
            SparqlAsk(X_HAS_P),
            channel=Channel(view="before"),
            message="x already has a value",
        )
    )
    assert engine.apply(ADD_X).committed
    again = engine.apply(Delta.from_text('<urn:x> <urn:p> "2" .'))
    assert again.status == "vetoed" and "already has a value" in again.hooks[0].reason


def test_view_delta_sees_only_the_changed_quads(engine: KnowledgeEngine) -> None:
    engine.apply(Delta.from_text("<urn:old> <urn:p> <urn:o> ."))
    any_triple = "ASK { ?s ?p ?o FILTER(?s = <urn:old>) }"
    engine.hooks.register(Hook("sees-old", SparqlAsk(any_triple), channel=Channel(view="delta")))
    assert engine.apply(ADD_X).committed  # urn:old exists in the graph, not in the delta
    touched = engine.apply(Delta.from_text("<urn:old> <urn:q> <urn:o> ."))
    assert touched.status == "vetoed"


def test_channel_graphs_limit_what_a_hook_sees(engine: KnowledgeEngine) -> None:
    engine.hooks.register(
        Hook("site-a", SparqlAsk(ANY_ADDED), channel=Channel(graphs=("urn:site:a",)))
    )
    other = engine.apply(Delta.from_text("<urn:x> <urn:p> <urn:o> <urn:site:b> ."))
    assert other.committed
    mine = engine.apply(Delta.from_text("<urn:x> <urn:p> <urn:o> <urn:site:a> ."))
    assert mine.status == "vetoed"


def test_channel_default_graph_is_the_union_of_its_graphs(engine: KnowledgeEngine) -> None:
    engine.apply(Delta.from_text("<urn:x> <urn:p> <urn:o> <urn:site:b> ."))
    engine.hooks.register(
        Hook("x-in-a", SparqlAsk(X_HAS_P), channel=Channel(graphs=("urn:site:a", "default")))
    )
    assert engine.apply(Delta.from_text("<urn:y> <urn:p> <urn:o> <urn:site:a> .")).committed
    in_a = engine.apply(Delta.from_text("<urn:x> <urn:p> <urn:o> <urn:site:a> ."))
    assert in_a.status == "vetoed"


def test_channel_in_a_hook_file(tmp_path: Path) -> None:
    query = tmp_path / "q.rq"
    query.write_text(ANY_ADDED)
    import hashlib

    digest = hashlib.sha256(query.read_bytes()).hexdigest()
    hook_file = tmp_path / "a.hook.toml"
    hook_file.write_text(
        f"""name = "site-a"
[channel]
graphs = ["urn:site:a"]
view = "delta"
[when]
kind = "sparql-ask"
[when.ref]
uri = "file:q.rq"
sha256 = "{digest}"
media_type = "application/sparql-query"
"""
    )
    hook = load_hook_file(hook_file)
    assert hook.channel == Channel(("urn:site:a",), "delta")
    hook_file.write_text(hook_file.read_text().replace('"delta"', '"sideways"'))
    with pytest.raises(HookDefinitionError, match=r"channel\.view"):
        load_hook_file(hook_file)
    hook_file.write_text(hook_file.read_text().replace('"sideways"', '"after"'))
    hook_file.write_text(hook_file.read_text().replace('"urn:site:a"', '"not an iri"'))
    with pytest.raises(HookDefinitionError, match=r"a\.hook\.toml: channel 'graphs'"):
        load_hook_file(hook_file)


def test_no_callable_runs_twice_under_concurrent_writers(engine: KnowledgeEngine) -> None:
    calls = Calls()
    engine.hooks.register(
        Hook(
            "count",
            SparqlAsk(ANY_ADDED),
            before=calls.before("count"),  # type: ignore[arg-type]
            after=calls.after("count"),  # type: ignore[arg-type]
        )
    )
    engine.hooks.register(
        Hook("veto", SparqlAsk("ASK { GRAPH <urn:kgc:delta:additions> { ?s <urn:bad> ?o } }"))
    )

    def writer(k: int) -> None:
        for i in range(20):
            p = "urn:bad" if i % 3 == 0 else "urn:p"
            engine.apply(Delta.from_text(f"<urn:s{k}-{i}> <{p}> <urn:o> ."))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(calls.log) == {"count.before": 80, "count.after": 80}


def test_window_on_a_channel_counts_history_inside_its_graphs_only() -> None:
    from kgc.hooks import Window

    engine = KnowledgeEngine()
    retire = "SELECT ?s WHERE { GRAPH <urn:kgc:delta:removals> { ?s <urn:p> ?o } }"
    engine.hooks.register(
        Hook(
            "burst-in-a",
            Window(retire, 600, ">", 2, "sliding", "rows"),
            channel=Channel(graphs=("urn:site:a",)),
        )
    )
    for i in range(3):
        for site in ("a", "b"):
            engine.apply(Delta.from_text(f"<urn:s{i}> <urn:p> <urn:o> <urn:site:{site}> ."))
    for i in range(2):  # two removals in site b, two in site a: neither exceeds 2 alone
        engine.apply(Delta.from_text(removals=f"<urn:s{i}> <urn:p> <urn:o> <urn:site:b> ."))
        assert engine.apply(
            Delta.from_text(removals=f"<urn:s{i}> <urn:p> <urn:o> <urn:site:a> .")
        ).committed
    third = engine.apply(Delta.from_text(removals="<urn:s2> <urn:p> <urn:o> <urn:site:a> ."))
    assert third.status == "vetoed"


def test_runbook_names_max_hooks_and_strict_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from kgc.errors import HookError

    monkeypatch.setenv("MAX_HOOKS", "2")
    monkeypatch.setenv("STRICT_MODE", "false")
    engine = KnowledgeEngine()
    engine.hooks.register(Hook("one", SparqlAsk(X_HAS_P)))
    engine.hooks.register(Hook("two", SparqlAsk(X_HAS_P)))
    with pytest.raises(HookError, match="limit of 2 hooks"):
        engine.hooks.register(Hook("three", SparqlAsk(X_HAS_P)))
    assert engine.settings.strict_mode is False
    monkeypatch.setenv("KGC_MAX_HOOKS", "3")  # the kgc name wins over the runbook's
    assert KnowledgeEngine().hooks.max_hooks == 3
