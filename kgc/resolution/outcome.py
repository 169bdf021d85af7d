"""``Outcome``: the resolved delta of a round and why each proposal got what it got.

Every quad a proposal addressed is reported as accepted, superseded (a later proposal that builds
on this one, through ``depends_on``, decided that quad and won, or added the value that this one's
value lost a functional property slot to) or rejected with a reason. A
proposal's status is ``accepted`` when nothing of it was rejected, ``rejected`` when nothing of it
was accepted or superseded, ``partial`` otherwise. Conflicts list what disagreed and how it was
settled. The whole record is JSON (``to_json``) and goes into the receipt's provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import pyoxigraph as ox

from kgc.rdf.delta import Delta

Status = Literal["accepted", "partial", "rejected"]
ConflictKind = Literal["add-remove", "functional", "declared", "consensus"]


def side_name(side: int) -> str:
    return "addition" if side > 0 else "removal"


@dataclass(frozen=True)
class Conflict:
    """Proposals that disagreed about ``about`` (a quad line, a functional slot, a proposal)."""

    kind: ConflictKind
    about: str
    proposals: tuple[str, ...]
    settled: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "about": self.about,
            "proposals": list(self.proposals),
            "settled": self.settled,
        }


class Rejection(NamedTuple):
    """A stance of a proposal that did not carry, and why (a tuple: a round makes thousands)."""

    line: str
    side: int
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"quad": self.line, "side": side_name(self.side), "reason": self.reason}


@dataclass(frozen=True)
class ProposalReport:
    digest: str
    agent: str
    confidence: float
    priority: int
    status: Status
    accepted: tuple[tuple[str, int], ...]
    superseded: tuple[tuple[str, int, str], ...]
    rejected: tuple[Rejection, ...]
    excluded: str | None = None  # why the whole proposal was left out, before the strategy ran

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "digest": self.digest,
            "agent": self.agent,
            "confidence": self.confidence,
            "priority": self.priority,
            "status": self.status,
            "accepted": {
                "additions": [line for line, side in self.accepted if side > 0],
                "removals": [line for line, side in self.accepted if side < 0],
            },
            "superseded": [
                {"quad": line, "side": side_name(side), "by": by}
                for line, side, by in self.superseded
            ],
            "rejected": [r.to_json() for r in self.rejected],
        }
        if self.excluded is not None:
            data["excluded"] = self.excluded
        return data


@dataclass(frozen=True)
class Outcome:
    """What ``resolve`` decided: quads sorted by N-Quads line, proposals by digest."""

    strategy: str
    threshold: float
    crdt_bias: str
    additions: tuple[ox.Quad, ...]
    removals: tuple[ox.Quad, ...]
    proposals: tuple[ProposalReport, ...]
    conflicts: tuple[Conflict, ...]
    functional: tuple[str, ...] = ()
    note: str | None = None

    @property
    def delta(self) -> Delta:
        """The resolved delta, to apply through the pipeline (its quads were checked when each
        proposal's delta was built; the strategies give each quad one side)."""
        return Delta.of_checked(self.additions, self.removals)

    def report(self, digest: str) -> ProposalReport:
        """The report of the proposal with ``digest`` (``KeyError`` when it was not resolved)."""
        for report in self.proposals:
            if report.digest == digest:
                return report
        raise KeyError(digest)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "strategy": self.strategy,
            "threshold": self.threshold,
            "proposals": [p.to_json() for p in self.proposals],
            "conflicts": [c.to_json() for c in self.conflicts],
            "resolved": self.delta_json(),
        }
        if self.strategy == "crdt":
            data["crdt_bias"] = self.crdt_bias
        if self.functional:
            data["functional_properties"] = list(self.functional)
        if self.note is not None:
            data["note"] = self.note
        return data

    def delta_json(self) -> dict[str, list[str]]:
        from kgc.rdf.terms import quad_line

        return {
            "additions": [quad_line(q) for q in self.additions],
            "removals": [quad_line(q) for q in self.removals],
        }
