"""Checks on query and document text before it reaches a parser that can crash or reach out.

pyoxigraph's SPARQL parser recurses on nesting: 5,000 nested groups (10 KB of text) overflow its
stack and kill the process with a segmentation fault, which no ``try`` can catch. And a query's
``SERVICE`` clause makes pyoxigraph send HTTP requests to any address the query names. kgc's
queries (engine reads, conditions, the sidecar's SPARQL endpoint) are answered from the local
store only, so both are refused before parsing.

Its RDF parsers recurse the same way on RDF 1.2 triple terms (``<<( s p << ... >> )>>``): 20,000
nested levels (480 KB) crash the parser, and 12,000 parse but crash pyoxigraph later, whenever
the stored quad is read (so an engine holding one crashes on every start). Documents and quads
with triple terms nested deeper than ``MAX_TRIPLE_TERM_DEPTH`` are refused before parsing.
"""

from __future__ import annotations

import re

import pyoxigraph as ox

from kgc.errors import QuerySyntaxError

MAX_NESTING = 128
_SKIP = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r"|<[^<>\"{}|^`\\\s]*>"
    r"|#[^\n]*",
)
_SERVICE = re.compile(r"\bSERVICE\b", re.IGNORECASE)
MAX_TRIPLE_TERM_DEPTH = 32
_RDF_TOKENS = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r"|<[^<>\"{}|^`\\\s]*>"
    r"|#[^\n]*"
    r"|<<|>>"
)


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``{ ( [`` in ``text``, strings, IRIs and comments left out."""
    depth = deepest = 0
    for char in _SKIP.sub(" ", text):
        if char in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "})]":
            depth = max(0, depth - 1)
    return deepest


def check_query(text: str) -> None:
    """Refuse, with ``QuerySyntaxError``, a query nested too deeply or using ``SERVICE``."""
    depth = nesting_depth(text)
    if depth > MAX_NESTING:
        raise QuerySyntaxError(
            f"SPARQL query nests groups {depth} deep; kgc accepts at most {MAX_NESTING}"
        )
    if _SERVICE.search(_SKIP.sub(" ", text)):
        raise QuerySyntaxError(
            "SPARQL SERVICE (a federated query) is not accepted: kgc answers from its own store "
            "and never sends requests elsewhere"
        )


def triple_term_depth(text: str) -> int:
    """The deepest nesting of ``<< >>`` in RDF text, strings and comments left out."""
    if text.count("<<") <= MAX_TRIPLE_TERM_DEPTH:  # cannot nest deeper: skip the scan
        return min(text.count("<<"), MAX_TRIPLE_TERM_DEPTH)
    depth = deepest = 0
    for match in _RDF_TOKENS.finditer(text):
        token = match.group()
        if token == "<<":
            depth += 1
            deepest = max(deepest, depth)
        elif token == ">>":
            depth = max(0, depth - 1)
    return deepest


def term_depth(term: object) -> int:
    """How deeply triple terms nest in ``term`` (0 for any other term), without recursion."""
    depth = 0
    while isinstance(term, ox.Triple):
        depth += 1
        if isinstance(term.subject, ox.Triple):  # never in RDF 1.2 syntax; counted if built
            depth += term_depth(term.subject)
        term = term.object
    return depth


__all__ = [
    "MAX_NESTING",
    "MAX_TRIPLE_TERM_DEPTH",
    "check_query",
    "nesting_depth",
    "term_depth",
    "triple_term_depth",
]
