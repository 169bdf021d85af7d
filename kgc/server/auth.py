"""API keys with roles: ``read`` < ``write`` < ``admin`` (each role includes the ones below).

Keys come from ``api_keys`` (``KGC_API_KEYS="key1:read,key2:write"``) and from ``api_keys_file``, a
mounted secret of ``role key`` lines. A request presents its key as ``Authorization: Bearer KEY``,
``X-API-Key: KEY`` or HTTP Basic with the key as the password (for clients that only speak Basic,
such as rdflib's ``SPARQLStore``).

Guarantees: keys are held only as SHA-256 digests; a presented key is compared with every
configured digest by ``hmac.compare_digest``, without stopping at a match, so the time taken does
not depend on which key (if any) matched; no key is ever logged or put in an error message. A
principal is named by a short digest prefix (``key-1a2b3c4d``), which is what receipts record as
the actor.

Anonymous requests (no key): ``write`` when ``allow_anonymous_writes`` is set; otherwise ``read``
when no key is configured at all (a loopback-only default); otherwise refused with 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from kgc.errors import ConfigError
from kgc.server.settings import ServerSettings

logger = logging.getLogger(__name__)
Role = Literal["read", "write", "admin"]
RANK: dict[str, int] = {"read": 1, "write": 2, "admin": 3}
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


ANONYMOUS_READER = Principal("anonymous", "read")
ANONYMOUS_WRITER = Principal("anonymous", "write")


class KeyRing:
    """The configured keys, as digests, and the anonymous principal."""

    def __init__(
        self, keys: Iterable[tuple[str, Role]] = (), *, allow_anonymous_writes: bool = False
    ) -> None:
        entries: list[tuple[bytes, Principal]] = []
        for key, role in keys:
            digest = hashlib.sha256(key.encode()).digest()
            entries.append((digest, Principal(f"key-{digest.hex()[:8]}", role)))
            if len(key) < MIN_KEY_LENGTH:
                logger.warning(
                    "API key %s is shorter than %d characters", entries[-1][1].name, MIN_KEY_LENGTH
                )
        if allow_anonymous_writes:
            anonymous: Principal | None = ANONYMOUS_WRITER
        else:
            anonymous = None if entries else ANONYMOUS_READER
        self._entries = tuple(entries)
        self.anonymous = anonymous

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> KeyRing:
        keys: list[tuple[str, Role]] = []
        if settings.api_keys is not None:
            keys += parse_key_list(settings.api_keys.get_secret_value())
        if settings.api_keys_file is not None:
            keys += read_key_file(settings.api_keys_file)
        return cls(keys, allow_anonymous_writes=settings.allow_anonymous_writes)

    def __len__(self) -> int:
        return len(self._entries)

    def identify(self, presented: str) -> Principal | None:
        """The principal whose key is ``presented``, or ``None``; constant time in the match."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found: Principal | None = None
        for known, principal in self._entries:
            if hmac.compare_digest(known, digest):
                found = principal
        return found


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key a request carries, from ``X-API-Key`` or ``Authorization`` (Bearer or Basic)."""
    if api_key:
        return api_key
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""  # a scheme we do not take: a presented but unusable credential


def parse_key_list(text: str) -> list[tuple[str, Role]]:
    """``key1:read,key2:write`` -> pairs; errors name the entry's position, never the key."""
    keys: list[tuple[str, Role]] = []
    for index, raw in enumerate(text.split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        key, sep, role = entry.rpartition(":")
        keys.append((key, _role(role, sep and key, f"api_keys entry {index}")))
    return keys


def read_key_file(path: Path) -> list[tuple[str, Role]]:
    """``KEY ROLE`` lines (``kgc.config_keys``, the one format); ``#`` starts a comment."""
    from kgc.config_keys import read_api_keys

    return list(read_api_keys(path).items())


def _role(role: str, key: str, where: str) -> Role:
    if not key:
        raise ConfigError(f"{where}: expected a key and a role (read, write or admin)")
    if role not in RANK:
        # The role is not echoed: a line written the wrong way round would put the key here.
        raise ConfigError(f"{where}: unknown role; expected read, write or admin")
    return cast(Role, role)
