"""The engine's readers-writer lock: who counts as a guest of the writer."""

from __future__ import annotations

import threading

from kgc import Delta, Hook, HookEvent, KnowledgeEngine, Receipt, SparqlAsk, Veto
from kgc.errors import TransactionError
from kgc.locks import ReadWriteLock


def _finished_thread() -> threading.Thread:
    done = threading.Thread(target=lambda: None)
    done.start()
    done.join()
    return done


def test_a_thread_that_reuses_a_finished_guests_ident_may_still_write() -> None:
    # CI once failed here: a hook's watchdog thread ended, a new writer thread got its ident
    # before the lend was withdrawn, and the writer's apply() was refused as re-entrant.
    lock = ReadWriteLock()
    guest = _finished_thread()
    outcomes: list[str] = []

    def writer() -> None:
        if threading.get_ident() != guest.ident:
            return
        try:
            with lock.write():
                outcomes.append("wrote")
        except TransactionError as exc:
            outcomes.append(str(exc))

    with lock.lend(guest):
        for _ in range(200):  # the C library reuses a joined thread's ident within a few starts
            t = threading.Thread(target=writer)
            t.start()
            t.join()
            if outcomes:
                break
    assert outcomes, "no new thread reused the finished guest's ident in 200 starts"
    assert outcomes == ["wrote"]


def test_the_writer_and_its_live_guest_cannot_take_the_write_side_again() -> None:
    lock = ReadWriteLock()
    errors: list[str] = []
    with lock.write():
        try:
            with lock.write():
                pass
        except TransactionError:
            errors.append("writer")

        def guest_tries() -> None:
            try:
                with lock.write():
                    pass
            except TransactionError:
                errors.append("guest")

        guest = threading.Thread(target=guest_tries)
        with lock.lend(guest):
            guest.start()
            guest.join(5)
    assert errors == ["writer", "guest"]


def test_a_live_guest_reads_while_the_writer_holds_the_lock() -> None:
    lock = ReadWriteLock()
    seen: list[str] = []

    def guest_reads() -> None:
        with lock.read():
            seen.append("read")

    with lock.write():
        guest = threading.Thread(target=guest_reads)
        with lock.lend(guest):
            guest.start()
            guest.join(5)
    assert seen == ["read"]


def test_a_post_commit_callable_never_reads_another_writers_staged_change() -> None:
    # Post-commit callables ran with the lock lent to them although their writer had released
    # it: a read there went past writer B, which held the lock, and saw B's staged quads (and the
    # delta graphs) that B's pre-commit hook then vetoed. Found by review; 4 of 4 runs before.
    engine = KnowledgeEngine()
    in_post, b_staged, a_read = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def post_run(event: HookEvent) -> None:
        in_post.set()
        b_staged.wait(5)
        seen["b"] = engine.query("ASK { <urn:b> ?p ?o }")
        seen["staged"] = engine.query("ASK { GRAPH <urn:kgc:delta:additions> { ?s ?p ?o } }")
        seen["size"] = len(engine)
        a_read.set()

    def pre_run(event: HookEvent) -> Veto:
        b_staged.set()
        a_read.wait(1.0)  # A's read waits for this writer now, so this wait runs out
        return Veto("no b")

    added = "ASK { GRAPH <urn:kgc:delta:additions> { <urn:%s> ?p ?o } }"
    engine.hooks.register(
        Hook("P", SparqlAsk(added % "a"), phase="post", run=post_run, timeout_ms=5000)
    )
    engine.hooks.register(Hook("V", SparqlAsk(added % "b"), run=pre_run, timeout_ms=5000))
    receipts: list[Receipt] = []
    writer_a = threading.Thread(
        target=lambda: receipts.append(engine.apply(Delta.from_text('<urn:a> <urn:p> "1" .')))
    )
    writer_a.start()
    assert in_post.wait(5)
    vetoed = engine.apply(Delta.from_text('<urn:b> <urn:p> "1" .'))
    writer_a.join(10)

    assert vetoed.status == "vetoed"
    assert seen == {"b": False, "staged": False, "size": 1}
    assert [(v.hook, v.verdict) for v in receipts[0].effects] == [("P", "ran")]
    engine.close()
