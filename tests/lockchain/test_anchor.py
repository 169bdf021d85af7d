"""The anchorer on real git repositories, fed by a real engine's journal.

Case L9 (concurrent anchoring loses nothing): 20 anchorers in 20 threads, and in 20 processes,
anchor the same 20 receipts into one repository at once.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2
import pytest
from lockchain_forge import KEY, build_chain, delta_for, journal_lines

from kgc.errors import AnchorError
from kgc.lockchain.anchor import Anchorer
from kgc.lockchain.journal import Journal
from kgc.lockchain.layout import GIT_DIR, REF, WITNESS_FILE, anchor_lock, history, read_batch
from kgc.lockchain.verify import verify_lockchain
from kgc.store.oxigraph import OxigraphStore
from kgc.transaction import TransactionManager


def batches_of(directory: Path) -> list[tuple[int, int]]:
    repo = pygit2.Repository(str(directory / GIT_DIR))
    head = str(repo.references[REF].target)
    return [(b.first_seq, b.last_seq) for b in (read_batch(repo, c) for c in history(repo, head))]


@contextmanager
def engine(directory: Path, batch_size: int) -> Iterator[tuple[TransactionManager, Anchorer]]:
    journal = Journal(directory, key=KEY, fsync=False)
    manager = TransactionManager(OxigraphStore(), journal=journal)
    anchorer = Anchorer(directory, key=KEY, batch_size=batch_size)
    manager.on_receipt.append(lambda _r: anchorer.notify())
    try:
        yield manager, anchorer
    finally:
        anchorer.close()
        journal.close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_batch_size_1_makes_one_commit_per_receipt(tmp_path: Path) -> None:
    build_chain(tmp_path, n=5, batch_size=1)

    assert batches_of(tmp_path) == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    assert verify_lockchain(tmp_path).ok


def test_full_batches_in_the_background_partial_batch_on_flush(tmp_path: Path) -> None:
    with engine(tmp_path, batch_size=100) as (manager, anchorer):
        for i in range(130):
            manager.apply(delta_for(i), "alice")
        assert wait_for(lambda: anchorer.anchored_seq == 100)
        assert anchorer.lag == 30
        anchorer.flush()
        assert anchorer.lag == 0

    assert batches_of(tmp_path) == [(1, 100), (101, 130)]
    report = verify_lockchain(tmp_path, replay=True)
    assert report.ok and report.receipts == 130 and report.lag == 0


def test_apply_never_waits_for_the_anchorer(tmp_path: Path) -> None:
    with engine(tmp_path, batch_size=1) as (manager, anchorer), anchor_lock(tmp_path):
        # The anchorer is stuck on the lock this test holds; apply goes on regardless.
        started = time.perf_counter()
        for i in range(20):
            manager.apply(delta_for(i), "alice")
        took = time.perf_counter() - started
        assert anchorer.lag == 20
        assert took < 5.0
    assert verify_lockchain(tmp_path).anchored_seq == 20


def test_lag_is_visible_and_anchoring_catches_up_after_a_failure(tmp_path: Path) -> None:
    git, parked = tmp_path / GIT_DIR, tmp_path / "git.parked"
    with engine(tmp_path, batch_size=1) as (manager, anchorer):
        manager.apply(delta_for(0), "alice")
        assert wait_for(lambda: anchorer.anchored_seq == 1)

        git.rename(parked)
        git.write_text("not a repository")  # every git write now fails
        for i in range(1, 6):
            manager.apply(delta_for(i), "alice")
        assert wait_for(lambda: anchorer.last_error is not None)
        assert anchorer.lag == 5

        git.unlink()
        parked.rename(git)
        # The state advances before the error is cleared: wait for both.
        assert wait_for(lambda: anchorer.lag == 0 and anchorer.last_error is None)

    report = verify_lockchain(tmp_path, replay=True)
    assert report.ok and report.anchored_seq == 6


def test_flush_reports_what_is_left_when_git_stays_broken(tmp_path: Path) -> None:
    git, parked = tmp_path / GIT_DIR, tmp_path / "git.parked"
    with engine(tmp_path, batch_size=1) as (manager, anchorer):
        manager.apply(delta_for(0), "alice")
        anchorer.flush()
        git.rename(parked)
        git.write_text("not a repository")
        manager.apply(delta_for(1), "alice")
        with pytest.raises(AnchorError, match=r"not all anchored after 0.2 s \(anchored up to 1\)"):
            anchorer.flush(timeout=0.2)
        git.unlink()
        parked.rename(git)
    assert verify_lockchain(tmp_path).anchored_seq == 2


def test_a_deleted_ref_stops_anchoring_loudly(tmp_path: Path) -> None:
    with engine(tmp_path, batch_size=1) as (manager, anchorer):
        manager.apply(delta_for(0), "alice")
        anchorer.flush()
        repo = pygit2.Repository(str(tmp_path / GIT_DIR))
        head = repo.references[REF].target
        repo.references.delete(REF)
        manager.apply(delta_for(1), "alice")
        with pytest.raises(AnchorError, match="refs/kgc/lockchain is gone"):
            anchorer.flush(timeout=0.1)
        repo.references.create(REF, head)


def test_a_new_anchorer_resumes_from_git(tmp_path: Path) -> None:
    build_chain(tmp_path, n=7, batch_size=3)
    with engine(tmp_path, batch_size=3) as (manager, anchorer):
        assert anchorer.anchored_seq == 7
        for i in range(7, 12):
            manager.apply(delta_for(i), "alice")

    assert batches_of(tmp_path) == [(1, 3), (4, 6), (7, 7), (8, 10), (11, 12)]
    assert verify_lockchain(tmp_path, replay=True).ok


def test_a_receipt_signed_by_an_unknown_key_is_refused(tmp_path: Path) -> None:
    build_chain(tmp_path, n=2, batch_size=1)
    shutil.rmtree(tmp_path / GIT_DIR)
    (tmp_path / WITNESS_FILE).unlink()

    with Anchorer(tmp_path, key=None, batch_size=1) as anchorer:
        with pytest.raises(AnchorError, match="whose public key this anchorer was not given"):
            anchorer.flush(timeout=0.1)
        anchorer.public_keys[next(iter(anchorer_keys()))] = KEY.public_key_hex
    assert verify_lockchain(tmp_path).ok


def anchorer_keys() -> dict[str, str]:
    from kgc.lockchain.records import key_id

    return {key_id(KEY): KEY.public_key_hex}


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(AnchorError, match="batch_size"):
        Anchorer(tmp_path, batch_size=0)


# Case L9 --------------------------------------------------------------------------------------


def unanchored_journal(directory: Path, n: int = 20) -> None:
    journal = Journal(directory, key=KEY, fsync=False)
    manager = TransactionManager(OxigraphStore(), journal=journal)
    for i in range(n):
        manager.apply(delta_for(i), f"writer-{i}")
    journal.close()


def anchor_once(directory: Path, start: threading.Event | None = None) -> None:
    if start is not None:
        start.wait()
    with Anchorer(directory, key=KEY, batch_size=1) as anchorer:
        anchorer.flush()


def assert_anchored_once(directory: Path, n: int = 20) -> None:
    assert batches_of(directory) == [(seq, seq) for seq in range(1, n + 1)]
    witnessed = (directory / WITNESS_FILE).read_text().splitlines()
    assert len(witnessed) == n
    report = verify_lockchain(directory, replay=True)
    assert report.ok, report.summary()
    assert report.anchored_seq == n and report.lag == 0


def test_l9_twenty_threads_anchor_the_same_receipts_at_once(tmp_path: Path) -> None:
    unanchored_journal(tmp_path)
    start = threading.Event()
    threads = [threading.Thread(target=anchor_once, args=(tmp_path, start)) for _ in range(20)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(timeout=60)

    assert_anchored_once(tmp_path)


def _process(directory: str, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    anchor_once(Path(directory))


def test_l9_twenty_processes_anchor_the_same_receipts_at_once(tmp_path: Path) -> None:
    unanchored_journal(tmp_path)
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_process, args=(str(tmp_path), start)) for _ in range(20)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)

    assert [w.exitcode for w in workers] == [0] * 20
    assert_anchored_once(tmp_path)


def test_l9_twenty_threads_apply_while_anchoring(tmp_path: Path) -> None:
    with engine(tmp_path, batch_size=1) as (manager, _anchorer):
        threads = [
            threading.Thread(target=manager.apply, args=(delta_for(i), f"thread-{i}"))
            for i in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert_anchored_once(tmp_path)
    assert sum(b'"type":"receipt"' in line for line in journal_lines(tmp_path)) == 20
    assert os.path.getsize(tmp_path / "anchor.lock") == 0


def test_a_ref_lock_left_by_a_killed_anchorer_is_cleared(tmp_path: Path) -> None:
    build_chain(tmp_path, n=2, batch_size=1)
    (tmp_path / GIT_DIR / f"{REF}.lock").write_bytes(b"")  # what SIGKILL mid-update leaves
    with engine(tmp_path, batch_size=1) as (manager, anchorer):
        manager.apply(delta_for(2), "alice")
        anchorer.flush(timeout=2.0)

    assert not (tmp_path / GIT_DIR / f"{REF}.lock").exists()
    assert verify_lockchain(tmp_path).anchored_seq == 3
