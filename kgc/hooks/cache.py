"""A cache of condition results: L1 in this process, and optionally L2 in Redis, shared.

An entry is keyed by the condition's digest and a ``version``: an opaque string that the caller
derives from exactly the data the condition read (the state digests before and after the
transaction, say). A result is a pure function of the condition and that data, so an entry can
never be stale; nothing expires for correctness. The caller must not cache a condition whose
result depends on anything else: see ``cacheable``.

L1 is a thread-safe LRU of ``size`` entries. L2 (``RedisL2``) is consulted on an L1 miss; a hit
there is copied into L1. L2 is best effort: a Redis that is down, slow or holds a value that is
not ours costs at most its timeout and reads as a miss, never an exception. After a failure L2 is
skipped for ``retry_after_s`` seconds, so a dead Redis costs nothing per transaction.

Whoever can write to the Redis database can choose condition results, and so whether a hook
vetoes: give it the trust given to the store (ACLs, TLS, a private network). See docs/cache.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import cachetools

from kgc.errors import ConfigError
from kgc.hooks.conditions import Condition, ConditionResult

if TYPE_CHECKING:
    from kgc.config import Settings

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
_MAX_VALUE_BYTES = 1 << 20
_FIELDS = frozenset({"v", "fired", "detail", "rows", "bindings"})
# Kinds whose result depends only on the condition and the data it reads.
_PURE_KINDS = frozenset({"sparql-ask", "sparql-select", "shacl", "count", "threshold", "delta"})
_COMBINATOR_KINDS = frozenset({"all", "any", "not", "at-least-k"})
# SPARQL that reads the clock, draws random values or leaves the store.
_IMPURE_SPARQL = re.compile(r"\b(?:NOW|RAND|UUID|STRUUID)\s*\(|\bSERVICE\b", re.IGNORECASE)
# GRAPH with a variable name: without a channel it also sees every channel's copies of the delta
# graphs, which depend on the hooks registered, not only on the data the version names.
_GRAPH_VARIABLE = re.compile(r"\bGRAPH(?:\s|#[^\n]*)*[?$]", re.IGNORECASE)


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made; ``clear()`` empties entries but keeps them.

    ``misses`` counts lookups answered by neither level (an L2 error or rejected value included);
    ``l2_errors`` counts Redis calls that failed or timed out; ``l2_rejected`` counts L2 values
    that were corrupt or not ours. ``size`` is the number of L1 entries now.
    """

    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    puts: int = 0
    evictions: int = 0
    l2_errors: int = 0
    l2_rejected: int = 0
    size: int = 0
    maxsize: int = 0

    @property
    def lookups(self) -> int:
        return self.l1_hits + self.l2_hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Share of lookups answered from L1 or L2, in [0, 1]; 0.0 before the first lookup."""
        return (self.l1_hits + self.l2_hits) / self.lookups if self.lookups else 0.0


class _CountingLRU(cachetools.LRUCache[tuple[str, str], ConditionResult]):
    evictions = 0

    def popitem(self) -> tuple[tuple[str, str], ConditionResult]:
        item = super().popitem()
        self.evictions += 1
        return item


class ConditionCache:
    """Condition results by (condition digest, version); ``size`` 0 disables the cache.

    Safe to share between threads. ``get`` and ``put`` never raise because of L2.
    """

    def __init__(self, size: int = 10_000, *, l2: RedisL2 | None = None) -> None:
        if size < 0:
            raise ConfigError(f"cache size must be >= 0 (0 disables the cache); got {size}")
        if size == 0 and l2 is not None:
            raise ConfigError("cache size 0 disables the cache; it cannot have a Redis level")
        self._l1 = _CountingLRU(size) if size else None
        self._l2 = l2
        self._lock = threading.Lock()
        self._l1_hits = self._l2_hits = self._misses = self._puts = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConditionCache:
        """The cache ``cache_size``, ``enable_caching`` and ``redis_url`` describe."""
        if not settings.enable_caching or settings.cache_size == 0:
            return cls(0)
        l2 = RedisL2(settings.redis_url) if settings.redis_url else None
        return cls(settings.cache_size, l2=l2)

    @property
    def enabled(self) -> bool:
        return self._l1 is not None

    def get(self, condition_digest: str, version: str) -> ConditionResult | None:
        """The cached result, or ``None``: evaluate, then ``put`` the result."""
        if self._l1 is None:
            return None
        key = (condition_digest, version)
        with self._lock:
            result = self._l1.get(key)
            if result is not None:
                self._l1_hits += 1
                return result

        if self._l2 is not None:
            result = self._l2.get(condition_digest, version)
        with self._lock:
            if result is None:
                self._misses += 1
                return None
            self._l1[key] = result
            self._l2_hits += 1
            return result

    def put(self, condition_digest: str, version: str, result: ConditionResult) -> None:
        if self._l1 is None:
            return
        with self._lock:
            self._l1[(condition_digest, version)] = result
            self._puts += 1
        if self._l2 is not None:
            self._l2.put(condition_digest, version, result)

    def stats(self) -> CacheStats:
        l1 = self._l1
        with self._lock:
            return CacheStats(
                l1_hits=self._l1_hits,
                l2_hits=self._l2_hits,
                misses=self._misses,
                puts=self._puts,
                evictions=l1.evictions if l1 is not None else 0,
                l2_errors=self._l2.errors if self._l2 is not None else 0,
                l2_rejected=self._l2.rejected if self._l2 is not None else 0,
                size=len(l1) if l1 is not None else 0,
                maxsize=int(l1.maxsize) if l1 is not None else 0,
            )

    def clear(self) -> None:
        """Empty L1. L2 is shared with other processes and left as it is; counters are kept."""
        if self._l1 is not None:
            with self._lock:
                self._l1.clear()

    def close(self) -> None:
        """Close L2's connections (L1 stays usable)."""
        if self._l2 is not None:
            self._l2.close()


class RedisL2:
    """Condition results in Redis, shared by every process that uses the same ``prefix``.

    Values are JSON with a format version; one that does not decode to a result (corrupt, another
    format, written by something else) is a miss, counted in ``rejected``. A call that fails is a
    miss (or a dropped write), counted in ``errors`` and logged at WARNING once per outage; L2 is
    then skipped for ``retry_after_s`` seconds. ``timeout_s`` bounds one call: connecting and
    waiting for the reply get half of it each, and nothing is retried.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "kgc:cond:v1:",
        ttl_seconds: int | None = 3600,
        timeout_s: float = 0.05,
        retry_after_s: float = 5.0,
    ) -> None:
        if timeout_s <= 0 or retry_after_s < 0:
            raise ConfigError(f"Redis timeout must be > 0 and retry interval >= 0 ({_where(url)})")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ConfigError(f"Redis TTL must be > 0 seconds or None; got {ttl_seconds}")
        self._redis = _import_redis()
        try:
            client = self._redis.Redis.from_url(
                url,
                socket_timeout=timeout_s / 2,
                socket_connect_timeout=timeout_s / 2,
                retry=self._redis.retry.Retry(self._redis.backoff.NoBackoff(), 0),
                retry_on_timeout=False,
            )
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL {_where(url)}: {exc}") from exc
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._retry_after = retry_after_s
        self._where = _where(url)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down = False
        self.errors = 0
        self.rejected = 0

    def key(self, condition_digest: str, version: str) -> str:
        """The Redis key of an entry (unambiguous for any two strings; fixed length)."""
        raw = f"{len(condition_digest)}:{condition_digest}{version}".encode()
        return self._prefix + hashlib.sha256(raw).hexdigest()

    def get(self, condition_digest: str, version: str) -> ConditionResult | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            raw = self._client.get(self.key(condition_digest, version))
        except (self._redis.RedisError, OSError) as exc:
            if str(exc).startswith("WRONGTYPE"):  # the key holds a hash, a list...: not ours
                self._reject()
                self._recovered()
            else:
                self._failed("GET", exc)
            return None
        self._recovered()
        if raw is None:
            return None
        result = decode(raw)
        if result is None:
            self._reject()
        return result

    def put(self, condition_digest: str, version: str, result: ConditionResult) -> None:
        if time.monotonic() < self._down_until:
            return
        try:
            self._client.set(self.key(condition_digest, version), encode(result), ex=self._ttl)
        except (self._redis.RedisError, OSError) as exc:
            self._failed("SET", exc)
            return
        self._recovered()

    def close(self) -> None:
        self._client.close()

    def _reject(self) -> None:
        with self._lock:
            self.rejected += 1

    def _failed(self, command: str, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._down_until = time.monotonic() + self._retry_after
            first, self._down = not self._down, True
        if first:
            logger.warning(
                "Redis cache %s unavailable (%s: %s); using L1 only, retrying every %g s",
                self._where,
                command,
                exc,
                self._retry_after,
            )
        else:
            logger.debug("Redis cache %s still unavailable (%s: %s)", self._where, command, exc)

    def _recovered(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            logger.info("Redis cache %s reachable again", self._where)


def encode(result: ConditionResult) -> bytes:
    body = {
        "v": FORMAT_VERSION,
        "fired": result.fired,
        "detail": result.detail,
        "rows": result.rows,
        "bindings": list(result.bindings),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode(raw: object) -> ConditionResult | None:
    """The result a stored value holds, or ``None`` if it is not exactly one of ours."""
    if not isinstance(raw, bytes) or len(raw) > _MAX_VALUE_BYTES:
        return None
    try:
        body = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        return None
    if not isinstance(body, dict) or body.keys() != _FIELDS:
        return None
    version, fired, detail, rows = body["v"], body["fired"], body["detail"], body["rows"]
    if type(version) is not int or version != FORMAT_VERSION:
        return None
    if type(fired) is not bool or type(detail) is not str or type(rows) is not int or rows < 0:
        return None
    bindings = body["bindings"]
    if not isinstance(bindings, list) or not all(_is_row(row) for row in bindings):
        return None
    return ConditionResult(fired, detail, rows, tuple(bindings))


def _is_row(row: object) -> bool:
    return isinstance(row, dict) and all(type(k) is str and type(v) is str for k, v in row.items())


def cacheable(condition: Condition) -> bool:
    """Whether ``condition``'s result depends only on its digest and the data it reads.

    Conservative: ``window`` conditions (which read the clock, the actor and the history),
    kinds kgc does not define, queries that call NOW(), RAND(), UUID(), STRUUID() or use
    SERVICE, and queries with a ``GRAPH ?variable`` are not cacheable; neither is a combinator
    holding one of them.
    """
    kind = condition.kind
    if kind in _COMBINATOR_KINDS:
        children: tuple[Condition, ...] = getattr(condition, "conditions", ())
        return bool(children) and all(cacheable(c) for c in children)
    if kind not in _PURE_KINDS or getattr(condition, "reads_history", False):
        return False
    text = condition.text
    return kind == "delta" or not (_IMPURE_SPARQL.search(text) or _GRAPH_VARIABLE.search(text))


def render_prometheus(stats: CacheStats) -> str:
    """``stats`` as Prometheus text exposition lines, with the runbook's metric names.

    ``kgc_cache_hit_rate`` is left out before the first lookup, so an idle or disabled cache
    does not trip the runbook's ``kgc_cache_hit_rate < 0.7`` alert.
    """
    lines: list[str] = []
    if stats.lookups:
        lines += _metric("hit_rate", "gauge", "Share of lookups answered from L1 or L2.")
        lines.append(f"kgc_cache_hit_rate {stats.hit_rate:.6g}")
    lines += _metric("hits_total", "counter", "Condition-cache lookups answered, by level.")
    lines.append(f'kgc_cache_hits_total{{level="l1"}} {stats.l1_hits}')
    lines.append(f'kgc_cache_hits_total{{level="l2"}} {stats.l2_hits}')
    counters = (
        ("misses_total", "counter", "Lookups answered by no level.", stats.misses),
        ("evictions_total", "counter", "L1 entries evicted to make room.", stats.evictions),
        ("l2_errors_total", "counter", "Redis calls that failed or timed out.", stats.l2_errors),
        ("l2_rejected_total", "counter", "Redis values that were not ours.", stats.l2_rejected),
        ("entries", "gauge", "Entries in L1.", stats.size),
    )
    for name, kind, help_text, value in counters:
        lines += _metric(name, kind, help_text)
        lines.append(f"kgc_cache_{name} {value}")
    return "\n".join(lines) + "\n"


def _metric(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP kgc_cache_{name} {help_text}", f"# TYPE kgc_cache_{name} {kind}"]


def _where(url: str) -> str:
    """The URL without credentials, for messages."""
    try:
        parts = urlsplit(url)
        host = f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "")
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{host}{parts.path}"


def _import_redis() -> Any:
    try:
        import redis
        import redis.backoff
        import redis.retry
    except ImportError as exc:
        raise ConfigError(
            "a Redis cache needs the redis package: pip install 'kgc-governance[redis]'"
        ) from exc
    return redis
