"""Regressions from the review of the resolution layer, each named after what it reproduces."""

from __future__ import annotations

import pytest
from proposals import propose, quad, reasons, sides, status

from kgc import Delta, Proposal, resolve
from kgc.errors import ProposalError
from kgc.resolution.proposal import MAX_PRIORITY

LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
L = "urn:ex:label"


def label(value: str) -> str:
    return f'<urn:ex:vav> <{LABEL}> "{value}" .'


# 1. A dependant excluded for a dependency that then commits ------------------------------------


def test_a_dependant_is_not_excluded_for_a_tie_its_dependency_then_wins() -> None:
    added = propose("a", add=[quad("s")], confidence=0.5)
    removed = propose("b", remove=[quad("s")], confidence=0.5, depends_on=[added])

    outcome = resolve([added, removed], strategy="voting")

    assert sides(outcome) == (set(), set())
    assert status(outcome, added) == "rejected"
    assert status(outcome, removed) == "rejected"


@pytest.mark.parametrize("strategy", ["merging", "priority", "voting", "consensus"])
def test_a_functional_value_replaced_by_its_own_dependant_is_superseded(strategy: str) -> None:
    first = Proposal("model", Delta.from_text(label("VAV-1")), confidence=0.5)
    renamed = Proposal(
        "model", Delta.from_text(label("VAV-1 north")), confidence=0.9, depends_on=[first.digest]
    )

    outcome = resolve([first, renamed], strategy=strategy, functional=[LABEL])

    assert outcome.delta_json()["additions"] == [label("VAV-1 north")]
    assert outcome.report(renamed.digest).status == "accepted"
    report = outcome.report(first.digest)
    assert report.superseded == ((label("VAV-1"), 1, renamed.digest),)
    assert report.status == "accepted"


# 2. Declared conflicts settled for a proposal that commits nothing ------------------------------


def test_a_declared_conflict_winner_that_loses_its_dependency_does_not_exclude() -> None:
    base = propose("d", add=[quad("d")], confidence=0.1)
    built = propose("p", add=[quad("p")], confidence=0.9, depends_on=[base])
    rival = propose("k", add=[quad("k")], confidence=0.8, conflicts_with=[base])
    other = propose("q", add=[quad("q")], confidence=0.5, conflicts_with=[built])

    outcome = resolve([base, built, rival, other], strategy="merging")

    assert sides(outcome) == ({quad("k"), quad("q")}, set())
    assert status(outcome, other) == "accepted"
    assert [status(outcome, p) for p in (base, built)] == ["rejected", "rejected"]


def test_a_declared_conflict_winner_rejected_by_the_strategy_does_not_exclude() -> None:
    winner = propose("a", add=[quad("s")], confidence=0.9)
    remover = propose("b", remove=[quad("s")], confidence=0.95)
    loser = propose("c", add=[quad("c")], confidence=0.5, conflicts_with=[winner])

    outcome = resolve([winner, remover, loser], strategy="merging")

    assert sides(outcome) == ({quad("c")}, {quad("s")})
    assert status(outcome, winner) == "rejected"
    assert status(outcome, loser) == "accepted"


def test_a_digest_in_both_depends_on_and_conflicts_with_is_refused() -> None:
    other = propose("x", add=[quad("x")])

    with pytest.raises(ProposalError, match=r"'conflicts_with'.*also in depends_on"):
        propose("y", add=[quad("y")], depends_on=[other], conflicts_with=[other])


# 3. A functional-property loser ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["merging", "priority", "voting"])
def test_a_removal_of_a_value_that_lost_its_functional_slot_is_applied(strategy: str) -> None:
    old = Proposal("a", Delta.from_text(label("old")), confidence=0.9)
    remove_old = Proposal("b", Delta.from_text("", label("old")), confidence=0.5)
    new = Proposal("c", Delta.from_text(label("new")), confidence=0.95)

    outcome = resolve([old, remove_old, new], strategy=strategy, threshold=0.5, functional=[LABEL])

    assert outcome.delta_json() == {"additions": [label("new")], "removals": [label("old")]}
    assert outcome.report(remove_old.digest).status == "accepted"
    assert outcome.report(old.digest).status == "rejected"


# 4. Voting at the exact threshold -------------------------------------------------------------


@pytest.mark.parametrize(
    ("adds", "removes", "threshold", "wins"),
    [
        ([0.3] * 4, [0.3], 0.8, 1),  # 1.2 / 1.5 = 0.8 exactly
        ([0.1] * 3, [0.1] * 7, 0.7, -1),  # 0.7 / 1.0
        ([0.1, 0.2], [0.7], 0.7, -1),
        ([0.7], [0.1, 0.2], 0.7, 1),
        ([0.2] * 3, [0.4], 0.6, 1),  # 0.6 / 1.0
        ([0.3] * 4, [0.30000000000000004], 0.8, 0),  # just below: no change
    ],
)
def test_voting_support_exactly_at_the_threshold_takes_the_side(
    adds: list[float], removes: list[float], threshold: float, wins: int
) -> None:
    voters = [propose(f"a{i}", add=[quad("s")], confidence=c) for i, c in enumerate(adds)]
    voters += [propose(f"r{i}", remove=[quad("s")], confidence=c) for i, c in enumerate(removes)]

    outcome = resolve(voters, strategy="voting", threshold=threshold)

    expected = {1: ({quad("s")}, set()), -1: (set(), {quad("s")}), 0: (set(), set())}
    assert sides(outcome) == expected[wins]
    if not wins:
        assert "below the threshold 0.8" in reasons(outcome, voters[0])[0]


# 8. Priority bound ----------------------------------------------------------------------------


def test_priority_2_to_the_53_is_refused_and_2_to_the_53_minus_1_has_a_digest() -> None:
    for priority in (2**53, -(2**53)):
        with pytest.raises(ProposalError, match=r"'priority'.*2\*\*53 - 1"):
            propose("a", add=[quad("a")], priority=priority)

    edge = [propose("a", add=[quad("a")], priority=p) for p in (MAX_PRIORITY, -MAX_PRIORITY)]

    assert all(len(p.digest) == 64 for p in edge)


# 10. A long dependency chain ------------------------------------------------------------------


def test_a_chain_of_2000_dependencies_resolves_without_recursion_error() -> None:
    chain: list[Proposal] = []
    for i in range(2000):
        chain.append(propose("a", add=[quad(f"s{i}")], confidence=0.5, depends_on=chain[-1:]))

    outcome = resolve(chain, strategy="merging")

    assert len(outcome.additions) == 2000
    assert {r.status for r in outcome.proposals} == {"accepted"}


# 11. Input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("given", [{"a": 1}, {"ab" * 32}, frozenset()])
def test_depends_on_given_as_a_dict_or_set_is_refused(given: object) -> None:
    with pytest.raises(ProposalError, match=r"'depends_on': expected a list"):
        Proposal("a", Delta.from_text(f"<{L}> <{L}> <{L}> ."), 1.0, depends_on=given)  # type: ignore[arg-type]


def test_an_agent_with_a_non_breaking_space_is_refused_for_whitespace_not_control() -> None:
    with pytest.raises(ProposalError, match=r"'agent'.*no whitespace but the plain space"):
        propose("a\u00a0b", add=[quad("a")])
