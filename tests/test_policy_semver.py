"""SemVer 2.0 parsing and precedence, and the range syntax of pack manifests."""

from __future__ import annotations

import itertools

import pytest

from kgc.policy import Version, VersionError, VersionRange


@pytest.mark.parametrize(
    "text",
    [
        "1.0",
        "1",
        "v1.0.0",
        "01.0.0",
        "1.02.0",
        "1.0.0-",
        "1.0.0-01",
        "1.0.0+",
        "1.0.0-a..b",
        " 1.0.0",
        "1.0.0-é",
        "",
    ],
)
def test_malformed_versions_are_refused(text: str) -> None:
    with pytest.raises(VersionError, match=r"SemVer|leading zero"):
        Version.parse(text)


def test_precedence_follows_the_specification_example() -> None:
    chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
        "10.0.0",
    ]
    versions = [Version.parse(v) for v in chain]
    assert sorted(reversed(versions)) == versions
    assert all(a < b for a, b in itertools.pairwise(versions))


def test_build_metadata_is_ignored_in_comparisons_but_kept_in_text() -> None:
    a, b = Version.parse("1.2.3+build.1"), Version.parse("1.2.3+build.2")
    assert a == b and hash(a) == hash(b)
    assert str(a) == "1.2.3+build.1"
    assert str(Version.parse("1.2.3-rc.1")) == "1.2.3-rc.1"


@pytest.mark.parametrize(
    ("range_text", "accepted", "refused"),
    [
        ("*", ["0.0.1", "1.0.0", "99.1.2"], ["1.0.0-rc.1"]),
        ("1.2.3", ["1.2.3", "1.2.3+meta"], ["1.2.4", "1.2.3-rc.1"]),
        ("=1.2.3", ["1.2.3"], ["1.2.2"]),
        (">=1.2.0,<2.0.0", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0", "2.0.0-rc.1", "1.5.0-beta"]),
        (">1.0", ["1.0.1"], ["1.0.0"]),
        ("<=1.4", ["1.4.0", "0.1.0"], ["1.4.1"]),
        ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0", "2.0.0-alpha"]),
        ("^1.2", ["1.2.0", "1.99.0"], ["1.1.9", "2.0.0"]),
        ("^1", ["1.0.0", "1.9.9"], ["0.9.9", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
        ("^0", ["0.0.0", "0.9.9"], ["1.0.0"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
        (
            "^1.2.3-beta.2",
            ["1.2.3-beta.2", "1.2.3-rc.1", "1.2.3", "1.4.0"],
            ["1.2.3-beta.1", "1.4.0-rc.1"],
        ),
        (">=1.0.0-rc.1,<1.0.1", ["1.0.0-rc.1", "1.0.0-rc.2", "1.0.0"], ["1.0.0-beta"]),
    ],
)
def test_ranges_accept_and_refuse(range_text: str, accepted: list[str], refused: list[str]) -> None:
    parsed = VersionRange.parse(range_text)
    assert [v for v in accepted if not parsed.contains(Version.parse(v))] == []
    assert [v for v in refused if parsed.contains(Version.parse(v))] == []
    assert str(parsed) == range_text


@pytest.mark.parametrize(
    "text", ["", " ", ">=", "^x", "~1.2.3.4", ">=1.0.0,", "1.0.0 || 2.0.0", "=>1.0.0", "^1.2.3-"]
)
def test_malformed_ranges_are_refused(text: str) -> None:
    with pytest.raises(VersionError):
        VersionRange.parse(text)
