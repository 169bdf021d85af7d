"""The API keys file of ``kgc serve``: one ``KEY ROLE`` a line, ``#`` starts a comment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

from kgc.errors import ConfigError

ROLES = ("read", "write", "admin")


def read_api_keys(path: Path) -> dict[str, Literal["read", "write", "admin"]]:
    """Keys and roles from ``path``; a malformed line is refused naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the API keys file {path}: {exc}") from exc
    roles: dict[str, Literal["read", "write", "admin"]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2 or words[1] not in ROLES:
            raise ConfigError(
                f"{path}, line {number}: expected 'KEY ROLE' with ROLE one of "
                f"{', '.join(ROLES)} (the key is not repeated here)"
            )
        if words[0] in roles and roles[words[0]] != words[1]:
            raise ConfigError(
                f"{path}, line {number}: this key was given the role {roles[words[0]]!r} "
                f"before; one key, one role (the key is not repeated here)"
            )
        roles[words[0]] = cast(Literal["read", "write", "admin"], words[1])
    if not roles:
        # Fail closed: a mounted secrets file with no key would leave the server open to
        # anonymous reads, which its operator plainly did not mean.
        raise ConfigError(f"the API keys file {path} holds no key ('KEY ROLE' lines)")
    return roles
