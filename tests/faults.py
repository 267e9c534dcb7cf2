"""Fault-injecting fakes of an OpenAI-compatible server. Used ONLY to inject faults (garbage, slowness,
HTTP errors) that a real server will not produce on demand; every happy path uses the real server."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Fault = Literal["garbage_json", "slow", "http_500", "scripted"]


class FaultyLLMServer:
    """A fake endpoint that answers every chat completion with the chosen fault (or a scripted answer
    a real model would not give on demand)."""

    def __init__(self, fault: Fault, delay_s: float = 5.0, script: str = "{}", stream_chunks: int = 10) -> None:
        self.fault = fault
        self.script = script  # the content a "scripted" fake answers (an invented tag, a made-up quote...)
        self.delay_s = delay_s
        self.stream_chunks = stream_chunks  # a streamed "slow" answer spreads its delay over this many chunks
        self.requests = 0
        self.arrivals: list[str] = []  # each request's last message, in the order they arrived
        self.bodies: list[dict] = []  # each request as sent (messages, response_format...), in the same order
        self.finished: list[str] = []  # and in the order they were answered to the end (not dropped)
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

            def _stream(self, content: str, marker: str, delay_s: float) -> None:
                """Server-sent events as OpenAI streams them; a "slow" fault spreads its delay over the chunks,
                as a model generating tokens would, so a client closing the stream is noticed at the next one."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                n = max(1, outer.stream_chunks)
                pieces = [content[i * len(content) // n:(i + 1) * len(content) // n] for i in range(n)]
                try:
                    for i, piece in enumerate(pieces):
                        if outer.fault == "slow":
                            time.sleep(delay_s / n)
                        delta = {"content": piece} if piece else {}
                        finish = "stop" if i == n - 1 else None
                        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "faulty",
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client called it off
                outer.finished.append(marker)

            def do_POST(self) -> None:
                outer.requests += 1
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                marker = str((body.get("messages") or [{}])[-1].get("content", ""))
                outer.arrivals.append(marker)
                outer.bodies.append(body)
                if outer.fault == "http_500":
                    self._send(500, {"error": {"message": "boom"}})
                    return
                content = {"garbage_json": "this is {not json", "scripted": outer.script}.get(outer.fault, "{}")
                if body.get("stream"):  # the delay as it was when the request came (a test may change it)
                    self._stream(content, marker, outer.delay_s)
                    return
                if outer.fault == "slow":
                    time.sleep(outer.delay_s)
                self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "faulty",
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": content}}],
                                 "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
                outer.finished.append(marker)

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


class TcpProxy:
    """A loopback TCP forwarder to a real server (here: PostgreSQL) that can be cut and restored on the same
    port, so the service sees the database go away (connections reset, new ones refused) and come back."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        """``target``: (host, port), or a Unix socket path."""
        import socket

        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._live: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        import socket

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: object) -> None:
        import socket

        assert isinstance(listener, socket.socket)
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                if isinstance(self.target, str):
                    upstream = socket.socket(socket.AF_UNIX)
                    upstream.settimeout(5)
                    upstream.connect(self.target)
                else:
                    upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._live += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: object, dst: object) -> None:
        import socket

        assert isinstance(src, socket.socket) and isinstance(dst, socket.socket)
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        import socket

        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would leave it accepting on Linux
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._live:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._live.clear()

    def close(self) -> None:
        self.cut()
