"""Loading a policy pack from a directory: its manifest, files, signature and hooks.

``load_pack`` checks, in order, and refuses the pack at the first fault (nothing is registered
anywhere; loading has no side effect):

1. the manifest parses and validates (``ManifestError`` naming the field);
2. every entry of the directory is a regular file or directory, not a link, and every file is
   listed in ``files`` (the manifest and ``pack.sig`` aside);
3. every listed file exists and its SHA-256 matches (``PackIntegrityError`` naming the file);
4. the signature, when there is one or one is required, is a trusted key's signature over the
   pack digest (``PackSignatureError``);
5. every hook file's condition refs are relative ``file:`` URIs naming listed files; the hooks
   are then loaded by ``kgc.hooks.loader`` (which checks each ref's own sha256) and renamed
   ``<pack>/<hook>``.

The caller must still check dependencies and compatibility against the packs it will run with
(``kgc.policy.registry`` does). Files are read once for the hashes and again by the hook loader:
a pack directory that someone else can write to while it loads is not protected; installed packs
live in the registry's own directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from kgc.errors import HookError, PackIntegrityError, PolicyPackError
from kgc.hooks.loader import load_hook_file
from kgc.hooks.manager import PackRef
from kgc.hooks.model import Hook
from kgc.policy.manifest import RESERVED_NAMES, PackManifest, check_pack_path, read_manifest
from kgc.policy.semver import Version
from kgc.policy.signing import TrustedKeys, verify_pack_signature


@dataclass(frozen=True)
class PolicyPack:
    """A verified pack: its manifest, digest, where it lives, its signer and its hooks."""

    manifest: PackManifest
    digest: str
    root: Path
    hooks: tuple[Hook, ...]
    signed_by: str | None = None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> Version:
        return self.manifest.semver

    @property
    def ref(self) -> PackRef:
        return PackRef(self.name, self.manifest.version, self.digest)

    def __str__(self) -> str:
        return f"{self.name}@{self.manifest.version}"


def load_pack(
    root: str | os.PathLike[str],
    *,
    trusted: TrustedKeys | None = None,
    require_signature: bool = False,
) -> PolicyPack:
    """Load and verify the pack in directory ``root`` (see the module docstring for the steps)."""
    directory = Path(root).resolve()
    if not directory.is_dir():
        raise PolicyPackError(f"{root}: not a pack directory (no such directory)")
    manifest, _ = read_manifest(directory)
    _check_listing(directory, manifest)
    _check_hashes(directory, manifest)
    digest = manifest.digest()
    signer = verify_pack_signature(
        directory, digest, trusted or TrustedKeys(), required=require_signature
    )
    hooks = tuple(_load_hook(directory, manifest, path) for path in manifest.hooks)
    return PolicyPack(manifest, digest, directory, hooks, signer)


def file_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file in a pack directory but the manifest and signature (for authors)."""
    return {rel: _sha256(root / rel) for rel in sorted(_entries(root)) if rel not in RESERVED_NAMES}


def _entries(root: Path) -> Iterator[str]:
    """Every file below ``root`` as a POSIX path; links and special files are refused."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in [*dirnames, *filenames]:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise PackIntegrityError(f"{root}: {rel} is a symbolic link; packs hold none")
            if name in filenames and not path.is_file():
                raise PackIntegrityError(f"{root}: {rel} is not a regular file")
            if name in filenames:
                yield rel


def _check_listing(root: Path, manifest: PackManifest) -> None:
    unlisted = sorted(
        rel for rel in _entries(root) if rel not in manifest.files and rel not in RESERVED_NAMES
    )
    if unlisted:
        raise PackIntegrityError(
            f"{root}: {unlisted[0]} is not listed in the manifest's 'files' "
            f"({len(unlisted)} unlisted file(s)); refusing the pack"
        )


def _check_hashes(root: Path, manifest: PackManifest) -> None:
    for rel, expected in sorted(manifest.files.items()):
        path = root / rel
        if not path.is_file():
            raise PackIntegrityError(f"{root}: {rel} is listed in 'files' but missing")
        actual = _sha256(path)
        if actual != expected:
            raise PackIntegrityError(
                f"{path}: sha256 is {actual}, but the manifest says {expected}; refusing the pack"
            )


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise PackIntegrityError(f"{path}: cannot be read ({exc.strerror})") from exc


def _load_hook(root: Path, manifest: PackManifest, rel: str) -> Hook:
    file = root / rel
    for uri in _condition_uris(_raw_hook(file)):
        _check_ref(root, manifest, file, uri)
    try:
        hook = load_hook_file(file)
    except HookError as exc:
        raise PolicyPackError(f"pack {manifest.name}: {exc}") from exc
    return replace(hook, name=f"{manifest.name}/{hook.name}")


def _raw_hook(file: Path) -> Any:
    text = file.read_bytes().decode("utf-8", errors="replace")
    try:
        return json.loads(text) if file.name.endswith(".json") else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError):
        return {}  # the hook loader reports the syntax error with its own message


def condition_refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every condition ref table of a parsed hook file, at any depth (combinators nest them)."""
    if isinstance(node, dict):
        if isinstance(node.get("ref"), dict):
            yield node["ref"]
        for value in node.values():
            yield from condition_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from condition_refs(item)


def _condition_uris(node: Any) -> Iterator[str]:
    return (ref["uri"] for ref in condition_refs(node) if isinstance(ref.get("uri"), str))


def _check_ref(root: Path, manifest: PackManifest, hook_file: Path, uri: str) -> None:
    parsed = urlparse(uri)
    raw = unquote(parsed.path)
    where = f"{hook_file}: condition ref {uri!r}"
    if parsed.scheme != "file" or parsed.netloc or raw.startswith("/"):
        raise PackIntegrityError(f"{where}: a pack's refs must be relative file: URIs")
    rel = (hook_file.parent / raw).resolve()
    try:
        inside = rel.relative_to(root).as_posix()
        check_pack_path(inside)
    except ValueError:
        raise PackIntegrityError(f"{where}: names a file outside the pack") from None
    if inside not in manifest.files:
        raise PackIntegrityError(f"{where}: names {inside}, which 'files' does not list")
