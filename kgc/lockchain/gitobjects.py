"""Read git objects for verification without trusting them, or libgit2's handling of them.

A loose object is ``objects/<2 hex>/<38 hex>``: zlib over ``"<type> <size>\\0" + content``, and its
id is ``SHA-1`` of the inflated bytes. Loose objects are inflated here, because libgit2 1.9 never
returns from reading one whose zlib stream was cut short; a truncated, corrupt, mis-sized or
mis-hashed object is reported as such. Packed objects (a repository someone ran ``git gc`` on) are
read through libgit2, then hashed here all the same.

Trees and commits are parsed here too, from the verified bytes.
"""

from __future__ import annotations

import hashlib
import os
import zlib

import pygit2

_TYPES = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}
_MAX_OBJECT = 256 * 1024 * 1024


class ObjectFault(Exception):
    """A git object that is missing, cannot be read, or does not hash to its id."""

    def __init__(self, oid: str, state: str) -> None:
        super().__init__(f"git object {oid} is {state}")
        self.oid = oid
        self.state = state


class RawObjects:
    """Verified reads of the objects of one repository."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self.objects = os.path.join(repo.path, "objects")

    def read(self, oid: str, expected: str) -> bytes:
        """The content of object ``oid``, which must be of type ``expected``."""
        kind, content = self._loose(oid) if len(oid) == 40 else (None, b"")
        if kind is None:
            kind, content = self._packed(oid)
        actual = hashlib.sha1(f"{kind} {len(content)}\0".encode() + content).hexdigest()
        if actual != oid:
            raise ObjectFault(oid, f"corrupt (its content hashes to {actual})")
        if kind != expected:
            raise ObjectFault(oid, f"a {kind}, not a {expected}")
        return content

    def _loose(self, oid: str) -> tuple[str | None, bytes]:
        try:
            fd = os.open(f"{self.objects}/{oid[:2]}/{oid[2:]}", os.O_RDONLY)
        except FileNotFoundError:
            return None, b""
        except OSError as exc:
            raise ObjectFault(oid, f"unreadable ({exc.strerror})") from exc
        try:
            data = _read_all(fd)
        except OSError as exc:
            raise ObjectFault(oid, f"unreadable ({exc.strerror})") from exc
        finally:
            os.close(fd)
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(data, _MAX_OBJECT)
        except zlib.error as exc:
            raise ObjectFault(oid, f"corrupt (zlib: {exc})") from exc
        if not inflater.eof:
            raise ObjectFault(oid, "corrupt (truncated: its zlib stream ends early)")
        header, sep, content = raw.partition(b"\0")
        kind, _, size = header.partition(b" ")
        if not sep or not size.isdigit() or int(size) != len(content):
            raise ObjectFault(oid, "corrupt (its header does not match its content)")
        return kind.decode("ascii", "replace"), content

    def _packed(self, oid: str) -> tuple[str, bytes]:
        try:
            kind, content = self.repo.odb.read(oid)
        except (KeyError, ValueError) as exc:
            raise ObjectFault(oid, "missing") from exc
        except pygit2.GitError as exc:
            state = "missing" if "not found" in str(exc).lower() else f"corrupt ({exc})"
            raise ObjectFault(oid, state) from exc
        return _TYPES.get(int(kind), "unknown"), bytes(content)


def _read_all(fd: int) -> bytes:
    first = os.read(fd, 1 << 16)
    if len(first) < 1 << 16:
        return first
    chunks = [first]
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def tree_entries(content: bytes, oid: str) -> dict[str, tuple[str, str]]:
    """``{name: (mode, object id)}`` of a tree's content (``<mode> <name>\\0<20-byte id>``...)."""
    entries: dict[str, tuple[str, str]] = {}
    at = 0
    while at < len(content):
        space = content.find(b" ", at)
        nul = content.find(b"\0", space + 1)
        if space < 0 or nul < 0 or nul + 21 > len(content):
            raise ObjectFault(oid, "a malformed tree")
        name = content[space + 1 : nul].decode("utf-8", "replace")
        entries[name] = (
            content[at:space].decode("ascii", "replace"),
            content[nul + 1 : nul + 21].hex(),
        )
        at = nul + 21
    return entries


def commit_links(content: bytes, oid: str) -> tuple[str, list[str]]:
    """The tree id and parent ids of a commit's content."""
    header = content.split(b"\n\n", 1)[0].split(b"\n")
    trees = [line[5:].decode("ascii", "replace") for line in header if line.startswith(b"tree ")]
    parents = [
        line[7:].decode("ascii", "replace") for line in header if line.startswith(b"parent ")
    ]
    if len(trees) != 1:
        raise ObjectFault(oid, "a malformed commit (no tree)")
    return trees[0], parents


def read_path(objects: RawObjects, commit: str, *names: str) -> bytes:
    """The content of the file at ``names`` (a path) in ``commit``'s tree, every object verified."""
    tree, _ = commit_links(objects.read(commit, "commit"), commit)
    for name in names[:-1]:
        tree = _entry(objects, tree, name)
    return objects.read(_entry(objects, tree, names[-1]), "blob")


def _entry(objects: RawObjects, tree: str, name: str) -> str:
    entries = tree_entries(objects.read(tree, "tree"), tree)
    if name not in entries:
        raise ObjectFault(tree, f"a tree without {name}")
    return entries[name][1]
