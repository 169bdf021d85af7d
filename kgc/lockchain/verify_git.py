"""Checks of one batch commit on its own; safe to run in a worker process.

Every object is read raw from the object database and hashed again (``sha1("<type> <size>\\0" +
content)``), so a missing object, a corrupt loose object and an object whose content does not
hash to its id are each told apart. Cross-batch checks (numbering, links between batches, tree
heads over the whole log) belong to ``kgc.lockchain.verify``, which gets a ``BatchResult`` per
commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pygit2

from kgc.lockchain import merkle
from kgc.lockchain.checks import Checked, check_record, describe_difference, is_hex
from kgc.lockchain.fastjson import parse
from kgc.lockchain.gitobjects import ObjectFault, RawObjects, commit_links, tree_entries
from kgc.lockchain.layout import BATCH_FILE, KEYS_FILE, RECEIPTS_DIR, receipt_name
from kgc.lockchain.records import FORMAT, public_key_id
from kgc.lockchain.report import Problem

_TOP = {BATCH_FILE: "blob", KEYS_FILE: "blob", RECEIPTS_DIR: "tree"}
_ROOT_CAUSES = frozenset({"git-object", "shape", "sequence", "hash"})


class _Fault(Exception):
    """An object or file that stops the check of this batch (already recorded as a problem)."""


@dataclass
class BatchResult:
    """What one batch commit holds, as far as it could be read, and what is wrong with it."""

    position: int
    commit: str
    doc: dict[str, Any] | None = None
    keys: dict[str, str] = field(default_factory=dict)
    receipts: list[Checked] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    signatures: int = 0

    def declared(self, name: str) -> int | None:
        value = self.doc.get(name) if self.doc else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class _Batch:
    objects: RawObjects
    result: BatchResult
    seq: int  # the seq that problems of this batch are attributed to until receipts are known

    def problem(self, kind: str, message: str, seq: int | None = None) -> None:
        where = f"batch commit {self.result.commit[:12]} (history position {self.result.position})"
        self.result.problems.append(
            Problem(self.seq if seq is None else seq, kind, f"{where}: {message}")
        )

    def read(self, oid: str, kind: str, what: str, seq: int | None = None) -> bytes:
        """Read an object (verified: see ``gitobjects``); a fault becomes a problem."""
        try:
            return self.objects.read(oid, kind)
        except ObjectFault as fault:
            self.problem("git-object", f"git object {oid} ({what}) is {fault.state}", seq)
            raise _Fault from fault


def check_batch(
    objects: RawObjects,
    position: int,
    commit: str,
    expected_first: int,
    journal: Mapping[int, bytes],
) -> BatchResult:
    """Check batch commit ``commit``; ``journal`` holds the journal lines of its receipts."""
    batch = _Batch(objects, BatchResult(position, commit), expected_first)
    try:
        tree = _check_commit(batch, commit)
        entries = _check_tree(batch, tree, "the batch tree", _TOP)
        _check_doc(batch, entries[BATCH_FILE])
        _check_keys(batch, entries[KEYS_FILE])
        names = _check_tree(batch, entries[RECEIPTS_DIR], "receipts/", None)
        _check_receipts(batch, names, journal)
    except _Fault:
        pass
    return batch.result


def _check_commit(batch: _Batch, commit: str) -> str:
    content = batch.read(commit, "commit", "the batch commit")
    try:
        tree, parents = commit_links(content, commit)
    except ObjectFault as fault:
        batch.problem("git-object", str(fault))
        raise _Fault from fault
    if len(parents) > 1:
        batch.problem("shape", f"is a merge of {len(parents)} commits")
    return tree


def _check_tree(
    batch: _Batch, oid: str, what: str, expected: Mapping[str, str] | None
) -> dict[str, str]:
    try:
        entries = tree_entries(batch.read(oid, "tree", what), oid)
    except ObjectFault as fault:
        batch.problem("git-object", f"{fault} ({what})")
        raise _Fault from fault
    if expected is not None:
        kinds = {name: "tree" if mode == "40000" else "blob" for name, (mode, _) in entries.items()}
        if kinds != dict(expected):
            batch.problem(
                "shape",
                f"{what} holds {sorted(kinds)}, expected exactly "
                f"{sorted(expected)} (files, and receipts/ a directory)",
            )
            raise _Fault
    return {name: entry for name, (_, entry) in entries.items()}


def _check_doc(batch: _Batch, oid: str) -> None:
    data = batch.read(oid, "blob", BATCH_FILE)
    try:
        doc = json.loads(data)
    except ValueError as exc:
        batch.problem("shape", f"{BATCH_FILE} is not JSON ({exc})")
        raise _Fault from exc
    reason = _doc_shape(doc)
    if reason is not None:
        batch.problem("shape", f"{BATCH_FILE} {reason}")
        raise _Fault
    batch.result.doc = doc


def _doc_shape(doc: Any) -> str | None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return f"is not a {FORMAT} batch document"
    for name in ("batch", "first_seq", "last_seq"):
        if not isinstance(doc.get(name), int) or isinstance(doc.get(name), bool):
            return f"has no whole number {name}"
    if not 1 <= doc["first_seq"] <= doc["last_seq"]:
        return f"declares an empty or negative range {doc['first_seq']}-{doc['last_seq']}"
    leaves = doc.get("leaf_hashes")
    if not isinstance(leaves, list) or not all(is_hex(h, 64) for h in leaves):
        return "has no list of leaf_hashes"
    if len(leaves) != doc["last_seq"] - doc["first_seq"] + 1:
        return f"lists {len(leaves)} leaf hashes for receipts {doc['first_seq']}-{doc['last_seq']}"
    if not is_hex(doc.get("batch_root"), 64) or not is_hex(doc.get("chain_head"), 64):
        return "has no batch_root or chain_head"
    head = doc.get("tree_head")
    if not isinstance(head, dict) or not isinstance(head.get("size"), int):
        return "has no tree_head with a size"
    if not is_hex(head.get("root"), 64):
        return "has a tree_head without a root"
    return None


def _check_keys(batch: _Batch, oid: str) -> None:
    data = batch.read(oid, "blob", KEYS_FILE)
    try:
        keys = json.loads(data)
    except ValueError as exc:
        batch.problem("shape", f"{KEYS_FILE} is not JSON ({exc})")
        raise _Fault from exc
    if not isinstance(keys, dict) or not all(is_hex(v, 64) for v in keys.values()):
        batch.problem("shape", f"{KEYS_FILE} is not an object of 64-hex-digit public keys")
        raise _Fault
    for kid, public in keys.items():
        if public_key_id(public) != kid:
            batch.problem(
                "key",
                f"{KEYS_FILE} lists key id {kid[:16]}... for a public key whose "
                f"id is {public_key_id(public)[:16]}... (keys.json swapped?)",
            )
            raise _Fault
    batch.result.keys = keys


def _check_receipts(batch: _Batch, names: dict[str, str], journal: Mapping[int, bytes]) -> None:
    doc = batch.result.doc
    assert doc is not None
    first, last = doc["first_seq"], doc["last_seq"]
    expected = {receipt_name(seq): seq for seq in range(first, last + 1)}
    for name in sorted(names.keys() - expected.keys()):
        batch.problem(
            "sequence",
            f"receipts/{name} lies outside the batch's declared range "
            f"{first}-{last} (a receipt inserted or duplicated)",
            _name_seq(name, last),
        )
    prev: Checked | None = None
    for name, seq in expected.items():
        if name not in names:
            batch.problem(
                "sequence",
                f"receipt {seq} is missing from receipts/ (the batch "
                f"declares {first}-{last}; dropped)",
                seq,
            )
            prev = None
            continue
        checked = _check_one(batch, names[name], seq, journal)
        if checked is None:
            prev = None
            continue
        if prev is not None and checked.prev != prev.hash:
            batch.problem(
                "link",
                f"receipt {seq}'s prev {checked.prev[:16]}... is not receipt "
                f"{prev.seq}'s hash {prev.hash[:16]}... (chain broken)",
                seq,
            )
        batch.result.receipts.append(checked)
        prev = checked
    # A receipt that could not be read or was edited explains a wrong root: report only the cause.
    if not any(p.kind in _ROOT_CAUSES for p in batch.result.problems):
        _check_roots(batch)


def _check_one(batch: _Batch, oid: str, seq: int, journal: Mapping[int, bytes]) -> Checked | None:
    try:
        data = batch.read(oid, "blob", f"receipts/{receipt_name(seq)}", seq)
    except _Fault:
        return None
    try:
        record, fast = parse(data)
    except ValueError as exc:
        batch.problem("shape", f"receipts/{receipt_name(seq)} is not JSON ({exc})", seq)
        return None
    found = record.get("seq") if isinstance(record, dict) else None
    if found != seq:
        batch.problem(
            "sequence",
            f"receipts/{receipt_name(seq)} holds receipt {found!r}, not {seq} (receipts reordered)",
            seq,
        )
        return None
    where = f"git batch {batch.result.declared('batch')}"
    checked = check_record(record, fast, seq, batch.result.keys, where, batch.result.problems)
    if record.get("signature") is not None:
        batch.result.signatures += 1
    _compare_journal(batch, seq, record, journal.get(seq))
    return checked


def _compare_journal(batch: _Batch, seq: int, record: dict[str, Any], line: bytes | None) -> None:
    if line is None:
        return  # the caller reports receipts missing from the journal
    # Plain parsing is enough to compare (3 == 3.0); the fast form is only needed to diagnose.
    try:
        if json.loads(line) == record:
            return
        copy, fast = parse(line)
    except ValueError:
        batch.result.problems.append(Problem(seq, "journal", "the journal's record is not JSON"))
        return
    own: list[Problem] = []
    check_record(copy, fast, seq, batch.result.keys, "journal", own)
    edited = [p for p in own if p.kind in ("shape", "hash", "delta", "signature")]
    if edited:
        message = f"the journal's copy was edited: {edited[0].message}"
    else:
        message = f"git and the journal disagree: {describe_difference(record, copy)}"
    batch.result.problems.append(Problem(seq, "journal", message))


def _check_roots(batch: _Batch) -> None:
    doc = batch.result.doc
    assert doc is not None
    leaves = [checked.leaf for checked in batch.result.receipts]
    declared = [bytes.fromhex(h) for h in doc["leaf_hashes"]]
    if declared != leaves:
        at = next(
            (i for i, (a, b) in enumerate(zip(declared, leaves, strict=False)) if a != b),
            min(len(declared), len(leaves)),
        )
        batch.problem(
            "batch",
            f"{BATCH_FILE}'s leaf_hashes differ from the receipts' leaves "
            f"(first at receipt {doc['first_seq'] + at})",
            doc["first_seq"] + at,
        )
        return
    root = merkle.root(leaves).hex()
    if root != doc["batch_root"]:
        batch.problem(
            "batch",
            f"batch_root {doc['batch_root'][:16]}... is not the Merkle root of "
            f"its receipts ({root[:16]}...)",
            doc["first_seq"],
        )
    if doc["chain_head"] != batch.result.receipts[-1].hash:
        batch.problem(
            "batch",
            f"chain_head {doc['chain_head'][:16]}... is not the hash of its "
            f"last receipt {doc['last_seq']}",
            doc["last_seq"],
        )


def _name_seq(name: str, fallback: int) -> int:
    stem = name.removesuffix(".json")
    return int(stem) if stem.isdigit() else fallback


def check_chunk(
    git_path: str, work: list[tuple[int, str, int]], journal: dict[int, bytes]
) -> list[BatchResult]:
    """Worker entry point: check ``(position, commit, expected_first)`` batches in one process."""
    objects = RawObjects(pygit2.Repository(git_path))
    return [check_batch(objects, pos, commit, first, journal) for pos, commit, first in work]
