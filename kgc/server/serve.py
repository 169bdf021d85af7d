"""Run the app under uvicorn: ``kgc serve`` (see ``kgc.cli_serve``).

Settings come from ``kgc.config.load_settings`` (docs/configuration.md: the configuration file,
the runbook's and ``KGC_*`` variables), with ``--host``/``--port`` above all. SIGTERM and SIGINT
stop accepting connections, end live receipt streams, let admitted writes finish (up to
``GRACE_S``), then close the engine (anchoring what is pending).
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kgc.config import load_settings
from kgc.errors import ConfigError
from kgc.server.settings import ServerSettings

logger = logging.getLogger(__name__)
GRACE_S = 10


def serve(config: Path | None = None, *, host: str | None = None, port: int | None = None) -> int:
    """Build the engine and the app, and serve until a signal; the exit status."""
    import uvicorn

    from kgc.engine import KnowledgeEngine
    from kgc.server.app import create_app
    from kgc.telemetry import configure_logging, configure_tracing

    # JSON lines from the first line on: settings warnings (BATCH_SIZE, TIMEOUT_MS) included.
    configure_logging("info")
    logging.captureWarnings(True)
    given: dict[str, object] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if config is not None:
        given["config_file"] = config
    engine_settings = load_settings(**given)
    settings = ServerSettings.from_settings(engine_settings)
    configure_logging(engine_settings.python_log_level)  # JSON lines, the runbook's messages
    configure_tracing(engine_settings)  # the OTLP exporter when observability is configured
    _check_listen(settings.host, settings.port)
    engine = KnowledgeEngine(engine_settings)
    try:
        app = create_app(engine, settings)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                log_config=None,  # uvicorn's lines go through kgc's JSON handler too
                access_log=False,
                timeout_graceful_shutdown=GRACE_S,
            )
        )
        app.state.kgc.shutting_down = lambda: server.should_exit
        _quiet_garbage_collector()
        if settings.port:
            logger.info("kgc serve starting on http://%s:%d", settings.host, settings.port)
        else:  # the kernel picks the port at bind; uvicorn's next line names it
            logger.info("kgc serve starting on http://%s, on a free port (port 0)", settings.host)
        with _signals_end_quietly():
            server.run()
    finally:
        engine.close()
    logger.info("kgc serve stopped")
    return 0


def _check_listen(host: str, port: int) -> None:
    """Refuse to start, naming the settings, when the address cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} (host, port: KGC_HOST, KGC_PORT or --host, --port): "
            f"{exc.strerror or exc}"
        ) from None


def _quiet_garbage_collector() -> None:
    """Keep full garbage collections short: they walk every tracked object, and the modules the
    server imports (rdflib, pySHACL, Starlette, OpenTelemetry) leave hundreds of thousands. A
    full collection took 25-35 ms, the whole p99 of a loaded server (measured with ``gc``
    callbacks under ``benchmarks/serve_http.py``). Freezing what exists at start-up moves it out
    of the collector's walks; what requests create is collected as before."""
    gc.collect()
    gc.freeze()


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
