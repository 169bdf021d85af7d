"""The ``[when]`` table of a hook file: one condition, of any kind, possibly nested.

Every kind names the fields it needs and the ones it may use; any other field, or a missing one,
is refused with an error naming it by its path (``when.conditions.1.op``). The syntax of each kind
is documented, with examples, in ``docs/conditions.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from kgc.errors import HookDefinitionError
from kgc.hooks.aggregate import Count, Threshold
from kgc.hooks.change import DeltaChange
from kgc.hooks.combinators import COMBINATORS, Combinator
from kgc.hooks.conditions import Condition, SparqlAsk, SparqlSelect
from kgc.hooks.refs import ConditionRef
from kgc.hooks.shacl import Shacl
from kgc.hooks.window import Window

Kind = Literal[
    "sparql-ask",
    "sparql-select",
    "shacl",
    "count",
    "threshold",
    "delta",
    "window",
    "all",
    "any",
    "not",
    "at-least-k",
]
# TOML and JSON numbers only: "5" or true is refused, not converted.
Number = StrictInt | StrictFloat
# kind -> (required fields, optional fields); "kind" itself is always required.
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "sparql-ask": (frozenset({"ref"}), frozenset()),
    "sparql-select": (frozenset({"ref"}), frozenset()),
    "shacl": (frozenset({"ref"}), frozenset({"scope"})),
    "count": (frozenset({"ref", "op", "value"}), frozenset()),
    "threshold": (frozenset({"ref", "aggregate", "variable", "op", "value"}), frozenset()),
    "delta": (frozenset({"change", "predicates"}), frozenset({"by", "types"})),
    "window": (
        frozenset({"ref", "mode", "seconds", "op", "value"}),
        frozenset({"measure", "per_actor"}),
    ),
    "all": (frozenset({"conditions"}), frozenset()),
    "any": (frozenset({"conditions"}), frozenset()),
    "not": (frozenset({"conditions"}), frozenset()),
    "at-least-k": (frozenset({"conditions", "k"}), frozenset()),
}


class RefModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uri: str
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    media_type: str


class WhenModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    ref: RefModel | None = None
    scope: Literal["delta", "graph"] = "delta"
    op: Literal["<", "<=", "==", "!=", ">=", ">"] | None = None
    value: Number | None = None
    aggregate: Literal["sum", "avg", "min", "max", "count"] | None = None
    variable: str | None = Field(default=None, min_length=1)
    change: Literal["any", "increase", "decrease", "modify"] | None = None
    predicates: list[str] | None = Field(default=None, min_length=1)
    types: list[str] | None = None
    by: Number | None = Field(default=None, ge=0)
    mode: Literal["sliding", "tumbling"] | None = None
    seconds: Number | None = Field(default=None, gt=0)
    measure: Literal["rows", "transactions"] = "rows"
    per_actor: bool = False
    k: StrictInt | None = Field(default=None, ge=1)
    conditions: list[WhenModel] | None = Field(default=None, min_length=1)


def build(model: WhenModel, file: Path, where: str = "when") -> Condition:
    """The condition ``model`` describes; refs resolve against ``file``'s directory."""
    _check_fields(model, file, where)
    if model.kind in COMBINATORS:
        children = tuple(
            build(child, file, f"{where}.conditions.{i}")
            for i, child in enumerate(model.conditions or ())
        )
        return Combinator(model.kind, children, model.k or 0, f"{file} ({where})")
    if model.kind == "delta":
        return DeltaChange(
            tuple(model.predicates or ()),
            model.change or "any",
            model.by or 0.0,
            tuple(model.types or ()),
            f"{file} ({where})",
        )
    assert model.ref is not None  # every other kind requires it
    ref = ConditionRef(model.ref.uri, model.ref.sha256, model.ref.media_type)
    return _with_text(model, ref.load(file.parent), f"{file} -> {ref.uri}")


def _with_text(model: WhenModel, text: str, source: str) -> Condition:
    op, value = model.op or "", model.value if model.value is not None else 0.0
    if model.kind == "sparql-ask":
        return SparqlAsk(text, source)
    if model.kind == "sparql-select":
        return SparqlSelect(text, source)
    if model.kind == "shacl":
        return Shacl(text, source, model.scope)
    if model.kind == "count":
        return Count(text, op, value, source)
    if model.kind == "threshold":
        return Threshold(text, model.aggregate or "", model.variable or "", op, value, source)
    seconds = model.seconds or 0.0
    mode, measure = model.mode or "", model.measure
    return Window(text, seconds, op, value, mode, measure, model.per_actor, source)


def _check_fields(model: WhenModel, file: Path, where: str) -> None:
    required, optional = FIELDS[model.kind]
    given = model.model_fields_set - {"kind"}
    for name in sorted(required - given):
        raise HookDefinitionError(f"{file}: field '{where}.{name}': Field required")
    for name in sorted(given - required - optional):
        raise HookDefinitionError(
            f"{file}: field '{where}.{name}': not used by a '{model.kind}' condition"
        )


__all__ = ["FIELDS", "WhenModel", "build"]
