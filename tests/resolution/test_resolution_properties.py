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
        made.append(
            propose(
                draw(st.sampled_from(["bms", "survey", "model", "operator"])),
                add=chosen[:cut],
                remove=chosen[cut:],
                confidence=draw(CONFIDENCE),
                priority=draw(st.integers(-2, 3)),
                depends_on=draw(st.lists(earlier, max_size=refs)),
                conflicts_with=draw(st.lists(earlier, max_size=refs // 2)),
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
