"""Unpacking a pack archive (``.tar.gz``, ``.tgz``, ``.zip``) into a directory, safely.

Members are read and written one by one by this module (never ``extractall``). Refused, with a
``PackIntegrityError`` naming the archive and the member, before anything is written:

- absolute names, ``..`` segments, backslashes, or names that repeat;
- anything that is not a regular file or a directory (links, devices, FIFOs);
- more than ``MAX_MEMBERS`` members, a member over ``MAX_FILE_BYTES``, or more than
  ``MAX_TOTAL_BYTES`` in all (sizes as the archive declares them, then checked while reading).

The pack may sit at the archive's root or inside one top-level directory.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import IO, TypeVar

from kgc.errors import PackIntegrityError, PolicyPackError
from kgc.policy.manifest import MANIFEST_NAMES, check_pack_path

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
MAX_MEMBERS = 1_000
MAX_FILE_BYTES = 10 * 2**20
MAX_TOTAL_BYTES = 50 * 2**20
_T = TypeVar("_T")
Opener = Callable[[], AbstractContextManager[IO[bytes]]]


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack(archive: Path, target: Path) -> Path:
    """Write the archive's files below ``target`` (an empty directory); return the pack root."""
    with ExitStack() as stack:
        files = list(_members(archive, stack))
        if sum(size for _, size, _ in files) > MAX_TOTAL_BYTES:
            raise PackIntegrityError(f"{archive}: more than {MAX_TOTAL_BYTES} bytes unpacked")
        for name, size, opener in files:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            with opener() as source, destination.open("xb") as out:
                _copy(source, out, size, f"{archive}: {name}")
    return _pack_root(archive, target)


def _members(archive: Path, stack: ExitStack) -> Iterator[tuple[str, int, Opener]]:
    if archive.name.lower().endswith(".zip"):
        yield from _zip_members(archive, stack)
    else:
        yield from _tar_members(archive, stack)


def _tar_members(archive: Path, stack: ExitStack) -> Iterator[tuple[str, int, Opener]]:
    try:
        tar = stack.enter_context(tarfile.open(archive, "r:gz"))  # noqa: SIM115 (the stack closes it)
        members = tar.getmembers()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise PolicyPackError(f"{archive}: not a readable .tar.gz archive ({exc})") from exc
    seen: set[str] = set()
    for member in _limited(archive, members):
        if member.isdir():
            _name(archive, member.name, seen)
            continue
        if not member.isfile():
            raise PackIntegrityError(
                f"{archive}: {member.name} is a link or special file; packs hold regular files"
            )
        name = _name(archive, member.name, seen)
        yield name, _size(archive, name, member.size), _tar_opener(tar, member)


def _tar_opener(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Opener:
    @contextmanager
    def opener() -> Iterator[IO[bytes]]:
        handle = tar.extractfile(member)
        assert handle is not None  # a regular file always has a handle
        with handle:
            yield handle

    return opener


def _zip_members(archive: Path, stack: ExitStack) -> Iterator[tuple[str, int, Opener]]:
    try:
        zipped = stack.enter_context(zipfile.ZipFile(archive))
        infos = zipped.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise PolicyPackError(f"{archive}: not a readable .zip archive ({exc})") from exc
    seen: set[str] = set()
    for info in _limited(archive, infos):
        kind = (info.external_attr >> 16) & 0o170000  # Unix file type; 0 when not recorded
        if kind and not (kind == 0o100000 or info.is_dir()):
            raise PackIntegrityError(
                f"{archive}: {info.filename} is a link or special file; packs hold regular files"
            )
        name = _name(archive, info.filename.rstrip("/"), seen)
        if info.is_dir():
            continue
        yield name, _size(archive, name, info.file_size), _zip_opener(zipped, info)


def _zip_opener(zipped: zipfile.ZipFile, info: zipfile.ZipInfo) -> Opener:
    return lambda: zipped.open(info)


def _limited(archive: Path, members: list[_T]) -> list[_T]:
    if len(members) > MAX_MEMBERS:
        raise PackIntegrityError(f"{archive}: more than {MAX_MEMBERS} members")
    return members


def _name(archive: Path, name: str, seen: set[str]) -> str:
    clean = name.removeprefix("./")
    try:
        check_pack_path(clean)
    except ValueError as exc:
        raise PackIntegrityError(f"{archive}: member {name!r}: {exc}") from None
    if clean in seen:
        raise PackIntegrityError(f"{archive}: member {name!r} appears twice")
    seen.add(clean)
    return clean


def _size(archive: Path, name: str, size: int) -> int:
    if size > MAX_FILE_BYTES:
        raise PackIntegrityError(f"{archive}: {name} is larger than {MAX_FILE_BYTES} bytes")
    return size


def _copy(source: IO[bytes], out: IO[bytes], size: int, where: str) -> None:
    # The declared size bounds what is read, so a lying header cannot make a member grow.
    data = source.read(size + 1)
    if len(data) != size:
        raise PackIntegrityError(f"{where}: holds {len(data)} bytes, the archive says {size}")
    out.write(data)


def _pack_root(archive: Path, target: Path) -> Path:
    if any((target / name).exists() for name in MANIFEST_NAMES):
        return target
    entries = list(target.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    raise PolicyPackError(f"{archive}: no pack.toml at its root or in one top-level directory")


def make_archive(root: str | os.PathLike[str], archive: str | os.PathLike[str]) -> Path:
    """Write the pack directory ``root`` as a ``.tar.gz`` with a top-level directory."""
    source, out = Path(root), Path(archive)
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=f"{source.name}/{path.relative_to(source).as_posix()}")
    return out
