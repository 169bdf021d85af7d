"""Cost of one ``ConditionCache.get`` or ``put``, in process and with a Redis second level.

    python benchmarks/cache.py                                  # L1 only
    python benchmarks/cache.py --redis-url redis://127.0.0.1:6379/0

Each figure is the best of five ``timeit`` runs divided by the calls per run (the best run is the
one least disturbed by the rest of the machine). Keys are 64-hex-digit digests and a version made
of two of them, as the pipeline passes. With ``--redis-url``, Redis rows need a server there;
``l2 down`` points the cache at a closed port, so every call after the first meets an open breaker.
"""

from __future__ import annotations

import argparse
import socket
import timeit
from collections.abc import Callable

from kgc.hooks.cache import ConditionCache, RedisL2
from kgc.hooks.conditions import ConditionResult

DIGEST = "ab" * 32
VERSION = "cd" * 32 + ":" + "ef" * 32
RESULT = ConditionResult(True, "1 row: <urn:ex:point-1>", 1)


def best_ns(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e9


def l1_rows(number: int) -> list[tuple[str, float]]:
    cache = ConditionCache(10_000)
    cache.put(DIGEST, VERSION, RESULT)
    return [
        ("l1 get, hit", best_ns(lambda: cache.get(DIGEST, VERSION), number)),
        ("l1 get, miss", best_ns(lambda: cache.get(DIGEST, "other"), number)),
        ("l1 put", best_ns(lambda: cache.put(DIGEST, VERSION, RESULT), number)),
    ]


def l2_rows(url: str, number: int) -> list[tuple[str, float]]:
    writer = ConditionCache(10, l2=RedisL2(url))
    writer.put(DIGEST, VERSION, RESULT)
    reader = ConditionCache(10, l2=RedisL2(url))

    def l2_hit() -> object:
        reader.clear()  # so the get reaches Redis (and promotes into L1 again)
        return reader.get(DIGEST, VERSION)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = ConditionCache(10_000, l2=RedisL2(f"redis://127.0.0.1:{port}/0", retry_after_s=3600))
    down.get(DIGEST, "opens the breaker")
    return [
        ("l2 get, hit (promoted)", best_ns(l2_hit, number)),
        ("l2 get, miss", best_ns(lambda: reader.get(DIGEST, "other"), number)),
        ("l1+l2 put", best_ns(lambda: writer.put(DIGEST, VERSION, RESULT), number)),
        ("l2 down: get, miss", best_ns(lambda: down.get(DIGEST, "other"), number * 10)),
        ("l2 down: put", best_ns(lambda: down.put(DIGEST, VERSION, RESULT), number * 10)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="also time the Redis level against this server")
    parser.add_argument("--number", type=int, default=100_000, help="L1 calls per timed run")
    args = parser.parse_args()

    rows = l1_rows(args.number)
    if args.redis_url:
        rows += l2_rows(args.redis_url, max(args.number // 100, 100))
    for name, ns in rows:
        print(f"{name:<24} {ns / 1000:8.2f} us")


if __name__ == "__main__":
    main()
