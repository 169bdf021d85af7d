"""JSON-lines logs for the sidecar: ``JsonFormatter`` and ``configure_logging``.

One JSON object per line: ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``,
``message``, then every field the call passed in ``extra`` (``actor``, ``receipt_id``, ``hook``,
``latency_ms``...), ``trace_id``/``span_id`` when a recording span is current, and
``exception`` with the traceback when there is one. Messages keep the phrases the runbook greps
for: ``Transaction failed``, ``Hook execution failed``, ``High latency``, ``Memory usage``.

The library never installs handlers (STYLE habit 10): only ``kgc serve`` and the CLI call
``configure_logging``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

from kgc.errors import ConfigError

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
    # uvicorn's copy of its message with ANSI colour codes, for terminals: noise in JSON.
    | {"color_message"}
)
LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (fields in the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        current = trace.get_current_span()
        context = current.get_span_context()
        if context.is_valid and "trace_id" not in entry:
            # The trace id correlates lines with the caller's trace even when it was not
            # sampled; a span id is only worth logging for a span that will be exported.
            entry["trace_id"] = format(context.trace_id, "032x")
            if current.is_recording():
                entry["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate quoted from a request: escape it
            line = line.encode("utf-8", "backslashreplace").decode("utf-8")
        return line


def parse_level(level: str | int) -> int:
    """A logging level from ``LOG_LEVEL`` text (``debug``, ``info``, ``warn``...) or a number."""
    if isinstance(level, int):
        return level
    found = LEVELS.get(str(level).strip().lower())
    if found is None:
        raise ConfigError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    return found


def configure_logging(
    level: str | int = "info", *, stream: IO[str] | None = None, logger_name: str = ""
) -> logging.Handler:
    """Log JSON lines at ``level`` to ``stream`` (stderr) from ``logger_name`` (the root).

    Replaces the handler an earlier call installed, so calling it again changes the level or the
    stream; other handlers are left alone. Returns the handler.
    """
    numeric = parse_level(level)
    target = logging.getLogger(logger_name)
    for old in [h for h in target.handlers if getattr(h, "_kgc_json", False)]:
        target.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._kgc_json = True  # type: ignore[attr-defined]
    target.addHandler(handler)
    target.setLevel(numeric)
    return handler
