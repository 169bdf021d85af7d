"""Where the demo's shipped data lives: the building graph, the policy packs and the queries.

The packs under ``data/packs`` are the single copy of the shipped policy: ``examples/packs``
links to them, and they are package data, so an installed kgc runs the demo with them too.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
BUILDING_TTL = DATA_DIR / "building.ttl"
PACKS_DIR = DATA_DIR / "packs"
GOVERNANCE_PACK = PACKS_DIR / "building-governance"
DATA_QUALITY_PACK = PACKS_DIR / "data-quality"
# Activation order: data-quality first, as building-governance depends on it.
PACK_DIRS = (DATA_QUALITY_PACK, GOVERNANCE_PACK)
POLICY_DIR = GOVERNANCE_PACK
QUERIES_DIR = DATA_DIR / "queries"


@cache
def query_text(name: str) -> str:
    """The text of the survey query ``data/queries/<name>.rq``."""
    return (QUERIES_DIR / f"{name}.rq").read_text("utf-8")
