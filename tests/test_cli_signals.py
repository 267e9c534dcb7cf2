"""A command that started a local LLM server stops it when the command is terminated."""

import os
import signal
import subprocess
import sys
import time

import httpx

from service.llm.local_server import free_port

from .conftest import smollm_path


def test_sigterm_to_llm_server_command_stops_the_server_it_started(tmp_path):
    port = free_port()
    env = {**os.environ, "HCP_DATA_DIR": str(tmp_path), "HCP_LLM_MODE": "local",
           "HCP_LLM_MODEL_PATH": str(smollm_path()), "HCP_LLM_LOCAL_PORT": str(port), "HCP_LLM_LOCAL_THREADS": "1"}
    env.pop("HCP_LLM_BASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "llm-server"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError("the LLM server did not come up")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    time.sleep(0.5)
    try:
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
        still_up = True
    except httpx.HTTPError:
        still_up = False
    assert not still_up, "the LLM server outlived the command that started it"
