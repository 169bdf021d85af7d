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
from fractions import Fraction
from functools import lru_cache

import pyoxigraph as ox

from kgc.resolution.outcome import Conflict, side_name
from kgc.resolution.proposal import Proposal

Stances = list[tuple[Proposal, int]]
Key = Callable[[Proposal], tuple[float, ...]]
# How strongly an added quad is backed, from its stances: settles functional-property conflicts.
Strength = Callable[[Stances], tuple[float, ...]]
# The same, exactly (voting's support is a ratio of sums): breaks what is a tie in floats.
ExactStrength = Callable[[Stances], tuple[Fraction, ...]]
Number = float | Fraction
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
    # Proposals rejected in an earlier pass (final): a side only they back is never taken.
    rejected: frozenset[str] = frozenset()


@dataclass
class Decisions:
    """A side per quad line, why each losing stance lost, and the conflicts met. ``displaced``:
    an added value that lost a functional property conflict, to the value kept."""

    side: dict[str, int] = field(default_factory=dict)
    lost: dict[tuple[str, str], str] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    displaced: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # added to an add-remove conflict


@lru_cache(maxsize=4096)
def exact(value: float) -> Fraction:
    """``value`` as the decimal it prints as: 0.3 is exactly 3/10, not the nearest binary."""
    return Fraction(repr(value))


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
    if key is by_confidence:  # the common keys without building a tuple per call
        return min(proposals, key=lambda p: (-p.confidence, -p.priority, p.digest))
    if key is by_priority:
        return min(proposals, key=lambda p: (-p.priority, -p.confidence, p.digest))
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
    finish(ballot, decisions, _vote_strength, rule, abstain_zero=True, exact=_exact_vote_strength)
    return decisions


def _weight(votes: Stances, side: int) -> Fraction:
    return sum((exact(p.confidence) for p, s in votes if s == side), Fraction(0))


def _vote_strength(stances: Stances) -> tuple[float, ...]:
    votes = _agent_votes(stances)
    backing = math.fsum(p.confidence for p, side in votes if side > 0)
    total = backing + math.fsum(p.confidence for p, side in votes if side < 0)
    return (backing / total if total else 0.0, backing)


def _exact_vote_strength(stances: Stances) -> tuple[Fraction, ...]:
    votes = _agent_votes(stances)
    backing = _weight(votes, 1)
    total = backing + _weight(votes, -1)
    return (backing / total if total else Fraction(0), backing)


def _vote(decisions: Decisions, line: str, stances: Stances, threshold: float) -> None:
    """Sums and support are exact fractions of the decimal confidences, compared exactly with
    the threshold (4 x 0.3 against 0.3 is support 4/5, which reaches a threshold of 0.8)."""
    votes = _agent_votes(stances)
    support, total, limit = _support(votes, threshold)
    chosen = _winner(support, limit)
    if chosen:
        decisions.side[line] = chosen
    reasons = {s: _vote_reason(s, support, total, limit, threshold) for s in (1, -1) if s != chosen}
    for proposal, side in stances:
        if side != chosen:
            decisions.lost[(proposal.digest, line)] = reasons[side]
    if any(side != votes[0][1] for _, side in votes):  # agents, not just proposals, disagree
        verdict = side_name(chosen) + " wins" if chosen else "no change"
        settled = (
            f"votes: {float(support[1]):.3f} for adding, {float(support[-1]):.3f} for removing "
            f"(threshold {threshold}): {verdict}"
        )
        digests = tuple(sorted({p.digest for p, _ in stances}))
        decisions.conflicts.append(Conflict("add-remove", line, digests, settled))


def _support(votes: Stances, threshold: float) -> tuple[dict[int, Number], Number, Number]:
    """Each side's support and the total weight. Floats first: when neither support is within
    1e-9 of the threshold, the float comparison agrees with the exact one (the floats are within
    a few units in the last place of the decimals), and exactness is not worth its cost."""
    for_add = math.fsum(p.confidence for p, side in votes if side > 0)
    for_rem = math.fsum(p.confidence for p, side in votes if side < 0)
    total = for_add + for_rem
    far = total and all(abs(x / total - threshold) > 1e-9 for x in (for_add, for_rem))
    if far and abs(for_add - for_rem) > 1e-9 * total:  # and no tie to settle
        return {1: for_add / total, -1: for_rem / total}, total, threshold
    add, rem = _weight(votes, 1), _weight(votes, -1)
    exact_total = add + rem
    if not exact_total:
        return {1: Fraction(0), -1: Fraction(0)}, exact_total, exact(threshold)
    return {1: add / exact_total, -1: rem / exact_total}, exact_total, exact(threshold)


def _winner(support: dict[int, Number], threshold: Number) -> int:
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


def _vote_reason(
    side: int, support: dict[int, Number], total: Number, limit: Number, threshold: float
) -> str:
    if total == 0:
        return ALL_ZERO
    mine = support[side]
    if mine >= limit:
        return f"tied at support {float(mine):.3f} with the opposite side: no change"
    return f"support {float(mine):.3f} for its {side_name(side)} is below the threshold {threshold}"


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

    finish(ballot, decisions, strength, f"higher {words}", abstain_zero=False)
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


def finish(
    ballot: Ballot,
    decisions: Decisions,
    strength: Strength,
    rule: str,
    *,
    abstain_zero: bool,
    exact: ExactStrength | None = None,
) -> None:
    """After the per-quad decisions: keep one value per functional slot and decide each value
    that lost its slot again from its removals, then drop the sides only rejected proposals back
    (``abstain_zero``: a stance of confidence 0 does not count, as in voting)."""
    for line in settle_functional(ballot, decisions, strength, rule, exact):
        _redecide(ballot, decisions, line, abstain_zero)
    drop_rejected(ballot, decisions, abstain_zero)
    _add_notes(decisions)


def _standing(ballot: Ballot, line: str, side: int, abstain_zero: bool) -> list[Proposal]:
    """The proposals not rejected in an earlier pass that take ``side`` on ``line``."""
    return [
        p
        for p, s in ballot.index[line]
        if s == side and p.digest not in ballot.rejected and (p.confidence > 0 or not abstain_zero)
    ]


def drop_rejected(ballot: Ballot, decisions: Decisions, abstain_zero: bool) -> None:
    """A side backed only by proposals rejected in an earlier pass (final) is never taken: the
    other side is, when a proposal still standing takes it; otherwise the quad is left as is."""
    if not ballot.rejected:
        return
    for line, side in list(decisions.side.items()):
        if not side or any(
            p.digest not in ballot.rejected for p, s in ballot.index[line] if s == side
        ):
            continue
        other = _standing(ballot, line, -side, abstain_zero)
        decisions.side[line] = -side if other else 0
        reason = "the other side is backed only by proposals rejected earlier in this round"
        for proposal in other:
            decisions.lost.pop((proposal.digest, line), None)
        if other:
            _note(decisions, line, f"{side_name(side)} backed only by rejected proposals: {reason}")


def settle_functional(
    ballot: Ballot,
    decisions: Decisions,
    strength: Strength,
    rule: str,
    exact: ExactStrength | None = None,
) -> list[str]:
    """Keep one added value per (subject, functional property, graph): the strongest, then the
    smallest N-Quads line; the other additions of that slot lose. Returns the lines that lost."""
    if not ballot.functional:
        return []
    slots: dict[str, list[str]] = {}
    for line, side in decisions.side.items():
        quad = ballot.quads[line]
        if side > 0 and quad.predicate.value in ballot.functional:
            graph = quad.graph_name
            where = "" if isinstance(graph, ox.DefaultGraph) else f" in {graph}"
            slot = f"{quad.subject} {quad.predicate}{where}"
            slots.setdefault(slot, []).append(line)
    lost: list[str] = []
    for slot, lines in sorted(slots.items()):
        if len(lines) > 1:
            winner = _strongest_value(ballot, lines, strength, exact)
            lost += _keep_one(ballot, decisions, slot, lines, winner, rule)
    return lost


def _keep_one(
    ballot: Ballot,
    decisions: Decisions,
    slot: str,
    lines: list[str],
    winner: str,
    rule: str,
) -> list[str]:
    reason = f"functional property conflict on {slot}: kept {winner} ({rule})"
    digests: set[str] = set()
    for line in lines:
        digests.update(p.digest for p, _ in ballot.index[line])
        if line == winner:
            continue
        decisions.side[line] = 0
        decisions.displaced[line] = winner
        for proposal, side in ballot.index[line]:
            if side > 0:
                decisions.lost[(proposal.digest, line)] = reason
    conflict = Conflict("functional", slot, tuple(sorted(digests)), f"kept {winner} ({rule})")
    decisions.conflicts.append(conflict)
    return [line for line in lines if line != winner]


def _strongest_value(
    ballot: Ballot, lines: list[str], strength: Strength, exact: ExactStrength | None
) -> str:
    """The value to keep: a live one first (a value only proposals rejected earlier in the round
    add is never kept over a live one), then the strongest, then the smallest line. Values whose
    float strengths are within 1e-9 of the best are compared by ``exact`` strength."""
    rank = {
        li: (not _live(ballot, li), tuple(-x for x in strength(ballot.index[li]))) for li in lines
    }
    best = min(lines, key=lambda li: (rank[li], li))
    if exact is None:
        return best
    near = [li for li in lines if _near(rank[li], rank[best])]
    if len(near) == 1:
        return best
    return min(near, key=lambda li: (tuple(-x for x in exact(ballot.index[li])), li))


def _near(a: tuple[bool, tuple[float, ...]], b: tuple[bool, tuple[float, ...]]) -> bool:
    return a[0] == b[0] and all(
        abs(x - y) <= 1e-9 * max(1.0, abs(x)) for x, y in zip(a[1], b[1], strict=True)
    )


def _redecide(ballot: Ballot, decisions: Decisions, line: str, abstain_zero: bool) -> None:
    """A value that lost its functional slot is out of the running; its removals, if any (not
    rejected, and above confidence 0 when ``abstain_zero``), now decide the quad: removed."""
    if not _standing(ballot, line, -1, abstain_zero):
        return
    decisions.side[line] = -1
    _note(decisions, line, "the addition then lost its functional property slot: removed")


def _live(ballot: Ballot, line: str) -> bool:
    """Some addition of ``line`` comes from a proposal not rejected in an earlier pass."""
    return any(s > 0 and p.digest not in ballot.rejected for p, s in ballot.index[line])


def _note(decisions: Decisions, line: str, note: str) -> None:
    """Add ``note`` to how the add-remove conflict about ``line`` was settled (``_add_notes``)."""
    decisions.notes[line] = note


def _add_notes(decisions: Decisions) -> None:
    if not decisions.notes:
        return
    for i, c in enumerate(decisions.conflicts):
        note = decisions.notes.get(c.about)
        if c.kind == "add-remove" and note is not None:
            decisions.conflicts[i] = Conflict(c.kind, c.about, c.proposals, f"{c.settled}; {note}")


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
    drop_rejected(ballot, decisions, abstain_zero=False)
    _add_notes(decisions)
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
