"""The condition-result cache: L1 in process, L2 in a real redis-server on loopback."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis_server import RedisServer, free_port, redis_binary, redis_server

from kgc.config import load_settings
from kgc.errors import ConfigError
from kgc.hooks import Combinator, SparqlAsk, Window
from kgc.hooks.cache import (
    CacheStats,
    ConditionCache,
    RedisL2,
    cacheable,
    encode,
    render_prometheus,
)
from kgc.hooks.conditions import ConditionResult

__all__ = ["redis_binary", "redis_server"]  # fixtures, imported for pytest to find

FIRED = ConditionResult(True, "1 row: ex:a", 1)
QUIET = ConditionResult(False)
DIGEST = "c0" * 32
BEFORE_AFTER = "s1" * 32 + ":" + "s2" * 32


@pytest.fixture
def l2_of(redis_server: RedisServer) -> Iterator[list[RedisL2]]:
    """Close every RedisL2 a test makes, so no connection outlives it."""
    made: list[RedisL2] = []
    yield made
    for l2 in made:
        l2.close()


def new_l2(
    made: list[RedisL2], url: str, *, timeout_s: float = 0.05, retry_after_s: float = 5.0
) -> RedisL2:
    l2 = RedisL2(url, timeout_s=timeout_s, retry_after_s=retry_after_s)
    made.append(l2)
    return l2


# L1


def test_a_put_result_is_returned_by_get_and_counted_as_an_l1_hit() -> None:
    cache = ConditionCache(10)

    assert cache.get(DIGEST, BEFORE_AFTER) is None
    cache.put(DIGEST, BEFORE_AFTER, FIRED)

    assert cache.get(DIGEST, BEFORE_AFTER) == FIRED
    stats = cache.stats()
    assert (stats.l1_hits, stats.l2_hits, stats.misses, stats.puts) == (1, 0, 1, 1)
    assert (stats.size, stats.maxsize, stats.hit_rate) == (1, 10, 0.5)


def test_same_condition_at_another_version_is_a_miss_never_a_stale_result() -> None:
    cache = ConditionCache(10)
    cache.put(DIGEST, "before:after-1", FIRED)

    assert cache.get(DIGEST, "before:after-2") is None
    assert cache.get("d1" * 32, "before:after-1") is None
    assert cache.get(DIGEST, "before:after-1") == FIRED


def test_least_recently_used_entry_is_evicted_when_full() -> None:
    cache = ConditionCache(2)
    cache.put("a", "v", FIRED)
    cache.put("b", "v", QUIET)
    cache.get("a", "v")

    cache.put("c", "v", QUIET)

    assert cache.get("b", "v") is None
    assert cache.get("a", "v") == FIRED
    assert cache.get("c", "v") == QUIET
    assert (cache.stats().size, cache.stats().evictions) == (2, 1)


def test_size_zero_disables_the_cache() -> None:
    cache = ConditionCache(0)
    cache.put(DIGEST, BEFORE_AFTER, FIRED)

    assert cache.get(DIGEST, BEFORE_AFTER) is None
    assert not cache.enabled
    assert cache.stats() == CacheStats()


def test_clear_empties_l1_and_keeps_the_counters() -> None:
    cache = ConditionCache(10)
    cache.put(DIGEST, BEFORE_AFTER, FIRED)
    cache.get(DIGEST, BEFORE_AFTER)

    cache.clear()

    assert cache.get(DIGEST, BEFORE_AFTER) is None
    assert (cache.stats().size, cache.stats().l1_hits, cache.stats().puts) == (0, 1, 1)


def test_concurrent_gets_and_puts_return_only_what_was_put_for_the_key() -> None:
    cache = ConditionCache(64)
    threads, rounds, keys = 8, 3000, 200
    wrong: list[str] = []

    def work(seed: int) -> None:
        for i in range(rounds):
            key = str((i * 7 + seed * 13) % keys)
            if i % 3 == 0:
                cache.put(key, "v", ConditionResult(True, key, int(key)))
            found = cache.get(key, "v")
            if found is not None and found.detail != key:
                wrong.append(f"{key} -> {found}")

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to provoke races
    try:
        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(old)

    stats = cache.stats()
    assert wrong == []
    assert stats.l1_hits + stats.misses == threads * rounds
    assert stats.puts == threads * len(range(0, rounds, 3))
    assert stats.size == 64
    assert stats.evictions > 0


# Settings


def test_settings_build_the_cache_they_describe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGC_CACHE_SIZE", "5")

    assert ConditionCache.from_settings(load_settings()).stats().maxsize == 5
    assert ConditionCache.from_settings(load_settings()).enabled
    assert not ConditionCache.from_settings(load_settings(enable_caching=False)).enabled
    assert not ConditionCache.from_settings(load_settings(cache_size=0)).enabled
    assert load_settings().redis_url is None


def test_negative_cache_size_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"cache_size: -1 .*KGC_CACHE_SIZE, CACHE_SIZE\)"):
        load_settings(cache_size=-1)
    with pytest.raises(ConfigError, match="cache size must be >= 0"):
        ConditionCache(-1)


def test_a_url_that_is_not_redis_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigError, match=r"invalid Redis URL http://example\.org/: ") as caught:
        RedisL2("http://user:s3cret@example.org/")
    assert "s3cret" not in str(caught.value)


def test_a_redis_url_without_the_redis_package_is_refused_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The dev environment has redis installed; a None entry makes `import redis` fail as if not.
    for name in ("redis", "redis.backoff", "redis.retry"):
        monkeypatch.setitem(sys.modules, name, None)

    with pytest.raises(ConfigError, match=r"pip install 'kgc-governance\[redis\]'"):
        ConditionCache.from_settings(load_settings(redis_url="redis://127.0.0.1:1/0"))


# What may be cached


def test_only_conditions_that_read_nothing_but_the_data_are_cacheable() -> None:
    pure = SparqlAsk("ASK { ?s ?p ?o }")
    clock = SparqlAsk("ASK { ?s <urn:ex:until> ?t FILTER(?t < now()) }")
    window = Window(text="SELECT ?s WHERE { ?s ?p ?o }", op=">", value=3, seconds=60)

    assert cacheable(pure)
    assert not cacheable(clock)
    assert not cacheable(window)
    assert cacheable(Combinator("any", (pure, pure)))
    assert not cacheable(Combinator("any", (pure, window)))


# Prometheus text


def test_stats_render_as_prometheus_text_with_the_runbook_names() -> None:
    stats = CacheStats(l1_hits=6, l2_hits=1, misses=3, puts=3, l2_errors=2, size=3, maxsize=9)

    families = {f.name: f for f in text_string_to_metric_families(render_prometheus(stats))}

    assert families["kgc_cache_hit_rate"].type == "gauge"
    assert families["kgc_cache_hit_rate"].samples[0].value == pytest.approx(0.7)
    hits = {s.labels["level"]: s.value for s in families["kgc_cache_hits"].samples}
    assert hits == {"l1": 6, "l2": 1}
    assert families["kgc_cache_misses"].samples[0].value == 3
    assert families["kgc_cache_l2_errors"].samples[0].value == 2


def test_no_hit_rate_is_exported_before_the_first_lookup() -> None:
    text = render_prometheus(ConditionCache(0).stats())

    assert "kgc_cache_hit_rate" not in text
    assert 'kgc_cache_hits_total{level="l1"} 0' in text


# L2: a real redis-server


def test_second_cache_gets_from_redis_what_the_first_put_and_keeps_it_in_l1(
    redis_server: RedisServer, l2_of: list[RedisL2]
) -> None:
    first = ConditionCache(10, l2=new_l2(l2_of, redis_server.url))
    second = ConditionCache(10, l2=new_l2(l2_of, redis_server.url))

    first.put(DIGEST, BEFORE_AFTER, FIRED)

    assert second.get(DIGEST, BEFORE_AFTER) == FIRED
    assert second.get(DIGEST, BEFORE_AFTER) == FIRED
    assert (second.stats().l2_hits, second.stats().l1_hits, second.stats().size) == (1, 1, 1)
    assert second.get(DIGEST, "another version") is None
    with redis_server.client() as client:
        assert 3500 < client.ttl(l2_of[0].key(DIGEST, BEFORE_AFTER)) <= 3600


def test_a_result_put_by_another_process_is_an_l2_hit(redis_server: RedisServer) -> None:
    child = (
        "import sys\n"
        "from kgc.hooks.cache import ConditionCache, RedisL2\n"
        "from kgc.hooks.conditions import ConditionResult\n"
        "cache = ConditionCache(l2=RedisL2(sys.argv[1]))\n"
        "cache.put(sys.argv[2], 'v', ConditionResult(True, 'from the child', 7))\n"
        "sys.exit(cache.stats().l2_errors)\n"
    )
    subprocess.run([sys.executable, "-c", child, redis_server.url, DIGEST], check=True, timeout=60)

    l2 = RedisL2(redis_server.url)
    cache = ConditionCache(l2=l2)
    try:
        assert cache.get(DIGEST, "v") == ConditionResult(True, "from the child", 7)
        assert cache.stats().l2_hits == 1
    finally:
        l2.close()


@pytest.mark.parametrize(
    "stored",
    [
        b"\x80\x04not json",
        b'{"v":2,"fired":true,"detail":"","rows":0}',
        b'{"v":true,"fired":true,"detail":"","rows":0}',
        b'{"v":1,"fired":"no","detail":"","rows":0}',
        b'{"v":1,"fired":false,"detail":"","rows":-1}',
        b'{"v":1,"fired":false,"detail":"","rows":0,"trusted":true}',
        b"[1, false]",
    ],
)
def test_a_value_that_is_not_exactly_ours_is_a_miss_and_counted(
    redis_server: RedisServer, l2_of: list[RedisL2], stored: bytes
) -> None:
    l2 = new_l2(l2_of, redis_server.url)
    cache = ConditionCache(10, l2=l2)
    with redis_server.client() as client:
        client.set(l2.key(DIGEST, BEFORE_AFTER), stored)

    assert cache.get(DIGEST, BEFORE_AFTER) is None
    assert (cache.stats().l2_rejected, cache.stats().l2_errors, cache.stats().misses) == (1, 0, 1)

    cache.put(DIGEST, BEFORE_AFTER, QUIET)  # the evaluated result replaces it
    assert ConditionCache(10, l2=new_l2(l2_of, redis_server.url)).get(DIGEST, BEFORE_AFTER) == QUIET


def test_a_key_holding_another_redis_type_is_a_miss_not_an_outage(
    redis_server: RedisServer, l2_of: list[RedisL2]
) -> None:
    l2 = new_l2(l2_of, redis_server.url)
    with redis_server.client() as client:
        client.hset(l2.key(DIGEST, BEFORE_AFTER), "fired", "1")

    assert ConditionCache(10, l2=l2).get(DIGEST, BEFORE_AFTER) is None
    assert (l2.rejected, l2.errors) == (1, 0)


def test_killed_redis_is_a_counted_miss_logged_once_and_used_again_after_restart(
    redis_server: RedisServer, l2_of: list[RedisL2], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kgc.hooks.cache")
    l2 = new_l2(l2_of, redis_server.url, timeout_s=0.2, retry_after_s=0.5)
    cache = ConditionCache(10, l2=l2)
    cache.put("before", "v", FIRED)

    redis_server.kill()
    started = time.monotonic()
    assert cache.get(DIGEST, "v1") is None
    cache.put(DIGEST, "v1", QUIET)  # skipped: the breaker is open
    for n in range(50):
        assert cache.get(DIGEST, f"other {n}") is None
    assert time.monotonic() - started < 0.2
    assert cache.stats().l2_errors == 1

    time.sleep(0.6)
    assert cache.get(DIGEST, "v2") is None
    assert cache.stats().l2_errors == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"Redis cache redis://127.0.0.1:{redis_server.port}/0 unavailable" in warnings[0].message

    redis_server.start()
    ConditionCache(10, l2=new_l2(l2_of, redis_server.url)).put(DIGEST, "v3", FIRED)
    time.sleep(0.6)
    assert cache.get(DIGEST, "v3") == FIRED
    assert cache.stats().l2_hits == 1
    assert "reachable again" in caplog.records[-1].message


def test_redis_that_stops_answering_costs_at_most_the_timeout(
    redis_server: RedisServer, l2_of: list[RedisL2]
) -> None:
    timeout = 0.1
    pooled = ConditionCache(10, l2=new_l2(l2_of, redis_server.url, timeout_s=timeout))
    fresh = ConditionCache(10, l2=new_l2(l2_of, redis_server.url, timeout_s=timeout))
    pooled.put("warm", "v", FIRED)  # leaves an open connection in the pool

    redis_server.pause()
    for cache in (pooled, fresh):
        started = time.monotonic()
        assert cache.get(DIGEST, "v") is None
        cache.put(DIGEST, "v", FIRED)
        elapsed = time.monotonic() - started
        assert elapsed < timeout + 0.05, f"get and put took {elapsed:.3f} s"
        assert cache.stats().l2_errors == 1
        assert cache.get(DIGEST, "v") == FIRED  # L1 still works


def test_unreachable_redis_never_raises_and_its_password_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    l2 = RedisL2(f"redis://:s3cret@127.0.0.1:{free_port()}/0")  # nothing listens there
    cache = ConditionCache(10, l2=l2)

    assert cache.get(DIGEST, "v") is None
    cache.put(DIGEST, "v", FIRED)

    assert cache.stats().l2_errors == 1
    assert "s3cret" not in caplog.text
    assert "unavailable" in caplog.text
    l2.close()


def test_encoded_values_carry_the_format_version() -> None:
    assert encode(FIRED) == (b'{"v":2,"fired":true,"detail":"1 row: ex:a","rows":1,"bindings":[]}')


def test_a_refused_command_is_an_outage_not_a_foreign_value(
    redis_server: RedisServer, l2_of: list[RedisL2], caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server.client() as client:
        client.acl_setuser(
            "kgc", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+set"]
        )
    l2 = new_l2(l2_of, f"redis://kgc:s3cret@127.0.0.1:{redis_server.port}/0")
    cache = ConditionCache(10, l2=l2)

    cache.put(DIGEST, "v", FIRED)  # allowed: SET
    assert cache.get(DIGEST, "v") == FIRED  # from L1
    cache.clear()
    assert cache.get(DIGEST, "v") is None  # GET refused by the ACL

    assert (l2.errors, l2.rejected) == (1, 0)
    assert "unavailable (GET: " in caplog.text
    assert "s3cret" not in caplog.text
