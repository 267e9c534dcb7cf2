"""Interactive latency beside background LLM work: `/v1/talking-points` and `/v1/tag` (full mode) on a real
`hcp-content serve` process with the local LLM, alone and while a background re-tag runs, in the same run.

    python bench/interactive.py [--requests 6] [--assets 36] [--background-seconds 180] [--model PATH]

Phases, one process, one data folder:
1. *alone*: the sample content is ingested without the LLM; talking points and full-mode tagging are asked in
   turn, nothing else running;
2. *background alone*: a re-tag job of --assets sample assets is queued (as `make run` does after ingest) and its
   throughput (assets/minute) measured for --background-seconds;
3. *together*: the same interactive requests while the re-tag goes on, and the re-tag's throughput meanwhile;
4. *LLM down*: the local LLM server is killed and talking points are asked again (they must fall back at once).

Prints p50/p95 per endpoint and phase, the together/alone p95 ratio, and the background throughput in both phases.
Exit code 1 when talking points miss their goals (p95 together <= 20 s, ratio <= 1.5, LLM down <= 2 s).
"""

from __future__ import annotations

import argparse
import os
import signal
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import start_serve  # noqa: E402

from service.auth.keys import create_key  # noqa: E402
from service.jobs.queue import create_retag_job  # noqa: E402
from service.llm.local_server import free_port  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store.db import Database  # noqa: E402
from service.store.models import Asset  # noqa: E402
from service.store.taxonomies import activate_from_file  # noqa: E402

NEEDS = [
    ({"therapy_area": ["cardiovascular"], "value_driver": ["safety"]}, "zh"),
    ({"therapy_area": ["metabolism"], "value_driver": ["onset_speed"]}, "en"),
    ({"therapy_area": ["oncology"], "value_driver": ["efficacy"]}, "zh"),
]
TAG_TEXTS = [
    ("Bleeding risk with Cardiovex", "In the phase 3 trial, major bleeding occurred in 2.1% of patients on "
     "Cardiovex versus 3.4% on warfarin. Intracranial haemorrhage was halved. Dose reduction is advised when "
     "creatinine clearance is 15-49 mL/min.", "en"),
    ("格鲁可拉起效速度", "格鲁可拉在第一周即可显著降低空腹血糖，12周时糖化血红蛋白平均下降1.6%。"
     "胃肠道不良反应多为轻度，通常在4周内缓解。每周一次皮下注射。", "zh"),
]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _env(data: Path, port: int, model: Path | None, threads: int | None) -> dict[str, str]:
    env = {**os.environ, "HCP_DATA_DIR": str(data), "HCP_PORT": str(port), "HCP_LOG_LEVEL": "warning",
           "HCP_RATE_LIMIT_PER_MINUTE": "1000000", "HF_HUB_OFFLINE": "1", "HCP_LLM_MODE": "local",
           "HCP_TAGGING_MODE": "full"}  # the background load is LLM re-tagging: every open dimension asked
    if model is not None:
        env["HCP_LLM_MODEL_PATH"] = str(model)
    if threads is not None:
        env["HCP_LLM_LOCAL_THREADS"] = str(threads)
    return env


def prepare(data: Path) -> dict[str, str]:
    """Sample content ingested without the LLM (so nothing is queued yet) and a key per role."""
    env = {**os.environ, "HCP_DATA_DIR": str(data), "HCP_LLM_MODE": "off", "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "service.cli", "ingest", str(ROOT / "samples" / "content")], env=env,
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    db = Database(Settings(data_dir=data).resolved_database_url)
    try:
        with db.session() as s:
            return {role: create_key(s, role, f"bench {role}").secret for role in ("rep", "content_editor", "admin")}
    finally:
        db.dispose()


def start(data: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(data / "serve.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
    # /healthz: with the LLM busy or down /readyz may say degraded; this checkout's code runs (cwd)
    return start_serve(_env(data, port, args.model, args.threads), port, ready_path="/healthz", output=log, cwd=ROOT)


def follow(base: str, key: str, followup: str, started: float, row: dict[str, Any], timeout: float) -> None:
    """Poll a talking-points follow-up (as a client would, once a second) and note when the LLM's points came."""
    with httpx.Client() as client:
        while time.perf_counter() - started < timeout:
            r = client.get(f"{base}/v1/talking-points/{followup}", headers={"X-API-Key": key}, timeout=30)
            if r.status_code != 200 or r.json()["status"] != "pending":
                row["followup_status"] = r.json().get("status") if r.status_code == 200 else r.status_code
                row["followup_s"] = time.perf_counter() - started
                return
            time.sleep(1.0)


def ask(client: httpx.Client, base: str, keys: dict[str, str], i: int, timeout: float,
        pollers: list[threading.Thread]) -> dict[str, Any]:
    """One talking-points request and one full-mode tag request; their seconds and what came back."""
    need, language = NEEDS[i % len(NEEDS)]
    started = time.perf_counter()
    r = client.post(f"{base}/v1/talking-points", headers={"X-API-Key": keys["rep"]}, timeout=timeout,
                    json={"need_tags": need, "language": language, "n": 3})
    tp_s = time.perf_counter() - started
    tp = r.json() if r.status_code == 200 else {}
    row: dict[str, Any] = {}
    if tp.get("followup"):  # the LLM missed the deadline: its points are polled for meanwhile
        poller = threading.Thread(target=follow, args=(base, keys["rep"], tp["followup"], started, row, timeout),
                                  daemon=True)
        poller.start()
        pollers.append(poller)
    title, text, lang = TAG_TEXTS[i % len(TAG_TEXTS)]
    started = time.perf_counter()
    r2 = client.post(f"{base}/v1/tag", headers={"X-API-Key": keys["content_editor"]}, timeout=timeout,
                     json={"title": title, "text": text, "language": lang, "mode": "full"})
    tag_s = time.perf_counter() - started
    tag = r2.json() if r2.status_code == 200 else {}
    row.update({"tp_s": tp_s, "tp_status": r.status_code, "tp_llm": sum(p.get("method") == "llm" for p in tp.get(
        "points", [])), "tp_error": tp.get("llm_error"), "tag_s": tag_s, "tag_status": r2.status_code,
        "tag_llm": tag.get("status")})
    return row


def job_done(client: httpx.Client, base: str, keys: dict[str, str], job_id: str) -> int:
    r = client.get(f"{base}/v1/jobs/{job_id}", headers={"X-API-Key": keys["admin"]}, timeout=30)
    r.raise_for_status()
    return int(r.json()["done"])


def interactive_phase(client: httpx.Client, base: str, keys: dict[str, str], n: int, timeout: float,
                      label: str) -> list[dict[str, Any]]:
    rows = []
    pollers: list[threading.Thread] = []
    for i in range(n):
        row = ask(client, base, keys, i, timeout, pollers)
        print(f"  {label} {i + 1}/{n}: talking points {row['tp_s']:.1f}s ({row['tp_llm']} LLM points, "
              f"{row['tp_error'] or 'no error'}), tag {row['tag_s']:.1f}s ({row['tag_llm']})", flush=True)
        rows.append(row)
    for poller in pollers:  # the phase ends when its follow-ups have
        poller.join(timeout)
    return rows


def kill_llm(proc: subprocess.Popen[bytes]) -> bool:
    for child in psutil.Process(proc.pid).children(recursive=True):
        if "llama_cpp.server" in " ".join(child.cmdline()):
            os.killpg(child.pid, signal.SIGKILL)
            return True
    return False


def summarise(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [r[key] for r in rows]
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95), "max": max(values, default=0.0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6, help="Interactive request pairs per phase.")
    parser.add_argument("--assets", type=int, default=36, help="Assets the background re-tag covers (>= 20).")
    parser.add_argument("--background-seconds", type=float, default=180.0)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the service's default).")
    parser.add_argument("--threads", type=int, default=None, help="HCP_LLM_LOCAL_THREADS for the local server.")
    parser.add_argument("--timeout", type=float, default=600.0, help="Client timeout per request (s).")
    parser.add_argument("--data", type=Path, default=None, help="Data folder (default: a temporary one).")
    args = parser.parse_args()
    if args.assets < 20:
        parser.error("--assets must be at least 20")

    with tempfile.TemporaryDirectory(prefix="hcp-bench-interactive-") as tmp:
        data = args.data or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        print(f"preparing {data} (sample content, no LLM) ...", flush=True)
        keys = prepare(data)
        proc, base = start(data, args)
        try:
            with httpx.Client() as client:
                print("phase 1: interactive alone", flush=True)
                alone = interactive_phase(client, base, keys, args.requests, args.timeout, "alone")

                settings = Settings(data_dir=data)
                db = Database(settings.resolved_database_url)
                try:
                    with db.session() as s:
                        ids = [a for (a,) in s.query(Asset.id).order_by(Asset.id).limit(args.assets)]
                    taxonomy = activate_from_file(db, settings.taxonomy_path).taxonomy  # the one serve tags with
                    job_id = create_retag_job(db, ("bench", "admin"), taxonomy.key, None, ids)
                finally:
                    db.dispose()
                print(f"phase 2: background re-tag of {len(ids)} assets alone for {args.background_seconds:.0f}s",
                      flush=True)
                t0, d0 = time.monotonic(), job_done(client, base, keys, job_id)
                time.sleep(args.background_seconds)
                t1, d1 = time.monotonic(), job_done(client, base, keys, job_id)
                bg_alone = (d1 - d0) / ((t1 - t0) / 60)

                print("phase 3: interactive while the re-tag runs", flush=True)
                together = interactive_phase(client, base, keys, args.requests, args.timeout, "together")
                t2, d2 = time.monotonic(), job_done(client, base, keys, job_id)
                bg_together = (d2 - d1) / ((t2 - t1) / 60)
                finished_early = d2 >= len(ids)
                items = client.get(f"{base}/v1/jobs/{job_id}", headers={"X-API-Key": keys["admin"]},
                                   timeout=30).json().get("items") or []
                superseded = sum(1 for i in items if i.get("outcome") == "superseded")

                print("phase 4: the LLM server killed", flush=True)
                killed = kill_llm(proc)
                down = [ask(client, base, keys, i, args.timeout, []) for i in range(3)] if killed else []
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()

    tp_alone, tp_together = summarise(alone, "tp_s"), summarise(together, "tp_s")
    tag_alone, tag_together = summarise(alone, "tag_s"), summarise(together, "tag_s")
    print()
    print("| endpoint | phase | n | p50 s | p95 s | max s | LLM answered |")
    print("|---|---|---|---|---|---|---|")
    for name, key, phase, rows, stats in (
            ("/v1/talking-points", "tp_llm", "alone", alone, tp_alone),
            ("/v1/talking-points", "tp_llm", "with background re-tag", together, tp_together),
            ("/v1/tag (full)", "tag_llm", "alone", alone, tag_alone),
            ("/v1/tag (full)", "tag_llm", "with background re-tag", together, tag_together)):
        answered = sum(1 for r in rows if (r[key] > 0 if key == "tp_llm" else r[key] in ("ok", "cached")))
        print(f"| {name} | {phase} | {stats['n']} | {stats['p50']:.2f} | {stats['p95']:.2f} | {stats['max']:.2f} "
              f"| {answered}/{len(rows)} |")
    for phase, rows in (("alone", alone), ("with background re-tag", together)):
        waits = [r["followup_s"] for r in rows if "followup_s" in r]
        if waits:
            ready = sum(1 for r in rows if r.get("followup_status") == "ready")
            print(f"follow-ups {phase}: {len(waits)} of {len(rows)} requests; LLM points ready ({ready}) after "
                  f"p50 {pct(waits, 50):.1f}s, max {max(waits):.1f}s from the request")
    ratio_tp = tp_together["p95"] / tp_alone["p95"] if tp_alone["p95"] else float("inf")
    ratio_tag = tag_together["p95"] / tag_alone["p95"] if tag_alone["p95"] else float("inf")
    print(f"\np95 ratio with background / alone: talking points {ratio_tp:.2f}x, tag {ratio_tag:.2f}x")
    early = " (the job finished during phase 3: the together figure is a lower bound)" if finished_early else ""
    if superseded:
        print(f"WARNING: {superseded} re-tag items were skipped as superseded: the throughput is not the LLM's")
    print(f"background re-tag: {bg_alone:.2f} assets/min alone, {bg_together:.2f} assets/min beside interactive "
          f"requests{early}")
    down_max = max((r["tp_s"] for r in down), default=float("nan"))
    statuses = sorted({r["tp_status"] for r in down})
    print(f"LLM down: talking points max {down_max:.2f}s over {len(down)} requests, HTTP {statuses}")
    errors = [r for r in alone + together if r["tp_status"] != 200 or r["tag_status"] != 200]
    ok = (tp_together["p95"] <= 20 and ratio_tp <= 1.5 and down_max <= 2 and not errors)
    print(f"goals (talking points p95 <= 20 s with background, ratio <= 1.5, LLM down <= 2 s, no errors): "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
