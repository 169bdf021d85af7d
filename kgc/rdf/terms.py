"""Terms: conversion into pyoxigraph terms, canonical N-Quads lines, literal normalization.

pyoxigraph's store keeps typed literals of XSD value types by value, not as written:
``"+1"^^xsd:int`` comes back as ``"1"^^xsd:integer`` and ``"1"^^xsd:boolean`` merges with
``"true"^^xsd:boolean``. kgc does not pretend otherwise. At intake every literal is rewritten to
the exact term the store will hold (found by a round trip through a scratch store, so kgc and the
store never disagree), and the receipt lists each rewrite. Digests are computed over the stored
form, so a receipt always matches what the graph then holds. With the literal policy ``refuse``
such literals are refused instead.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any
from typing import Literal as TypingLiteral

import pyoxigraph as ox

from kgc.errors import NonCanonicalLiteral, ReservedGraphError, TermError

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
RESERVED_GRAPH_PREFIX = "urn:kgc:"

Subject = ox.NamedNode | ox.BlankNode
Object = ox.NamedNode | ox.BlankNode | ox.Literal
Graph = ox.NamedNode | ox.BlankNode | ox.DefaultGraph
LiteralPolicy = TypingLiteral["normalize", "refuse"]

_scratch = threading.local()
_PROBE_S = ox.NamedNode("urn:kgc:probe")


def quad_line(quad: ox.Quad) -> str:
    """The canonical N-Quads line of ``quad``, without the newline."""
    graph, obj = quad.graph_name, quad.object
    text = triple_term_text(obj) if isinstance(obj, ox.Triple) else obj
    if isinstance(graph, ox.DefaultGraph):
        return f"{quad.subject} {quad.predicate} {text} ."
    return f"{quad.subject} {quad.predicate} {text} {graph} ."


def triple_term_text(term: object) -> str:
    """An RDF 1.2 triple term in N-Quads syntax, ``<<( s p o )>>`` (``str()`` drops the
    brackets, which made such lines unparseable)."""
    if not isinstance(term, ox.Triple):
        return str(term)
    return (
        f"<<( {triple_term_text(term.subject)} {term.predicate} {triple_term_text(term.object)} )>>"
    )


def _scratch_store() -> ox.Store:
    store: ox.Store | None = getattr(_scratch, "store", None)
    if store is None:
        store = ox.Store()
        _scratch.store = store
    return store


@lru_cache(maxsize=65536)
def _stored_form(value: str, datatype: str) -> ox.Literal:
    store = _scratch_store()
    probe = ox.Quad(_PROBE_S, _PROBE_S, ox.Literal(value, datatype=ox.NamedNode(datatype)))
    store.add(probe)
    try:
        (stored,) = list(store)
    finally:
        store.clear()
    assert isinstance(stored.object, ox.Literal)
    return stored.object


def stored_literal(literal: ox.Literal) -> ox.Literal:
    """The literal exactly as pyoxigraph's store will hold it."""
    datatype = literal.datatype.value
    if literal.language is not None or datatype == XSD_STRING or not datatype.startswith(XSD):
        return literal
    return _stored_form(literal.value, datatype)


def normalize_quad(
    quad: ox.Quad, policy: LiteralPolicy, rewrites: list[tuple[str, str]]
) -> ox.Quad:
    """Return ``quad`` as the store will hold it, appending any literal rewrite to ``rewrites``."""
    obj = quad.object
    if not isinstance(obj, ox.Literal):
        return quad
    stored = stored_literal(obj)
    if stored == obj:
        return quad
    if policy == "refuse":
        raise NonCanonicalLiteral(
            f"literal {obj} would be stored as {stored}; literal policy 'refuse' does not "
            f"allow that (quad: {quad_line(quad)})"
        )
    rewrites.append((str(obj), str(stored)))
    return ox.Quad(quad.subject, quad.predicate, stored, quad.graph_name)


def check_not_reserved(quad: ox.Quad) -> None:
    graph = quad.graph_name
    if isinstance(graph, ox.NamedNode) and graph.value.startswith(RESERVED_GRAPH_PREFIX):
        raise ReservedGraphError(
            f"graph <{graph.value}> is reserved for kgc (prefix {RESERVED_GRAPH_PREFIX}); "
            f"quad: {quad_line(quad)}"
        )


def from_rdflib(term: Any, where: str) -> Any:
    """Convert one rdflib term (URIRef, BNode, Literal, graph identifier) to pyoxigraph."""
    import rdflib

    try:
        if term is None or term == rdflib.graph.DATASET_DEFAULT_GRAPH_ID:
            return ox.DefaultGraph()
        if isinstance(term, rdflib.URIRef):
            return ox.NamedNode(str(term))
        if isinstance(term, rdflib.BNode):
            return ox.BlankNode(str(term))
        if isinstance(term, rdflib.Literal):
            if term.language:
                return ox.Literal(str(term), language=term.language)
            if term.datatype is not None:
                return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
            return ox.Literal(str(term))
        if isinstance(term, rdflib.Graph):
            return from_rdflib(term.identifier, where)
    except (ValueError, UnicodeError) as exc:
        raise TermError(f"{where}: invalid RDF term {term!r}: {exc}") from exc
    raise TermError(f"{where}: cannot convert {type(term).__name__} {term!r} to an RDF term")
