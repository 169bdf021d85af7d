"""Parsing RDF text and files into quads, with errors that name file, line and column.

Blank-node labels in parsed text are scoped to that one text: every parse gives them fresh ids,
so two deltas that both say ``_:b1`` mean two different nodes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox

from kgc.errors import RDFSyntaxError
from kgc.rdf.guard import MAX_TRIPLE_TERM_DEPTH, triple_term_depth

FORMATS: dict[str, ox.RdfFormat] = {
    "nquads": ox.RdfFormat.N_QUADS,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "turtle": ox.RdfFormat.TURTLE,
    "trig": ox.RdfFormat.TRIG,
}
_ALIASES = {
    "nq": "nquads",
    "n-quads": "nquads",
    "application/n-quads": "nquads",
    "nt": "ntriples",
    "n-triples": "ntriples",
    "application/n-triples": "ntriples",
    "ttl": "turtle",
    "text/turtle": "turtle",
    "application/trig": "trig",
}


def rdf_format(name: str) -> ox.RdfFormat:
    """Look up a format by name, file extension or media type."""
    key = name.lower().lstrip(".")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise RDFSyntaxError(
            f"unknown RDF format {name!r}; expected one of {known}", name, None, None
        )
    return FORMATS[key]


def format_for_path(path: Path) -> ox.RdfFormat:
    """The format a file's extension names; an unknown one is refused naming the file."""
    try:
        return rdf_format(path.suffix or path.name)
    except RDFSyntaxError as exc:
        raise RDFSyntaxError(exc.reason, str(path), None, None) from None


def parse_text(
    text: str | bytes,
    fmt: str | ox.RdfFormat,
    *,
    source: str = "<string>",
    base_iri: str | None = None,
    lenient: bool = False,
    rename_blank_nodes: bool = True,
) -> list[ox.Quad]:
    """Parse ``text`` entirely; refuse it whole on the first error."""
    rdf = fmt if isinstance(fmt, ox.RdfFormat) else rdf_format(fmt)
    if isinstance(text, str):
        text = _utf8(text, source)
    _check_triple_terms(text, source)
    parser = ox.parse(
        text, format=rdf, base_iri=base_iri, rename_blank_nodes=rename_blank_nodes, lenient=lenient
    )
    return list(_guarded(parser, source))


def iter_file(
    path: str | os.PathLike[str],
    fmt: str | ox.RdfFormat | None = None,
    *,
    lenient: bool = False,
) -> Iterator[ox.Quad]:
    """Stream the quads of a file; a syntax error names the file, line and column."""
    file = Path(path)
    if not file.is_file():
        raise RDFSyntaxError("no such file", str(file), None, None)
    rdf = format_for_path(file) if fmt is None else fmt
    rdf = rdf if isinstance(rdf, ox.RdfFormat) else rdf_format(rdf)
    _check_file_triple_terms(file)
    parser = ox.parse(path=file, format=rdf, rename_blank_nodes=True, lenient=lenient)
    yield from _guarded(parser, str(file))


def parse_file(
    path: str | os.PathLike[str], fmt: str | ox.RdfFormat | None = None, *, lenient: bool = False
) -> list[ox.Quad]:
    return list(iter_file(path, fmt, lenient=lenient))


def _check_triple_terms(data: bytes, source: str) -> None:
    if data.count(b"<<") <= MAX_TRIPLE_TERM_DEPTH:
        return
    depth = triple_term_depth(data.decode("utf-8", "replace"))
    if depth > MAX_TRIPLE_TERM_DEPTH:
        raise RDFSyntaxError(
            f"triple terms nest {depth} deep; kgc accepts at most {MAX_TRIPLE_TERM_DEPTH}",
            source,
            None,
            None,
        )


def _check_file_triple_terms(file: Path) -> None:
    """``_check_triple_terms`` for a file: read whole only when it holds many ``<<``."""
    count = 0
    with file.open("rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"<<") + 1  # + 1: a "<<" split across two chunks
    if count > MAX_TRIPLE_TERM_DEPTH:
        _check_triple_terms(file.read_bytes(), str(file))


def _utf8(text: str, source: str) -> bytes:
    # A str may hold a lone surrogate (from a JSON "\ud800" escape, say); pyoxigraph cannot
    # take such a str at all, so refuse it here, at its place, as the parser does an escaped one.
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        column = exc.start - text.rfind("\n", 0, exc.start)
        code = ord(text[exc.start])
        message = f"U+{code:04X} is a lone surrogate, not a Unicode character"
        raise RDFSyntaxError(message, source, line, column) from exc


def _guarded(parser: Iterator[ox.Quad], source: str) -> Iterator[ox.Quad]:
    try:
        yield from parser
    except SyntaxError as exc:
        raise _syntax_error(exc, source) from exc
    except (ValueError, UnicodeError) as exc:
        raise RDFSyntaxError(str(exc), source, None, None) from exc


def _syntax_error(exc: SyntaxError, source: str) -> RDFSyntaxError:
    message = exc.msg or str(exc)
    if message.startswith("Parser error at line"):
        _, _, rest = message.partition(": ")
        message = rest or message
    return RDFSyntaxError(message, exc.filename or source, exc.lineno, exc.offset)
