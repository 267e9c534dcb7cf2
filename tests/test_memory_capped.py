"""What an outsider or a hostile file sends cannot take a memory-capped service down (issue 46, findings 1, 2, 5
and 7): a real `hcp-content serve` process is given an address-space limit a little above what it holds once
ready, then sent a gigabyte body without a key, a billion-laughs taxonomy, four lying zip bombs at once and a
64 MB header line. Each gets its answer, and the process lives and still tags a real document afterwards."""

from __future__ import annotations

import resource
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .badfiles import GOOD_DOCX, lying_zip_bomb_docx
from .test_interactive_serve import serving

HEADROOM = 1536 * 1024 * 1024  # above the ready process's address space: a real document tags well within it


@dataclass
class Capped:
    proc: subprocess.Popen[str]
    base: str
    port: int
    admin: dict[str, str]

    def alive(self) -> bool:
        return self.proc.poll() is None and httpx.get(f"{self.base}/healthz", timeout=30).status_code == 200


def _address_space(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capped]:
    data = tmp_path_factory.mktemp("capped") / "data"
    # few malloc arenas: each new thread would otherwise reserve 64 MB of address space the cap counts
    with serving(data, HCP_LLM_MODE="off", HCP_WORKER_ENABLED="false", MALLOC_ARENA_MAX="2") as (proc, base):
        admin = {"X-API-Key": (data / "admin.key").read_text().strip()}
        # one document tagged before the cap: first-use allocations are not what the cap is about
        first = httpx.post(f"{base}/v1/tag/file", files={"file": ("guide.docx", GOOD_DOCX.read_bytes())},
                           headers=admin, timeout=120)
        assert first.status_code == 200, first.text
        limit = _address_space(proc.pid) + HEADROOM
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (limit, limit))
        yield Capped(proc, base, int(base.rsplit(":", 1)[1]), admin)
    output = proc.stdout.read() if proc.stdout else ""
    assert "MemoryError" not in output, output[-3000:]


def _raw(port: int, head: bytes, body_chunks: Iterator[bytes]) -> bytes:
    """Send ``head`` then body chunks until the server answers or closes; the answer's bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:  # the timeout only ends a hang
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the server answered and closed: what we wait for
            pass
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and b"}" in answer.split(b"\r\n\r\n", 1)[1]:
                    break
        except ConnectionResetError:  # closed with our unread bytes still queued: what came before counts
            pass
        return answer


def test_a_gigabyte_body_without_a_key_is_refused_and_costs_nothing(capped):
    head = (f"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {1000 * 1024 * 1024}\r\n\r\n").encode()
    answer = _raw(capped.port, head, (b"\0" * (1 << 20) for _ in range(1000)))
    assert answer.startswith(b"HTTP/1.1 401") and b"missing_api_key" in answer, answer[:300]
    assert capped.alive()


def test_a_billion_laughs_taxonomy_is_an_invalid_answer(capped):
    from .test_safe_yaml import LAUGHS

    r = httpx.post(f"{capped.base}/v1/taxonomy/check", json={"source": LAUGHS}, headers=capped.admin, timeout=60)
    assert r.status_code == 200 and not r.json()["valid"] and "aliases" in r.json()["error"]["message"], r.text
    assert capped.alive()


def test_four_lying_zip_bombs_at_once_are_refused_by_what_they_inflate(capped, tmp_path):
    bomb = tmp_path / "bomb.docx"
    lying_zip_bomb_docx(bomb, expanded_mb=1024)  # 1 MB on disk, 1 GiB inflated, 2 MB by its directory
    data = bomb.read_bytes()

    def send(i: int) -> httpx.Response:
        return httpx.post(f"{capped.base}/v1/tag/file", files={"file": (f"deck{i}.docx", data)},
                          headers=capped.admin, timeout=120)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    assert [(r.status_code, r.json()["code"]) for r in answers] == [(413, "zip_bomb")] * 4, answers[0].text
    assert capped.alive()
    good = httpx.post(f"{capped.base}/v1/tag/file", files={"file": ("guide.docx", GOOD_DOCX.read_bytes())},
                      headers=capped.admin, timeout=120)
    assert good.status_code == 200 and good.json()["tags"], good.text


def test_a_64_mb_header_line_is_refused_at_the_header_limit(capped):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: "
    answer = _raw(capped.port, head, (b"a" * (1 << 20) for _ in range(64)))
    assert answer.startswith(b"HTTP/1.1 431") and b"headers_too_large" in answer, answer[:300]
    assert capped.alive()
