"""A subset of RDF Patch (https://afs.github.io/rdf-patch/) read as one ``Delta``.

Accepted, one item a line:

- ``A s p o [g] .`` adds a triple or quad, ``D s p o [g] .`` deletes one; terms are written in
  N-Triples/N-Quads syntax (``<iri>``, ``"literal"@en``, ``"1"^^<dt>``, ``_:label``);
- ``H name value .`` header lines, ``TX .`` and ``TC .`` (the whole patch is one transaction
  anyway), blank lines and ``#`` comments are skipped.

Refused with a message naming the line: ``TA`` (an aborted patch has nothing to apply), prefix
lines ``PA``/``PD`` and prefixed names (terms must be written out), the ``R`` "repeat term"
shorthand, anything else. Blank-node labels are scoped to the one patch, as in every delta. A
quad both added and deleted is refused (``DeltaConflict``) rather than applied in order.
"""

from __future__ import annotations

from kgc.errors import InputError, RDFSyntaxError
from kgc.rdf.delta import Delta
from kgc.rdf.terms import LiteralPolicy

MEDIA_TYPES = ("application/rdf-patch", "text/rdf-patch")
_SKIPPED = ("H", "TX", "TC")


def parse_patch(text: str, *, literal_policy: LiteralPolicy = "normalize") -> Delta:
    """The ``Delta`` that ``text`` describes; ``InputError`` naming the line otherwise."""
    sides: dict[str, list[str]] = {"A": [], "D": []}
    origin: dict[str, list[int]] = {"A": [], "D": []}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        code, _, rest = line.partition(" ")
        if code in sides:
            sides[code].append(rest.strip())
            origin[code].append(number)
        elif code in _SKIPPED:
            continue
        elif code == "TA":
            raise InputError(f"patch line {number}: TA (abort): an aborted patch is not applied")
        elif code in ("PA", "PD"):
            raise InputError(
                f"patch line {number}: prefix lines ({code}) are not supported; write IRIs in full"
            )
        else:
            raise InputError(
                f"patch line {number}: unknown row {code[:20]!r}; expected A, D, H, TX or TC"
            )
    try:
        return Delta.from_text(
            "\n".join(sides["A"]),
            "\n".join(sides["D"]),
            format="nquads",
            literal_policy=literal_policy,
        )
    except RDFSyntaxError as exc:
        raise _relocated(exc, origin) from exc


def _relocated(exc: RDFSyntaxError, origin: dict[str, list[int]]) -> InputError:
    """The syntax error, with the line number of the patch rather than of one side's text."""
    side = "A" if exc.source == "<additions>" else "D"
    lines = origin[side]
    if exc.line is not None and 0 < exc.line <= len(lines):
        where = f"patch line {lines[exc.line - 1]}"
    else:
        where = "patch"
    return InputError(f"{where}: {exc.reason}")
