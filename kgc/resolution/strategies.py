"""The strategies: each turns the stances of the admitted proposals into one side per quad.

A stance is one proposal adding (+1) or removing (-1) one quad, which is known by its canonical
N-Quads line. A strategy decides, for every quad some proposal addressed, +1 (add it), -1 (remove
it) or 0 (leave it as it is), and says why each losing stance lost. Every decision depends only on
the set of stances, never on the order proposals arrived in. The rules are in docs/resolution.md.

``consensus`` is ``merging`` followed by an all-or-nothing gate, applied in ``kgc.resolution.
resolve`` (it needs every proposal's report).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pyoxigraph as ox

from kgc.resolution.outcome import Conflict, side_name
from kgc.resolution.proposal import Proposal

Stances = list[tuple[Proposal, int]]
Key = Callable[[Proposal], tuple[float, ...]]
# How strongly an added quad is backed, from its stances: settles functional-property conflicts.
Strength = Callable[[Stances], tuple[float, ...]]
ZERO_ALONE = "no support: its only voter gave confidence 0"
ALL_ZERO = "no support: every agent that addressed it gave confidence 0"


@dataclass
class Ballot:
    """What a strategy sees: the admitted proposals' stances, grouped by quad line."""

    index: dict[str, Stances]
    quads: dict[str, ox.Quad]
    ancestors: dict[str, frozenset[str]]
    threshold: float
    crdt_bias: str
    functional: frozenset[str]


@dataclass
class Decisions:
    """A side per quad line, why each losing stance lost, and the conflicts met."""

    side: dict[str, int] = field(default_factory=dict)
    lost: dict[tuple[str, str], str] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)


def by_confidence(p: Proposal) -> tuple[float, ...]:
    return (p.confidence, float(p.priority))


def by_priority(p: Proposal) -> tuple[float, ...]:
    return (float(p.priority), p.confidence)


KEY_WORDS: dict[Key, str] = {
    by_confidence: "confidence, then priority",
    by_priority: "priority, then confidence",
}


def strongest(proposals: list[Proposal], key: Key) -> Proposal:
    """The highest by ``key``; the smallest digest among equals."""
    return min(proposals, key=lambda p: (tuple(-x for x in key(p)), p.digest))


# voting -------------------------------------------------------------------------------------


def voting(ballot: Ballot) -> Decisions:
    decisions = Decisions()
    side_of, lost = decisions.side, decisions.lost
    for line, stances in ballot.index.items():
        first = stances[0][1]
        if any(side != first for _, side in stances):
            _vote(decisions, line, stances, ballot.threshold)
        elif any(p.confidence > 0 for p, _ in stances):
            side_of[line] = first  # one side only: its support is 1
        else:
            reason = ZERO_ALONE if len(stances) == 1 else ALL_ZERO
            for proposal, _ in stances:
                lost[(proposal.digest, line)] = reason
    rule = "higher support, then more confidence in total"
    settle_functional(ballot, decisions, _vote_strength, rule)
    return decisions


def _vote_strength(stances: Stances) -> tuple[float, ...]:
    votes = _agent_votes(stances)
    total = math.fsum(p.confidence for p, _ in votes)
    backing = math.fsum(p.confidence for p, side in votes if side > 0)
    return (backing / total if total else 0.0, backing)


def _vote(decisions: Decisions, line: str, stances: Stances, threshold: float) -> None:
    votes = _agent_votes(stances)
    for_add = math.fsum([p.confidence for p, side in votes if side > 0])
    for_rem = math.fsum([p.confidence for p, side in votes if side < 0])
    total = for_add + for_rem
    support = {1: for_add / total, -1: for_rem / total} if total else {1: 0.0, -1: 0.0}
    chosen = _winner(support, threshold)
    if chosen:
        decisions.side[line] = chosen
    reasons = {s: _vote_reason(s, support, total, threshold) for s in (1, -1) if s != chosen}
    for proposal, side in stances:
        if side != chosen:
            decisions.lost[(proposal.digest, line)] = reasons[side]
    if any(side != votes[0][1] for _, side in votes):  # agents, not just proposals, disagree
        verdict = side_name(chosen) + " wins" if chosen else "no change"
        settled = (
            f"votes: {support[1]:.3f} for adding, {support[-1]:.3f} for removing "
            f"(threshold {threshold}): {verdict}"
        )
        digests = tuple(sorted({p.digest for p, _ in stances}))
        decisions.conflicts.append(Conflict("add-remove", line, digests, settled))


def _winner(support: dict[int, float], threshold: float) -> int:
    """The side whose support reaches the threshold; below a threshold of 0.5 both can, and
    the larger wins; equal support is a tie: 0, no change."""
    add_ok = support[1] > 0 and support[1] >= threshold
    remove_ok = support[-1] > 0 and support[-1] >= threshold
    if add_ok and remove_ok:
        return 0 if support[1] == support[-1] else (1 if support[1] > support[-1] else -1)
    return 1 if add_ok else -1 if remove_ok else 0


def _agent_votes(stances: Stances) -> Stances:
    """One vote per agent: the stance of its strongest proposal on this quad."""
    if len({p.agent for p, _ in stances}) == len(stances):
        return stances
    by_agent: dict[str, list[Proposal]] = {}
    side_of: dict[str, int] = {}
    for proposal, side in stances:
        by_agent.setdefault(proposal.agent, []).append(proposal)
        side_of[proposal.digest] = side
    chosen = [g[0] if len(g) == 1 else strongest(g, by_confidence) for g in by_agent.values()]
    return [(p, side_of[p.digest]) for p in chosen]


def _vote_reason(side: int, support: dict[int, float], total: float, threshold: float) -> str:
    if total == 0:
        return ALL_ZERO
    mine = support[side]
    if mine >= threshold:
        return f"tied at support {mine:.3f} with the opposite side: no change"
    return f"support {mine:.3f} for its {side_name(side)} is below the threshold {threshold}"


# merging and priority -------------------------------------------------------------------------


def merging(ballot: Ballot) -> Decisions:
    return _ranked(ballot, by_confidence)


def priority(ballot: Ballot) -> Decisions:
    return _ranked(ballot, by_priority)


def _ranked(ballot: Ballot, key: Key) -> Decisions:
    """The union of every stance; an add-remove conflict goes to the stronger side by ``key``,
    removal on an exact tie."""
    decisions = Decisions()
    side_of = decisions.side
    words = KEY_WORDS[key]
    for line, stances in ballot.index.items():
        first = stances[0][1]
        if any(side != first for _, side in stances):
            _settle_sides(decisions, line, stances, key, words)
        else:
            side_of[line] = first

    def strength(stances: Stances) -> tuple[float, ...]:
        return max(key(p) for p, side in stances if side > 0)

    settle_functional(ballot, decisions, strength, f"higher {words}")
    return decisions


def _settle_sides(decisions: Decisions, line: str, stances: Stances, key: Key, words: str) -> None:
    best = {s: max(key(p) for p, side in stances if side == s) for s in (1, -1)}
    chosen = 1 if best[1] > best[-1] else -1
    tie = best[1] == best[-1]
    how = "tie, so removal wins" if tie else f"{side_name(chosen)} ranks higher by {words}"
    settled = f"{how} ({_fmt(best[1])} for adding, {_fmt(best[-1])} for removing)"
    decisions.side[line] = chosen
    reason = f"conflict: {settled}"
    for proposal, side in stances:
        if side != chosen:
            decisions.lost[(proposal.digest, line)] = reason
    digests = tuple(sorted({p.digest for p, _ in stances}))
    decisions.conflicts.append(Conflict("add-remove", line, digests, settled))


def _fmt(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:g}" for v in values)


def settle_functional(ballot: Ballot, decisions: Decisions, strength: Strength, rule: str) -> None:
    """Keep one added value per (subject, functional property, graph): the strongest, then the
    smallest N-Quads line; the other additions of that slot lose."""
    if not ballot.functional:
        return
    slots: dict[str, list[str]] = {}
    for line, side in decisions.side.items():
        quad = ballot.quads[line]
        if side > 0 and quad.predicate.value in ballot.functional:
            graph = quad.graph_name
            where = "" if isinstance(graph, ox.DefaultGraph) else f" in {graph}"
            slot = f"{quad.subject} {quad.predicate}{where}"
            slots.setdefault(slot, []).append(line)
    for slot, lines in sorted(slots.items()):
        if len(lines) > 1:
            _keep_one(ballot, decisions, slot, lines, strength, rule)


def _keep_one(
    ballot: Ballot,
    decisions: Decisions,
    slot: str,
    lines: list[str],
    strength: Strength,
    rule: str,
) -> None:
    winner = min(lines, key=lambda li: (tuple(-x for x in strength(ballot.index[li])), li))
    reason = f"functional property conflict on {slot}: kept {winner} ({rule})"
    digests: set[str] = set()
    for line in lines:
        digests.update(p.digest for p, _ in ballot.index[line])
        if line == winner:
            continue
        decisions.side[line] = 0
        for proposal, side in ballot.index[line]:
            if side > 0:
                decisions.lost[(proposal.digest, line)] = reason
    conflict = Conflict("functional", slot, tuple(sorted(digests)), f"kept {winner} ({rule})")
    decisions.conflicts.append(conflict)


# crdt ---------------------------------------------------------------------------------------


def crdt(ballot: Ballot) -> Decisions:
    """Observed-remove set: a removal cancels the additions it observed (those of proposals it
    depends on, transitively); a concurrent addition survives under add-wins and is cancelled
    under remove-wins, unless it depends on every removal of that quad."""
    decisions = Decisions()
    remove_wins = ballot.crdt_bias == "remove-wins"
    for line, stances in ballot.index.items():
        adds = [p for p, side in stances if side > 0]
        removes = [p for p, side in stances if side < 0]
        if not adds or not removes:
            decisions.side[line] = 1 if adds else -1
            continue
        _or_set(decisions, ballot.ancestors, line, adds, removes, remove_wins)
    return decisions


def _or_set(
    decisions: Decisions,
    ancestors: dict[str, frozenset[str]],
    line: str,
    adds: list[Proposal],
    removes: list[Proposal],
    remove_wins: bool,
) -> None:
    def after(a: Proposal, b: Proposal) -> bool:
        return b.digest in ancestors[a.digest]

    if remove_wins:
        live = [a for a in adds if all(after(a, r) for r in removes)]
    else:
        live = [a for a in adds if not any(after(r, a) for r in removes)]
    chosen = 1 if live else -1
    decisions.side[line] = chosen
    bias = "remove-wins" if remove_wins else "add-wins"
    for a in adds if chosen < 0 else removes:
        decisions.lost[(a.digest, line)] = _crdt_reason(a, chosen, live, adds, removes, after, bias)
    concurrent = any(not after(a, r) and not after(r, a) for a in adds for r in removes)
    if concurrent:
        settled = f"concurrent addition and removal: {bias}, so {side_name(chosen)} wins"
        digests = tuple(sorted(p.digest for p in adds + removes))
        decisions.conflicts.append(Conflict("add-remove", line, digests, settled))


def _crdt_reason(
    loser: Proposal,
    chosen: int,
    live: list[Proposal],
    adds: list[Proposal],
    removes: list[Proposal],
    after: Callable[[Proposal, Proposal], bool],
    bias: str,
) -> str:
    if chosen < 0:
        observer = next((r for r in removes if after(r, loser)), None)
        if observer is not None:
            return f"removed by {observer.digest[:12]}, which observed this addition"
        return f"a concurrent removal wins ({bias})"
    later = next((a for a in live if after(a, loser)), None)
    if later is not None:
        return f"added again by {later.digest[:12]}, which observed this removal"
    return f"a concurrent addition wins ({bias})"


STRATEGIES: dict[str, Callable[[Ballot], Decisions]] = {
    "voting": voting,
    "merging": merging,
    "crdt": crdt,
    "priority": priority,
    "consensus": merging,
}
