"""A real `hcp-content serve` process for a benchmark: started with the given environment, waited on until it
answers, or the benchmark stops with why."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx


def start_serve(env: dict[str, str], port: int, *, ready_path: str = "/readyz",
                output: IO[bytes] | int = subprocess.DEVNULL, cwd: Path | None = None,
                timeout_s: float = 300.0) -> tuple[subprocess.Popen[bytes], str]:
    """``serve`` on ``port``, once ``ready_path`` answers 200; ``cwd``: the checkout whose code runs."""
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, stdout=output,
                            stderr=subprocess.STDOUT, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}{ready_path}", timeout=10).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the service did not become ready within {timeout_s:.0f} s")
