"""A local OpenAI-compatible LLM server (llama-cpp-python's) on the loopback interface.

Started by ``hcp-content serve`` when no external endpoint is configured, and by the test suite
with a tiny model. It is a real HTTP server; the service talks to it only through ``openai``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


class LocalServerError(RuntimeError):
    """The local LLM server could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalLLMServer:
    """Runs ``python -m llama_cpp.server`` as a child process bound to 127.0.0.1."""

    def __init__(self, model_path: Path, alias: str, *, port: int = 0, threads: int = 1,
                 n_ctx: int = 4096, log_path: Path | None = None) -> None:
        self.model_path = Path(model_path)
        self.alias = alias
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.threads = threads
        self.n_ctx = n_ctx
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        # Both thread flags: with llama.cpp's default (all cores) generation collapses as soon as
        # anything else (the embedder) wants a core.
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
                "--model_alias", self.alias, "--host", self.host, "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
                "--n_threads_batch", str(self.threads),
                # the service decides what to interrupt (its gateway preempts background calls); left on, the
                # server would cut a streamed answer short whenever any request arrives, a model list included
                "--interrupt_requests", "False"]

    def start(self, timeout_s: float = 180.0) -> LocalLLMServer:
        if not self.model_path.is_file():
            raise LocalServerError(f"model file {self.model_path} does not exist; run "
                                   "`hcp-content models prepare` (make run does it)")
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise LocalServerError("llama-cpp-python is not installed: install the `llm` extra "
                                   "(pip install 'hcp-content[llm]') or set HCP_LLM_MODE=off") from exc
        with open(self.log_path or os.devnull, "ab") as log:
            # A session of its own: stopping the server signals its whole process group.
            self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        try:
            self._wait_ready(timeout_s)
        except BaseException:  # interrupted (SIGTERM, Ctrl-C) or failed while starting: leave nothing behind
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise LocalServerError(f"the LLM server exited with code {self._proc.returncode} "
                                       f"during start-up (log: {self.log_path or 'not kept'})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.25)
        self.stop()
        raise LocalServerError(f"the LLM server did not answer within {timeout_s:.0f}s")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (used to inject a crash)."""
        if self._proc and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)

    def stop(self, grace_s: float = 5.0) -> None:
        if not self._proc or self._proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=grace_s)

    def __enter__(self) -> LocalLLMServer:
        return self.start() if not self.is_running() else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class GgufPromptCounter:
    """Exact prompt tokens for the local server's streamed answers (llama-cpp-python's stream carries no usage):
    the model's own chat template and tokenizer, read from the GGUF file without loading its weights."""

    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        self._lock = threading.Lock()
        self._vocab: Any = None
        self._formatter: Any = None

    def _load(self) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        vocab = Llama(str(self.model_path), vocab_only=True, verbose=False)
        eos = vocab.detokenize([vocab.token_eos()]).decode("utf-8", "ignore")
        bos = vocab.detokenize([vocab.token_bos()]).decode("utf-8", "ignore") if vocab.token_bos() >= 0 else ""
        self._formatter = Jinja2ChatFormatter(vocab.metadata["tokenizer.chat_template"], eos_token=eos,
                                              bos_token=bos)
        self._vocab = vocab

    def __call__(self, messages: list[dict[str, str]]) -> int:
        with self._lock:
            if self._vocab is None:
                self._load()
            prompt = self._formatter(messages=messages).prompt
            return len(self._vocab.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
