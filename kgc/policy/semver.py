"""Semantic versions (SemVer 2.0.0) and the version ranges pack manifests use.

A version is ``MAJOR.MINOR.PATCH``, optionally ``-PRERELEASE`` and ``+BUILD``, parsed strictly:
no leading zeros in numeric parts, no ``v`` prefix, no missing parts. Ordering follows SemVer
section 11: numbers compare numerically, a pre-release sorts before its release, pre-release
identifiers compare one by one (numeric below alphanumeric), and build metadata is ignored.

A range is one or more comparators joined by commas, all of which must hold::

    *                 any release
    1.2.3  =1.2.3     exactly that version
    >=1.2.0,<2.0.0    between, as written (also >, <=)
    ^1.2.3            >=1.2.3,<2.0.0   (^0.2.3: <0.3.0; ^0.0.3: <0.0.4)
    ~1.2.3            >=1.2.3,<1.3.0   (~1: <2.0.0)

``^`` and ``~`` accept partial versions (``^1.2`` is ``>=1.2.0,<2.0.0``); so do the comparison
operators (``>=1.2`` is ``>=1.2.0``). A pre-release version satisfies a range only when some
comparator of the range names a pre-release of the same ``MAJOR.MINOR.PATCH``: ``<2.0.0`` does
not accept ``2.0.0-rc.1``, and ``*`` accepts no pre-release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import total_ordering

from kgc.errors import InputError

_NUMBER = r"0|[1-9][0-9]*"
_IDENT = r"[0-9A-Za-z-]+"
_VERSION = re.compile(
    rf"(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?"
)
_PARTIAL = re.compile(rf"({_NUMBER})(?:\.({_NUMBER}))?(?:\.({_NUMBER}))?")
_COMPARATOR = re.compile(r"(>=|<=|>|<|==|=|\^|~)?\s*(\S+)")
_OPS = (">=", "<=", ">", "<", "=")


class VersionError(InputError):
    """A version or range that does not parse; the message quotes it and says why."""


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()
    build: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise VersionError(f"{text!r} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH)")
        pre = match["pre"]
        idents = tuple(_pre_ident(part, text) for part in pre.split(".")) if pre else ()
        major, minor, patch = (int(match[k]) for k in ("major", "minor", "patch"))
        return cls(major, minor, patch, idents, match["build"] or "")

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        if self.release != other.release:
            return self.release < other.release
        if not self.pre or not other.pre:
            return bool(self.pre) and not other.pre  # a pre-release sorts before its release
        return _pre_key(self.pre) < _pre_key(other.pre)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.release == other.release and self.pre == other.pre

    def __hash__(self) -> int:
        return hash((self.release, self.pre))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + ".".join(str(p) for p in self.pre)
        return text + (f"+{self.build}" if self.build else "")


def _pre_ident(part: str, text: str) -> int | str:
    if not part.isdigit():
        return part
    if len(part) > 1 and part.startswith("0"):
        raise VersionError(f"{text!r}: numeric pre-release identifier {part!r} has a leading zero")
    return int(part)


def _pre_key(pre: tuple[int | str, ...]) -> tuple[tuple[int, int, str], ...]:
    # Numeric identifiers sort below alphanumeric ones; a shorter prefix sorts first.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre)


@dataclass(frozen=True)
class Comparator:
    op: str
    version: Version

    def holds(self, version: Version) -> bool:
        if self.op == "=":
            return version == self.version
        if self.op == ">=":
            return version >= self.version
        if self.op == ">":
            return version > self.version
        if self.op == "<=":
            return version <= self.version
        return version < self.version


@dataclass(frozen=True)
class VersionRange:
    """A parsed range; ``str()`` gives back the text it was parsed from."""

    text: str
    comparators: tuple[Comparator, ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        if not isinstance(text, str) or not text.strip():
            raise VersionError(f"{text!r} is not a version range (try '*', '^1.2' or '>=1.0.0')")
        if text.strip() == "*":
            return cls(text, ())
        comparators: list[Comparator] = []
        for part in text.split(","):
            comparators.extend(_comparators(part.strip(), text))
        return cls(text, tuple(comparators))

    def contains(self, version: Version) -> bool:
        if version.pre and not any(
            c.version.pre and c.version.release == version.release for c in self.comparators
        ):
            return False
        return all(c.holds(version) for c in self.comparators)

    def __str__(self) -> str:
        return self.text


def _comparators(part: str, text: str) -> list[Comparator]:
    match = _COMPARATOR.fullmatch(part)
    if match is None:
        raise VersionError(f"{text!r}: empty comparator (ranges join comparators with ',')")
    op, operand = match[1] or "=", match[2]
    if op in ("^", "~"):
        return _caret_tilde(op, operand, text)
    op = "=" if op == "==" else op
    return [Comparator(op, _full_or_partial(operand, text))]


def _full_or_partial(operand: str, text: str) -> Version:
    if _VERSION.fullmatch(operand):
        return Version.parse(operand)
    parts = _partial(operand, text)
    return Version(parts[0], parts[1] or 0, parts[2] or 0)


def _partial(operand: str, text: str) -> tuple[int, int | None, int | None]:
    match = _PARTIAL.fullmatch(operand)
    if match is None:
        raise VersionError(f"{text!r}: {operand!r} is not a version (MAJOR[.MINOR[.PATCH]])")
    major, minor, patch = (None if g is None else int(g) for g in match.groups())
    assert major is not None
    return major, minor, patch


def _caret_tilde(op: str, operand: str, text: str) -> list[Comparator]:
    if _VERSION.fullmatch(operand):
        low = Version.parse(operand)
        major, minor, patch = low.release
        given = 3
    else:
        major, minor_or_none, patch_or_none = _partial(operand, text)
        given = 1 + (minor_or_none is not None) + (patch_or_none is not None)
        minor, patch = minor_or_none or 0, patch_or_none or 0
        low = Version(major, minor, patch)
    if op == "~":
        high = Version(major + 1, 0, 0) if given == 1 else Version(major, minor + 1, 0)
    elif major > 0 or given == 1:
        high = Version(major + 1, 0, 0)
    elif minor > 0 or given == 2:
        high = Version(0, minor + 1, 0)
    else:
        high = Version(0, 0, patch + 1)
    # The upper bound excludes the next release's pre-releases too (they sort below it).
    return [Comparator(">=", low), Comparator("<", Version(*high.release, pre=(0,)))]
