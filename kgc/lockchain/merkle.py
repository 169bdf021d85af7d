"""RFC 9162 (Certificate Transparency 2.0) Merkle trees over lockchain leaves.

A tree over leaves ``d[0..n)`` is defined by RFC 9162 §2.1.1:

- ``MTH({}) = SHA-256()``, the hash of nothing;
- ``MTH({d}) = SHA-256(0x00 || d)``, a leaf hash (``leaf_hash``);
- ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` where ``k`` is the largest power of
  two smaller than ``n``.

The distinct 0x00 / 0x01 prefixes keep a leaf from passing for an inner node. Functions here take
leaf *hashes* (32 bytes each), so callers hash their records once and keep the hashes.

``inclusion_proof`` / ``verify_inclusion`` (§2.1.3) show that a leaf is in a tree with a given root;
``consistency_proof`` / ``verify_consistency`` (§2.1.4) show that a tree is an append-only
extension of an earlier one. Verification only answers "does this proof tie these values
together": the caller must still know that the roots it compares against are authentic (signed,
or anchored in git).

``MerkleLog`` keeps a growing tree's root in O(log n) memory and time per append.

Building proofs for bad arguments (an index outside the tree, leaf hashes that are not 32 bytes)
is a caller's bug and raises ``ValueError``; verifying never raises for bad proofs and answers
``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an inner node."""
    return hashlib.sha256(_NODE + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of the tree whose leaves hash to ``leaf_hashes``, in order."""
    _check_hashes(leaf_hashes)
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree over ``leaf_hashes`` (RFC 9162 §2.1.3.1).

    Node hashes ordered from the leaf's sibling up to the root's child.
    """
    _check_hashes(leaf_hashes)
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaf_hashes)} leaves")

    # Walk down from the root, keeping the sibling of each subtree that holds the leaf.
    path: list[bytes] = []
    lo, hi = 0, len(leaf_hashes)
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(_subtree_root(leaf_hashes, mid, hi))
            hi = mid
        else:
            path.append(_subtree_root(leaf_hashes, lo, mid))
            lo = mid
    path.reverse()
    return path


def consistency_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """``PROOF(m, D[n])``: shows the first ``m`` leaves are a prefix of all ``n`` (§2.1.4.1).

    Empty when ``m`` is 0 or ``n``, where there is nothing to prove.
    """
    _check_hashes(leaf_hashes)
    n = len(leaf_hashes)
    if not 0 <= m <= n:
        raise ValueError(f"earlier size {m} is outside 0..{n}, the size of the tree")
    if m in (0, n):
        return []

    # SUBPROOF(m, D[lo:hi], whole) unrolled; whole is true while D[lo:hi] starts at leaf 0.
    proof: list[bytes] = []
    lo, hi, whole = 0, n, True
    while m != hi - lo:
        mid = lo + _split(hi - lo)
        if m <= mid - lo:
            proof.append(_subtree_root(leaf_hashes, mid, hi))
            hi = mid
        else:
            proof.append(_subtree_root(leaf_hashes, lo, mid))
            m -= mid - lo
            lo, whole = mid, False
    if not whole:
        proof.append(_subtree_root(leaf_hashes, lo, hi))
    proof.reverse()
    return proof


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``root_hash`` names.

    RFC 9162 §2.1.3.2. The caller must still trust ``root_hash`` and ``tree_size`` (a signed or
    anchored tree head): a proof only ties the leaf to them.
    """
    if not 0 <= index < tree_size or not _well_formed(leaf, root_hash, *proof):
        return False

    # 1-2. fn walks up from the leaf's position, sn from the last leaf's.
    fn, sn = index, tree_size - 1
    r = leaf
    for p in proof:
        # 4a. A path longer than the tree is tall.
        if sn == 0:
            return False
        # 4b. Our node is a right child, or the last node of its level (no right sibling):
        # the path's node is a left sibling; skip levels where our node has no sibling.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        # 4c.
        fn, sn = fn >> 1, sn >> 1

    # 5. The path must reach the top, and arrive at the root.
    return sn == 0 and r == root_hash


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``root_n`` (size ``n``) extends ``root_m`` (size ``m``).

    RFC 9162 §2.1.4.2 for ``0 < m < n``. For ``m == n`` the proof must be empty and the roots
    equal; for ``m == 0`` it must be empty and ``root_m`` the empty tree's root. The caller must
    still trust both roots (signed or anchored tree heads).
    """
    if not 0 <= m <= n or not _well_formed(root_m, root_n, *proof):
        return False
    if m == 0:
        return not proof and root_m == EMPTY_ROOT
    if m == n:
        return not proof and root_m == root_n
    # 1.
    if not proof:
        return False

    # 2. A perfect first tree is itself a node on the path: its root starts the walk.
    path = [root_m, *proof] if m & (m - 1) == 0 else list(proof)
    # 3-4. fn walks up from the first tree's last leaf; skip levels where it is a right child.
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # 5.
    fr = sr = path[0]
    # 6. fr rebuilds the first root, sr the second, from the same path.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1

    # 7.
    return fr == root_m and sr == root_n and sn == 0


class MerkleLog:
    """An append-only tree that keeps only what its root needs: the perfect subtrees' roots.

    A tree of ``n`` leaves is, by RFC 9162's split, perfect subtrees of sizes given by the bits of
    ``n``, largest first. Appending merges equal-sized subtrees like a binary counter's carry;
    ``root()`` folds them right to left. Both take O(log n) hashes. The leaves are not kept, so
    proofs come from ``inclusion_proof`` over stored leaf hashes.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._size = 0
        self._peaks: list[bytes] = []
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> int:
        """Add one leaf hash; return its index."""
        _check_hashes((leaf,))
        node, carry = leaf, self._size
        while carry & 1:
            node = node_hash(self._peaks.pop(), node)
            carry >>= 1
        self._peaks.append(node)
        self._size += 1
        return self._size - 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in turn."""
        for leaf in leaf_hashes:
            self.append(leaf)

    def root(self) -> bytes:
        """The Merkle tree hash of the leaves so far; equal to ``root()`` over them."""
        if not self._peaks:
            return EMPTY_ROOT
        node = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            node = node_hash(peak, node)
        return node


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (for ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]), level by level.

    Pairing neighbours and carrying an odd last node up unhashed builds the same tree as the
    RFC's recursive split: the left part is always a perfect tree of even width.
    """
    if lo == hi:
        return EMPTY_ROOT
    level = list(leaf_hashes[lo:hi])
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def _check_hashes(leaf_hashes: Iterable[bytes]) -> None:
    for i, leaf in enumerate(leaf_hashes):
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise ValueError(
                f"leaf hash {i} is {_describe(leaf)}, expected {HASH_SIZE} bytes (use leaf_hash())"
            )


def _well_formed(*hashes: object) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def _describe(value: object) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return f"a {type(value).__name__}"
