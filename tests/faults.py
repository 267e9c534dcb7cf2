"""Fault-injecting fakes of an OpenAI-compatible server. Used ONLY to inject faults (garbage, slowness,
HTTP errors) that a real server will not produce on demand; every happy path uses the real server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Fault = Literal["garbage_json", "slow", "http_500", "scripted"]


class FaultyLLMServer:
    """A fake endpoint that answers every chat completion with the chosen fault (or a scripted answer
    a real model would not give on demand)."""

    def __init__(self, fault: Fault, delay_s: float = 5.0, script: str = "{}") -> None:
        self.fault = fault
        self.script = script  # the content a "scripted" fake answers (an invented tag, a made-up quote...)
        self.delay_s = delay_s
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _send(self, status: int, body: dict | str) -> None:
                payload = body if isinstance(body, str) else json.dumps(body)
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "faulty", "object": "model"}]})

            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fault == "http_500":
                    self._send(500, {"error": {"message": "boom"}})
                    return
                if outer.fault == "slow":
                    time.sleep(outer.delay_s)
                content = {"garbage_json": "this is {not json", "scripted": outer.script}.get(outer.fault, "{}")
                self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "faulty",
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": content}}],
                                 "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultyLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
