"""Versioned policy packs: a manifest, hooks and condition files, verified and swapped in whole.

See ``docs/policy.md``. ``load_pack`` verifies one pack; ``PolicyRegistry`` installs packs and
changes the active set atomically; ``sign_pack`` and ``TrustedKeys`` handle signatures.
"""

from kgc.policy.manifest import PackManifest, read_manifest
from kgc.policy.pack import PolicyPack, file_hashes, load_pack
from kgc.policy.registry import PolicyRegistry, check_set
from kgc.policy.semver import Version, VersionError, VersionRange
from kgc.policy.signing import TrustedKeys, sign_pack

__all__ = [
    "PackManifest",
    "PolicyPack",
    "PolicyRegistry",
    "TrustedKeys",
    "Version",
    "VersionError",
    "VersionRange",
    "check_set",
    "file_hashes",
    "load_pack",
    "read_manifest",
    "sign_pack",
]
