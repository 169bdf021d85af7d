"""The kinds of change the demo stream makes, valid ones and ones the policy must veto.

Each builder draws its targets from the ``World`` with the stream's random generator and returns
an ``Edit`` (or ``None`` when the world offers nothing to draw from). A valid edit carries an
``on_commit`` that brings the world up to date; an invalid one names the hook that must veto it
in ``EDIT_KINDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

import pyoxigraph as ox

from kgc.demo.vocab import (
    FEEDS,
    HAS_POINT,
    IS_POINT_OF,
    LINKS,
    OWL_NAMED_INDIVIDUAL,
    POINT_KINDS,
    RDF_TYPE,
    RDFS_LABEL,
    SENSOR_KINDS,
    UNITS,
    VALUE,
    VAV,
    brick,
    decimal,
    is_brick_class,
    is_sensor_class,
    unit,
)
from kgc.demo.world import World, triple

Quad = ox.Quad
MAX_IDENTIFIER = 64


@dataclass(frozen=True)
class Edit:
    additions: list[Quad] = field(default_factory=list)
    removals: list[Quad] = field(default_factory=list)
    note: str = ""
    on_commit: Callable[[], None] | None = None


Builder = Callable[[World, Random], Edit | None]


def point_quads(
    point: ox.NamedNode,
    label: ox.Literal,
    kind: tuple[str, str | None],
    holder: ox.NamedNode | None,
    rng: Random,
    *,
    with_unit: bool = True,
) -> list[Quad]:
    """A point's type, identifier, unit (if its kind has one) and links to ``holder``."""
    cls, unit_name = kind
    quads = [triple(point, RDF_TYPE, brick(cls)), triple(point, RDFS_LABEL, label)]
    if with_unit and unit_name is not None:
        quads.append(triple(point, rng.choice(UNITS), unit(unit_name)))
    if holder is not None:
        quads += [triple(holder, HAS_POINT, point), triple(point, IS_POINT_OF, holder)]
    return quads


def _pick(rng: Random, items: list[ox.NamedNode]) -> ox.NamedNode | None:
    return rng.choice(items) if items else None


def _own(quads: set[Quad], point: ox.NamedNode, predicates: tuple[ox.NamedNode, ...]) -> list[Quad]:
    return sorted((q for q in quads if q.subject == point and q.predicate in predicates), key=str)


# Valid ------------------------------------------------------------------------------------------


def new_equipment(world: World, rng: Random) -> Edit:
    vav, label = world.fresh("VAV")
    quads = [triple(vav, RDF_TYPE, VAV), triple(vav, RDFS_LABEL, label)]
    feeder = _pick(rng, world.air_handlers)
    if feeder is not None:
        quads.append(triple(feeder, FEEDS, vav))
    points = []
    for kind in (POINT_KINDS[0], POINT_KINDS[1], POINT_KINDS[5]):
        point, point_label = world.fresh("PT")
        points.append((point, point_quads(point, point_label, kind, vav, rng)))

    def commit() -> None:
        world.add_equipment(vav, label)
        if feeder is not None:
            world.add_feed(feeder, vav)
        for point, own in points:
            world.add_point(point, own)

    additions = quads + [q for _, own in points for q in own]
    return Edit(
        additions, note=f"new VAV {label.value} with {len(points)} points", on_commit=commit
    )


def new_point(world: World, rng: Random) -> Edit | None:
    holder = _pick(rng, world.equipment)
    if holder is None:
        return None
    point, label = world.fresh("PT")
    quads = point_quads(point, label, rng.choice(POINT_KINDS), holder, rng)
    return Edit(
        quads,
        note=f"new point {label.value} on {holder.value}",
        on_commit=lambda: world.add_point(point, quads),
    )


def name_entity(world: World, rng: Random) -> Edit | None:
    entity = _pick(rng, world.unlabelled())
    if entity is None:
        return None
    label = world.fresh_label("ID")
    return Edit(
        [triple(entity, RDFS_LABEL, label)],
        note=f"identify {entity.value} as {label.value}",
        on_commit=lambda: world.relabel(entity, None, label),
    )


def rename(world: World, rng: Random) -> Edit | None:
    entity = _pick(rng, list(world.renamable))
    if entity is None:
        return None
    old, new = world.renamable[entity], world.fresh_label("RN")
    return Edit(
        [triple(entity, RDFS_LABEL, new)],
        [triple(entity, RDFS_LABEL, old)],
        note=f"rename {old.value} to {new.value}",
        on_commit=lambda: world.relabel(entity, old, new),
    )


def retire_point(world: World, rng: Random) -> Edit | None:
    point = _pick(rng, list(world.points))
    if point is None:
        return None
    quads = sorted(world.points[point], key=str)
    return Edit(
        removals=quads,
        note=f"retire {point.value} ({len(quads)} triples)",
        on_commit=lambda: world.retire_point(point),
    )


# Invalid ----------------------------------------------------------------------------------------


def orphan_point(world: World, rng: Random) -> Edit:
    point, label = world.fresh("PT")
    quads = point_quads(point, label, rng.choice(POINT_KINDS), None, rng)
    return Edit(quads, note=f"new point {label.value} on no equipment")


def unlink_point(world: World, rng: Random) -> Edit | None:
    point = _pick(rng, list(world.points))
    if point is None:
        return None
    links = sorted(
        (q for q in world.points[point] if q.predicate in LINKS and point in (q.subject, q.object)),
        key=str,
    )
    return Edit(removals=links, note=f"unlink {point.value} from all its equipment")


def untyped_equipment(world: World, rng: Random) -> Edit:
    holder, holder_label = world.fresh("EQ")
    point, label = world.fresh("PT")
    quads = [triple(holder, RDFS_LABEL, holder_label)]
    if rng.random() < 0.5:
        quads.append(triple(holder, RDF_TYPE, OWL_NAMED_INDIVIDUAL))
    quads += point_quads(point, label, rng.choice(POINT_KINDS), holder, rng)
    return Edit(quads, note=f"new point {label.value} on equipment without a Brick type")


def sensor_without_unit(world: World, rng: Random) -> Edit | None:
    holder = _pick(rng, world.equipment)
    if holder is None:
        return None
    point, label = world.fresh("PT")
    quads = point_quads(point, label, rng.choice(SENSOR_KINDS), holder, rng, with_unit=False)
    return Edit(quads, note=f"new sensor {label.value} without a unit")


def drop_unit(world: World, rng: Random) -> Edit | None:
    sensors = [
        point
        for point, quads in world.points.items()
        if _own(quads, point, UNITS) and any(is_sensor_class(o) for o in _types(quads, point))
    ]
    point = _pick(rng, sensors)
    if point is None:
        return None
    return Edit(
        removals=_own(world.points[point], point, UNITS), note=f"drop unit of {point.value}"
    )


def duplicate_identifier(world: World, rng: Random) -> Edit | None:
    holder = _pick(rng, world.equipment)
    if holder is None or not world.holders:
        return None
    taken = rng.choice(sorted(world.holders, key=str))
    point, _ = world.fresh("PT")
    quads = point_quads(point, taken, rng.choice(POINT_KINDS), holder, rng)
    return Edit(quads, note=f"new point reusing identifier {taken.value}")


def rename_to_taken(world: World, rng: Random) -> Edit | None:
    entity = _pick(rng, list(world.renamable))
    if entity is None or len(world.holders) < 2:
        return None
    old = world.renamable[entity]
    taken = rng.choice(sorted((label for label in world.holders if label != old), key=str))
    return Edit(
        [triple(entity, RDFS_LABEL, taken)],
        [triple(entity, RDFS_LABEL, old)],
        note=f"rename {old.value} to {taken.value}, which is taken",
    )


def retire_type_only(world: World, rng: Random) -> Edit | None:
    point = _pick(rng, list(world.points))
    if point is None:
        return None
    types = [q for q in _own(world.points[point], point, (RDF_TYPE,)) if is_brick_class(q.object)]
    return Edit(removals=types, note=f"remove the Brick type of {point.value}, keep its links")


def feeds_itself(world: World, rng: Random) -> Edit | None:
    entity = _pick(rng, world.equipment)
    if entity is None:
        return None
    return Edit([triple(entity, FEEDS, entity)], note=f"{entity.value} feeds itself")


def feeds_back(world: World, rng: Random) -> Edit | None:
    if not world.feeds:
        return None
    upstream, downstream = rng.choice(world.feeds)
    return Edit(
        [triple(downstream, FEEDS, upstream)],
        note=f"{downstream.value} feeds back into {upstream.value}",
    )


def malformed_identifier(world: World, rng: Random) -> Edit | None:
    entity = _pick(rng, list(world.renamable))
    if entity is None:
        return None
    old, fresh = world.renamable[entity], world.fresh_label("BAD").value
    bad = rng.choice(
        (
            ox.Literal(""),
            ox.Literal(f" {fresh}"),
            ox.Literal(f"{fresh}\n"),
            ox.Literal(fresh.ljust(MAX_IDENTIFIER + 1, "X")),
            ox.Literal(fresh, language="en"),
        )
    )
    return Edit(
        [triple(entity, RDFS_LABEL, bad)],
        [triple(entity, RDFS_LABEL, old)],
        note=f"rename {old.value} to malformed {bad}",
    )


def second_identifier(world: World, rng: Random) -> Edit | None:
    entity = _pick(rng, list(world.renamable))
    if entity is None:
        return None
    extra = world.fresh_label("ALT")
    return Edit(
        [triple(entity, RDFS_LABEL, extra)],
        note=f"give {world.renamable[entity].value} a second identifier {extra.value}",
    )


# Readings (the data-quality pack) ---------------------------------------------------------------

HUMIDITY_SENSOR = "Humidity_Sensor"
TEMPERATURE_SETPOINT = "Zone_Air_Temperature_Setpoint"


def reading(world: World, rng: Random) -> Edit | None:
    """A plausible value (20-24) on a point with a unit, replacing its current value."""
    return _set_value(world, rng, _with_unit(world), decimal(rng.uniform(20.0, 24.0)))


def text_reading(world: World, rng: Random) -> Edit | None:
    point = _pick(rng, _with_unit(world))
    return _replace_value(world, point, ox.Literal(f"{rng.uniform(20.0, 24.0):.1f}"), "as text")


def unitless_reading(world: World, rng: Random) -> Edit | None:
    targets = [p for p, quads in world.points.items() if not _own(quads, p, UNITS)]
    return _replace_value(world, _pick(rng, targets), decimal(1.0), "on a point with no unit")


def humidity_out_of_range(world: World, rng: Random) -> Edit | None:
    point = _pick(rng, _with_unit(world, HUMIDITY_SENSOR))
    value = rng.choice((rng.uniform(100.5, 150.0), rng.uniform(-20.0, -0.5)))
    return _replace_value(world, point, decimal(value), "out of 0-100 %")


def setpoint_jump(world: World, rng: Random) -> Edit | None:
    valued = [
        p for p in _with_unit(world, TEMPERATURE_SETPOINT) if _own(world.points[p], p, (VALUE,))
    ]
    point = _pick(rng, valued)
    if point is None:
        return None
    value = _own(world.points[point], point, (VALUE,))[0].object
    assert isinstance(value, ox.Literal)  # the stream writes values as literals
    current = float(value.value)
    step = rng.uniform(6.0, 12.0) * rng.choice((1, -1))
    return _replace_value(world, point, decimal(current + step), f"a jump of {step:+.1f}")


def _with_unit(world: World, class_suffix: str = "") -> list[ox.NamedNode]:
    """Tracked points that state a unit (and whose Brick class ends with ``class_suffix``)."""
    return [
        point
        for point, quads in world.points.items()
        if _own(quads, point, UNITS)
        and any(str(getattr(t, "value", "")).endswith(class_suffix) for t in _types(quads, point))
    ]


def _replace_value(
    world: World, point: ox.NamedNode | None, value: ox.Literal, why: str
) -> Edit | None:
    if point is None:
        return None
    old = _own(world.points[point], point, (VALUE,))
    return Edit([triple(point, VALUE, value)], old, note=f"value {value} on {point.value}, {why}")


def _set_value(
    world: World, rng: Random, targets: list[ox.NamedNode], value: ox.Literal
) -> Edit | None:
    point = _pick(rng, targets)
    if point is None:
        return None
    new = triple(point, VALUE, value)
    old = [q for q in _own(world.points[point], point, (VALUE,)) if q != new]
    return Edit(
        [new],
        old,
        note=f"reading {value.value} on {point.value}",
        on_commit=lambda: world.set_value(point, old, new),
    )


def _types(quads: set[Quad], subject: ox.NamedNode) -> list[object]:
    return [q.object for q in quads if q.subject == subject and q.predicate == RDF_TYPE]


# kind -> (builder, hook that must veto it or None, weight)
# Hook names are the packs' (``<pack>/<hook>``); other hooks may veto the same change too.
GOVERNANCE = "building-governance/"
QUALITY = "data-quality/"
EDIT_KINDS: dict[str, tuple[Builder, str | None, int]] = {
    "new-equipment": (new_equipment, None, 5),
    "new-point": (new_point, None, 20),
    "name": (name_entity, None, 8),
    "rename": (rename, None, 12),
    "retire-point": (retire_point, None, 10),
    "reading": (reading, None, 12),
    "orphan-point": (orphan_point, GOVERNANCE + "point-has-equipment", 4),
    "unlink-point": (unlink_point, GOVERNANCE + "point-has-equipment", 4),
    "untyped-equipment": (untyped_equipment, GOVERNANCE + "equipment-has-brick-type", 4),
    "sensor-without-unit": (sensor_without_unit, GOVERNANCE + "sensor-has-unit", 4),
    "drop-unit": (drop_unit, GOVERNANCE + "sensor-has-unit", 4),
    "duplicate-identifier": (duplicate_identifier, GOVERNANCE + "unique-identifier", 4),
    "rename-to-taken": (rename_to_taken, GOVERNANCE + "unique-identifier", 4),
    "malformed-identifier": (malformed_identifier, GOVERNANCE + "identifier-well-formed", 4),
    "second-identifier": (second_identifier, GOVERNANCE + "identifier-well-formed", 4),
    "retire-type-only": (retire_type_only, GOVERNANCE + "no-retire-while-referenced", 4),
    "feeds-itself": (feeds_itself, GOVERNANCE + "no-feeds-cycle", 4),
    "feeds-back": (feeds_back, GOVERNANCE + "no-feeds-cycle", 4),
    "text-reading": (text_reading, QUALITY + "numeric-value-typed", 3),
    "unitless-reading": (unitless_reading, QUALITY + "value-has-unit", 3),
    "humidity-out-of-range": (humidity_out_of_range, QUALITY + "humidity-in-range", 3),
    "setpoint-jump": (setpoint_jump, QUALITY + "setpoint-step", 3),
}
