"""The runbook's sandbox settings reach the sandbox, and grants it will not give stop start-up."""

from __future__ import annotations

import pytest

from kgc import KnowledgeEngine
from kgc.config import load_settings
from kgc.effects.code import SandboxedEffect
from kgc.errors import ConfigError
from kgc.hooks.conditions import SparqlAsk
from kgc.hooks.model import Hook
from kgc.rdf.delta import Delta

SLEEP = "import time\ndef run(event):\n    time.sleep(60)\n"
GRAB = (
    "def run(event):\n    chunks = []\n    try:\n        while True:\n"
    "            chunks.append(bytearray(1 << 20))\n    except MemoryError:\n"
    "        return {'events': [{'mib': len(chunks)}]}\n"
)


def _fire(engine: KnowledgeEngine, source: str) -> object:
    effect = SandboxedEffect(source, name="e.py")
    engine.hooks.register(Hook("e", SparqlAsk("ASK { ?s ?p ?o }"), phase="post", effect=effect))
    return engine.apply(Delta.from_text("<urn:a> <urn:b> <urn:c> .\n")).effects[0]


def test_sandbox_timeout_from_the_environment_bounds_an_effect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANDBOX_TIMEOUT", "300")
    with KnowledgeEngine() as engine:
        verdict = _fire(engine, SLEEP)

    assert verdict.error_kind == "timeout"  # type: ignore[attr-defined]
    assert 300 <= verdict.duration_ms <= 330  # type: ignore[attr-defined]


def test_sandbox_memory_limit_from_the_environment_bounds_an_effect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANDBOX_MEMORY_LIMIT", str(16 << 20))
    with KnowledgeEngine() as engine:
        verdict = _fire(engine, GRAB)

    (event,) = verdict.events  # type: ignore[attr-defined]
    assert 0.9 * 16 <= event["mib"] <= 1.1 * 16


@pytest.mark.parametrize(
    ("name", "value", "fault"),
    [
        ("SANDBOX_TYPE", "isolate", "SANDBOX_TYPE"),
        ("KGC_SANDBOX_ENABLE_NETWORK", "true", "KGC_SANDBOX_ENABLE_NETWORK"),
        ("KGC_SANDBOX_ENABLE_FILE_SYSTEM", "true", "KGC_SANDBOX_ENABLE_FILE_SYSTEM"),
        ("KGC_SANDBOX_ENABLE_PROCESS", "true", "KGC_SANDBOX_ENABLE_PROCESS"),
        ("SANDBOX_MEMORY_LIMIT", "4096", "SANDBOX_MEMORY_LIMIT"),
        ("KGC_SANDBOX_POOL_SIZE", "0", "KGC_SANDBOX_POOL_SIZE"),
    ],
)
def test_settings_the_sandbox_will_not_honour_stop_start_up_naming_them(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fault: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=fault):
        load_settings()
