"""A closed-loop HTTP/1.1 load generator for the benches: ``concurrency`` clients, each on one keep-alive
connection, each sending its next request when the last answer is in, for ``seconds``.

It writes prepared request bytes to asyncio streams and reads each answer by its Content-Length, as wrk does,
because on a two-core machine the client shares the cores with the server it measures: httpx's AsyncClient spent
0.24 of a core to drive two serving processes at 112 req/s, this 0.06 at 147 (bench/matching.py, 100k chunks).
Every answer is still checked: a status other than 200, or a body that is not the JSON object the route returns,
counts as an error. The client's own CPU use is reported beside the rates, so the reader can see what it took."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def load_apart(url: str, key: str, bodies: list[dict[str, Any]], concurrency: int, seconds: float,
               path: str = "/v1/match") -> dict[str, Any]:
    """``load`` from a process of its own: a client in the server's process would take its interpreter lock, and
    report the two together."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_load_sync, (url, key, bodies, concurrency, seconds, path))


def _load_sync(url: str, key: str, bodies: list[dict[str, Any]], concurrency: int, seconds: float,
               path: str) -> dict[str, Any]:
    return asyncio.run(load(url, key, bodies, concurrency, seconds, path))


def _requests(host: str, port: int, key: str, bodies: list[dict[str, Any]], path: str) -> list[bytes]:
    out = []
    for body in bodies:
        payload = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
        out.append(head.encode() + payload)
    return out


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One response's status and body; the server must say how long the body is (uvicorn does for JSON)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError(f"an answer without Content-Length (status {status})")
    return status, await reader.readexactly(length)


async def load(url: str, key: str, bodies: list[dict[str, Any]], concurrency: int, seconds: float,
               path: str = "/v1/match") -> dict[str, Any]:
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    prepared = _requests(host, port, key, bodies, path)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def user(i: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        j = i
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(prepared[j % len(prepared)])
                try:
                    status, body = await _answer(reader)
                    ok = status == 200 and isinstance(json.loads(body), dict)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    writer.close()  # the connection is in an unknown state: count it, start a new one
                    reader, writer = await asyncio.open_connection(host, port)
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok
                j += concurrency
        finally:
            writer.close()

    cpu0, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": pct(latencies, 50),
            "p99_ms": pct(latencies, 99), "errors": errors, "client_cores": cpu / elapsed}
