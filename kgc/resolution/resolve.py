"""``resolve``: proposals in, one ``Outcome`` out, the same for the same set in any order.

Steps (docs/resolution.md has the rules in full):

1. deduplicate by digest and sort by digest: arrival order is gone from here on;
2. admission: a proposal whose dependency is absent is excluded; of two proposals that declare a
   conflict, the one that ranks lower under the strategy is excluded; a proposal depending on an
   excluded one is excluded;
3. the strategy decides a side for every quad the admitted proposals address;
4. a proposal left with nothing accepted (or superseded) is rejected; proposals depending on it
   are excluded and the strategy runs again, until nothing changes (exclusions are final, so this
   ends within as many passes as there are proposals);
5. consensus only: the merged result commits when at least the threshold share of agents agree,
   otherwise nothing does.
"""

from __future__ import annotations

from collections.abc import Iterable

from kgc.errors import InputError
from kgc.resolution.outcome import Conflict, Outcome, ProposalReport, Rejection, Status
from kgc.resolution.proposal import Proposal
from kgc.resolution.strategies import (
    KEY_WORDS,
    STRATEGIES,
    Ballot,
    Decisions,
    Key,
    by_confidence,
    by_priority,
)

CRDT_BIASES = ("add-wins", "remove-wins")


def resolve(
    proposals: Iterable[Proposal],
    *,
    strategy: str = "voting",
    threshold: float = 0.6,
    crdt_bias: str = "add-wins",
    functional: Iterable[str] = (),
) -> Outcome:
    """Resolve ``proposals`` by ``strategy``; ``functional`` lists functional property IRIs."""
    check_options(strategy, threshold, crdt_bias)
    unique = sorted({p.digest: p for p in proposals}.values(), key=lambda p: p.digest)
    key = by_priority if strategy == "priority" else by_confidence
    excluded, conflicts = _admit(unique, key)
    ancestors = _ancestry(unique)
    functional_set = frozenset(functional)
    while True:
        admitted = [p for p in unique if p.digest not in excluded]
        ballot = _ballot(admitted, ancestors, threshold, crdt_bias, functional_set)
        decisions = STRATEGIES[strategy](ballot)
        reports = _reports(unique, excluded, decisions, ballot, ancestors)
        if not _exclude_dependents_of_rejected(unique, reports, excluded):
            break
        _exclude_dependents(unique, excluded)
    note = None
    if strategy == "consensus":
        decisions, reports, note = _gate(unique, reports, decisions, threshold, excluded)
    return _outcome(strategy, threshold, crdt_bias, ballot, decisions, reports, conflicts, note)


def check_options(strategy: str, threshold: float, crdt_bias: str) -> None:
    """Refuse an unknown strategy or bias, or a threshold outside (0, 1], naming it."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown resolution strategy {strategy!r}; expected one of {_names()}")
    if isinstance(threshold, bool) or not 0 < threshold <= 1:
        raise InputError(f"threshold must be above 0 and at most 1, got {threshold!r}")
    if crdt_bias not in CRDT_BIASES:
        raise InputError(f"crdt_bias must be add-wins or remove-wins, got {crdt_bias!r}")


def _names() -> str:
    return ", ".join(STRATEGIES)


# Admission ----------------------------------------------------------------------------------


def _admit(proposals: list[Proposal], key: Key) -> tuple[dict[str, str], list[Conflict]]:
    present = {p.digest for p in proposals}
    excluded: dict[str, str] = {}
    for p in proposals:
        missing = [d for d in p.depends_on if d not in present]
        if missing:
            excluded[p.digest] = f"depends on {missing[0][:12]}, which is not in this round"
    _exclude_dependents(proposals, excluded)
    conflicts = _declared_conflicts(proposals, key, excluded)
    _exclude_dependents(proposals, excluded)
    return excluded, conflicts


def _exclude_dependents(proposals: list[Proposal], excluded: dict[str, str]) -> None:
    changed = True
    while changed:
        changed = False
        for p in proposals:
            if p.digest in excluded:
                continue
            gone = next((d for d in p.depends_on if d in excluded), None)
            if gone is not None:
                excluded[p.digest] = f"depends on {gone[:12]}, which was rejected"
                changed = True


def _declared_conflicts(
    proposals: list[Proposal], key: Key, excluded: dict[str, str]
) -> list[Conflict]:
    """Keep proposals in rank order; one that conflicts with a kept one is excluded."""
    declared: dict[str, set[str]] = {p.digest: set() for p in proposals}
    for p in proposals:
        for other in p.conflicts_with:
            if other in declared:
                declared[p.digest].add(other)
                declared[other].add(p.digest)
    ranked = sorted(proposals, key=lambda p: (tuple(-x for x in key(p)), p.digest))
    kept: dict[str, Proposal] = {}
    conflicts: list[Conflict] = []
    for p in ranked:
        if p.digest in excluded:
            continue
        winner = next((kept[d] for d in sorted(declared[p.digest]) if d in kept), None)
        if winner is None:
            kept[p.digest] = p
            continue
        how = f"{winner.digest[:12]} ranks higher by {KEY_WORDS[key]}, then smaller digest"
        excluded[p.digest] = f"declared conflict with {winner.digest[:12]}: {how}"
        pair = tuple(sorted((p.digest, winner.digest)))
        conflicts.append(Conflict("declared", p.digest, pair, f"kept {winner.digest}: {how}"))
    return conflicts


def _ancestry(proposals: list[Proposal]) -> dict[str, frozenset[str]]:
    """Every proposal's transitive dependencies among ``proposals``."""
    by_digest = {p.digest: p for p in proposals}
    memo: dict[str, frozenset[str]] = {}

    def visit(digest: str) -> frozenset[str]:
        if digest not in memo:
            direct = [d for d in by_digest[digest].depends_on if d in by_digest]
            found: set[str] = set(direct)
            for d in direct:
                found |= visit(d)
            memo[digest] = frozenset(found)
        return memo[digest]

    for p in proposals:
        visit(p.digest)
    return memo


def _ballot(
    admitted: list[Proposal],
    ancestors: dict[str, frozenset[str]],
    threshold: float,
    crdt_bias: str,
    functional: frozenset[str],
) -> Ballot:
    index: dict[str, list[tuple[Proposal, int]]] = {}
    quads = {}
    for p in admitted:
        for quad, line, side in p.stances:
            stances = index.get(line)
            if stances is None:
                index[line] = [(p, side)]
                quads[line] = quad
            else:
                stances.append((p, side))
    return Ballot(index, quads, ancestors, threshold, crdt_bias, functional)


# Reports ------------------------------------------------------------------------------------


def _reports(
    proposals: list[Proposal],
    excluded: dict[str, str],
    decisions: Decisions,
    ballot: Ballot,
    ancestors: dict[str, frozenset[str]],
) -> list[ProposalReport]:
    descendants = _descendants(ancestors, excluded)
    return [
        _excluded_report(p, excluded[p.digest])
        if p.digest in excluded
        else _report(p, decisions, ballot, descendants.get(p.digest, ()))
        for p in proposals
    ]


def _descendants(
    ancestors: dict[str, frozenset[str]], excluded: dict[str, str]
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for digest, before in sorted(ancestors.items()):
        if digest not in excluded:
            for ancestor in before:
                out.setdefault(ancestor, []).append(digest)
    return out


def _report(
    p: Proposal, decisions: Decisions, ballot: Ballot, descendants: Iterable[str]
) -> ProposalReport:
    accepted: list[tuple[str, int]] = []
    superseded: list[tuple[str, int, str]] = []
    rejected: list[Rejection] = []
    later = set(descendants)
    for _, line, side in p.stances:
        chosen = decisions.side.get(line, 0)
        if chosen == side:
            accepted.append((line, side))
            continue
        by = _superseded_by(ballot, line, chosen, later)
        if by is not None:
            superseded.append((line, side, by))
        else:
            reason = decisions.lost.get((p.digest, line), "not chosen by the strategy")
            rejected.append(Rejection(line, side, reason))
    status: Status = "accepted" if not rejected else "partial"
    if rejected and not accepted and not superseded:
        status = "rejected"
    return ProposalReport(
        p.digest, p.agent, p.confidence, p.priority, status,
        tuple(accepted), tuple(superseded), tuple(rejected),
    )  # fmt: skip


def _superseded_by(ballot: Ballot, line: str, chosen: int, later: set[str]) -> str | None:
    """A proposal building on this one that took the side that won for ``line``, if any."""
    if not later or chosen == 0:
        return None
    return next(
        (q.digest for q, s in ballot.index[line] if s == chosen and q.digest in later), None
    )


def _excluded_report(p: Proposal, reason: str) -> ProposalReport:
    rejected = tuple(Rejection(line, side, reason) for _, line, side in p.stances)
    return ProposalReport(
        p.digest, p.agent, p.confidence, p.priority, "rejected", (), (), rejected, reason
    )


def _exclude_dependents_of_rejected(
    proposals: list[Proposal], reports: list[ProposalReport], excluded: dict[str, str]
) -> bool:
    rejected = {r.digest for r in reports if r.status == "rejected" and r.excluded is None}
    added = False
    for p in proposals:
        if p.digest in excluded:
            continue
        lost = next((d for d in p.depends_on if d in rejected), None)
        if lost is not None:
            excluded[p.digest] = f"depends on {lost[:12]}, which was rejected"
            added = True
    return added


# Consensus ----------------------------------------------------------------------------------


def _gate(
    proposals: list[Proposal],
    reports: list[ProposalReport],
    decisions: Decisions,
    threshold: float,
    excluded: dict[str, str],
) -> tuple[Decisions, list[ProposalReport], str]:
    """All or nothing: an agent agrees when each of its proposals was admitted, gave confidence
    above 0 and had nothing rejected; the merged result stands when agreeing agents / agents
    >= threshold."""
    agents = sorted({p.agent for p in proposals})
    dissent = {r.agent for r in reports if r.status != "accepted" or r.confidence == 0}
    agree = [a for a in agents if a not in dissent]
    share = len(agree) / len(agents) if agents else 0.0
    summary = f"{len(agree)} of {len(agents)} agents agree ({share:.3f}; threshold {threshold})"
    if agents and share >= threshold:
        return decisions, reports, f"consensus reached: {summary}"
    reason = f"no consensus: {summary}"
    failed = [_excluded_report(p, excluded.get(p.digest, reason)) for p in proposals]
    digests = tuple(p.digest for p in proposals)
    empty = Decisions(conflicts=[*decisions.conflicts, Conflict("consensus", "", digests, reason)])
    return empty, failed, reason


def _outcome(
    strategy: str,
    threshold: float,
    crdt_bias: str,
    ballot: Ballot,
    decisions: Decisions,
    reports: list[ProposalReport],
    declared: list[Conflict],
    note: str | None,
) -> Outcome:
    chosen = sorted((line, side) for line, side in decisions.side.items() if side)
    return Outcome(
        strategy=strategy,
        threshold=threshold,
        crdt_bias=crdt_bias,
        additions=tuple(ballot.quads[line] for line, side in chosen if side > 0),
        removals=tuple(ballot.quads[line] for line, side in chosen if side < 0),
        proposals=tuple(reports),
        conflicts=tuple(declared + sorted(decisions.conflicts, key=_conflict_order)),
        functional=tuple(sorted(ballot.functional)),
        note=note,
    )


def _conflict_order(c: Conflict) -> tuple[str, str, tuple[str, ...]]:
    return (c.kind, c.about, c.proposals)
