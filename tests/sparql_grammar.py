"""A hypothesis grammar of SPARQL ASK and SELECT queries over a tiny vocabulary.

The vocabulary is small on purpose (four predicates, three classes, three nodes, two named graphs)
so that random deltas over the same terms keep hitting what the queries read. Terms are spelled
several ways (full IRIs, prefixed names with hyphens, dots and escapes, prefixes whose own names
hold them), and tokens are joined by random whitespace, comments or nothing where SPARQL allows.

Each strategy draws a list of tokens; ``render`` joins them. Not every drawn query is valid (a
``BIND`` may rebind a variable in scope, say): callers discard those pyoxigraph refuses.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import strategies as st

EX = "urn:ex:"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
PREDICATES = (EX + "p0", EX + "p-1", EX + "p.2", EX + "p3")
CLASSES = (EX + "C0", EX + "C-1", EX + "C2")
NODES = (EX + "n0", EX + "n1", EX + "n2")
GRAPHS = (EX + "g0", EX + "g1")
# The last two only in wild queries: the footprint reader gives up on tagged and typed literals.
LITERALS = ('"a"', "1", "2", '"x-y"', '"b"@en', '"3"^^<http://www.w3.org/2001/XMLSchema#integer>')
ADDITIONS = "<urn:kgc:delta:additions>"
REMOVALS = "<urn:kgc:delta:removals>"
VARS = ("?x", "?y", "?z", "$w", "?g")
BOUND = ("?b",)  # BIND targets, numbered apart by ``query``
PREFIXES = (
    ("PREFIX", "ex:", "<urn:ex:>"),
    ("PREFIX", "rdf:", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#>"),
    ("prefix", "a-b.c:", "<urn:ex:>"),
    ("PREFIX", ":", "<urn:ex:>"),
)
# Tokens next to which no whitespace is needed.
_GLUE = frozenset("{}()[],;.")

Tokens = list[str]
Draw = st.DrawFn
# One example in three is wild: variable verbs, negated sets and zero-length paths, VALUES data,
# GRAPH blocks without a triple... which the footprint reader gives up on. The others are plain,
# mostly analysable, so that the planner has something to skip; a third of the plain ones start
# with a delta graph pattern (an anchor).
WILD = st.shared(st.integers(0, 2).map(lambda n: n == 0), key="wild")


@dataclass(frozen=True)
class Query:
    text: str
    form: str  # "ASK" or "SELECT"
    projected: tuple[str, ...]  # explicit SELECT variables (empty for ASK and SELECT *)


def _spell(draw: Draw, iri: str) -> str:
    """One of the ways to write ``iri``: full, or a prefixed name (escaped or not)."""
    local = iri.removeprefix(EX)
    choice = draw(st.integers(0, 4))
    if choice == 0 or not local:
        return f"<{iri}>"
    if choice == 4 and ("-" in local or "." in local):
        local = local.replace("-", "\\-").replace(".", "\\.")
    return draw(st.sampled_from(("ex:", "a-b.c:", ":"))) + local


def _type_verb(draw: Draw) -> str:
    return str(draw(st.sampled_from(("a", "rdf:type", f"<{RDF_TYPE}>"))))


@st.composite
def path(draw: Draw, depth: int = 2) -> Tokens:
    """A property path: alternatives of sequences of (inverse) steps with modifiers."""
    seqs = draw(st.integers(1, 2 if depth else 1))
    out: Tokens = []
    for i in range(seqs):
        if i:
            out.append("|")
        for j in range(draw(st.integers(1, 2))):
            if j:
                out.append("/")
            out += draw(_path_element(depth))
    return out


@st.composite
def _path_element(draw: Draw, depth: int) -> Tokens:
    wild = draw(WILD)
    kind = draw(
        st.sampled_from(("iri", "iri", "iri", "type", "group", "negated")[: 6 if wild else 5])
    )
    inverse = ["^"] if draw(st.integers(0, 5)) == 0 else []
    if kind == "group" and depth:
        prim = ["(", *draw(path(depth - 1)), ")"]
    elif kind == "negated":
        prim = ["!", *draw(_negated_set())]
    elif kind == "type":
        prim = [_type_verb(draw)]
    else:
        prim = [_spell(draw, str(draw(st.sampled_from(PREDICATES))))]
    modifier = draw(st.sampled_from(("", "", "", "", "", "", "+", "*", "?")))
    if modifier:
        prim[-1] += str(modifier)  # glued: "ex:p0*", ")+"
    return inverse + prim


@st.composite
def _negated_set(draw: Draw) -> Tokens:
    def one() -> str:
        inverse = "^" if draw(st.booleans()) else ""
        iri = draw(st.sampled_from((*PREDICATES, RDF_TYPE)))
        return inverse + (_type_verb(draw) if iri == RDF_TYPE else _spell(draw, str(iri)))

    if draw(st.booleans()):
        return [one()]
    items: Tokens = ["("]
    for i in range(draw(st.integers(1, 3))):
        items += (["|"] if i else []) + [one()]
    return [*items, ")"]


@st.composite
def verb(draw: Draw) -> Tokens:
    kinds = ("iri", "iri", "iri", "iri", "type", "type", "path", "var")
    kind = draw(st.sampled_from(kinds[: 8 if draw(WILD) else 7]))
    if kind == "type":
        return [_type_verb(draw)]
    if kind == "path":
        return draw(path())
    if kind == "var":
        return [str(draw(st.sampled_from(VARS)))]
    modifier = draw(st.sampled_from(("", "", "", "", "", "*", "?", "+")))
    return [_spell(draw, str(draw(st.sampled_from(PREDICATES)))) + modifier]


@st.composite
def term(draw: Draw, depth: int, position: str) -> Tokens:
    """A subject or an object: a variable, a node, a class, a literal, a blank node property
    list or a collection."""
    kinds = ["var", "var", "node"]
    if draw(WILD):
        kinds.append("bnode")  # the footprint reader gives up on [], so plain queries have none
    if position == "object":
        kinds += ["class", "literal", "var"]
    if depth:
        kinds += ["plist", "collection"]
    kind = draw(st.sampled_from(kinds))
    if kind == "var":
        return [str(draw(st.sampled_from(VARS)))]
    if kind == "node":
        return [_spell(draw, str(draw(st.sampled_from(NODES))))]
    if kind == "class":
        return [_spell(draw, str(draw(st.sampled_from(CLASSES))))]
    if kind == "literal":
        return [str(draw(st.sampled_from(LITERALS[: 6 if draw(WILD) else 4])))]
    if kind == "bnode":
        return [str(draw(st.sampled_from(("[]", "[]", "[]", "_:b0"))))]
    if kind == "plist":
        return ["[", *draw(property_list(depth - 1)), "]"]
    items: Tokens = ["("]
    for _ in range(draw(st.integers(1, 2))):
        items += draw(term(depth - 1, "object"))
    return [*items, ")"]


@st.composite
def property_list(draw: Draw, depth: int) -> Tokens:
    """``verb objects (; verb objects)*``, with ``,`` lists and a trailing ``;`` sometimes."""
    out: Tokens = []
    for i in range(draw(st.integers(1, 2))):
        if i:
            out.append(";")
        v: Tokens = draw(verb())
        out += v
        for j in range(draw(st.integers(1, 2))):
            if j:
                out.append(",")
            typed = len(v) == 1 and v[0] in ("a", "rdf:type", f"<{RDF_TYPE}>")
            if typed and draw(st.integers(0, 3)):
                out.append(_spell(draw, str(draw(st.sampled_from(CLASSES)))))
            else:
                out += draw(term(depth, "object"))
    if draw(WILD) and draw(st.integers(0, 2)) == 0:
        out.append(";")  # allowed, but the footprint reader gives up on it
    return out


@st.composite
def triples(draw: Draw, depth: int) -> Tokens:
    subject: Tokens = draw(term(min(depth, 1), "subject"))
    if subject[0] == "[" and draw(WILD) and draw(st.booleans()):
        return subject  # "[ p o ]" alone is a triple pattern
    if subject == ["[]"] and draw(st.booleans()):
        subject = ["[", "]"]
    return subject + draw(property_list(min(depth, 1)))


@st.composite
def expression(draw: Draw, depth: int) -> Tokens:
    kinds = ["cmp", "isLiteral", "strstarts", "bound", "true"]
    if depth:
        kinds += ["exists", "not-exists", "and", "or", "not"]
    kind = draw(st.sampled_from(kinds))
    var = str(draw(st.sampled_from(VARS)))
    if kind == "cmp":
        op = draw(st.sampled_from(("=", "!=", "<", ">", "<=", ">=")))
        other = draw(st.sampled_from((*VARS, *LITERALS, f"<{NODES[0]}>", "ex:n1")))
        return ["(", var, str(op), str(other), ")"]
    if kind == "isLiteral":
        return ["isLiteral", "(", var, ")"]
    if kind == "strstarts":
        return ["STRSTARTS", "(", "STR", "(", var, ")", ",", '"urn:ex:g"', ")"]
    if kind == "bound":
        return ["bound", "(", var, ")"]
    if kind == "true":
        return [str(draw(st.sampled_from(("true", "false", "(1)"))))]
    if kind in ("exists", "not-exists"):
        head = ["EXISTS"] if kind == "exists" else ["NOT", "EXISTS"]
        return head + draw(group(depth - 1))
    if kind == "not":
        return ["(", "!", *draw(expression(depth - 1)), ")"]
    left: Tokens = draw(expression(depth - 1))
    right: Tokens = draw(expression(depth - 1))
    return ["(", *left, "&&" if kind == "and" else "||", *right, ")"]


@st.composite
def element(draw: Draw, depth: int) -> Tokens:
    kinds = ["triples", "triples", "triples", "filter", "bind", "graph"]
    if draw(WILD):
        kinds.append("values")
    if depth:
        kinds += ["optional", "union", "minus", "group", "subquery", "graph", "filter"]
    kind = draw(st.sampled_from(kinds))
    if kind == "triples":
        return draw(triples(depth))
    if kind in ("optional", "minus"):
        return [kind.upper(), *draw(group(depth - 1))]
    if kind == "filter":
        if depth and draw(st.booleans()):
            head = ["EXISTS"] if draw(st.booleans()) else ["NOT", "EXISTS"]
            return ["FILTER", *head, *draw(group(depth - 1))]
        expr: Tokens = draw(expression(min(depth, 2)))
        return ["FILTER", *(expr if expr[0] == "(" else ["(", *expr, ")"])]
    if kind == "bind":
        value = draw(
            st.sampled_from((["1"], ["STR", "(", "?x", ")"], ["COALESCE(", "?y", ",", "2", ")"]))
        )
        return ["BIND", "(", *value, "AS", str(draw(st.sampled_from(BOUND))), ")"]
    if kind == "values":
        return draw(_values())
    if kind == "graph":
        return draw(_graph(depth))
    if kind == "union":
        out: Tokens = draw(group(depth - 1))
        for _ in range(draw(st.integers(1, 2))):
            out += ["UNION", *draw(group(depth - 1))]
        return out
    if kind == "subquery":
        return ["{", *draw(select(depth - 1)).tokens, "}"]
    return draw(group(depth - 1))


@st.composite
def _values(draw: Draw) -> Tokens:
    data = (*LITERALS, "UNDEF", f"<{NODES[1]}>", "ex:n2", "ex:C-1")
    if draw(st.booleans()):
        rows = [str(draw(st.sampled_from(data))) for _ in range(draw(st.integers(0, 2)))]
        return ["VALUES", str(draw(st.sampled_from(VARS))), "{", *rows, "}"]
    out = ["VALUES", "(", "?x", "?y", ")", "{"]
    for _ in range(draw(st.integers(0, 2))):
        out += ["(", str(draw(st.sampled_from(data))), str(draw(st.sampled_from(data))), ")"]
    return [*out, "}"]


@st.composite
def _graph(draw: Draw, depth: int) -> Tokens:
    name = draw(
        st.sampled_from(
            (
                "?g",
                "?g",
                "?g",
                f"<{GRAPHS[0]}>",
                "ex:g1",
                "a-b.c:g0",
                ADDITIONS,
                ADDITIONS,
                REMOVALS,
            )
        )
    )
    shapes = ("group", "group", "group", "empty", "filter", "nested")
    plain = ("triple", "triple", "triple", "triple", "empty", "filter", "nested")
    shape = draw(st.sampled_from(shapes if draw(WILD) else plain))
    if shape == "empty":
        body = ["{", "}"]
    elif shape == "filter":
        body = ["{", "FILTER", "(", "true", ")", "}"]
    elif shape == "nested":
        body = ["{", "{", "}", "}"]
    elif shape == "triple":
        inner = draw(group(max(depth - 1, 0)))
        body = ["{", *draw(triples(0)), *(["."] if inner[1:2] != ["."] else []), *inner[1:]]
    else:
        body = draw(group(max(depth - 1, 0)))
    return ["GRAPH", str(name), *body]


@st.composite
def group(draw: Draw, depth: int) -> Tokens:
    """``{ ... }``: elements, with ``.`` between triples and sometimes elsewhere."""
    out: Tokens = ["{"]
    previous = ""
    for _ in range(draw(st.integers(0 if depth < 2 else 1, 3 if draw(WILD) else 2))):
        item: Tokens = draw(element(depth))
        is_triples = item[0] not in _KEYWORDS and item[0] != "{"
        if (previous == "triples" and is_triples) or (previous and draw(st.integers(0, 3)) == 0):
            out.append(".")
        out += item
        previous = "triples" if is_triples else "other"
    if previous == "triples" and draw(st.booleans()):
        out.append(".")
    return [*out, "}"]


_KEYWORDS = frozenset(
    {"FILTER", "BIND", "VALUES", "GRAPH", "OPTIONAL", "MINUS", "UNION", "SERVICE"}
)


@dataclass(frozen=True)
class Select:
    tokens: Tokens
    projected: tuple[str, ...]


@st.composite
def select(draw: Draw, depth: int) -> Select:
    """``SELECT ... WHERE { ... }`` with or without aggregates, ``GROUP BY`` and ``HAVING``."""
    where: Tokens = draw(group(depth))
    if draw(st.booleans()):
        keyword = ["WHERE"] if draw(st.booleans()) else []
        if draw(st.booleans()):
            return Select(["SELECT", "*", *keyword, *where], ())
        chosen = draw(st.lists(st.sampled_from(VARS[:4]), min_size=1, max_size=2, unique=True))
        head = ["SELECT", *(["DISTINCT"] if draw(st.booleans()) else []), *chosen]
        tail = ["LIMIT", "3"] if draw(st.integers(0, 4)) == 0 else []
        return Select([*head, *keyword, *where, *tail], tuple(chosen))
    function = draw(st.sampled_from(("COUNT(*)", "COUNT(?y)", "SUM(?y)", "MAX(?x)")))
    count = ["(", *_split_call(str(function)), "AS", "?n", ")"]
    if draw(st.booleans()):
        having = (
            ["HAVING", "(", "COUNT", "(", "*", ")", ">", "1", ")"] if draw(st.booleans()) else []
        )
        return Select(
            ["SELECT", "?x", *count, "WHERE", *where, "GROUP", "BY", "?x", *having], ("x", "n")
        )
    return Select(["SELECT", *count, "WHERE", *where], ("n",))


def _split_call(text: str) -> Tokens:
    name, _, rest = text.partition("(")
    return [name, "(", rest[:-1], ")"]


@st.composite
def separator(draw: Draw, glue: bool) -> str:
    options = [" ", " ", " ", "\n", "\t ", "  # a comment { ?s ?p ?o }\n"]
    if glue:
        options += ["", "", ""]
    return str(draw(st.sampled_from(options)))


@st.composite
def render(draw: Draw, tokens: Tokens) -> str:
    """Join ``tokens`` with random separators, nothing where SPARQL allows it."""
    out = [tokens[0]]
    for before, after in itertools.pairwise(tokens):
        glue = before[-1] in _GLUE or after[0] in _GLUE
        out.append(draw(separator(glue)))
        out.append(after)
    return "".join(out)


def prologue() -> Tokens:
    out: Tokens = []
    for keyword, name, iri in PREFIXES:
        out += [keyword, name, iri]
    return out


@st.composite
def query(draw: Draw, form: str, depth: int = 2) -> Query:
    """A whole ASK or SELECT query, rendered; plain ones are often small."""
    head = prologue()
    if not draw(WILD):
        depth = draw(st.integers(0, depth))
    if form == "ASK":
        keyword = ["WHERE"] if draw(st.booleans()) else []
        body: Tokens = ["ASK", *draw(_dataset()), *keyword, *draw(group(depth))]
        projected: tuple[str, ...] = ()
    else:
        chosen: Select = draw(select(depth))
        body, projected = chosen.tokens, tuple(v.lstrip("?$") for v in chosen.projected)
    if draw(WILD) and draw(st.integers(0, 3)) == 0:
        body += draw(_values())  # a trailing VALUES clause
    elif not draw(WILD) and draw(st.integers(0, 2)) == 0:
        body = _anchored(body, draw(st.sampled_from((ADDITIONS, ADDITIONS, REMOVALS))))
        at = body.index("{") + 4
        body[at:at] = draw(triples(0))
    text = draw(render([*head, *_numbered(body)]))
    return Query(str(text), form, projected)


def _anchored(body: Tokens, graph: str) -> Tokens:
    """``body`` with ``GRAPH graph { }`` first in its WHERE group; the caller fills the block."""
    at = body.index("{") + 1
    return [*body[:at], "GRAPH", graph, "{", "}", *body[at:]]


@st.composite
def _dataset(draw: Draw) -> Tokens:
    """``FROM`` and ``FROM NAMED`` clauses, rarely."""
    if draw(st.integers(0, 7)):
        return []
    graph = draw(st.sampled_from((f"<{GRAPHS[0]}>", f"<{GRAPHS[1]}>", ADDITIONS)))
    return ["FROM", *(["NAMED"] if draw(st.booleans()) else []), graph]


def _numbered(tokens: Tokens) -> Tokens:
    """Give every ``BIND`` target and every aggregate but the first its own name: SPARQL
    refuses to bind a variable already in scope."""
    out: Tokens = []
    seen = {"?b": 0, "?n": 0}
    for tok in tokens:
        if tok not in seen:
            out.append(tok)
            continue
        seen[tok] += 1
        out.append(f"{tok}{seen[tok] - 1}" if tok == "?b" or seen[tok] > 1 else tok)
    return out
