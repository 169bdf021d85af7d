"""Shared definitions of the chain: genesis, receipt hashing, key ids, tree-head messages.

``docs/lockchain.md`` specifies each of these byte for byte.
"""

from __future__ import annotations

import hashlib

from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.signing import SigningKey

GENESIS = "0" * 64
FORMAT = "kgc-lockchain/1"


def receipt_hash(canonical_form: bytes) -> str:
    """SHA-256 (hex) over a receipt body's RFC 8785 form."""
    return hashlib.sha256(canonical_form).hexdigest()


def key_id(key: SigningKey) -> str:
    """The id of a signing key: SHA-256 (hex) of its raw 32-byte Ed25519 public key."""
    return public_key_id(key.public_key_hex)


def public_key_id(public_key_hex: str) -> str:
    """The id of the key whose public key is ``public_key_hex`` (64 hex digits)."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()


def tree_head_message(size: int, root_hex: str) -> bytes:
    """The bytes a tree-head signature covers: RFC 8785 form of ``{"root": ..., "size": ...}``."""
    return canonical_json({"size": size, "root": root_hex})
