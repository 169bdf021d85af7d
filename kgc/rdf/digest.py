"""Digests: of a delta (SHA3-256 and BLAKE3) and of a graph's state (LtHash16).

State digest: ``lthash16-1024`` as in Lewi et al., "Securing Update Propagation with Homomorphic
Hashing" (2019): each quad's canonical N-Quads line is expanded by BLAKE3's extendable output to
1024 lanes of 16 bits, and the state is the lane-wise sum modulo 2**16 over the quads the graph
holds. Adding a quad adds its vector, removing one subtracts it, so an update costs O(|delta|) and
the from-scratch value is the same sum in O(n). Its collision resistance reduces to the short
integer solution problem on a 1024-dimensional lattice, unlike a plain sum of hashes, which
Wagner's generalized birthday attack forges. Receipts carry SHA3-256 over the 2048-byte state, hex.

Implementation: the 1024 lanes live in one Python integer, each lane in a 32-bit slot whose upper
half absorbs carries; masking after every step reduces each lane modulo 2**16.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import blake3

STATE_ALGORITHM = "lthash16-1024/blake3-xof, sha3-256 of the 2048-byte lane vector"
DELTA_ALGORITHMS = ("sha3-256", "blake3")

LANES = 1024
_SLOT_BYTES = 4
_LANE_MASK = int.from_bytes(b"\xff\xff\x00\x00" * LANES, "little")
_LANE_CARRY = int.from_bytes(b"\x00\x00\x01\x00" * LANES, "little")
_UNMASKED = 0xFFFF - 1  # terms that fit in a lane's slot above a reduced lane


def _vector(line: str) -> int:
    raw = blake3.blake3(line.encode("utf-8")).digest(length=LANES * _SLOT_BYTES)
    return int.from_bytes(raw, "little") & _LANE_MASK


class StateDigest:
    """A running LtHash16 of a set of canonical N-Quads lines."""

    __slots__ = ("_acc",)

    def __init__(self, acc: int = 0) -> None:
        self._acc = acc

    @classmethod
    def of(cls, lines: Iterable[str]) -> StateDigest:
        digest = cls()
        digest.update(added=lines)
        return digest

    def copy(self) -> StateDigest:
        return StateDigest(self._acc)

    def update(self, added: Iterable[str] = (), removed: Iterable[str] = ()) -> None:
        # Each term adds at most 0x10000 to a lane, so up to _UNMASKED terms fit in a lane's
        # 32-bit slot before one mask reduces them all: a mask per term cost ~1 µs each.
        acc, pending = self._acc, 0
        for line in added:
            acc += _vector(line)
            pending += 1
            if pending == _UNMASKED:
                acc, pending = acc & _LANE_MASK, 0
        for line in removed:
            acc += _LANE_CARRY - _vector(line)
            pending += 1
            if pending == _UNMASKED:
                acc, pending = acc & _LANE_MASK, 0
        self._acc = acc & _LANE_MASK

    def lanes(self) -> bytes:
        """The 1024 lanes as 2048 little-endian bytes."""
        slots = self._acc.to_bytes(LANES * _SLOT_BYTES, "little")
        out = bytearray(LANES * 2)
        out[0::2] = slots[0::_SLOT_BYTES]
        out[1::2] = slots[1::_SLOT_BYTES]
        return bytes(out)

    def hexdigest(self) -> str:
        return hashlib.sha3_256(self.lanes()).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StateDigest) and other._acc == self._acc

    def __hash__(self) -> int:
        return hash(self._acc)


def delta_digests(additions: Iterable[str], removals: Iterable[str]) -> dict[str, str]:
    """SHA3-256 and BLAKE3 over the delta's canonical form.

    The canonical form is every addition line, sorted, each as ``+ LINE\\n``, followed by every
    removal line, sorted, each as ``- LINE\\n``, in UTF-8.
    """
    body = "".join(f"+ {line}\n" for line in sorted(additions))
    body += "".join(f"- {line}\n" for line in sorted(removals))
    data = body.encode("utf-8")
    return {
        "sha3-256": hashlib.sha3_256(data).hexdigest(),
        "blake3": blake3.blake3(data).hexdigest(),
    }
