"""Ed25519 (RFC 8032) signatures over lockchain records, with the ``cryptography`` package.

A ``SigningKey`` signs; anyone holding its public key (64 hex digits) can ``verify``.

Key text accepted by ``SigningKey.from_file`` and ``SigningKey.from_env``, surrounding whitespace
ignored:

- PEM, PKCS#8, unencrypted (``-----BEGIN PRIVATE KEY-----``), as written by ``to_pem()`` or
  ``openssl genpkey -algorithm ed25519``;
- the 32-byte private seed as 64 hex digits;
- the 32-byte private seed in base64 (standard alphabet, padded: 44 characters).

Refused, with a ``SigningKeyError`` naming the file or variable (never the key): encrypted PEM,
keys of other algorithms, OpenSSH key files, anything else. A key file that group or others can
read is used, with a warning.
"""

from __future__ import annotations

import binascii
import logging
import os
import re
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kgc.errors import SigningKeyError

logger = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
_HEX_SEED = re.compile(rb"[0-9a-fA-F]{64}")
_FORMATS = (
    "expected an unencrypted PEM PKCS#8 Ed25519 private key, or the 32-byte seed as 64 hex"
    " digits or base64"
)


class SigningKey:
    """An Ed25519 private key. Its ``repr`` shows the public key only."""

    __slots__ = ("_private", "_public_hex")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._private = private_key
        self._public_hex = public.hex()

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key (from the operating system's CSPRNG)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key whose 32-byte private seed is ``seed`` (RFC 8032's "secret key")."""
        if len(seed) != SEED_SIZE:
            raise SigningKeyError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SigningKey:
        """Read a key file in one of the formats listed in the module docstring."""
        where = f"signing key file {os.fspath(path)}"
        try:
            data = Path(path).read_bytes()
            mode = Path(path).stat().st_mode
        except OSError as exc:
            raise SigningKeyError(f"{where}: cannot be read ({exc.strerror})") from exc

        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "%s can be read by group or others (mode %o); chmod 600 it",
                where,
                stat.S_IMODE(mode),
            )
        return cls._parse(data, where)

    @classmethod
    def from_env(cls, var: str) -> SigningKey:
        """Read the key from environment variable ``var``: the key text itself, not a path."""
        where = f"signing key in ${var}"
        value = os.environ.get(var)
        if value is None:
            raise SigningKeyError(f"{where}: the variable is not set")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SigningKeyError(f"{where}: is not text; {_FORMATS}") from exc
        return cls._parse(data, where)

    @classmethod
    def _parse(cls, data: bytes, where: str) -> SigningKey:
        text = data.strip()
        if not text:
            raise SigningKeyError(f"{where}: is empty; {_FORMATS}")
        if text.startswith(b"-----BEGIN"):
            return cls(_load_pem(text, where))
        seed = _decode_seed(text)
        if seed is None:
            raise SigningKeyError(f"{where}: not a key in a known format; {_FORMATS}")
        return cls.from_seed(seed)

    @property
    def public_key_hex(self) -> str:
        """The 32-byte public key as 64 lowercase hex digits: what ``verify`` takes."""
        return self._public_hex

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data`` (deterministic: same key and data, same
        signature)."""
        return self._private.sign(data)

    def to_pem(self) -> bytes:
        """The private key as unencrypted PEM PKCS#8, readable by ``from_file``. Keep it secret."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"SigningKey(public_key_hex={self._public_hex!r})"


def verify(public_key_hex: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key_hex``'s Ed25519 signature of ``data``.

    Never raises: a malformed key, signature or argument of the wrong type answers ``False``.
    """
    if not (
        isinstance(public_key_hex, str)
        and isinstance(data, bytes | bytearray | memoryview)
        and isinstance(signature, bytes | bytearray | memoryview)
    ):
        return False
    if len(public_key_hex) != 2 * PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        public.verify(bytes(signature), bytes(data))
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True


def _load_pem(text: bytes, where: str) -> Ed25519PrivateKey:
    if text.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"):
        raise SigningKeyError(f"{where}: is encrypted; kgc reads unencrypted PKCS#8 keys only")
    if text.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
        raise SigningKeyError(
            f"{where}: is an OpenSSH key file; convert it to PKCS#8"
            " (ssh-keygen -p -m PKCS8 -f FILE) or give the seed"
        )
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{where}: PEM that does not load as a private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: holds a key of type {_key_type(key)}, not {ALGORITHM}")
    return key


def _key_type(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA ({key.key_size} bits)"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC ({key.curve.name})"
    if isinstance(key, ed448.Ed448PrivateKey):
        return "Ed448"
    return type(key).__name__


def _decode_seed(text: bytes) -> bytes | None:
    """The 32-byte seed written as hex or base64, or ``None`` if ``text`` is neither."""
    if _HEX_SEED.fullmatch(text):
        return bytes.fromhex(text.decode("ascii"))
    try:
        seed = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None
    return seed if len(seed) == SEED_SIZE else None
