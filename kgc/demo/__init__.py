"""The demo: a Brick building, two policy packs for it, and a stream of changes to replay.

``run_demo`` is what ``kgc demo`` runs; ``ChangeStream`` works on any engine that holds a Brick
graph (the shipped ``BUILDING_TTL`` or a real one). ``PACK_DIRS`` are the shipped packs
(data-quality, then building-governance, which depends on it); ``POLICY_DIR`` is the
building-governance pack's directory.
"""

from kgc.demo.assets import BUILDING_TTL, PACK_DIRS, POLICY_DIR
from kgc.demo.report import format_report
from kgc.demo.runner import DemoReport, Replay, replay_stream, run_demo
from kgc.demo.stream import Change, ChangeStream

__all__ = [
    "BUILDING_TTL",
    "PACK_DIRS",
    "POLICY_DIR",
    "Change",
    "ChangeStream",
    "DemoReport",
    "Replay",
    "format_report",
    "replay_stream",
    "run_demo",
]
