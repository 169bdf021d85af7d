"""Ed25519 signing keys: RFC 8032 vector, round trips, tampering, and every refused key source."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kgc.errors import ConfigError, SigningKeyError
from kgc.lockchain.signing import SigningKey, verify

# RFC 8032 §7.1, TEST 1: the empty message.
RFC8032_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def _write(path: Path, data: str | bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def test_rfc8032_test_1_verifies() -> None:
    assert verify(RFC8032_PUBLIC, b"", RFC8032_SIGNATURE)


def test_rfc8032_test_1_key_signs_as_published() -> None:
    key = SigningKey.from_seed(bytes.fromhex(RFC8032_SECRET))
    assert key.public_key_hex == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIGNATURE


def test_sign_verify_round_trip() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"receipt body")
    assert len(signature) == 64
    assert verify(key.public_key_hex, b"receipt body", signature)
    assert key.sign(b"receipt body") == signature  # Ed25519 is deterministic


def test_another_key_does_not_verify() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    assert not verify(other.public_key_hex, b"data", key.sign(b"data"))


@pytest.mark.parametrize("bit", [0, 7, 100, 511])
def test_a_flipped_signature_bit_fails(bit: int) -> None:
    key = SigningKey.generate()
    signature = bytearray(key.sign(b"data"))
    signature[bit // 8] ^= 1 << (bit % 8)
    assert not verify(key.public_key_hex, b"data", bytes(signature))


def test_a_flipped_data_bit_fails() -> None:
    key = SigningKey.generate()
    assert not verify(key.public_key_hex, b"datb", key.sign(b"data"))
    assert not verify(key.public_key_hex, b"data ", key.sign(b"data"))


@pytest.mark.parametrize(
    ("public", "data", "signature"),
    [
        ("zz" * 32, b"", RFC8032_SIGNATURE),  # not hex
        (RFC8032_PUBLIC[:-2], b"", RFC8032_SIGNATURE),  # 31 bytes
        (RFC8032_PUBLIC + "00", b"", RFC8032_SIGNATURE),  # 33 bytes
        ("", b"", RFC8032_SIGNATURE),
        (RFC8032_PUBLIC, b"", RFC8032_SIGNATURE[:63]),
        (RFC8032_PUBLIC, b"", b""),
        (RFC8032_PUBLIC, b"", RFC8032_SIGNATURE.hex()),  # hex text, not bytes
        (RFC8032_PUBLIC, "", RFC8032_SIGNATURE),  # str data
        (None, b"", RFC8032_SIGNATURE),
        (bytes.fromhex(RFC8032_PUBLIC), b"", RFC8032_SIGNATURE),
        ("ff" * 32, b"", RFC8032_SIGNATURE),  # not a point on the curve
    ],
)
def test_verify_never_raises_on_bad_input(public: Any, data: Any, signature: Any) -> None:
    assert verify(public, data, signature) is False


def test_repr_shows_the_public_key_only() -> None:
    key = SigningKey.from_seed(bytes.fromhex(RFC8032_SECRET))
    assert repr(key) == f"SigningKey(public_key_hex='{RFC8032_PUBLIC}')"
    assert RFC8032_SECRET not in repr(key)


# Key sources.


@pytest.mark.parametrize(
    "text",
    [
        RFC8032_SECRET,
        RFC8032_SECRET.upper() + "\n",
        "  " + base64.b64encode(bytes.fromhex(RFC8032_SECRET)).decode() + "\r\n",
        SigningKey.from_seed(bytes.fromhex(RFC8032_SECRET)).to_pem().decode(),
    ],
    ids=["hex", "upper-hex-newline", "base64", "pem"],
)
def test_key_file_formats(tmp_path: Path, text: str) -> None:
    key = SigningKey.from_file(_write(tmp_path / "key", text))
    assert key.public_key_hex == RFC8032_PUBLIC


@pytest.mark.parametrize(
    "text",
    [RFC8032_SECRET, SigningKey.from_seed(bytes.fromhex(RFC8032_SECRET)).to_pem().decode()],
    ids=["hex", "pem"],
)
def test_key_from_environment(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("KGC_TEST_SIGNING_KEY", text)
    assert SigningKey.from_env("KGC_TEST_SIGNING_KEY").public_key_hex == RFC8032_PUBLIC


def test_pem_round_trip(tmp_path: Path) -> None:
    key = SigningKey.generate()
    again = SigningKey.from_file(_write(tmp_path / "key.pem", key.to_pem()))
    assert again.public_key_hex == key.public_key_hex


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(SigningKeyError, match=f"signing key file {missing}: cannot be read"):
        SigningKey.from_file(missing)


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match=f"signing key file {tmp_path}: cannot be read"):
        SigningKey.from_file(tmp_path)


def _encrypted_pem() -> bytes:
    key = SigningKey.generate()
    return serialization.load_pem_private_key(key.to_pem(), None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


def _ec_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


MALFORMED = [
    ("", "is empty"),
    ("\n  \n", "is empty"),
    ("not a key", "not a key in a known format; expected an unencrypted PEM PKCS#8 Ed25519"),
    (RFC8032_SECRET[:-2], "not a key in a known format"),  # 31-byte seed
    (RFC8032_SECRET + "00", "not a key in a known format"),  # 33-byte seed
    (RFC8032_SECRET[:-1] + "g", "not a key in a known format"),
    (base64.b64encode(b"x" * 33).decode(), "not a key in a known format"),
    (_encrypted_pem(), "is encrypted; kgc reads unencrypted PKCS#8 keys only"),
    (_ec_pem(), r"holds a key of type EC \(secp256r1\), not Ed25519"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n", "is an OpenSSH key file; convert it"),
    ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PEM that does not load"),
    (b"\xff\xfe" + b"\x00" * 30, "not a key in a known format"),
]


@pytest.mark.parametrize(("content", "message"), MALFORMED)
def test_malformed_key_file_is_refused_naming_the_file(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    path = _write(tmp_path / "signing.key", content)
    with pytest.raises(SigningKeyError, match=f"^signing key file {path}: {message}"):
        SigningKey.from_file(path)


@pytest.mark.parametrize(("content", "message"), [m for m in MALFORMED if isinstance(m[0], str)])
def test_malformed_key_variable_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    monkeypatch.setenv("KGC_TEST_SIGNING_KEY", content)
    with pytest.raises(
        SigningKeyError, match=rf"^signing key in \$KGC_TEST_SIGNING_KEY: {message}"
    ):
        SigningKey.from_env("KGC_TEST_SIGNING_KEY")


def test_unset_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KGC_TEST_SIGNING_KEY", raising=False)
    with pytest.raises(SigningKeyError, match=r"\$KGC_TEST_SIGNING_KEY: the variable is not set"):
        SigningKey.from_env("KGC_TEST_SIGNING_KEY")


def test_refusal_never_shows_the_key(tmp_path: Path) -> None:
    almost = RFC8032_SECRET + "ab"
    with pytest.raises(SigningKeyError) as caught:
        SigningKey.from_file(_write(tmp_path / "key", almost))
    assert almost not in str(caught.value)
    assert RFC8032_SECRET not in str(caught.value)


def test_signing_key_error_is_a_config_error() -> None:
    assert issubclass(SigningKeyError, ConfigError)


def test_seed_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(SigningKeyError, match="an Ed25519 seed is 32 bytes, got 31"):
        SigningKey.from_seed(b"x" * 31)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_key_file_readable_by_others_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "key", RFC8032_SECRET, mode=0o644)
    with caplog.at_level(logging.WARNING, logger="kgc.lockchain.signing"):
        key = SigningKey.from_file(path)
    assert key.public_key_hex == RFC8032_PUBLIC
    assert f"signing key file {path} can be read by group or others (mode 644)" in caplog.text


def test_private_key_file_raises_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kgc.lockchain.signing"):
        SigningKey.from_file(_write(tmp_path / "key", RFC8032_SECRET))
    assert caplog.text == ""
