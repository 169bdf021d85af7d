"""Digests: the LtHash state digest (a function of the set of quads) and the delta digest."""

from __future__ import annotations

import hashlib
import random

import blake3
import pyoxigraph as ox
from hypothesis import given, settings
from hypothesis import strategies as st

from kgc import Delta, KnowledgeEngine
from kgc.rdf.digest import StateDigest, delta_digests
from kgc.rdf.terms import quad_line

iris = st.integers(0, 40).map(lambda n: ox.NamedNode(f"urn:x:{n}"))
literals = st.builds(
    ox.Literal, st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
) | st.builds(ox.Literal, st.text(max_size=3, alphabet="ab"), language=st.just("en"))
graphs = st.just(ox.DefaultGraph()) | iris
quads = st.builds(ox.Quad, iris, iris, iris | literals, graphs)
quad_sets = st.sets(quads, max_size=12)
hypothesis_settings = settings(max_examples=60, deadline=None, database=None)


def reference_state_digest(lines: set[str]) -> str:
    """The state digest exactly as docs/receipts.md specifies it, written plainly."""
    lanes = [0] * 1024
    for line in lines:
        words = blake3.blake3(line.encode("utf-8")).digest(length=4096)
        for i in range(1024):
            lanes[i] = (lanes[i] + int.from_bytes(words[4 * i : 4 * i + 2], "little")) % 65536
    return hashlib.sha3_256(b"".join(lane.to_bytes(2, "little") for lane in lanes)).hexdigest()


# State digest -----------------------------------------------------------------------------------


def test_empty_state_is_the_hash_of_a_zero_vector() -> None:
    assert StateDigest().lanes() == bytes(2048)
    assert KnowledgeEngine().state_digest == hashlib.sha3_256(bytes(2048)).hexdigest()


@hypothesis_settings
@given(quad_sets)
def test_state_digest_matches_the_documented_algorithm(qs: set[ox.Quad]) -> None:
    lines = {quad_line(q) for q in qs}

    assert StateDigest.of(lines).hexdigest() == reference_state_digest(lines)


@hypothesis_settings
@given(st.lists(quads, max_size=12, unique=True), st.randoms(use_true_random=False))
def test_state_digest_is_order_independent(qs: list[ox.Quad], rnd: random.Random) -> None:
    lines = [quad_line(q) for q in qs]
    shuffled = list(lines)
    rnd.shuffle(shuffled)

    assert StateDigest.of(lines) == StateDigest.of(shuffled)


@hypothesis_settings
@given(quad_sets, quads)
def test_add_then_remove_returns_to_the_prior_value(qs: set[ox.Quad], extra: ox.Quad) -> None:
    digest = StateDigest.of(quad_line(q) for q in qs)
    before = digest.hexdigest()

    digest.update(added=[quad_line(extra)])
    digest.update(removed=[quad_line(extra)])

    assert digest.hexdigest() == before


@hypothesis_settings
@given(st.lists(st.tuples(st.booleans(), quads), max_size=30))
def test_incremental_updates_equal_the_from_scratch_value(ops: list[tuple[bool, ox.Quad]]) -> None:
    held: set[str] = set()
    digest = StateDigest()
    for add, quad in ops:
        line = quad_line(quad)
        if add and line not in held:
            held.add(line)
            digest.update(added=[line])
        elif not add and line in held:
            held.discard(line)
            digest.update(removed=[line])

    assert digest == StateDigest.of(held)
    assert digest.hexdigest() == StateDigest.of(held).hexdigest()


@hypothesis_settings
@given(quad_sets, quad_sets)
def test_different_sets_have_different_digests(a: set[ox.Quad], b: set[ox.Quad]) -> None:
    same = StateDigest.of(map(quad_line, a)) == StateDigest.of(map(quad_line, b))

    assert same == (a == b)


@settings(max_examples=25, deadline=None, database=None)
@given(st.lists(st.tuples(quad_sets, quad_sets), min_size=1, max_size=4))
def test_engine_digest_after_random_transactions_equals_recomputed(
    steps: list[tuple[set[ox.Quad], set[ox.Quad]]],
) -> None:
    engine = KnowledgeEngine()
    for additions, removals in steps:
        receipt = engine.apply(Delta(additions, removals - additions))
        assert receipt.state_after == engine.state_digest

    assert engine.state_digest == engine.transactions.recompute_state_digest()
    assert engine.state_digest == reference_state_digest({quad_line(q) for q in engine.store})


def test_state_digest_counts_only_user_graphs(engine: KnowledgeEngine) -> None:
    engine.apply(Delta.from_text('<urn:s> <urn:p> "v" <urn:g> .'))

    assert engine.state_digest == reference_state_digest({'<urn:s> <urn:p> "v" <urn:g> .'})


# Delta digest -----------------------------------------------------------------------------------


def _documented_delta_digest(additions: list[str], removals: list[str]) -> dict[str, str]:
    body = "".join(f"+ {line}\n" for line in sorted(additions))
    body += "".join(f"- {line}\n" for line in sorted(removals))
    data = body.encode("utf-8")
    return {
        "sha3-256": hashlib.sha3_256(data).hexdigest(),
        "blake3": blake3.blake3(data).hexdigest(),
    }


def test_receipt_delta_digest_is_over_the_documented_canonical_form(
    engine: KnowledgeEngine,
) -> None:
    engine.apply(Delta.from_text('<urn:s> <urn:p> "old" .'))
    text = '<urn:s> <urn:q> "é\\n"@fr <urn:g> .\n<urn:a> <urn:p> <urn:b> .\n'

    receipt = engine.apply(Delta.from_text(text, '<urn:s> <urn:p> "old" .'))

    assert receipt.delta_digest == _documented_delta_digest(
        ["<urn:a> <urn:p> <urn:b> .", '<urn:s> <urn:q> "é\\n"@fr <urn:g> .'],
        ['<urn:s> <urn:p> "old" .'],
    )


def test_delta_digest_covers_only_the_effective_change(engine: KnowledgeEngine) -> None:
    engine.apply(Delta.from_text('<urn:s> <urn:p> "kept" .'))

    receipt = engine.apply(
        Delta.from_text(
            '<urn:s> <urn:p> "kept" .\n<urn:s> <urn:p> "new" .', '<urn:x> <urn:y> "z" .'
        )
    )

    assert receipt.delta_digest == _documented_delta_digest(['<urn:s> <urn:p> "new" .'], [])


def test_delta_digest_ignores_the_order_quads_were_given_in() -> None:
    lines = [f'<urn:s> <urn:p> "{n}" .' for n in range(5)]

    assert delta_digests(lines, []) == delta_digests(reversed(lines), [])
    assert delta_digests(lines, []) != delta_digests([], lines)


def test_an_update_larger_than_the_lane_headroom_equals_single_updates() -> None:
    # More terms than fit in a lane's slot between reductions (65,534): the mask must be applied
    # along the way, or carries would spill into the next lane.
    from kgc.rdf.digest import StateDigest

    lines = [f"<urn:s{i}> <urn:p> <urn:o> ." for i in range(70_000)]
    bulk = StateDigest()
    bulk.update(added=lines, removed=lines[:66_000])
    single = StateDigest()
    for line in lines[66_000:]:
        single.update(added=[line])

    assert bulk == single
