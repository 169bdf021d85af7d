"""The few terms the demo writes, and the point classes its new points are drawn from."""

from __future__ import annotations

import pyoxigraph as ox

BRICK = "https://brickschema.org/schema/Brick#"
UNIT = "http://qudt.org/vocab/unit/"

RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
RDFS_LABEL = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
OWL_NAMED_INDIVIDUAL = ox.NamedNode("http://www.w3.org/2002/07/owl#NamedIndividual")
QUDT_HAS_UNIT = ox.NamedNode("http://qudt.org/schema/qudt/hasUnit")
HAS_POINT = ox.NamedNode(BRICK + "hasPoint")
IS_POINT_OF = ox.NamedNode(BRICK + "isPointOf")
HAS_UNIT = ox.NamedNode(BRICK + "hasUnit")
FEEDS = ox.NamedNode(BRICK + "feeds")
VAV = ox.NamedNode(BRICK + "VAV")
VALUE = ox.NamedNode(BRICK + "value")
XSD_DECIMAL = ox.NamedNode("http://www.w3.org/2001/XMLSchema#decimal")

LINKS = (HAS_POINT, IS_POINT_OF)
UNITS = (QUDT_HAS_UNIT, HAS_UNIT)

# (Brick class, QUDT unit or None): what a new point may be.
POINT_KINDS: tuple[tuple[str, str | None], ...] = (
    ("Zone_Air_Temperature_Sensor", "DEG_C"),
    ("Zone_Air_Temperature_Setpoint", "DEG_C"),
    ("Supply_Air_Flow_Sensor", "L-PER-SEC"),
    ("Zone_Air_Humidity_Sensor", "PERCENT_RH"),
    ("CO2_Level_Sensor", "PPM"),
    ("Damper_Position_Command", "PERCENT"),
    ("Run_Status", None),
    ("High_Temperature_Alarm", None),
)
SENSOR_KINDS = tuple(kind for kind in POINT_KINDS if kind[0].endswith("Sensor"))


def brick(name: str) -> ox.NamedNode:
    return ox.NamedNode(BRICK + name)


def unit(name: str) -> ox.NamedNode:
    return ox.NamedNode(UNIT + name)


def is_brick_class(node: object) -> bool:
    """Whether ``node`` is a class of Brick (any version's namespace)."""
    if not isinstance(node, ox.NamedNode):
        return False
    value = node.value
    return value.startswith("https://brickschema.org/schema/") and "Brick#" in value


def is_sensor_class(node: object) -> bool:
    return is_brick_class(node) and str(getattr(node, "value", "")).endswith("Sensor")


def decimal(value: float) -> ox.Literal:
    """``value`` as an ``xsd:decimal`` literal with one decimal place."""
    return ox.Literal(f"{value:.1f}", datatype=XSD_DECIMAL)
