"""Fixtures for the server tests (helpers live in ``served.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from served import make_client
from starlette.testclient import TestClient

from kgc import KnowledgeEngine


@pytest.fixture
def engine() -> Iterator[KnowledgeEngine]:
    with KnowledgeEngine() as engine:
        yield engine


@pytest.fixture
def client(engine: KnowledgeEngine) -> Iterator[TestClient]:
    with make_client(engine) as client:
        yield client
