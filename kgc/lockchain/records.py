"""Shared definitions of the chain: genesis, receipt hashing."""

from __future__ import annotations

import hashlib

GENESIS = "0" * 64
FORMAT = "kgc-lockchain/1"


def receipt_hash(canonical_form: bytes) -> str:
    """SHA-256 (hex) over a receipt body's RFC 8785 form."""
    return hashlib.sha256(canonical_form).hexdigest()
