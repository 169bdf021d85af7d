"""Proposals: validated at construction, every refusal naming the field; zero is a real value."""

from __future__ import annotations

from typing import Any

import pytest

from kgc import Delta, Proposal, ProposalError

ADD = "<urn:ex:ahu1> <urn:ex:feeds> <urn:ex:vav1> ."
OTHER = "<urn:ex:ahu1> <urn:ex:feeds> <urn:ex:vav2> ."
DIGEST = "ab" * 32


def wire(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"agent": "bms", "delta": {"additions": [ADD]}, "confidence": 0.5}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


def test_zero_confidence_and_zero_priority_are_kept_not_defaulted() -> None:
    built = Proposal("bms", Delta.from_text(ADD), confidence=0, priority=0)
    parsed = Proposal.from_json(wire(confidence=0, priority=0))

    assert (built.confidence, built.priority) == (0.0, 0)
    assert (parsed.confidence, parsed.priority) == (0.0, 0)
    assert parsed.digest == built.digest


def test_the_digest_covers_content_not_order() -> None:
    one = Proposal("bms", Delta.from_text(ADD + "\n" + OTHER), 0.5, depends_on=[DIGEST, "cd" * 32])
    two = Proposal("bms", Delta.from_text(OTHER + "\n" + ADD), 0.5, depends_on=["cd" * 32, DIGEST])
    surer = Proposal(
        "bms", Delta.from_text(ADD + "\n" + OTHER), 0.6, depends_on=[DIGEST, "cd" * 32]
    )

    assert one.digest == two.digest and one == two
    assert surer.digest != one.digest
    assert len(one.digest) == 64


def test_the_wire_form_round_trips() -> None:
    proposal = Proposal("bms", Delta.from_text(ADD), 0.25, priority=-3, conflicts_with=[DIGEST])

    again = Proposal.from_json(proposal.to_json())

    assert again.digest == proposal.digest
    assert again.to_json()["digest"] == proposal.digest


@pytest.mark.parametrize(
    ("body", "field", "match"),
    [
        (wire(confidence=1.5), "confidence", "between 0 and 1"),
        (wire(confidence=-0.1), "confidence", "between 0 and 1"),
        (wire(confidence=float("nan")), "confidence", "between 0 and 1"),
        (wire(confidence="high"), "confidence", "expected a number"),
        (wire(confidence=True), "confidence", "expected a number"),
        (wire(confidence=...), "confidence", "is required"),
        (wire(priority=1.5), "priority", "expected an integer"),
        (wire(priority=2**60), "priority", "within"),
        (wire(agent=""), "agent", "must not be empty"),
        (wire(agent=7), "agent", "expected a string"),
        (wire(agent="a\nb"), "agent", "control characters"),
        (wire(agent=...), "agent", "is required"),
        (wire(delta={"additions": ["not rdf"]}), "delta", "additions"),
        (wire(delta=...), "delta", "is required"),
        (wire(delta={"additions": []}), "delta", "is empty"),
        (wire(depends_on=["nope"]), "depends_on[0]", "proposal digest"),
        (wire(conflicts_with="ab"), "conflicts_with", "list of proposal digests"),
        (wire(colour="red"), "colour", "unknown field"),
    ],
)
def test_a_bad_proposal_is_refused_naming_the_field(
    body: dict[str, Any], field: str, match: str
) -> None:
    with pytest.raises(ProposalError, match=match) as refused:
        Proposal.from_json(body)

    assert refused.value.field == field
    assert f"proposal field {field!r}" in str(refused.value)


def test_the_library_constructor_refuses_too() -> None:
    with pytest.raises(ProposalError, match="'confidence': must be between 0 and 1"):
        Proposal("bms", Delta.from_text(ADD), confidence=2)
    with pytest.raises(ProposalError, match="'delta': expected a Delta"):
        Proposal("bms", ADD, confidence=1)  # type: ignore[arg-type]
