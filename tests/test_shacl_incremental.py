"""``Shacl(scope="delta")`` agrees with full validation on random deltas to real Brick graphs.

Each example draws a delta from a real Brick model (``../shared/data/brick``: Rice Hall, Soda Hall,
and Soda Hall with a slice of the Brick class hierarchy in the data graph) and applies it through a
``TransactionManager`` holding two pre-commit hooks: the shapes under test, scoped to the delta, and
a guard that vetoes every transaction, so the store stays at the base graph and every example
starts from it. The SHACL hook's own verdict in the receipt is what is compared.

The oracle is pySHACL on the whole proposed graph, built without kgc (pyoxigraph's N-Triples parsed
by rdflib), with its violations restricted to the nodes the delta touches, as ``kgc/hooks/shacl.py``
defines them: the subjects of the effective delta's triples and their non-literal objects, except
the class named by an ``rdf:type`` statement. The hook must veto exactly when that restricted
report is not empty, count the same results, and name only (and, up to the five rows the detail
shows, all of) those focus nodes.

The shapes in ``tests/data/shacl/`` stay within the fragment the docstring calls exact: targets by
class, node, subject and object of a property; paths one hop forwards or backwards; counts,
``sh:class``, ``sh:datatype``, ``sh:nodeKind``, ``sh:in``, ``sh:pattern``, ``sh:hasValue``, value
ranges, ``sh:not``/``sh:or`` of value-local shapes and a qualified value shape.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
import rdflib
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyshacl import validate

from kgc import Delta, Hook, HookEvent, HookManager, OxigraphStore, Shacl, SparqlAsk, Veto
from kgc.hooks.conditions import ConditionResult
from kgc.transaction import TransactionManager

BRICK_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "brick"
SHAPES_DIR = Path(__file__).parent / "data" / "shacl"
HIERARCHY = SHAPES_DIR / "brick_hierarchy.ttl"

RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
BRICK = "https://brickschema.org/schema/Brick#"
XSD = "http://www.w3.org/2001/XMLSchema#"
PROPS = "urn:kgc-test:props#"
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")

GRAPHS = {
    "rice": [BRICK_DATA / "rice_brick.ttl"],
    "soda": [BRICK_DATA / "soda_brick.ttl"],
    "soda+hierarchy": [BRICK_DATA / "soda_brick.ttl", HIERARCHY],
}
# equipment.ttl targets superclasses, which only the graph with a class hierarchy has instances of.
CASES = [
    *((graph, shapes) for graph in GRAPHS for shapes in ("vav.ttl", "points.ttl", "locations.ttl")),
    *((graph, "literals.ttl") for graph in GRAPHS),
    ("soda+hierarchy", "equipment.ttl"),
]

# Predicates a literal (well or badly typed) is attached with: the data properties the shapes
# check, and object properties, where a literal breaks sh:nodeKind and sh:class.
LITERAL_PREDICATES = [
    ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label"),
    ox.NamedNode(PROPS + "installedYear"),
    ox.NamedNode(PROPS + "status"),
    ox.NamedNode(PROPS + "commissioned"),
    ox.NamedNode(BRICK + "hasPoint"),
    ox.NamedNode(BRICK + "hasTag"),
]
LITERALS = [
    ox.Literal("VAV 2-14"),
    ox.Literal(""),
    ox.Literal("VAV\t2"),
    ox.Literal("Zone", language="en"),
    ox.Literal("active"),
    ox.Literal("retired"),
    ox.Literal("Active"),
    ox.Literal("1999", datatype=ox.NamedNode(XSD + "integer")),
    ox.Literal("1850", datatype=ox.NamedNode(XSD + "integer")),
    ox.Literal("abc", datatype=ox.NamedNode(XSD + "integer")),
    ox.Literal("1999", datatype=ox.NamedNode(XSD + "gYear")),
    ox.Literal("3.5", datatype=ox.NamedNode(XSD + "decimal")),
    ox.Literal("true", datatype=ox.NamedNode(XSD + "boolean")),
    ox.Literal("yes", datatype=ox.NamedNode(XSD + "boolean")),
]
FRESH_NODES = 3  # new entities a delta may create, shared between its operations


# The base graphs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """A Brick graph, loaded once: in a store for kgc, in rdflib for the oracle, and indexed for
    drawing deltas from its own triples."""

    store: OxigraphStore
    rdf: rdflib.Graph
    triples: frozenset[ox.Triple]
    ordered: tuple[ox.Triple, ...]
    typings: tuple[ox.Triple, ...]
    links: tuple[ox.Triple, ...]
    nodes: tuple[Any, ...]
    classes: tuple[Any, ...]
    predicates: tuple[ox.NamedNode, ...]
    about: dict[Any, tuple[ox.Triple, ...]]


@functools.cache
def load_base(name: str) -> Base:
    triples: set[ox.Triple] = set()
    for path in GRAPHS[name]:
        if not path.is_file():
            pytest.skip(f"Brick graph not found at {path}: clone shared/ beside the checkout")
        parsed = ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)
        triples.update(ox.Triple(q.subject, q.predicate, q.object) for q in parsed)
    ordered = tuple(sorted(triples, key=str))  # a fixed order, so examples replay exactly
    store = OxigraphStore()
    store.bulk_add(ox.Quad(t.subject, t.predicate, t.object) for t in ordered)
    about: dict[Any, list[ox.Triple]] = defaultdict(list)
    for t in ordered:
        about[t.subject].append(t)
        if isinstance(t.object, ox.NamedNode):
            about[t.object].append(t)
    return Base(
        store=store,
        rdf=to_rdflib_graph(ordered),
        triples=frozenset(ordered),
        ordered=ordered,
        typings=tuple(t for t in ordered if t.predicate == RDF_TYPE),
        links=tuple(
            t for t in ordered if t.predicate != RDF_TYPE and isinstance(t.object, ox.NamedNode)
        ),
        nodes=tuple(sorted(about, key=str)),
        classes=tuple(sorted({t.object for t in ordered if t.predicate == RDF_TYPE}, key=str)),
        predicates=tuple(sorted({t.predicate for t in ordered} - {RDF_TYPE}, key=str)),
        about={node: tuple(ts) for node, ts in about.items()},
    )


def to_rdflib_graph(triples: Iterable[ox.Triple]) -> rdflib.Graph:
    text = ox.serialize(list(triples), format=ox.RdfFormat.N_TRIPLES) or b""
    return rdflib.Graph().parse(data=text.decode("utf-8"), format="nt")


# Drawing deltas from the graph itself ---------------------------------------------------------

Draw = Callable[[st.SearchStrategy[Any]], Any]
Change = tuple[list[ox.Triple], list[ox.Triple]]


def _node(draw: Draw, base: Base) -> ox.NamedNode:
    fresh = st.integers(0, FRESH_NODES - 1).map(lambda i: ox.NamedNode(f"urn:kgc-test:new:{i}"))
    node: ox.NamedNode = draw(st.one_of(st.sampled_from(base.nodes), fresh))
    return node


def remove_triple(draw: Draw, base: Base) -> Change:
    return [], [draw(st.sampled_from(base.ordered))]


def repoint_object(draw: Draw, base: Base) -> Change:
    old = draw(st.sampled_from(base.links))
    return [ox.Triple(old.subject, old.predicate, _node(draw, base))], [old]


def drop_type(draw: Draw, base: Base) -> Change:
    return [], [draw(st.sampled_from(base.typings))]


def add_type(draw: Draw, base: Base) -> Change:
    return [ox.Triple(_node(draw, base), RDF_TYPE, draw(st.sampled_from(base.classes)))], []


def add_link(draw: Draw, base: Base) -> Change:
    predicate = draw(st.sampled_from(base.predicates))
    return [ox.Triple(_node(draw, base), predicate, _node(draw, base))], []


def add_literal(draw: Draw, base: Base) -> Change:
    predicate = draw(st.sampled_from(LITERAL_PREDICATES))
    return [ox.Triple(_node(draw, base), predicate, draw(st.sampled_from(LITERALS)))], []


def new_entity(draw: Draw, base: Base) -> Change:
    """A new node of an existing class, linked to the graph by one property or none."""
    node = ox.NamedNode(f"urn:kgc-test:new:{draw(st.integers(0, FRESH_NODES - 1))}")
    added = [ox.Triple(node, RDF_TYPE, draw(st.sampled_from(base.classes)))]
    link = draw(st.sampled_from(["none", "out", "in"]))
    if link != "none":
        predicate, other = draw(st.sampled_from(base.predicates)), _node(draw, base)
        added.append(
            ox.Triple(node, predicate, other)
            if link == "out"
            else ox.Triple(other, predicate, node)
        )
    return added, []


def detach_node(draw: Draw, base: Base) -> Change:
    """Every triple a node appears in, gone: equipment taken out of the model."""
    return [], list(base.about[draw(st.sampled_from(base.nodes))])


OPERATIONS = [
    remove_triple,
    repoint_object,
    drop_type,
    add_type,
    add_link,
    add_literal,
    new_entity,
    detach_node,
]


@st.composite
def effective_deltas(draw: Draw, base: Base) -> Change:
    """One to four operations; what the transaction will see as its effective delta."""
    added: set[ox.Triple] = set()
    removed: set[ox.Triple] = set()
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(OPERATIONS))
        more_added, more_removed = operation(draw, base)
        added.update(more_added)
        removed.update(more_removed)
    both = added & removed  # removed by one operation, put back by another: no change
    added = {t for t in added - both if t not in base.triples}
    removed = {t for t in removed - both if t in base.triples}
    return sorted(added, key=str), sorted(removed, key=str)


# The oracle -------------------------------------------------------------------------------------


def read_predicates(shapes: rdflib.Graph) -> set[str]:
    """What validation can read: every IRI the shapes name as an object (a superset of their
    paths' predicates), ``rdf:type`` and ``rdfs:subClassOf``."""
    named = {str(o) for o in shapes.objects() if isinstance(o, rdflib.URIRef)}
    return named | {str(rdflib.RDF.type), str(rdflib.RDFS.subClassOf)}


def touched(
    base: Base, shapes: rdflib.Graph, added: list[ox.Triple], removed: list[ox.Triple]
) -> set[rdflib.term.Node]:
    """The nodes the delta can affect (the definition in ``kgc/hooks/shacl.py``), as rdflib
    terms: subjects and non-literal objects (classes named by ``rdf:type`` excepted) of changed
    triples whose predicate validation reads, and, when a shape checks ``sh:class``, the nodes
    that point at a node whose type changed."""
    read = read_predicates(shapes)
    changed = [t for t in (*added, *removed) if t.predicate.value in read]
    nodes: set[Any] = set()
    for t in changed:
        nodes.add(t.subject)
        if t.predicate != RDF_TYPE and not isinstance(t.object, ox.Literal):
            nodes.add(t.object)
    if any(True for _ in shapes.objects(None, SH["class"])):
        after = (base.triples - set(removed)) | set(added)
        retyped = {t.subject for t in changed if t.predicate == RDF_TYPE}
        nodes |= {t.subject for t in after if t.object in retyped and t.predicate.value in read}
    return {rdflib.URIRef(n.value) for n in nodes if isinstance(n, ox.NamedNode)}


def full_violations(
    base: Base, shapes: rdflib.Graph, added: list[ox.Triple], removed: list[ox.Triple]
) -> list[rdflib.term.Node]:
    """The focus node of every violation pySHACL reports on the whole proposed graph."""
    plus, minus = list(to_rdflib_graph(added)), list(to_rdflib_graph(removed))
    graph = base.rdf
    for triple in minus:
        graph.remove(triple)
    graph.addN((*triple, graph) for triple in plus)
    try:
        _, report, _ = validate(graph, shacl_graph=shapes, inference="none")
    finally:  # the effective delta adds only absent triples and removes only present ones
        for triple in plus:
            graph.remove(triple)
        graph.addN((*triple, graph) for triple in minus)
    return [
        report.value(result, SH.focusNode)
        for result in report.objects(None, SH.result)
        if report.value(result, SH.resultSeverity) == SH.Violation
    ]


def focus_nodes_in(detail: str) -> list[str]:
    """The focus node that starts each row of a ``shacl`` condition's detail."""
    rows = re.split(r"; (?=<)", re.sub(r" \(and \d+ more\)$", "", detail))
    return [row.split(" ", 1)[0] for row in rows]


# Governed evaluation ------------------------------------------------------------------------------


@dataclass
class Governed:
    tm: TransactionManager
    shapes: rdflib.Graph
    seen: list[ConditionResult]


@functools.cache
def governed(graph: str, shapes_file: str) -> Governed:
    base = load_base(graph)
    text = (SHAPES_DIR / shapes_file).read_text("utf-8")
    seen: list[ConditionResult] = []

    def record(event: HookEvent) -> Veto:
        seen.append(event.result)
        return Veto(event.result.detail)

    hooks = HookManager()
    hooks.register(Hook("shapes", Shacl(text, source=shapes_file), run=record, timeout_ms=60_000.0))
    hooks.register(Hook("keep-base-graph", SparqlAsk("ASK {}"), message="examples never commit"))
    tm = TransactionManager(base.store, hooks, timeout_ms=60_000.0)
    return Governed(tm, rdflib.Graph().parse(data=text, format="turtle"), seen)


def shacl_verdict(gov: Governed, added: list[ox.Triple], removed: list[ox.Triple]) -> Any:
    gov.seen.clear()
    receipt = gov.tm.apply(Delta(added, removed), actor="property-test")
    assert not receipt.committed
    found = [v for v in receipt.hooks if v.hook == "shapes"]
    # The planner skips the hook when no change touches what the shapes read: a quiet pass.
    return found[0] if found else None


@pytest.mark.parametrize(("graph", "shapes_file"), CASES)
@settings(
    max_examples=12,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_delta_scope_fires_exactly_when_full_validation_flags_a_touched_node(
    graph: str, shapes_file: str, data: st.DataObject
) -> None:
    base = load_base(graph)
    gov = governed(graph, shapes_file)
    added, removed = data.draw(effective_deltas(base), label="effective delta (added, removed)")
    if not (added or removed):
        return  # nothing to govern: no hook runs

    scope = touched(base, gov.shapes, added, removed)
    expected = [n for n in full_violations(base, gov.shapes, added, removed) if n in scope]
    verdict = shacl_verdict(gov, added, removed)

    event("full validation flags a touched node" if expected else "no touched node flagged")
    assert (verdict.verdict if verdict else "pass") == ("veto" if expected else "pass"), (
        verdict,
        expected,
    )
    if expected:
        (result,) = gov.seen
        assert result.rows == len(expected)
        shown = focus_nodes_in(result.detail)
        assert len(shown) == min(len(expected), 5)
        assert set(shown) <= {n.n3() for n in expected}
        if len(expected) <= 5:
            assert sorted(shown) == sorted(n.n3() for n in expected)
    assert len(base.store) == len(base.triples)
