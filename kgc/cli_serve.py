"""``kgc serve``: the HTTP sidecar (needs the ``server`` extra: starlette, uvicorn)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kgc.cli_args import whole_number


def add_commands(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve transactions, receipts and SPARQL over HTTP",
        description=(
            "Run the kgc HTTP server (docs/server.md). Settings come from KGC_* variables, "
            "--config, and these options (highest precedence)."
        ),
    )
    serve.add_argument("--host", metavar="ADDR", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=whole_number(0), metavar="PORT", help="TCP port (default: 3000)"
    )
    serve.add_argument(
        "--config",
        dest="serve_config",
        type=Path,
        metavar="FILE",
        help="settings file, TOML or JSON (as kgc --config; docs/configuration.md)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        from kgc.server.serve import serve
    except ModuleNotFoundError as exc:
        from kgc.errors import ConfigError

        raise ConfigError(
            f"kgc serve needs the server extra ({exc.name} is missing): from the kgc checkout, "
            "pip install -e '.[server]'"
        ) from exc
    return serve(args.serve_config, host=args.host, port=args.port)
