"""Where the demo's shipped data lives: the building graph, the policy and the survey queries."""

from __future__ import annotations

from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
BUILDING_TTL = DATA_DIR / "building.ttl"
POLICY_DIR = DATA_DIR / "policy"
QUERIES_DIR = DATA_DIR / "queries"


@cache
def query_text(name: str) -> str:
    """The text of the survey query ``data/queries/<name>.rq``."""
    return (QUERIES_DIR / f"{name}.rq").read_text("utf-8")
