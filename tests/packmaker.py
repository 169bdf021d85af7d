"""Writes small, real policy packs into a directory for the policy tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kgc import Delta

# A hook that vetoes adding the triple <urn:ex:s> <urn:ex:forbidden-NAME> ?o.
ASK = "ASK {{ GRAPH <urn:kgc:delta:additions> {{ ?s <urn:ex:forbidden-{name}> ?o }} }}\n"


def forbidden(name: str, tag: str = "") -> Delta:
    """A delta that the hook ``name`` written by ``make_pack`` vetoes (``tag`` varies it)."""
    return Delta.from_text(f"<urn:ex:s> <urn:ex:forbidden-{name}> <urn:ex:o{tag}> .")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_pack(
    root: Path,
    name: str = "alpha",
    version: str = "1.0.0",
    *,
    hooks: tuple[str, ...] = ("rule",),
    dependencies: dict[str, str] | None = None,
    compatibility: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Path:
    """Write a pack with one ASK hook per name in ``hooks``; return its directory."""
    directory = root / f"{name}-{version}"
    directory.mkdir(parents=True)
    for hook in hooks:
        query = ASK.format(name=hook).encode()
        (directory / f"{hook}.rq").write_bytes(query)
        (directory / f"{hook}.hook.toml").write_text(
            f'name = "{hook}"\nmessage = "no forbidden-{hook}"\n[when]\nkind = "sparql-ask"\n'
            f'ref = {{ uri = "file:{hook}.rq", sha256 = "{sha256(query)}", '
            'media_type = "application/sparql-query" }\n',
            "utf-8",
        )
    manifest: dict[str, object] = {
        "name": name,
        "version": version,
        "description": f"test pack {name}",
        "hooks": [f"{hook}.hook.toml" for hook in hooks],
        "dependencies": dependencies or {},
        "compatibility": compatibility or {"kgc": "^0.1"},
        **(extra or {}),
    }
    write_manifest(directory, manifest)
    return directory


def write_manifest(directory: Path, manifest: dict[str, object]) -> None:
    """Write ``pack.json`` with a ``files`` table listing every other file's hash."""
    files = {
        p.relative_to(directory).as_posix(): sha256(p.read_bytes())
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name not in ("pack.json", "pack.toml", "pack.sig")
    }
    (directory / "pack.json").write_text(json.dumps({**manifest, "files": files}), "utf-8")
