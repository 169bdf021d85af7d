"""Shared fixtures: real engines (in memory and on disk) and the external cases.

The external cases live in ``shared/`` beside the checkout (``../shared`` from the repository root);
tests that need them skip, saying where they looked, when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kgc import KnowledgeEngine
from kgc.config import RUNBOOK_NAMES
from kgc.telemetry import tracing

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _no_kgc_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read ``KGC_*`` variables; a developer's shell must not change what tests see."""
    for name in list(os.environ):
        if name.startswith("KGC_") or name in RUNBOOK_NAMES:
            monkeypatch.delenv(name)


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"external cases not found at {SHARED}: clone shared/ beside the checkout")
    return SHARED


@pytest.fixture
def engine() -> KnowledgeEngine:
    """An engine over a fresh in-memory store, strict mode, no hooks."""
    return KnowledgeEngine()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """kgc's spans, recorded in memory (a real SDK provider, parent-based sampling, as
    ``configure_tracing`` installs); the provider is withdrawn afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)
        provider.shutdown()
