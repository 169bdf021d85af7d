"""Inclusion and consistency proofs that a third party checks with one public key and nothing else.

``prove_inclusion(directory, seq)`` shows that receipt ``seq`` is in the log a signed tree head
names; ``prove_consistency(directory, m, n)`` shows that the log of size ``n`` extends the one of
size ``m`` (it only grew). Both read the git anchor as it is: run ``verify_lockchain`` first if
the directory itself is in doubt. The proof formats are specified in ``docs/lockchain.md``.

``check_inclusion_proof`` and ``check_consistency_proof`` need only the proof (parsed JSON) and
the public key the checker trusts; they raise ``ProofInvalid`` naming the failed step.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgc.errors import CanonicalJSONError, NotAnchored, ProofInvalid
from kgc.lockchain import merkle
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.checks import is_hex, verify_signature
from kgc.lockchain.fastjson import dumps, parse
from kgc.lockchain.layout import BatchInfo, history, open_repo, read_batch, read_receipt_record
from kgc.lockchain.layout import ref_target as _ref_target
from kgc.lockchain.records import FORMAT, public_key_id, tree_head_message


@dataclass
class _Log:
    batches: list[BatchInfo]
    leaves: list[bytes]

    def head(self, size: int | None) -> BatchInfo:
        if not self.batches:
            raise NotAnchored("nothing is anchored yet: there is no tree head to prove against")
        if size is None:
            return self.batches[-1]
        for info in self.batches:
            if info.last_seq == size:
                return info
        sizes = [info.last_seq for info in self.batches]
        below = max((s for s in sizes if s < size), default=None)
        above = min((s for s in sizes if s > size), default=None)
        raise NotAnchored(
            f"no signed tree head has size {size}; tree heads are made at batch "
            f"ends (nearest: {below} and {above})"
        )


def _read_log(directory: str | os.PathLike[str]) -> tuple[Any, _Log]:
    repo = open_repo(Path(directory), create=False)
    target = _ref_target(repo) if repo is not None else None
    if repo is None or target is None:
        raise NotAnchored(f"{directory}: nothing is anchored yet (no git ref)")
    batches = [read_batch(repo, commit) for commit in history(repo, target)]
    leaves = [leaf for info in batches for leaf in info.leaf_hashes]
    return repo, _Log(batches, leaves)


def prove_inclusion(
    directory: str | os.PathLike[str], seq: int, *, tree_size: int | None = None
) -> dict[str, Any]:
    """A proof that receipt ``seq`` is in the tree of the latest (or ``tree_size``) tree head."""
    repo, log = _read_log(directory)
    head = log.head(tree_size)
    if not 1 <= seq <= head.last_seq:
        raise NotAnchored(f"receipt {seq} is not in the anchored tree of size {head.last_seq}")
    holder = next(info for info in log.batches if info.first_seq <= seq <= info.last_seq)
    record, fast = parse(read_receipt_record(repo, repo[holder.commit], seq))
    return {
        "format": FORMAT,
        "proof": "inclusion",
        "seq": seq,
        "index": seq - 1,
        "tree_size": head.last_seq,
        "leaf": dumps(record["receipt"], fast).decode("utf-8"),
        "receipt_hash": record["hash"],
        "receipt_signature": record["signature"],
        "audit_path": [
            h.hex() for h in merkle.inclusion_proof(seq - 1, log.leaves[: head.last_seq])
        ],
        "tree_head": head.tree_head,
    }


def prove_consistency(directory: str | os.PathLike[str], m: int, n: int) -> dict[str, Any]:
    """A proof that the signed tree head of size ``n`` extends the one of size ``m``."""
    if not 1 <= m <= n:
        raise NotAnchored(f"a consistency proof needs 1 <= m <= n, got m={m}, n={n}")
    _, log = _read_log(directory)
    first, second = log.head(m), log.head(n)
    proof = merkle.consistency_proof(m, log.leaves[:n])
    return {
        "format": FORMAT,
        "proof": "consistency",
        "first": first.tree_head,
        "second": second.tree_head,
        "consistency_path": [h.hex() for h in proof],
    }


def check_inclusion_proof(proof: Any, public_key_hex: str) -> dict[str, Any]:
    """Check an inclusion proof with only ``public_key_hex``; return what it proves.

    1. the tree head is signed by that key, over its size and root;
    2. the leaf is a receipt body in RFC 8785 form whose SHA-256 is the receipt hash, at ``seq``;
    3. if the receipt is signed by the same key, its signature verifies;
    4. the audit path leads from the leaf's hash at ``index`` to the tree head's root.
    """
    _expect(isinstance(proof, dict) and proof.get("proof") == "inclusion", "not an inclusion proof")
    head = _check_tree_head(proof.get("tree_head"), public_key_hex, "tree_head")
    leaf = proof.get("leaf")
    _expect(isinstance(leaf, str), "the proof has no leaf")
    body, form = _canonical_leaf(leaf)
    seq, index = proof.get("seq"), proof.get("index")
    _expect(
        isinstance(seq, int) and body.get("seq") == seq and index == seq - 1,
        f"the leaf is receipt {body.get('seq')!r}; the proof says seq {seq!r} at index "
        f"{index!r} (receipt N is leaf N - 1)",
    )
    digest = hashlib.sha256(form).hexdigest()
    _expect(
        digest == proof.get("receipt_hash"),
        f"the leaf hashes to {digest}, not to the proof's receipt_hash",
    )
    _check_receipt_signature(body, form, proof.get("receipt_signature"), public_key_hex)
    path = _hashes(proof.get("audit_path"), "audit_path")
    size = proof.get("tree_size")
    _expect(size == head["size"], f"tree_size {size!r} is not the tree head's size")
    ok = merkle.verify_inclusion(
        index, head["size"], merkle.leaf_hash(form), path, bytes.fromhex(head["root"])
    )
    _expect(ok, f"the audit path does not lead from receipt {seq} to the tree head's root")
    return {"seq": seq, "receipt_hash": digest, "tree_size": head["size"], "root": head["root"]}


def check_consistency_proof(proof: Any, public_key_hex: str) -> dict[str, Any]:
    """Check a consistency proof with only ``public_key_hex``; return the two tree sizes.

    1. both tree heads are signed by that key; 2. the path shows the second extends the first.
    """
    _expect(
        isinstance(proof, dict) and proof.get("proof") == "consistency", "not a consistency proof"
    )
    first = _check_tree_head(proof.get("first"), public_key_hex, "first")
    second = _check_tree_head(proof.get("second"), public_key_hex, "second")
    path = _hashes(proof.get("consistency_path"), "consistency_path")
    m, n = first["size"], second["size"]
    ok = merkle.verify_consistency(
        m, n, bytes.fromhex(first["root"]), bytes.fromhex(second["root"]), path
    )
    _expect(
        ok,
        f"the tree of size {n} is not an extension of the tree of size {m}: the "
        "consistency path does not check (the log was rewritten)",
    )
    return {
        "first_size": m,
        "second_size": n,
        "first_root": first["root"],
        "second_root": second["root"],
    }


def _check_tree_head(head: Any, public_key_hex: str, name: str) -> dict[str, Any]:
    _expect(
        isinstance(head, dict)
        and isinstance(head.get("size"), int)
        and is_hex(head.get("root"), 64),
        f"{name} is not a tree head",
    )
    kid, signature = head.get("key_id"), head.get("signature")
    _expect(signature is not None, f"{name} is not signed: nothing ties it to a key")
    expected = public_key_id(public_key_hex) if is_hex(public_key_hex, 64) else None
    _expect(expected is not None, "the public key is not 64 hex digits")
    _expect(
        kid == expected,
        f"{name} is signed by key {str(kid)[:16]}..., not by the given key {str(expected)[:16]}...",
    )
    message = tree_head_message(head["size"], head["root"])
    _expect(
        isinstance(signature, str) and verify_signature(public_key_hex, message, signature),
        f"{name}'s signature does not verify with the given key (forged tree head)",
    )
    checked: dict[str, Any] = head
    return checked


def _canonical_leaf(leaf: str) -> tuple[dict[str, Any], bytes]:
    form = leaf.encode("utf-8")
    try:
        body = json.loads(form)
        canonical = canonical_json(body)
    except (ValueError, CanonicalJSONError) as exc:
        raise ProofInvalid(f"the leaf is not a JSON receipt body ({exc})") from exc
    _expect(canonical == form and isinstance(body, dict), "the leaf is not in RFC 8785 form")
    return body, form


def _check_receipt_signature(
    body: dict[str, Any], form: bytes, signature: Any, public: str
) -> None:
    if body.get("key_id") != public_key_id(public):
        return  # signed by another key (or unsigned): the tree head's signature vouches for it
    _expect(
        isinstance(signature, str) and verify_signature(public, form, signature),
        "the receipt's own signature does not verify with the given key",
    )


def _hashes(values: Any, name: str) -> list[bytes]:
    _expect(
        isinstance(values, list) and all(is_hex(v, 64) for v in values),
        f"{name} is not a list of 64-hex-digit hashes",
    )
    return [bytes.fromhex(v) for v in values]


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ProofInvalid(f"proof does not check: {message}")
