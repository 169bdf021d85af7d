"""The pack manifest, ``pack.toml`` (or ``pack.json``), and the pack digest.

::

    name = "data-quality"                  # lowercase slug: a-z, 0-9, single '-' between
    version = "1.0.0"                      # SemVer 2.0 (see kgc.policy.semver)
    description = "Literal values that are well typed, labelled and measured"
    hooks = ["numeric-value-typed.hook.toml"]
    [files]                                # every file but the manifest and pack.sig: sha256 hex
    "numeric-value-typed.hook.toml" = "..."
    "numeric-value-typed.ttl" = "..."
    [dependencies]                         # pack name -> version range
    [compatibility]
    kgc = ">=0.1.0,<0.2.0"                 # range checked against kgc.__version__

The digest of a pack is SHA-256 (hex) over the RFC 8785 canonical JSON of the validated manifest
(every field, defaults included). The manifest lists every file's hash, so the digest names the
whole pack; it is what receipts and signatures refer to.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kgc.errors import ManifestError
from kgc.lockchain.canonical import canonical_json
from kgc.policy.semver import Version, VersionError, VersionRange

MANIFEST_NAMES = ("pack.toml", "pack.json")
SIGNATURE_NAME = "pack.sig"
RESERVED_NAMES = (*MANIFEST_NAMES, SIGNATURE_NAME)
COMPATIBILITY_KEYS = ("kgc",)
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_NAME = 64


class PackManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=MAX_NAME)
    version: str
    description: str = ""
    hooks: tuple[str, ...] = Field(min_length=1)
    files: dict[str, str]
    dependencies: dict[str, str] = Field(default_factory=dict)
    compatibility: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.fullmatch(value):
            raise ValueError("must be a lowercase slug: a-z and 0-9 in words joined by single '-'")
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        _checked(Version.parse, value)
        return value

    @field_validator("hooks")
    @classmethod
    def _hook_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, path in enumerate(value):
            _checked(check_pack_path, path, key=str(index))
            if not path.endswith((".hook.toml", ".hook.json")):
                raise _Fault(f"{path!r} is not a hook file (*.hook.toml or *.hook.json)", index)
            if path in value[:index]:
                raise _Fault(f"{path!r} is listed twice", index)
        return value

    @field_validator("files")
    @classmethod
    def _file_hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for path, digest in value.items():
            _checked(check_pack_path, path, key=path)
            if path in RESERVED_NAMES:
                raise _Fault("the manifest and the signature are not listed in 'files'", path)
            if not _SHA256.fullmatch(digest):
                raise _Fault("a sha256 must be 64 lowercase hex digits", path)
        return value

    @field_validator("dependencies")
    @classmethod
    def _ranges(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _SLUG.fullmatch(name):
                raise _Fault(f"{name!r} is not a pack name (a lowercase slug)", name)
            _checked(VersionRange.parse, text, key=name)
        return value

    @field_validator("compatibility")
    @classmethod
    def _compatibility(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if key not in COMPATIBILITY_KEYS:
                raise _Fault(f"unknown (known: {', '.join(COMPATIBILITY_KEYS)})", key)
            _checked(VersionRange.parse, text, key=key)
        return value

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)

    def canonical(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def from_data(cls, data: Any, source: str) -> PackManifest:
        if not isinstance(data, dict):
            raise ManifestError(f"{source}: a manifest must hold one table/object")
        try:
            manifest = cls.model_validate(data)
        except ValidationError as exc:
            raise ManifestError(f"{source}: {_first_error(exc)}") from exc
        missing = [h for h in manifest.hooks if h not in manifest.files]
        if missing:
            raise ManifestError(f"{source}: field 'hooks': {missing[0]!r} is not listed in 'files'")
        if manifest.name in manifest.dependencies:
            raise ManifestError(
                f"{source}: field 'dependencies.{manifest.name}': a pack cannot depend on itself"
            )
        return manifest


def read_manifest(root: Path) -> tuple[PackManifest, Path]:
    """The manifest of the pack in directory ``root``, and the file it came from."""
    found = [root / n for n in MANIFEST_NAMES if (root / n).exists()]
    if not found:
        raise ManifestError(f"{root}: no pack manifest ({' or '.join(MANIFEST_NAMES)})")
    if len(found) > 1:
        raise ManifestError(f"{root}: holds both pack.toml and pack.json; keep one")
    file = found[0]
    if file.is_symlink() or not file.is_file():
        raise ManifestError(f"{file}: the manifest must be a regular file")
    try:
        text = file.read_bytes().decode("utf-8")
        data = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{file}: cannot be read as {file.suffix[1:].upper()}: {exc}") from exc
    return PackManifest.from_data(data, str(file)), file


def check_pack_path(path: str) -> str:
    """Refuse a manifest path that could name something outside the pack."""
    if not isinstance(path, str) or not path:
        raise ValueError("a path must be a non-empty string")
    pure = PurePosixPath(path)
    if "\\" in path or pure.is_absolute() or ":" in path.split("/", maxsplit=1)[0]:
        raise ValueError(f"{path!r} must be a relative path with '/' separators")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"{path!r} must not contain '..', '.' or empty segments")
    return path


class _Fault(ValueError):
    """A validator's complaint about one entry of a list or table: ``key`` extends the path."""

    def __init__(self, message: str, key: str | int | None = None) -> None:
        super().__init__(message)
        self.key = key


def _checked(check: Any, value: Any, *, key: str | int | None = None) -> Any:
    try:
        return check(value)
    except (ValueError, VersionError) as exc:
        raise _Fault(str(exc), key) from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = [str(part) for part in err["loc"]]
    message = err["msg"].removeprefix("Value error, ")
    fault = err.get("ctx", {}).get("error")
    if isinstance(fault, _Fault) and fault.key is not None:
        loc.append(str(fault.key))
    return f"field '{'.'.join(loc) or '<root>'}': {message}"
