"""RFC 9162 Merkle trees: small trees by hand, published vectors, every proof up to 40 leaves."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgc.lockchain.merkle import (
    EMPTY_ROOT,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# Timing varies with the machine's load; examples are not replayed from a local database.
_properties = settings(deadline=None, database=None)

MAX_N = 40
LEAVES = [leaf_hash(f"record {i}".encode()) for i in range(MAX_N + 1)]


def _sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _reference_root(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 words it, recursively."""
    if not hashes:
        return _sha()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return _sha(b"\x01", _reference_root(hashes[:k]), _reference_root(hashes[k:]))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _flipped_proofs(proof: list[bytes]) -> list[list[bytes]]:
    """Each proof that differs from ``proof`` in one byte (first, middle or last of a hash)."""
    return [
        [*proof[:i], _flip(node, at), *proof[i + 1 :]]
        for i, node in enumerate(proof)
        for at in (0, 15, 31)
    ]


# Small trees, hashed by hand from the definition.


def test_leaf_and_node_hashes_carry_their_prefix() -> None:
    assert leaf_hash(b"abc") == _sha(b"\x00abc")
    assert node_hash(b"L" * 32, b"R" * 32) == _sha(b"\x01" + b"L" * 32 + b"R" * 32)


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert root([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_small_trees_by_hand() -> None:
    a, b, c, d, e = (leaf_hash(x) for x in (b"a", b"b", b"c", b"d", b"e"))
    ab, cd = _sha(b"\x01", a, b), _sha(b"\x01", c, d)
    abcd = _sha(b"\x01", ab, cd)

    assert root([a]) == a == _sha(b"\x00a")
    assert root([a, b]) == ab
    assert root([a, b, c]) == _sha(b"\x01", ab, c)  # split at 2: the odd leaf is not paired
    assert root([a, b, c, d]) == abcd
    assert root([a, b, c, d, e]) == _sha(b"\x01", abcd, e)  # split at 4, not 2 + 3


def test_small_proofs_by_hand() -> None:
    a, b, c, d, e = (leaf_hash(x) for x in (b"a", b"b", b"c", b"d", b"e"))
    ab, cd = _sha(b"\x01", a, b), _sha(b"\x01", c, d)
    abcd = _sha(b"\x01", ab, cd)

    assert inclusion_proof(0, [a]) == []
    assert inclusion_proof(2, [a, b, c, d, e]) == [d, ab, e]
    assert inclusion_proof(4, [a, b, c, d, e]) == [abcd]
    assert consistency_proof(2, [a, b, c, d, e]) == [cd, e]
    assert consistency_proof(3, [a, b, c, d, e]) == [c, d, ab, e]
    assert consistency_proof(4, [a, b, c, d, e]) == [e]


# The tree of RFC 6962's reference test data: eight leaves, its roots and some of its proofs, as
# published with Certificate Transparency's implementations.
CT_LEAVES = [
    bytes.fromhex(x)
    for x in (
        *("", "00", "10", "2021", "3031", "40414243"),
        *("5051525354555657", "606162636465666768696a6b6c6d6e6f"),
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_rfc6962_reference_tree_roots() -> None:
    hashes = [leaf_hash(x) for x in CT_LEAVES]
    assert [root(hashes[:n]).hex() for n in range(1, 9)] == CT_ROOTS


def test_rfc6962_reference_tree_proofs() -> None:
    hashes = [leaf_hash(x) for x in CT_LEAVES]
    left_path = [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [p.hex() for p in inclusion_proof(0, hashes)] == left_path
    assert [p.hex() for p in consistency_proof(1, hashes)] == left_path
    assert [p.hex() for p in consistency_proof(6, hashes)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [p.hex() for p in consistency_proof(2, hashes[:5])] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


# Every tree up to MAX_N leaves.


@pytest.mark.parametrize("n", range(MAX_N + 1))
def test_root_matches_the_recursive_definition(n: int) -> None:
    assert root(LEAVES[:n]) == _reference_root(LEAVES[:n])


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_every_inclusion_proof_verifies_and_every_tampering_fails(n: int) -> None:
    hashes, tree_root = LEAVES[:n], root(LEAVES[:n])
    roots = {size: root(LEAVES[:size]) for size in range(1, MAX_N + 2)}
    for i in range(n):
        proof = inclusion_proof(i, hashes)
        assert verify_inclusion(i, n, hashes[i], proof, tree_root), (i, n)

        assert not verify_inclusion(i, n, _flip(hashes[i], 7), proof, tree_root)
        assert not verify_inclusion(i, n, hashes[i], proof, _flip(tree_root, 31))
        for bad in _flipped_proofs(proof):
            assert not verify_inclusion(i, n, hashes[i], bad, tree_root)
        for j in set(range(-1, n + 1)) - {i}:
            assert not verify_inclusion(j, n, hashes[i], proof, tree_root), (j, i, n)
        for size in set(roots) - {n}:
            # The size is bound by the root it is checked against: a signed tree head.
            assert not verify_inclusion(i, size, hashes[i], proof, roots[size]), (i, size, n)
        assert not verify_inclusion(i, n, hashes[i], [*proof, hashes[0]], tree_root)
        if proof:
            assert not verify_inclusion(i, n, hashes[i], proof[:-1], tree_root)


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_every_consistency_proof_verifies_and_every_tampering_fails(n: int) -> None:
    roots = {size: root(LEAVES[:size]) for size in range(MAX_N + 2)}
    for m in range(n + 1):
        proof = consistency_proof(m, LEAVES[:n])
        assert verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
        if m in (0, n):
            assert proof == []
            continue

        assert not verify_consistency(m, n, _flip(roots[m], 0), roots[n], proof)
        assert not verify_consistency(m, n, roots[m], _flip(roots[n], 31), proof)
        for bad in _flipped_proofs(proof):
            assert not verify_consistency(m, n, roots[m], roots[n], bad), (m, n)
        for other in set(range(1, n)) - {m}:
            assert not verify_consistency(other, n, roots[other], roots[n], proof), (other, m, n)
        for other in set(range(m + 1, MAX_N + 2)) - {n}:
            assert not verify_consistency(m, other, roots[m], roots[other], proof), (m, other, n)
        assert not verify_consistency(m, n, roots[m], roots[n], [*proof, roots[1]])
        assert not verify_consistency(m, n, roots[m], roots[n], proof[:-1])


def test_consistency_edge_sizes() -> None:
    r3 = root(LEAVES[:3])
    assert verify_consistency(0, 3, EMPTY_ROOT, r3, [])
    assert not verify_consistency(0, 3, r3, r3, [])
    assert verify_consistency(3, 3, r3, r3, [])
    assert not verify_consistency(3, 3, r3, root(LEAVES[:2]), [])
    assert not verify_consistency(3, 3, r3, r3, [r3])
    assert not verify_consistency(2, 3, root(LEAVES[:2]), r3, [])
    assert not verify_consistency(4, 3, r3, r3, [])
    assert not verify_consistency(-1, 3, r3, r3, [])


def test_verifiers_answer_false_for_malformed_input() -> None:
    r = root(LEAVES[:4])
    proof = inclusion_proof(1, LEAVES[:4])
    assert not verify_inclusion(1, 4, LEAVES[1][:31], proof, r)
    assert not verify_inclusion(1, 4, LEAVES[1], [proof[0], b"short"], r)
    assert not verify_inclusion(1, 4, LEAVES[1], proof, r.hex().encode())
    assert not verify_inclusion(1, 0, LEAVES[1], proof, r)
    assert not verify_consistency(2, 4, root(LEAVES[:2]), r, [b"x" * 33])


def test_building_a_proof_for_a_leaf_outside_the_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="leaf index 5 is outside a tree of 5 leaves"):
        inclusion_proof(5, LEAVES[:5])
    with pytest.raises(ValueError, match="leaf index -1 is outside"):
        inclusion_proof(-1, LEAVES[:5])
    with pytest.raises(ValueError, match=r"earlier size 6 is outside 0\.\.5"):
        consistency_proof(6, LEAVES[:5])


def test_leaf_hashes_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(ValueError, match=r"leaf hash 1 is 5 bytes, expected 32 bytes \(use leaf_h"):
        root([LEAVES[0], b"short"])
    with pytest.raises(ValueError, match="leaf hash 0 is a str"):
        MerkleLog().append("0" * 32)  # type: ignore[arg-type]


# MerkleLog.


def test_merkle_log_tracks_the_root_after_every_append() -> None:
    log = MerkleLog()
    assert log.root() == EMPTY_ROOT
    for n, leaf in enumerate(LEAVES, start=1):
        assert log.append(leaf) == n - 1
        assert (log.size, len(log)) == (n, n)
        assert log.root() == root(LEAVES[:n])


@_properties
@given(st.integers(min_value=0, max_value=600), st.binary(min_size=1, max_size=8))
def test_merkle_log_root_equals_root_for_any_size(n: int, salt: bytes) -> None:
    hashes = [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]
    assert MerkleLog(hashes).root() == root(hashes) == _reference_root(hashes)


def test_a_hundred_thousand_leaf_tree_proves_inclusion_and_consistency() -> None:
    # Speed is the benchmarks' business; this is about proofs at a realistic log size.
    hashes = [leaf_hash(i.to_bytes(8, "big")) for i in range(100_000)]
    tree_root = root(hashes)

    assert MerkleLog(hashes).root() == tree_root
    proof = inclusion_proof(77_777, hashes)
    assert len(proof) == 17
    assert verify_inclusion(77_777, 100_000, hashes[77_777], proof, tree_root)
    assert verify_consistency(
        65_537, 100_000, root(hashes[:65_537]), tree_root, consistency_proof(65_537, hashes)
    )
