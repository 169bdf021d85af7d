"""Condition kinds that compare a number with a value: ``count`` and ``threshold``.

``count`` fires when the number of rows of its SELECT query compares true with ``value``:
``count > 3`` fires on four rows. ``threshold`` fires when an aggregate of one SELECT variable
compares true with ``value``.

Numbers are literals whose datatype is an XSD numeric type (``xsd:integer``, ``xsd:decimal``,
``xsd:double``, ``xsd:float`` and the integer types derived from them). ``threshold`` refuses any
other value of its variable: evaluation raises ``ConditionValueError`` naming the variable and
the value, so the hook's verdict is ``error`` and, in strict mode, the transaction is refused. Rows
where the variable is unbound are skipped, as SPARQL's own aggregates skip them.

Empty results: ``count`` and ``sum`` are 0 and compared as such; ``avg``, ``min`` and ``max`` of no
values are undefined, and the condition does not fire.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyoxigraph as ox

from kgc.errors import ConditionValueError, HookDefinitionError
from kgc.hooks.conditions import ConditionResult, EvalContext, _check_query
from kgc.hooks.footprint import Footprint, cached_sparql_footprint

XSD = "http://www.w3.org/2001/XMLSchema#"
NUMERIC_TYPES = frozenset(
    XSD + name
    for name in (
        "integer",
        "decimal",
        "double",
        "float",
        "long",
        "int",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "unsignedLong",
        "unsignedInt",
        "unsignedShort",
        "unsignedByte",
    )
)
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}
AGGREGATES = ("sum", "avg", "min", "max", "count")


def check_op(op: str, source: str) -> None:
    if op not in OPS:
        raise HookDefinitionError(
            f"{source}: field 'op' must be one of {', '.join(OPS)}; got {op!r}"
        )


def numeric(term: object) -> float | None:
    """The term's number, or ``None`` when it is not a literal of a numeric XSD datatype."""
    if not isinstance(term, ox.Literal) or term.datatype.value not in NUMERIC_TYPES:
        return None
    try:
        return float(term.value)
    except ValueError:  # an ill-typed literal such as "abc"^^xsd:integer
        return None


def params_digest(params: dict[str, object]) -> str:
    """SHA-256 over the canonical JSON of a condition's parameters."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _query_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _shown(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


@dataclass(frozen=True)
class Count:
    """Fires when the number of rows of the SELECT query compares true with ``value``."""

    text: str
    op: str
    value: float
    source: str = "<inline>"
    kind: str = field(default="count", init=False)

    def __post_init__(self) -> None:
        check_op(self.op, self.source)
        _check_query(self.text, ox.QuerySolutions, "sparql-select", self.source)

    @functools.cached_property
    def digest(self) -> str:
        return params_digest(
            {"kind": self.kind, "op": self.op, "value": self.value, "query": _query_sha(self.text)}
        )

    def footprint(self) -> Footprint | None:
        return cached_sparql_footprint(self.text)

    def evaluate(self, ctx: EvalContext) -> ConditionResult:
        rows = sum(1 for _ in ctx.query(self.text))
        fired = OPS[self.op](rows, self.value)
        detail = f"{rows} rows {self.op} {_shown(self.value)}" if fired else ""
        return ConditionResult(fired, detail, rows)


@dataclass(frozen=True)
class Threshold:
    """Fires when ``aggregate`` of ``?variable`` over the rows compares true with ``value``."""

    text: str
    aggregate: str
    variable: str
    op: str
    value: float
    source: str = "<inline>"
    kind: str = field(default="threshold", init=False)

    def __post_init__(self) -> None:
        check_op(self.op, self.source)
        if self.aggregate not in AGGREGATES:
            raise HookDefinitionError(
                f"{self.source}: field 'aggregate' must be one of {', '.join(AGGREGATES)}; "
                f"got {self.aggregate!r}"
            )
        _check_query(self.text, ox.QuerySolutions, "sparql-select", self.source)
        parsed = ox.Store().query(self.text)
        assert isinstance(parsed, ox.QuerySolutions)  # checked above
        names = {v.value for v in parsed.variables}
        if self.variable.lstrip("?$") not in names:
            raise HookDefinitionError(
                f"{self.source}: field 'variable': ?{self.variable.lstrip('?$')} is not "
                f"selected by the query (it selects {', '.join(sorted(names)) or 'nothing'})"
            )

    @functools.cached_property
    def digest(self) -> str:
        return params_digest(
            {
                "kind": self.kind,
                "aggregate": self.aggregate,
                "variable": self.variable.lstrip("?$"),
                "op": self.op,
                "value": self.value,
                "query": _query_sha(self.text),
            }
        )

    def footprint(self) -> Footprint | None:
        return cached_sparql_footprint(self.text)

    def evaluate(self, ctx: EvalContext) -> ConditionResult:
        name = self.variable.lstrip("?$")
        solutions = ctx.query(self.text)
        values = list(_numbers(name, (row[name] for row in solutions)))
        result = _aggregate(self.aggregate, values)
        if result is None:
            return ConditionResult(False, f"{self.aggregate} of no values", 0)
        fired = OPS[self.op](result, self.value)
        label = f"{self.aggregate}(?{name}) = {_shown(result)}"
        detail = f"{label} {self.op} {_shown(self.value)}" if fired else ""
        return ConditionResult(fired, detail, len(values))


def _numbers(name: str, terms: Iterable[object]) -> Iterable[float]:
    for term in terms:
        if term is None:
            continue
        number = numeric(term)
        if number is None:
            raise ConditionValueError(
                f"threshold: ?{name} has the non-numeric value {term}; only literals of "
                "numeric XSD datatypes can be aggregated"
            )
        yield number


def _aggregate(kind: str, values: list[float]) -> float | None:
    if kind == "count":
        return float(len(values))
    if kind == "sum":
        return float(sum(values))
    if not values:
        return None
    if kind == "avg":
        return sum(values) / len(values)
    return min(values) if kind == "min" else max(values)


__all__ = ["AGGREGATES", "NUMERIC_TYPES", "OPS", "Count", "Threshold", "numeric"]
