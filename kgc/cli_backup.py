"""``kgc backup`` and ``kgc lockchain rebuild``: the runbook's backup and recovery scripts.

::

    kgc backup create --store PATH --lockchain DIR [--config FILE_OR_DIR] --out DIR
                      [--keep N] [--max-age-days D]
    kgc backup verify FILE
    kgc backup restore FILE --store PATH --lockchain DIR [--config DEST] [--force]
    kgc lockchain rebuild DIR --store PATH [--force]

Each prints what it did on stdout and exits 0, or prints one line naming the fault on stderr and
exits 1. The work is done by ``kgc.lockchain.backup``, ``.restore`` and ``.rebuild``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kgc.cli_args import whole_number

_MB = 1024 * 1024


def add_commands(commands: Any) -> None:
    """Add ``backup`` and its actions to the ``kgc`` command's subparsers."""
    backup = commands.add_parser(
        "backup",
        help="back up, check and restore a store, its lockchain and configuration",
        description="Archive a consistent store snapshot with its lockchain and configuration "
        "(tar.gz with a manifest of sha256 digests), check an archive, restore one.",
    )
    actions = backup.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="write kgc-backup-YYYYmmdd-HHMMSS.tar.gz")
    _targets(create, config_help="a configuration file or directory to include")
    create.add_argument("--out", type=Path, required=True, metavar="DIR", help="backup directory")
    create.add_argument("--keep", type=whole_number(1), metavar="N", help="keep the newest N")
    create.add_argument(
        "--max-age-days", type=_days, metavar="D", help="delete backups older than D days"
    )

    verify = actions.add_parser("verify", help="check hashes, the lockchain and the recovery")
    verify.add_argument("file", type=Path, metavar="FILE")

    restore = actions.add_parser("restore", help="restore an archive, then run recovery")
    restore.add_argument("file", type=Path, metavar="FILE")
    _targets(restore, config_help="where to restore the configuration, if the archive has one")
    restore.add_argument("--force", action="store_true", help="replace non-empty targets")


def add_lockchain_actions(actions: Any) -> None:
    """Add ``rebuild`` to the actions of ``kgc lockchain``."""
    rebuild = actions.add_parser(
        "rebuild", help="rebuild the graph from the lockchain alone, prove it matches"
    )
    rebuild.add_argument("directory", type=Path, metavar="DIR")
    rebuild.add_argument("--store", type=Path, required=True, metavar="PATH", help="new store")
    rebuild.add_argument("--force", action="store_true", help="replace a non-empty store")


def _targets(parser: argparse.ArgumentParser, *, config_help: str) -> None:
    parser.add_argument("--store", type=Path, required=True, metavar="PATH", help="store dir")
    parser.add_argument("--lockchain", type=Path, required=True, metavar="DIR", help="lockchain")
    parser.add_argument("--config", type=Path, metavar="PATH", help=config_help)


def run(args: argparse.Namespace) -> int:
    """Run ``kgc backup ACTION``; ``KGCError`` is left to the caller, ``OSError`` is reported."""
    action = {"create": _create, "verify": _verify, "restore": _restore}[args.action]
    return _guarded(action, args)


def rebuild(args: argparse.Namespace) -> int:
    return _guarded(_rebuild, args)


def _guarded(action: Any, args: argparse.Namespace) -> int:
    try:
        code: int = action(args)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kgc {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return code


def _create(args: argparse.Namespace) -> int:
    from kgc.lockchain.backup import create_backup

    result = create_backup(
        args.store,
        args.lockchain,
        args.out,
        config=args.config,
        keep=args.keep,
        max_age_days=args.max_age_days,
    )
    manifest = result.manifest
    size = result.path.stat().st_size / _MB
    how = "checkpoint" if manifest.store_snapshot == "checkpoint" else "export (store in use)"
    print(f"backup {result.path} ({len(manifest.members)} files, {size:.1f} MB)")
    print(f"  store:      {how}")
    print(f"  lockchain:  up to receipt {manifest.last_seq}, state {manifest.state_digest}")
    for path in result.removed:
        print(f"  removed:    {path.name} (retention)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from kgc.lockchain.restore import verify_backup

    checked = verify_backup(args.file)
    print(f"backup {checked.archive}: ok")
    print(f"  members:    {len(checked.manifest.members)} files match the manifest")
    print(f"  lockchain:  {checked.receipts} receipts verify ({checked.anchored} anchored in git)")
    print(
        f"  state:      {checked.recovered.state} after recovery, equal to receipt "
        f"{checked.recovered.last_seq}'s"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from kgc.lockchain.restore import restore_backup

    done = restore_backup(
        args.file, args.store, args.lockchain, config=args.config, force=args.force
    )
    recovered = done.recovered
    print(f"restored {done.archive} into {args.store} and {args.lockchain}")
    if done.config is not None:
        print(f"  config:     {done.config}")
    elif args.config is not None:
        print("  config:     the archive holds no configuration; nothing restored there")
    print(f"  state digest:            {recovered.state}")
    print(f"  last committed receipt:  {recovered.expected} (journal ends at {recovered.last_seq})")
    print("  match" if recovered.matches else "  MISMATCH")
    return 0 if recovered.matches else 1


def _rebuild(args: argparse.Namespace) -> int:
    from kgc.lockchain.rebuild import rebuild_from_lockchain

    if not args.directory.is_dir():
        print(f"kgc lockchain: error: {args.directory}: no such directory", file=sys.stderr)
        return 1
    rebuilt = rebuild_from_lockchain(args.directory, args.store, force=args.force)
    print(
        f"rebuilt {rebuilt.store} from the {rebuilt.source} of {args.directory}: "
        f"{rebuilt.last_seq} receipts, {rebuilt.committed} committed, {rebuilt.quads} quads"
    )
    print(f"  state digest of the rebuilt store:  {rebuilt.state}")
    print(f"  last committed receipt says:        {rebuilt.expected}")
    print("  match" if rebuilt.matches else "  MISMATCH")
    return 0 if rebuilt.matches else 1


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected zero or more days, got {value}")
    return value
