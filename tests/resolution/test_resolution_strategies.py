"""Each strategy on its edge cases: ties, zero confidence, a single agent, no agreement."""

from __future__ import annotations

import pytest
from proposals import propose, quad, reasons, sides, status

from kgc import InputError, resolve

A, B, C = quad("a"), quad("b"), quad("c")
STRATEGIES = ["voting", "merging", "crdt", "priority", "consensus"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_single_agent_gets_its_whole_delta(strategy: str) -> None:
    only = propose("bms", add=[A, B], remove=[C], confidence=0.7)

    outcome = resolve([only], strategy=strategy)

    assert sides(outcome) == ({A, B}, {C})
    assert status(outcome, only) == "accepted"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_proposals_resolve_to_nothing(strategy: str) -> None:
    outcome = resolve([], strategy=strategy)

    assert sides(outcome) == (set(), set())
    assert outcome.proposals == ()


def test_unknown_strategy_and_bad_threshold_are_refused() -> None:
    with pytest.raises(InputError, match="unknown resolution strategy 'majority'"):
        resolve([], strategy="majority")
    with pytest.raises(InputError, match="threshold must be above 0"):
        resolve([], threshold=0)


# voting ---------------------------------------------------------------------------------------


def test_voting_accepts_what_two_of_three_agents_support() -> None:
    bms, survey = propose("bms", add=[A]), propose("survey", add=[A])
    model = propose("model", remove=[A])

    outcome = resolve([bms, survey, model], strategy="voting", threshold=0.6)

    assert sides(outcome) == ({A}, set())
    assert status(outcome, model) == "rejected"
    assert "support 0.333 for its removal is below the threshold 0.6" in reasons(outcome, model)
    assert [c.kind for c in outcome.conflicts] == ["add-remove"]


def test_voting_weighs_by_confidence_among_the_agents_that_addressed_the_quad() -> None:
    sure = propose("bms", add=[A], remove=[B], confidence=0.9)
    unsure = propose("model", remove=[A], confidence=0.3)

    outcome = resolve([sure, unsure], strategy="voting", threshold=0.6)

    # A: 0.9 / 1.2 = 0.75 for adding; B is addressed by one agent only: full support.
    assert sides(outcome) == ({A}, {B})


def test_voting_zero_confidence_abstains_and_alone_supports_nothing() -> None:
    sure = propose("bms", add=[A], confidence=1.0)
    zero = propose("model", remove=[A], add=[B], confidence=0)

    outcome = resolve([sure, zero], strategy="voting")

    assert sides(outcome) == ({A}, set())
    assert "no support: its only voter gave confidence 0" in reasons(outcome, zero)


def test_voting_all_zero_confidence_changes_nothing() -> None:
    one, two = propose("a", add=[A], confidence=0), propose("b", remove=[A], confidence=0)

    outcome = resolve([one, two], strategy="voting")

    assert sides(outcome) == (set(), set())
    assert "every agent that addressed it gave confidence 0" in reasons(outcome, one)[0]


def test_voting_tie_at_a_low_threshold_leaves_the_quad_alone() -> None:
    one, two = propose("a", add=[A], confidence=0.5), propose("b", remove=[A], confidence=0.5)

    outcome = resolve([one, two], strategy="voting", threshold=0.5)

    assert sides(outcome) == (set(), set())
    assert "tied at support 0.500" in reasons(outcome, one)[0]
    assert "no change" in outcome.conflicts[0].settled


def test_voting_without_agreement_changes_nothing() -> None:
    one, two = propose("a", add=[A], confidence=0.5), propose("b", remove=[A], confidence=0.4)

    outcome = resolve([one, two], strategy="voting", threshold=0.6)

    assert sides(outcome) == (set(), set())
    assert {status(outcome, one), status(outcome, two)} == {"rejected"}


def test_voting_counts_an_agent_once_by_its_strongest_proposal() -> None:
    loud = [propose("bot", add=[A], confidence=0.2, priority=n) for n in range(5)]
    quiet = propose("bms", remove=[A], confidence=0.6)

    outcome = resolve([*loud, quiet], strategy="voting", threshold=0.6)

    # bot's five proposals are one vote of 0.2: removal has 0.6 / 0.8 = 0.75.
    assert sides(outcome) == (set(), {A})


# merging --------------------------------------------------------------------------------------


def test_merging_takes_the_union_and_settles_add_remove_by_confidence() -> None:
    one = propose("bms", add=[A, B], confidence=0.4)
    two = propose("model", remove=[A], add=[C], confidence=0.8)

    outcome = resolve([one, two], strategy="merging")

    assert sides(outcome) == ({B, C}, {A})
    assert status(outcome, one) == "partial"
    assert "removal ranks higher by confidence, then priority" in reasons(outcome, one)[0]


def test_merging_tie_on_confidence_then_priority_decides() -> None:
    low = propose("a", add=[A], confidence=0.5, priority=1)
    high = propose("b", remove=[A], confidence=0.5, priority=0)

    assert sides(resolve([low, high], strategy="merging")) == ({A}, set())


def test_merging_exact_tie_removal_wins() -> None:
    one, two = propose("a", add=[A], confidence=0.5), propose("b", remove=[A], confidence=0.5)

    outcome = resolve([one, two], strategy="merging")

    assert sides(outcome) == (set(), {A})
    assert outcome.conflicts[0].settled.startswith("tie, so removal wins")


def test_merging_keeps_zero_confidence_proposals_that_conflict_with_nothing() -> None:
    zero = propose("a", add=[A], confidence=0)

    assert sides(resolve([zero], strategy="merging")) == ({A}, set())


def test_merging_keeps_one_value_of_a_functional_property() -> None:
    cool = propose("bms", add=[quad("sp", "setpoint", "v20")], confidence=0.6)
    warm = propose("model", add=[quad("sp", "setpoint", "v22")], confidence=0.9)
    functional = [f"{'urn:ex:'}setpoint"]

    outcome = resolve([cool, warm], strategy="merging", functional=functional)
    without = resolve([cool, warm], strategy="merging")

    assert sides(outcome) == ({quad("sp", "setpoint", "v22")}, set())
    assert (
        "functional property conflict on <urn:ex:sp> <urn:ex:setpoint>" in reasons(outcome, cool)[0]
    )
    assert [c.kind for c in outcome.conflicts] == ["functional"]
    assert len(without.additions) == 2


def test_merging_functional_tie_keeps_the_smaller_line() -> None:
    one = propose("a", add=[quad("sp", "setpoint", "v2")], confidence=0.5)
    two = propose("b", add=[quad("sp", "setpoint", "v1")], confidence=0.5)

    outcome = resolve([one, two], strategy="merging", functional=["urn:ex:setpoint"])

    assert sides(outcome) == ({quad("sp", "setpoint", "v1")}, set())


# priority -------------------------------------------------------------------------------------


def test_priority_highest_priority_wins_each_conflicting_quad() -> None:
    operator = propose("operator", add=[A], remove=[B], confidence=0.1, priority=10)
    model = propose("model", remove=[A], add=[B, C], confidence=1.0, priority=0)

    outcome = resolve([operator, model], strategy="priority")

    assert sides(outcome) == ({A, C}, {B})
    assert status(outcome, model) == "partial"


def test_priority_tie_falls_to_confidence_then_removal() -> None:
    sure = propose("a", add=[A], confidence=0.9, priority=0)
    unsure = propose("b", remove=[A], confidence=0.1, priority=0)
    even = propose("c", add=[B], priority=-1), propose("d", remove=[B], priority=-1)

    assert sides(resolve([sure, unsure], strategy="priority")) == ({A}, set())
    assert sides(resolve(even, strategy="priority")) == (set(), {B})


# crdt -----------------------------------------------------------------------------------------


def test_crdt_concurrent_add_and_remove_follow_the_bias() -> None:
    adder, remover = propose("a", add=[A]), propose("b", remove=[A])

    add_wins = resolve([adder, remover], strategy="crdt", crdt_bias="add-wins")
    remove_wins = resolve([adder, remover], strategy="crdt", crdt_bias="remove-wins")

    assert sides(add_wins) == ({A}, set())
    assert sides(remove_wins) == (set(), {A})
    assert "a concurrent addition wins (add-wins)" in reasons(add_wins, remover)


def test_crdt_a_removal_cancels_the_addition_it_observed() -> None:
    adder = propose("a", add=[A])
    remover = propose("b", remove=[A], depends_on=[adder])

    outcome = resolve([adder, remover], strategy="crdt", crdt_bias="add-wins")

    assert sides(outcome) == (set(), {A})
    report = outcome.report(adder.digest)
    assert report.status == "accepted"  # superseded by a proposal that builds on it
    assert report.superseded[0][2] == remover.digest
    assert outcome.conflicts == ()  # causally ordered: no conflict


def test_crdt_an_addition_after_a_removal_survives_remove_wins() -> None:
    remover = propose("a", remove=[A])
    adder = propose("b", add=[A], depends_on=[remover])
    rival = propose("c", remove=[A])

    outcome = resolve([remover, adder, rival], strategy="crdt", crdt_bias="remove-wins")

    # rival's removal is concurrent with the re-addition, so remove-wins removes A.
    assert sides(outcome) == (set(), {A})
    assert sides(resolve([remover, adder], strategy="crdt", crdt_bias="remove-wins")) == (
        {A},
        set(),
    )


# consensus ------------------------------------------------------------------------------------


def test_consensus_commits_the_whole_delta_when_enough_agents_agree() -> None:
    one, two = propose("a", add=[A]), propose("b", add=[B])
    dissent = propose("c", remove=[A], confidence=0.2)

    outcome = resolve([one, two, dissent], strategy="consensus", threshold=0.6)

    assert sides(outcome) == ({A, B}, set())
    assert outcome.note == "consensus reached: 2 of 3 agents agree (0.667; threshold 0.6)"


def test_consensus_is_all_or_nothing() -> None:
    one = propose("a", add=[A, C])
    two, three = propose("b", remove=[A], confidence=0.5), propose("c", remove=[C], confidence=0.5)

    outcome = resolve([one, two, three], strategy="consensus", threshold=0.6)

    assert sides(outcome) == (set(), set())
    assert {r.status for r in outcome.proposals} == {"rejected"}
    assert "no consensus: 1 of 3 agents agree" in reasons(outcome, two)[0]


def test_consensus_zero_confidence_agent_does_not_agree() -> None:
    one, zero = propose("a", add=[A]), propose("b", add=[B], confidence=0)

    assert sides(resolve([one, zero], strategy="consensus", threshold=0.6)) == (set(), set())
    assert sides(resolve([one, zero], strategy="consensus", threshold=0.5)) == ({A, B}, set())


# dependencies and declared conflicts ----------------------------------------------------------


def test_a_proposal_whose_dependency_is_absent_is_rejected() -> None:
    ghost = propose("a", add=[A])
    child = propose("b", add=[B], depends_on=[ghost])

    outcome = resolve([child], strategy="merging")

    assert sides(outcome) == (set(), set())
    assert reasons(outcome, child) == [
        f"depends on {ghost.digest[:12]}, which is not in this round"
    ]


def test_a_proposal_whose_dependency_is_rejected_is_rejected() -> None:
    weak = propose("a", add=[A], confidence=0.2)
    strong = propose("b", remove=[A], confidence=0.9)
    child = propose("c", add=[B], depends_on=[weak])
    grandchild = propose("d", add=[C], depends_on=[child])

    outcome = resolve([weak, strong, child, grandchild], strategy="merging")

    assert sides(outcome) == (set(), {A})
    assert status(outcome, child) == status(outcome, grandchild) == "rejected"
    assert reasons(outcome, child)[0] == f"depends on {weak.digest[:12]}, which was rejected"


@pytest.mark.parametrize(
    ("strategy", "winner"), [("merging", "sure"), ("voting", "sure"), ("priority", "urgent")]
)
def test_a_declared_conflict_is_settled_by_the_strategys_ranking(
    strategy: str, winner: str
) -> None:
    sure = propose("sure", add=[A], confidence=0.9, priority=0)
    urgent = propose("urgent", add=[B], confidence=0.1, priority=5, conflicts_with=[sure])

    outcome = resolve([sure, urgent], strategy=strategy)

    kept = {r.agent for r in outcome.proposals if r.status == "accepted"}
    assert kept == {winner}
    assert [c.kind for c in outcome.conflicts] == ["declared"]
    loser = urgent if winner == "sure" else sure
    assert reasons(outcome, loser)[0].startswith("declared conflict with")


# no agreement at all --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "bias", "added", "removed"),
    [
        ("voting", "add-wins", set(), set()),  # 0.5 each, below 0.6: left as it is
        ("merging", "add-wins", set(), {A}),  # exact tie: removal wins
        ("priority", "add-wins", set(), {A}),
        ("crdt", "add-wins", {A}, set()),
        ("crdt", "remove-wins", set(), {A}),
        ("consensus", "add-wins", set(), set()),  # 1 of 2 agents agree: 0.5 < 0.6
    ],
)
def test_two_agents_in_exact_opposition(
    strategy: str, bias: str, added: set[object], removed: set[object]
) -> None:
    adder = propose("a", add=[A], confidence=0.5, priority=1)
    remover = propose("b", remove=[A], confidence=0.5, priority=1)

    outcome = resolve([remover, adder], strategy=strategy, crdt_bias=bias)

    assert sides(outcome) == (added, removed)
    assert {c.kind for c in outcome.conflicts} >= {"add-remove"}


def test_crdt_ignores_confidence_even_zero() -> None:
    zero = propose("a", add=[A], confidence=0)
    sure = propose("b", remove=[A], confidence=1)

    assert sides(resolve([zero, sure], strategy="crdt")) == ({A}, set())


def test_consensus_exactly_at_the_threshold_commits() -> None:
    agreeing = [propose(f"agent-{n}", add=[quad(f"s{n}")]) for n in range(3)]
    dissent = [propose(f"critic-{n}", remove=[quad("s0")], confidence=0.1) for n in range(2)]

    outcome = resolve(agreeing + dissent, strategy="consensus", threshold=0.6)

    assert outcome.note == "consensus reached: 3 of 5 agents agree (0.600; threshold 0.6)"
    assert len(outcome.additions) == 3
