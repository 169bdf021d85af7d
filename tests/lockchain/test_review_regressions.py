"""Faults a fresh reviewer found by using kgc as a new user would; each test reproduces one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgc import (
    Delta,
    InputError,
    KnowledgeEngine,
    Lockchain,
    NonCanonicalLiteral,
    SigningKey,
    StoreError,
)
from kgc.errors import LockchainError
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.checkpoint import verify_checkpoints
from kgc.lockchain.records import key_id, receipt_hash
from kgc.lockchain.verify import verify_lockchain

ONE = Delta.from_text('<urn:a> <urn:p> "1" .')
TWO = Delta.from_text('<urn:b> <urn:p> "2" .')


def _signed_chain(directory: Path, key: SigningKey) -> None:
    with KnowledgeEngine(lockchain_path=directory, signing_key=key, git_anchoring=False) as engine:
        engine.apply(ONE, actor="t")


def test_signed_lockchain_cannot_be_reopened_without_its_key(tmp_path: Path) -> None:
    _signed_chain(tmp_path, SigningKey.generate())

    with pytest.raises(LockchainError, match="its receipts are signed with key"):
        KnowledgeEngine(lockchain_path=tmp_path, git_anchoring=False)


def test_signed_lockchain_refuses_another_key_unless_rotating(tmp_path: Path) -> None:
    _signed_chain(tmp_path, SigningKey.generate())

    with pytest.raises(LockchainError, match="to rotate keys deliberately"):
        KnowledgeEngine(lockchain_path=tmp_path, signing_key=SigningKey.generate())


def test_forged_unsigned_journal_fails_verification_with_a_pinned_key(tmp_path: Path) -> None:
    key = SigningKey.generate()
    _signed_chain(tmp_path, key)
    journal = tmp_path / "journal.jsonl"
    forged = []
    for line in journal.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "receipt":
            record["receipt"].pop("key_id", None)
            record["receipt"]["actor"] = "mallory"
            record["hash"] = receipt_hash(canonical_json(record["receipt"]))
            record["signature"] = None
        forged.append(json.dumps(record))
    journal.write_text("\n".join(forged) + "\n")

    report = Lockchain(tmp_path).verify()
    pinned = verify_lockchain(tmp_path, trusted_keys=[key.public_key_hex])

    assert report.ok  # nothing signed and nothing pinned: a chain anyone could have written
    assert not pinned.ok
    assert pinned.first is not None
    assert pinned.first.seq == 1
    assert "unsigned, but trusted keys were given" in pinned.first.message


def test_a_directory_that_is_not_a_lockchain_does_not_verify(tmp_path: Path) -> None:
    report = Lockchain(tmp_path).verify()

    assert not report.ok
    assert report.first is not None
    assert "not a lockchain" in report.first.message


def test_a_new_lockchain_refuses_a_store_that_already_holds_data(tmp_path: Path) -> None:
    with KnowledgeEngine(store_path=tmp_path / "store") as engine:
        engine.apply(ONE, actor="t")

    with pytest.raises(LockchainError, match="must start from the empty graph"):
        KnowledgeEngine(store_path=tmp_path / "store", lockchain_path=tmp_path / "chain")


def test_literal_policy_refuse_is_enforced_by_apply() -> None:
    engine = KnowledgeEngine(literal_policy="refuse")
    delta = Delta.from_text('<urn:a> <urn:p> "01"^^<http://www.w3.org/2001/XMLSchema#integer> .')

    with pytest.raises(NonCanonicalLiteral, match='would be stored as "1"'):
        engine.apply(delta, actor="t")
    assert len(engine) == 0


def test_apply_after_close_is_a_clear_error(tmp_path: Path) -> None:
    engine = KnowledgeEngine(store_path=tmp_path / "store")
    engine.close()

    with pytest.raises(StoreError, match="is closed"):
        engine.apply(TWO, actor="t")


def test_delta_from_a_non_iterable_is_an_input_error() -> None:
    with pytest.raises(InputError, match="additions must be an iterable of quads"):
        Delta(5)  # type: ignore[arg-type]


def test_unsigned_checkpoint_on_a_signed_chain_is_refused(tmp_path: Path) -> None:
    key = SigningKey.generate()
    _signed_chain(tmp_path, key)
    Lockchain(tmp_path).checkpoint()  # no key

    problems = verify_checkpoints(tmp_path, {key_id(key): key.public_key_hex})

    assert len(problems) == 1
    assert problems[0].startswith("checkpoint at receipt 1 ")
    assert problems[0].endswith("unsigned, but the lockchain's receipts are signed")
