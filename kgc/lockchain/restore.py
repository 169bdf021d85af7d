"""Checking a backup archive and restoring it (the archive format is in ``kgc.lockchain.backup``).

``verify_backup`` trusts nothing in the archive but its manifest's own claims, and checks those:

1. it is a gzip tar archive with a ``manifest.json`` of the right format;
2. every file member is listed in the manifest with its sha256, every listed file is present, and
   nothing else is (no links, devices or paths outside the archive's three sections);
3. the lockchain inside verifies (``verify_lockchain``: journal links, hashes and signatures, and
   the git anchor and its witness when there is one);
4. journal recovery of the store snapshot reaches the state digest of the last committed receipt,
   which is also what the manifest recorded, at the sequence number it recorded.

What this does not prove: that the receipts describe what the application meant. A manifest can be
rewritten along with the members it hashes; the signed receipts and the git anchor are what a
third party should check (``kgc lockchain verify``).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kgc.errors import BackupCorrupt, BackupError, KGCError
from kgc.lockchain.backup import MANIFEST, SECTIONS, Manifest, file_sha256
from kgc.lockchain.journal import JOURNAL_FILE
from kgc.lockchain.rebuild import (
    Recovered,
    check_target,
    checked_receipts,
    clear_target,
    drop_lock_files,
    recover_dirs,
)
from kgc.lockchain.verify import verify_lockchain

_DAMAGED = (tarfile.TarError, OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class Verified:
    archive: Path
    manifest: Manifest
    recovered: Recovered
    receipts: int
    anchored: int


@dataclass(frozen=True)
class Restored:
    archive: Path
    manifest: Manifest
    recovered: Recovered
    config: Path | None


def verify_backup(archive: str | os.PathLike[str]) -> Verified:
    """Check ``archive`` as the module docstring says; raise ``BackupCorrupt`` naming the fault."""
    path = Path(archive)
    where = str(path)
    with open_archive(path) as tar, tempfile.TemporaryDirectory(prefix="kgc-verify-") as tmp:
        manifest = read_manifest(tar, where)
        root = Path(tmp)
        extract_checked(tar, manifest, root, where)
        receipts, anchored = _check_chain(root / "lockchain", where)
        recovered = _recover(root, where)
        _check_claims(manifest, recovered, where)
    return Verified(path, manifest, recovered, receipts, anchored)


def restore_backup(
    archive: str | os.PathLike[str],
    store: str | os.PathLike[str],
    lockchain: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Restored:
    """Restore ``archive`` into ``store`` and ``lockchain`` (and ``config``), then recover.

    Non-empty targets are refused (``RestoreRefused``) unless ``force``; nothing is touched until
    every member has been checked against the manifest. The configuration, if the archive has one,
    is restored as ``config`` (a file or a directory, as it was backed up).
    """
    path = Path(archive)
    where = str(path)
    targets = {"store": Path(store), "lockchain": Path(lockchain)}
    if config is not None:
        targets["config"] = Path(config)
    for section, target in targets.items():
        check_target(target, section, force=force)
    parent = targets["store"].absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    with open_archive(path) as tar, tempfile.TemporaryDirectory(dir=parent, prefix=".kgc-") as tmp:
        manifest = read_manifest(tar, where)
        root = Path(tmp)
        extract_checked(tar, manifest, root, where)
        restored_config = _place(root, targets, where)
    recovered = recover_dirs(targets["store"], targets["lockchain"])
    drop_lock_files(targets["lockchain"])
    return Restored(path, manifest, recovered, restored_config)


def extract_checked(tar: tarfile.TarFile, manifest: Manifest, dest: Path, where: str) -> None:
    """Extract every member into ``dest``, checking each against the manifest (step 2)."""
    seen: set[str] = set()
    try:
        for member in tar:
            if member.name == MANIFEST:
                continue
            _check_member(member, manifest, where)
            tar.extract(member, dest, filter="data")
            if member.isfile():
                _check_hash(dest / member.name, member.name, manifest, where)
                seen.add(member.name)
    except tarfile.FilterError as exc:
        raise BackupCorrupt(f"{where}: refused member: {exc}") from exc
    except _DAMAGED as exc:
        raise BackupCorrupt(f"{where}: the archive is truncated or damaged ({exc})") from exc
    missing = sorted(set(manifest.members) - seen)
    if missing:
        raise BackupCorrupt(f"{where}: member {missing[0]} is in the manifest but not the archive")


def _check_member(member: tarfile.TarInfo, manifest: Manifest, where: str) -> None:
    name = member.name
    if name.split("/")[0] not in SECTIONS:
        raise BackupCorrupt(f"{where}: unexpected member {name} (not under {', '.join(SECTIONS)})")
    if not (member.isfile() or member.isdir()):
        raise BackupCorrupt(f"{where}: member {name} is not a regular file or directory")
    if member.isfile() and name not in manifest.members:
        raise BackupCorrupt(f"{where}: member {name} is not listed in the manifest")


def _check_hash(path: Path, name: str, manifest: Manifest, where: str) -> None:
    actual, expected = file_sha256(path), manifest.members[name]
    if actual != expected:
        raise BackupCorrupt(
            f"{where}: member {name} has sha256 {actual}, but the manifest says {expected}"
        )


def _check_chain(chain_dir: Path, where: str) -> tuple[int, int]:
    """Verify the archived lockchain; return (receipts, receipts anchored in git)."""
    try:
        receipts = len(checked_receipts(chain_dir / JOURNAL_FILE))
        report = verify_lockchain(chain_dir)
        report.raise_for_problems()
    except KGCError as exc:
        raise BackupCorrupt(f"{where}: the archived lockchain does not verify: {exc}") from exc
    return receipts, report.anchored_seq


def _recover(root: Path, where: str) -> Recovered:
    try:
        return recover_dirs(root / "store", root / "lockchain")
    except KGCError as exc:
        raise BackupCorrupt(f"{where}: the archived store does not recover: {exc}") from exc


def _check_claims(manifest: Manifest, recovered: Recovered, where: str) -> None:
    if recovered.last_seq != manifest.last_seq:
        raise BackupCorrupt(
            f"{where}: the journal ends at seq {recovered.last_seq}, but the manifest says "
            f"{manifest.last_seq}"
        )
    if recovered.state != manifest.state_digest:
        raise BackupCorrupt(
            f"{where}: the recovered store has state digest {recovered.state}, but the manifest "
            f"says {manifest.state_digest}"
        )


def _place(root: Path, targets: dict[str, Path], where: str) -> Path | None:
    """Move the extracted sections onto their targets; return where the configuration went."""
    if not (root / "store").is_dir() or not (root / "lockchain").is_dir():
        raise BackupCorrupt(f"{where}: the archive has no store/ or no lockchain/ section")
    for section in ("store", "lockchain"):
        clear_target(targets[section])
        targets[section].parent.mkdir(parents=True, exist_ok=True)
        shutil.move(root / section, targets[section])
    saved = sorted((root / "config").iterdir()) if (root / "config").is_dir() else []
    if "config" not in targets or len(saved) != 1:
        return None
    clear_target(targets["config"])
    targets["config"].parent.mkdir(parents=True, exist_ok=True)
    shutil.move(saved[0], targets["config"])
    return targets["config"]


@contextmanager
def open_archive(archive: str | os.PathLike[str]) -> Iterator[tarfile.TarFile]:
    """Open a backup archive for reading, turning every way it can fail into a ``BackupError``."""
    path = Path(archive)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup archive")
    try:
        tar = tarfile.open(path, "r:gz")  # noqa: SIM115 (closed below, after the yield)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupCorrupt(f"{path}: not a gzip-compressed tar archive ({exc})") from exc
    with tar:
        yield tar


def read_manifest(tar: tarfile.TarFile, where: str) -> Manifest:
    try:
        handle = tar.extractfile(MANIFEST)
    except KeyError:
        raise BackupCorrupt(f"{where}: no {MANIFEST} in the archive") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupCorrupt(f"{where}: the archive is truncated or damaged ({exc})") from exc
    if handle is None:
        raise BackupCorrupt(f"{where}: {MANIFEST} is not a regular file")
    return Manifest.from_json(handle.read(), where)


def describe(manifest: Manifest) -> dict[str, Any]:
    """The manifest without its member list, for printing."""
    data = asdict(manifest)
    data["members"] = len(manifest.members)
    return data
