"""The change stream's picture of the graph, kept in step with the changes that commit.

The stream never reads the graph after its survey: it draws each change from this picture and
updates the picture when a change commits. Points it may touch are *tracked* with every triple
that mentions them, so that retiring one removes exactly what the graph holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyoxigraph as ox

from kgc.demo.survey import Survey, writable
from kgc.demo.vocab import RDFS_LABEL

DEFAULT = ox.DefaultGraph()


def triple(subject: ox.NamedNode, predicate: ox.NamedNode, obj: object) -> ox.Quad:
    return ox.Quad(subject, predicate, obj, DEFAULT)  # type: ignore[arg-type]


@dataclass
class World:
    namespace: str
    equipment: list[ox.NamedNode]
    air_handlers: list[ox.NamedNode]
    feeds: list[tuple[ox.NamedNode, ox.NamedNode]]
    points: dict[ox.NamedNode, set[ox.Quad]] = field(default_factory=dict)
    holders: dict[ox.Literal, ox.NamedNode] = field(default_factory=dict)
    labelled: set[ox.NamedNode] = field(default_factory=set)
    renamable: dict[ox.NamedNode, ox.Literal] = field(default_factory=dict)
    serial: int = 0

    @classmethod
    def from_survey(cls, found: Survey, tracked: dict[ox.NamedNode, set[ox.Quad]]) -> World:
        world = cls(found.namespace, list(found.equipment), list(found.air_handlers), found.feeds)
        for point, quads in tracked.items():
            if all(_writable_terms(q) for q in quads):
                world.points[point] = set(quads)
        touchable = {*world.points, *world.equipment}
        for entity, labels in found.labels.items():
            world.labelled.add(entity)
            world.holders.update(dict.fromkeys(labels, entity))
            if entity in touchable and len(labels) == 1:
                world.renamable[entity] = labels[0]
        return world

    # Names ------------------------------------------------------------------------------------

    def fresh(self, tag: str) -> tuple[ox.NamedNode, ox.Literal]:
        """A new IRI in the graph's namespace (``kgc_demo_...``) and a new identifier."""
        label = self.fresh_label(tag)
        return ox.NamedNode(f"{self.namespace}kgc_demo_{tag.lower()}_{self.serial:05d}"), label

    def fresh_label(self, tag: str) -> ox.Literal:
        """An identifier no entity holds (``KGC-<tag>-<serial>``)."""
        while True:
            self.serial += 1
            label = ox.Literal(f"KGC-{tag}-{self.serial:05d}")
            if label not in self.holders:
                return label

    # Updates after a commit -------------------------------------------------------------------

    def add_point(self, point: ox.NamedNode, quads: list[ox.Quad]) -> None:
        self.points[point] = set(quads)
        for quad in quads:
            if quad.subject == point and quad.predicate == RDFS_LABEL:
                self._name(point, quad.object)

    def add_equipment(self, equipment: ox.NamedNode, label: ox.Literal) -> None:
        self.equipment.append(equipment)
        self._name(equipment, label)

    def add_feed(self, upstream: ox.NamedNode, downstream: ox.NamedNode) -> None:
        self.feeds.append((upstream, downstream))

    def retire_point(self, point: ox.NamedNode) -> None:
        del self.points[point]
        label = self.renamable.pop(point, None)
        if label is not None:
            self.holders.pop(label, None)
        self.labelled.discard(point)

    def relabel(self, entity: ox.NamedNode, old: ox.Literal | None, new: ox.Literal) -> None:
        if old is not None:
            self.holders.pop(old, None)
            self._replace(entity, triple(entity, RDFS_LABEL, old), None)
        self._replace(entity, None, triple(entity, RDFS_LABEL, new))
        self._name(entity, new)

    def set_value(self, point: ox.NamedNode, old: list[ox.Quad], new: ox.Quad) -> None:
        for quad in old:
            self._replace(point, quad, None)
        self._replace(point, None, new)

    def _name(self, entity: ox.NamedNode, label: object) -> None:
        assert isinstance(label, ox.Literal)
        self.holders[label] = entity
        self.renamable[entity] = label
        self.labelled.add(entity)

    def _replace(self, entity: ox.NamedNode, old: ox.Quad | None, new: ox.Quad | None) -> None:
        quads = self.points.get(entity)
        if quads is None:
            return
        if old is not None:
            quads.discard(old)
        if new is not None:
            quads.add(new)

    # Reading ----------------------------------------------------------------------------------

    def unlabelled(self) -> list[ox.NamedNode]:
        """Tracked points and equipment without any identifier."""
        return [n for n in (*self.points, *self.equipment) if n not in self.labelled]


def _writable_terms(quad: ox.Quad) -> bool:
    return all(
        writable(term) for term in (quad.subject, quad.object) if isinstance(term, ox.NamedNode)
    )
