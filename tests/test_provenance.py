"""``apply(provenance=...)``: a caller's reason for a transaction, sealed in its receipt."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgc import KnowledgeEngine
from kgc.errors import InputError
from kgc.lockchain import Lockchain
from kgc.rdf.delta import Delta

ADD = '<urn:ex:a> <urn:ex:p> "1" .\n'


def test_provenance_is_sealed_and_verifiable(tmp_path: Path) -> None:
    engine = KnowledgeEngine(lockchain_path=tmp_path / "chain", git_anchoring=False)
    cause = {"caused_by": {"hook": "notify", "receipt": "r-1"}, "weights": [0.5, 1]}
    receipt = engine.apply(Delta.from_text(ADD), actor="agent", provenance=cause)
    plain = engine.apply(Delta.from_text(ADD.replace('"1"', '"2"')), actor="agent")
    engine.close()

    assert receipt.provenance == cause
    assert receipt.body()["provenance"] == cause
    assert "provenance" not in plain.body()
    assert Lockchain(tmp_path / "chain").verify().ok


def test_provenance_is_a_copy_not_the_callers_object() -> None:
    engine = KnowledgeEngine()
    cause = {"caused_by": {"hook": "h"}}
    receipt = engine.apply(Delta.from_text(ADD), provenance=cause)
    cause["caused_by"]["hook"] = "changed later"
    assert receipt.provenance == {"caused_by": {"hook": "h"}}


@pytest.mark.parametrize(
    ("bad", "fault"),
    [
        ({"x": object()}, "JSON values"),
        ({"x": float("nan")}, "JSON values"),
        ({1: 2}, "string keys"),
    ],
)
def test_provenance_that_is_not_json_is_refused_before_anything_changes(
    bad: dict[object, object], fault: str
) -> None:
    engine = KnowledgeEngine()
    before = engine.state_digest
    with pytest.raises(InputError, match=fault):
        engine.apply(Delta.from_text(ADD), provenance=bad)  # type: ignore[arg-type]
    assert engine.state_digest == before
