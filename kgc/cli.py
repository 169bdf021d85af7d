"""The ``kgc`` command.

::

    kgc [--config FILE] COMMAND ...               (settings file: docs/configuration.md)
    kgc demo [--data FILE] [--lenient] [--changes N] [--seed S] [--lockchain DIR]
    kgc lockchain verify|prove|check-proof ...   (see kgc.cli_lockchain)
    kgc lockchain rebuild DIR --store PATH        (see kgc.cli_backup)
    kgc backup create|verify|restore ...          (see kgc.cli_backup)
    kgc policy list|validate|activate|deactivate|rollback|keygen|sign ...  (see kgc.cli_policy)
    kgc serve [--host ADDR] [--port PORT] [--config FILE]   (see kgc.server, docs/server.md)

Errors that the user can fix (a missing file, RDF that does not parse) print one line naming the
file, line and column, and exit with status 1; usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kgc import cli_backup, cli_lockchain, cli_policy, cli_serve
from kgc.cli_args import whole_number
from kgc.cli_progress import StatusLine
from kgc.config_sources import COMMAND_LINE_CONFIG
from kgc.errors import KGCError, RDFSyntaxError

_PROGRESS_FROM = 10_000
_REPLAY_EVERY = 100


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kgc", description="Knowledge Graph Control")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file, TOML or JSON (default: $KGC_CONFIG_FILE; docs/configuration.md)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="replay a governed change stream against a Brick building graph",
        description=(
            "Load a Brick building graph, register the demo policy, replay a seeded stream of "
            "valid and invalid changes, and print a summary. Exits 1 if the incremental state "
            "digest differs from the recomputed one or a change had an unexpected outcome."
        ),
    )
    demo.add_argument(
        "--data", type=Path, metavar="FILE", help="RDF file to load (default: the shipped building)"
    )
    demo.add_argument(
        "--lenient", action="store_true", help="accept some invalid RDF (bad IRIs) when parsing"
    )
    demo.add_argument(
        "--changes", type=whole_number(0), default=1000, metavar="N", help="default: 1000"
    )
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="default: 0")
    demo.add_argument(
        "--lockchain",
        type=Path,
        metavar="DIR",
        help="seal, sign, journal and anchor every receipt in DIR (new or empty)",
    )
    cli_lockchain.add_commands(commands)
    cli_backup.add_commands(commands)
    cli_policy.add_commands(commands)
    cli_serve.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = COMMAND_LINE_CONFIG.set(args.config)
    try:
        return _run(args)
    finally:
        COMMAND_LINE_CONFIG.reset(token)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "backup":
            return cli_backup.run(args)
        if args.command == "policy":
            return cli_policy.run(args)
        if args.command == "serve":
            return cli_serve.run(args)
        return cli_lockchain.run(args) if args.command == "lockchain" else _demo(args)
    except RDFSyntaxError as exc:
        hint = " (--lenient accepts some invalid RDF)" if exc.line and not args.lenient else ""
        return _fail(args, f"{exc}{hint}")
    except KGCError as exc:
        return _fail(args, str(exc))
    except KeyboardInterrupt:
        print(f"kgc {args.command}: interrupted", file=sys.stderr)
        return 130


def _fail(args: argparse.Namespace, message: str) -> int:
    print(f"kgc {args.command}: error: {message}", file=sys.stderr)
    return 1


def _demo(args: argparse.Namespace) -> int:
    from kgc.demo.report import format_report
    from kgc.demo.runner import run_demo

    if args.data is not None and args.data.is_dir():
        return _fail(args, f"{args.data}: is a directory, not an RDF file")
    progress = _Progress(sys.stderr)
    report = run_demo(
        args.data,
        lenient=args.lenient,
        changes=args.changes,
        seed=args.seed,
        progress=progress.loading,
        replay_progress=progress.replaying,
        lockchain=args.lockchain,
    )
    progress.close()
    print(format_report(report))
    return 0 if report.digest_matches and not report.replay.unexpected else 1


class _Progress(StatusLine):
    """Progress on stderr: loads of 10,000 triples or more, and the replay on a terminal."""

    def loading(self, triples: int) -> None:
        if triples >= _PROGRESS_FROM:
            self.show(f"loading: {triples:,} triples read")

    def replaying(self, done: int, total: int) -> None:
        if self.tty and (done % _REPLAY_EVERY == 0 or done == total):
            self.show(f"replaying: {done:,}/{total:,} changes")
