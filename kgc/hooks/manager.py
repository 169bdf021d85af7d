"""``HookManager``: registers, lists and removes hooks; hands the pipeline a consistent snapshot."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kgc.errors import DuplicateHook, HookError, UnknownHook
from kgc.hooks.loader import hook_files, load_hook_file
from kgc.hooks.model import Hook
from kgc.hooks.planner import Plan

DEFAULT_MAX_HOOKS = 10_000


@dataclass(frozen=True)
class PackRef:
    """A policy pack in force: its name, version and digest (see ``kgc.policy``)."""

    name: str
    version: str
    digest: str


@dataclass(frozen=True)
class HookSnapshot:
    """The hooks in force for one transaction, in evaluation order, and their policy digest."""

    pre: tuple[Hook, ...]
    post: tuple[Hook, ...]
    digest: str
    # Some condition reads the transaction history (a ``window``): commits must keep their delta.
    reads_history: bool = False
    # The policy packs whose hooks are in force (swapped in whole by ``HookManager.swap``).
    packs: tuple[PackRef, ...] = ()
    # The planner's index of these hooks (pre then post, in evaluation order).
    plan: Plan = field(default_factory=lambda: Plan.build(()))


class HookManager:
    def __init__(self, max_hooks: int = DEFAULT_MAX_HOOKS) -> None:
        self._lock = threading.Lock()
        self._hooks: dict[str, Hook] = {}
        self._snapshot: HookSnapshot | None = None
        self._packs: tuple[PackRef, ...] = ()
        self.max_hooks = max_hooks

    def register(self, hook: Hook) -> Hook:
        with self._lock:
            if hook.name in self._hooks:
                raise DuplicateHook(f"a hook named {hook.name!r} is already registered")
            if len(self._hooks) >= self.max_hooks:
                raise HookError(
                    f"cannot register {hook.name!r}: the limit of {self.max_hooks} hooks is reached"
                )
            self._hooks[hook.name] = hook
            self._snapshot = None
        return hook

    def load(self, path: str | Path) -> list[Hook]:
        """Register the hook in a file, or every ``*.hook.toml``/``*.hook.json`` in a directory.

        All files are loaded and checked before any is registered: a bad file registers nothing.
        """
        target = Path(path)
        files = hook_files(target) if target.is_dir() else [target]
        hooks = [load_hook_file(f) for f in files]
        names = [h.name for h in hooks]
        clash = {n for n in names if names.count(n) > 1} | (set(names) & set(self._hooks))
        if clash:
            raise DuplicateHook(f"hook name(s) already in use: {', '.join(sorted(clash))}")
        for hook in hooks:
            self.register(hook)
        return hooks

    def remove(self, name: str) -> Hook:
        with self._lock:
            if name not in self._hooks:
                raise UnknownHook(f"no hook named {name!r} is registered")
            self._snapshot = None
            return self._hooks.pop(name)

    def swap(
        self, remove: Iterable[str], add: Sequence[Hook], packs: tuple[PackRef, ...]
    ) -> HookSnapshot:
        """Remove hooks, add hooks and set the packs in force as one step; return the snapshot.

        Everything is checked before anything changes (unknown or duplicate names, the hook
        limit); a transaction pins either the snapshot before the swap or the one after it.
        """
        with self._lock:
            hooks = dict(self._hooks)
            for name in remove:
                if hooks.pop(name, None) is None:
                    raise UnknownHook(f"no hook named {name!r} is registered")
            for hook in add:
                if hook.name in hooks:
                    raise DuplicateHook(f"a hook named {hook.name!r} is already registered")
                hooks[hook.name] = hook
            if len(hooks) > self.max_hooks:
                raise HookError(f"the swap would exceed the limit of {self.max_hooks} hooks")
            self._hooks, self._packs = hooks, packs
            self._snapshot = _build_snapshot(hooks.values(), packs)
            return self._snapshot

    def get(self, name: str) -> Hook:
        try:
            return self._hooks[name]
        except KeyError:
            raise UnknownHook(f"no hook named {name!r} is registered") from None

    def list(self) -> list[Hook]:
        """Every hook, pre before post, higher priority first, then by name."""
        snap = self.snapshot()
        return [*snap.pre, *snap.post]

    def __len__(self) -> int:
        return len(self._hooks)

    def __contains__(self, name: object) -> bool:
        return name in self._hooks

    def snapshot(self) -> HookSnapshot:
        with self._lock:
            if self._snapshot is None:
                self._snapshot = _build_snapshot(self._hooks.values(), self._packs)
            return self._snapshot


def _build_snapshot(hooks: Iterable[Hook], packs: tuple[PackRef, ...] = ()) -> HookSnapshot:
    ordered = sorted(hooks, key=lambda h: (-h.priority, h.name))
    lines = sorted(h.digest for h in ordered)
    # Packs are named only when some are in force, so a pack-less digest is as it always was.
    lines += sorted(f"pack {p.name} {p.version} {p.digest}" for p in packs)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    pre = tuple(h for h in ordered if h.phase == "pre")
    post = tuple(h for h in ordered if h.phase == "post")
    return HookSnapshot(
        pre=pre,
        post=post,
        digest=digest,
        reads_history=any(getattr(h.when, "reads_history", False) for h in ordered),
        packs=packs,
        plan=Plan.build([*pre, *post]),
    )
