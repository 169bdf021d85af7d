"""Load generator for ``kgc serve`` on loopback: throughput and latency of small transactions.

Starts ``python -m kgc serve`` on a free 127.0.0.1 port (in-memory store, no hooks, no
lockchain), then drives it over raw asyncio sockets with HTTP/1.1 keep-alive (a Python HTTP
client would cost more CPU than the server on a 2-core machine):

1. max throughput: ``--connections`` closed-loop connections, each posting one-quad JSON deltas;
2. fixed rates (open loop): requests started on a schedule, latency measured from the scheduled
   start, so a stalled server shows up as queueing delay, not as a lower rate.

Not named ``http.py``: in ``benchmarks/`` that name would shadow the standard library's ``http``
for every other benchmark script (``http.client`` fails to import).

Targets (issue 5): >= 1,000 transactions per second; p99 <= 10 ms at 500 per second.

    python benchmarks/serve_http.py [--seconds 5] [--rates 100,500,1000] [--connections 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import time

KEY = "bench-write-key-0000000000000000"
TARGET_TPS = 1000.0
TARGET_P99_MS = 10.0
TARGET_RATE = 500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGC_")}
    env.update(KGC_API_KEYS=f"{KEY}:write", KGC_MAX_CONCURRENCY="256", KGC_LOG_LEVEL="warning")
    cmd = [sys.executable, "-m", "kgc", "serve", "--port", str(port)]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("kgc serve did not start")


def request(counter: itertools.count[int]) -> bytes:
    n = next(counter)
    body = json.dumps({"additions": [f'<urn:bench:s{n}> <urn:bench:p> "{n}" .']}).encode()
    head = (
        "POST /transactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, data: bytes) -> int:
        self.writer.write(data)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def connect(port: int, count: int) -> list[Connection]:
    pairs = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    return [Connection(r, w) for r, w in pairs]


async def max_throughput(port: int, seconds: float, connections: int) -> tuple[float, int]:
    conns = await connect(port, connections)
    counter = itertools.count()
    done, errors = 0, 0
    deadline = time.perf_counter() + seconds

    async def loop(conn: Connection) -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            status = await conn.post(request(counter))
            done += 1
            errors += status != 201

    start = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in conns))
    return done / (time.perf_counter() - start), errors


async def fixed_rate(port: int, rate: int, seconds: float) -> tuple[list[float], int, float]:
    pool = await connect(port, 64)
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for conn in pool:
        idle.put_nowait(conn)
    counter = itertools.count(10_000_000 * rate)
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        conn = await idle.get()
        status = await conn.post(request(counter))
        latencies.append((time.perf_counter() - scheduled) * 1000.0)
        errors += status != 201
        idle.put_nowait(conn)

    total = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    achieved = total / (time.perf_counter() - start)
    return latencies, errors, achieved


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, port: int) -> None:
    await max_throughput(port, 1.0, args.connections)  # warm up
    tps, errors = await max_throughput(port, args.seconds, args.connections)
    verdict = "meets" if tps >= TARGET_TPS else "MISSES"
    print(f"max throughput ({args.connections} connections, {args.seconds:g} s)")
    print(f"  {tps:8,.0f} tx/s   non-201: {errors}   target >= {TARGET_TPS:,.0f}: {verdict}")
    print()
    print(f"{'offered/s':>10} {'achieved/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors")
    for rate in args.rates:
        latencies, errors, achieved = await fixed_rate(port, rate, args.seconds)
        p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
        note = ""
        if rate == TARGET_RATE:
            ok = "meets" if p99 <= TARGET_P99_MS else "MISSES"
            note = f"  target p99 <= {TARGET_P99_MS:g} ms: {ok}"
        print(
            f"{rate:>10,} {achieved:>11,.0f} {p50:>8.2f} {p99:>8.2f} {max(latencies):>8.2f}"
            f"  {errors}{note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    port = free_port()
    process = start(port)
    print(f"kgc serve on 127.0.0.1:{port}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    try:
        asyncio.run(run(args, port))
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    main()
