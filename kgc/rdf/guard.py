"""Checks on query and document text before it reaches a parser that can crash or reach out.

pyoxigraph's SPARQL parser recurses on nesting: 5,000 nested groups (10 KB of text) overflow its
stack and kill the process with a segmentation fault, which no ``try`` can catch. And a query's
``SERVICE`` clause makes pyoxigraph send HTTP requests to any address the query names. kgc's
queries (engine reads, conditions, the sidecar's SPARQL endpoint) are answered from the local
store only, so both are refused before parsing.
"""

from __future__ import annotations

import re

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


__all__ = ["MAX_NESTING", "check_query", "nesting_depth"]
