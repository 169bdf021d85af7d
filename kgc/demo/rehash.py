"""Keep each condition ref's ``sha256`` in the demo policy in step with the file it names.

::

    python -m kgc.demo.rehash [DIR]            # rewrite stale sha256 values in the hook files
    python -m kgc.demo.rehash --check [DIR]    # list stale refs; exit 1 if there are any

Only ``*.hook.toml`` files are handled, and a ref's ``uri`` must come before its ``sha256`` on
the line that holds them (as in the demo's files).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kgc.demo.assets import POLICY_DIR
from kgc.hooks.refs import ConditionRef


@dataclass(frozen=True)
class StaleRef:
    hook_file: Path
    uri: str
    recorded: str
    actual: str

    def __str__(self) -> str:
        return (
            f"{self.hook_file.name}: ref {self.uri} records sha256 {self.recorded}, "
            f"the file has {self.actual}"
        )


def stale_refs(directory: Path = POLICY_DIR) -> list[StaleRef]:
    """Every condition ref in ``directory`` whose recorded sha256 differs from its file's."""
    stale = []
    for hook_file in sorted(directory.glob("*.hook.toml")):
        ref = tomllib.loads(hook_file.read_text("utf-8"))["when"]["ref"]
        target = ConditionRef(ref["uri"], ref["sha256"], ref["media_type"]).resolve(directory)
        actual = hashlib.sha256(target.read_bytes()).hexdigest()
        if actual != ref["sha256"].lower():
            stale.append(StaleRef(hook_file, ref["uri"], ref["sha256"], actual))
    return stale


def rehash(directory: Path = POLICY_DIR) -> list[StaleRef]:
    """Rewrite every stale sha256 in place; return what was stale."""
    stale = stale_refs(directory)
    for ref in stale:
        text = ref.hook_file.read_text("utf-8")
        pattern = re.compile(
            r'(uri\s*=\s*"' + re.escape(ref.uri) + r'".*?sha256\s*=\s*")[0-9a-fA-F]{64}"'
        )
        ref.hook_file.write_text(pattern.sub(rf'\g<1>{ref.actual}"', text, count=1), "utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kgc.demo.rehash", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=POLICY_DIR)
    parser.add_argument("--check", action="store_true", help="only report stale refs")
    args = parser.parse_args(argv)
    found = stale_refs(args.directory) if args.check else rehash(args.directory)
    for ref in found:
        print(("stale: " if args.check else "updated: ") + str(ref))
    return 1 if args.check and found else 0


if __name__ == "__main__":
    sys.exit(main())
