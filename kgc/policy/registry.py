"""``PolicyRegistry``: installs policy packs and changes the active set as one swap.

Every change (activate, deactivate, upgrade, rollback) follows the same steps:

1. load and verify every pack of the new active set (hashes, signature, hooks);
2. check the whole set: each pack's ``compatibility.kgc`` holds for this kgc, and each of its
   dependencies is in the set at a version its range accepts;
3. swap the hooks of the old set for those of the new set with ``HookManager.swap``: one step
   under the manager's lock, so a transaction pins the old set or the new one, never a mix;
4. with a policy directory, write the new state atomically; if that fails, swap back.

Failing any step changes nothing. Hooks registered outside packs are left alone (a pack hook
cannot clash with them: pack hooks are named ``<pack>/<hook>``).

Without a directory (``root=None``) the registry lives in memory: packs are loaded from where
they are and nothing survives the process. With one, packs are copied into
``<root>/packs/<name>/<version>/`` when installed, re-verified whenever they are loaded, and
``<root>/state.json`` holds the active set and its history.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from kgc.errors import PackDependencyError, PolicyPackError
from kgc.hooks.manager import HookManager, PackRef
from kgc.lockchain.journal import fsync_dir
from kgc.policy.archive import is_archive, unpack
from kgc.policy.manifest import MANIFEST_NAMES, read_manifest
from kgc.policy.pack import PolicyPack, load_pack
from kgc.policy.semver import Version, VersionRange
from kgc.policy.signing import SIGNATURE_FILE, TrustedKeys
from kgc.policy.state import HISTORY_LIMIT, PolicyState, read_state, write_state

logger = logging.getLogger(__name__)


class PolicyRegistry:
    def __init__(
        self,
        hooks: HookManager,
        root: str | os.PathLike[str] | None = None,
        *,
        trusted: TrustedKeys | None = None,
        require_signatures: bool = False,
    ) -> None:
        self.hooks = hooks
        self.root = Path(root) if root is not None else None
        self.trusted = trusted or TrustedKeys()
        self.require_signatures = require_signatures
        self._lock = threading.RLock()
        self._loaded: dict[tuple[str, str], PolicyPack] = {}
        self._active: dict[str, PolicyPack] = {}
        self._history: list[tuple[PackRef, ...]] = []
        self._fresh: list[tuple[str, str]] = []  # installed by the activation in progress

    # Reading --------------------------------------------------------------------------------

    def active(self) -> tuple[PolicyPack, ...]:
        with self._lock:
            return tuple(self._active[name] for name in sorted(self._active))

    def installed(self) -> list[PackRef]:
        """Every installed pack (name, version, digest), sorted by name then version."""
        refs = [p.ref for p in self._loaded.values()]
        if self.root is not None:
            refs = [*refs, *self._installed_on_disk()]
        unique = {(r.name, r.version): r for r in refs}
        return sorted(unique.values(), key=lambda r: (r.name, Version.parse(r.version)))

    @property
    def history(self) -> tuple[tuple[PackRef, ...], ...]:
        return tuple(self._history)

    # Changing -------------------------------------------------------------------------------

    def install(self, source: str | os.PathLike[str]) -> PolicyPack:
        """Verify the pack directory or archive at ``source`` and keep it; nothing activates."""
        path = Path(source)
        if is_archive(path):
            scratch = Path(tempfile.mkdtemp(prefix="kgc-pack-", dir=self._scratch_dir()))
            try:
                return self._install_dir(unpack(path, scratch))
            finally:
                if self.root is not None:
                    shutil.rmtree(scratch, ignore_errors=True)
        if not path.is_dir():
            raise PolicyPackError(f"{source}: not a pack directory or .tar.gz/.tgz/.zip archive")
        return self._install_dir(path)

    def activate(self, *specs: str | os.PathLike[str]) -> tuple[PackRef, ...]:
        """Make the packs named by ``specs`` active, in one swap; return the new active set.

        A spec is a pack directory or archive (installed first), or ``name`` / ``name@version``
        of an installed pack (the highest version when none is given). A pack whose name is
        already active replaces that version: this is how a pack is upgraded (or downgraded).
        """
        with self._lock:
            self._fresh = []
            try:
                new = dict(self._active)
                for spec in specs:
                    pack = self._resolve(spec)
                    new[pack.name] = pack
                return self._change(new)
            except BaseException:
                self._uninstall(self._fresh)  # refused: leave nothing installed either
                raise

    def deactivate(self, *names: str) -> tuple[PackRef, ...]:
        """Take the named packs out of force, in one swap; refused while others depend on them."""
        with self._lock:
            missing = [n for n in names if n not in self._active]
            if missing:
                raise PolicyPackError(f"pack {missing[0]!r} is not active")
            new = {n: p for n, p in self._active.items() if n not in names}
            for pack in new.values():
                for dep, text in pack.manifest.dependencies.items():
                    if dep in names:
                        raise PackDependencyError(
                            f"cannot deactivate {dep}: active pack {pack} depends on it "
                            f"({dep} {text}); deactivate {pack.name} too, or first"
                        )
            return self._change(new)

    def rollback(self) -> tuple[PackRef, ...]:
        """Return to the active set before the last change (repeatable, back through history)."""
        with self._lock:
            if not self._history:
                raise PolicyPackError("no earlier policy to roll back to")
            previous = self._history[-1]
            new = {ref.name: self._load_ref(ref) for ref in previous}
            return self._change(new, rolling_back=True)

    def restore(self) -> tuple[PackRef, ...]:
        """Put the policy directory's recorded active set in force (at start)."""
        if self.root is None:
            return ()
        with self._lock:
            state = read_state(self.root)
            new = {ref.name: self._load_ref(ref) for ref in state.active}
            self._history = list(state.history)
            return self._change(new, record=False)

    # Steps ----------------------------------------------------------------------------------

    def _change(
        self, new: dict[str, PolicyPack], *, rolling_back: bool = False, record: bool = True
    ) -> tuple[PackRef, ...]:
        check_set(new)
        old_refs = tuple(self._active[n].ref for n in sorted(self._active))
        new_refs = tuple(new[n].ref for n in sorted(new))
        remove = [h.name for p in self._active.values() for h in p.hooks]
        add = [h for name in sorted(new) for h in new[name].hooks]
        self.hooks.swap(remove, add, new_refs)

        history = list(self._history)
        if rolling_back:
            history.pop()
        elif record and new_refs != old_refs:
            history = [*history, old_refs][-HISTORY_LIMIT:]
        try:
            if self.root is not None and (record or rolling_back):
                write_state(self.root, PolicyState(new_refs, tuple(history)))
        except OSError as exc:
            old_hooks = [h for name in sorted(self._active) for h in self._active[name].hooks]
            self.hooks.swap([h.name for h in add], old_hooks, old_refs)
            raise PolicyPackError(f"{self.root}: cannot record the policy state: {exc}") from exc
        self._active, self._history = new, history
        logger.info("Policy packs in force: %s", ", ".join(map(str, new.values())) or "none")
        return new_refs

    def _resolve(self, spec: str | os.PathLike[str]) -> PolicyPack:
        path = Path(spec)
        if path.is_dir() or is_archive(path):
            return self.install(path)
        text = os.fspath(spec)
        name, _, version = text.partition("@")
        candidates = [r for r in self.installed() if r.name == name]
        if version:
            candidates = [r for r in candidates if r.version == version]
        if not candidates:
            what = f"{name}@{version}" if version else name
            raise PolicyPackError(f"{what}: no such pack directory, archive or installed pack")
        return self._load_ref(candidates[-1], check_digest=False)

    def _load_ref(self, ref: PackRef, *, check_digest: bool = True) -> PolicyPack:
        pack = self._loaded.get((ref.name, ref.version))
        if pack is None:
            if self.root is None:
                raise PolicyPackError(f"{ref.name}@{ref.version} is not installed")
            pack = self._load(self._pack_dir(ref.name, ref.version))
        if check_digest and pack.digest != ref.digest:
            raise PolicyPackError(
                f"{pack.root}: installed {ref.name}@{ref.version} has digest {pack.digest}, but "
                f"the policy state recorded {ref.digest}; refusing to put it in force"
            )
        self._loaded[(ref.name, ref.version)] = pack
        return pack

    def _load(self, directory: Path) -> PolicyPack:
        return load_pack(directory, trusted=self.trusted, require_signature=self.require_signatures)

    def _install_dir(self, source: Path) -> PolicyPack:
        pack = self._load(source)
        key = (pack.name, pack.manifest.version)
        known = self._loaded.get(key) or self._on_disk(*key)
        if known is not None:
            if known.digest != pack.digest:
                raise PolicyPackError(
                    f"{pack} is already installed with digest {known.digest}, and {source} has "
                    f"{pack.digest}: a version's content cannot change; bump the version"
                )
            return known
        if self.root is not None:
            pack = self._load(self._copy_in(pack))
        self._loaded[key] = pack
        self._fresh.append(key)
        return pack

    def _uninstall(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            pack = self._loaded.pop(key)
            if self.root is not None:
                shutil.rmtree(pack.root, ignore_errors=True)

    def _copy_in(self, pack: PolicyPack) -> Path:
        target = self._pack_dir(pack.name, pack.manifest.version)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=".install-", dir=target.parent))
        names = [*pack.manifest.files, *(n for n in (*MANIFEST_NAMES, SIGNATURE_FILE))]
        for rel in names:
            if (pack.root / rel).is_file():
                (temp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(pack.root / rel, temp / rel)
        os.replace(temp, target)
        fsync_dir(target.parent)
        return target

    def _on_disk(self, name: str, version: str) -> PolicyPack | None:
        if self.root is None or not self._pack_dir(name, version).is_dir():
            return None
        return self._load(self._pack_dir(name, version))

    def _installed_on_disk(self) -> list[PackRef]:
        assert self.root is not None
        refs = []
        for directory in sorted((self.root / "packs").glob("*/*")):
            if directory.name.startswith("."):
                continue
            try:
                manifest, _ = read_manifest(directory)
            except PolicyPackError as exc:
                logger.warning("Installed pack %s cannot be read: %s", directory, exc)
                continue
            refs.append(PackRef(manifest.name, manifest.version, manifest.digest()))
        return refs

    def _pack_dir(self, name: str, version: str) -> Path:
        assert self.root is not None
        return self.root / "packs" / name / version

    def _scratch_dir(self) -> Path | None:
        if self.root is None:
            return None  # in memory the unpacked pack is loaded from the scratch directory
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root


def check_set(packs: dict[str, PolicyPack]) -> None:
    """Refuse a set of packs in which a compatibility or dependency range does not hold."""
    for pack in packs.values():
        check_compatibility(pack)
        for dep, text in sorted(pack.manifest.dependencies.items()):
            other = packs.get(dep)
            if other is None:
                raise PackDependencyError(
                    f"{pack} depends on {dep} {text}, which would not be active; "
                    f"activate {dep} with it"
                )
            if not VersionRange.parse(text).contains(other.version):
                raise PackDependencyError(f"{pack} depends on {dep} {text}, but {other} is active")


def check_compatibility(pack: PolicyPack) -> None:
    """Refuse a pack whose ``compatibility.kgc`` range does not accept the running kgc."""
    import kgc

    running = Version.parse(kgc.__version__)
    wanted = pack.manifest.compatibility.get("kgc")
    if wanted is not None and not VersionRange.parse(wanted).contains(running):
        raise PackDependencyError(f"{pack} needs kgc {wanted}; this is kgc {running}")
