"""Settings: keyword arguments, environment variables (``KGC_*`` and the runbook's), a file.

Every field can be set as a keyword argument, as ``KGC_<FIELD>`` and in a configuration file
(``KGC_CONFIG_FILE``, TOML or JSON, see ``kgc.config_file``); the runbook's names
(``STRICT_MODE``, ``LOCKCHAIN_REPOSITORY``, ...) work unprefixed and with ``KGC_``. Precedence and
the two names the runbook uses with two meanings (``BATCH_SIZE``, ``TIMEOUT_MS``) are in
``kgc.config_sources``; the full table, with what uses each setting, is docs/configuration.md.

A bad value raises ``ConfigError`` naming the variable as it was written and the value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kgc.config_sources import (
    AMBIGUOUS,
    RUNBOOK_ENV,
    RUNBOOK_NAMES,
    AmbiguousSettingWarning,
    Gathered,
    gather,
)
from kgc.errors import ConfigError

__all__ = [
    "RUNBOOK_NAMES",
    "AmbiguousSettingWarning",
    "ApiRole",
    "Settings",
    "load_settings",
]

ApiRole = Literal["read", "write", "admin"]
LogLevel = Literal["trace", "debug", "info", "warn", "error", "fatal"]
_SECRET_FIELDS = frozenset({"api_keys"})
_PYTHON_LEVELS = {"trace": 10, "debug": 10, "info": 20, "warn": 30, "error": 40, "fatal": 50}
_MIB = 1024 * 1024


def watermarks(capacity: int, high: int | None, low: int | None) -> tuple[int, int]:
    """The write queue's (high, low) watermarks: as given, or 80% and 50% of ``capacity``.

    Raises ``ValueError`` (a validation error, naming the settings) when they are out of order.
    """
    high = high if high is not None else max(1, (capacity * 4) // 5)
    low = low if low is not None else min(high - 1, capacity // 2)
    if high > capacity:
        raise ValueError(
            f"queue_high_watermark ({high}) must not exceed max_concurrency ({capacity}), "
            "the queue's capacity"
        )
    if low >= high:
        raise ValueError(f"queue_low_watermark ({low}) must be below queue_high_watermark ({high})")
    return high, low


class _Queued(Protocol):
    max_concurrency: int
    queue_high_watermark: int | None
    queue_low_watermark: int | None


class QueueWatermarks:
    """The write queue's watermarks, for a settings class with ``max_concurrency`` and the two
    ``queue_*_watermark`` fields (``Settings`` and ``kgc.server.ServerSettings``)."""

    __slots__ = ()

    @property
    def high_watermark(self: _Queued) -> int:
        """Queue depth from which writes get 429 (``max_concurrency`` is the capacity)."""
        return watermarks(self.max_concurrency, self.queue_high_watermark, None)[0]

    @property
    def low_watermark(self: _Queued) -> int:
        """Depth below which writes are admitted again after the high watermark was reached."""
        return watermarks(
            self.max_concurrency, self.queue_high_watermark, self.queue_low_watermark
        )[1]


class Settings(QueueWatermarks, BaseSettings):
    """Validated, frozen settings. ``Settings(**kw)`` reads the environment and the file too."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    def __init__(self, **values: Any) -> None:
        gathered = gather(values, os.environ, _FIELDS, _PATH_FIELDS)
        try:
            super().__init__(**gathered.values)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, gathered)) from exc

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # kgc.config_sources reads the environment and the file (several names per field, with
        # the name kept for error messages); pydantic-settings then validates what it gathered.
        return (init_settings,)

    # -- Core ------------------------------------------------------------------------------------
    config_file: Path | None = Field(
        default=None, description="TOML or JSON file of settings (KGC_CONFIG_FILE, --config)."
    )
    environment: Literal["production", "development", "test"] = Field(
        default="production",
        description="NODE_ENV. Recorded and reported; kgc behaves the same in every environment.",
    )
    log_level: LogLevel = Field(default="info", description="Level of kgc's log lines.")
    base_path: Path | None = Field(
        default=None,
        description="Data directory: store/, lockchain/ and policy/ below it unless set apart.",
    )
    store_path: Path | None = Field(
        default=None, description="Directory of an on-disk store; in memory when unset."
    )
    hooks_path: Path | None = Field(
        default=None, description="A hook file or a directory of hook files to register at start."
    )
    literal_policy: Literal["normalize", "refuse"] = Field(
        default="normalize",
        description="What to do with literals the store would rewrite (see docs/literals.md).",
    )

    # -- Performance -----------------------------------------------------------------------------
    strict_mode: bool = Field(
        default=True,
        description=(
            "A pre-commit hook that errors or times out refuses the transaction; the sandbox "
            "refuses to run effects unless every confinement layer is on."
        ),
    )
    transaction_timeout_ms: float = Field(
        default=2000.0, gt=0, description="Pre-commit time budget of one transaction."
    )
    max_hooks: int = Field(default=10_000, gt=0, description="Most hooks that may be registered.")
    enable_condition_evaluation: Literal[True] = Field(
        default=True, description="kgc always evaluates conditions; false is refused."
    )
    enable_caching: bool = Field(default=True, description="Cache condition results.")
    cache_size: int = Field(
        default=10_000, ge=0, description="Condition results kept in process (0: no cache)."
    )
    cache_max_age_ms: int = Field(
        default=300_000, gt=0, description="Runbook cacheMaxAge; not used (entries never stale)."
    )
    redis_url: str | None = Field(
        default=None, description="Redis shared by processes as a second cache level (optional)."
    )
    enable_fast_path: bool = Field(
        default=True, description="Runbook afterHashOnly; no effect (see the docs)."
    )
    enable_batch_processing: bool = Field(default=True, description="Not used yet.")
    processing_batch_size: int = Field(default=1000, gt=0, description="Not used yet.")
    max_concurrency: int = Field(
        default=10, gt=0, description="Requests kgc serve handles at once."
    )
    enable_metrics: bool = Field(default=True, description="Expose metrics (kgc serve).")
    enable_profiling: bool = Field(default=False, description="Not used yet.")
    enable_detailed_metrics: bool = Field(default=False, description="Not used yet.")

    # -- Observability ---------------------------------------------------------------------------
    enable_observability: bool = Field(default=True, description="Export traces (telemetry).")
    observability_endpoint: str | None = Field(
        default=None, description="Trace collector URL (http or https)."
    )
    service_name: str = Field(
        default="kgc-sidecar", min_length=1, description="Service name on traces and metrics."
    )
    service_version: str = Field(
        default="1.0.0", min_length=1, description="Service version on traces and metrics."
    )
    sampling_ratio: float = Field(default=1.0, ge=0, le=1, description="Share of traces kept.")
    enable_logging: bool = Field(default=True, description="Runbook observability.enableLogging.")

    # -- Sandbox (docs/effects.md) ----------------------------------------------------------------
    enable_sandboxing: bool = Field(
        default=True,
        description="Run hooks' effect code in the sandbox; false: such effects never run.",
    )
    sandbox_type: Literal["worker"] = Field(
        default="worker", description="'worker': confined single-use processes (the only kind)."
    )
    sandbox_timeout_ms: int = Field(
        default=30_000, gt=0, description="Wall-time limit of one effect call; CPU limit too."
    )
    sandbox_memory_limit_bytes: int = Field(
        default=67_108_864,
        ge=1 << 20,
        description="Memory one effect call may allocate beyond its interpreter's own.",
    )
    sandbox_pool_size: int = Field(
        default=4, ge=1, le=64, description="Confined workers kept started ahead of demand."
    )
    sandbox_uid: int = Field(
        default=65534, ge=1, description="User (and group) workers run as when kgc runs as root."
    )
    sandbox_enable_network: Literal[False] = Field(
        default=False, description="Effects never get the network; true is refused."
    )
    sandbox_enable_file_system: Literal[False] = Field(
        default=False, description="Effects never get files; true is refused."
    )
    sandbox_enable_process: Literal[False] = Field(
        default=False, description="Effects never start processes; true is refused."
    )

    # -- Lockchain -------------------------------------------------------------------------------
    enable_lockchain: bool = Field(
        default=True, description="Keep a lockchain when a directory is known (false: none)."
    )
    lockchain_path: Path | None = Field(
        default=None,
        description="Directory of the lockchain (journal, git anchor); no lockchain when unset.",
    )
    signing_key_file: Path | None = Field(
        default=None, description="Ed25519 private key that signs receipts (PEM or hex seed)."
    )
    signing_key_env: str | None = Field(
        default=None, description="Name of an environment variable holding the signing key."
    )
    journal_fsync: bool = Field(
        default=True, description="fsync each receipt before apply() returns (durability)."
    )
    git_anchoring: bool = Field(default=True, description="Anchor receipts in git in batches.")
    anchor_batch_mode: bool = Field(
        default=True, description="Anchor in batches of anchor_batch_size (false: one by one)."
    )
    anchor_batch_size: int = Field(
        default=100, gt=0, description="Receipts per git anchor commit (1: one per receipt)."
    )

    # -- Policy packs ----------------------------------------------------------------------------
    policy_path: Path | None = Field(
        default=None,
        description="Directory of installed policy packs and their state; in memory if unset.",
    )
    policy_trusted_keys: Path | None = Field(
        default=None,
        description="File of Ed25519 public keys (hex, one a line) trusted to sign packs.",
    )
    policy_require_signatures: bool = Field(
        default=False, description="Refuse policy packs that are not signed by a trusted key."
    )

    # -- Resolution (kgc.resolution, docs/resolution.md) -------------------------------------------
    enable_resolution: bool = Field(
        default=False, description="Accept proposals (Resolver, POST /proposals)."
    )
    resolution_strategy: Literal["voting", "merging", "crdt", "priority", "consensus"] = Field(
        default="voting", description="How a round turns proposals into one delta."
    )
    consensus_threshold: float = Field(
        default=0.6, gt=0, le=1, description="Support (voting) or share of agents (consensus)."
    )
    resolution_timeout_ms: float = Field(
        default=5000.0,
        gt=0,
        le=86_400_000,
        allow_inf_nan=False,
        description="A round resolves this long after it opened (at most 24 hours).",
    )
    resolution_max_open_rounds: int = Field(
        default=1000, gt=0, description="Rounds open at once; one more is refused (HTTP 429)."
    )
    resolution_max_proposals: int = Field(
        default=1000, gt=0, description="Proposals one round holds; one more is refused (413)."
    )
    resolution_crdt_bias: Literal["add-wins", "remove-wins"] = Field(
        default="add-wins", description="crdt: which side a concurrent add and remove settle on."
    )

    # -- Server (kgc serve) ----------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(default=3000, ge=0, le=65535, description="Port (0: any free port).")
    api_keys: dict[str, ApiRole] = Field(
        default_factory=dict, repr=False, description="API key -> role (read, write, admin)."
    )
    api_keys_file: Path | None = Field(
        default=None, description="File of API keys, one 'KEY ROLE' a line ('#' comments)."
    )
    allow_anonymous_writes: bool = Field(
        default=False, description="Let requests without an API key write."
    )
    high_latency_ms: float = Field(
        default=2.0,
        gt=0,
        description="A transaction slower than this logs 'High latency' (kgc serve; rate-limited).",
    )
    max_body_bytes: int = Field(default=10 * _MIB, gt=0, description="Largest request body.")
    max_literal_bytes: int = Field(default=_MIB, gt=0, description="Largest literal in a delta.")
    queue_high_watermark: int | None = Field(
        default=None,
        gt=0,
        description="Queued writes at which kgc serve answers 429 (default: 80% of capacity).",
    )
    queue_low_watermark: int | None = Field(
        default=None,
        ge=0,
        description="Queued writes below which it accepts again (default: 50% of capacity).",
    )

    @field_validator("log_level", "environment", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return {"warning": "warn", "critical": "fatal"}.get(value, value)
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: object) -> object:
        """From the environment: a JSON object, or ``KEY:ROLE,KEY:ROLE``."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("{"):
            return json.loads(value)
        pairs = [item.strip().rpartition(":") for item in value.split(",") if item.strip()]
        if any(not key for key, _, _ in pairs):
            raise ValueError("expected KEY:ROLE pairs separated by commas, or a JSON object")
        return {key: role for key, _, role in pairs}

    @field_validator("observability_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _watermarks(self) -> Settings:
        watermarks(self.max_concurrency, self.queue_high_watermark, self.queue_low_watermark)
        return self

    @property
    def active_lockchain_path(self) -> Path | None:
        """The lockchain directory in use: none when unset or ``enable_lockchain`` is false."""
        return self.lockchain_path if self.enable_lockchain else None

    @property
    def python_log_level(self) -> int:
        """``log_level`` as a ``logging`` level (``trace`` is DEBUG, ``fatal`` is CRITICAL)."""
        return _PYTHON_LEVELS[self.log_level]

    @property
    def effective_anchor_batch_size(self) -> int:
        return self.anchor_batch_size if self.anchor_batch_mode else 1

    def api_key_roles(self) -> dict[str, ApiRole]:
        """``api_keys`` together with the keys of ``api_keys_file`` (the file's win)."""
        from kgc.config_keys import read_api_keys

        roles = dict(self.api_keys)
        if self.api_keys_file is not None:
            roles.update(read_api_keys(self.api_keys_file))
        return roles


_FIELDS = frozenset(Settings.model_fields)
_PATH_FIELDS = frozenset(
    name for name, info in Settings.model_fields.items() if "Path" in str(info.annotation)
)


def load_settings(**overrides: object) -> Settings:
    """Build settings (``ConfigError`` naming the variable and the value when one is bad)."""
    return Settings(**overrides)


def env_names(field: str) -> list[str]:
    """Every environment variable that sets ``field``, the winning one first."""
    runbook = [name for name, target in RUNBOOK_ENV.items() if target == field]
    runbook += [name for name, amb in AMBIGUOUS.items() if amb.taken_as == field]
    prefixed = [f"KGC_{field.upper()}"] + [f"KGC_{n}" for n in runbook if n != field.upper()]
    return prefixed + runbook


def _describe(exc: ValidationError, gathered: Gathered) -> str:
    err = exc.errors()[0]
    if not err["loc"]:
        return f"invalid settings: {err['msg'].removeprefix('Value error, ')}"
    field = str(err["loc"][0])
    origin = gathered.origins.get(field, field)
    if err["type"] == "extra_forbidden":
        return f"unknown setting {field!r} (passed as {origin}); see docs/configuration.md"
    value = "<redacted>" if field in _SECRET_FIELDS else repr(gathered.values.get(field))
    others = [name for name in env_names(field) if name != origin]
    also = f"; also settable as {', '.join(others)}" if others else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"invalid value for {origin}: {value} ({field}: {msg}{also})"
