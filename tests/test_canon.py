"""The canonical hash: RDFC-1.0 (W3C rdf-canon suite), its work limit (L2) and stability (L3).

The W3C cases read ``shared/`` beside the checkout and skip, saying where they looked, without it.
Tests that count worker processes read ``/proc`` and skip where there is none.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import threading
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pyoxigraph as ox
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgc import InputError, KnowledgeEngine
from kgc.errors import CanonicalizationBudgetExceeded
from kgc.rdf import canon
from kgc.rdf.canon import canonical_hash, canonical_nquads, close_workers
from kgc.rdf.canon_pool import KEEP_IDLE
from kgc.rdf.parse import parse_file, parse_text

SUITE = Path(__file__).resolve().parents[2] / "shared/cases/w3c/rdf-canon/tests"
MANIFEST = SUITE / "manifest.ttl"
MF = "http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#"
RDFC = "https://w3c.github.io/rdf-canon/tests/vocab#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
POISON = SUITE / "rdfc10/test074-in.nq"
MISSING = f"W3C rdf-canon suite not found at {SUITE}: clone shared/ beside the checkout"

L3_TEXT = '_:x <urn:p> _:y .\n_:y <urn:p> _:x .\n_:x <urn:q> "k" .\n'
L3_VARIANT = '_:b <urn:q> "k" .\n_:a <urn:p> _:b .\n_:b <urn:p> _:a .\n_:a <urn:p> _:b .\n'


def _manifest() -> ox.Store | None:
    if not MANIFEST.is_file():
        return None
    store = ox.Store()
    store.load(path=str(MANIFEST), format=ox.RdfFormat.TURTLE, base_iri=MANIFEST.as_uri())
    return store


def _object(store: ox.Store, subject: ox.NamedNode, predicate: str) -> str | None:
    for quad in store.quads_for_pattern(subject, ox.NamedNode(predicate), None):
        assert isinstance(quad.object, ox.NamedNode | ox.Literal)
        return quad.object.value
    return None


def _entries(kind: str) -> list[tuple[str, Path, Path | None, str]]:
    """(name, input, expected output, hash algorithm) of every ``rdfc:<kind>`` entry."""
    store = _manifest()
    if store is None:
        return []
    entries = []
    for typed in store.quads_for_pattern(None, RDF_TYPE, ox.NamedNode(RDFC + kind)):
        subject = typed.subject
        assert isinstance(subject, ox.NamedNode)
        action, result = (
            _object(store, subject, MF + "action"),
            _object(store, subject, MF + "result"),
        )
        assert action is not None
        algorithm = {"SHA384": "SHA-384"}.get(_object(store, subject, RDFC + "hashAlgorithm") or "")
        entries.append(
            (
                subject.value.rpartition("#")[2],
                Path(url2pathname(urlparse(action).path)),
                None if result is None else Path(url2pathname(urlparse(result).path)),
                algorithm or "SHA-256",
            )
        )
    return sorted(entries)


EVALUATION = _entries("RDFC10EvalTest")
NEGATIVE = _entries("RDFC10NegativeEvalTest")


def _children() -> dict[int, tuple[str, bytes]]:
    """This process's children: pid -> (state, command line), read from /proc."""
    if not Path("/proc/self/stat").is_file():
        pytest.skip("no /proc here: cannot list child processes")
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            children[int(stat.parent.name)] = (fields[0], command)
    return children


def _workers() -> set[int]:
    return {pid for pid, (_, command) in _children().items() if b"canon_worker" in command}


def _assert_no_zombie() -> None:
    zombies = [pid for pid, (state, _) in _children().items() if state == "Z"]
    assert not zombies, f"unreaped child processes: {zombies}"


@pytest.fixture
def no_workers() -> None:
    close_workers()
    assert not _workers()


# The W3C rdf-canon suite -------------------------------------------------------------------------


@pytest.mark.skipif(not MANIFEST.is_file(), reason=MISSING)
def test_manifest_lists_64_evaluation_tests_and_the_poison() -> None:
    assert len(EVALUATION) == 64
    assert [name for name, *_ in NEGATIVE] == ["test074c"]
    assert all(path.is_file() and result and result.is_file() for _, path, result, _ in EVALUATION)


@pytest.mark.skipif(not MANIFEST.is_file(), reason=MISSING)
@pytest.mark.parametrize(
    ("path", "expected", "algorithm"),
    [
        pytest.param(path, result, algorithm, id=name)
        for name, path, result, algorithm in EVALUATION
    ],
)
def test_w3c_evaluation_output_matches_byte_for_byte(
    path: Path, expected: Path, algorithm: canon.HashAlgorithm
) -> None:
    output = canonical_nquads(parse_file(path), hash_algorithm=algorithm)

    assert output.encode("utf-8") == expected.read_bytes()


@pytest.mark.skipif(not MANIFEST.is_file(), reason=MISSING)
def test_w3c_canonical_hash_is_sha256_of_the_expected_file() -> None:
    _, path, expected, _ = next(e for e in EVALUATION if e[0] == "test020c")
    assert expected is not None

    result = canonical_hash(parse_file(path))

    assert result.hexdigest == hashlib.sha256(expected.read_bytes()).hexdigest()
    assert (result.algorithm, result.hash_algorithm, result.digest_algorithm) == (
        "RDFC-1.0",
        "SHA-256",
        "SHA-256",
    )
    assert result.quads == expected.read_bytes().count(b"\n")
    assert result.elapsed_ms > 0


@pytest.mark.skipif(not MANIFEST.is_file(), reason=MISSING)
@pytest.mark.parametrize(
    ("path", "expected"),
    [pytest.param(p, r, id=name) for name, p, r, algorithm in EVALUATION if algorithm == "SHA-256"],
)
def test_w3c_through_the_engine_hashes_what_the_graph_holds(path: Path, expected: Path) -> None:
    engine = KnowledgeEngine()
    delta = engine.delta(parse_file(path))
    engine.apply(delta)

    result = engine.canonical_hash()

    if delta.rewrites:  # test010c, test014c: typed literals the store keeps in another form
        assert result.hexdigest == canonical_hash(delta.additions).hexdigest
        assert result.hexdigest != hashlib.sha256(expected.read_bytes()).hexdigest()
    else:
        assert result.hexdigest == hashlib.sha256(expected.read_bytes()).hexdigest()


# L2: the poison clique stops within its budget -------------------------------------------------


@pytest.mark.skipif(not POISON.is_file(), reason=MISSING)
def test_poison_clique_is_refused_by_the_precheck_at_once(no_workers: None) -> None:
    t = time.monotonic()
    with pytest.raises(CanonicalizationBudgetExceeded, match=r"100 quads with 10 blank nodes.*2 s"):
        canonical_nquads(parse_file(POISON), budget=2.0)

    assert time.monotonic() - t < 1.0
    assert not _workers()


@pytest.mark.skipif(not POISON.is_file(), reason=MISSING)
def test_poison_clique_past_the_precheck_is_killed_at_its_budget(
    no_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(canon, "PERMUTATION_FLOOR_S", 0.0)  # let it reach the worker

    t = time.monotonic()
    with pytest.raises(
        CanonicalizationBudgetExceeded, match=r"wall-clock budget of 2 s.*killed"
    ) as caught:
        canonical_nquads(parse_file(POISON), budget=2.0)
    elapsed = time.monotonic() - t

    assert 2.0 <= elapsed < 5.0
    assert (caught.value.limit, caught.value.quads, caught.value.blank_nodes) == (
        "wall clock",
        100,
        10,
    )
    assert not _workers()
    _assert_no_zombie()


@pytest.mark.skipif(not POISON.is_file(), reason=MISSING)
def test_cpu_time_limit_stops_the_worker_when_the_wall_clock_does_not(no_workers: None) -> None:
    dataset = canon._dataset(parse_file(POISON))
    far = time.monotonic() + 30.0  # the parent waits; only the worker's own rlimit can end it

    t = time.monotonic()
    with pytest.raises(CanonicalizationBudgetExceeded, match="CPU time") as caught:
        canon._in_worker(dataset, "SHA-256", 1.0, canon.DEFAULT_MEMORY_LIMIT, far)

    assert caught.value.limit == "CPU time"
    assert time.monotonic() - t < 10.0
    assert not _workers()
    _assert_no_zombie()


def test_address_space_limit_stops_a_dataset_too_large_for_it(no_workers: None) -> None:
    p = ox.NamedNode("urn:p")
    quads = [ox.Quad(ox.BlankNode(f"n{i}"), p, ox.Literal(f"value {i}")) for i in range(30_000)]

    with pytest.raises(CanonicalizationBudgetExceeded, match="address-space limit of 48 MiB") as e:
        canonical_nquads(quads, memory_limit=48 * 2**20)

    assert e.value.limit == "memory"
    assert not _workers()
    _assert_no_zombie()


def test_engine_refuses_the_poison_and_stays_usable(engine: KnowledgeEngine) -> None:
    b = [ox.BlankNode() for _ in range(10)]
    p = ox.NamedNode("urn:p")
    engine.apply(engine.delta([ox.Quad(x, p, y) for x in b for y in b]))

    with pytest.raises(CanonicalizationBudgetExceeded, match="10 blank nodes"):
        engine.canonical_hash(budget_s=2.0)

    assert len(engine) == 100


# The worker pool ---------------------------------------------------------------------------------


def test_a_warm_worker_is_reused_across_calls(no_workers: None) -> None:
    quads = parse_text(L3_TEXT, "nquads")

    canonical_nquads(quads)
    first = _workers()
    canonical_nquads(quads)

    assert len(first) == 1
    assert _workers() == first


def test_a_killed_worker_is_replaced_by_the_next_call(no_workers: None) -> None:
    b = [ox.BlankNode() for _ in range(8)]  # passes the pre-check, takes seconds to finish
    clique = [ox.Quad(x, ox.NamedNode("urn:p"), y) for x in b for y in b if x != y]
    with pytest.raises(CanonicalizationBudgetExceeded, match=r"wall-clock budget of 0\.3 s"):
        canonical_nquads(clique, budget=0.3)

    assert canonical_nquads(parse_text(L3_TEXT, "nquads")).startswith("_:c14n0 <urn:p> _:c14n1")
    assert len(_workers()) == 1


def test_no_blank_nodes_need_no_worker(no_workers: None) -> None:
    text = '<urn:b> <urn:p> "z\\t\\u00e9" <urn:g> .\n<urn:a> <urn:p> <urn:o> .\n' * 2

    output = canonical_nquads(parse_text(text, "nquads"))

    assert output == '<urn:a> <urn:p> <urn:o> .\n<urn:b> <urn:p> "z\\té" <urn:g> .\n'
    assert not _workers()


def test_concurrent_calls_each_get_a_worker_and_the_right_answer(no_workers: None) -> None:
    expected = canonical_nquads(parse_text(L3_TEXT, "nquads"))
    results: list[str] = []

    def work() -> None:
        for _ in range(5):
            results.append(canonical_nquads(parse_text(L3_VARIANT, "nquads")))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [expected] * 20
    assert len(_workers()) <= KEEP_IDLE
    _assert_no_zombie()


def test_empty_dataset_is_the_empty_string() -> None:
    assert canonical_nquads([]) == ""
    assert canonical_hash([]).hexdigest == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), float("inf")])
def test_a_budget_that_is_not_a_positive_number_is_refused(budget: float) -> None:
    with pytest.raises(InputError, match="positive, finite number of seconds"):
        canonical_nquads([], budget=budget)


def test_items_that_are_not_quads_are_refused_naming_the_item() -> None:
    quad = ox.Quad(ox.NamedNode("urn:a"), ox.NamedNode("urn:b"), ox.NamedNode("urn:c"))

    with pytest.raises(InputError, match="item 1 is a str, not a pyoxigraph Quad"):
        canonical_nquads([quad, "x"])  # type: ignore[list-item]


# L3: the same graph gives the same hash; canonical output is a fixed point ----------------------


def test_l3_relabelled_shuffled_and_duplicated_give_the_same_hash() -> None:
    one = canonical_hash(parse_text(L3_TEXT, "nquads"))
    other = canonical_hash(parse_text(L3_VARIANT, "nquads"))

    assert one.hexdigest == other.hexdigest
    assert one.quads == other.quads == 3


def test_l3_canonicalizing_twice_changes_nothing() -> None:
    once = canonical_nquads(parse_text(L3_TEXT, "nquads"))

    assert canonical_nquads(parse_text(once, "nquads")) == once


def test_engine_hash_leaves_out_reserved_graphs_and_ignores_labels(engine: KnowledgeEngine) -> None:
    engine.apply(engine.delta(parse_text(L3_TEXT, "nquads")))
    reserved = ox.NamedNode("urn:kgc:x")
    engine.store.add_all([ox.Quad(reserved, reserved, ox.Literal("kept by kgc"), reserved)])
    other = KnowledgeEngine()
    other.apply(other.delta(parse_text(L3_VARIANT, "nquads")))

    result = engine.canonical_hash()

    assert result.hexdigest == other.canonical_hash().hexdigest
    assert result.hexdigest == canonical_hash(parse_text(L3_TEXT, "nquads")).hexdigest
    assert result.quads == 3


# Small random graphs with blank nodes: at most 5 blank nodes, so never near the budget.
_NODES = 5
Term = tuple[str, str]
Row = tuple[Term, str, Term, Term | None]

_blank = st.integers(0, _NODES - 1).map(lambda i: ("b", str(i)))
_subjects = _blank | st.sampled_from([("i", "urn:a"), ("i", "urn:b")])
_objects = _subjects | st.sampled_from([("l", "k"), ("l", "")])
_graph_names = st.sampled_from([None, ("i", "urn:g"), ("b", "0")])
_rows = st.tuples(_subjects, st.sampled_from(["urn:p", "urn:q"]), _objects, _graph_names)
_graphs = st.lists(_rows, min_size=1, max_size=10)
_property_settings = settings(max_examples=60, deadline=None, database=None)


def _term(term: Term, labels: list[str]) -> str:
    kind, value = term
    if kind == "b":
        return f"_:{labels[int(value)]}"
    return f"<{value}>" if kind == "i" else f'"{value}"'


def _lines(graph: list[Row], labels: list[str]) -> list[str]:
    lines = []
    for s, p, o, g in graph:
        graph_name = "" if g is None else f" {_term(g, labels)}"
        lines.append(f"{_term(s, labels)} <{p}> {_term(o, labels)}{graph_name} .\n")
    return lines


def _quads(lines: list[str]) -> list[ox.Quad]:
    return parse_text("".join(lines), "nquads")


@_property_settings
@given(_graphs, st.randoms(use_true_random=False))
def test_relabelling_shuffling_and_duplicating_never_change_the_hash(
    graph: list[Row], rnd: random.Random
) -> None:
    renamed = [f"r{rnd.randrange(10**6)}x{i}" for i in range(_NODES)]
    rnd.shuffle(renamed)
    lines = _lines(graph, renamed)
    rnd.shuffle(lines)
    lines.append(rnd.choice(lines))

    one = canonical_hash(_quads(_lines(graph, [f"n{i}" for i in range(_NODES)])))
    other = canonical_hash(_quads(lines))

    assert (one.hexdigest, one.quads) == (other.hexdigest, other.quads)


@_property_settings
@given(_graphs)
def test_canonical_output_is_a_fixed_point(graph: list[Row]) -> None:
    once = canonical_nquads(_quads(_lines(graph, [f"n{i}" for i in range(_NODES)])))

    assert canonical_nquads(_quads([once])) == once
    assert once == "".join(sorted(set(once.splitlines(keepends=True))))


# The pre-check's premises --------------------------------------------------------------------


_labels = st.text(st.characters(exclude_categories=["Cs"]), max_size=4)
_id_literals = st.one_of(
    st.builds(ox.Literal, _labels),
    st.builds(ox.Literal, _labels, language=st.sampled_from(["en", "de-CH"])),
    st.builds(ox.Literal, _labels, datatype=st.just(ox.NamedNode("urn:type"))),
)


@_property_settings
@given(
    st.lists(_id_literals, min_size=2, max_size=6, unique=True),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=8),
)
def test_precheck_first_degree_hashes_order_nodes_as_pyoxigraph_does(
    ids: list[ox.Literal], edges: list[tuple[int, int]]
) -> None:
    # Every node carries its own literal, so every first-degree hash is unique and RDFC-1.0
    # issues c14n0, c14n1... in the order of those hashes: the order the pre-check relies on.
    nodes = [ox.BlankNode(f"n{i}") for i in range(len(ids))]
    has_id, p = ox.NamedNode("urn:id"), ox.NamedNode("urn:p")
    quads = [ox.Quad(node, has_id, lit) for node, lit in zip(nodes, ids, strict=True)]
    quads += [ox.Quad(nodes[a % len(nodes)], p, nodes[b % len(nodes)]) for a, b in edges]
    dataset = canon._dataset(quads)
    hashes = {
        n: hashlib.sha256(canon._first_degree_input(n, qs).encode()).hexdigest()
        for n, qs in dataset.blank_nodes.items()
    }

    canonical = parse_text(canonical_nquads(quads), "nquads", rename_blank_nodes=False)

    issued = {q.object: q.subject for q in canonical if q.predicate == has_id}
    by_hash = sorted(nodes, key=hashes.__getitem__)
    assert [str(issued[lit]) for lit in ids] == [f"_:c14n{by_hash.index(n)}" for n in nodes]


def test_precheck_floor_of_the_poison_and_of_graphs_that_are_cheap() -> None:
    b = [ox.BlankNode() for _ in range(10)]
    p = ox.NamedNode("urn:p")
    clique = canon._dataset([ox.Quad(x, p, y) for x in b for y in b])
    chain = canon._dataset([ox.Quad(x, p, y) for x, y in itertools.pairwise(b)])

    assert canon._permutation_floor(clique, "SHA-256") == (10 * 2 * 362_880, 9)
    assert canon._permutation_floor(chain, "SHA-256") == (0, 0)


def test_a_pyoxigraph_store_is_hashed_without_kgc_graphs() -> None:
    store = ox.Store()
    store.extend(parse_text(L3_TEXT, "nquads"))
    reserved = ox.NamedNode("urn:kgc:x")
    store.add(ox.Quad(reserved, reserved, ox.Literal("kept by kgc"), reserved))

    assert (
        canonical_hash(store).hexdigest == canonical_hash(parse_text(L3_TEXT, "nquads")).hexdigest
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hash_algorithm": "MD5"}, "hash_algorithm must be one of SHA-256, SHA-384, got 'MD5'"),
        ({"memory_limit": 0}, "memory_limit must be a positive number of bytes, got 0"),
    ],
)
def test_bad_options_are_refused_naming_them(options: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        canonical_nquads([], **options)  # type: ignore[arg-type]
