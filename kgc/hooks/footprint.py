"""Footprints: which changes can alter a condition's result.

A SPARQL query reads the graph only through its triple patterns (including those inside
``OPTIONAL``, ``MINUS``, ``EXISTS`` and subqueries) and property paths. If no quad of a delta can
match any of them, every pattern matches exactly what it matched before, so the query's result is
the same as on the graph without the change. A ``Footprint`` over-approximates the patterns: the
set of predicate IRIs they can match, and for ``rdf:type`` the classes they can match. A quad
*touches* a footprint when its predicate is in it (and, for ``rdf:type``, its class is, unless the
footprint admits any class).

The analysis is syntactic and conservative: it reads the query's tokens, so it is cheap (tens of
microseconds), and whatever it cannot bound gives ``None``, *unanalysable*, and the planner then
always evaluates the condition. Unanalysable are: a variable or negated property set in predicate
position, ``SERVICE``, ``BASE``, an empty ``GRAPH ?g {}`` (it reads which graphs exist), and
``NOW``, ``RAND``, ``UUID``, ``STRUUID`` (the result can change with nothing changed). Every IRI
written anywhere in the query counts as a possible predicate; that costs precision, never
soundness. RDF collections ``( ... )`` add ``rdf:first`` and ``rdf:rest``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pyoxigraph as ox

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDF_TYPE_IRI = RDF + "type"
_COLLECTION = frozenset({RDF + "first", RDF + "rest"})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*'''
               |"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<iri><[^<>"{}|^`\\\s]*>)
  | (?P<var>[?$][A-Za-z0-9_\u00b7\u00c0-\uffff]+)
  | (?P<bnode>_:[A-Za-z0-9_.\-\u00b7\u00c0-\uffff]*)
  | (?P<lang>@[A-Za-z]+(?:-[A-Za-z0-9]+)*)
  | (?P<pname>(?:[A-Za-z\u00c0-\uffff][A-Za-z0-9_.\-\u00b7\u00c0-\uffff]*)?:
               (?:[A-Za-z0-9_:\-\u00b7\u00c0-\uffff%\\]|\.(?=[A-Za-z0-9_:%\\\-\u00b7\u00c0-\uffff]))*)
  | (?P<number>[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>\^\^|&&|\|\||!=|<=|>=|[{}()\[\].,;|/^*+?!=<>@-])
    """,
    re.VERBOSE,
)
_NONDETERMINISTIC = frozenset({"NOW", "RAND", "UUID", "STRUUID", "SERVICE", "BASE"})
_NAMES = frozenset({"pname", "var", "number", "word", "bnode"})


@dataclass(frozen=True)
class Footprint:
    """The predicates, and ``rdf:type`` classes, whose quads can change a condition's result.

    ``rdf:type`` is in ``predicates`` only when any class can matter; otherwise the classes that
    can matter are in ``classes``.
    """

    predicates: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()

    def __or__(self, other: Footprint) -> Footprint:
        return Footprint(self.predicates | other.predicates, self.classes | other.classes)

    def touched_by(self, quad: ox.Quad) -> bool:
        predicate = quad.predicate.value
        if predicate in self.predicates:
            return True
        if predicate != RDF_TYPE_IRI:
            return False
        return isinstance(quad.object, ox.NamedNode) and quad.object.value in self.classes


def union(footprints: Iterable[Footprint | None]) -> Footprint | None:
    """The union of several footprints; unanalysable if any of them is."""
    out = Footprint()
    for fp in footprints:
        if fp is None:
            return None
        out = out | fp
    return out


def footprint_of(condition: object) -> Footprint | None:
    """A condition's footprint, or ``None`` when it has none (the planner always evaluates it)."""
    method = getattr(condition, "footprint", None)
    return method() if callable(method) else None


@dataclass
class _Tok:
    kind: str
    text: str


def sparql_footprint(text: str) -> Footprint | None:
    """The footprint of a SPARQL query, or ``None`` when the query cannot be bounded."""
    tokens = _tokens(text)
    if tokens is None:
        return None
    prefixes = _prefixes(tokens)
    return _Scanner(tokens, prefixes).run()


def _tokens(text: str) -> list[_Tok] | None:
    out: list[_Tok] = []
    pos, glued_to = 0, ""
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return None  # something this reader does not know: do not guess
        kind = m.lastgroup or ""
        if glued_to in _NAMES and kind in _NAMES:
            return None  # two names with nothing between: a name this reader cut in two?
        if kind != "ws":
            out.append(_Tok(kind, m.group()))
        glued_to = kind if kind != "ws" else ""
        pos = m.end()
    return out


def _prefixes(tokens: list[_Tok]) -> dict[str, str]:
    found: dict[str, str] = {}
    for i, tok in enumerate(tokens[:-2]):
        if tok.kind == "word" and tok.text.upper() == "PREFIX":
            name, iri = tokens[i + 1], tokens[i + 2]
            if name.kind == "pname" and iri.kind == "iri":
                found[name.text.split(":", 1)[0]] = iri.text[1:-1]
    return found


class _Scanner:
    """Walks the tokens once with a small state machine over triple positions.

    Each open ``{ }`` or ``[ ]`` is a *frame* that expects a subject (``S``), a verb (``V``), an
    object (``O``) or the end of an object (``E``); after a keyword (``FILTER``, ``OPTIONAL``,
    ``BIND``, ``SELECT`` ...) it is in ``K`` and ignores terms until the keyword's group closes.
    ``( )`` opens a ``coll`` (a collection), a ``path`` (a path group in a verb) or an ``expr``.
    A variable or ``!`` where a verb is expected makes the query unanalysable.
    """

    def __init__(self, tokens: list[_Tok], prefixes: dict[str, str]) -> None:
        self.tokens = tokens
        self.prefixes = prefixes
        self.predicates: set[str] = set()
        self.classes: set[str] = set()
        # Open groups: [kind, expect, expect-after-close]; kind is triples/coll/path/expr.
        self.stack: list[list[str]] = []
        self.verb_end = 0  # tokens before this index belong to a verb already checked

    def run(self) -> Footprint | None:
        for i, tok in enumerate(self.tokens):
            if not self._step(i, tok):
                return None
        return Footprint(frozenset(self.predicates), frozenset(self.classes))

    # The frame that positions refer to, or None outside any group / inside an expression.
    def _frame(self) -> list[str] | None:
        if not self.stack or self.stack[-1][0] == "expr":
            return None
        return self.stack[-1]

    def _step(self, i: int, tok: _Tok) -> bool:
        frame = self._frame()
        if frame is not None and frame[0] == "triples" and frame[1] == "V" and i >= self.verb_end:
            # A verb starts here. A path that can match zero steps (p*, p?, (p|q?)...) relates
            # every node of the graph to itself, whatever predicate brought the node in.
            parsed = _path(self.tokens, i)
            if parsed is None or parsed[0]:
                return False  # also a variable or a negated set as the verb
            self.verb_end = parsed[1]
        if "PREFIX" in (t.text.upper() for t in self.tokens[max(0, i - 2) : i]):
            return True  # a PREFIX declaration's name and namespace are not a pattern's terms
        if tok.kind == "punct":
            return self._punct(tok)
        if tok.kind == "word" and tok.text != "a" and tok.text.lower() not in ("true", "false"):
            return self._keyword(i, tok)
        if tok.kind in ("iri", "pname"):
            iri = self._expand(tok)
            if iri is None:
                return False
            if iri != RDF_TYPE_IRI:
                self.predicates.add(iri)
        frame = self._frame()
        if frame is None:
            return not (tok.kind in ("iri", "pname") and self._expand(tok) == RDF_TYPE_IRI) or (
                self._any_class()
            )
        return self._term(i, tok, frame)

    def _term(self, i: int, tok: _Tok, frame: list[str]) -> bool:
        is_type = tok.text == "a" or (
            tok.kind in ("iri", "pname") and self._expand(tok) == RDF_TYPE_IRI
        )
        state = frame[1]
        if frame[0] == "path" or state == "V":
            if tok.kind not in ("iri", "pname") and tok.text != "a":
                return False  # a variable (or anything else) as a predicate
            if is_type:
                self._type_verb(i, narrow=frame[0] != "path" and state == "V")
            frame[1] = "O" if frame[0] != "path" else frame[1]
            return True
        if is_type:
            self._any_class()  # rdf:type as a subject or object: stay safe
        frame[1] = {"S": "V", "O": "E", "E": "V", "K": "K"}[state]
        return True

    def _keyword(self, i: int, tok: _Tok) -> bool:
        upper = tok.text.upper()
        if upper in _NONDETERMINISTIC:
            return False
        if upper == "GRAPH" and not self._graph_opens_with_a_triple(i):
            return False
        frame = self._frame()
        if frame is not None:
            frame[1] = "K"
        return True

    def _punct(self, tok: _Tok) -> bool:
        text, frame = tok.text, self._frame()
        state = frame[1] if frame is not None else ""
        if text in ("{", "["):
            after = {"S": "V", "O": "E"}.get(state, "S") if text == "[" else "S"
            self.stack.append(["triples", "V" if text == "[" else "S", after])
        elif text == "(":
            self._open_paren(frame, state)
        elif text in ("}", "]", ")"):
            closed = self.stack.pop() if self.stack else None
            outer = self._frame()
            if closed is not None and outer is not None:
                outer[1] = closed[2]
        elif frame is not None:
            return self._separator(text, frame, state)
        return True

    def _open_paren(self, frame: list[str] | None, state: str) -> None:
        if frame is None or state == "K":
            self.stack.append(["expr", "", "S" if state == "K" else ""])
        elif frame[0] == "path" or state == "V":
            self.stack.append(["path", "V", "O" if frame[0] != "path" else frame[1]])
        else:
            self.predicates |= _COLLECTION
            after = {"S": "V", "O": "E", "E": "V"}.get(state, state)
            self.stack.append(["coll", "O", after])

    def _separator(self, text: str, frame: list[str], state: str) -> bool:
        if text == "!":
            return state != "V" and frame[0] != "path"  # a negated property set
        if text in ("/", "|") and (state == "O" or frame[0] == "path"):
            frame[1] = "V" if frame[0] != "path" else frame[1]
        elif text == "^" and (state == "V" or frame[0] == "path"):
            pass
        elif text == ",":
            frame[1] = "O" if state in ("E", "O") else state
        elif text == ";":
            frame[1] = "V" if state != "K" else state
        elif text == ".":
            frame[1] = "S"
        return True

    def _any_class(self) -> bool:
        self.predicates.add(RDF_TYPE_IRI)
        return True

    def _type_verb(self, i: int, *, narrow: bool) -> None:
        """``rdf:type`` or ``a`` as a verb at ``i``: narrow to the classes named plainly."""
        before = self.tokens[i - 1].text if i else ""
        classes: list[str] = []
        j = i + 1
        while narrow and before not in ("/", "|", "^", "(") and j < len(self.tokens):
            tok = self.tokens[j]
            iri = self._expand(tok) if tok.kind in ("iri", "pname") else None
            if iri is None:
                break
            classes.append(iri)
            follow = self.tokens[j + 1].text if j + 1 < len(self.tokens) else ""
            if follow == ",":
                j += 2
                continue
            if follow in (".", ";", "}", "]"):
                self.classes.update(classes)
                return
            break
        self._any_class()  # a variable, a path or an expression: any class

    def _graph_opens_with_a_triple(self, i: int) -> bool:
        """``GRAPH g { s ...``: a block that starts otherwise (``{}``, ``{{}}``, ``{ FILTER``,
        ``{ OPTIONAL``) can match an empty pattern, and so reads which named graphs exist."""
        rest = self.tokens[i + 1 : i + 4]
        if len(rest) < 3 or rest[1].text != "{":
            return False
        first = rest[2]
        return first.kind in ("iri", "pname", "var", "bnode", "string", "number") or (
            first.text in ("[", "(")
        )

    def _expand(self, tok: _Tok) -> str | None:
        if tok.kind == "iri":
            value = tok.text[1:-1]
            return value if ":" in value else None  # a relative IRI depends on BASE
        prefix, _, local = tok.text.partition(":")
        if prefix not in self.prefixes:
            return None
        return self.prefixes[prefix] + re.sub(r"\\(.)", r"\1", local)


def _path(tokens: list[_Tok], i: int) -> tuple[bool, int] | None:
    """Parse a property path from ``i``: (whether it can match zero steps, index after it).

    ``None`` when the tokens there are not a path of IRIs (a variable, a negated set...).
    """
    parsed = _sequence(tokens, i)
    while parsed is not None and _at(tokens, parsed[1]) == "|":
        other = _sequence(tokens, parsed[1] + 1)
        parsed = None if other is None else (parsed[0] or other[0], other[1])
    return parsed


def _sequence(tokens: list[_Tok], i: int) -> tuple[bool, int] | None:
    parsed = _element(tokens, i)
    while parsed is not None and _at(tokens, parsed[1]) == "/":
        other = _element(tokens, parsed[1] + 1)
        parsed = None if other is None else (parsed[0] and other[0], other[1])
    return parsed


def _element(tokens: list[_Tok], i: int) -> tuple[bool, int] | None:
    if _at(tokens, i) == "^":
        i += 1
    if i >= len(tokens):
        return None
    tok = tokens[i]
    if tok.kind in ("iri", "pname") or tok.text == "a":
        nullable, i = False, i + 1
    elif tok.text == "(":
        inner = _path(tokens, i + 1)
        if inner is None or _at(tokens, inner[1]) != ")":
            return None
        nullable, i = inner[0], inner[1] + 1
    else:
        return None
    modifier = _at(tokens, i)
    if modifier in ("*", "?", "+"):
        return (nullable or modifier != "+", i + 1)
    return (nullable, i)


def _at(tokens: list[_Tok], i: int) -> str:
    return tokens[i].text if i < len(tokens) and tokens[i].kind == "punct" else ""


# Anchors -------------------------------------------------------------------------------------

Side = str  # "add", "rem" or "any": which side of the delta
AnchorPattern = tuple[Side, str, str | None]  # (side, predicate, class for rdf:type or None)
Anchor = frozenset[AnchorPattern]

_DELTA_SIDES = {
    "urn:kgc:delta:additions": "add",
    "urn:kgc:delta:removals": "rem",
}
_AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX", "SAMPLE", "GROUP_CONCAT", "HAVING"})


def anchor_of(condition: object) -> Anchor | None:
    """A condition's anchor, or ``None``: see ``sparql_anchor``."""
    method = getattr(condition, "anchor", None)
    return method() if callable(method) else None


def matches(anchor: Anchor, quad: ox.Quad, side: Side) -> bool:
    for want_side, predicate, klass in anchor:
        if want_side not in (side, "any") or quad.predicate.value != predicate:
            continue
        if klass is None or (isinstance(quad.object, ox.NamedNode) and quad.object.value == klass):
            return True
    return False


def sparql_anchor(text: str) -> Anchor | None:
    """Patterns one of which the delta must hold for the query to find anything, or ``None``.

    An ASK query, or a SELECT without aggregates, whose top-level group has a
    ``GRAPH <urn:kgc:delta:additions> { ... }`` (or ``removals``) block outside ``OPTIONAL``
    has no solution unless the delta holds a quad matching each plain triple pattern of that
    block. One such pattern (an ``rdf:type`` with its class, if there is one) is the anchor: a
    delta with no matching quad on that side leaves the condition quiet, whatever the graph
    holds, so the planner need not evaluate it.
    """
    if sparql_footprint(text) is None:
        return None
    tokens = _tokens(text)
    assert tokens is not None  # the footprint read them
    words = [t.text.upper() for t in tokens if t.kind == "word"]
    form = next((w for w in words if w in ("ASK", "SELECT", "CONSTRUCT", "DESCRIBE")), "")
    if form not in ("ASK", "SELECT") or (form == "SELECT" and _AGGREGATES & set(words)):
        return None
    prefixes = _prefixes(tokens)
    patterns: list[AnchorPattern] = []
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.text == "{":
            depth += 1
        elif tok.text == "}":
            depth -= 1
        elif depth == 1 and tok.kind == "word" and tok.text.upper() == "GRAPH":
            side = _delta_side(tokens, i, prefixes)
            if side:
                patterns += _block_patterns(tokens, i + 3, side, prefixes)
    if not patterns:
        return None
    best = next((p for p in patterns if p[2] is not None), patterns[0])
    return frozenset({best})


def _delta_side(tokens: list[_Tok], i: int, prefixes: dict[str, str]) -> Side:
    if i + 2 >= len(tokens) or tokens[i + 2].text != "{":
        return ""
    if i and tokens[i - 1].kind == "word" and tokens[i - 1].text.upper() == "OPTIONAL":
        return ""
    name = tokens[i + 1]
    return _DELTA_SIDES.get(name.text[1:-1], "") if name.kind == "iri" else ""


def _block_patterns(
    tokens: list[_Tok], start: int, side: Side, prefixes: dict[str, str]
) -> list[AnchorPattern]:
    """The plain triple patterns at the head of the block opening before ``start``."""
    found: list[AnchorPattern] = []
    position, verb = 0, ""
    for tok in tokens[start:]:
        if tok.kind == "punct" and tok.text in (".", ";", ","):
            position = {".": 0, ";": 1, ",": 2}[tok.text]
            continue
        term = tok.kind in ("iri", "pname", "var", "bnode", "string", "number") or tok.text == "a"
        verb_ok = tok.kind in ("iri", "pname") or tok.text == "a"
        if not term or position == 3 or (position == 1 and not verb_ok):
            break  # anything but a plain triple ends the head
        if position == 1:
            verb = RDF_TYPE_IRI if tok.text == "a" else _expand_with(tok, prefixes) or ""
            if not verb:
                break
        elif position == 2:
            klass = _expand_with(tok, prefixes) if verb == RDF_TYPE_IRI else None
            found.append((side, verb, klass))
        position += 1  # after an object (3) only '.', ';' or ',' may follow
    return found


def _expand_with(tok: _Tok, prefixes: dict[str, str]) -> str | None:
    if tok.kind == "iri":
        value = tok.text[1:-1]
        return value if ":" in value else None
    if tok.kind != "pname":
        return None
    prefix, _, local = tok.text.partition(":")
    return prefixes[prefix] + re.sub(r"\\(.)", r"\1", local) if prefix in prefixes else None


cached_sparql_footprint = functools.lru_cache(maxsize=65_536)(sparql_footprint)
cached_sparql_anchor = functools.lru_cache(maxsize=65_536)(sparql_anchor)

__all__ = [
    "Anchor",
    "Footprint",
    "anchor_of",
    "cached_sparql_anchor",
    "cached_sparql_footprint",
    "footprint_of",
    "matches",
    "sparql_anchor",
    "sparql_footprint",
    "union",
]
