"""Content-addressed references to condition files: ``{uri, sha256, media_type}``.

A ref's text is loaded only if its SHA-256 matches; a mismatch refuses to load. ``file:`` URIs
that are relative (``file:shapes/points.ttl``) resolve against the directory of the hook that
names them; absolute ones (``file:///etc/kgc/x.rq``) are used as they are. No other scheme is
fetched: kgc never reaches the network to load policy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from kgc.errors import ConditionHashMismatch, ConditionRefError

MEDIA_TYPES = {
    "application/sparql-query",
    "text/turtle",
    "application/n-triples",
    "application/trig",
}


@dataclass(frozen=True)
class ConditionRef:
    uri: str
    sha256: str
    media_type: str

    def resolve(self, base_dir: Path | None) -> Path:
        parsed = urlparse(self.uri)
        if parsed.scheme != "file":
            raise ConditionRefError(
                f"condition ref {self.uri!r}: only file: URIs are supported (no network fetches)"
            )
        if parsed.netloc not in ("", "localhost"):
            raise ConditionRefError(
                f"condition ref {self.uri!r}: remote file hosts are not allowed"
            )
        raw = unquote(parsed.path)
        path = Path(raw)
        if not path.is_absolute():
            if base_dir is None:
                raise ConditionRefError(
                    f"condition ref {self.uri!r} is relative but the hook has no directory"
                )
            path = base_dir / raw
        return path

    def load(self, base_dir: Path | None) -> str:
        """Read the referenced file, check its SHA-256, and return its text."""
        path = self.resolve(base_dir)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConditionRefError(
                f"condition ref {self.uri!r}: cannot read {path}: {exc.strerror}"
            ) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.sha256.lower():
            raise ConditionHashMismatch(
                f"condition file {path}: sha256 is {actual}, but the hook's ref expects "
                f"{self.sha256}; refusing to load it"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConditionRefError(f"condition file {path} is not UTF-8: {exc}") from exc
