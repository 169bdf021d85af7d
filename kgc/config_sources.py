"""Where a setting's value comes from, and which source wins.

From lowest to highest precedence: defaults, values derived from ``base_path``, the configuration
file, the runbook's unprefixed environment variables, ``KGC_``-prefixed variables, and keyword
arguments. Every value is kept with the name the user wrote it under (``TIMEOUT_MS``,
``KGC_TIMEOUT_MS``, ``kgc.toml: strictMode``, ``cache_size``), so an error can point at it.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgc.config_file import read_config_file

logger = logging.getLogger(__name__)
_PACKAGE = Path(__file__).resolve().parent


class AmbiguousSettingWarning(UserWarning):
    """An environment variable the runbook uses with two meanings was set."""


# The runbook's unprefixed names (and the unambiguous names kgc adds), mapped to fields.
RUNBOOK_ENV: dict[str, str] = {
    "NODE_ENV": "environment",
    "LOG_LEVEL": "log_level",
    "BASE_PATH": "base_path",
    "ENABLE_FAST_PATH": "enable_fast_path",
    "ENABLE_CACHING": "enable_caching",
    "ENABLE_BATCH_PROCESSING": "enable_batch_processing",
    "MAX_CONCURRENCY": "max_concurrency",
    "CACHE_SIZE": "cache_size",
    "PROCESSING_BATCH_SIZE": "processing_batch_size",
    "TRANSACTION_TIMEOUT_MS": "transaction_timeout_ms",
    "MAX_HOOKS": "max_hooks",
    "ENABLE_PROFILING": "enable_profiling",
    "ENABLE_DETAILED_METRICS": "enable_detailed_metrics",
    "ENABLE_OBSERVABILITY": "enable_observability",
    "OBSERVABILITY_ENDPOINT": "observability_endpoint",
    "SERVICE_NAME": "service_name",
    "SERVICE_VERSION": "service_version",
    "SAMPLING_RATIO": "sampling_ratio",
    "ENABLE_SANDBOXING": "enable_sandboxing",
    "SANDBOX_TYPE": "sandbox_type",
    "SANDBOX_TIMEOUT": "sandbox_timeout_ms",
    "SANDBOX_MEMORY_LIMIT": "sandbox_memory_limit_bytes",
    "STRICT_MODE": "strict_mode",
    "ENABLE_LOCKCHAIN": "enable_lockchain",
    "LOCKCHAIN_REPOSITORY": "lockchain_path",
    "GIT_ANCHORING": "git_anchoring",
    "BATCH_MODE": "anchor_batch_mode",
    "ANCHOR_BATCH_SIZE": "anchor_batch_size",
    "ENABLE_RESOLUTION": "enable_resolution",
    "RESOLUTION_STRATEGY": "resolution_strategy",
    "CONSENSUS_THRESHOLD": "consensus_threshold",
    "RESOLUTION_TIMEOUT_MS": "resolution_timeout_ms",
}


@dataclass(frozen=True)
class Ambiguity:
    taken_as: str
    meanings: str
    why: str
    alternatives: tuple[str, str]


# Names the runbook sets twice with different meanings; see docs/configuration.md.
AMBIGUOUS: dict[str, Ambiguity] = {
    "BATCH_SIZE": Ambiguity(
        "anchor_batch_size",
        "processing batch size (1000) and lockchain anchor batch size (100)",
        "config/production.mjs reads it only as lockchain.batchSize",
        ("ANCHOR_BATCH_SIZE", "PROCESSING_BATCH_SIZE"),
    ),
    "TIMEOUT_MS": Ambiguity(
        "transaction_timeout_ms",
        "transaction timeout (2000) and resolution timeout (5000)",
        "config/production.mjs reads it twice as the transaction timeout, once for resolution",
        ("TRANSACTION_TIMEOUT_MS", "RESOLUTION_TIMEOUT_MS"),
    ),
}

# The file named by the command line's --config (kgc.cli sets it around a command's run).
COMMAND_LINE_CONFIG: ContextVar[Path | None] = ContextVar("kgc_command_line_config", default=None)

RUNBOOK_NAMES: tuple[str, ...] = (*RUNBOOK_ENV, *AMBIGUOUS)

# Subdirectories of base_path for the paths not set on their own.
BASE_PATH_CHILDREN = {"store_path": "store", "lockchain_path": "lockchain", "policy_path": "policy"}


@dataclass
class Gathered:
    """Merged values, and for each the name it was given under."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: Any, origin: str) -> None:
        self.values[name] = value
        self.origins[name] = origin


def gather(
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
    fields: Collection[str],
    path_fields: Collection[str],
) -> Gathered:
    """Merge the sources in precedence order; warn about ambiguous names that are set."""
    env = {name: value for name, value in environ.items() if value != ""}
    merged = Gathered()
    config_file = _config_file(overrides, env)
    if config_file is not None:
        found = read_config_file(config_file, fields, path_fields)
        for name, value in found.values.items():
            merged.put(name, value, found.origins[name])
        merged.put("config_file", config_file, _config_file_origin(overrides))
    for prefix in ("", "KGC_"):
        _environment(merged, env, prefix)
    for name in fields:
        if f"KGC_{name.upper()}" in env:
            merged.put(name, env[f"KGC_{name.upper()}"], f"KGC_{name.upper()}")
    for name, value in overrides.items():
        merged.put(name, value, name)
    _derive_from_base_path(merged)
    return merged


def _config_file(overrides: Mapping[str, Any], env: Mapping[str, str]) -> Path | None:
    chosen = overrides.get("config_file", COMMAND_LINE_CONFIG.get() or env.get("KGC_CONFIG_FILE"))
    return None if chosen is None else Path(chosen)


def _config_file_origin(overrides: Mapping[str, Any]) -> str:
    if overrides.get("config_file") is not None:
        return "config_file"
    return "--config" if COMMAND_LINE_CONFIG.get() is not None else "KGC_CONFIG_FILE"


def _environment(merged: Gathered, env: Mapping[str, str], prefix: str) -> None:
    """Runbook names under ``prefix``: the ambiguous ones first, so a precise name wins."""
    for name, meaning in AMBIGUOUS.items():
        if prefix + name in env:
            _warn_ambiguous(prefix + name, env[prefix + name], meaning, env)
            merged.put(meaning.taken_as, env[prefix + name], prefix + name)
    for name, target in RUNBOOK_ENV.items():
        if prefix + name in env:
            merged.put(target, env[prefix + name], prefix + name)


def _warn_ambiguous(name: str, value: str, meaning: Ambiguity, env: Mapping[str, str]) -> None:
    candidates = [f"KGC_{meaning.taken_as.upper()}", *_precise_names(meaning)]
    if name.startswith("KGC_"):  # an unprefixed name loses to any KGC_ one
        candidates = [other for other in candidates if other.startswith("KGC_")]
    else:
        candidates.append(f"KGC_{name}")
    precise = [other for other in dict.fromkeys(candidates) if other in env]
    overridden = f"; here {', '.join(precise)} is also set and wins" if precise else ""
    first, second = meaning.alternatives
    message = (
        f"{name}={value!r} is ambiguous: the runbook uses it for the {meaning.meanings}. kgc takes "
        f"it as {meaning.taken_as} ({meaning.why}){overridden}. Set {first} or {second} "
        f"(or KGC_{first} / KGC_{second}) instead."
    )
    logger.warning("%s", message)
    warnings.warn(message, AmbiguousSettingWarning, stacklevel=_caller_level())


def _precise_names(meaning: Ambiguity) -> list[str]:
    """The names that set the same field as ``meaning`` without ambiguity, winning ones first."""
    taken = [alt for alt in meaning.alternatives if RUNBOOK_ENV[alt] == meaning.taken_as]
    return [f"KGC_{name}" for name in taken] + taken


def _caller_level() -> int:
    """A ``stacklevel`` pointing at the first frame outside the kgc package (the user's code)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def _derive_from_base_path(merged: Gathered) -> None:
    base = merged.values.get("base_path")
    if base is None:
        return
    for name, child in BASE_PATH_CHILDREN.items():
        if name not in merged.values:
            merged.put(name, Path(base) / child, f"{merged.origins['base_path']} (+ /{child})")
