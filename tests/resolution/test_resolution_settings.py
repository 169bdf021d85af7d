"""The resolution settings are real: the runbook's variables and the file choose the strategy."""

from __future__ import annotations

from pathlib import Path

import pytest
from proposals import propose, quad

from kgc import ConfigError, KnowledgeEngine, Resolver
from kgc.config import load_settings


def test_the_runbook_variables_set_the_resolvers_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_RESOLUTION", "true")
    monkeypatch.setenv("RESOLUTION_STRATEGY", "crdt")
    monkeypatch.setenv("CONSENSUS_THRESHOLD", "0.75")
    monkeypatch.setenv("RESOLUTION_TIMEOUT_MS", "60000")
    monkeypatch.setenv("KGC_RESOLUTION_CRDT_BIAS", "remove-wins")

    with KnowledgeEngine() as engine:
        resolver = Resolver(engine)
        done = resolver.submit(propose("a", add=[quad("a")]), expected=2)
        done = resolver.submit(propose("b", remove=[quad("a")]), expected=2)

    assert (resolver.strategy, resolver.threshold, resolver.crdt_bias) == (
        "crdt",
        0.75,
        "remove-wins",
    )
    assert done.timeout_ms == 60000.0
    assert done.outcome is not None and done.outcome.removals == (quad("a"),)


def test_an_unknown_strategy_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESOLUTION_STRATEGY", "majority")

    with pytest.raises(ConfigError, match=r"invalid value for RESOLUTION_STRATEGY: 'majority'"):
        load_settings()


def test_the_configuration_file_sets_the_crdt_bias(tmp_path: Path) -> None:
    path = tmp_path / "kgc.toml"
    path.write_text('[resolution]\nstrategy = "consensus"\ncrdtBias = "remove-wins"\n', "utf-8")

    settings = load_settings(config_file=path)

    assert (settings.resolution_strategy, settings.resolution_crdt_bias) == (
        "consensus",
        "remove-wins",
    )
