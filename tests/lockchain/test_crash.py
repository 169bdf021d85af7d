"""Kill the writer with SIGKILL at random points of a load, 205 times, and check every restart.

Two lanes run side by side, each one long-lived lockchain that every restart continues: ``plain``
(no git anchoring, 120 kills) and ``anchored`` (git anchoring in batches of 4, receipts signed
with Ed25519, 85 kills). The writer is ``crash_worker.py`` (a fresh forked process per run; see its
docstring). After each kill, a copy of the store and journal is recovered here
(``TransactionManager`` on a ``Journal``) and checked, and the next writer recovers the originals
itself and must start exactly where the copy ended:

1. recovery succeeds, and the graph's digest equals the last committed receipt's ``state_after``
   and a from-scratch recompute;
2. every acknowledged sequence number is in the journal with the acknowledged ``state_after`` and
   verdict; the journal holds exactly the acknowledged receipts and those earlier checks found
   (sealed but not yet acknowledged at an earlier kill), plus at most the one in flight at this
   kill, complete (it parses, with its hash and delta); none of them ever goes;
3. nothing unacknowledged is applied: the graph's digest equals a replay of the journal's
   committed deltas, and every receipt's ``state_after`` is the one the deterministic stream
   predicts, so the graph is the stream's state at the last receipt and no further;
4. the chain verifies: seq, prev and hash links here, and ``verify_lockchain`` on the lane's
   directory (journal, git anchor, witness) every few kills and with replay at the end;
5. the next writer starts from the recovered head (its READY line) and its receipts chain on.

Kills are aimed four ways (right after an ACK, the writer idling up to ``ACK_PAUSE_MS`` there;
while a delta is staged, inside the hook, which sleeps up to ``SPIN_MS`` to widen that window;
after a random delay from the writer's start, which often lands in recovery; after a random delay
once it is writing) and classified by where they really landed, read from the journal's tail.
Run with ``-s`` to see the tally.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kgc import KnowledgeEngine
from kgc.hooks.manager import HookManager
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.journal import JOURNAL_FILE, Journal
from kgc.lockchain.layout import GIT_DIR, REF
from kgc.lockchain.records import GENESIS, receipt_hash
from kgc.lockchain.signing import SigningKey
from kgc.lockchain.verify import verify_lockchain
from kgc.rdf.digest import StateDigest
from kgc.store.oxigraph import OxigraphStore
from kgc.transaction import TransactionManager

sys.path.insert(0, str(Path(__file__).parent))
import crash_worker
from crash_harness import (
    EMPTY,
    MODES,
    Lane,
    Ledger,
    WorkerServer,
    kill_once,
    landing,
    record_acks,
    stale_ref_lock,
)

SEED = 20240603
VERIFY_EVERY = 10


# The checks after a restart -----------------------------------------------------------------


def check_restart(ledger: Ledger, lane: Lane, scratch: Path) -> None:
    """Recover a copy of the lane's store and journal here; check points 1-4 of the module doc."""
    shutil.rmtree(scratch, ignore_errors=True)
    store_dir, chain_dir = scratch / "store", scratch / "lockchain"
    if lane.store.exists():
        shutil.copytree(lane.store, store_dir)
    chain_dir.mkdir(parents=True)
    shutil.copy2(lane.lockchain / JOURNAL_FILE, chain_dir / JOURNAL_FILE)
    store = OxigraphStore(store_dir)
    journal = Journal(chain_dir)
    try:
        manager = TransactionManager(store, HookManager(), journal=journal)  # 1. recovery
        state = manager.state_digest
        assert (
            state == manager.recompute_state_digest() == (journal.last_committed_state() or EMPTY)
        )
        receipts = [r for r in journal.records() if r["type"] == "receipt"]
        staged = [q for q in store if str(q.graph_name).startswith("<urn:kgc:delta:")]
        assert not staged, f"recovery left staged delta quads: {staged[:3]}"
    finally:
        journal.close()
        store.flush()
    _check_receipts(ledger, receipts)
    assert _replayed(receipts) == state, "the graph holds changes the journal does not"  # 3.
    assert state == (ledger.op(len(receipts)).state_after if receipts else EMPTY)
    _check_links(receipts)  # 4.
    ledger.head, ledger.head_state = len(receipts), state


def _check_receipts(ledger: Ledger, receipts: list[dict[str, Any]]) -> None:
    seqs = [r["seq"] for r in receipts]
    assert seqs == list(range(1, len(seqs) + 1)), f"sequence numbers not contiguous: {seqs[-5:]}"
    # 2. the acknowledged ones and those an earlier check found, and at most one more (the one
    # in flight when this writer was killed; one sealed before an earlier kill is in ``head``)
    known = ledger.known
    assert len(seqs) in (known, known + 1), f"{len(seqs)} receipts; {known} acknowledged or known"
    for record in receipts:
        body, op = record["receipt"], ledger.op(record["seq"])
        assert body["state_after"] == op.state_after, f"receipt {op.seq}: wrong state_after"
        assert body["committed"] is not op.vetoed, f"receipt {op.seq}: wrong verdict"
        assert record["hash"] and set(record["delta"]) == {"additions", "removals"}
    for seq, (state, committed) in ledger.acks.items():
        body = receipts[seq - 1]["receipt"]
        assert (body["state_after"], body["committed"]) == (state, committed), f"ACK {seq} lost"


def _replayed(receipts: list[dict[str, Any]]) -> str:
    lines: set[str] = set()
    for record in receipts:
        if record["receipt"]["committed"]:
            lines.update(record["delta"]["additions"])
            lines.difference_update(record["delta"]["removals"])
    return StateDigest.of(lines).hexdigest()


def _check_links(receipts: list[dict[str, Any]]) -> None:
    prev = GENESIS
    for record in receipts:
        body = record["receipt"]
        assert body["seq"] == record["seq"] and body["prev"] == prev, f"link {record['seq']}"
        assert receipt_hash(canonical_json(body)) == record["hash"], f"hash {record['seq']}"
        prev = record["hash"]


def _verify(lane: Lane, *, replay: bool = False) -> None:
    report = verify_lockchain(lane.lockchain, replay=replay)
    report.raise_for_problems()


# The test ------------------------------------------------------------------------------------


def run_lane(lane: Lane, seed: int) -> Ledger:
    rng, ledger, server = random.Random(seed), Ledger(), WorkerServer()
    lane.root.mkdir(parents=True)
    if lane.signed:
        lane.key.write_bytes(SigningKey.generate().to_pem())
        lane.key.chmod(0o600)
    try:
        for n in range(lane.kills):
            mode = MODES[n % len(MODES)]
            lines = kill_once(server, lane, mode, rng)
            ledger.stale_ref_locks += stale_ref_lock(lane)
            record_acks(ledger, lines)
            ledger.landings[mode, landing(ledger, lines, lane.lockchain / JOURNAL_FILE)] += 1
            check_restart(ledger, lane, lane.root / "check")
            if n % VERIFY_EVERY == VERIFY_EVERY - 1:
                _verify(lane)
        _finish(server, lane, ledger)
    finally:
        server.close()
    return ledger


def _finish(server: WorkerServer, lane: Lane, ledger: Ledger) -> None:
    """A last writer that ends cleanly (close() anchors what is pending); verify with replay."""
    pid, lines = server.start(lane, max_ops=20)
    assert server.wait(pid, lines) == 0, lines
    record_acks(ledger, lines)
    check_restart(ledger, lane, lane.root / "check")
    assert ledger.acked == ledger.head, "a clean run ACKs everything it seals"
    report = verify_lockchain(lane.lockchain, replay=True)
    report.raise_for_problems()
    assert report.final_state == ledger.head_state
    if lane.signed:
        assert report.signatures == ledger.head, report.summary()
    if lane.batch:
        assert report.anchored_seq == ledger.head, f"anchor lags: {report.summary()}"


def _tally(lanes: list[Lane], ledgers: list[Ledger], took: float) -> str:
    lines = [f"crash test: {sum(lane.kills for lane in lanes)} kills in {took:.1f} s"]
    for lane, ledger in zip(lanes, ledgers, strict=True):
        vetoed = sum(ledger.op(s).vetoed for s in range(1, ledger.head + 1))
        lines.append(
            f"  {lane.name}: {lane.kills} kills, {ledger.head} receipts ({vetoed} vetoed), "
            f"{ledger.stale_ref_locks} kills left a git ref lock behind"
        )
    total = sum((ledger.landings for ledger in ledgers), Counter[tuple[str, str]]())
    lines += [f"    {mode:20} -> {where:30} {n}" for (mode, where), n in sorted(total.items())]
    return "\n".join(lines)


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_acknowledged(tmp_path: Path) -> None:
    lanes = [
        Lane("plain", None, 120, tmp_path / "plain"),
        Lane("anchored", 4, 85, tmp_path / "git", signed=True),
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(lanes)) as pool:
        ledgers = list(pool.map(run_lane, lanes, [SEED, SEED + 1]))
    print("\n" + _tally(lanes, ledgers, time.perf_counter() - started))
    landed = Counter[str]()
    for ledger in ledgers:
        for (_, where), n in ledger.landings.items():
            landed[where] += n
    assert sum(landed.values()) >= 200
    assert sum(n for where, n in landed.items() if where.startswith("in flight")) >= 20, landed
    assert landed["between transactions"] >= 20 and landed["start or recovery"] >= 5, landed


def test_a_stale_ref_lock_does_not_stop_anchoring(tmp_path: Path) -> None:
    settings = {"lockchain_path": tmp_path / "lc", "anchor_batch_size": 1}
    with KnowledgeEngine(store_path=tmp_path / "a", **settings) as engine:
        engine.apply(engine.delta([crash_worker.op_quad(1)]))
    # What SIGKILL inside libgit2's ref update leaves: the lock file, empty.
    (tmp_path / "lc" / GIT_DIR / f"{REF}.lock").write_bytes(b"")
    engine = KnowledgeEngine(store_path=tmp_path / "b", **settings)
    engine.apply(engine.delta([crash_worker.op_quad(2)]))
    assert engine.anchorer is not None and engine.journal is not None
    try:
        engine.anchorer.close(timeout=2.0)
    finally:
        engine.journal.close()
    assert verify_lockchain(tmp_path / "lc").anchored_seq == 2


def test_a_short_write_does_not_tear_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``os.write`` may write less than asked (always past 2 GiB, on a full disk); the journal
    must finish the record rather than leave half a line that the next record runs on from."""
    real_write = os.write
    monkeypatch.setattr(
        "kgc.lockchain.journal.os.write", lambda fd, data: real_write(fd, bytes(data[:100]))
    )
    with KnowledgeEngine(store_path=tmp_path / "s", lockchain_path=tmp_path / "lc") as engine:
        for n in range(3):
            assert engine.apply(engine.delta([crash_worker.op_quad(n)])).committed
    monkeypatch.undo()
    records = list(Journal(tmp_path / "lc").records())
    assert [r["seq"] for r in records if r["type"] == "receipt"] == [1, 2, 3]


def test_a_failed_receipt_write_leaves_no_trace_and_the_chain_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (or EIO) while sealing: apply raises, the graph and the journal are as before,
    and the next transaction takes the same sequence number (no duplicate, no torn line)."""
    settings = {"store_path": tmp_path / "s", "lockchain_path": tmp_path / "lc"}
    engine = KnowledgeEngine(**settings, git_anchoring=False)
    engine.apply(engine.delta([crash_worker.op_quad(1)]))
    before = engine.state_digest

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("kgc.lockchain.journal.os.fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        engine.apply(engine.delta([crash_worker.op_quad(2)]))
    monkeypatch.undo()
    assert engine.state_digest == engine.transactions.recompute_state_digest() == before
    assert engine.apply(engine.delta([crash_worker.op_quad(3)])).seq == 2
    engine.close()
    assert engine.journal is not None
    receipts = [r for r in engine.journal.records() if r["type"] == "receipt"]
    assert [r["seq"] for r in receipts] == [1, 2]
    report = verify_lockchain(tmp_path / "lc", replay=True)
    report.raise_for_problems()
    assert report.final_state == engine.state_digest
