"""``kgc policy``: validate, install and switch versioned policy packs (see docs/policy.md).

::

    kgc policy validate PATH [--trust FILE ...] [--require-signatures]
    kgc policy list [--policy-path DIR]
    kgc policy activate PATH|NAME[@VERSION] ... [--policy-path DIR] [--trust FILE ...]
    kgc policy deactivate NAME ... [--policy-path DIR]
    kgc policy rollback [--policy-path DIR]
    kgc policy keygen PREFIX                   # PREFIX.key (private, mode 600) and PREFIX.pub
    kgc policy sign DIR --key FILE

The policy directory is ``--policy-path`` or ``KGC_POLICY_PATH``; trusted keys are ``--trust``
files and ``KGC_POLICY_TRUSTED_KEYS``. Exit status: 0 done, 1 refused (the message says why;
nothing changed), 2 usage.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from kgc.config import load_settings
from kgc.errors import ConfigError
from kgc.hooks.manager import HookManager, PackRef
from kgc.lockchain.signing import SigningKey
from kgc.policy.archive import is_archive, unpack
from kgc.policy.pack import PolicyPack, load_pack
from kgc.policy.registry import PolicyRegistry, check_compatibility
from kgc.policy.signing import TrustedKeys, sign_pack


def add_commands(commands: Any) -> None:
    """Add ``policy`` and its actions to the ``kgc`` command's subparsers."""
    policy = commands.add_parser(
        "policy",
        help="validate, activate, deactivate and roll back policy packs",
        description="Manage versioned policy packs: a manifest, hook files and condition files, "
        "checked by hash (and signature) and put in force as one set.",
    )
    actions = policy.add_subparsers(dest="action", required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="check a pack directory or archive")
    validate.add_argument("path", type=Path, metavar="PATH")
    _trust_options(validate)

    listing = actions.add_parser("list", help="installed packs; * marks the active ones")
    _path_option(listing)
    _trust_options(listing)
    activate = actions.add_parser("activate", help="install and activate packs in one swap")
    activate.add_argument("specs", nargs="+", metavar="PATH|NAME[@VERSION]")
    _path_option(activate)
    _trust_options(activate)
    deactivate = actions.add_parser("deactivate", help="take packs out of force in one swap")
    deactivate.add_argument("names", nargs="+", metavar="NAME")
    _path_option(deactivate)
    _trust_options(deactivate)
    rollback = actions.add_parser("rollback", help="back to the active set before the last change")
    _path_option(rollback)
    _trust_options(rollback)

    keygen = actions.add_parser("keygen", help="write a new Ed25519 key pair for signing packs")
    keygen.add_argument("prefix", type=Path, metavar="PREFIX")
    sign = actions.add_parser("sign", help="write pack.sig for a pack directory")
    sign.add_argument("directory", type=Path, metavar="DIR")
    sign.add_argument("--key", type=Path, required=True, metavar="FILE", help="private key file")


def _path_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy-path", type=Path, metavar="DIR", help="policy directory (KGC_POLICY_PATH)"
    )


def _trust_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="file of trusted public keys, one a line (repeatable; KGC_POLICY_TRUSTED_KEYS)",
    )
    parser.add_argument(
        "--require-signatures", action="store_true", help="refuse packs no trusted key signed"
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "validate":
        return _validate(args)
    if args.action == "keygen":
        return _keygen(args)
    if args.action == "sign":
        path = sign_pack(args.directory, SigningKey.from_file(args.key))
        print(f"signed: {path}")
        return 0
    registry = _registry(args)
    if args.action == "list":
        return _list(registry)
    if args.action == "activate":
        refs = registry.activate(*args.specs)
    elif args.action == "deactivate":
        refs = registry.deactivate(*args.names)
    else:
        refs = registry.rollback()
    print("active: " + (", ".join(_short(r) for r in refs) or "none"))
    return 0


def _validate(args: argparse.Namespace) -> int:
    trusted, required = _trust(args)
    with tempfile.TemporaryDirectory(prefix="kgc-pack-") as scratch:
        root = unpack(args.path, Path(scratch)) if is_archive(args.path) else args.path
        pack = load_pack(root, trusted=trusted, require_signature=required)
        check_compatibility(pack)  # dependencies are listed, not required, when one pack is checked
        print(_describe(pack))
    return 0


def _describe(pack: PolicyPack) -> str:
    signer = f"signed by key {pack.signed_by[:16]}..." if pack.signed_by else "unsigned"
    lines = [
        f"ok: {pack} digest {pack.digest} ({signer})",
        f"  hooks: {', '.join(h.name for h in pack.hooks)}",
    ]
    lines += [f"  needs: {dep} {rng}" for dep, rng in sorted(pack.manifest.dependencies.items())]
    return "\n".join(lines)


def _list(registry: PolicyRegistry) -> int:
    active = {p.ref for p in registry.active()}
    installed = registry.installed()
    if not installed:
        print("no packs installed")
    for ref in installed:
        mark = "*" if ref in active else " "
        print(f"{mark} {ref.name}@{ref.version}  {ref.digest}")
    print(f"history: {len(registry.history)} earlier set(s)")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    private, public = Path(f"{args.prefix}.key"), Path(f"{args.prefix}.pub")
    if private.exists() or public.exists():
        raise ConfigError(f"{private} or {public} already exists; refusing to overwrite a key")
    key = SigningKey.generate()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.to_pem())
    public.write_text(key.public_key_hex + "\n", "utf-8")
    print(f"private key: {private} (keep it secret)\npublic key:  {public} {key.public_key_hex}")
    return 0


def _registry(args: argparse.Namespace) -> PolicyRegistry:
    settings = load_settings()
    path = args.policy_path or settings.policy_path
    if path is None:
        raise ConfigError("no policy directory: pass --policy-path DIR or set KGC_POLICY_PATH")
    trusted, required = _trust(args)
    registry = PolicyRegistry(HookManager(), path, trusted=trusted, require_signatures=required)
    registry.restore()
    return registry


def _trust(args: argparse.Namespace) -> tuple[TrustedKeys, bool]:
    settings = load_settings()
    files = list(getattr(args, "trust", []))
    if settings.policy_trusted_keys is not None:
        files.append(settings.policy_trusted_keys)
    required = getattr(args, "require_signatures", False) or settings.policy_require_signatures
    return TrustedKeys.from_files(*files), required


def _short(ref: PackRef) -> str:
    return f"{ref.name}@{ref.version} ({ref.digest[:12]})"
