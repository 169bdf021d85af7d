"""``ServerSettings``: the server's view of ``kgc.config.Settings``.

``kgc serve`` loads ``Settings`` (every source: ``KGC_`` and runbook variables, the configuration
file, the command line) and builds this with ``from_settings``; the app reads only this. Built
directly (tests, embedding the app), it reads ``KGC_`` variables itself, with the same names.

Keys are secrets: ``api_keys`` is a ``SecretStr`` so that printing or logging the settings shows
``**********`` rather than a key.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, cast

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kgc.config import QueueWatermarks, Settings, watermarks
from kgc.errors import ConfigError

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
_LEVELS = ("debug", "info", "warning", "error", "critical")


class ServerSettings(QueueWatermarks, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KGC_", extra="ignore", frozen=True, populate_by_name=True
    )

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=3000, ge=0, le=65535, description="TCP port (0: any free port).")
    api_keys: SecretStr | None = Field(
        default=None, description="API keys with roles: 'key1:read,key2:write,key3:admin'."
    )
    api_keys_file: Path | None = Field(
        default=None, description="A mounted secret file of 'role key' lines ('#' comments)."
    )
    allow_anonymous_writes: bool = Field(
        default=False, description="Let requests without a key write (never the default)."
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest request body; larger gets 413."
    )
    high_latency_ms: float = Field(
        default=2.0, gt=0, description="Transactions slower than this log 'High latency'."
    )
    max_literal_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest literal (UTF-8 bytes) in a delta: 413."
    )
    max_concurrency: int = Field(
        default=10,
        gt=0,
        validation_alias=AliasChoices("KGC_MAX_CONCURRENCY", "MAX_CONCURRENCY", "max_concurrency"),
        description="Capacity of the queue in front of the writer: transactions admitted at once.",
    )
    queue_high_watermark: int | None = Field(
        default=None,
        gt=0,
        description="Queue depth at which writes get 429 (default: 80% of max_concurrency).",
    )
    queue_low_watermark: int | None = Field(
        default=None,
        ge=0,
        description="Depth below which writes are admitted again (default: 50% of capacity).",
    )
    log_level: LogLevel = Field(
        default="info",
        validation_alias=AliasChoices("KGC_LOG_LEVEL", "LOG_LEVEL", "log_level"),
        description="Logging level of the server process.",
    )

    @model_validator(mode="after")
    def _watermarks_in_order(self) -> ServerSettings:
        watermarks(self.max_concurrency, self.queue_high_watermark, self.queue_low_watermark)
        return self

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerSettings:
        """The server's view of ``settings``: ``kgc serve`` reads everything through
        ``kgc.config.Settings`` (environment, runbook names, configuration file) and hands the
        server this."""
        keys = settings.api_keys
        if any("," in key for key in keys):
            raise ConfigError("api_keys: a key may not contain ',' (the key is not shown)")
        listed = ",".join(f"{key}:{role}" for key, role in keys.items())
        level = logging.getLevelName(settings.python_log_level).lower()
        return cls(
            host=settings.host,
            port=settings.port,
            api_keys=SecretStr(listed) if listed else None,
            api_keys_file=settings.api_keys_file,
            allow_anonymous_writes=settings.allow_anonymous_writes,
            max_body_bytes=settings.max_body_bytes,
            high_latency_ms=settings.high_latency_ms,
            max_literal_bytes=settings.max_literal_bytes,
            max_concurrency=settings.max_concurrency,
            queue_high_watermark=settings.queue_high_watermark,
            queue_low_watermark=settings.queue_low_watermark,
            log_level=cast(LogLevel, level if level in _LEVELS else "info"),
        )


def load_server_settings(**overrides: object) -> ServerSettings:
    """Build server settings, turning validation errors into a ``ConfigError`` naming the field.

    The offending value is not repeated for ``api_keys`` (it is a secret).
    """
    try:
        return ServerSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]).lower().removeprefix("kgc_") or "settings"
        shown = "" if name == "api_keys" else f" (got {err.get('input')!r})"
        raise ConfigError(f"invalid server setting {name}{shown}: {err['msg']}") from exc
