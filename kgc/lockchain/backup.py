"""Backups: a store snapshot, the lockchain and the configuration in one verifiable tar.gz.

An archive ``kgc-backup-YYYYmmdd-HHMMSS.tar.gz`` (UTC; ``-N`` is appended on a clash) holds::

    manifest.json   format, kgc version, time, last seq, state digest, sha256 of every file
    store/          a pyoxigraph store
    lockchain/      the lockchain directory: journal.jsonl, git/, ... (lock files left out)
    config/         the configuration file or directory, when one was given

Consistency comes from order, not from stopping the writer: the store is snapshotted first and the
journal copied last, so the journal holds every transaction the snapshot holds, perhaps more, and
perhaps one in flight. Restoring and running journal recovery (replay the receipts the store lacks,
undo an unsealed intent, drop staged delta graphs) reaches the state of the archive's last committed
receipt, whose ``state_after`` the manifest records; ``verify_backup`` checks exactly that.

How the store is snapshotted (``snapshot_store``):

- an open ``OxigraphStore`` (in-process, e.g. ``engine.store``): a RocksDB checkpoint of it
  (``pyoxigraph.Store.backup``), an atomic point-in-time copy, hard-linked where it can be;
- a path no process has open: opened read-write and checkpointed the same way;
- a path another process has open (its RocksDB ``LOCK`` is held): every quad is copied from a
  read-only view into a new store ("export"). A checkpoint of a read-only view is not usable: it
  silently leaves out what is still only in the write-ahead log (an empty store, in our trials), and
  pyoxigraph calls read-only opening beside a live writer undefined. The view replays the writer's
  log as it stands, which in practice is a prefix of its writes, and recovery from any prefix is
  sound; ``create_backup`` does not trust it, though: it recovers a copy of what it archived and
  refuses to write the archive unless the result matches the last committed receipt.

The lockchain's files are copied in this order: the anchor witness and git refs, then git objects,
then the journal; an anchorer running meanwhile can still leave a ref or witness line newer than the
objects copied, so back up with the writer stopped, or in process, when the git anchor must verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyoxigraph as ox

from kgc.errors import BackupCorrupt, BackupError
from kgc.lockchain.journal import JOURNAL_FILE, LOCK_FILE, fsync_dir
from kgc.lockchain.layout import LOCK_FILE as ANCHOR_LOCK_FILE
from kgc.lockchain.layout import WITNESS_FILE
from kgc.lockchain.rebuild import drop_lock_files, journal_head, recover_dirs
from kgc.store.oxigraph import OxigraphStore

FORMAT = "kgc-backup/1"
MANIFEST = "manifest.json"
SECTIONS = ("store", "lockchain", "config")
NAME_RE = re.compile(r"kgc-backup-\d{8}-\d{6}(?:-\d+)?\.tar\.gz")
_SKIPPED = {LOCK_FILE, ANCHOR_LOCK_FILE}
_EXPORT_TRIES = 3
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says; ``members`` maps each file's archive path to its sha256."""

    format: str
    kgc_version: str
    created: str
    store_snapshot: str
    last_seq: int
    state_digest: str
    members: dict[str, str]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            fields = json.loads(data)
            manifest = cls(**fields)
        except (ValueError, TypeError) as exc:
            raise BackupCorrupt(
                f"{where}: {MANIFEST} is not a kgc backup manifest ({exc})"
            ) from exc
        if manifest.format != FORMAT or not isinstance(manifest.members, dict):
            raise BackupCorrupt(f"{where}: {MANIFEST} has format {manifest.format!r}, not {FORMAT}")
        return manifest


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    removed: tuple[Path, ...]


def create_backup(
    store: str | os.PathLike[str] | OxigraphStore,
    lockchain: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    keep: int | None = None,
    max_age_days: float | None = None,
) -> BackupResult:
    """Archive ``store``, ``lockchain`` and ``config`` into ``out``; then apply retention.

    1. snapshot the store (see the module docstring for how);
    2. copy the lockchain, the journal last, and the configuration;
    3. run journal recovery on the staged copy: it must reach the last committed receipt's state
       (``RecoveryError`` otherwise), and the archive then holds a store already at that state;
    4. write the archive under a temporary name, fsync it, and rename it into place;
    5. delete older kgc backups beyond ``keep`` or older than ``max_age_days``, never this one.
    """
    chain_dir, out_dir = Path(lockchain), Path(out)
    _check_retention(keep, max_age_days)
    if not (chain_dir / JOURNAL_FILE).is_file():
        raise BackupError(f"{chain_dir}: not a lockchain directory (no {JOURNAL_FILE})")
    if config is not None and not Path(config).exists():
        raise BackupError(f"{config}: configuration file or directory not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".kgc-backup-") as tmp:
        staging = Path(tmp) / "staging"
        method = snapshot_store(store, staging / "store")
        copy_lockchain(chain_dir, staging / "lockchain")
        if config is not None:
            _copy_any(Path(config), staging / "config" / Path(config).name)
        _recover_staged(staging)
        manifest = _manifest(staging, method)
        path = _write_archive(staging, manifest, out_dir)
    removed = prune_backups(out_dir, keep=keep, max_age_days=max_age_days, protect=path)
    return BackupResult(path, manifest, tuple(removed))


# 1. The store -------------------------------------------------------------------------------


def snapshot_store(store: str | os.PathLike[str] | OxigraphStore, dest: Path) -> str:
    """Copy ``store`` into a new store at ``dest``; return how: ``checkpoint`` or ``export``."""
    if isinstance(store, OxigraphStore):
        if store.path is None:
            raise BackupError(
                "an in-memory store cannot be backed up; give the engine a store_path"
            )
        _checkpoint(store.raw, dest)
        return "checkpoint"
    path = Path(store)
    if not (path / "CURRENT").is_file():
        raise BackupError(f"{path}: not a pyoxigraph store directory (no CURRENT file)")
    try:
        live = ox.Store(str(path))
    except OSError as exc:
        if "lock" not in str(exc).lower():
            raise BackupError(f"cannot open store {path}: {exc}") from exc
        _export(path, dest)
        return "export"
    _checkpoint(live, dest)
    return "checkpoint"


def _checkpoint(store: ox.Store, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        store.backup(str(dest))
    except OSError as exc:
        raise BackupError(f"store checkpoint into {dest} failed: {exc}") from exc


def _export(path: Path, dest: Path) -> None:
    """Copy a store another process has open, quad by quad, from a read-only view."""
    for attempt in range(1, _EXPORT_TRIES + 1):
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        try:
            view = ox.Store.read_only(str(path))
            copy = ox.Store(str(dest))
            copy.bulk_extend(view)
            copy.flush()
            return
        except OSError as exc:
            if attempt == _EXPORT_TRIES:
                raise BackupError(f"cannot read store {path} while it is in use: {exc}") from exc
            time.sleep(0.05 * attempt)


# 2. The lockchain and the configuration -----------------------------------------------------


def copy_lockchain(src: Path, dest: Path) -> None:
    """Copy a lockchain directory, lock files left out, in the order the module doc gives."""
    entries = sorted(_walk(src), key=lambda p: (_copy_rank(p.relative_to(src)), str(p)))
    for entry in entries:
        target = dest / entry.relative_to(src)
        if entry.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif entry.name == JOURNAL_FILE and entry.parent == src:
            _copy_complete_lines(entry, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry, target)
    dest.mkdir(parents=True, exist_ok=True)


def _walk(root: Path) -> Iterator[Path]:
    for entry in root.rglob("*"):
        if entry.is_symlink():
            raise BackupError(f"{entry}: symbolic links are not backed up")
        if entry.is_dir() or (entry.is_file() and entry.name not in _SKIPPED):
            yield entry


def _copy_rank(relative: Path) -> int:
    # An anchorer moves the ref, then appends its witness line, and writes objects before both;
    # copying witness, refs, objects, journal in that order sees each no newer than the next.
    if relative.parts == (WITNESS_FILE,):
        return 0
    if relative.parts == (JOURNAL_FILE,):
        return 3
    return 2 if "objects" in relative.parts else 1


def _copy_complete_lines(src: Path, dest: Path) -> None:
    """Copy a journal up to its last newline: a torn last record was never acknowledged."""
    data = src.read_bytes()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data[: data.rfind(b"\n") + 1])


def _copy_any(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=False)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)


# 3-4. Recovery, the manifest and the archive -----------------------------------------------


def _recover_staged(staging: Path) -> None:
    recovered = recover_dirs(staging / "store", staging / "lockchain")
    drop_lock_files(staging / "lockchain")
    if not recovered.matches:  # TransactionManager refuses first; this is a second guard
        raise BackupError(
            f"the store snapshot recovers to state {recovered.state}, but the journal's last "
            f"committed receipt says {recovered.expected}"
        )


def _manifest(staging: Path, method: str) -> Manifest:
    from kgc import __version__

    members = {
        path.relative_to(staging).as_posix(): file_sha256(path)
        for path in sorted(staging.rglob("*"))
        if path.is_file()
    }
    last_seq, state = journal_head(staging / "lockchain" / JOURNAL_FILE)
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Manifest(FORMAT, __version__, created, method, last_seq, state, members)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_archive(staging: Path, manifest: Manifest, out: Path) -> Path:
    path = _free_name(out)
    partial = out / f".{path.name}.partial"
    with tarfile.open(partial, "w:gz") as tar:
        _add_bytes(tar, MANIFEST, manifest.to_json())
        for entry in sorted(staging.rglob("*")):
            tar.add(entry, arcname=entry.relative_to(staging).as_posix(), recursive=False)
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)
    fsync_dir(out)
    return path


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    with tempfile.SpooledTemporaryFile() as handle:
        handle.write(data)
        handle.seek(0)
        tar.addfile(info, handle)


def _free_name(out: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path, n = out / f"kgc-backup-{stamp}.tar.gz", 0
    while path.exists():
        n += 1
        path = out / f"kgc-backup-{stamp}-{n}.tar.gz"
    return path


# 5. Retention -------------------------------------------------------------------------------


def prune_backups(
    out: str | os.PathLike[str],
    *,
    keep: int | None = None,
    max_age_days: float | None = None,
    protect: Path | None = None,
    now: float | None = None,
) -> list[Path]:
    """Delete kgc backups in ``out`` beyond the newest ``keep`` or older than ``max_age_days``.

    Only files named like ``kgc-backup-YYYYmmdd-HHMMSS.tar.gz`` are considered. Age is by
    modification time (as ``find -mtime`` sees it); for ``keep``, ``protect`` (the backup just
    made) counts first, then the others newest first. ``protect`` is never deleted.
    """
    _check_retention(keep, max_age_days)
    now = time.time() if now is None else now
    backups = sorted(
        (p for p in Path(out).iterdir() if p.is_file() and NAME_RE.fullmatch(p.name)),
        key=lambda p: (p == protect, p.stat().st_mtime, p.name),
        reverse=True,
    )
    doomed = set(backups[keep:]) if keep is not None else set()
    if max_age_days is not None:
        cutoff = now - max_age_days * 86_400
        doomed |= {p for p in backups if p.stat().st_mtime < cutoff}
    if protect is not None:
        doomed.discard(protect)
    for path in sorted(doomed):
        path.unlink()
    return sorted(doomed)


def _check_retention(keep: int | None, max_age_days: float | None) -> None:
    if keep is not None and keep < 1:
        raise BackupError(f"keep must be at least 1 (the new backup), got {keep}")
    if max_age_days is not None and max_age_days < 0:
        raise BackupError(f"max_age_days must not be negative, got {max_age_days}")
