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

Kills are aimed four ways (right after an ACK; while a delta is staged, inside the hook, which
sleeps up to ``SPIN_MS`` to widen that window; after a random delay from the writer's start, which
often lands in recovery; after a random delay once it is writing) and classified by where they
really landed, read from the journal's tail.
Run with ``-s`` to see the tally.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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

WORKER = Path(crash_worker.__file__)
EMPTY = StateDigest().hexdigest()
SPIN_MS = 3.0
RANDOM_DELAY_S = 0.3
RUNNING_DELAY_S = 0.05
WAIT_S = 60.0
SEED = 20240603
VERIFY_EVERY = 10
MODES = ("after ACK", "mid-staging", "random from start", "random while running")


@dataclass
class Lane:
    name: str
    batch: int | None  # git anchoring batch size; None: no anchoring
    kills: int
    root: Path
    signed: bool = False

    @property
    def key(self) -> Path:
        return self.root / "signing-key.pem"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def lockchain(self) -> Path:
        return self.root / "lockchain"


@dataclass
class Ledger:
    """What the test knows: the stream's predictions and every acknowledgement seen so far."""

    ops: list[crash_worker.Operation] = field(default_factory=list)
    stream: Any = field(default_factory=crash_worker.operations)
    acks: dict[int, tuple[str, bool]] = field(default_factory=dict)
    head: int = 0
    head_state: str = EMPTY
    landings: Counter[tuple[str, str]] = field(default_factory=Counter)
    stale_ref_locks: int = 0

    def op(self, seq: int) -> crash_worker.Operation:
        while len(self.ops) < seq:
            self.ops.append(next(self.stream))
        return self.ops[seq - 1]

    @property
    def acked(self) -> int:
        return max(self.acks, default=0)

    @property
    def known(self) -> int:
        """Receipts acknowledged, or recovered by an earlier check: none of them may go."""
        return max(self.acked, self.head)


class WorkerServer:
    """``crash_worker.py serve`` in a process of its own, its stdout read by a thread."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("CLOSED")

    def next(self) -> str:
        try:
            line = self.lines.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"the crash worker said nothing for {WAIT_S} s") from None
        assert not line.startswith(("BAD", "CLOSED")), line
        return line

    def start(self, lane: Lane, *, max_ops: int = 1_000_000) -> tuple[int, list[str]]:
        """Fork one writer; return its pid and the lines it wrote before the pid arrived."""
        anchor = f" --anchor {lane.batch}" if lane.batch else ""
        anchor += f" --key {lane.key}" if lane.signed else ""
        assert self.proc.stdin is not None
        self.proc.stdin.write(
            f"run {lane.store} {lane.lockchain}{anchor} --spin-ms {SPIN_MS} --max-ops {max_ops}\n"
        )
        early = []
        while not (line := self.next()).startswith("PID "):
            early.append(line)
        return int(line.split()[1]), early

    def wait(self, pid: int, lines: list[str]) -> int:
        """Collect the writer's lines until it is reaped; return its wait status."""
        while not (line := self.next()).startswith("EXIT "):
            lines.append(line)
        assert int(line.split()[1]) == pid, line
        return int(line.split()[2])

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=WAIT_S)
        self.reader.join(timeout=WAIT_S)
        self.proc.stdout.close()


# One kill ------------------------------------------------------------------------------------


def kill_once(server: WorkerServer, lane: Lane, mode: str, rng: random.Random) -> list[str]:
    """Start a writer, kill it as ``mode`` says, and return every line it wrote."""
    pid, lines = server.start(lane)
    if mode == "random from start":
        time.sleep(rng.uniform(0.0, RANDOM_DELAY_S))
    else:
        wanted = {"after ACK": "ACK ", "mid-staging": "STAGE ", "random while running": "READY"}
        count, read = (rng.randint(1, 4) if mode != "random while running" else 1), 0
        while count:
            if read == len(lines):
                lines.append(server.next())
            line, read = lines[read], read + 1
            assert not line.startswith("EXIT"), f"the writer ended before it was killed: {line}"
            count -= line.startswith(wanted[mode])
        if mode == "mid-staging":
            time.sleep(rng.uniform(0.0, SPIN_MS) / 1000.0)
        elif mode == "random while running":
            time.sleep(rng.uniform(0.0, RUNNING_DELAY_S))
    os.kill(pid, signal.SIGKILL)
    status = server.wait(pid, lines)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    return lines


def landing(ledger: Ledger, lines: list[str], journal: Path) -> str:
    """Where the kill struck, judged from the journal's tail (read before any recovery)."""
    if not any(line.startswith("READY") for line in lines):
        return "start or recovery"
    data = journal.read_bytes() if journal.exists() else b""
    if data and not data.endswith(b"\n"):
        return "torn journal record"
    last = json.loads(data.splitlines()[-1]) if data else {"type": "none", "seq": 0}
    if last["type"] == "receipt" and last["seq"] > ledger.known:
        return "sealed, not yet acknowledged"
    if last["type"] == "intent" and last["seq"] > ledger.known:
        if f"HOOKED {last['seq']}" in lines:
            return "in flight: revert or commit"
        return "in flight: in the hook" if f"STAGE {last['seq']}" in lines else "in flight: staging"
    return "between transactions"


def _stale_ref_lock(lane: Lane) -> int:
    """1 if the kill left libgit2's ``<ref>.lock`` behind (killed inside a ref update).

    The next writer's anchorer must clear it (it alone moves the ref, under ``anchor.lock``);
    the lane's final check that everything got anchored fails if it does not.
    """
    return int((lane.lockchain / GIT_DIR / f"{REF}.lock").exists())


def record_acks(ledger: Ledger, lines: list[str]) -> None:
    for line in lines:
        if line.startswith("ACK "):
            _, seq, state, committed = line.split()
            ledger.acks[int(seq)] = (state, committed == "1")
        elif line.startswith("READY "):
            _, seq, state = line.split()
            # 5. the writer restarted exactly where the previous check's recovery ended
            assert (int(seq), state) == (ledger.head, ledger.head_state), line


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
            ledger.stale_ref_locks += _stale_ref_lock(lane)
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
