"""Helpers for pack authors: keep a ``pack.toml``'s ``[files]`` table in step with the files.

The table must be the manifest's last table (as in the shipped packs); ``refresh_files_table``
rewrites it from the files on disk and leaves the rest of the manifest as written.
"""

from __future__ import annotations

import re
from pathlib import Path

from kgc.errors import ManifestError
from kgc.policy.pack import file_hashes

_FILES_TABLE = re.compile(r"^\[files\][ \t]*\n(?:(?!\[).*\n?)*\Z", re.MULTILINE)


def files_table(root: Path) -> str:
    lines = [f'"{rel}" = "{digest}"' for rel, digest in file_hashes(root).items()]
    return "[files]\n" + "".join(line + "\n" for line in lines)


def refresh_files_table(root: Path) -> bool:
    """Rewrite ``root/pack.toml``'s ``[files]`` table; return whether it changed."""
    manifest = root / "pack.toml"
    text = manifest.read_text("utf-8")
    if not _FILES_TABLE.search(text):
        raise ManifestError(f"{manifest}: needs a [files] table as its last table")
    updated = _FILES_TABLE.sub(lambda _: files_table(root), text, count=1)
    if updated != text:
        manifest.write_text(updated, "utf-8")
    return updated != text
