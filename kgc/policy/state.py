"""The policy directory's state file: the active pack set and the sets before it.

``<policy_path>/state.json``::

    {"format": "kgc-policy-state/1",
     "active": [{"name": "data-quality", "version": "1.0.0", "digest": "..."}],
     "history": [[...], [...]]}          # earlier active sets, oldest first

It is written whole to a temporary file in the same directory, fsynced, renamed over the old one
and the directory fsynced, so a crash leaves the old state or the new one, never a mix. Two
processes changing the same policy directory at once are not coordinated: the last rename wins.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgc.errors import PolicyPackError
from kgc.hooks.manager import PackRef
from kgc.lockchain.journal import fsync_dir

STATE_FORMAT = "kgc-policy-state/1"
STATE_FILE = "state.json"
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class PolicyState:
    active: tuple[PackRef, ...] = ()
    history: tuple[tuple[PackRef, ...], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "active": [_ref_dict(r) for r in self.active],
            "history": [[_ref_dict(r) for r in refs] for refs in self.history],
        }


def read_state(directory: Path) -> PolicyState:
    file = directory / STATE_FILE
    if not file.exists():
        return PolicyState()
    try:
        data = json.loads(file.read_text("utf-8"))
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {STATE_FORMAT!r}")
        active = _refs(data["active"])
        history = tuple(_refs(item) for item in data["history"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PolicyPackError(f"{file}: not a readable policy state file ({exc})") from exc
    return PolicyState(active, history)


def write_state(directory: Path, state: PolicyState) -> None:
    """Replace the state file atomically (temporary file, fsync, rename, fsync the directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n"
    handle, temp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, directory / STATE_FILE)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def _ref_dict(ref: PackRef) -> dict[str, str]:
    return {"name": ref.name, "version": ref.version, "digest": ref.digest}


def _refs(items: Any) -> tuple[PackRef, ...]:
    if not isinstance(items, list):
        raise ValueError("expected a list of packs")
    return tuple(PackRef(str(i["name"]), str(i["version"]), str(i["digest"])) for i in items)
