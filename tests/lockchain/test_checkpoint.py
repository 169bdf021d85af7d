"""Checkpoints: the RDFC-1.0 canonical hash at a receipt, recorded in git and verified."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pygit2
import pytest

from kgc import Delta, KnowledgeEngine
from kgc.errors import CanonicalizationBudgetExceeded, LockchainError
from kgc.lockchain.checkpoint import (
    CHECKPOINT_FILE,
    CHECKPOINT_REF,
    read_checkpoints,
    verify_checkpoints,
)
from kgc.lockchain.records import key_id
from kgc.lockchain.signing import SigningKey

CYCLE = '_:x <urn:p> _:y .\n_:y <urn:p> _:x .\n_:x <urn:q> "k" .\n'
SHARED = Path(__file__).resolve().parents[3] / "shared"


def _engine(directory: Path, key: SigningKey) -> KnowledgeEngine:
    return KnowledgeEngine(lockchain_path=directory, signing_key=key, git_anchoring=False)


def _keys(key: SigningKey) -> dict[str, str]:
    return {key_id(key): key.public_key_hex}


def test_checkpoint_records_the_canonical_hash_of_the_committed_graph(tmp_path: Path) -> None:
    key = SigningKey.generate()
    with _engine(tmp_path, key) as engine:
        engine.apply(Delta.from_text(CYCLE), actor="t")
        point = engine.checkpoint()
        expected = engine.canonical_hash().hexdigest

    assert (point.seq, point.canonical_hash, point.quads, point.signed) == (1, expected, 3, True)
    assert [c["checkpoint"]["seq"] for c in read_checkpoints(tmp_path)] == [1]
    assert verify_checkpoints(tmp_path, _keys(key), recompute=True) == []


def test_checkpoint_hash_ignores_blank_node_labels_where_the_state_digest_does_not(
    tmp_path: Path,
) -> None:
    # Case L3: the same graph written with other labels, shuffled, with a duplicated line.
    other = '_:b <urn:q> "k" .\n_:a <urn:p> _:b .\n_:b <urn:p> _:a .\n_:a <urn:p> _:b .\n'
    points = []
    for name, text in (("one", CYCLE), ("two", other)):
        with _engine(tmp_path / name, SigningKey.generate()) as engine:
            engine.apply(Delta.from_text(text), actor="t")
            points.append(engine.checkpoint())

    assert points[0].canonical_hash == points[1].canonical_hash
    assert points[0].state_digest != points[1].state_digest


def _rewrite_last(directory: Path, edit: dict[str, object]) -> None:
    import json

    from kgc.lockchain.canonical import canonical_json

    repo = pygit2.Repository(str(directory / "git"))
    commit = repo[repo.references[CHECKPOINT_REF].target]
    blob = repo[commit.tree[CHECKPOINT_FILE].id]
    data = json.loads(blob.data)
    data["checkpoint"].update(edit)
    tree = repo.TreeBuilder()
    tree.insert(CHECKPOINT_FILE, repo.create_blob(canonical_json(data)), pygit2.enums.FileMode.BLOB)
    who = pygit2.Signature("x", "x@x.invalid")
    oid = repo.create_commit(None, who, who, "forged\n", tree.write(), list(commit.parent_ids))
    repo.references.create(CHECKPOINT_REF, oid, force=True)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"seq": 2}, "signature does not verify"),
        ({"state_digest": "0" * 64}, "signature does not verify"),
    ],
)
def test_an_edited_signed_checkpoint_is_refused(
    tmp_path: Path, edit: dict[str, object], expected: str
) -> None:
    key = SigningKey.generate()
    with _engine(tmp_path, key) as engine:
        engine.apply(Delta.from_text(CYCLE), actor="t")
        engine.checkpoint()
    _rewrite_last(tmp_path, edit)

    problems = verify_checkpoints(tmp_path, _keys(key))

    assert len(problems) == 1
    assert problems[0].startswith("checkpoint at receipt ")
    assert expected in problems[0]


def test_an_unsigned_checkpoint_with_a_wrong_hash_is_caught_by_recomputing(
    tmp_path: Path,
) -> None:
    engine = KnowledgeEngine(lockchain_path=tmp_path, git_anchoring=False)
    engine.apply(Delta.from_text(CYCLE), actor="t")
    engine.checkpoint()
    engine.close()
    _rewrite_last(
        tmp_path,
        {"canonical": {"algorithm": "RDFC-1.0", "hash": "f" * 64, "quads": 3}},
    )

    assert verify_checkpoints(tmp_path, {}, recompute=False) == []
    problems = verify_checkpoints(tmp_path, {}, recompute=True)
    assert len(problems) == 1
    assert "canonical hash is " in problems[0]
    assert "the checkpoint says " + "f" * 64 in problems[0]


def test_checkpoint_needs_a_lockchain() -> None:
    with pytest.raises(LockchainError, match="checkpoints need a lockchain"):
        KnowledgeEngine().checkpoint()


def test_poison_graph_checkpoint_stops_within_budget_and_records_nothing(tmp_path: Path) -> None:
    poison = SHARED / "cases" / "w3c" / "rdf-canon" / "tests" / "rdfc10" / "test074-in.nq"
    if not poison.is_file():
        pytest.skip(f"rdf-canon suite not found at {poison}")
    with _engine(tmp_path, SigningKey.generate()) as engine:
        engine.load(poison)
        t = time.monotonic()
        with pytest.raises(CanonicalizationBudgetExceeded):
            engine.checkpoint(budget_s=2.0)
        assert time.monotonic() - t < 5.0

    assert read_checkpoints(tmp_path) == []


def test_checkpoint_and_verify_commands(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key = SigningKey.generate()
    key_file.write_bytes(key.to_pem())
    key_file.chmod(0o600)
    chain = tmp_path / "chain"
    with KnowledgeEngine(lockchain_path=chain, signing_key=key) as engine:
        engine.apply(Delta.from_text(CYCLE), actor="t")

    made = _kgc("lockchain", "checkpoint", str(chain), "--key-file", str(key_file))
    checked = _kgc("lockchain", "verify", str(chain), "--replay")

    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("checkpoint at receipt 1: RDFC-1.0 SHA-256 ")
    assert checked.returncode == 0, checked.stderr
    assert "checkpoints: 1 checked (signatures, state digests and canonical hashes), 0 bad" in (
        checked.stdout
    )

    _rewrite_last(chain, {"seq": 1, "state_digest": "1" * 64})
    broken = _kgc("lockchain", "verify", str(chain))
    assert broken.returncode == 1
    assert "signature does not verify" in broken.stderr


def _kgc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kgc", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
