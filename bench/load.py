"""Load: `/v1/match` and `/v1/tag` driven together against a real `hcp-content serve` process on loopback, over a
100k-chunk corpus, for a bounded time. Reports requests/s, p50/p99 and errors per endpoint, and the service's
memory (RSS) over the run.

    python bench/load.py [--chunks 100000] [--seconds 120] [--match-clients 8] [--tag-clients 2]
                         [--tag-mode embedding|learned|full] [--llm-url URL --llm-model NAME]
                         [--uploads 20] [--fresh-needs] [--max-p99-ratio 3]

With ``--uploads N`` the mixed run uploads N new documents at a time (about 48 KB of Markdown each, never seen
before, so each is parsed, embedded and tagged by the service's worker) again and again while the match clients
run, and the run fails when /v1/match's p99 exceeds ``--max-p99-ratio`` times its p99 alone (issue 46: one upload
must not freeze matching for everyone). ``--fresh-needs`` gives every match request a need text never sent
before, so each embeds its need (a cached need vector would hide the wait).

Baseline, measured in the same run: first `/v1/match` alone (a third of --seconds), then both endpoints together;
the script prints the mixed run's match latency as a ratio of the match-only one. Memory is sampled once a second
from the service process; the first fifth of the mixed run is warm-up (caches fill), and growth is measured from
its end to the end of the run, with a least-squares slope in MB/min. Exit code 1 when any request failed or the
memory grew more than --max-growth-pct (default 5 %) after warm-up: anonymous memory (heap) where Linux reports
it, since RSS also counts the vector store's memory-mapped index pages as queries touch them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import pct
from matching import NEEDS, base_chunks, build_corpus
from serving import start_serve

from service.auth.keys import create_key
from service.llm.local_server import free_port
from service.settings import Settings


def prepare(data: Path, chunks: int) -> tuple[dict[str, str], list[str]]:
    """The 100k-chunk corpus in ``data``; keys for a rep and a content editor; texts to tag."""
    settings = Settings(data_dir=data, llm_mode="off", worker_enabled=False, rate_limit_per_minute=10**9)
    base, texts, c = base_chunks(settings)
    try:
        build_corpus(c, chunks, base, texts)
        with c.db.session() as s:
            keys = {role: create_key(s, role, f"load {role}").secret for role in ("rep", "content_editor")}
    finally:
        c.close()
    return keys, sorted({t for t in texts if len(t) > 200})


def start_service(data: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "HCP_DATA_DIR": str(data), "HCP_PORT": str(port), "HCP_RATE_LIMIT_PER_MINUTE": "1000000000",
           "HCP_LOG_LEVEL": "warning", "HF_HUB_OFFLINE": "1"}
    if args.llm_url:
        env |= {"HCP_LLM_MODE": "remote", "HCP_LLM_BASE_URL": args.llm_url, "HCP_LLM_MODEL": args.llm_model}
    else:
        env["HCP_LLM_MODE"] = "off"
    return start_serve(env, port)


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.documents = 0  # uploads only: documents ingested within the run

    def record(self, started: float, status: int | str) -> None:
        self.latencies.append(time.perf_counter() - started)
        if status != 200:
            self.errors[str(status)] = self.errors.get(str(status), 0) + 1

    def summary(self, elapsed: float) -> dict[str, Any]:
        n = len(self.latencies)
        return {"requests": n, "rps": n / elapsed if elapsed else 0.0,
                "p50_ms": pct(self.latencies, 50) if n else float("nan"),
                "p99_ms": pct(self.latencies, 99) if n else float("nan"),
                "errors": sum(self.errors.values()), "by_status": self.errors}


def new_document(texts: list[str], n: int, size: int = 48_000) -> bytes:
    """About ``size`` bytes of Markdown no upload sent before (its first line names ``n``)."""
    parts, total, i = [f"# Load upload {n} ({time.time_ns()})\n"], 0, n * 37
    while total < size:
        text = texts[i % len(texts)]
        parts.append(f"\n## Section {len(parts)}\n\n{text}\n")
        total, i = total + len(text.encode()), i + 1
    return "".join(parts).encode()


async def drive(url: str, keys: dict[str, str], texts: list[str], match_clients: int, tag_clients: int,
                seconds: float, tag_mode: str | None, uploads: int = 0,
                fresh_needs: bool = False) -> tuple[dict[str, Tally], float]:
    tallies = {"match": Tally(), "tag": Tally(), "upload": Tally()}
    deadline = time.perf_counter() + seconds
    bodies = [{"need_tags": NEEDS[i % len(NEEDS)], "language": "zh" if i % 2 else "en", "k": 10,
               "need_text": texts[i % len(texts)][:120]} for i in range(200)]
    sent = iter(range(10**9))

    async def call(client: httpx.AsyncClient, name: str, path: str, body: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            r = await client.post(f"{url}{path}", json=body)
            tallies[name].record(started, r.status_code)
        except httpx.HTTPError as exc:
            tallies[name].record(started, type(exc).__name__)

    async def matcher(i: int, client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            if fresh_needs:  # a need no request sent before: its text is embedded in the request
                body = {**body, "need_text": f"{body['need_text']} {next(sent)}"}
            await call(client, "match", "/v1/match", body)
            i += match_clients

    async def uploader(client: httpx.AsyncClient) -> None:
        n = 0
        while time.perf_counter() < deadline:
            files = [("files", (f"load-{n + j}.md", new_document(texts, n + j), "text/markdown"))
                     for j in range(uploads)]
            n += uploads
            started = time.perf_counter()
            try:
                r = await client.post(f"{url}/v1/uploads", files=files)
                if r.status_code not in (200, 201, 202):
                    tallies["upload"].record(started, r.status_code)
                    continue
                job = r.json()["id"]
                while True:
                    state = (await client.get(f"{url}/v1/jobs/{job}")).json()
                    if state["status"] in ("succeeded", "partial", "failed"):
                        tallies["upload"].record(started, 200 if state["status"] == "succeeded" else state["status"])
                        tallies["upload"].documents += state["done"]
                        break
                    if time.perf_counter() >= deadline:  # still ingesting at the end: what it had done counts
                        tallies["upload"].documents += state["done"]
                        break
                    await asyncio.sleep(0.5)  # a poll's interval, not a stand-in for the job's end
            except httpx.HTTPError as exc:
                tallies["upload"].record(started, type(exc).__name__)

    async def tagger(i: int, client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            body: dict[str, Any] = {"text": texts[i % len(texts)], "title": f"load {i}"}
            if tag_mode:
                body["mode"] = tag_mode
            await call(client, "tag", "/v1/tag", body)
            i += tag_clients

    limits = httpx.Limits(max_connections=match_clients + tag_clients + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as rep, \
            httpx.AsyncClient(timeout=600, limits=limits) as editor:
        rep.headers["Authorization"] = f"Bearer {keys['rep']}"
        editor.headers["Authorization"] = f"Bearer {keys['content_editor']}"
        started = time.perf_counter()
        await asyncio.gather(*(matcher(i, rep) for i in range(match_clients)),
                             *(tagger(i, editor) for i in range(tag_clients)),
                             *([uploader(editor)] if uploads else []))
        elapsed = time.perf_counter() - started
    return tallies, elapsed


def anon_mb(pid: int) -> float | None:
    """Anonymous resident memory (heap, arenas): what a leak grows. RSS also counts pages of the vector store's
    memory-mapped files, which fill in as queries touch more of the index and are given back under pressure."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("RssAnon:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return None


def sample_memory(pid: int, stop: threading.Event, into: list[tuple[float, float, float | None]]) -> None:
    process = psutil.Process(pid)
    t0 = time.perf_counter()
    while not stop.is_set():
        into.append((time.perf_counter() - t0, process.memory_info().rss / 2**20, anon_mb(pid)))
        stop.wait(1.0)


def line(name: str, s: dict[str, Any]) -> str:
    return (f"  {name:<6} {s['rps']:8.1f} req/s  p50 {s['p50_ms']:8.1f} ms  p99 {s['p99_ms']:8.1f} ms  "
            f"{s['requests']:6d} requests  {s['errors']} errors {s['by_status'] or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=120.0, help="Length of the mixed run.")
    parser.add_argument("--match-clients", type=int, default=8)
    parser.add_argument("--tag-clients", type=int, default=2)
    parser.add_argument("--tag-mode", choices=["embedding", "learned", "full"], default=None)
    parser.add_argument("--llm-url", default=None, help="An OpenAI-compatible endpoint for --tag-mode full.")
    parser.add_argument("--llm-model", default="default")
    parser.add_argument("--max-growth-pct", type=float, default=5.0)
    parser.add_argument("--uploads", type=int, default=0, help="Documents per upload, uploaded again and again "
                        "during the mixed run (new each time).")
    parser.add_argument("--fresh-needs", action="store_true", help="A need text never sent before in every match.")
    parser.add_argument("--max-p99-ratio", type=float, default=3.0, help="With --uploads: the highest /v1/match "
                        "p99 under the uploads, as a multiple of its p99 alone.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hcp-bench-load-") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        keys, texts = prepare(data, args.chunks)
        print(f"corpus: {args.chunks:,} chunks built and indexed in {time.perf_counter() - t0:.0f} s")
        proc, url = start_service(data, args)
        try:
            base, base_s = asyncio.run(drive(url, keys, texts, args.match_clients, 0, args.seconds / 3, None,
                                             fresh_needs=args.fresh_needs))
            samples: list[tuple[float, float, float | None]] = []
            stop = threading.Event()
            sampler = threading.Thread(target=sample_memory, args=(proc.pid, stop, samples), daemon=True)
            sampler.start()
            mixed, mixed_s = asyncio.run(drive(url, keys, texts, args.match_clients, args.tag_clients,
                                               args.seconds, args.tag_mode, args.uploads, args.fresh_needs))
            stop.set()
            sampler.join()
        finally:
            proc.terminate()
            proc.wait(60)

    match_only = base["match"].summary(base_s)
    results = {name: t.summary(mixed_s) for name, t in mixed.items()}
    print(f"\nbaseline: /v1/match alone, {args.match_clients} clients, {base_s:.0f} s")
    print(line("match", match_only))
    print(f"mixed: /v1/match ({args.match_clients} clients) + /v1/tag ({args.tag_clients} clients, mode "
          f"{args.tag_mode or 'service default'}), {mixed_s:.0f} s")
    print(line("match", results["match"]))
    print(line("tag", results["tag"]))
    if args.uploads:
        print(line("upload", results["upload"]) + f"  ({mixed['upload'].documents} documents ingested)")
    print(f"  match p50 under mixed load / alone: {results['match']['p50_ms'] / match_only['p50_ms']:.2f}x")
    p99_ratio = results["match"]["p99_ms"] / match_only["p99_ms"]
    print(f"  match p99 under mixed load / alone: {p99_ratio:.2f}x")

    times = np.array([t for t, _, _ in samples])
    warm = times >= times[-1] * 0.2
    growth = {}
    for name, column in (("RSS", 1), ("anonymous", 2)):
        values = [sample[column] for sample in samples]
        if any(v is None for v in values):
            continue
        mb = np.array(values, dtype=float)
        start_mb, end_mb = float(mb[warm][0]), float(mb[-1])
        slope = float(np.polyfit(times[warm] / 60, mb[warm], 1)[0]) if warm.sum() > 2 else 0.0
        growth[name] = (end_mb - start_mb) / start_mb * 100
        print(f"memory, service {name} ({len(samples)} samples): {mb[0]:.0f} MB at start, {start_mb:.0f} MB after "
              f"warm-up, {end_mb:.0f} MB at the end, peak {mb.max():.0f} MB; after warm-up {growth[name]:+.1f}% "
              f"({slope:+.1f} MB/min)")
    # the leak signal is anonymous memory where the OS reports it; RSS elsewhere
    growth_pct = growth.get("anonymous", growth["RSS"])
    errors = match_only["errors"] + sum(r["errors"] for r in results.values())
    slow = bool(args.uploads) and p99_ratio > args.max_p99_ratio
    ok = errors == 0 and growth_pct <= args.max_growth_pct and not slow
    print("PASS" if ok else f"FAIL: {errors} errors, memory growth {growth_pct:+.1f}% (limit {args.max_growth_pct}%)"
          f", match p99 {p99_ratio:.2f}x alone" + (f" (limit {args.max_p99_ratio}x)" if args.uploads else ""))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
