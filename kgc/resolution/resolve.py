"""``resolve``: proposals in, one ``Outcome`` out, the same for the same set in any order.

Steps (docs/resolution.md has the rules in full):

1. deduplicate by digest and sort by digest: arrival order is gone from here on;
2. admission: a proposal whose dependency is absent is excluded, and so are its dependants;
3. passes, each: declared conflicts are settled among the proposals still standing (taken in rank
   order; one that conflicts with a kept proposal is excluded, with its dependants, and settling
   starts again while a kept proposal lost a dependency that way); the strategy decides a side for
   every quad the admitted proposals address; a proposal left with nothing accepted (or
   superseded) is rejected, and that is final: its dependants are excluded, it no longer counts in
   declared conflicts, and a side only rejected proposals back is never taken. Passes end when a
   pass rejects nothing that would change the next (a dependant to exclude, a declared conflict it
   had won): at most one pass more than there are proposals;
4. consensus only: the merged result commits when at least the threshold share of agents agree,
   otherwise nothing does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

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
    ancestors = _ancestry(unique)
    functional_set = frozenset(functional)
    dead = _absent_dependencies(unique)  # final exclusions: never re-admitted
    final: dict[str, ProposalReport] = {}  # rejected by the strategy in some pass: final
    while True:
        excluded, conflicts = _admit(unique, key, dead, final)
        admitted = [p for p in unique if p.digest not in excluded]
        ballot = _ballot(admitted, ancestors, threshold, crdt_bias, functional_set, final)
        decisions = STRATEGIES[strategy](ballot)
        reports = _reports(unique, excluded, decisions, ballot, ancestors, final)
        winners = {d for c in conflicts for d in c.proposals if d != c.about}
        if not _reject(unique, reports, dead, final, winners):
            break
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


def _absent_dependencies(proposals: list[Proposal]) -> dict[str, str]:
    present = {p.digest for p in proposals}
    dead: dict[str, str] = {}
    for p in proposals:
        missing = [d for d in p.depends_on if d not in present]
        if missing:
            dead[p.digest] = f"depends on {missing[0][:12]}, which is not in this round"
    _exclude_dependents(proposals, dead)
    return dead


def _admit(
    proposals: list[Proposal],
    key: Key,
    dead: dict[str, str],
    final: dict[str, ProposalReport],
) -> tuple[dict[str, str], list[Conflict]]:
    """This pass's exclusions: the final ones, then declared-conflict losers and their dependants
    among the proposals still standing, settled again while a kept proposal loses a dependency."""
    standing = [p for p in proposals if p.digest not in dead and p.digest not in final]
    while True:
        excluded = dict(dead)
        conflicts = _declared_conflicts(standing, key, excluded)
        _exclude_dependents(proposals, excluded)
        fallen = [p for p in standing if p.digest in excluded and not _lost_declared(p, conflicts)]
        if not fallen:
            return excluded, conflicts
        gone = {p.digest for p in fallen}
        standing = [p for p in standing if p.digest not in gone]


def _lost_declared(p: Proposal, conflicts: list[Conflict]) -> bool:
    return any(c.about == p.digest for c in conflicts)


def _exclude_dependents(proposals: list[Proposal], excluded: dict[str, str]) -> None:
    """Exclude, transitively, every proposal depending on an excluded one (in one sweep: a
    proposal's dependencies sort before it in dependency order)."""
    for p in _dependency_order(proposals):
        if p.digest in excluded:
            continue
        gone = next((d for d in p.depends_on if d in excluded), None)
        if gone is not None:
            excluded[p.digest] = f"depends on {gone[:12]}, which was rejected"


def _dependency_order(proposals: list[Proposal]) -> list[Proposal]:
    """``proposals`` with every dependency before its dependants (iterative: no recursion)."""
    by_digest = {p.digest: p for p in proposals}
    placed: set[str] = set()
    order: list[Proposal] = []
    for root in proposals:
        stack = [(root, False)]
        while stack:
            p, expanded = stack.pop()
            if p.digest in placed:
                continue
            if expanded:
                placed.add(p.digest)
                order.append(p)
                continue
            stack.append((p, True))
            stack.extend((by_digest[d], False) for d in p.depends_on if d in by_digest)
    return order


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
    """Every proposal's transitive dependencies among ``proposals`` (dependencies first)."""
    memo: dict[str, frozenset[str]] = {}
    for p in _dependency_order(proposals):
        found: set[str] = set()
        for d in p.depends_on:
            if d in memo:
                found.add(d)
                found |= memo[d]
        memo[p.digest] = frozenset(found)
    return memo


def _ballot(
    admitted: list[Proposal],
    ancestors: dict[str, frozenset[str]],
    threshold: float,
    crdt_bias: str,
    functional: frozenset[str],
    final: dict[str, ProposalReport],
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
    rejected = frozenset(final)
    return Ballot(index, quads, ancestors, threshold, crdt_bias, functional, rejected)


# Reports ------------------------------------------------------------------------------------


def _reports(
    proposals: list[Proposal],
    excluded: dict[str, str],
    decisions: Decisions,
    ballot: Ballot,
    ancestors: dict[str, frozenset[str]],
    final: dict[str, ProposalReport],
) -> list[ProposalReport]:
    descendants = _descendants(ancestors, excluded.keys() | final.keys())
    reports = []
    for p in proposals:
        if p.digest in excluded:
            reports.append(_excluded_report(p, excluded[p.digest]))
        elif p.digest in final:
            reports.append(_still_rejected(final[p.digest], decisions))
        else:
            reports.append(_report(p, decisions, ballot, descendants.get(p.digest, ())))
    return reports


def _descendants(ancestors: dict[str, frozenset[str]], gone: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    skip = set(gone)
    for digest, before in sorted(ancestors.items()):
        if digest not in skip:
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
    side_of, accept = decisions.side.get, accepted.append  # the hot loop: 100 stances a proposal
    for _, line, side in p.stances:
        chosen = side_of(line, 0)
        if chosen == side:
            accept((line, side))
            continue
        by = _superseded_by(ballot, decisions, line, chosen, later)
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


def _superseded_by(
    ballot: Ballot, decisions: Decisions, line: str, chosen: int, later: set[str]
) -> str | None:
    """A proposal building on this one that took the side that won for ``line`` or, for a value
    that lost a functional property conflict, that added the value kept; None otherwise."""
    if not later:
        return None
    if chosen == 0 and line in decisions.displaced:
        line, chosen = decisions.displaced[line], 1
    if chosen == 0:
        return None
    return next(
        (q.digest for q, s in ballot.index[line] if s == chosen and q.digest in later), None
    )


def _still_rejected(report: ProposalReport, decisions: Decisions) -> ProposalReport:
    """The report of a proposal rejected in an earlier pass; a quad of it that proposals still
    standing have since decided its way says so (the rejection is final all the same)."""
    rejected = tuple(
        Rejection(r.line, r.side, f"{r.reason}; then decided this way by other proposals")
        if decisions.side.get(r.line, 0) == r.side and not r.reason.endswith("other proposals")
        else r
        for r in report.rejected
    )
    return replace(report, rejected=rejected)


def _excluded_report(p: Proposal, reason: str) -> ProposalReport:
    rejected = tuple(Rejection(line, side, reason) for _, line, side in p.stances)
    return ProposalReport(
        p.digest, p.agent, p.confidence, p.priority, "rejected", (), (), rejected, reason
    )


def _reject(
    proposals: list[Proposal],
    reports: list[ProposalReport],
    dead: dict[str, str],
    final: dict[str, ProposalReport],
    winners: set[str],
) -> bool:
    """Make this pass's rejections final and exclude their dependants; False when another pass
    would change nothing (``winners``: the proposals kept over a declared conflict)."""
    new = {
        r.digest: r
        for r in reports
        if r.status == "rejected" and r.excluded is None and r.digest not in final
    }
    final.update(new)
    before = len(dead)
    for p in _dependency_order(proposals):
        if p.digest in dead:
            continue
        lost = next((d for d in p.depends_on if d in final or d in dead), None)
        if lost is not None:
            dead[p.digest] = f"depends on {lost[:12]}, which was rejected"
    # Another pass changes something only when exclusions change: a dependant is now excluded,
    # or a newly rejected proposal had kept a declared conflict (its loser stands again).
    return len(dead) > before or any(d in winners for d in new)


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
