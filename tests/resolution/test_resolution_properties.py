"""Properties: order independence, idempotence, and convergence of CRDT replicas."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from proposals import propose, quad

from kgc import Proposal, resolve
from kgc.resolution import CrdtReplica

# A small pool, so that proposals often address the same quads and conflict.
POOL = [quad(f"s{s}", p, f"o{o}") for s in range(3) for p in ("p", "fn") for o in range(2)]
FUNCTIONAL = ["urn:ex:fn"]
STRATEGY = st.sampled_from(["voting", "merging", "crdt", "priority", "consensus"])
CONFIDENCE = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1))


@st.composite
def proposal_sets(draw: st.DrawFn) -> list[Proposal]:
    made: list[Proposal] = []
    for _ in range(draw(st.integers(0, 7))):
        chosen = draw(st.lists(st.sampled_from(POOL), unique=True, min_size=1, max_size=5))
        cut = draw(st.integers(0, len(chosen)))
        earlier = st.sampled_from(made) if made else st.nothing()
        refs = 2 if made else 0
        depends_on = draw(st.lists(earlier, max_size=refs))
        conflicts_with = draw(st.lists(earlier, max_size=refs // 2))
        made.append(
            propose(
                draw(st.sampled_from(["bms", "survey", "model", "operator"])),
                add=chosen[:cut],
                remove=chosen[cut:],
                confidence=draw(CONFIDENCE),
                priority=draw(st.integers(-2, 3)),
                depends_on=depends_on,
                conflicts_with=[p for p in conflicts_with if p not in depends_on],
            )
        )
    return made


@settings(max_examples=150, deadline=None)
@given(proposal_sets(), STRATEGY, st.sampled_from([0.5, 0.6, 1.0]), st.randoms())
def test_the_same_proposals_in_any_order_resolve_the_same(
    proposals: list[Proposal], strategy: str, threshold: float, rng: random.Random
) -> None:
    shuffled = proposals[:]
    rng.shuffle(shuffled)
    options = {"strategy": strategy, "threshold": threshold, "functional": FUNCTIONAL}

    first = resolve(proposals, **options)  # type: ignore[arg-type]
    second = resolve(shuffled, **options)  # type: ignore[arg-type]

    assert first.delta == second.delta
    assert first.to_json() == second.to_json()


@settings(max_examples=100, deadline=None)
@given(proposal_sets(), STRATEGY)
def test_resolution_is_idempotent(proposals: list[Proposal], strategy: str) -> None:
    once = resolve(proposals, strategy=strategy, functional=FUNCTIONAL)
    again = resolve(proposals, strategy=strategy, functional=FUNCTIONAL)
    doubled = resolve(proposals + proposals, strategy=strategy, functional=FUNCTIONAL)

    assert once.to_json() == again.to_json() == doubled.to_json()


@settings(max_examples=150, deadline=None)
@given(proposal_sets(), st.sampled_from(["add-wins", "remove-wins"]), st.randoms())
def test_crdt_replicas_converge_under_any_interleaving(
    proposals: list[Proposal], bias: str, rng: random.Random
) -> None:
    replicas = [CrdtReplica(crdt_bias=bias) for _ in range(3)]
    # Each replica receives every proposal, some twice, in an order of its own, and merges
    # with a random other replica now and then.
    for replica in replicas:
        deliveries = proposals + rng.sample(proposals, len(proposals) // 2)
        rng.shuffle(deliveries)
        for proposal in deliveries:
            replica.receive(proposal)
            if rng.random() < 0.2:
                replica.merge(rng.choice(replicas))

    values = [r.value() for r in replicas]
    batch = resolve(proposals, strategy="crdt", crdt_bias=bias)

    assert all(v.to_json() == batch.to_json() for v in values)


@settings(max_examples=100, deadline=None)
@given(proposal_sets(), STRATEGY)
def test_every_addressed_quad_is_accounted_for(proposals: list[Proposal], strategy: str) -> None:
    outcome = resolve(proposals, strategy=strategy, functional=FUNCTIONAL)
    resolved = outcome.delta_json()

    for proposal in proposals:
        report = outcome.report(proposal.digest)
        counted = len(report.accepted) + len(report.superseded) + len(report.rejected)
        assert counted == len(proposal.delta)
        for line, side in report.accepted:
            assert line in resolved["additions" if side > 0 else "removals"]
        assert report.status == "rejected" or report.accepted or report.superseded
    assert not set(outcome.additions) & set(outcome.removals)


@settings(max_examples=300, deadline=None)
@given(proposal_sets(), STRATEGY, st.sampled_from([0.5, 0.6, 1.0]))
def test_no_proposal_is_excluded_for_a_dependency_that_was_not_rejected(
    proposals: list[Proposal], strategy: str, threshold: float
) -> None:
    outcome = resolve(proposals, strategy=strategy, threshold=threshold, functional=FUNCTIONAL)
    status = {r.digest: r.status for r in outcome.proposals}
    resolved = outcome.delta_json()
    standing = [r for r in outcome.proposals if r.status != "rejected"]

    for report in outcome.proposals:
        cited = (report.excluded or "").removeprefix("depends on ")[:12]
        if report.excluded and report.excluded.endswith("which was rejected"):
            assert [status[d] for d in status if d.startswith(cited)] == ["rejected"]
        if report.status == "rejected":
            assert not report.accepted and not report.superseded
        if report.status == "rejected" and report.excluded is None:
            for rejection in report.rejected:  # decided its way later only by others, and said
                side = "additions" if rejection.side > 0 else "removals"
                later = rejection.reason.endswith("then decided this way by other proposals")
                assert (rejection.line in resolved[side]) == later
    for side, sign in (("additions", 1), ("removals", -1)):
        for line in resolved[side]:
            assert any((line, sign) in r.accepted for r in standing), line


@settings(max_examples=200, deadline=None)
@given(proposal_sets(), STRATEGY)
def test_no_proposal_is_excluded_for_conflicting_with_one_that_commits_nothing(
    proposals: list[Proposal], strategy: str
) -> None:
    outcome = resolve(proposals, strategy=strategy, functional=FUNCTIONAL)
    status = {r.digest: r.status for r in outcome.proposals}

    for conflict in outcome.conflicts:
        if conflict.kind == "declared":
            (kept,) = [d for d in conflict.proposals if d != conflict.about]
            assert status[kept] != "rejected" or strategy == "consensus"
