"""Settings, from ``KGC_``-prefixed environment variables (or keyword arguments).

Only the settings the core uses live here so far. The runbook's unprefixed names are read for the
settings that exist (``RUNBOOK_NAMES``): ``MAX_HOOKS``, ``CACHE_SIZE``, ``ENABLE_CACHING`` and
``STRICT_MODE``; a ``KGC_`` variable wins over its runbook name. The rest of the runbook's surface
(a configuration file, the sidecar's keys) arrives with ``kgc serve``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from kgc.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KGC_", extra="forbid", frozen=True, populate_by_name=True
    )

    store_path: Path | None = Field(
        default=None, description="Directory of an on-disk store; in memory when unset."
    )
    hooks_path: Path | None = Field(
        default=None, description="A hook file or a directory of hook files to register at start."
    )
    strict_mode: bool = Field(
        default=True,
        validation_alias=AliasChoices("KGC_STRICT_MODE", "STRICT_MODE"),
        description="A pre-commit hook that errors or times out refuses the transaction.",
    )
    transaction_timeout_ms: float = Field(
        default=2000.0, gt=0, description="Pre-commit time budget of one transaction."
    )
    max_hooks: int = Field(
        default=10_000,
        gt=0,
        validation_alias=AliasChoices("KGC_MAX_HOOKS", "MAX_HOOKS"),
        description="Most hooks that may be registered.",
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
    anchor_batch_size: int = Field(
        default=100, gt=0, description="Receipts per git anchor commit (1: one per receipt)."
    )
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
    literal_policy: Literal["normalize", "refuse"] = Field(
        default="normalize",
        description="What to do with literals the store would rewrite (see docs/literals.md).",
    )
    cache_size: int = Field(
        default=10_000,
        ge=0,
        validation_alias=AliasChoices("KGC_CACHE_SIZE", "CACHE_SIZE"),
        description="Condition results kept in process (0: no cache).",
    )
    enable_caching: bool = Field(
        default=True,
        validation_alias=AliasChoices("KGC_ENABLE_CACHING", "ENABLE_CACHING"),
        description="Cache condition results.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis shared by processes as a second cache level (optional)."
    )


RUNBOOK_NAMES = ("MAX_HOOKS", "CACHE_SIZE", "ENABLE_CACHING", "STRICT_MODE")


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into a ``ConfigError`` naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]).lower().removeprefix("kgc_")
        runbook = f" or {name.upper()}" if name.upper() in RUNBOOK_NAMES else ""
        raise ConfigError(
            f"invalid setting {name} (KGC_{name.upper()}{runbook}={err.get('input')!r}): "
            f"{err['msg']}"
        ) from exc
