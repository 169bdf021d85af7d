"""The write-ahead journal: one JSON line per record, appended under the writer lock.

Records (``docs/lockchain.md`` specifies them byte for byte):

- ``intent``: written before a transaction stages its effective delta in the store, so that a crash
  during staging or evaluation can be undone. Not fsynced: it only has to reach the kernel before
  the store write does, which ``os.write`` guarantees against a killed process.
- ``receipt``: the sealed receipt (sequence number, previous receipt's hash, signature) and the
  effective delta, fsynced before ``apply`` returns. Its presence is what "committed" means.
- ``after``: post-commit hook outcomes, appended later; not part of the chain.

Recovery (``recover``) replays, in sequence order and blindly (add the additions, remove the
removals), every receipt after the store's recorded sequence, undoes every intent whose receipt
is missing or not committed, and drops the staged delta graphs. Blind, ordered replay of any
suffix that starts at or before the store's true position yields the journal's state, so the
store's marker may lag the store but never lead it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kgc.errors import JournalCorrupt, LockchainBusy, LockchainError
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.records import GENESIS, key_id, receipt_hash
from kgc.lockchain.signing import SigningKey
from kgc.rdf.parse import parse_text
from kgc.store.base import Store

logger = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = "writer.lock"
META_GRAPH = ox.NamedNode("urn:kgc:meta")
_MARKER_S = ox.NamedNode("urn:kgc:store")
_MARKER_P = ox.NamedNode("urn:kgc:applied-seq")
_STAGED_PREFIX = "urn:kgc:delta:"


@dataclass(frozen=True)
class Sealed:
    """A receipt as the chain holds it."""

    seq: int
    body: dict[str, Any]
    hash: str
    signature: str | None


@dataclass(frozen=True)
class RecoveryReport:
    marker: int
    replayed: int
    undone: int
    torn_tail: bool
    last_seq: int


class Journal:
    """Append-only journal in ``directory``; one writer per directory (an exclusive file lock)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        key: SigningKey | None = None,
        fsync: bool = True,
        rotate_key: bool = False,
    ) -> None:
        """Open (or create) the journal; refuse to continue a signed chain with another key.

        Opened without a key, a signed journal can be read and recovered, but ``seal`` refuses
        (an unsigned receipt would break the chain's signatures). ``rotate_key=True`` lets a new
        key take over; its public key must then be trusted by whoever verifies the chain.
        """
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _exclusive_lock(self.directory / LOCK_FILE)
        self.path = self.directory / JOURNAL_FILE
        self.key = key
        self.fsync = fsync
        self.torn_tail = _truncate_torn_tail(self.path)
        self.last_seq, self.last_hash, self.signed_by = _chain_head(self.path)
        if key is not None:
            _check_key(self.path, self.signed_by, key, rotate_key)
        # The store marker this journal last wrote (``None``: not known, so ``seq - 1``).
        self._applied: int | None = None
        self._append_lock = threading.Lock()
        self._broken: str | None = None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fsync_dir(self.directory)

    # Writing --------------------------------------------------------------------------------

    def next_seq(self) -> int:
        return self.last_seq + 1

    def intent(self, seq: int, additions: list[str], removals: list[str]) -> None:
        self._append({"type": "intent", "seq": seq, "additions": additions, "removals": removals})

    def seal(self, body: dict[str, Any], additions: list[str], removals: list[str]) -> Sealed:
        """Chain, sign and durably append one receipt body; return it sealed.

        1. the body gets the next sequence number and the previous receipt's hash;
        2. its hash is SHA-256 over its RFC 8785 form, and the signature is Ed25519 over that form;
        3. the record is appended and fsynced before this returns: only then is it committed.
        """
        if self.key is None and self.signed_by is not None:
            _check_key(self.path, self.signed_by, None, rotate=False)
        seq = self.next_seq()
        body = {**body, "seq": seq, "prev": self.last_hash}
        if self.key is not None:
            body["key_id"] = key_id(self.key)
        form = canonical_json(body)
        digest = receipt_hash(form)
        signature = self.key.sign(form).hex() if self.key is not None else None
        record = {
            "type": "receipt",
            "seq": seq,
            "receipt": body,
            "hash": digest,
            "signature": signature,
            "delta": {"additions": additions, "removals": removals},
        }
        self._append(record, durable=True)
        self.last_seq, self.last_hash = seq, digest
        return Sealed(seq, body, digest, signature)

    def after(self, seq: int, hooks: list[dict[str, Any]]) -> None:
        self._append({"type": "after", "seq": seq, "hooks": hooks})

    def _append(self, record: dict[str, Any], *, durable: bool = False) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        data = memoryview(line.encode("utf-8"))
        # os.write may write less than asked (always past 2 GiB, on a full disk): finish the
        # record, holding off other appends ("after" records come from outside the writer lock).
        with self._append_lock:
            if self._broken is not None:
                raise LockchainError(f"{self.path}: {self._broken}; restart to recover")
            start = os.lseek(self._fd, 0, os.SEEK_END)
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
                if durable and self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                self._undo_append(start, exc)
                raise

    def _undo_append(self, start: int, exc: OSError) -> None:
        """Cut a record that failed (a full disk, EIO): the next record takes its place and its
        sequence number. If even that fails, refuse to append on top of it."""
        try:
            os.ftruncate(self._fd, start)
        except OSError:
            self._broken = f"a failed append ({exc}) could not be cut off"

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    # Reading and recovery -------------------------------------------------------------------

    def records(self) -> Iterator[dict[str, Any]]:
        yield from read_records(self.path)

    def recover(self, store: Store, *, persistent: bool) -> RecoveryReport:
        """Bring ``store`` to the journal's state; see the module docstring."""
        marker = read_marker(store) if persistent else 0
        if not persistent and marker == 0 and len(store) and self.last_seq:
            logger.warning("in-memory store is not empty; replaying the journal over its content")
        receipts, intents = _index(self.path, after=marker)
        replayed = undone = 0
        for seq in sorted(set(receipts) | set(intents)):
            if seq <= marker:
                continue
            record = receipts.get(seq)
            if record is not None and record["receipt"]["committed"]:
                _blind(store, record["delta"]["additions"], record["delta"]["removals"])
                replayed += 1
            elif seq in intents:
                intent = intents[seq]
                _blind(store, intent["removals"], intent["additions"])
                undone += 1
        _drop_staged(store)
        if persistent:
            write_marker(store, marker, self.last_seq)
            _drop_stale_markers(store, self.last_seq)
            self._applied = self.last_seq
        return RecoveryReport(marker, replayed, undone, self.torn_tail, self.last_seq)

    def mark_applied(self, store: Store, seq: int) -> None:
        # Not ``seq - 1`` blindly: a receipt that was not committed (a veto) writes no marker, and
        # the marker it would have replaced stayed in the store for good.
        write_marker(store, seq - 1 if self._applied is None else self._applied, seq)
        self._applied = seq

    def last_committed_state(self) -> str | None:
        state = None
        for record in read_records(self.path):
            if record["type"] == "receipt" and record["receipt"]["committed"]:
                state = record["receipt"]["state_after"]
        return state


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise JournalCorrupt(
                    f"{path}, line {number}: not a JSON record ({exc.msg})"
                ) from exc
            if not isinstance(record, dict) or "type" not in record or "seq" not in record:
                raise JournalCorrupt(f"{path}, line {number}: record without 'type' and 'seq'")
            yield record


def _index(
    path: Path, *, after: int
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """Receipts and intents by sequence number, of records after ``after`` only: a store that is
    up to date keeps none in memory (holding all of them cost 7.5 KiB per receipt at start)."""
    receipts: dict[int, dict[str, Any]] = {}
    intents: dict[int, dict[str, Any]] = {}
    for record in read_records(path):
        if record["seq"] <= after:
            continue
        if record["type"] == "receipt":
            receipts[record["seq"]] = record
        elif record["type"] == "intent":
            intents[record["seq"]] = record
    return receipts, intents


def _check_key(path: Path, last: str | None, key: SigningKey | None, rotate: bool) -> None:
    if last is None:
        return
    if key is None:
        raise LockchainError(
            f"{path}: its receipts are signed with key {last[:16]}...; configure that signing key "
            "(signing_key_file or signing_key_env) to write to it, or unsigned receipts would "
            "break the chain's signatures"
        )
    if key_id(key) != last and not rotate:
        raise LockchainError(
            f"{path}: its receipts are signed with key {last[:16]}..., not with the configured "
            f"key {key_id(key)[:16]}...; to rotate keys deliberately, open it with rotate_key=True"
        )


def _chain_head(path: Path) -> tuple[int, str, str | None]:
    seq, head, key = 0, GENESIS, None
    for record in read_records(path):
        if record["type"] != "receipt":
            continue
        if record["seq"] != seq + 1 or record["receipt"].get("prev") != head:
            raise JournalCorrupt(
                f"{path}: receipt {record['seq']} does not follow receipt {seq} "
                f"(expected seq {seq + 1} with prev {head[:16]}...)"
            )
        seq, head, key = record["seq"], record["hash"], record["receipt"].get("key_id")
    return seq, head, key


def _truncate_torn_tail(path: Path) -> bool:
    """Drop a last line that a killed writer left incomplete; it was never acknowledged."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return False
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as handle:
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    logger.warning(
        "journal %s: dropped an incomplete last record (%d bytes)", path, len(data) - cut
    )
    return True


def _blind(store: Store, additions: list[str], removals: list[str]) -> None:
    if additions:
        store.add_all(_quads(additions))
    if removals:
        store.remove_all(_quads(removals))


def _quads(lines: list[str]) -> list[ox.Quad]:
    return parse_text("\n".join(lines), "nquads", source="<journal>", rename_blank_nodes=False)


def _drop_staged(store: Store) -> None:
    staged = [
        q
        for q in store
        if isinstance(q.graph_name, ox.NamedNode) and q.graph_name.value.startswith(_STAGED_PREFIX)
    ]
    if staged:
        store.remove_all(staged)


def _marker(seq: int) -> ox.Quad:
    return ox.Quad(_MARKER_S, _MARKER_P, ox.Literal(str(seq)), META_GRAPH)


def read_marker(store: Store) -> int:
    quads = store.quads_for_pattern(_MARKER_S, _MARKER_P, None, META_GRAPH)
    values = [int(q.object.value) for q in quads if isinstance(q.object, ox.Literal)]
    return max(values, default=0)


def write_marker(store: Store, old: int, new: int) -> None:
    # Add first, then remove: a crash between leaves two markers and the larger one counts,
    # which is still never ahead of what the store holds.
    store.add_all([_marker(new)])
    if old != new:
        store.remove_all([_marker(old)])


def _drop_stale_markers(store: Store, seq: int) -> None:
    """Remove every marker but ``seq`` (older kgc left one behind per uncommitted receipt)."""
    stale = [
        q
        for q in store.quads_for_pattern(_MARKER_S, _MARKER_P, None, META_GRAPH)
        if q.object != ox.Literal(str(seq))
    ]
    if stale:
        store.remove_all(stale)


def _exclusive_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockchainBusy(
            f"{path.parent}: another kgc process is writing this lockchain (lock {path} is held)"
        ) from None
    return fd


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
