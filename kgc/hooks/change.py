"""The ``delta`` condition: fires on a kind of change to the values of (subject, predicate) keys.

A *key* is a (graph, subject, predicate) that the transaction's effective delta touches, with a
predicate among ``predicates`` (full IRIs) and, when ``types`` is given, a subject that has one of
those ``rdf:type`` values in the same graph after the transaction (no RDFS inference). For each
key the condition compares two sets of objects:

- *before*: the key's objects in the baseline, the committed state before this transaction;
- *after*: its objects in the state the transaction would produce.

``change`` says which comparisons fire:

- ``any``: before and after differ (a value added, removed or replaced);
- ``modify``: both are non-empty and differ (a value replaced, not only added or removed);
- ``increase`` / ``decrease``: both hold exactly one value, both numeric, and after - before is
  greater than ``by`` (increase), or before - after is (decrease). ``by`` defaults to 0, so any
  rise or fall fires. Keys with no value or several values on either side are not compared. A
  non-numeric value raises ``ConditionValueError`` naming the key and the value: the hook's verdict
  is ``error`` and, in strict mode, the transaction is refused.

The cost is O(|delta|): only touched keys are read.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyoxigraph as ox

from kgc.errors import ConditionValueError, HookDefinitionError
from kgc.hooks.aggregate import numeric, params_digest
from kgc.hooks.conditions import RDF_TYPE, ConditionResult, EvalContext
from kgc.hooks.footprint import Anchor, Footprint

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
CHANGES = ("any", "increase", "decrease", "modify")
_DETAIL_KEYS = 5
Key = tuple[
    ox.NamedNode | ox.BlankNode | ox.DefaultGraph, ox.NamedNode | ox.BlankNode, ox.NamedNode
]


@dataclass(frozen=True)
class DeltaChange:
    """Fires when some touched key's values changed as ``change`` says."""

    predicates: tuple[str, ...]
    change: str = "any"
    by: float = 0.0
    types: tuple[str, ...] = ()
    source: str = "<inline>"
    kind: str = field(default="delta", init=False)

    def __post_init__(self) -> None:
        if self.change not in CHANGES:
            raise HookDefinitionError(
                f"{self.source}: field 'change' must be one of {', '.join(CHANGES)}; "
                f"got {self.change!r}"
            )
        if not self.predicates:
            raise HookDefinitionError(f"{self.source}: field 'predicates' must name a predicate")
        for name, iris in (("predicates", self.predicates), ("types", self.types)):
            for iri in iris:
                try:
                    ox.NamedNode(iri)
                except ValueError as exc:
                    raise HookDefinitionError(
                        f"{self.source}: field '{name}': {iri!r} is not an IRI: {exc}"
                    ) from exc
        if self.by < 0:
            raise HookDefinitionError(f"{self.source}: field 'by' must be >= 0; got {self.by}")

    @property
    def text(self) -> str:
        """The parameters as canonical JSON (a ``delta`` condition has no query)."""
        body = {
            "change": self.change,
            "by": self.by,
            "predicates": sorted(self.predicates),
            "types": sorted(self.types),
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def digest(self) -> str:
        return params_digest({"kind": self.kind, "params": self.text})

    def footprint(self) -> Footprint:
        """Only changes to ``predicates`` make keys; a type change alone never fires."""
        return Footprint(frozenset(self.predicates))

    def anchor(self) -> Anchor:
        """No key, no firing: a delta must change one of ``predicates``."""
        return frozenset(("any", p, None) for p in self.predicates)

    def evaluate(self, ctx: EvalContext) -> ConditionResult:
        found: list[str] = []
        for key in self._keys(ctx):
            before, after = self._values(ctx, key)
            if self._fires(key, before, after):
                found.append(_describe(key, before, after))
        shown = "; ".join(found[:_DETAIL_KEYS])
        more = f" (and {len(found) - _DETAIL_KEYS} more)" if len(found) > _DETAIL_KEYS else ""
        return ConditionResult(bool(found), shown + more, len(found))

    def _keys(self, ctx: EvalContext) -> list[Key]:
        wanted = set(self.predicates)
        keys: dict[Key, None] = {}
        for quad in [*ctx.additions, *ctx.removals]:
            if quad.predicate.value in wanted and isinstance(
                quad.subject, ox.NamedNode | ox.BlankNode
            ):
                keys[(quad.graph_name, quad.subject, quad.predicate)] = None
        return [key for key in keys if self._typed(ctx, key)]

    def _typed(self, ctx: EvalContext, key: Key) -> bool:
        if not self.types:
            return True
        graph, subject, _ = key
        return any(
            any(
                True for _ in ctx.store.quads_for_pattern(subject, RDF_TYPE, ox.NamedNode(t), graph)
            )
            for t in self.types
        )

    def _values(self, ctx: EvalContext, key: Key) -> tuple[set[Term], set[Term]]:
        graph, subject, predicate = key
        after = {q.object for q in ctx.store.quads_for_pattern(subject, predicate, None, graph)}
        added = set(_objects(ctx.additions, key))
        before = (after - added) | set(_objects(ctx.removals, key))
        return before, after

    def _fires(self, key: Key, before: set[Term], after: set[Term]) -> bool:
        if before == after:
            return False
        if self.change == "any":
            return True
        if self.change == "modify":
            return bool(before) and bool(after)
        if len(before) != 1 or len(after) != 1:
            return False
        old, new = _number(key, next(iter(before))), _number(key, next(iter(after)))
        rise = new - old if self.change == "increase" else old - new
        return rise > self.by


def _objects(quads: Iterable[ox.Quad], key: Key) -> Iterable[Term]:
    graph, subject, predicate = key
    for q in quads:
        if q.subject == subject and q.predicate == predicate and q.graph_name == graph:
            yield q.object


def _number(key: Key, term: Term) -> float:
    number = numeric(term)
    if number is None:
        raise ConditionValueError(
            f"delta: {key[1]} {key[2]} has the non-numeric value {term}; increase and decrease "
            "compare only literals of numeric XSD datatypes"
        )
    return number


def _describe(key: Key, before: set[Term], after: set[Term]) -> str:
    def show(values: set[Term]) -> str:
        return ", ".join(sorted(str(v) for v in values)) or "(none)"

    return f"{key[1]} {key[2]}: {show(before)} -> {show(after)}"


__all__ = ["CHANGES", "DeltaChange"]
