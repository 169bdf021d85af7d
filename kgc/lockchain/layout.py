"""Where the lockchain keeps things on disk, and trusting readers of the git anchor.

A lockchain directory holds (``docs/lockchain.md`` specifies each format):

- ``journal.jsonl``: the write-ahead journal (``kgc.lockchain.journal``);
- ``git/``: a bare git repository; ref ``refs/kgc/lockchain`` points at the last batch commit;
- ``anchor.lock``: the file anchorers ``flock`` around a ref update;
- ``anchors.jsonl``: the witness, one line per batch commit the ref was moved to.

The readers here trust what they read (the anchorer resuming, proofs being built);
``kgc.lockchain.verify`` is the one that checks.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

from kgc.errors import AnchorError, LockchainError
from kgc.lockchain.gitobjects import ObjectFault, RawObjects, read_path

GIT_DIR = "git"
REF = "refs/kgc/lockchain"
LOCK_FILE = "anchor.lock"
WITNESS_FILE = "anchors.jsonl"
BATCH_FILE = "batch.json"
KEYS_FILE = "keys.json"
RECEIPTS_DIR = "receipts"
SIGNATURE = ("kgc lockchain", "lockchain@kgc.invalid")


def receipt_name(seq: int) -> str:
    """The file name of receipt ``seq`` inside a batch's ``receipts/`` tree."""
    return f"{seq:012d}.json"


@dataclass
class BatchInfo:
    """What ``batch.json`` and ``keys.json`` of one batch commit say (not checked)."""

    commit: str
    batch: int
    first_seq: int
    last_seq: int
    batch_root: str
    tree_head: dict[str, Any]
    chain_head: str
    leaf_hashes: list[bytes] = field(repr=False)
    keys: dict[str, str]


def open_repo(directory: Path, *, create: bool) -> pygit2.Repository | None:
    """The bare repository ``directory/git``; created when missing if ``create``, else ``None``."""
    path = directory / GIT_DIR
    try:
        if (path / "HEAD").exists():
            return pygit2.Repository(str(path))
        if not create:
            return None
        return pygit2.init_repository(str(path), bare=True)
    except pygit2.GitError as exc:
        raise AnchorError(f"{path}: cannot open the lockchain's git repository ({exc})") from exc


def ref_target(repo: pygit2.Repository) -> str | None:
    """The commit id the lockchain ref points at, or ``None`` before the first batch."""
    try:
        ref = repo.references.get(REF)
    except (pygit2.GitError, ValueError) as exc:
        raise AnchorError(f"{repo.path}: ref {REF} cannot be read ({exc})") from exc
    if ref is None:
        return None
    return str(ref.target)


def history(repo: pygit2.Repository, head: str, stop: str | None = None) -> list[pygit2.Commit]:
    """Batch commits from the first (or the one after ``stop``) to ``head``, oldest first.

    Follows first parents. Raises ``LookupError`` if ``stop`` is given but not met.
    """
    objects = RawObjects(repo)
    commits: list[pygit2.Commit] = []
    commit = _commit(repo, objects, head)
    while str(commit.id) != stop:
        commits.append(commit)
        if not commit.parent_ids:
            if stop is not None:
                raise LookupError(stop)
            break
        commit = _commit(repo, objects, str(commit.parent_ids[0]))
    commits.reverse()
    return commits


def read_batch(repo: pygit2.Repository, commit: pygit2.Commit) -> BatchInfo:
    """Parse ``batch.json`` and ``keys.json`` of ``commit``; ``AnchorError`` if unusable."""
    objects = RawObjects(repo)
    try:
        doc = json.loads(read_path(objects, str(commit.id), BATCH_FILE))
        keys = json.loads(read_path(objects, str(commit.id), KEYS_FILE))
        return BatchInfo(
            commit=str(commit.id),
            batch=int(doc["batch"]),
            first_seq=int(doc["first_seq"]),
            last_seq=int(doc["last_seq"]),
            batch_root=str(doc["batch_root"]),
            tree_head=dict(doc["tree_head"]),
            chain_head=str(doc["chain_head"]),
            leaf_hashes=[bytes.fromhex(h) for h in doc["leaf_hashes"]],
            keys={str(k): str(v) for k, v in keys.items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError, ObjectFault) as exc:
        raise AnchorError(
            f"batch commit {commit.id} is unreadable ({type(exc).__name__}: {exc}); "
            "run `kgc lockchain verify` on this directory"
        ) from exc


def read_receipt_record(repo: pygit2.Repository, commit: pygit2.Commit, seq: int) -> bytes:
    """The bytes of ``receipts/<seq>.json`` in a batch commit (``AnchorError`` if unreadable)."""
    try:
        return read_path(RawObjects(repo), str(commit.id), RECEIPTS_DIR, receipt_name(seq))
    except ObjectFault as exc:
        raise AnchorError(
            f"receipt {seq} of batch commit {commit.id} is unreadable: {exc}; "
            "run `kgc lockchain verify` on this directory"
        ) from exc


def _commit(repo: pygit2.Repository, objects: RawObjects, oid: str) -> pygit2.Commit:
    # Read and hash it here first: libgit2 hangs on a loose object cut short (gitobjects).
    try:
        objects.read(oid, "commit")
    except ObjectFault as exc:
        raise AnchorError(f"{exc}, in the history of {REF}; run `kgc lockchain verify`") from exc
    obj = repo[oid]
    assert isinstance(obj, pygit2.Commit)
    return obj


@contextmanager
def anchor_lock(directory: Path) -> Iterator[None]:
    """Hold the exclusive ``flock`` on ``directory/anchor.lock`` (blocking)."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise AnchorError(f"{directory / LOCK_FILE}: cannot open ({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# The witness ---------------------------------------------------------------------------------


def append_witness(directory: Path, info: BatchInfo) -> None:
    """Record, after the ref moved to it, one line naming the batch commit and its tree head.

    Called under ``anchor_lock``. A verifier compares every witnessed tree head with the log:
    a ref moved back (rewound) or to a rewritten history no longer agrees with it.
    """
    line = {
        "batch": info.batch,
        "commit": info.commit,
        "last_seq": info.last_seq,
        "tree_head": info.tree_head,
    }
    data = (json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n").encode("ascii")
    fd = os.open(directory / WITNESS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_witness(directory: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The witnessed batches in file order, and a note per line that could not be read.

    An incomplete last line (a writer killed mid-write) is skipped without a note.
    """
    path = directory / WITNESS_FILE
    if not path.exists():
        return [], []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LockchainError(f"{path}: cannot be read ({exc.strerror})") from exc
    entries: list[dict[str, Any]] = []
    notes: list[str] = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines[:-1], start=1):
        try:
            entry = json.loads(raw)
            reason = _witness_shape(entry)
        except ValueError as exc:
            reason = f"not JSON ({exc})"
        if reason is not None:
            notes.append(f"{path.name} line {number} is not a witness entry: {reason}")
            continue
        entries.append(entry)
    return entries, notes


def _witness_shape(entry: Any) -> str | None:
    head = entry.get("tree_head") if isinstance(entry, dict) else None
    if not isinstance(head, dict):
        return "no tree_head"
    commit, root = entry.get("commit"), head.get("root")
    if not (isinstance(commit, str) and len(commit) == 40 and _is_hex(commit)):
        return "no 40-hex-digit commit"
    if not (isinstance(root, str) and len(root) == 64 and _is_hex(root)):
        return "a tree head without a root"
    if not isinstance(entry.get("batch"), int) or entry["batch"] < 1:
        return "no batch number"
    if not isinstance(head.get("size"), int) or entry.get("last_seq") != head["size"]:
        return "a last_seq that is not its tree head's size"
    return None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
