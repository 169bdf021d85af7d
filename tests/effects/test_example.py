"""examples/sandboxed_effect.py runs from the checkout and shows a proposal becoming a receipt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sandboxed_effect.py"


def test_the_sandboxed_effect_example_labels_the_unlabelled_sensors() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "effect flag-unlabelled: ran (sandboxed)" in out
    assert "layers: rlimits, user, no_new_privs, landlock, seccomp" in out
    assert "committed by effect:flag-unlabelled, 2 added" in out
    assert "zone-temp-2: unlabelled zone-temp-2" in out
    assert "zone-temp-1: Zone 1 temperature" in out
