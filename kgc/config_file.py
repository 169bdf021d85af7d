"""The configuration file: TOML or JSON, with kgc's own keys or the runbook's camelCase ones.

A file holds a table of settings. A key is a field name (``strict_mode``), its camelCase form
(``strictMode``) or a key of the runbook's ``config/production.mjs``; that file's sections
(``observability``, ``performance``, ``sandbox``, ``lockchain``, ``resolution``) are tables whose
keys map as listed in ``SECTION_KEYS``. Anything else is refused, naming the key and the file.

Relative paths in a file are taken relative to the file's directory, so a file means the same
thing whatever the working directory of the process that reads it.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from kgc.errors import ConfigError

# Top-level keys of config/production.mjs whose name does not convert to a field name.
TOP_LEVEL_KEYS = {
    "timeout": "transaction_timeout_ms",
    "enableCache": "enable_caching",
    "cacheMaxAge": "cache_max_age_ms",
}

SECTION_KEYS: dict[str, dict[str, str]] = {
    "observability": {
        "enableTracing": "enable_observability",
        "enableMetrics": "enable_metrics",
        "enableLogging": "enable_logging",
        "serviceName": "service_name",
        "serviceVersion": "service_version",
        "endpoint": "observability_endpoint",
        "samplingRatio": "sampling_ratio",
    },
    "performance": {
        "enableProfiling": "enable_profiling",
        "maxConcurrency": "max_concurrency",
        "afterHashOnly": "enable_fast_path",
        "timeoutMs": "transaction_timeout_ms",
        "maxHooks": "max_hooks",
        # The runbook's "Performance Settings" example object uses these as well.
        "enableFastPath": "enable_fast_path",
        "enableCaching": "enable_caching",
        "enableBatchProcessing": "enable_batch_processing",
        "cacheSize": "cache_size",
        "batchSize": "processing_batch_size",
    },
    "sandbox": {
        "type": "sandbox_type",
        "timeout": "sandbox_timeout_ms",
        "memoryLimit": "sandbox_memory_limit_bytes",
        "enableNetwork": "sandbox_enable_network",
        "enableFileSystem": "sandbox_enable_file_system",
        "enableProcess": "sandbox_enable_process",
        "strictMode": "strict_mode",
    },
    "lockchain": {
        "enableGitAnchoring": "git_anchoring",
        "repository": "lockchain_path",
        "batchMode": "anchor_batch_mode",
        "batchSize": "anchor_batch_size",
    },
    "resolution": {
        "enabled": "enable_resolution",
        "strategy": "resolution_strategy",
        "consensusThreshold": "consensus_threshold",
        "timeoutMs": "resolution_timeout_ms",
        "crdtBias": "resolution_crdt_bias",
        "maxOpenRounds": "resolution_max_open_rounds",
        "maxProposals": "resolution_max_proposals",
    },
}

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``strictMode`` -> ``strict_mode`` (a snake_case name is returned unchanged)."""
    return _CAMEL_HUMP.sub(r"_\1", name).lower()


class FileSettings:
    """Values read from one configuration file, each with the ``file: key`` it came from."""

    def __init__(self, values: dict[str, Any], origins: dict[str, str]) -> None:
        self.values = values
        self.origins = origins


def read_config_file(
    path: Path, fields: Collection[str], path_fields: Collection[str]
) -> FileSettings:
    """Read ``path`` (``.toml`` or ``.json``) into field values; refuse what does not map."""
    table = _parse(path)
    found = FileSettings({}, {})
    for key, value in table.items():
        if key in SECTION_KEYS and isinstance(value, Mapping):
            for sub, sub_value in value.items():
                field = _section_field(key, str(sub))
                _put(found, path, f"{key}.{sub}", field, sub_value, fields)
        else:
            _put(found, path, key, _top_level_field(key), value, fields)
    for field in path_fields & found.values.keys():
        value = found.values[field]
        if isinstance(value, str) and value:
            found.values[field] = path.parent / value
    return found


def _parse(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            table: object = tomllib.loads(raw.decode("utf-8"))
        elif suffix == ".json":
            table = json.loads(raw)
        else:
            raise ConfigError(
                f"configuration file {path}: unknown format {suffix or '(no suffix)'!r}; "
                "use .toml or .json"
            )
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"configuration file {path} is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(table, dict):
        raise ConfigError(f"configuration file {path}: expected a table of settings at the top")
    return table


def _top_level_field(key: str) -> str:
    return TOP_LEVEL_KEYS.get(key, snake(key))


def _section_field(section: str, key: str) -> str | None:
    keys = SECTION_KEYS[section]
    for camel, field in keys.items():
        if key in (camel, snake(camel)):
            return field
    return None


def _put(
    found: FileSettings,
    path: Path,
    key: str,
    field: str | None,
    value: Any,
    fields: Collection[str],
) -> None:
    if field is None or field not in fields or field == "config_file":
        raise ConfigError(f"{path}: unknown key {key!r} (see docs/configuration.md)")
    where = f"{path.name}: {key}"
    if field in found.values and found.values[field] != value:
        raise ConfigError(
            f"{path}: {found.origins[field].split(': ', 1)[1]}={found.values[field]!r} and "
            f"{key}={value!r} both set {field}; keep one, or give both the same value"
        )
    found.values[field] = value
    found.origins[field] = where
