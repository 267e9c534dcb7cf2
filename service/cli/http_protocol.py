"""uvicorn's httptools protocol with a limit on the request head.

llhttp, under httptools, sets no limit of its own on a header's length, and httptools gathers a header's pieces in
memory until it ends: a single 64 MB header line took 10 s to refuse and slowed /healthz to 5.6 s meanwhile. Past
``HCP_MAX_HEADER_BYTES`` of a head that has not ended, the connection gets a 431 and is closed, before the API's
own gate (which reads the headers) ever runs. uvicorn takes the class by its import path (``PROTOCOL``), so each
of several serving processes loads it itself."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.api.errors import ErrorBody
from service.settings import get_settings

PROTOCOL = "service.cli.http_protocol:HeadLimitedProtocol"


class HeadLimitedProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head = get_settings().max_header_bytes
        self._in_head, self._head_bytes = True, 0  # a connection starts in a request's head

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # the count covers whole reads, so judge only a head still open after this read: one that ended in it may
        # share the read with a body
        if self._in_head and self._head_bytes > self._max_head and not self.transport.is_closing():
            self._refuse()

    def on_message_begin(self) -> None:
        self._in_head = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def _refuse(self) -> None:
        body = ErrorBody(code="headers_too_large", message=f"The request's headers are larger than the "
                         f"{self._max_head:,}-byte limit (HCP_MAX_HEADER_BYTES).",
                         details={"limit_bytes": self._max_head}).model_dump_json().encode()
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json"
                             b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
                             + body)
        self.transport.close()
