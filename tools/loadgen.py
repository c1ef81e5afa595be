"""A lean HTTP/1.1 keep-alive load generator, run in its own process by `make bench`.

    python -m tools.loadgen --url http://127.0.0.1:5681/meshes/default/dataplanes/dp-{i} \
        --concurrency 16 --seconds 5 --spread 1000

Prints one JSON line: requests, errors, seconds, req_per_s, p50_ms, p99_ms. `{i}` in the URL is
replaced by a per-request counter modulo `--spread`, so requests spread over many resources.
Written on raw asyncio streams because an HTTP client library would be the bottleneck on a
2-core machine shared with the server under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def run(url: str, concurrency: int, seconds: float, spread: int) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path_template = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors, counter
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                counter += 1
                path = path_template.replace("{i}", str(counter % spread))
                request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
                start = time.perf_counter()
                try:
                    writer.write(request)
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1  # the server closed the connection: count it and reconnect
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "errors": errors,
        "seconds": round(elapsed, 3),
        "req_per_s": round(n / elapsed, 1),
        "p50_ms": round(latencies[n // 2] * 1000, 2) if n else 0.0,
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 2) if n else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--spread", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.concurrency, args.seconds, max(1, args.spread)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
