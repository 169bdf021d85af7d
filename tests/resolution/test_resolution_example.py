"""``examples/resolution_brick.py`` runs from the checkout and explains what it decided."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "resolution_brick.py"


def test_the_brick_example_runs_and_says_why() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("\n\n")
    assert "committed (voting, threshold 0.6)" in first
    assert "committed, +4 -1" in first  # the CO2 sensor (3) and the survey's label, old label out
    assert "site-survey: partial" in first and "bms-integration: partial" in first
    assert "support 0.571 for its removal is below the threshold 0.6" in first
    assert 'kept lh:vav_101 rdfs:label "LH.VAV-101 (study)"' in first
    assert "conflict (functional) on lh:vav_101 rdfs:label" in first
    assert "vetoed (voting" in second and "vetoed by: no-self-feed" in second
