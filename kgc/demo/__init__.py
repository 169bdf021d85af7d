"""The demo: a Brick building, a governance policy for it, and a stream of changes to replay.

``run_demo`` is what ``kgc demo`` runs; ``ChangeStream`` works on any engine that holds a Brick
graph (the shipped ``BUILDING_TTL`` or a real one) and ``POLICY_DIR`` holds the hook files.
"""

from kgc.demo.assets import BUILDING_TTL, POLICY_DIR
from kgc.demo.report import format_report
from kgc.demo.runner import DemoReport, Replay, replay_stream, run_demo
from kgc.demo.stream import Change, ChangeStream

__all__ = [
    "BUILDING_TTL",
    "POLICY_DIR",
    "Change",
    "ChangeStream",
    "DemoReport",
    "Replay",
    "format_report",
    "replay_stream",
    "run_demo",
]
