"""Checkpoints: the RDFC-1.0 canonical hash of the graph at one receipt, recorded in git.

The state digest in every receipt (LtHash) depends on blank-node labels; the canonical hash does
not, so a third party can compare it with a graph they hold in any store. It is expensive (and
bounded by a work limit, see ``kgc.rdf.canon``), so it is never computed on the commit path: a
checkpoint is taken on demand (``KnowledgeEngine.checkpoint``, ``kgc lockchain checkpoint``).

Each checkpoint is one commit on ``refs/kgc/checkpoints`` in the lockchain's git repository, parent
the previous checkpoint, whose tree holds ``checkpoint.json``::

    {"checkpoint": {"format": "kgc-checkpoint/1", "seq": N, "state_digest": "<receipt N's
      state_after>", "canonical": {"algorithm": "RDFC-1.0", "hash_algorithm": "SHA-256",
      "digest": "SHA-256", "hash": "<hex>", "quads": n}, "created_at": "<UTC ISO 8601>"},
     "key_id": "<hex or null>", "signature": "<Ed25519 over the RFC 8785 form of checkpoint>"}

``verify_checkpoints`` checks each one's signature and that its ``state_digest`` is receipt N's
``state_after``; with ``recompute=True`` it replays the chain to N and recomputes the hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygit2
import pyoxigraph as ox

from kgc.errors import AnchorError, LockchainError
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.layout import SIGNATURE, anchor_lock, open_repo, read_batch, ref_target
from kgc.lockchain.rebuild import checked_receipts, replay_lines
from kgc.lockchain.records import key_id, public_key_id
from kgc.lockchain.signing import SigningKey, verify
from kgc.rdf.canon import DEFAULT_BUDGET_S, canonical_hash
from kgc.rdf.parse import parse_text

CHECKPOINT_REF = "refs/kgc/checkpoints"
CHECKPOINT_FILE = "checkpoint.json"
FORMAT = "kgc-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    state_digest: str
    canonical_hash: str
    quads: int
    commit: str
    signed: bool


def record_checkpoint(
    directory: str | Path,
    quads: Iterable[ox.Quad],
    *,
    seq: int,
    state_digest: str,
    key: SigningKey | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
) -> Checkpoint:
    """Canonicalize ``quads`` (the graph at receipt ``seq``) and commit a checkpoint for it.

    The caller must pass the quads of exactly the state ``state_digest`` names; the engine does so
    under its read lock. ``CanonicalizationBudgetExceeded`` propagates and records nothing.
    """
    canon = canonical_hash(list(quads), budget=budget_s)
    doc = {
        "format": FORMAT,
        "seq": seq,
        "state_digest": state_digest,
        "canonical": {
            "algorithm": canon.algorithm,
            "hash_algorithm": canon.hash_algorithm,
            "digest": canon.digest_algorithm,
            "hash": canon.hexdigest,
            "quads": canon.quads,
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    signed = {
        "checkpoint": doc,
        "key_id": key_id(key) if key is not None else None,
        "signature": key.sign(canonical_json(doc)).hex() if key is not None else None,
    }
    commit = _commit(Path(directory), signed, seq)
    return Checkpoint(seq, state_digest, canon.hexdigest, canon.quads, commit, key is not None)


def _commit(directory: Path, signed: dict[str, Any], seq: int) -> str:
    with anchor_lock(directory):
        repo = open_repo(directory, create=True)
        assert repo is not None
        ref = repo.references.get(CHECKPOINT_REF)
        parents = [] if ref is None else [ref.target]
        tree = repo.TreeBuilder()
        blob = repo.create_blob(canonical_json(signed))
        tree.insert(CHECKPOINT_FILE, blob, pygit2.enums.FileMode.BLOB)
        who = pygit2.Signature(*SIGNATURE)
        message = f"kgc checkpoint at receipt {seq}\n"
        oid = repo.create_commit(None, who, who, message, tree.write(), parents)
        repo.references.create(CHECKPOINT_REF, oid, force=True)
        return str(oid)


def read_checkpoints(directory: str | Path) -> list[dict[str, Any]]:
    """Every checkpoint on the ref, oldest first (not checked)."""
    repo = open_repo(Path(directory), create=False)
    ref = None if repo is None else repo.references.get(CHECKPOINT_REF)
    if repo is None or ref is None:
        return []
    out: list[dict[str, Any]] = []
    commit = repo[ref.target]
    while True:
        assert isinstance(commit, pygit2.Commit)
        blob = repo[commit.tree[CHECKPOINT_FILE].id]
        assert isinstance(blob, pygit2.Blob)
        out.append({"commit": str(commit.id), **json.loads(blob.data)})
        if not commit.parent_ids:
            break
        commit = repo[commit.parent_ids[0]]
    out.reverse()
    return out


def verify_checkpoints(
    directory: str | Path, public_keys: dict[str, str], *, recompute: bool = False
) -> list[str]:
    """Problems found in the checkpoints, as messages naming the checkpoint's receipt; [] if none.

    1. the signature, when present, verifies under the key ``key_id`` names in ``public_keys``;
    2. ``state_digest`` equals receipt ``seq``'s ``state_after`` in the journal;
    3. with ``recompute``, the graph replayed to ``seq`` has the recorded canonical hash.
    The caller must still verify the chain itself (``verify_lockchain``).
    """
    chain_dir = Path(directory)
    receipts = {r["seq"]: r for r in checked_receipts(chain_dir / "journal.jsonl")}
    problems: list[str] = []
    for entry in read_checkpoints(chain_dir):
        problems.extend(_check_one(entry, receipts, public_keys, recompute))
    return problems


def _check_one(
    entry: dict[str, Any],
    receipts: dict[int, dict[str, Any]],
    public_keys: dict[str, str],
    recompute: bool,
) -> list[str]:
    doc = entry.get("checkpoint", {})
    seq = doc.get("seq")
    where = f"checkpoint at receipt {seq} (commit {entry['commit'][:12]})"
    if entry.get("signature") is None and public_keys:
        return [f"{where}: unsigned, but the lockchain's receipts are signed"]
    if entry.get("signature") is not None:
        key = public_keys.get(entry.get("key_id") or "")
        if key is None or not verify(key, canonical_json(doc), bytes.fromhex(entry["signature"])):
            return [f"{where}: signature does not verify under key {entry.get('key_id')}"]
    receipt = receipts.get(seq) if isinstance(seq, int) else None
    if receipt is None:
        return [f"{where}: no receipt {seq} in the journal"]
    if receipt["receipt"]["state_after"] != doc.get("state_digest"):
        return [f"{where}: state digest differs from receipt {seq}'s state_after"]
    if recompute:
        return _recompute(where, doc, [r for s, r in sorted(receipts.items()) if s <= seq])
    return []


def _recompute(where: str, doc: dict[str, Any], receipts: list[dict[str, Any]]) -> list[str]:
    committed = [r for r in receipts if r["receipt"]["committed"]]
    quads = parse_text("\n".join(replay_lines(committed)), "nquads", rename_blank_nodes=False)
    actual = canonical_hash(quads).hexdigest
    if actual != doc["canonical"]["hash"]:
        return [
            f"{where}: canonical hash is {actual}, the checkpoint says {doc['canonical']['hash']}"
        ]
    return []


def checkpoint_from_journal(
    directory: str | Path, *, key: SigningKey | None = None, budget_s: float = DEFAULT_BUDGET_S
) -> Checkpoint:
    """Checkpoint the state after the journal's last receipt, rebuilt from the journal alone."""
    chain_dir = require_lockchain(Path(directory))
    receipts = checked_receipts(chain_dir / "journal.jsonl")
    if not receipts:
        raise LockchainError(f"{chain_dir}: the journal holds no receipt to checkpoint")
    committed = [r for r in receipts if r["receipt"]["committed"]]
    quads = parse_text("\n".join(replay_lines(committed)), "nquads", rename_blank_nodes=False)
    last = receipts[-1]["receipt"]
    return record_checkpoint(
        chain_dir,
        quads,
        seq=last["seq"],
        state_digest=last["state_after"],
        key=key,
        budget_s=budget_s,
    )


def lockchain_keys(directory: str | Path, trusted: list[str] | None = None) -> dict[str, str]:
    """Public keys by key id: the ``trusted`` hex keys if given, else those the anchor lists."""
    if trusted:
        return {public_key_id(k): k for k in trusted}
    repo = open_repo(Path(directory), create=False)
    head = None if repo is None else ref_target(repo)
    if repo is None or head is None:
        return {}
    commit = repo[head]
    assert isinstance(commit, pygit2.Commit)
    return read_batch(repo, commit).keys


def require_lockchain(directory: Path | None) -> Path:
    if directory is None:
        raise LockchainError("checkpoints need a lockchain: set lockchain_path")
    if not directory.is_dir():
        raise AnchorError(f"{directory}: not a lockchain directory")
    return directory
