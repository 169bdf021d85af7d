"""The engine's readers-writer lock: who counts as a guest of the writer."""

from __future__ import annotations

import threading

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
