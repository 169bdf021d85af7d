"""``Delta``: the additions and removals one transaction proposes.

A ``Delta`` is built once, at intake, and never changes. Construction validates every term,
rewrites literals to the form the store holds (see ``kgc.rdf.terms``), refuses a quad that is both
added and removed, refuses kgc's reserved graphs, and drops duplicates within each side. Whether a
quad is already present (or absent) is decided later, under the writer lock, by the transaction.

Blank nodes: labels in text (N-Quads, Turtle, TriG, the JSON form) are scoped to the one delta they
appear in, so ``_:b1`` in two deltas names two nodes. ``BlankNode`` objects passed in directly (for
instance taken from a query result) keep their identity and so can remove existing quads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kgc.errors import DeltaConflict, InputError, RDFSyntaxError, TermError
from kgc.rdf.guard import MAX_TRIPLE_TERM_DEPTH, term_depth
from kgc.rdf.parse import format_for_path, parse_text, rdf_format
from kgc.rdf.terms import (
    LiteralPolicy,
    check_not_reserved,
    from_rdflib,
    normalize_quad,
    quad_line,
)

QuadLike = ox.Quad | ox.Triple | tuple[Any, ...]
_JSON_KEYS = ("subject", "predicate", "object", "graph")
_PROBE = ox.NamedNode("urn:kgc:probe")
_PROBE_TEXT = f"<{_PROBE.value}>"


class Delta:
    """An immutable, validated set of additions and removals."""

    __slots__ = ("additions", "removals", "rewrites")

    additions: tuple[ox.Quad, ...]
    removals: tuple[ox.Quad, ...]
    rewrites: tuple[tuple[str, str], ...]

    def __init__(
        self,
        additions: Iterable[QuadLike] = (),
        removals: Iterable[QuadLike] = (),
        *,
        literal_policy: LiteralPolicy = "normalize",
    ) -> None:
        rewrites: list[tuple[str, str]] = []
        adds = _intake(additions, "additions", literal_policy, rewrites)
        dels = _intake(removals, "removals", literal_policy, rewrites)
        both = adds.keys() & dels.keys()
        if both:
            first = quad_line(adds[min(both, key=quad_line)])
            raise DeltaConflict(
                f"{len(both)} quad(s) are both added and removed, for example: {first}"
            )
        object.__setattr__(self, "additions", tuple(adds.values()))
        object.__setattr__(self, "removals", tuple(dels.values()))
        object.__setattr__(self, "rewrites", tuple(dict.fromkeys(rewrites)))

    @classmethod
    def of_checked(cls, additions: tuple[ox.Quad, ...], removals: tuple[ox.Quad, ...]) -> Delta:
        """A delta of quads that came out of other ``Delta`` objects under the same literal
        policy, distinct and on one side each (a resolved change): not validated again."""
        delta = object.__new__(cls)
        object.__setattr__(delta, "additions", additions)
        object.__setattr__(delta, "removals", removals)
        object.__setattr__(delta, "rewrites", ())
        return delta

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Delta is immutable")

    def __repr__(self) -> str:
        return f"Delta(+{len(self.additions)}, -{len(self.removals)})"

    def __len__(self) -> int:
        return len(self.additions) + len(self.removals)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Delta)
            and set(self.additions) == set(other.additions)
            and set(self.removals) == set(other.removals)
        )

    def __hash__(self) -> int:
        return hash((frozenset(self.additions), frozenset(self.removals)))

    # Named constructors -------------------------------------------------------------------

    @classmethod
    def from_text(
        cls,
        additions: str | bytes = "",
        removals: str | bytes = "",
        *,
        format: str = "nquads",
        base_iri: str | None = None,
        lenient: bool = False,
        literal_policy: LiteralPolicy = "normalize",
    ) -> Delta:
        """Parse N-Quads, N-Triples, Turtle or TriG text; blank-node labels span the delta."""
        scope: dict[str, ox.BlankNode] = {}
        adds = _parse_scoped(additions, format, "<additions>", base_iri, lenient, scope)
        dels = _parse_scoped(removals, format, "<removals>", base_iri, lenient, scope)
        return cls(adds, dels, literal_policy=literal_policy)

    @classmethod
    def from_files(
        cls,
        additions: str | os.PathLike[str] | None = None,
        removals: str | os.PathLike[str] | None = None,
        *,
        format: str | None = None,
        lenient: bool = False,
        literal_policy: LiteralPolicy = "normalize",
    ) -> Delta:
        """Read additions and removals from files; the format follows each file's extension."""
        scope: dict[str, ox.BlankNode] = {}
        sides: list[list[ox.Quad]] = []
        for path in (additions, removals):
            if path is None:
                sides.append([])
                continue
            file = Path(path)
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise RDFSyntaxError(
                    f"cannot read file: {exc.strerror}", str(file), None, None
                ) from exc
            fmt = format or format_for_path(file)
            sides.append(_parse_scoped(data, fmt, str(file), None, lenient, scope))
        return cls(sides[0], sides[1], literal_policy=literal_policy)

    @classmethod
    def from_rdflib(
        cls,
        additions: Any = None,
        removals: Any = None,
        *,
        literal_policy: LiteralPolicy = "normalize",
    ) -> Delta:
        """Build from rdflib graphs or datasets (or iterables of rdflib triples and quads)."""
        return cls(
            _rdflib_quads(additions, "additions"),
            _rdflib_quads(removals, "removals"),
            literal_policy=literal_policy,
        )

    @classmethod
    def from_json(
        cls, data: str | bytes | Mapping[str, Any], *, literal_policy: LiteralPolicy = "normalize"
    ) -> Delta:
        """Build from kgc's JSON form (see ``docs/deltas.md``)."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise RDFSyntaxError(
                    f"invalid JSON: {exc.msg}", "<json>", exc.lineno, exc.colno
                ) from exc
            except RecursionError:
                raise InputError(
                    "invalid JSON delta: arrays or objects nested too deeply"
                ) from None
            except ValueError as exc:  # a number past Python's digit limit for int()
                raise InputError(f"invalid JSON delta: {exc}") from None
        if not isinstance(data, Mapping):
            raise InputError("a JSON delta must be an object with 'additions' and/or 'removals'")
        unknown = set(data) - {"additions", "removals"}
        if unknown:
            raise InputError(f"unknown key(s) in JSON delta: {', '.join(sorted(unknown))}")
        scope: dict[str, ox.BlankNode] = {}
        sides = [_json_side(data.get(key, []), key, scope) for key in ("additions", "removals")]
        return cls(sides[0], sides[1], literal_policy=literal_policy)

    def to_json(self) -> dict[str, list[str]]:
        """The JSON form, with each quad as one N-Quads statement."""
        return {
            "additions": [quad_line(q) for q in self.additions],
            "removals": [quad_line(q) for q in self.removals],
        }


def _intake(
    items: Iterable[QuadLike], side: str, policy: LiteralPolicy, rewrites: list[tuple[str, str]]
) -> dict[ox.Quad, ox.Quad]:
    out: dict[ox.Quad, ox.Quad] = {}
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InputError(
            f"{side} must be an iterable of quads, triples or term tuples, got "
            f"{type(items).__name__} (for RDF text use Delta.from_text)"
        )
    for index, item in enumerate(items):
        quad = normalize_quad(_as_quad(item, f"{side}[{index}]"), policy, rewrites)
        if isinstance(quad.object, ox.Triple) and term_depth(quad.object) > MAX_TRIPLE_TERM_DEPTH:
            raise TermError(
                f"{side}[{index}]: triple terms nest {term_depth(quad.object)} deep; kgc accepts "
                f"at most {MAX_TRIPLE_TERM_DEPTH}"
            )
        check_not_reserved(quad)
        out[quad] = quad
    return out


def _as_quad(item: QuadLike, where: str) -> ox.Quad:
    if isinstance(item, ox.Quad):
        return item
    if isinstance(item, ox.Triple):
        return ox.Quad(item.subject, item.predicate, item.object, ox.DefaultGraph())
    if isinstance(item, tuple) and len(item) in (3, 4):
        terms = [_as_term(term, where) for term in item]
        if len(terms) == 3:
            terms.append(ox.DefaultGraph())
        try:
            return ox.Quad(*terms)
        except TypeError as exc:
            raise TermError(f"{where}: not a valid quad {item!r}: {exc}") from exc
    raise TermError(f"{where}: expected a Quad, Triple or 3/4-tuple of terms, got {item!r}")


def _as_term(term: Any, where: str) -> Any:
    if isinstance(term, ox.NamedNode | ox.BlankNode | ox.Literal | ox.DefaultGraph):
        return term
    return from_rdflib(term, where)


def _parse_scoped(
    text: str | bytes,
    fmt: str | ox.RdfFormat,
    source: str,
    base_iri: str | None,
    lenient: bool,
    scope: dict[str, ox.BlankNode],
) -> list[ox.Quad]:
    if not text:
        if not isinstance(fmt, ox.RdfFormat):
            rdf_format(fmt)  # an unknown format name is refused even for empty text
        return []
    quads = parse_text(
        text, fmt, source=source, base_iri=base_iri, lenient=lenient, rename_blank_nodes=False
    )
    return [_rescope(q, scope) for q in quads]


def _rescope(quad: ox.Quad, scope: dict[str, ox.BlankNode]) -> ox.Quad:
    def fresh(term: Any) -> Any:
        if isinstance(term, ox.BlankNode):
            return scope.setdefault(term.value, ox.BlankNode())
        return term

    terms = (quad.subject, quad.predicate, quad.object, quad.graph_name)
    if not any(isinstance(t, ox.BlankNode) for t in terms):
        return quad
    return ox.Quad(fresh(quad.subject), quad.predicate, fresh(quad.object), fresh(quad.graph_name))


def _rdflib_quads(source: Any, side: str) -> list[QuadLike]:
    if source is None:
        return []
    import rdflib

    if isinstance(source, rdflib.Dataset | rdflib.ConjunctiveGraph):
        return [tuple(q) for q in source.quads((None, None, None, None))]
    return [tuple(t) for t in source]


def _json_side(entries: Any, side: str, scope: dict[str, ox.BlankNode]) -> list[ox.Quad]:
    if not isinstance(entries, list):
        raise InputError(f"'{side}' must be a list, got {type(entries).__name__}")
    quads: list[ox.Quad] = []
    for index, entry in enumerate(entries):
        where = f"{side}[{index}]"
        if isinstance(entry, Mapping):
            line = _json_statement(entry, where)
        elif isinstance(entry, str):
            line = entry
        else:
            raise InputError(f"{where}: expected an N-Quads string or an object, got {entry!r}")
        parsed = _parse_scoped(line, rdf_format("nquads"), where, None, False, scope)
        if len(parsed) != 1:
            raise InputError(f"{where}: expected exactly one statement, found {len(parsed)}")
        if isinstance(entry, Mapping):
            for key in _JSON_KEYS:
                if entry.get(key):
                    _check_one_term(entry[key], key, where)
        quads.extend(parsed)
    return quads


def _json_statement(entry: Mapping[str, Any], where: str) -> str:
    unknown = set(entry) - set(_JSON_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    missing = [key for key in _JSON_KEYS[:3] if not isinstance(entry.get(key), str)]
    if missing:
        raise InputError(
            f"{where}: '{missing[0]}' is required and must be a string in N-Triples syntax"
        )
    graph = entry.get("graph")
    if graph is not None and not isinstance(graph, str):
        raise InputError(f"{where}: 'graph' must be a string in N-Triples syntax, got {graph!r}")
    terms = [entry[key] for key in _JSON_KEYS if entry.get(key)]
    if any("\n" in t or "\r" in t for t in terms):
        raise InputError(f"{where}: a term must not contain a raw line break; escape it as \\n")
    return " ".join(terms) + " ."


def _check_one_term(term: str, key: str, where: str) -> None:
    # A field must be one term, not a fragment of a statement: with the object "<urn:o> . #" the
    # joined line would still parse, as one quad that silently lost its graph. So each field is
    # parsed alone, between probe terms, and must leave the probes where they are.
    slot = _JSON_KEYS.index(key)
    parts = [_PROBE_TEXT] * 4
    parts[slot] = term
    try:
        (quad,) = parse_text(" ".join(parts) + " .", "nquads", rename_blank_nodes=False)
    except (InputError, ValueError):
        quad = None
    terms = () if quad is None else (quad.subject, quad.predicate, quad.object, quad.graph_name)
    if len(terms) != 4 or any(t != _PROBE for i, t in enumerate(terms) if i != slot):
        raise InputError(
            f"{where}: '{key}' must be exactly one term in N-Triples syntax, got {term!r}"
        )
