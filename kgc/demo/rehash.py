"""Keep the shipped policy packs' hashes in step with their files.

::

    python -m kgc.demo.rehash [PACK_DIR ...]            # rewrite stale hashes
    python -m kgc.demo.rehash --check [PACK_DIR ...]    # list them; exit 1 if there are any

Two kinds of hash go stale when a condition or hook file is edited: a condition ref's
``sha256`` in a ``*.hook.toml`` file, and the pack manifest's ``[files]`` table (which also
covers the hook files, so it is refreshed after the refs). Only ``*.hook.toml`` files are
handled, and a ref's ``uri`` must come before its ``sha256`` on the line that holds them (as in
the shipped files). Without arguments, every pack under ``kgc/demo/data/packs`` is handled.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kgc.demo.assets import PACK_DIRS, POLICY_DIR
from kgc.hooks.refs import ConditionRef
from kgc.policy.authoring import files_table, refresh_files_table
from kgc.policy.pack import condition_refs


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
        for ref in condition_refs(tomllib.loads(hook_file.read_text("utf-8"))):
            target = ConditionRef(ref["uri"], ref["sha256"], ref["media_type"]).resolve(directory)
            actual = hashlib.sha256(target.read_bytes()).hexdigest()
            found = StaleRef(hook_file, ref["uri"], ref["sha256"], actual)
            if actual != ref["sha256"].lower() and found not in stale:
                stale.append(found)
    return stale


def stale_manifest(directory: Path) -> bool:
    """Whether ``directory/pack.toml``'s ``[files]`` table differs from the files."""
    manifest = directory / "pack.toml"
    return manifest.exists() and files_table(directory) not in manifest.read_text("utf-8")


def rehash(directory: Path = POLICY_DIR) -> list[StaleRef]:
    """Rewrite every stale sha256 in place, then the pack manifest's table; return the refs."""
    stale = stale_refs(directory)
    for ref in stale:
        text = ref.hook_file.read_text("utf-8")
        pattern = re.compile(
            r'(uri\s*=\s*"' + re.escape(ref.uri) + r'".*?sha256\s*=\s*")[0-9a-fA-F]{64}"'
        )
        ref.hook_file.write_text(pattern.sub(rf'\g<1>{ref.actual}"', text), "utf-8")
    if (directory / "pack.toml").exists():
        refresh_files_table(directory)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kgc.demo.rehash", description=__doc__)
    parser.add_argument("directories", nargs="*", type=Path, default=list(PACK_DIRS))
    parser.add_argument("--check", action="store_true", help="only report stale hashes")
    args = parser.parse_args(argv)
    found = 0
    for directory in args.directories:
        stale_pack = stale_manifest(directory)
        refs = stale_refs(directory) if args.check else rehash(directory)
        for ref in refs:
            print(("stale: " if args.check else "updated: ") + str(ref))
        if stale_pack:
            print(("stale: " if args.check else "updated: ") + f"{directory / 'pack.toml'} [files]")
        found += len(refs) + stale_pack
    return 1 if args.check and found else 0


if __name__ == "__main__":
    sys.exit(main())
