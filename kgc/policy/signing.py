"""Detached Ed25519 signatures of policy packs (``pack.sig``) and the keys trusted to make them.

``pack.sig`` is one JSON object::

    {"format": "kgc-pack-sig/1", "algorithm": "Ed25519", "key_id": "<sha256 of the public key>",
     "digest": "<pack digest>", "signature": "<128 hex digits>"}

The signed message is the ASCII bytes ``kgc-pack-sig/1:`` followed by the pack digest in hex.
The prefix keeps a pack signature from ever being valid as a lockchain signature (and back).
``digest`` is informational: verification recomputes the digest from the files, never reads it.

Keys are the lockchain's (``kgc.lockchain.signing``): a private key in PEM PKCS#8 or as a hex
or base64 seed; a public key as 64 hex digits. A trusted-keys file holds public keys one per
line; blank lines and text after ``#`` are ignored.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kgc.errors import PackSignatureError, PolicyPackError
from kgc.lockchain.records import public_key_id
from kgc.lockchain.signing import SigningKey, verify

SIGNATURE_FORMAT = "kgc-pack-sig/1"
SIGNATURE_FILE = "pack.sig"
_PUBLIC = re.compile(r"[0-9a-f]{64}")
_SIG_FIELDS = {"format", "algorithm", "key_id", "digest", "signature"}


def signed_message(digest: str) -> bytes:
    return f"{SIGNATURE_FORMAT}:{digest}".encode("ascii")


@dataclass(frozen=True)
class TrustedKeys:
    """Public keys (hex) trusted to sign packs, by key id."""

    keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_hex(cls, *public_keys: str) -> TrustedKeys:
        keys = {}
        for text in public_keys:
            hexkey = text.strip().lower()
            if not _PUBLIC.fullmatch(hexkey):
                raise PolicyPackError(f"{text!r} is not an Ed25519 public key (64 hex digits)")
            keys[public_key_id(hexkey)] = hexkey
        return cls(keys)

    @classmethod
    def from_files(cls, *paths: str | os.PathLike[str]) -> TrustedKeys:
        keys: dict[str, str] = {}
        for path in paths:
            keys.update(_read_key_file(Path(path)).keys)
        return cls(keys)

    def __len__(self) -> int:
        return len(self.keys)


def _read_key_file(path: Path) -> TrustedKeys:
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyPackError(f"trusted key file {path}: cannot be read ({exc})") from exc
    found = [line.split("#", 1)[0].strip() for line in lines]
    found = [line for line in found if line]
    bad = [line for line in found if not _PUBLIC.fullmatch(line.lower())]
    if bad or not found:
        raise PolicyPackError(
            f"trusted key file {path}: expected Ed25519 public keys as 64 hex digits, one a line"
        )
    return TrustedKeys.from_hex(*found)


def sign_pack(root: str | os.PathLike[str], key: SigningKey) -> Path:
    """Verify the pack in ``root`` (unsigned), then write its ``pack.sig`` signed with ``key``."""
    from kgc.policy.pack import load_pack

    directory = Path(root)
    sig_file = directory / SIGNATURE_FILE
    if sig_file.exists():
        sig_file.unlink()
    pack = load_pack(directory)
    body = {
        "format": SIGNATURE_FORMAT,
        "algorithm": "Ed25519",
        "key_id": public_key_id(key.public_key_hex),
        "digest": pack.digest,
        "signature": key.sign(signed_message(pack.digest)).hex(),
    }
    sig_file.write_text(json.dumps(body, indent=2) + "\n", "utf-8")
    return sig_file


def verify_pack_signature(
    root: Path, digest: str, trusted: TrustedKeys, *, required: bool
) -> str | None:
    """The key id that signed the pack in ``root``, or ``None`` for an unsigned pack.

    1. no ``pack.sig``: refused when ``required``, else the pack is unsigned;
    2. the file must be a ``kgc-pack-sig/1`` object naming its key id;
    3. that key must be trusted (a signature by an unknown key is refused, not ignored);
    4. the signature must verify over ``signed_message(digest)`` for the digest recomputed
       from the pack's files.
    """
    sig_file = root / SIGNATURE_FILE
    if not sig_file.exists():
        if required:
            raise PackSignatureError(f"{root}: unsigned, and signatures are required")
        return None

    body = _read_signature(sig_file)

    public = trusted.keys.get(body["key_id"])
    if public is None:
        raise PackSignatureError(
            f"{sig_file}: signed by key {body['key_id'][:16]}..., which is not trusted "
            "(pass its public key with --trust or KGC_POLICY_TRUSTED_KEYS)"
        )

    signature = bytes.fromhex(body["signature"])
    if not verify(public, signed_message(digest), signature):
        raise PackSignatureError(
            f"{sig_file}: the signature does not verify for pack digest {digest} "
            "(a file or the manifest changed after signing, or the signature is forged)"
        )
    return str(body["key_id"])


def _read_signature(sig_file: Path) -> dict[str, str]:
    try:
        body = json.loads(sig_file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackSignatureError(f"{sig_file}: not a readable signature file ({exc})") from exc
    if not isinstance(body, dict) or set(body) != _SIG_FIELDS:
        raise PackSignatureError(f"{sig_file}: expected exactly the fields {sorted(_SIG_FIELDS)}")
    if body["format"] != SIGNATURE_FORMAT or body["algorithm"] != "Ed25519":
        raise PackSignatureError(f"{sig_file}: unknown format or algorithm")
    key, signature = body["key_id"], body["signature"]
    if not (isinstance(key, str) and _PUBLIC.fullmatch(key)):
        raise PackSignatureError(f"{sig_file}: 'key_id' must be 64 lowercase hex digits")
    if not (isinstance(signature, str) and re.fullmatch(r"[0-9a-f]{128}", signature)):
        raise PackSignatureError(f"{sig_file}: 'signature' must be 128 lowercase hex digits")
    return body
