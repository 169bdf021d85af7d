"""Fast RFC 8785 forms for JSON that was read from text: the verifier's and anchorer's hot path.

``canonical_json`` (``kgc.lockchain.canonical``) walks a value in Python, about 90 us for a
receipt body here. For text that needs none of RFC 8785's special cases, the standard library's C
encoder with sorted keys writes the same bytes in a third of that time:

- every string is ASCII (the text is ASCII and holds no ``\\u`` escape), so code-point order of
  member names is UTF-16 order and there is no surrogate to refuse;
- every integer is within I-JSON's exact range (the text has no number of 16 digits or more);
- every float is written by Python as ECMAScript writes it: integral floats below 2**53 are read as
  ``int`` (``3.0`` is written ``3`` by both), other floats must lie in [1e-4, 2**53), where
  Python's shortest round-trip ``repr`` uses the plain decimal notation ECMAScript uses.

``parse`` reads text and says whether the fast path applies; ``dumps`` falls back to
``canonical_json`` when it does not, which also raises ``CanonicalJSONError`` for values with no
canonical form. A mistake here could only make an honest hash mismatch (a false alarm), never make
two different values share bytes: the output is always a JSON serialization of the value.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from kgc.lockchain.canonical import canonical_json

_EXACT_FLOATS = float(2**53)
_PLAIN_FROM = 1e-4
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 16
_LONG_NUMBER_TOKEN = re.compile(rb"(?:^|[:,\[])\s*-?[0-9]{16}")


class _NotFast(Exception):
    """A number whose Python form differs from its ECMAScript form: take the slow path."""


def _parse_float(text: str) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFast
    if value.is_integer():
        if abs(value) < _EXACT_FLOATS:
            return int(value)
        raise _NotFast
    if abs(value) < _PLAIN_FROM:
        raise _NotFast
    return value


def _parse_constant(text: str) -> Any:
    raise _NotFast


_DECODER = json.JSONDecoder(parse_float=_parse_float, parse_constant=_parse_constant)


def parse(raw: bytes) -> tuple[Any, bool]:
    """The value of JSON text ``raw`` and whether ``dumps(value, True)`` may take the fast path.

    Raises ``ValueError`` (``json.JSONDecodeError``, ``UnicodeDecodeError``) for text that is not
    JSON.
    """
    # Integers are left to the C scanner, so one of 16 digits or more (maybe unsafe) takes the
    # slow path. A cheap scan finds runs of 16 digits; hex strings hold some, so a run counts
    # only if it starts a number (at the start, or after ``:``, ``,`` or ``[``).
    fast = raw.isascii() and b"\\u" not in raw
    if fast and _LONG_NUMBER in raw.translate(_DIGITS_AS_ZERO):
        fast = _LONG_NUMBER_TOKEN.search(raw) is None
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except _NotFast:
        return json.loads(raw), False
    return value, fast


def dumps(value: Any, fast: bool) -> bytes:
    """The RFC 8785 form of ``value``, a value (or part of one) that ``parse`` returned."""
    if fast:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("ascii")
    return canonical_json(value)
