"""Checks of one receipt record, shared by the git and journal sides of verification.

A receipt record is ``{"type": "receipt", "seq", "receipt": BODY, "hash", "signature", "delta"}``
(``docs/lockchain.md``). ``check_record`` recomputes what can be recomputed from the record alone
and the public keys: the body's hash, the delta's digest, the signature.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kgc.errors import CanonicalJSONError
from kgc.lockchain import merkle
from kgc.lockchain.fastjson import dumps
from kgc.lockchain.report import Problem
from kgc.rdf.digest import delta_digests

_HEX = re.compile("[0-9a-f]*")


@dataclass(frozen=True)
class Checked:
    """What the chain needs of a receipt once its record was checked."""

    seq: int
    hash: str
    prev: str
    leaf: bytes
    key_id: str | None


def is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and _HEX.fullmatch(value) is not None


def record_shape(record: Any) -> str | None:
    """Why ``record`` is not a receipt record, or ``None`` if it has the right shape."""
    if not isinstance(record, dict) or record.get("type") != "receipt":
        return "is not a receipt record"
    body, delta = record.get("receipt"), record.get("delta")
    if not isinstance(body, dict):
        return "has no receipt body"
    if not isinstance(record.get("seq"), int) or body.get("seq") != record["seq"]:
        return f"has seq {record.get('seq')!r} but its body says {body.get('seq')!r}"
    if not is_hex(record.get("hash"), 64):
        return "has no 64-hex-digit hash"
    signature = record.get("signature")
    if signature is not None and not is_hex(signature, 128):
        return "has a signature that is not 128 hex digits"
    if not isinstance(body.get("prev"), str):
        return "has a body without prev"
    if not isinstance(delta, dict) or not all(
        isinstance(delta.get(side), list) and all(isinstance(x, str) for x in delta[side])
        for side in ("additions", "removals")
    ):
        return "has no delta with additions and removals as lists of lines"
    return None


def check_record(
    record: Any,
    fast: bool,
    seq: int,
    keys: Mapping[str, str],
    where: str,
    problems: list[Problem],
) -> Checked | None:
    """Check one receipt record; append what is wrong to ``problems``.

    1. shape (``None`` is returned when the record is unusable);
    2. hash: SHA-256 of the body's RFC 8785 form equals the recorded hash;
    3. delta: the delta lines' digests equal the body's ``delta_digest``;
    4. signature: by a key ``keys`` lists, and valid over the body's RFC 8785 form.
    """
    reason = record_shape(record)
    if reason is not None:
        problems.append(Problem(seq, "shape", f"{where}: the record {reason}"))
        return None
    body = record["receipt"]
    try:
        form = dumps(body, fast)
    except CanonicalJSONError as exc:
        problems.append(Problem(seq, "shape", f"{where}: the body has no RFC 8785 form ({exc})"))
        return None

    digest = hashlib.sha256(form).hexdigest()
    if digest != record["hash"]:
        problems.append(
            Problem(
                seq,
                "hash",
                f"{where}: the body hashes to {digest[:16]}..., not "
                f"to its recorded hash {record['hash'][:16]}... (body edited)",
            )
        )
    _check_delta(record, seq, where, problems)
    _check_signature(record, form, seq, keys, where, problems)
    kid = body.get("key_id")
    return Checked(
        seq,
        record["hash"],
        body["prev"],
        merkle.leaf_hash(form),
        kid if isinstance(kid, str) else None,
    )


def _check_delta(record: dict[str, Any], seq: int, where: str, problems: list[Problem]) -> None:
    delta = record["delta"]
    expected = record["receipt"].get("delta_digest")
    if delta_digests(delta["additions"], delta["removals"]) != expected:
        problems.append(
            Problem(
                seq,
                "delta",
                f"{where}: the delta's lines do not match the "
                "body's delta_digest (a delta line was changed)",
            )
        )


def _check_signature(
    record: dict[str, Any],
    form: bytes,
    seq: int,
    keys: Mapping[str, str],
    where: str,
    problems: list[Problem],
) -> None:
    kid, signature = record["receipt"].get("key_id"), record["signature"]
    if kid is None:
        if signature is not None:
            problems.append(Problem(seq, "signature", f"{where}: has a signature but no key_id"))
        return
    public = keys.get(kid) if isinstance(kid, str) else None
    if public is None:
        problems.append(
            Problem(
                seq,
                "key",
                f"{where}: signed by key {str(kid)[:16]}..., which "
                "keys.json does not list (unknown key)",
            )
        )
    elif signature is None:
        problems.append(
            Problem(
                seq,
                "signature",
                f"{where}: names key {kid[:16]}... but carries no signature (signature stripped)",
            )
        )
    elif not verify_signature(public, form, signature):
        problems.append(
            Problem(
                seq,
                "signature",
                f"{where}: the signature does not verify with "
                f"key {kid[:16]}... (forged, or the body was re-hashed)",
            )
        )


def verify_signature(public_key_hex: str, data: bytes, signature_hex: str) -> bool:
    """Ed25519 verification with the public key object cached (loading it costs a third)."""
    public = _public_key(public_key_hex)
    if public is None:
        return False
    try:
        public.verify(bytes.fromhex(signature_hex), data)
    except (InvalidSignature, ValueError):
        return False
    return True


@lru_cache(maxsize=64)
def _public_key(public_key_hex: str) -> Ed25519PublicKey | None:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
    except ValueError:
        return None


def describe_difference(git: dict[str, Any], journal: dict[str, Any]) -> str:
    """Which parts of two records of the same receipt differ, for a message."""
    gbody, jbody = git.get("receipt"), journal.get("receipt")
    if isinstance(gbody, dict) and isinstance(jbody, dict):
        fields = sorted(k for k in gbody.keys() | jbody.keys() if gbody.get(k) != jbody.get(k))
        if fields:
            first = fields[0]
            return (
                f"body field(s) {', '.join(fields)} differ ({first}: git "
                f"{_short(gbody.get(first))}, journal {_short(jbody.get(first))})"
            )
    parts = sorted(k for k in git.keys() | journal.keys() if git.get(k) != journal.get(k))
    return f"record field(s) {', '.join(parts)} differ"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
