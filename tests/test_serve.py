"""`hcp-content serve` as a user runs it: a real process, a real local LLM server it starts itself."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import httpx

from service.cli import settings_table
from service.llm.local_server import free_port

from .api_helpers import wait_ready
from .conftest import smollm_path

ROOT = Path(__file__).resolve().parent.parent


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serve_starts_its_own_local_llm_answers_readyz_and_stops_it_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "HCP_DATA_DIR": str(tmp_path / "data"), "HCP_PORT": str(port),
           "HCP_LLM_MODE": "local", "HCP_LLM_MODEL_PATH": str(smollm_path()), "HCP_LLM_MODEL": "smollm2",
           "HCP_LLM_LOCAL_THREADS": "1"}
    env.pop("HCP_LLM_BASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        admin = {"X-API-Key": (tmp_path / "data" / "admin.key").read_text().strip()}
        r = httpx.get(f"http://127.0.0.1:{port}/readyz", headers=admin, timeout=30)
        assert r.status_code == 200, r.text
        llm = r.json()["components"]["llm"]
        assert llm["status"] == "ok" and llm["details"]["model"] == "smollm2" and llm["details"]["mode"] == "local"
        llm_port = urlparse(llm["details"]["endpoint"]).port
        assert urlparse(llm["details"]["endpoint"]).hostname == "127.0.0.1"
        assert llm_port and port_open(llm_port)
        assert (tmp_path / "data" / "hcp.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert not port_open(llm_port), "the local LLM server must stop with the service"


def test_serve_refuses_to_start_without_the_local_model_and_says_how_to_fix_it(tmp_path):
    env = {**os.environ, "HCP_DATA_DIR": str(tmp_path), "HCP_LLM_MODE": "local",
           "HCP_LLM_MODEL_PATH": str(tmp_path / "missing.gguf")}
    env.pop("HCP_LLM_BASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "service.cli", "serve"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    assert "models prepare" in out.stderr and "HCP_LLM_MODE=off" in out.stderr


def test_readme_opens_with_the_two_commands_and_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
    assert settings_table() in readme, "README settings table is stale: run `hcp-content settings --markdown`"
