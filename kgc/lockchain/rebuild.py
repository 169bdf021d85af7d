"""Recovery from the lockchain alone, and journal recovery of a store and lockchain on disk.

``rebuild_from_lockchain`` makes a new store from nothing but a lockchain: it checks the chain
(sequence numbers, ``prev`` links, each receipt's hash over its RFC 8785 form), replays every
committed delta in sequence order, records the last sequence number as applied, and recomputes the
state digest from the rebuilt store, which must equal the last committed receipt's ``state_after``.

``recover_dirs`` is what a restart does: open the store and the journal, let the
``TransactionManager`` replay what the store lacks and undo what was in flight, and recompute the
digest (the manager itself refuses with ``RecoveryError`` when it differs from the last receipt).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kgc.errors import JournalCorrupt, LockchainError, RestoreRefused
from kgc.hooks.manager import HookManager
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.journal import JOURNAL_FILE, LOCK_FILE, Journal, write_marker
from kgc.lockchain.layout import history, open_repo, read_batch, read_receipt_record, ref_target
from kgc.lockchain.records import GENESIS, receipt_hash
from kgc.lockchain.verify import verify_lockchain
from kgc.rdf.digest import StateDigest
from kgc.rdf.parse import parse_text
from kgc.rdf.terms import RESERVED_GRAPH_PREFIX, quad_line
from kgc.store.oxigraph import OxigraphStore
from kgc.transaction import TransactionManager

EMPTY_STATE = StateDigest().hexdigest()


@dataclass(frozen=True)
class Recovered:
    """A store and lockchain after recovery: the graph's digest beside the last receipt's."""

    state: str
    expected: str
    last_seq: int
    replayed: int = 0
    undone: int = 0

    @property
    def matches(self) -> bool:
        return self.state == self.expected


def recover_dirs(store_dir: Path, chain_dir: Path) -> Recovered:
    """Run journal recovery on ``store_dir`` with the journal in ``chain_dir``.

    Takes the lockchain's writer lock (``LockchainBusy`` if a writer holds it) and releases it.
    """
    store = OxigraphStore(store_dir)
    journal = Journal(chain_dir)
    try:
        manager = TransactionManager(store, HookManager(), journal=journal)
        state = manager.recompute_state_digest()
        expected = journal.last_committed_state() or EMPTY_STATE
        report = manager.recovery
        replayed, undone = (report.replayed, report.undone) if report else (0, 0)
        return Recovered(state, expected, journal.last_seq, replayed, undone)
    finally:
        journal.close()
        store.flush()


# The journal, read without taking its lock ---------------------------------------------------


def journal_records(path: Path) -> Iterator[dict[str, Any]]:
    """The complete records of a journal; a torn last line (a killed writer's) is left out."""
    if not path.is_file():
        raise LockchainError(f"{path}: no journal there")
    data = path.read_bytes()
    for number, raw in enumerate(data[: data.rfind(b"\n") + 1].splitlines(), start=1):
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JournalCorrupt(f"{path}, line {number}: not a JSON record ({exc.msg})") from exc
        if not isinstance(record, dict) or "type" not in record or "seq" not in record:
            raise JournalCorrupt(f"{path}, line {number}: record without 'type' and 'seq'")
        yield record


def journal_head(path: Path) -> tuple[int, str]:
    """The journal's last sequence number and its last committed ``state_after``."""
    last_seq, state = 0, EMPTY_STATE
    for record in journal_records(path):
        if record["type"] == "receipt":
            last_seq = record["seq"]
            if record["receipt"]["committed"]:
                state = record["receipt"]["state_after"]
    return last_seq, state


def checked_receipts(path: Path) -> list[dict[str, Any]]:
    """The journal's receipt records, after checking sequence numbers, links and hashes."""
    return check_links([r for r in journal_records(path) if r["type"] == "receipt"], str(path))


def check_links(receipts: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """``receipts``, checked: numbered from 1 without gaps, each ``prev`` the hash before it, and
    each hash SHA-256 over the receipt body's RFC 8785 form."""
    head = GENESIS
    for n, record in enumerate(receipts, start=1):
        seq, body = record.get("seq"), record.get("receipt", {})
        if seq != n or body.get("seq") != n:
            raise JournalCorrupt(f"{where}: receipt {n} is numbered {seq}")
        if body.get("prev") != head:
            raise JournalCorrupt(f"{where}: receipt {n}: prev is {body.get('prev')}, not {head}")
        if receipt_hash(canonical_json(body)) != record.get("hash"):
            raise JournalCorrupt(f"{where}: receipt {n}: hash does not match its canonical form")
        head = record["hash"]
    return receipts


def git_receipts(chain_dir: Path) -> list[dict[str, Any]]:
    """The receipt records anchored in ``chain_dir/git``, in order (batch by batch)."""
    repo = open_repo(chain_dir, create=False)
    if repo is None:
        raise LockchainError(f"{chain_dir}: no {JOURNAL_FILE} and no git anchor to rebuild from")
    head = ref_target(repo)
    records = []
    for commit in history(repo, head) if head is not None else []:
        info = read_batch(repo, commit)
        for seq in range(info.first_seq, info.last_seq + 1):
            records.append(json.loads(read_receipt_record(repo, commit, seq)))
    return records


# Rebuild -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rebuilt:
    """A store rebuilt from a lockchain: its recomputed digest beside the last receipt's."""

    store: Path
    source: str  # "journal" or "git"
    state: str
    expected: str
    last_seq: int
    committed: int
    quads: int

    @property
    def matches(self) -> bool:
        return self.state == self.expected


def rebuild_from_lockchain(
    lockchain: str | os.PathLike[str], store: str | os.PathLike[str], *, force: bool = False
) -> Rebuilt:
    """Make a new store at ``store`` from the lockchain in ``lockchain`` alone.

    The receipts come from the journal, or from the git anchor when there is no journal.

    1. verify the lockchain (``verify_lockchain``: links, hashes, signatures, git anchor) and
       check the links of the receipts used once more;
    2. replay the committed deltas in sequence order (set semantics: add, then remove);
    3. write the result into a new store and record the last sequence number as applied;
    4. recompute the state digest from the store; the caller must still compare it with
       ``expected`` (``Rebuilt.matches``): a chain of signed receipts says nothing about a store
       until this digest equals the last committed ``state_after``.
    """
    chain_dir, store_dir = Path(lockchain), Path(store)
    prepare_target(store_dir, "store", force=force)
    verify_lockchain(chain_dir).raise_for_problems()
    journal = chain_dir / JOURNAL_FILE
    source = "journal" if journal.is_file() else "git"
    receipts = checked_receipts(journal) if source == "journal" else git_receipts(chain_dir)
    check_links(receipts, f"{chain_dir} ({source})")
    committed = [r for r in receipts if r["receipt"]["committed"]]
    quads = parse_text(
        "\n".join(replay_lines(committed)),
        "nquads",
        source=f"{chain_dir} ({source})",
        rename_blank_nodes=False,
    )
    target = OxigraphStore(store_dir)
    target.add_all(quads)
    write_marker(target, 0, len(receipts))
    target.flush()
    state = StateDigest.of(user_lines(target)).hexdigest()
    expected = committed[-1]["receipt"]["state_after"] if committed else EMPTY_STATE
    return Rebuilt(store_dir, source, state, expected, len(receipts), len(committed), len(quads))


def replay_lines(committed: list[dict[str, Any]]) -> list[str]:
    """The graph's N-Quads lines after the committed deltas, applied in order (add, then remove)."""
    lines: dict[str, None] = {}
    for record in committed:
        lines.update(dict.fromkeys(record["delta"]["additions"]))
        for line in record["delta"]["removals"]:
            lines.pop(line, None)
    return list(lines)


def user_lines(store: OxigraphStore) -> Iterator[str]:
    """Canonical N-Quads lines of every quad outside kgc's reserved graphs."""
    for quad in store:
        graph = quad.graph_name
        if isinstance(graph, ox.NamedNode) and graph.value.startswith(RESERVED_GRAPH_PREFIX):
            continue
        yield quad_line(quad)


def prepare_target(path: Path, what: str, *, force: bool) -> None:
    """Refuse a non-empty ``path`` (unless ``force``: then delete it); leave it absent."""
    check_target(path, what, force=force)
    clear_target(path)


def check_target(path: Path, what: str, *, force: bool) -> None:
    """Refuse ``path`` if it holds anything (unless ``force``), and always if a process uses it."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not force:
        raise RestoreRefused(
            f"{path}: the {what} target is not empty; refusing to overwrite it "
            "(--force replaces it)"
        )
    if path.is_dir():
        _refuse_in_use(path, what)


def clear_target(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _refuse_in_use(path: Path, what: str) -> None:
    """Refuse to delete a store or lockchain that a running process has open (even with force)."""
    busy = f"{path}: the {what} is in use by a running kgc process; stop it before replacing it"
    if (path / LOCK_FILE).is_file():
        fd = os.open(path / LOCK_FILE, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreRefused(busy) from None
        finally:
            os.close(fd)
    if (path / "CURRENT").is_file():
        try:
            ox.Store(str(path))
        except OSError as exc:
            if "lock" in str(exc).lower():
                raise RestoreRefused(busy) from exc


def drop_lock_files(chain_dir: Path) -> None:
    """Remove the writer lock file a recovery left behind (it is recreated on demand)."""
    (chain_dir / LOCK_FILE).unlink(missing_ok=True)
