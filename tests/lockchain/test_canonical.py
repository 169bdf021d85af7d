"""RFC 8785 canonical JSON: the RFC's own examples, number vectors, refusals, and properties."""

from __future__ import annotations

import enum
import json
import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from kgc.errors import CanonicalJSONError
from kgc.lockchain.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    canonical_json,
    number_to_string,
    parse_json,
)

# Timing varies with the machine's load; examples are not replayed from a local database.
_properties = settings(deadline=None, database=None)

# RFC 8785 Appendix B: IEEE-754 bit patterns and the text each must become.
RFC_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


@pytest.mark.parametrize(("bits", "expected"), RFC_NUMBERS)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonical_json(_double(bits)) == expected.encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (0.1, "0.1"),
        (5e-324, "5e-324"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (100.0, "100"),
        (0.000123, "0.000123"),
        (1.5e-7, "1.5e-7"),
        (2.5e25, "2.5e+25"),
        (4.5, "4.5"),
        (2e-3, "0.002"),
    ],
)
def test_numbers_follow_ecmascript(value: float, expected: str) -> None:
    assert number_to_string(value) == expected
    assert canonical_json(value) == expected.encode()


def test_rfc8785_section_3_2_2_example() -> None:
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting_example() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_json(value) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+FB33 < U+1F600 as code points, but U+1F600 is the pair D83D DE00 in UTF-16, and 0xD83D
    # < 0xFB33, so the emoji sorts first. (U+20AC sorts before both either way.)
    value = {"\ufb33": 1, "\U0001f600": 2, "\u20ac": 3}
    assert sorted(value) == ["\u20ac", "\ufb33", "\U0001f600"]
    assert canonical_json(value) == '{"\u20ac":3,"\U0001f600":2,"\ufb33":1}'.encode()


def test_ascii_keys_sort_plainly() -> None:
    assert canonical_json({"b": 1, "a": 2, "B": 3, "aa": 4}) == b'{"B":3,"a":2,"aa":4,"b":1}'


def test_controls_are_escaped_and_nothing_else() -> None:
    text = "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\u2028\u00e9\U0001f600'
    short = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
    escaped = "".join(short.get(c, f"\\u{c:04x}") for c in range(0x20))
    expected = f'"{escaped}\\"\\\\/\x7f\u2028\u00e9\U0001f600"'
    assert canonical_json(text) == expected.encode("utf-8")
    assert b"\\u001f" in canonical_json(text)  # lowercase hex


def test_literals_and_empty_containers() -> None:
    assert canonical_json([None, True, False, [], {}, ""]) == b'[null,true,false,[],{},""]'


def test_whitespace_free_nesting() -> None:
    value = {"a": [1, {"c": "x", "b": [2.5, None]}], "0": {}}
    assert canonical_json(value) == b'{"0":{},"a":[1,{"b":[2.5,null],"c":"x"}]}'


def test_tuples_are_arrays() -> None:
    assert canonical_json({"t": (1, "a", (2,))}) == b'{"t":[1,"a",[2]]}'


class _Colour(enum.StrEnum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


def test_str_and_int_subclasses_are_written_by_value() -> None:
    assert canonical_json({"c": _Colour.RED, "l": _Level.HIGH}) == b'{"c":"red","l":3}'


def test_bools_are_not_numbers() -> None:
    assert canonical_json([True, 1, False, 0]) == b"[true,1,false,0]"


def test_integers_up_to_the_safe_limit() -> None:
    assert canonical_json(MAX_SAFE_INTEGER) == b"9007199254740991"
    assert canonical_json(-MAX_SAFE_INTEGER) == b"-9007199254740991"


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**30])
def test_integer_beyond_the_safe_limit_is_refused(value: int) -> None:
    with pytest.raises(CanonicalJSONError, match=r"\$\.n: integer .* outside the exact range"):
        canonical_json({"n": value})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(value: float) -> None:
    with pytest.raises(CanonicalJSONError, match=r"\$\.timings\[1\]: .* has no JSON form"):
        canonical_json({"timings": [1.0, value]})
    with pytest.raises(CanonicalJSONError, match="no JSON form"):
        number_to_string(value)


@pytest.mark.parametrize(
    ("value", "found"),
    [({1, 2}, "set"), (b"raw", "bytes"), (object(), "object"), (1 + 2j, "complex")],
)
def test_values_without_json_form_are_refused_with_their_path(value: Any, found: str) -> None:
    with pytest.raises(CanonicalJSONError, match=rf"\$\.hooks\[0\]\['odd key'\]: {found} has no"):
        canonical_json({"hooks": [{"odd key": value}]})


def test_non_string_key_is_refused() -> None:
    with pytest.raises(CanonicalJSONError, match=r"\$\.a: object key 1 is a int, not a str"):
        canonical_json({"a": {1: "x"}})


def test_lone_surrogate_in_a_value_is_refused() -> None:
    with pytest.raises(CanonicalJSONError, match=r"\$\.s: .*lone surrogate U\+D83D at offset 2"):
        canonical_json({"s": "ab\ud83d"})


def test_lone_surrogate_in_a_key_is_refused() -> None:
    with pytest.raises(CanonicalJSONError, match=r"lone surrogate U\+DC00"):
        canonical_json({"x\udc00": 1, "b": 2})


def test_error_carries_the_path() -> None:
    with pytest.raises(CanonicalJSONError) as caught:
        canonical_json({"hooks": [{}, {"score": math.nan}]})
    assert caught.value.path == "$.hooks[1].score"


def test_nesting_is_bounded() -> None:
    deep: list[Any] = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(CanonicalJSONError, match=f"nested deeper than {MAX_DEPTH}"):
        canonical_json(deep)


def test_a_list_that_holds_itself_is_refused_not_a_recursion_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(CanonicalJSONError, match="holds itself"):
        canonical_json(loop)


def test_integral_double_beyond_2_53_reads_back_as_a_double() -> None:
    form = canonical_json({"x": 4.871686352424257e16, "y": 2.0**53})
    assert form == b'{"x":48716863524242570,"y":9007199254740992}'
    # json.loads makes these ints beyond the exact range, which canonical_json then refuses;
    # parse_json reads them as I-JSON does, as doubles.
    with pytest.raises(CanonicalJSONError, match="outside the exact range"):
        canonical_json(json.loads(form))
    assert parse_json(form) == {"x": 4.871686352424257e16, "y": 2.0**53}
    assert canonical_json(parse_json(form)) == form


def test_parse_json_keeps_safe_integers_as_int() -> None:
    assert parse_json(b'{"seq":1041,"neg":-9007199254740991}') == {
        "seq": 1041,
        "neg": -MAX_SAFE_INTEGER,
    }
    assert type(parse_json("1041")) is int


def test_parse_json_refuses_duplicate_member_names() -> None:
    with pytest.raises(CanonicalJSONError, match="member name 'signature' appears twice"):
        parse_json('{"a":{"signature":"00","signature":"ff"}}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_parse_json_refuses_nan_and_infinity(constant: str) -> None:
    with pytest.raises(CanonicalJSONError, match=f"{constant} is not JSON"):
        parse_json(f"[1,{constant}]")


def test_parse_json_refuses_text_that_is_not_json() -> None:
    with pytest.raises(CanonicalJSONError, match="not JSON text: Expecting value: line 1 column 7"):
        parse_json('{"a": }')
    with pytest.raises(CanonicalJSONError, match="not UTF-8 text"):
        parse_json(b'"\xff"')


def test_parse_json_bounds_nesting() -> None:
    with pytest.raises(CanonicalJSONError, match="nested too deeply"):
        parse_json("[" * 100_000 + "]" * 100_000)


def test_receipt_sized_dict_matches_the_oracle() -> None:
    assert canonical_json(RECEIPT) == rfc8785.dumps(RECEIPT)


# A receipt-shaped value: about 25 fields, nested verdicts and timings.
RECEIPT: dict[str, Any] = {
    "id": "urn:uuid:2f1c6a34-8c1e-4a55-9f0e-6d1f3c2b7a90",
    "actor": "commissioning-agent",
    "status": "committed",
    "committed": True,
    "started_at": "2025-01-31T12:00:00.123456+00:00",
    "finished_at": "2025-01-31T12:00:00.130001+00:00",
    "additions": 12,
    "removals": 3,
    "ignored_additions": 0,
    "ignored_removals": 1,
    "literal_rewrites": [{"written": '"01"^^xsd:integer', "stored": '"1"^^xsd:integer'}],
    "delta_digest": {"sha3-256": "a" * 64, "blake3": "b" * 64},
    "state_before": "c" * 64,
    "state_after": "d" * 64,
    "policy_digest": "e" * 64,
    "hooks": [
        {"hook": f"hook-{i}", "verdict": "pass", "reason": "", "duration_ms": 0.25 * i}
        for i in range(6)
    ],
    "timings_ms": {"intake": 0.41, "lock": 0.01, "plan": 0.07, "pre": 3.2, "commit": 1.9},
    "error": None,
    "format_version": "kgc-receipt/1",
    "algorithms": {"delta_digest": ["sha3-256", "blake3"], "state_digest": "lthash16-sha3"},
    "seq": 1041,
    "prev": "f" * 64,
    "key_id": "ed25519:0123456789abcdef",
    "note": "Zürich — sensor AHU-1 ✓",
    "ratio": 1e-7,
}

_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@_properties
@given(_JSON)
def test_output_parses_back_to_an_equal_value_and_is_a_fixed_point(value: Any) -> None:
    form = canonical_json(value)
    parsed = parse_json(form)
    assert parsed == value
    assert canonical_json(parsed) == form


@_properties
@given(_JSON)
def test_agrees_with_the_rfc8785_package(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@_properties
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_round_trips(value: float) -> None:
    text = number_to_string(value)
    assert float(text) == value
    assert text == rfc8785.dumps(value).decode()


@_properties
@given(st.dictionaries(st.text(), st.integers(0, 9), max_size=8))
def test_member_order_is_utf16_order(value: dict[str, int]) -> None:
    order = list(json.loads(canonical_json(value)))
    assert order == sorted(value, key=lambda key: key.encode("utf-16-be"))
