"""Settings: the runbook's variables, KGC_ names, the configuration file, and their errors."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest

from kgc import KnowledgeEngine
from kgc.cli import main
from kgc.config import AmbiguousSettingWarning, Settings, load_settings
from kgc.config_sources import RUNBOOK_ENV
from kgc.errors import ConfigError

# The runbook's "Environment Variables" block, with a value other than the default for each.
RUNBOOK_VARIABLES: list[tuple[str, str, str, Any]] = [
    ("NODE_ENV", "development", "environment", "development"),
    ("LOG_LEVEL", "debug", "log_level", "debug"),
    ("BASE_PATH", "/srv/kgc", "base_path", Path("/srv/kgc")),
    ("ENABLE_FAST_PATH", "false", "enable_fast_path", False),
    ("ENABLE_CACHING", "false", "enable_caching", False),
    ("ENABLE_BATCH_PROCESSING", "false", "enable_batch_processing", False),
    ("MAX_CONCURRENCY", "20", "max_concurrency", 20),
    ("CACHE_SIZE", "50000", "cache_size", 50_000),
    ("MAX_HOOKS", "20000", "max_hooks", 20_000),
    ("ENABLE_OBSERVABILITY", "false", "enable_observability", False),
    ("OBSERVABILITY_ENDPOINT", "http://jaeger:14268/api/traces", "observability_endpoint", None),
    ("SERVICE_NAME", "kgc-a", "service_name", "kgc-a"),
    ("SERVICE_VERSION", "2.0.0", "service_version", "2.0.0"),
    ("SAMPLING_RATIO", "0.25", "sampling_ratio", 0.25),
    ("ENABLE_SANDBOXING", "false", "enable_sandboxing", False),
    ("SANDBOX_TYPE", "worker", "sandbox_type", "worker"),
    ("SANDBOX_TIMEOUT", "1000", "sandbox_timeout_ms", 1000),
    ("SANDBOX_MEMORY_LIMIT", "8388608", "sandbox_memory_limit_bytes", 8_388_608),
    ("STRICT_MODE", "false", "strict_mode", False),
    ("ENABLE_LOCKCHAIN", "false", "enable_lockchain", False),
    ("LOCKCHAIN_REPOSITORY", "/srv/chain", "lockchain_path", Path("/srv/chain")),
    ("GIT_ANCHORING", "false", "git_anchoring", False),
    ("BATCH_MODE", "false", "anchor_batch_mode", False),
    ("ENABLE_RESOLUTION", "true", "enable_resolution", True),
    ("RESOLUTION_STRATEGY", "voting", "resolution_strategy", "voting"),
    ("CONSENSUS_THRESHOLD", "0.75", "consensus_threshold", 0.75),
    ("ENABLE_PROFILING", "true", "enable_profiling", True),
    ("ENABLE_DETAILED_METRICS", "true", "enable_detailed_metrics", True),
    # The unambiguous names kgc adds for BATCH_SIZE and TIMEOUT_MS.
    ("PROCESSING_BATCH_SIZE", "2000", "processing_batch_size", 2000),
    ("ANCHOR_BATCH_SIZE", "10", "anchor_batch_size", 10),
    ("TRANSACTION_TIMEOUT_MS", "1000", "transaction_timeout_ms", 1000.0),
    ("RESOLUTION_TIMEOUT_MS", "7000", "resolution_timeout_ms", 7000.0),
]

# The defaults the runbook documents (its env block and config/production.mjs).
RUNBOOK_DEFAULTS: dict[str, Any] = {
    "environment": "production",
    "log_level": "info",
    "enable_fast_path": True,
    "enable_caching": True,
    "enable_batch_processing": True,
    "max_concurrency": 10,
    "cache_size": 10_000,
    "processing_batch_size": 1000,
    "transaction_timeout_ms": 2000.0,
    "max_hooks": 10_000,
    "enable_observability": True,
    "observability_endpoint": None,
    "service_name": "kgc-sidecar",
    "service_version": "1.0.0",
    "sampling_ratio": 1.0,
    "enable_sandboxing": True,
    "sandbox_type": "worker",
    "sandbox_timeout_ms": 30_000,
    "sandbox_memory_limit_bytes": 67_108_864,
    "strict_mode": True,
    "enable_lockchain": True,
    "git_anchoring": True,
    "anchor_batch_mode": True,
    "anchor_batch_size": 100,
    "enable_resolution": False,
    "resolution_strategy": "voting",
    "consensus_threshold": 0.6,
    "resolution_timeout_ms": 5000.0,
    "cache_max_age_ms": 300_000,
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# Environment variables


@pytest.mark.parametrize(("name", "value", "field", "expected"), RUNBOOK_VARIABLES)
def test_every_runbook_variable_sets_its_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, expected: Any
) -> None:
    monkeypatch.setenv(name, value)
    expected = value if expected is None else expected

    assert getattr(load_settings(), field) == expected


def test_the_table_covers_every_runbook_variable() -> None:
    assert {name for name, *_ in RUNBOOK_VARIABLES} == set(RUNBOOK_ENV)


def test_defaults_are_the_runbooks() -> None:
    settings = load_settings()

    assert {field: getattr(settings, field) for field in RUNBOOK_DEFAULTS} == RUNBOOK_DEFAULTS


@pytest.mark.parametrize(("name", "value", "field", "expected"), RUNBOOK_VARIABLES[:8])
def test_a_kgc_prefixed_runbook_name_works_too(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, expected: Any
) -> None:
    monkeypatch.setenv(f"KGC_{name}", value)

    assert getattr(load_settings(), field) == expected


def test_a_kgc_variable_wins_over_the_runbook_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_HOOKS", "5")
    monkeypatch.setenv("KGC_MAX_HOOKS", "7")
    monkeypatch.setenv("LOCKCHAIN_REPOSITORY", "/a")
    monkeypatch.setenv("KGC_LOCKCHAIN_REPOSITORY", "/b")
    monkeypatch.setenv("KGC_LOCKCHAIN_PATH", "/c")

    settings = load_settings()

    assert settings.max_hooks == 7
    assert settings.lockchain_path == Path("/c")


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_HOOKS", "")

    assert load_settings().max_hooks == 10_000


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("True", True), ("1", True), ("false", False)]
)
def test_booleans_accept_true_false_in_any_case(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("STRICT_MODE", value)

    assert load_settings().strict_mode is expected


def test_a_boolean_that_is_not_one_is_refused_not_taken_as_false(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The runbook's JavaScript reads STRICT_MODE === 'true': a typo would switch strict mode off.
    monkeypatch.setenv("STRICT_MODE", "ture")

    with pytest.raises(ConfigError, match=r"invalid value for STRICT_MODE: 'ture' \(strict_mode"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("TIMEOUT_MS", "2s", r"invalid value for TIMEOUT_MS: '2s' \(transaction_timeout_ms"),
        ("KGC_TIMEOUT_MS", "-1", r"invalid value for KGC_TIMEOUT_MS: '-1' .*greater than 0"),
        ("MAX_HOOKS", "10k", r"invalid value for MAX_HOOKS: '10k' .*valid integer"),
        ("SAMPLING_RATIO", "2", r"invalid value for SAMPLING_RATIO: '2' .*less than or equal"),
        ("NODE_ENV", "staging", r"invalid value for NODE_ENV: 'staging' .*'production'"),
        ("OBSERVABILITY_ENDPOINT", "jaeger:14268", r"OBSERVABILITY_ENDPOINT: 'jaeger:14268'"),
        ("KGC_PORT", "70000", r"invalid value for KGC_PORT: '70000'"),
    ],
)
def test_an_invalid_variable_is_refused_naming_it_and_its_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, match: str
) -> None:
    monkeypatch.setenv(name, value)

    with warnings.catch_warnings(), pytest.raises(ConfigError, match=match):
        warnings.simplefilter("ignore", AmbiguousSettingWarning)  # TIMEOUT_MS warns as well
        load_settings()


@pytest.mark.parametrize(
    ("value", "level"), [("debug", logging.DEBUG), ("WARNING", logging.WARNING), ("fatal", 50)]
)
def test_log_level_takes_the_runbooks_names(
    monkeypatch: pytest.MonkeyPatch, value: str, level: int
) -> None:
    monkeypatch.setenv("LOG_LEVEL", value)

    assert load_settings().python_log_level == level


# The two names the runbook uses with two meanings


def test_timeout_ms_is_the_transaction_timeout_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIMEOUT_MS", "5000")

    with pytest.warns(AmbiguousSettingWarning, match=r"TIMEOUT_MS='5000' is ambiguous") as seen:
        engine = KnowledgeEngine()

    message = str(seen[0].message)
    assert "takes it as transaction_timeout_ms" in message
    assert "TRANSACTION_TIMEOUT_MS or RESOLUTION_TIMEOUT_MS" in message
    assert seen[0].filename == __file__
    assert engine.transactions.timeout_ms == 5000.0
    assert engine.settings.resolution_timeout_ms == 5000.0  # its own default, untouched
    assert [r.levelno for r in caplog.records if "TIMEOUT_MS" in r.getMessage()] == [
        logging.WARNING
    ]


def test_batch_size_is_the_anchor_batch_size_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BATCH_SIZE", "7")
    monkeypatch.setenv("LOCKCHAIN_REPOSITORY", str(tmp_path / "chain"))

    with (
        pytest.warns(AmbiguousSettingWarning, match="ANCHOR_BATCH_SIZE or PROCESSING_BATCH_SIZE"),
        KnowledgeEngine() as engine,
    ):
        assert engine.anchorer is not None
        assert engine.anchorer.batch_size == 7
        assert engine.settings.processing_batch_size == 1000


def test_a_precise_name_wins_over_the_ambiguous_one_and_the_warning_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIMEOUT_MS", "5000")
    monkeypatch.setenv("TRANSACTION_TIMEOUT_MS", "1500")

    with pytest.warns(AmbiguousSettingWarning, match="TRANSACTION_TIMEOUT_MS is also set and wins"):
        assert load_settings().transaction_timeout_ms == 1500.0


def test_a_kgc_ambiguous_name_wins_over_an_unprefixed_precise_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KGC_TIMEOUT_MS", "3000")
    monkeypatch.setenv("TRANSACTION_TIMEOUT_MS", "1500")

    with pytest.warns(AmbiguousSettingWarning) as seen:
        assert load_settings().transaction_timeout_ms == 3000.0

    assert "also set" not in str(seen[0].message)


def test_precise_names_set_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESOLUTION_TIMEOUT_MS", "9000")
    monkeypatch.setenv("PROCESSING_BATCH_SIZE", "10")

    settings = load_settings()  # warnings are errors in this suite

    assert (settings.resolution_timeout_ms, settings.processing_batch_size) == (9000.0, 10)


# The configuration file


RUNBOOK_FILE = """{
  "basePath": "data",
  "strictMode": false,
  "enableConditionEvaluation": true,
  "maxHooks": 50,
  "timeout": 1500,
  "enableCache": false,
  "cacheMaxAge": 300000,
  "enableMetrics": true,
  "logLevel": "warn",
  "observability": {"enableTracing": false, "enableMetrics": true, "enableLogging": true,
                    "serviceName": "svc", "serviceVersion": "3.1.0", "endpoint": null,
                    "samplingRatio": 0.5},
  "performance": {"enableProfiling": false, "maxConcurrency": 4, "afterHashOnly": false,
                  "timeoutMs": 1500, "maxHooks": 50},
  "sandbox": {"type": "worker", "timeout": 100, "memoryLimit": 16777216, "enableNetwork": false,
              "enableFileSystem": false, "enableProcess": false, "strictMode": false},
  "lockchain": {"enableGitAnchoring": false, "repository": "chain", "batchMode": true,
                "batchSize": 20},
  "resolution": {"enabled": true, "strategy": "voting", "consensusThreshold": 0.8,
                 "timeoutMs": 6000}
}
"""


def test_the_runbooks_configuration_file_reads_as_json(tmp_path: Path) -> None:
    path = _write(tmp_path / "production.json", RUNBOOK_FILE)

    settings = load_settings(config_file=path)

    assert (settings.strict_mode, settings.max_hooks, settings.enable_caching) == (False, 50, False)
    assert settings.transaction_timeout_ms == 1500.0
    assert settings.resolution_timeout_ms == 6000.0
    assert settings.anchor_batch_size == 20
    assert (settings.service_name, settings.sampling_ratio, settings.log_level) == (
        "svc",
        0.5,
        "warn",
    )
    assert settings.lockchain_path == tmp_path / "chain"  # relative to the file
    assert settings.store_path == tmp_path / "data" / "store"  # below basePath


def test_a_toml_file_with_snake_case_keys_and_sections(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "kgc.toml",
        'strict_mode = false\nport = 8080\napi_keys = { k1 = "admin" }\n'
        "[lockchain]\nbatch_size = 3\n[performance]\nmaxConcurrency = 2\n",
    )

    settings = load_settings(config_file=path)

    assert (settings.strict_mode, settings.port, settings.api_keys) == (
        False,
        8080,
        {"k1": "admin"},
    )
    assert (settings.anchor_batch_size, settings.max_concurrency) == (3, 2)


def test_kgc_config_file_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KGC_CONFIG_FILE", str(_write(tmp_path / "k.toml", "maxHooks = 3\n")))

    assert load_settings().max_hooks == 3


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("k.toml", "maxHook = 3\n", r"k\.toml: unknown key 'maxHook'"),
        ("k.toml", "[lockchain]\nbatchsize = 3\n", r"unknown key 'lockchain\.batchsize'"),
        ("k.json", '{"config_file": "x.toml"}', r"unknown key 'config_file'"),
        ("k.toml", "strictMode = 'maybe'\n", r"invalid value for k\.toml: strictMode: 'maybe'"),
        ("k.json", '{"maxHooks": 0}', r"invalid value for k\.json: maxHooks: 0 .*greater than 0"),
        ("k.toml", "maxHooks = \n", r"k\.toml is not valid TOML: .*line 1"),
        ("k.json", '{"maxHooks": 1,}', r"k\.json is not valid JSON: .*line 1, column 16"),
        ("k.yaml", "maxHooks: 1\n", r"unknown format '\.yaml'; use \.toml or \.json"),
        ("k.json", "[1]", r"expected a table of settings"),
        (
            "k.json",
            '{"maxHooks": 5, "performance": {"maxHooks": 6}}',
            r"maxHooks=5 and performance\.maxHooks=6 both set max_hooks",
        ),
    ],
)
def test_a_bad_configuration_file_is_refused_naming_the_file_and_key(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    path = _write(tmp_path / name, text)

    with pytest.raises(ConfigError, match=match):
        load_settings(config_file=path)


def test_a_missing_configuration_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the configuration file .*nope\.toml"):
        load_settings(config_file=tmp_path / "nope.toml")


def test_precedence_keywords_then_kgc_then_runbook_then_file_then_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "k.toml", "maxHooks = 1\ncacheSize = 1\nmaxConcurrency = 1\nport = 1\n"
    )
    monkeypatch.setenv("KGC_CONFIG_FILE", str(path))
    monkeypatch.setenv("MAX_HOOKS", "2")
    monkeypatch.setenv("CACHE_SIZE", "2")
    monkeypatch.setenv("MAX_CONCURRENCY", "2")
    monkeypatch.setenv("KGC_MAX_HOOKS", "3")
    monkeypatch.setenv("KGC_CACHE_SIZE", "3")

    settings = load_settings(max_hooks=4)

    assert (settings.max_hooks, settings.cache_size, settings.max_concurrency) == (4, 3, 2)
    assert (settings.port, settings.sampling_ratio) == (1, 1.0)


# BASE_PATH and the lockchain switches, seen through a real engine


def test_base_path_puts_store_lockchain_and_policy_below_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BASE_PATH", str(tmp_path))

    with KnowledgeEngine() as engine:
        engine.apply(engine.delta(), actor="t")
        assert engine.settings.policy_path == tmp_path / "policy"

    assert (tmp_path / "store").is_dir()
    assert (tmp_path / "lockchain").is_dir()


def test_a_path_set_on_its_own_wins_over_base_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BASE_PATH", str(tmp_path))
    monkeypatch.setenv("LOCKCHAIN_REPOSITORY", str(tmp_path / "elsewhere"))

    settings = load_settings(store_path=None)

    assert settings.store_path is None
    assert settings.lockchain_path == tmp_path / "elsewhere"


def test_enable_lockchain_false_keeps_no_lockchain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCKCHAIN_REPOSITORY", str(tmp_path / "chain"))
    monkeypatch.setenv("ENABLE_LOCKCHAIN", "false")

    with KnowledgeEngine() as engine:
        assert engine.journal is None

    assert not (tmp_path / "chain").exists()


def test_batch_mode_false_anchors_every_receipt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCKCHAIN_REPOSITORY", str(tmp_path / "chain"))
    monkeypatch.setenv("BATCH_MODE", "false")

    with KnowledgeEngine() as engine:
        assert engine.anchorer is not None
        assert engine.anchorer.batch_size == 1


def test_strict_mode_and_max_hooks_reach_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRICT_MODE", "false")
    monkeypatch.setenv("MAX_HOOKS", "3")

    engine = KnowledgeEngine()

    assert engine.transactions.strict is False
    assert engine.hooks.max_hooks == 3


# Server keys


def test_server_keys_have_safe_defaults() -> None:
    settings = load_settings()

    assert (settings.host, settings.port, settings.allow_anonymous_writes) == (
        "127.0.0.1",
        3000,
        False,
    )
    assert settings.api_key_roles() == {}
    assert settings.low_watermark < settings.high_watermark <= settings.max_concurrency


def test_api_keys_from_the_environment_and_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keys = _write(tmp_path / "keys", "# ops\nk-file admin\n\nk-two read  # dashboards\n")
    monkeypatch.setenv("KGC_API_KEYS", "k-env:write, k-two:admin")
    monkeypatch.setenv("KGC_API_KEYS_FILE", str(keys))

    roles = load_settings().api_key_roles()

    assert roles == {"k-env": "write", "k-two": "read", "k-file": "admin"}
    assert "k-env" not in repr(load_settings())


def test_a_bad_api_key_role_is_refused_without_echoing_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KGC_API_KEYS", json.dumps({"s3cret": "root"}))
    with pytest.raises(ConfigError, match=r"KGC_API_KEYS: <redacted>") as caught:
        load_settings()
    assert "s3cret" not in str(caught.value)

    monkeypatch.delenv("KGC_API_KEYS")
    keys = _write(tmp_path / "keys", "s3cret superuser\n")
    with pytest.raises(ConfigError, match=r"keys, line 1: expected 'KEY ROLE'") as caught:
        load_settings(api_keys_file=keys).api_key_roles()
    assert "s3cret" not in str(caught.value)


def test_watermarks_out_of_order_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"queue_low_watermark \(8\) must be below"):
        load_settings(queue_low_watermark=8, queue_high_watermark=8)
    with pytest.raises(ConfigError, match=r"queue_high_watermark \(11\) must not exceed"):
        load_settings(queue_high_watermark=11)  # max_concurrency 10


def test_an_unknown_keyword_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'strictmode'"):
        Settings(strictmode=False)


# The command line


def test_kgc_config_points_the_command_at_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "k.toml", f"policyPath = {json.dumps(str(tmp_path / 'p'))}\n")
    assert main(["--config", str(path), "policy", "list"]) == 0

    bad = _write(tmp_path / "bad.toml", "strictMode = 'maybe'\n")
    assert main(["--config", str(bad), "policy", "list"]) == 1
    assert "invalid value for bad.toml: strictMode: 'maybe'" in capsys.readouterr().err
