"""Test helpers: build real lockchains with a real engine, and forge them the way an attacker would.

``build_chain`` runs a ``TransactionManager`` on a ``Journal`` with an ``Anchorer`` (all real, in a
temporary directory). The forging helpers read the git anchor into plain dicts, let a test change
them, and write them back as new commits (``write_batches``); ``reseal`` and ``recompute`` redo
the hashing and signing an attacker holding a key would redo.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import pyoxigraph as ox

from kgc.lockchain import merkle
from kgc.lockchain.anchor import Anchorer
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.journal import JOURNAL_FILE, Journal
from kgc.lockchain.layout import (
    BATCH_FILE,
    GIT_DIR,
    KEYS_FILE,
    RECEIPTS_DIR,
    REF,
    SIGNATURE,
    WITNESS_FILE,
    append_witness,
    history,
    read_batch,
    receipt_name,
    ref_target,
)
from kgc.lockchain.records import GENESIS, key_id, tree_head_message
from kgc.lockchain.signing import SigningKey
from kgc.rdf.delta import Delta
from kgc.store.oxigraph import OxigraphStore
from kgc.transaction import TransactionManager

KEY = SigningKey.from_seed(b"\x01" * 32)
OTHER_KEY = SigningKey.from_seed(b"\x02" * 32)
EX = "http://example.org/"


def quad(i: int) -> ox.Quad:
    return ox.Quad(ox.NamedNode(f"{EX}s{i}"), ox.NamedNode(f"{EX}p"), ox.Literal(f"value {i}"))


def delta_for(i: int) -> Delta:
    """Step ``i`` of a small stream: mostly additions, every third also removes a quad, every
    fifth changes nothing (an empty effective delta still gets a receipt)."""
    if i % 5 == 4:
        return Delta([quad(i - 1)])
    removals = [quad(i - 2)] if i % 3 == 2 and i >= 2 else []
    return Delta([quad(i)], removals)


def build_chain(
    directory: Path, n: int = 12, batch_size: int = 4, key: SigningKey | None = KEY
) -> OxigraphStore:
    """A lockchain of ``n`` receipts in ``directory``, every one anchored; returns the graph."""
    journal = Journal(directory, key=key, fsync=False)
    store = OxigraphStore()
    manager = TransactionManager(store, journal=journal)
    anchorer = Anchorer(directory, key=key, batch_size=batch_size)
    manager.on_receipt.append(lambda _r: anchorer.notify())
    try:
        for i in range(n):
            manager.apply(delta_for(i), f"actor-{i % 3}")
    finally:
        anchorer.close()
        journal.close()
    return store


def copy_chain(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# Reading and writing the git anchor as plain data ---------------------------------------------


@dataclass
class GitBatch:
    doc: dict[str, Any]
    keys: dict[str, str]
    records: list[dict[str, Any]]
    extra: dict[str, bytes]  # additional receipts/ files, by name


def repo_of(directory: Path) -> pygit2.Repository:
    return pygit2.Repository(str(directory / GIT_DIR))


def load_batches(directory: Path) -> list[GitBatch]:
    repo = repo_of(directory)
    target = ref_target(repo)
    assert target is not None
    batches = []
    for commit in history(repo, target):
        tree = commit.tree
        receipts = repo[tree[RECEIPTS_DIR].id]
        assert isinstance(receipts, pygit2.Tree)
        records = [json.loads(repo[entry.id].data) for entry in receipts]
        batches.append(
            GitBatch(
                doc=json.loads(repo[tree[BATCH_FILE].id].data),
                keys=json.loads(repo[tree[KEYS_FILE].id].data),
                records=records,
                extra={},
            )
        )
    return batches


def write_batches(directory: Path, batches: list[GitBatch]) -> list[str]:
    """Write ``batches`` as a fresh chain of commits and point the ref at the last one."""
    repo = repo_of(directory)
    who = pygit2.Signature(*SIGNATURE)
    parent: list[pygit2.Oid] = []
    commits = []
    for batch in batches:
        receipts = repo.TreeBuilder()
        for record in batch.records:
            blob = repo.create_blob(canonical_json(record))
            receipts.insert(receipt_name(record["seq"]), blob, pygit2.enums.FileMode.BLOB)
        for name, data in batch.extra.items():
            receipts.insert(name, repo.create_blob(data), pygit2.enums.FileMode.BLOB)
        tree = repo.TreeBuilder()
        tree.insert(BATCH_FILE, repo.create_blob(canonical_json(batch.doc)), 33188)
        tree.insert(KEYS_FILE, repo.create_blob(canonical_json(batch.keys)), 33188)
        tree.insert(RECEIPTS_DIR, receipts.write(), pygit2.enums.FileMode.TREE)
        oid = repo.create_commit(None, who, who, "forged\n", tree.write(), parent)
        parent = [oid]
        commits.append(str(oid))
    repo.references.create(REF, parent[0], force=True)
    return commits


def reseal(batches: list[GitBatch], key: SigningKey | None, from_seq: int = 1) -> None:
    """Redo prev, hash (and, with ``key``, key_id and signature) of every receipt from
    ``from_seq`` on, as an attacker with ``key`` would."""
    head = GENESIS
    for record in (r for b in batches for r in b.records):
        body = record["receipt"]
        if record["seq"] >= from_seq:
            body["prev"] = head
            if key is not None:
                body["key_id"] = key_id(key)
            form = canonical_json(body)
            record["hash"] = hashlib.sha256(form).hexdigest()
            if key is not None:
                record["signature"] = key.sign(form).hex()
        head = record["hash"]


def recompute(batches: list[GitBatch], head_key: SigningKey | None) -> None:
    """Redo every batch's leaves, roots, chain head and tree head (signed with ``head_key``)."""
    log = merkle.MerkleLog()
    for batch in batches:
        leaves = [merkle.leaf_hash(canonical_json(r["receipt"])) for r in batch.records]
        log.extend(leaves)
        doc = batch.doc
        doc["first_seq"], doc["last_seq"] = batch.records[0]["seq"], batch.records[-1]["seq"]
        doc["leaf_hashes"] = [leaf.hex() for leaf in leaves]
        doc["batch_root"] = merkle.root(leaves).hex()
        doc["chain_head"] = batch.records[-1]["hash"]
        size, root = doc["last_seq"], log.root().hex()
        doc["tree_head"] = sign_head(size, root, head_key)


def sign_head(size: int, root: str, key: SigningKey | None) -> dict[str, Any]:
    if key is None:
        return {"size": size, "root": root, "key_id": None, "signature": None}
    signature = key.sign(tree_head_message(size, root)).hex()
    return {"size": size, "root": root, "key_id": key_id(key), "signature": signature}


def record_of(batches: list[GitBatch], seq: int) -> dict[str, Any]:
    return next(r for b in batches for r in b.records if r["seq"] == seq)


def blob_path(directory: Path, seq: int) -> Path:
    """The loose object file of receipt ``seq``'s blob in the anchor."""
    repo = repo_of(directory)
    target = ref_target(repo)
    assert target is not None
    for commit in history(repo, target):
        info = read_batch(repo, commit)
        if info.first_seq <= seq <= info.last_seq:
            receipts = repo[commit.tree[RECEIPTS_DIR].id]
            assert isinstance(receipts, pygit2.Tree)
            oid = str(receipts[receipt_name(seq)].id)
            return directory / GIT_DIR / "objects" / oid[:2] / oid[2:]
    raise LookupError(seq)


# The journal and the witness -----------------------------------------------------------------


def journal_lines(directory: Path) -> list[bytes]:
    return (directory / JOURNAL_FILE).read_bytes().splitlines(keepends=True)


def write_journal(directory: Path, lines: list[bytes]) -> None:
    (directory / JOURNAL_FILE).write_bytes(b"".join(lines))


def receipt_line_index(lines: list[bytes], seq: int) -> int:
    prefix = b'{"type":"receipt","seq":%d,' % seq
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


def journal_from_batches(directory: Path, batches: list[GitBatch]) -> None:
    """Rewrite the journal's receipt lines from (forged) git records, keeping the other lines."""
    by_seq = {r["seq"]: r for b in batches for r in b.records}
    lines = journal_lines(directory)
    for seq, record in by_seq.items():
        i = receipt_line_index(lines, seq)
        lines[i] = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    write_journal(directory, lines)


def rewitness(directory: Path) -> None:
    """Rewrite ``anchors.jsonl`` to witness the ref's current history."""
    os.remove(directory / WITNESS_FILE)
    repo = repo_of(directory)
    target = ref_target(repo)
    assert target is not None
    for commit in history(repo, target):
        append_witness(directory, read_batch(repo, commit))
