"""``kgc.Lockchain``: the public entry point for checking a lockchain directory."""

from __future__ import annotations

from pathlib import Path

from kgc import Delta, KnowledgeEngine, Lockchain, SigningKey
from kgc.lockchain.proofs import check_inclusion_proof


def test_lockchain_verifies_proves_and_checkpoints_what_an_engine_wrote(tmp_path: Path) -> None:
    key = SigningKey.generate()
    with KnowledgeEngine(lockchain_path=tmp_path, signing_key=key, anchor_batch_size=2) as engine:
        for i in range(5):
            engine.apply(Delta.from_text(f'<urn:s{i}> <urn:p> "{i}" .'), actor="t")
        state = engine.state_digest
    chain = Lockchain(tmp_path)

    report = chain.verify(replay=True)
    proof = chain.prove_inclusion(3)
    point = chain.checkpoint(key=key)

    assert report.ok, report.summary()
    check_inclusion_proof(proof, key.public_key_hex)  # raises if it does not check
    assert (point.seq, point.state_digest, point.quads) == (5, state, 5)
