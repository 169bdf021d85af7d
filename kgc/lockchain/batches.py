"""Build one batch commit: receipts, Merkle roots, signed tree head, keys; and follow the ref.

``AnchorState`` is what an anchorer knows of the anchored log: the batch commit the ref pointed
at when it last looked, and an in-memory ``MerkleLog`` of every anchored leaf, so that a batch of
``k`` receipts costs O(k log n), not O(n). ``sync`` brings it up to the ref (another anchorer may
have moved it); ``build`` writes the git objects of the next batch without moving the ref.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pygit2

from kgc.errors import AnchorError
from kgc.lockchain import merkle
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.fastjson import dumps
from kgc.lockchain.layout import (
    BATCH_FILE,
    KEYS_FILE,
    RECEIPTS_DIR,
    REF,
    SIGNATURE,
    BatchInfo,
    history,
    read_batch,
    receipt_name,
    ref_target,
)
from kgc.lockchain.records import FORMAT, GENESIS, key_id, tree_head_message
from kgc.lockchain.signing import SigningKey
from kgc.lockchain.tail import JournalReceipt

logger = logging.getLogger(__name__)


@dataclass
class AnchorState:
    """The anchored log as of batch commit ``head`` (``None``: nothing anchored yet)."""

    head: str | None = None
    batch: int = 0
    last_seq: int = 0
    chain_head: str = GENESIS
    log: merkle.MerkleLog = field(default_factory=merkle.MerkleLog)
    keys: dict[str, str] = field(default_factory=dict)

    def advance(self, info: BatchInfo) -> None:
        """Take in one batch that follows this state (``AnchorError`` if it does not)."""
        if info.batch != self.batch + 1 or info.first_seq != self.last_seq + 1:
            raise AnchorError(
                f"batch commit {info.commit} (batch {info.batch}, receipts {info.first_seq}-"
                f"{info.last_seq}) does not follow batch {self.batch} (ending at receipt "
                f"{self.last_seq}); run `kgc lockchain verify` on this directory"
            )
        if len(info.leaf_hashes) != info.last_seq - info.first_seq + 1:
            raise AnchorError(f"batch commit {info.commit} lists the wrong number of leaf hashes")
        self.log.extend(info.leaf_hashes)
        self.keys.update(info.keys)
        self.head, self.batch, self.last_seq = info.commit, info.batch, info.last_seq
        self.chain_head = info.chain_head


def sync(repo: pygit2.Repository, state: AnchorState) -> AnchorState:
    """``state`` brought up to where the ref points now (a new state if history was rewritten)."""
    target = ref_target(repo)
    if target == state.head:
        return state
    if target is None:
        raise AnchorError(
            f"{repo.path}: {REF} is gone, though batch commit {state.head} was anchored "
            "(deleted, or the repository is unreadable); run `kgc lockchain verify`"
        )
    try:
        commits = history(repo, target, stop=state.head)
    except LookupError:
        logger.warning(
            "%s: the lockchain ref no longer extends %s; re-reading it", repo.path, state.head
        )
        state, commits = AnchorState(), history(repo, target)
    except (KeyError, pygit2.GitError) as exc:
        raise AnchorError(
            f"{repo.path}: the history of the lockchain ref is unreadable "
            f"({exc}); run `kgc lockchain verify`"
        ) from exc
    for commit in commits:
        state.advance(read_batch(repo, commit))
    return state


def build(
    repo: pygit2.Repository,
    state: AnchorState,
    batch: Sequence[JournalReceipt],
    key: SigningKey | None,
    public_keys: Mapping[str, str],
) -> BatchInfo:
    """Write the objects of the batch commit that puts ``batch`` on top of ``state``.

    1. check that the receipts follow the anchored head (seq and ``prev``) and each other;
    2. write each receipt record as ``receipts/<seq>.json`` (RFC 8785 form);
    3. leaves are the RFC 8785 forms of the receipt bodies: batch root over this batch's leaves,
       tree head over all leaves so far, signed by ``key`` when there is one;
    4. ``keys.json``: every public key known so far; a receipt signed by a key not in it is refused;
    5. the commit, whose parent is ``state.head``. The ref is not touched.
    """
    _check_links(state, batch)
    keys = {**state.keys, **public_keys}
    if key is not None:
        keys[key_id(key)] = key.public_key_hex
    _check_keys(batch, keys)

    receipts = repo.TreeBuilder()
    leaves = []
    for item in batch:
        blob = repo.create_blob(dumps(item.record, item.fast))
        receipts.insert(receipt_name(item.seq), blob, pygit2.enums.FileMode.BLOB)
        leaves.append(merkle.leaf_hash(dumps(item.body, item.fast)))

    log = copy.deepcopy(state.log)
    log.extend(leaves)
    info = BatchInfo(
        commit="",
        batch=state.batch + 1,
        first_seq=batch[0].seq,
        last_seq=batch[-1].seq,
        batch_root=merkle.root(leaves).hex(),
        tree_head=_tree_head(batch[-1].seq, log.root().hex(), key),
        chain_head=str(batch[-1].record["hash"]),
        leaf_hashes=leaves,
        keys=keys,
    )
    info.commit = _write_commit(repo, state, info, receipts.write())
    return info


def _check_links(state: AnchorState, batch: Sequence[JournalReceipt]) -> None:
    seq, head = state.last_seq, state.chain_head
    for item in batch:
        prev = item.body.get("prev")
        if item.seq != seq + 1 or item.body.get("seq") != item.seq or prev != head:
            raise AnchorError(
                f"journal receipt {item.seq} does not follow receipt {seq} (prev {prev!s:.16}..., "
                f"expected {head:.16}...): the journal and the git anchor have diverged; "
                "run `kgc lockchain verify`"
            )
        seq, head = item.seq, str(item.record.get("hash"))


def _check_keys(batch: Sequence[JournalReceipt], keys: Mapping[str, str]) -> None:
    for item in batch:
        kid = item.body.get("key_id")
        if kid is not None and kid not in keys:
            raise AnchorError(
                f"journal receipt {item.seq} is signed by key {kid}, whose public key this "
                "anchorer was not given (pass key= or public_keys=)"
            )


def _tree_head(size: int, root_hex: str, key: SigningKey | None) -> dict[str, object]:
    if key is None:
        return {"size": size, "root": root_hex, "key_id": None, "signature": None}
    signature = key.sign(tree_head_message(size, root_hex)).hex()
    return {"size": size, "root": root_hex, "key_id": key_id(key), "signature": signature}


def _write_commit(
    repo: pygit2.Repository, state: AnchorState, info: BatchInfo, receipts: pygit2.Oid
) -> str:
    doc = {
        "format": FORMAT,
        "batch": info.batch,
        "first_seq": info.first_seq,
        "last_seq": info.last_seq,
        "leaf_hashes": [leaf.hex() for leaf in info.leaf_hashes],
        "batch_root": info.batch_root,
        "tree_head": info.tree_head,
        "chain_head": info.chain_head,
    }
    tree = repo.TreeBuilder()
    tree.insert(BATCH_FILE, repo.create_blob(canonical_json(doc)), pygit2.enums.FileMode.BLOB)
    tree.insert(KEYS_FILE, repo.create_blob(canonical_json(info.keys)), pygit2.enums.FileMode.BLOB)
    tree.insert(RECEIPTS_DIR, receipts, pygit2.enums.FileMode.TREE)
    who = pygit2.Signature(*SIGNATURE)
    message = f"kgc lockchain batch {info.batch}: receipts {info.first_seq}-{info.last_seq}\n"
    parents = [] if state.head is None else [pygit2.Oid(hex=state.head)]
    oid = repo.create_commit(None, who, who, message, tree.write(), parents)
    return str(oid)
