"""What the change stream needs to know about the loaded graph, found by SPARQL.

The survey reads the graph through ``engine.query`` (so under the engine's read lock) with the
queries in ``data/queries``. It keeps only what the stream may touch without tripping over
problems the graph already had: equipment with a Brick type, points whose point-holding
neighbours all have one, feed edges between Brick-typed entities.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox

from kgc.demo.assets import query_text
from kgc.engine import KnowledgeEngine

Quad = ox.Quad
DEFAULT_NAMESPACE = "https://example.org/kgc-demo#"

# An IRI that pyoxigraph parsed leniently (a bare "%", say) cannot be written into a query.
_NOT_IN_SPARQL = re.compile(r'%(?![0-9A-Fa-f]{2})|[\s<>"{}|^`\\]')


@dataclass
class Survey:
    namespace: str
    equipment: list[ox.NamedNode]
    air_handlers: list[ox.NamedNode]
    points: dict[ox.NamedNode, list[ox.NamedNode]]
    labels: dict[ox.NamedNode, list[ox.Literal]]
    feeds: list[tuple[ox.NamedNode, ox.NamedNode]]
    triples: dict[ox.NamedNode, set[Quad]] = field(default_factory=dict)


def survey(engine: KnowledgeEngine) -> Survey:
    """Survey the graph held by ``engine``; point triples are read later, by ``triples_around``."""
    equipment = [row["equipment"] for row in _rows(engine, "equipment")]
    points: dict[ox.NamedNode, list[ox.NamedNode]] = {}
    for row in _rows(engine, "points"):
        if writable(row["point"]):
            points.setdefault(row["point"], []).append(row["class"])
    labels: dict[ox.NamedNode, list[ox.Literal]] = {}
    for row in _rows(engine, "labels"):
        labels.setdefault(row["entity"], []).append(row["label"])
    return Survey(
        namespace=namespace_of(equipment),
        equipment=equipment,
        air_handlers=[row["ahu"] for row in _rows(engine, "air-handlers")],
        points=points,
        labels=labels,
        feeds=[(row["upstream"], row["downstream"]) for row in _rows(engine, "feeds")],
    )


def triples_around(
    engine: KnowledgeEngine, nodes: Iterable[ox.NamedNode]
) -> dict[ox.NamedNode, set[Quad]]:
    """Every default-graph triple that mentions each node, as subject or as object."""
    wanted = sorted(nodes, key=str)
    out: dict[ox.NamedNode, set[Quad]] = {node: set() for node in wanted}
    if not wanted:
        return out
    text = query_text("triples-around").replace("{{NODES}}", " ".join(map(str, wanted)))
    for row in _rows_of(engine, text):
        quad = Quad(row["s"], row["p"], row["o"], ox.DefaultGraph())
        for node in (row["s"], row["o"]):
            if node in out:
                out[node].add(quad)
    return out


def writable(node: ox.NamedNode) -> bool:
    """Whether ``node`` can be written into a SPARQL query."""
    return _NOT_IN_SPARQL.search(node.value) is None


def namespace_of(nodes: list[ox.NamedNode]) -> str:
    """The most common namespace (up to the first ``#``, else the last ``/``) among ``nodes``."""
    spaces = Counter(_namespace(n.value) for n in nodes if writable(n))
    if not spaces:
        return DEFAULT_NAMESPACE
    return min(spaces, key=lambda ns: (-spaces[ns], ns))


def _namespace(iri: str) -> str:
    if "#" in iri:
        return iri[: iri.index("#") + 1]
    return iri[: iri.rindex("/") + 1] if "/" in iri else iri


def _rows(engine: KnowledgeEngine, name: str) -> list[dict[str, Any]]:
    return _rows_of(engine, query_text(name))


def _rows_of(engine: KnowledgeEngine, text: str) -> list[dict[str, Any]]:
    result = engine.query(text)
    assert isinstance(result, list), "survey queries are SELECT queries"
    return [row for row in result if isinstance(row, dict)]
