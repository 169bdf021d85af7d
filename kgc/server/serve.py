"""Run the app under uvicorn: ``kgc serve`` (see ``kgc.cli_serve``).

Settings come from, in rising precedence: a TOML ``--config`` file (flat keys named like the
settings: ``port = 3000``, ``store_path = "/data/store"``), ``KGC_*`` environment variables, the
command line. SIGTERM and SIGINT stop accepting connections, end live receipt streams, let
admitted writes finish (up to ``GRACE_S``), then close the engine (anchoring what is pending).
"""

from __future__ import annotations

import logging
import os
import signal
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kgc.config import Settings, load_settings
from kgc.errors import ConfigError
from kgc.server.settings import ServerSettings, load_server_settings

logger = logging.getLogger(__name__)
GRACE_S = 10


def read_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The engine's and the server's settings from a TOML file, each without what the environment
    sets (the environment wins over the file)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    engine_fields, server_fields = set(Settings.model_fields), set(ServerSettings.model_fields)
    unknown = sorted(set(data) - engine_fields - server_fields)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    fresh = {k: v for k, v in data.items() if f"KGC_{k.upper()}" not in os.environ}
    return (
        {k: v for k, v in fresh.items() if k in engine_fields},
        {k: v for k, v in fresh.items() if k in server_fields},
    )


def serve(config: Path | None = None, *, host: str | None = None, port: int | None = None) -> int:
    """Build the engine and the app, and serve until a signal; the exit status."""
    import uvicorn

    from kgc.engine import KnowledgeEngine
    from kgc.server.app import create_app

    engine_values, server_values = read_config(config) if config else ({}, {})
    server_values.update({k: v for k, v in (("host", host), ("port", port)) if v is not None})
    settings = load_server_settings(**server_values)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    engine = KnowledgeEngine(load_settings(**engine_values))
    try:
        app = create_app(engine, settings)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                access_log=False,
                timeout_graceful_shutdown=GRACE_S,
            )
        )
        app.state.kgc.shutting_down = lambda: server.should_exit
        logger.info("kgc serve on http://%s:%d", settings.host, settings.port)
        with _signals_end_quietly():
            server.run()
    finally:
        engine.close()
    logger.info("kgc serve stopped")
    return 0


@contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """Uvicorn handles SIGTERM/SIGINT, then re-raises them to the handlers it found. With the
    default handlers that kills the process before the engine is closed (pending anchors lost);
    these handlers let ``serve`` return, close the engine and exit 0."""
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: object) -> None:
    logger.info("kgc serve: signal %d, stopping", signum)
