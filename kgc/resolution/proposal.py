"""``Proposal``: one agent's suggested change, with how sure it is and how much it matters.

A proposal is validated when it is built and never changes. Its ``digest`` is SHA-256 (hex) over
the RFC 8785 canonical JSON of its content (see ``canonical_form``), so the same proposal sent twice
is one proposal, and a proposal can name others (``depends_on``, ``conflicts_with``) only by the
digests of proposals that already exist: references cannot form a cycle.

Zero is a valid confidence and a valid priority; neither is ever replaced by a default.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox

from kgc.errors import InputError, ProposalError
from kgc.lockchain.canonical import canonical_json
from kgc.rdf.delta import Delta
from kgc.rdf.terms import LiteralPolicy, quad_line

MAX_AGENT_LENGTH = 256
MAX_PRIORITY = 2**53 - 1  # the largest integer every JSON reader holds exactly
MAX_REFERENCES = 1000
_DIGEST = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("agent", "delta", "confidence", "priority", "depends_on", "conflicts_with")


@dataclass(frozen=True, eq=False)
class Proposal:
    """``agent`` proposes ``delta`` with ``confidence`` in [0, 1] and an integer ``priority``.

    ``depends_on``: digests of proposals this one builds on (it is rejected when any of them is
    absent from its round or rejected). ``conflicts_with``: digests of proposals that must not
    commit together with this one (the strategy settles which does; docs/resolution.md).
    """

    agent: str
    delta: Delta
    confidence: float
    priority: int = 0
    depends_on: tuple[str, ...] = ()
    conflicts_with: tuple[str, ...] = ()
    digest: str = field(init=False)
    # Each quad with its canonical N-Quads line and side (+1 added, -1 removed), sorted by line.
    stances: tuple[tuple[ox.Quad, str, int], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_agent(self.agent)
        if not isinstance(self.delta, Delta):
            raise ProposalError("delta", f"expected a Delta, got {type(self.delta).__name__}")
        if not len(self.delta):
            raise ProposalError("delta", "is empty: a proposal adds or removes at least one quad")
        _check_confidence(self.confidence)
        _check_priority(self.priority)
        depends = _references(self.depends_on, "depends_on")
        conflicts = _references(self.conflicts_with, "conflicts_with")
        _check_disjoint(depends, conflicts)
        stances = sorted(
            [(q, quad_line(q), 1) for q in self.delta.additions]
            + [(q, quad_line(q), -1) for q in self.delta.removals],
            key=lambda s: (s[1], s[2]),
        )
        _set(self, "confidence", float(self.confidence))
        _set(self, "depends_on", depends)
        _set(self, "conflicts_with", conflicts)
        _set(self, "stances", tuple(stances))
        _set(self, "digest", hashlib.sha256(canonical_json(self.canonical_form())).hexdigest())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Proposal) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return (
            f"Proposal({self.agent!r}, {self.delta!r}, confidence={self.confidence}, "
            f"priority={self.priority}, digest={self.digest[:12]})"
        )

    def canonical_form(self) -> dict[str, Any]:
        """What the digest covers: every field, quads as sorted N-Quads lines."""
        return {
            "agent": self.agent,
            "additions": [line for _, line, side in self.stances if side > 0],
            "removals": [line for _, line, side in self.stances if side < 0],
            "confidence": self.confidence,
            "priority": self.priority,
            "depends_on": list(self.depends_on),
            "conflicts_with": list(self.conflicts_with),
        }

    def to_json(self) -> dict[str, Any]:
        """The wire form accepted by ``Proposal.from_json`` (the delta in kgc's JSON form)."""
        form = self.canonical_form()
        delta = {"additions": form.pop("additions"), "removals": form.pop("removals")}
        return {**form, "delta": delta, "digest": self.digest}

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        *,
        literal_policy: LiteralPolicy = "normalize",
        also: tuple[str, ...] = (),
    ) -> Proposal:
        """Build from the wire form (``POST /proposals``); an error names the field at fault.

        ``priority``, ``depends_on`` and ``conflicts_with`` may be left out (0 and none);
        ``agent``, ``delta`` and ``confidence`` are required. ``digest`` is ignored if present.
        ``also`` names fields the caller has taken out already (listed in the unknown-field error).
        """
        if not isinstance(data, Mapping):
            raise ProposalError("proposal", f"expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {*_FIELDS, "digest"})
        if unknown:
            known = ", ".join((*_FIELDS, *also))
            raise ProposalError(unknown[0], f"unknown field; expected {known}")
        for name in ("agent", "delta", "confidence"):
            if name not in data:
                raise ProposalError(name, "is required")
        if not isinstance(data["delta"], Mapping):
            raise ProposalError(
                "delta",
                "expected a JSON object with 'additions' and/or 'removals' (lists of N-Quads "
                f"lines), got {_json_type(data['delta'])}",
            )
        try:
            delta = Delta.from_json(data["delta"], literal_policy=literal_policy)
        except InputError as exc:
            raise ProposalError("delta", str(exc)) from exc
        return cls(
            agent=data["agent"],
            delta=delta,
            confidence=data["confidence"],
            priority=data.get("priority", 0),
            depends_on=_json_list(data.get("depends_on", []), "depends_on"),
            conflicts_with=_json_list(data.get("conflicts_with", []), "conflicts_with"),
        )


def _set(proposal: Proposal, name: str, value: object) -> None:
    object.__setattr__(proposal, name, value)


def _check_agent(agent: object) -> None:
    if not isinstance(agent, str):
        raise ProposalError("agent", f"expected a string, got {type(agent).__name__}")
    if not agent.strip():
        raise ProposalError("agent", "must not be empty")
    if len(agent) > MAX_AGENT_LENGTH:
        raise ProposalError("agent", f"at most {MAX_AGENT_LENGTH} characters, got {len(agent)}")
    check_printable(agent, "agent")


def check_printable(value: str, name: str) -> None:
    """Refuse control characters and any whitespace but the plain space, naming ``name``."""
    if any((ch.isspace() and ch != " ") or not ch.isprintable() for ch in value):
        raise ProposalError(
            name,
            "must hold printable characters only (no control characters, and no whitespace but "
            f"the plain space), got {value!r}",
        )


def _check_confidence(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProposalError("confidence", f"expected a number, got {value!r}")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ProposalError("confidence", f"must be between 0 and 1 (inclusive), got {value!r}")


def _check_priority(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProposalError("priority", f"expected an integer, got {value!r}")
    if abs(value) > MAX_PRIORITY:
        raise ProposalError("priority", f"must be within +-(2**53 - 1), got {value}")


def _references(value: object, name: str) -> tuple[str, ...]:
    items = _json_list(value, name)
    if len(items) > MAX_REFERENCES:
        raise ProposalError(name, f"at most {MAX_REFERENCES} references, got {len(items)}")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not _DIGEST.fullmatch(item):
            raise ProposalError(
                f"{name}[{index}]", f"expected a proposal digest (64 lowercase hex), got {item!r}"
            )
    return tuple(sorted(set(items)))


def _check_disjoint(depends: tuple[str, ...], conflicts: tuple[str, ...]) -> None:
    both = sorted(set(depends) & set(conflicts))
    if both:
        raise ProposalError(
            "conflicts_with",
            f"{both[0][:12]} is also in depends_on: a proposal cannot build on a proposal it "
            "conflicts with",
        )


def _json_list(value: object, name: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        shown = repr(value) if len(repr(value)) <= 80 else type(value).__name__
        raise ProposalError(name, f"expected a list of proposal digests, got {shown}")
    return tuple(value)


def _json_type(value: object) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else type(value).__name__
