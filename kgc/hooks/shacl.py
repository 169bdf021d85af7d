"""The ``shacl`` condition: pySHACL shapes, validated on the nodes a delta touches.

``scope="delta"`` (the default):

1. The *touched* nodes are the subjects and non-literal objects of changed triples whose predicate
   the shapes read (their footprint: paths, ``rdf:type``, ``rdfs:subClassOf``, property targets and
   comparisons), except the class named by an ``rdf:type`` statement (expanding it would read every
   instance of the class: ``owl:NamedIndividual`` alone has 9,633 in the Gates Hillman Center
   graph); and, when a shape uses ``sh:class``, the nodes pointing at a node whose type changed. A
   change no shape reads cannot alter any node's validation, so it judges nothing.
2. The data graph holds each touched node's outgoing triples, its incoming triples when the node
   can be a shape's target (a subject of a change; a node whose type, or a superclass of it, a
   shape targets; a ``sh:targetNode``; any node when shapes use ``sh:targetSubjectsOf``/
   ``sh:targetObjectsOf``), the ``rdf:type`` of every neighbour, and the ``rdfs:subClassOf``
   statements above every type it holds: SHACL's ``sh:targetClass`` and ``sh:class`` follow them
   in the data graph, so a Brick model loaded with its class hierarchy makes every
   ``brick:VAV`` a ``brick:Equipment``.
3. Only results about touched nodes count, so a neighbour that came in with its type alone is never
   judged on a partial description. (pySHACL's own ``focus_nodes`` option is not used: with it,
   nested shapes such as ``sh:not [ sh:pattern ... ]`` are mis-evaluated in pySHACL 0.40.1 and
   valid data is reported as violating.)

That is exact for shapes whose paths stay within one hop of a focus node (direct and inverse
properties, ``sh:class`` and ``sh:datatype`` on values, counts, and value-local constraints such as
``sh:in``, ``sh:pattern``, ``sh:hasValue`` and qualified value shapes that test a value's class);
``tests/test_shacl_incremental.py`` checks it against full validation on random deltas to real
Brick graphs. Deeper paths and shapes about nodes the delta does not touch need ``scope="graph"``,
which validates the whole default graph at O(graph) cost. No RDFS inference is applied beyond the
``rdfs:subClassOf`` walk SHACL itself defines.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pyoxigraph as ox

from kgc.errors import HookDefinitionError
from kgc.hooks.conditions import RDF_TYPE, ConditionResult, EvalContext
from kgc.hooks.footprint import Anchor, Footprint
from kgc.store.base import Store

SH = "http://www.w3.org/ns/shacl#"
_DEFAULT = ox.DefaultGraph()
_DETAIL_ROWS = 5
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_SUBCLASS_OF = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#subClassOf")
_CLASS_TYPES = {
    "http://www.w3.org/2000/01/rdf-schema#Class",
    "http://www.w3.org/2002/07/owl#Class",
}


@dataclass(frozen=True)
class _Targets:
    """What the shapes target, to decide whose incoming triples validation needs."""

    classes: frozenset[str]
    nodes: frozenset[str]
    by_property: bool
    # Some shape checks a value's class (sh:class): a node's type is then data of its referrers.
    value_classes: bool = False


@dataclass(frozen=True)
class Shacl:
    """Fires when the shapes report a violation."""

    text: str
    source: str = "<inline>"
    scope: Literal["delta", "graph"] = "delta"
    kind: str = field(default="shacl", init=False)
    _shapes: Any = field(default=None, init=False, repr=False, compare=False)
    _targets: _Targets = field(
        default=_Targets(frozenset(), frozenset(), False), init=False, repr=False, compare=False
    )
    _footprint: Footprint | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        import rdflib

        if self.scope not in ("delta", "graph"):
            raise HookDefinitionError(
                f"{self.source}: scope must be 'delta' or 'graph', got {self.scope!r}"
            )
        shapes = rdflib.Graph()
        try:
            shapes.parse(data=self.text, format="turtle")
        except Exception as exc:  # rdflib raises many unrelated types for bad Turtle
            raise HookDefinitionError(f"{self.source}: shapes graph does not parse: {exc}") from exc
        object.__setattr__(self, "_shapes", _plain_strings(shapes))
        object.__setattr__(self, "_targets", _targets_of(shapes))
        object.__setattr__(self, "_footprint", _shapes_footprint(shapes))
        self._check_well_formed()

    def _check_well_formed(self) -> None:
        """Refuse shapes pySHACL cannot load (it checks them on every validation, data or not).

        Without this an ill-formed shapes graph was accepted and failed on each transaction, and
        the planner, which skips a delta-scoped hook no change touches, hid that failure.
        """
        import rdflib
        from pyshacl import validate

        try:
            validate(rdflib.Graph(), shacl_graph=self._shapes, inference="none")
        except Exception as exc:  # pySHACL raises its own ShapeLoadError, ReportableRuntimeError...
            raise HookDefinitionError(
                f"{self.source}: shapes graph is not valid SHACL: {exc}"
            ) from exc

    def footprint(self) -> Footprint | None:
        """The predicates the shapes read (paths, property targets, comparisons), any
        ``rdf:type`` and ``rdfs:subClassOf``; ``None`` with SPARQL-based parts or ``sh:closed``."""
        return self._footprint

    def anchor(self) -> Anchor | None:
        """In delta scope only quads touching the footprint make touched nodes: no such quad,
        nothing judged, no violation."""
        if self.scope != "delta" or self._footprint is None:
            return None
        return frozenset(("any", p, None) for p in self._footprint.predicates)

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the shapes; with ``scope="graph"``, of the shapes and the scope (the two
        scopes answer different questions, so they never share a cached result)."""
        text = self.text if self.scope == "delta" else f"{self.text}\n#kgc-scope: graph"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def evaluate(self, ctx: EvalContext) -> ConditionResult:
        from pyshacl import validate

        view = _View(ctx.store, ctx.graphs or (_DEFAULT,))
        if self.scope == "graph":
            quads: Iterable[ox.Quad] = view.quads(None, None, None)
            focus: set[Any] | None = None
        else:
            touched = _touched(ctx, self._footprint, self._targets, view)
            quads = _neighbourhood(view, touched, self._targets)
            focus = {_to_rdflib(node) for node in touched[0] | touched[1]}
        conforms, report, _ = validate(
            _rdflib_graph(quads), shacl_graph=self._shapes, inference="none", allow_warnings=True
        )
        if conforms:
            return ConditionResult(False)
        return _violations(report, focus)


def _targets_of(shapes: Any) -> _Targets:
    import rdflib

    def objects(predicate: str) -> set[str]:
        return {str(o) for o in shapes.objects(None, rdflib.URIRef(SH + predicate))}

    implicit = {
        str(s)
        for kind in _CLASS_TYPES
        for s in shapes.subjects(rdflib.RDF.type, rdflib.URIRef(kind))
    }
    by_property = bool(objects("targetSubjectsOf") or objects("targetObjectsOf"))
    return _Targets(
        frozenset(objects("targetClass") | implicit),
        frozenset(objects("targetNode")),
        by_property,
        value_classes=bool(objects("class")),
    )


@dataclass(frozen=True)
class _View:
    """The data graph: the default graph, or a channel's graphs."""

    store: Store
    graphs: tuple[ox.NamedNode | ox.DefaultGraph, ...]

    def quads(self, s: Any, p: Any, o: Any) -> Iterator[ox.Quad]:
        for graph in self.graphs:
            yield from self.store.quads_for_pattern(s, p, o, graph)


def _touched(
    ctx: EvalContext, footprint: Footprint | None, targets: _Targets, view: _View
) -> tuple[set[Any], set[Any]]:
    """Nodes whose validation the delta can change: the subjects and non-literal objects of
    changed quads that touch the shapes' footprint, and, when shapes use ``sh:class``, the
    nodes that point at a node whose type changed (its class is a value they check)."""
    changed = [
        q for q in (*ctx.additions, *ctx.removals) if footprint is None or footprint.touched_by(q)
    ]
    subjects = {q.subject for q in changed}
    objects = {
        q.object
        for q in changed
        if q.predicate != RDF_TYPE and not isinstance(q.object, ox.Literal)
    }
    if targets.value_classes:
        for q in changed:
            if q.predicate == RDF_TYPE:
                subjects.update(
                    r.subject
                    for r in view.quads(None, None, q.subject)
                    if footprint is None or footprint.touched_by(r)
                )
    return subjects, objects - subjects


def _shapes_footprint(shapes: Any) -> Footprint | None:
    import rdflib

    sh = rdflib.Namespace(SH)
    unbounded = (sh.closed, sh.sparql, sh.target, sh.select, sh.ask)
    if any(True for p in unbounded for _ in shapes.triples((None, p, None))):
        return None
    predicates = {RDF_TYPE.value, _SUBCLASS_OF.value}
    for path in shapes.objects(None, sh.path):
        predicates |= _path_iris(shapes, path)
    compared = ("targetSubjectsOf", "targetObjectsOf", "equals", "disjoint", "lessThan")
    for name in (*compared, "lessThanOrEquals"):
        predicates |= {
            str(o) for o in shapes.objects(None, sh[name]) if isinstance(o, rdflib.URIRef)
        }
    return Footprint(frozenset(predicates))


def _path_iris(shapes: Any, node: Any) -> set[str]:
    """Every IRI in a property path (sequence, alternative, inverse, repetition): over-broad."""
    import rdflib

    found: set[str] = set()
    todo, seen = [node], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if isinstance(current, rdflib.URIRef):
            if current != rdflib.RDF.nil:
                found.add(str(current))
            continue
        for _, _, value in shapes.triples((current, None, None)):
            todo.append(value)
    return found


def _neighbourhood(
    view: _View, touched: tuple[set[Any], set[Any]], targets: _Targets
) -> list[ox.Quad]:
    subjects, objects = touched
    out: dict[ox.Quad, None] = {}
    for node in subjects | objects:
        for quad in view.quads(node, None, None):
            out[quad] = None
            _add_types(view, quad.object, out)
    for node in subjects | {o for o in objects if _may_be_target(view, o, targets)}:
        for quad in view.quads(None, None, node):
            out[quad] = None
            _add_types(view, quad.subject, out)
    types = {q.object for q in out if q.predicate == RDF_TYPE}
    out.update(dict.fromkeys(_superclass_quads(view, types)))
    return list(out)


def _may_be_target(view: _View, node: Any, targets: _Targets) -> bool:
    if targets.by_property or (isinstance(node, ox.NamedNode) and node.value in targets.nodes):
        return True
    types = {q.object for q in view.quads(node, RDF_TYPE, None)}
    classes = types | {q.object for q in _superclass_quads(view, types)}
    return any(isinstance(c, ox.NamedNode) and c.value in targets.classes for c in classes)


def _superclass_quads(view: _View, classes: Iterable[Any]) -> list[ox.Quad]:
    """The ``rdfs:subClassOf`` statements on the way up from ``classes`` (cycles are allowed)."""
    seen: set[Any] = set()
    todo = [c for c in classes if not isinstance(c, ox.Literal)]
    found: list[ox.Quad] = []
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for quad in view.quads(cls, _SUBCLASS_OF, None):
            found.append(quad)
            if not isinstance(quad.object, ox.Literal):
                todo.append(quad.object)
    return found


def _add_types(view: _View, node: Any, out: dict[ox.Quad, None]) -> None:
    if not isinstance(node, ox.Literal):
        out.update(dict.fromkeys(view.quads(node, RDF_TYPE, None)))


def _to_rdflib(term: Any) -> Any:
    import rdflib

    if isinstance(term, ox.NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return rdflib.BNode(term.value)
    if term.language:
        return rdflib.Literal(term.value, lang=term.language)
    if term.datatype.value == _XSD_STRING:
        return rdflib.Literal(term.value)
    return rdflib.Literal(term.value, datatype=rdflib.URIRef(term.datatype.value))


def _plain_strings(graph: Any) -> Any:
    """``graph`` with every ``"..."^^xsd:string`` written as the plain literal ``"..."``.

    RDF 1.1 makes them one term, but rdflib compares them as two. pyoxigraph gives every simple
    literal the datatype ``xsd:string``, so without this a stored ``"male"`` failed a shape's
    ``sh:hasValue "male"`` (and ``sh:in``): the data and the shapes are both written plain.
    """
    import rdflib

    typed = [t for t in graph if any(_is_typed_string(term) for term in t)]
    for triple in typed:
        graph.remove(triple)
        graph.add(
            tuple(rdflib.Literal(str(term)) if _is_typed_string(term) else term for term in triple)
        )
    return graph


def _is_typed_string(term: Any) -> bool:
    import rdflib

    return isinstance(term, rdflib.Literal) and str(term.datatype) == _XSD_STRING


def _rdflib_graph(quads: Iterable[ox.Quad]) -> Any:
    import rdflib

    graph = rdflib.Graph()
    for q in quads:
        graph.add((_to_rdflib(q.subject), _to_rdflib(q.predicate), _to_rdflib(q.object)))
    return graph


def _violations(report: Any, focus: set[Any] | None) -> ConditionResult:
    from rdflib.namespace import SH as SH_NS

    # The report's own sh:result rows: a nested shape's results (sh:detail) are typed
    # sh:ValidationResult too, and counting them counted one failure several times.
    results = [
        r
        for r in report.objects(None, SH_NS.result)
        if focus is None or report.value(r, SH_NS.focusNode) in focus
    ]
    if not results:
        return ConditionResult(False)
    lines = []
    for result in results[:_DETAIL_ROWS]:
        node: Any = report.value(result, SH_NS.focusNode)
        message: Any = report.value(result, SH_NS.resultMessage)
        path: Any = report.value(result, SH_NS.resultPath)
        lines.append(f"{node.n3() if node else '?'} {path.n3() if path else ''}: {message}")
    more = f" (and {len(results) - _DETAIL_ROWS} more)" if len(results) > _DETAIL_ROWS else ""
    return ConditionResult(True, "; ".join(lines) + more, len(results))
