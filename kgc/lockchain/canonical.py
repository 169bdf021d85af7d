"""RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value.

``canonical_json(value)`` is what the lockchain hashes and signs, so two parties that hold equal
values always hash equal bytes. The rules, from RFC 8785 §3.2:

- objects: members sorted by their names compared as arrays of UTF-16 code units, no whitespace;
- strings: ``"`` and ``\\`` escaped, ``\\b \\f \\n \\r \\t`` in short form, other controls below
  U+0020 as ``\\u00xx`` (lowercase hex); everything else, non-ASCII included, written as is;
- numbers: ECMAScript ``Number.prototype.toString`` (shortest round-trip digits, exponent form
  below 1e-6 and from 1e21 on, ``-0`` written ``0``);
- ``true``, ``false``, ``null``; the result is UTF-8.

Accepted Python values: ``dict`` with ``str`` keys, ``list`` and ``tuple``, ``str``, ``int``,
``float``, ``bool`` and ``None``. Everything else is refused rather than guessed at.

Choices where RFC 8785 leaves room (it requires I-JSON, RFC 7493):

- **Integers** must lie in I-JSON's exact range, ``-(2**53 - 1)`` to ``2**53 - 1``
  (``Number.MAX_SAFE_INTEGER``). Larger ones are refused, not rounded to the nearest double as an
  ECMAScript serializer would do: a receipt must never say a different number than it was given.
  Put big numbers in strings.
- **NaN and the infinities** have no JSON form and are refused.
- **Lone surrogates** (``"\\ud800"``) are not Unicode text, which I-JSON requires; refused.
- **Nesting** deeper than ``MAX_DEPTH`` is refused, which also stops a list that contains itself.

Every refusal is a ``CanonicalJSONError`` whose message names the offending value's path, such as
``$.hooks[2].score``.

Reading canonical text back: a double such as ``4.871686352424257e16`` is written
``48716863524242570``, which ``json.loads`` turns into a Python ``int`` beyond the exact range, so
re-canonicalizing it would be refused. ``parse_json`` reads numbers as I-JSON means them (an
integer beyond ±(2**53 - 1) is a double) and refuses duplicate member names, so that
``canonical_json(parse_json(form)) == form`` for every canonical ``form``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from kgc.errors import CanonicalJSONError

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 256

_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_ESCAPES = str.maketrans(
    {chr(c): _SHORT_ESCAPES.get(chr(c), f"\\u{c:04x}") for c in range(0x20)}
    | {'"': '\\"', "\\": "\\\\", "\t": "\\t"}
)


class _Refused(Exception):
    """Raised deep inside the walk; containers prepend their key or index on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 form of ``value``.

    Raises ``CanonicalJSONError`` (naming the path of the offending value) for anything without
    a canonical form: see the module docstring for what is accepted.
    """
    out: list[str] = []
    try:
        _emit(value, out, 0)
    except _Refused as exc:
        path = "$" + "".join(reversed(exc.path))
        raise CanonicalJSONError(f"cannot canonicalize {path}: {exc.reason}", path) from None
    return "".join(out).encode("utf-8")


def _emit(value: Any, out: list[str], depth: int) -> None:
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(_integer(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(_string(str.__str__(value)))
    elif isinstance(value, dict):
        _object(value, out, depth + 1)
    elif isinstance(value, list | tuple):
        _array(value, out, depth + 1)
    else:
        raise _Refused(
            f"{kind.__name__} has no JSON form (expected dict, list, str, number, bool or None)"
        )


def _object(value: dict[Any, Any], out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels (a container that holds itself?)")
    for key in value:
        if not isinstance(key, str):
            raise _Refused(f"object key {key!r} is a {type(key).__name__}, not a str")
    out.append("{")
    for i, key in enumerate(_sorted_keys(value)):
        if i:
            out.append(",")
        try:
            out.append(_string(key))
            out.append(":")
            _emit(value[key], out, depth)
        except _Refused as exc:
            exc.path.append(_key_step(key))
            raise
    out.append("}")


def _array(value: list[Any] | tuple[Any, ...], out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels (a container that holds itself?)")
    out.append("[")
    for i, item in enumerate(value):
        if i:
            out.append(",")
        try:
            _emit(item, out, depth)
        except _Refused as exc:
            exc.path.append(f"[{i}]")
            raise
    out.append("]")


def _sorted_keys(value: dict[str, Any]) -> list[str]:
    """Member names in UTF-16 code unit order (RFC 8785 §3.2.3).

    Code point order agrees with it unless a name holds a character above U+FFFF (a surrogate
    pair in UTF-16, which sorts below U+E000..U+FFFF); only non-ASCII names can, so ASCII-only
    objects skip the encoding.
    """
    if all(key.isascii() for key in value):
        return sorted(value)
    for key in value:
        try:
            _check_surrogates(key)
        except _Refused as exc:
            exc.path.append(_key_step(key))
            raise
    return sorted(value, key=lambda key: key.encode("utf-16-be"))


def _key_step(key: str) -> str:
    if key.isidentifier():
        return f".{key}"
    return f"[{key!r}]"


def _string(value: str) -> str:
    if not value.isascii():
        _check_surrogates(value)
    if _NEEDS_ESCAPE.search(value) is None:
        return f'"{value}"'
    return f'"{value.translate(_ESCAPES)}"'


def _check_surrogates(value: str) -> None:
    found = _SURROGATE.search(value)
    if found is not None:
        raise _Refused(
            f"string holds a lone surrogate U+{ord(found.group()):04X} at offset {found.start()}"
            " (not Unicode text, refused by I-JSON)"
        )


def _integer(value: int) -> str:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return str(int(value))
    raise _Refused(
        f"integer {value} is outside the exact range of I-JSON numbers (±(2**53 - 1));"
        " write it as a string"
    )


def number_to_string(value: float) -> str:
    """ECMAScript ``Number.prototype.toString`` of a double, as RFC 8785 §3.2.2.3 writes numbers.

    Raises ``CanonicalJSONError`` for NaN and the infinities, which JSON cannot express.
    """
    try:
        return _number(value)
    except _Refused as exc:
        raise CanonicalJSONError(f"cannot canonicalize $: {exc.reason}", "$") from None


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise _Refused(f"{value!r} has no JSON form (RFC 8785 §3.2.2.3)")
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _number(-value)

    digits, point = _shortest_digits(value)
    return _place_point(digits, point)


def _shortest_digits(value: float) -> tuple[str, int]:
    """Digits ``d1..dk`` and point position ``n`` with ``value == 0.d1..dk * 10**n``.

    Python's ``repr`` of a float is the shortest string that reads back as the same double,
    choosing the one nearest the exact value when several are as short: the digits ECMAScript
    asks for. Only its layout differs, so it is taken apart here.
    """
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)

    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    return significant.rstrip("0"), point


def _place_point(digits: str, n: int) -> str:
    """Lay out ``0.digits * 10**n`` as ECMA-262 Number::toString steps 6 to 10 do."""
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return f"0.{'0' * -n}{digits}"

    exponent = n - 1
    sign = "+" if exponent >= 0 else "-"
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{sign}{abs(exponent)}"


def parse_json(text: str | bytes) -> Any:
    """Parse JSON text as I-JSON (RFC 7493) reads it, the inverse of ``canonical_json``.

    Integers within ±(2**53 - 1) become ``int``, all other numbers ``float``. Refuses, with
    ``CanonicalJSONError``: text that is not JSON, duplicate member names (which value would a
    signature cover?), and ``NaN`` / ``Infinity``.
    """
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_members,
        )
    except json.JSONDecodeError as exc:
        raise CanonicalJSONError(f"not JSON text: {exc}", "$") from exc
    except UnicodeDecodeError as exc:
        raise CanonicalJSONError(f"not UTF-8 text: {exc}", "$") from exc
    except RecursionError as exc:
        raise CanonicalJSONError("nested too deeply to parse", "$") from exc


def _parse_int(text: str) -> int | float:
    value = int(text)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else float(value)


def _refuse_constant(name: str) -> NoReturn:
    raise CanonicalJSONError(f"{name} is not JSON (RFC 8259 has no such number)", "$")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for key, value in pairs:
        if key in members:
            raise CanonicalJSONError(f"member name {key!r} appears twice in one object", "$")
        members[key] = value
    return members
