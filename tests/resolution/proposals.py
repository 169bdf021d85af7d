"""Builders for resolution tests: small named quads and proposals."""

from __future__ import annotations

from collections.abc import Sequence

import pyoxigraph as ox

from kgc import Delta, Outcome, Proposal

EX = "urn:ex:"


def quad(subject: str, predicate: str = "p", obj: str = "o") -> ox.Quad:
    return ox.Quad(ox.NamedNode(EX + subject), ox.NamedNode(EX + predicate), ox.NamedNode(EX + obj))


def propose(
    agent: str,
    add: Sequence[ox.Quad] = (),
    remove: Sequence[ox.Quad] = (),
    confidence: float = 1.0,
    priority: int = 0,
    depends_on: Sequence[Proposal] = (),
    conflicts_with: Sequence[Proposal] = (),
) -> Proposal:
    return Proposal(
        agent,
        Delta(add, remove),
        confidence,
        priority,
        depends_on=tuple(p.digest for p in depends_on),
        conflicts_with=tuple(p.digest for p in conflicts_with),
    )


def sides(outcome: Outcome) -> tuple[set[ox.Quad], set[ox.Quad]]:
    return set(outcome.additions), set(outcome.removals)


def status(outcome: Outcome, proposal: Proposal) -> str:
    return outcome.report(proposal.digest).status


def reasons(outcome: Outcome, proposal: Proposal) -> list[str]:
    return [r.reason for r in outcome.report(proposal.digest).rejected]
