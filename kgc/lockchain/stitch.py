"""Verification steps 4 and 5: join the checked batches into one log, and hold it to its witness.

``stitch`` walks the batch results in history order: batch numbers, receipts contiguous from 1,
``prev`` links between batches, ``keys.json`` only ever growing, every receipt signed once one
was, and each tree head (size, root over every leaf so far, signature). ``check_witness`` then
compares each tree head ``anchors.jsonl`` recorded with the log's root at that size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgc.lockchain import merkle
from kgc.lockchain.checks import Checked, verify_signature
from kgc.lockchain.layout import WITNESS_FILE, read_witness
from kgc.lockchain.records import GENESIS, tree_head_message
from kgc.lockchain.report import Problem
from kgc.lockchain.verify_git import BatchResult

_DERIVED = frozenset({"tree-head", "witness", "replay"})


@dataclass
class Stitched:
    """The anchored log as verification rebuilt it."""

    last_seq: int = 0
    head: str = GENESIS
    checked: int = 0
    signatures: int = 0
    keys: dict[str, str] = field(default_factory=dict)
    leaves: list[bytes] = field(default_factory=list)
    roots: dict[int, str] = field(default_factory=dict)  # tree size -> recomputed root (hex)
    complete: bool = True  # every anchored receipt was readable: leaves and roots are whole
    signed_from: int | None = None

    def root_at(self, size: int) -> str | None:
        if size in self.roots:
            return self.roots[size]
        if not self.complete or size > len(self.leaves):
            return None
        return merkle.root(self.leaves[:size]).hex()


def stitch(
    results: Sequence[BatchResult], problems: list[Problem], trusted: Mapping[str, str] | None
) -> Stitched:
    chain = Stitched()
    log = merkle.MerkleLog()
    head_signed = False
    for result in results:
        problems += result.problems
        doc = result.doc
        if doc is None:
            chain.complete = False
            break
        name = f"batch {doc['batch']} (history position {result.position})"
        _check_order(result, doc, name, chain, problems)
        _check_keys(result, doc, name, chain, trusted, problems)
        _check_receipts(result, doc, chain, problems)
        chain.checked += len(result.receipts)
        chain.signatures += result.signatures
        if chain.complete:
            log.extend(r.leaf for r in result.receipts)
            chain.roots[doc["last_seq"]] = log.root().hex()
            head_signed = _check_tree_head(doc, name, chain, log, head_signed, problems)
        chain.last_seq = max(chain.last_seq, doc["last_seq"])
    return chain


def _check_order(
    result: BatchResult, doc: dict[str, Any], name: str, chain: Stitched, problems: list[Problem]
) -> None:
    expected = chain.last_seq + 1
    if doc["batch"] != result.position + 1:
        problems.append(
            Problem(
                expected,
                "sequence",
                f"history position {result.position} holds "
                f"batch {doc['batch']}, expected batch {result.position + 1} "
                "(batches swapped, dropped or duplicated)",
            )
        )
    first = doc["first_seq"]
    if first > expected:
        problems.append(
            Problem(
                expected,
                "sequence",
                f"receipts {expected}-{first - 1} are "
                f"missing from git: {name} starts at receipt {first}",
            )
        )
        chain.complete = False
    elif first < expected:
        problems.append(
            Problem(
                first,
                "sequence",
                f"{name} starts at receipt {first}, which an "
                "earlier batch already anchored (duplicated)",
            )
        )
        chain.complete = False


def _check_keys(
    result: BatchResult,
    doc: dict[str, Any],
    name: str,
    chain: Stitched,
    trusted: Mapping[str, str] | None,
    problems: list[Problem],
) -> None:
    first = doc["first_seq"]
    for kid, public in chain.keys.items():
        if result.keys.get(kid) != public:
            problems.append(
                Problem(
                    first,
                    "key",
                    f"{name}: keys.json drops or changes key "
                    f"{kid[:16]}..., which earlier batches list (keys swapped)",
                )
            )
    for kid in result.keys:
        if trusted is not None and kid not in trusted:
            problems.append(
                Problem(
                    first,
                    "key",
                    f"{name}: keys.json lists key {kid[:16]}..., "
                    "which is not one of the trusted keys",
                )
            )
    chain.keys.update(result.keys)


def _check_receipts(
    result: BatchResult, doc: dict[str, Any], chain: Stitched, problems: list[Problem]
) -> None:
    if len(result.receipts) != doc["last_seq"] - doc["first_seq"] + 1:
        chain.complete = False
    receipts: list[Checked] = result.receipts
    if receipts and receipts[0].seq == chain.last_seq + 1 and receipts[0].prev != chain.head:
        seq = receipts[0].seq
        problems.append(
            Problem(
                seq,
                "link",
                f"receipt {seq}'s prev {receipts[0].prev[:16]}... "
                f"is not receipt {seq - 1}'s hash {chain.head[:16]}... (chain "
                "broken between batches)",
            )
        )
    for checked in receipts:
        if checked.key_id is not None and chain.signed_from is None:
            chain.signed_from = checked.seq
        elif checked.key_id is None and chain.signed_from is not None:
            problems.append(
                Problem(
                    checked.seq,
                    "signature",
                    f"receipt {checked.seq} is "
                    f"unsigned, but receipts from {chain.signed_from} on are "
                    "signed (signature stripped?)",
                )
            )
    if receipts:
        chain.head = receipts[-1].hash


def _check_tree_head(
    doc: dict[str, Any],
    name: str,
    chain: Stitched,
    log: merkle.MerkleLog,
    head_signed: bool,
    problems: list[Problem],
) -> bool:
    """Size, root and signature of one batch's tree head; returns whether it was signed."""
    first, last, head = doc["first_seq"], doc["last_seq"], doc["tree_head"]
    if head["size"] != last:
        problems.append(
            Problem(
                first,
                "tree-head",
                f"{name}: tree head size {head['size']} is not the batch's last receipt {last}",
            )
        )
    root = chain.roots[last]
    # A receipt already found bad at or before ``last`` changed the leaves: it is the cause.
    explained = any(p.seq <= last and p.kind not in _DERIVED for p in problems)
    if head["root"] != root and not explained:
        problems.append(
            Problem(
                first,
                "tree-head",
                f"{name}: tree head root "
                f"{head['root'][:16]}... is not the Merkle root of receipts "
                f"1-{last} ({root[:16]}...): a receipt in {first}-{last} or "
                "the tree head was changed",
            )
        )
    kid, signature = head.get("key_id"), head.get("signature")
    if kid is None and signature is None:
        if head_signed:
            problems.append(
                Problem(
                    first,
                    "tree-head",
                    f"{name}: tree head is unsigned, but "
                    "earlier tree heads are signed (signature stripped?)",
                )
            )
        return head_signed
    public = chain.keys.get(kid) if isinstance(kid, str) else None
    message = tree_head_message(head["size"], head["root"])
    if public is None:
        problems.append(
            Problem(
                first,
                "tree-head",
                f"{name}: tree head signed by key "
                f"{str(kid)[:16]}..., which keys.json does not list",
            )
        )
    elif not isinstance(signature, str) or not verify_signature(public, message, signature):
        problems.append(
            Problem(
                first,
                "tree-head",
                f"{name}: tree head signature does not "
                f"verify with key {kid[:16]}... (forged or re-signed)",
            )
        )
    return True


def check_witness(
    directory: Path, chain: Stitched, problems: list[Problem], commits: Sequence[str]
) -> None:
    """Step 5: every tree head ``anchors.jsonl`` witnessed must be a prefix of the log."""
    entries, notes = read_witness(directory)
    problems += [Problem(1, "witness", note) for note in notes]
    if not entries:
        if commits:
            problems.append(
                Problem(
                    1,
                    "witness",
                    f"{WITNESS_FILE} is missing or empty, though "
                    f"the ref holds {len(commits)} batch(es): nothing witnesses "
                    "the history (deleted?)",
                )
            )
        return
    consistent = 0
    for number, entry in enumerate(entries, start=1):
        head = entry["tree_head"]
        size, where = (
            int(head["size"]),
            f"{WITNESS_FILE} line {number} (batch {entry.get('batch')})",
        )
        if not _witness_signed(head, chain):
            problems.append(
                Problem(
                    consistent + 1,
                    "witness",
                    f"{where}: its tree head signature does not verify (witness edited)",
                )
            )
            return
        if size > chain.last_seq:
            problems.append(
                Problem(
                    chain.last_seq + 1,
                    "witness",
                    f"the ref was moved back: "
                    f"{where} witnessed receipts up to {size} (commit "
                    f"{str(entry.get('commit'))[:12]}), but the ref's history "
                    f"ends at receipt {chain.last_seq} (rewound)",
                )
            )
            return
        root = chain.root_at(size)
        if root is not None and root != head["root"]:
            # A fault already found in these receipts (the journal disagreeing, say) names the
            # receipt more precisely than the witness can: it alone explains the mismatch.
            if not any(consistent < p.seq <= size for p in problems):
                problems.append(_rewritten(consistent, size, where))
            return
        consistent = max(consistent, size)


def _rewritten(consistent: int, size: int, where: str) -> Problem:
    return Problem(
        consistent + 1,
        "witness",
        f"the log is not consistent with the tree head "
        f"{where} witnessed: the root over receipts 1-{size} differs (history "
        f"rewritten after receipt {consistent})",
    )


def _witness_signed(head: dict[str, Any], chain: Stitched) -> bool:
    kid, signature = head.get("key_id"), head.get("signature")
    if kid is None and signature is None:
        return True
    public = chain.keys.get(kid) if isinstance(kid, str) else None
    if public is None or not isinstance(signature, str):
        return public is None and isinstance(signature, str)  # key unknown here: cannot check
    return verify_signature(public, tree_head_message(int(head["size"]), head["root"]), signature)
