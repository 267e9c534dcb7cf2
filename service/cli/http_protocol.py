"""uvicorn's httptools protocol with a limit on the request head.

llhttp, under httptools, sets no limit of its own on a header's length, and httptools gathers a header's pieces in
memory until it ends: a single 64 MB header line took 10 s to refuse and slowed /healthz to 5.6 s meanwhile. Past
``HCP_MAX_HEADER_BYTES`` of a head that has not ended, the connection gets a 431 and is closed, before the API's
own gate (which reads the headers) ever runs."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.api.errors import ErrorBody


def limited_protocol(max_header_bytes: int) -> type[HttpToolsProtocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``."""

    class HeadLimitedProtocol(HttpToolsProtocol):
        _in_head = True  # a connection starts in a request's head
        _head_bytes = 0

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            # the count covers whole reads, so judge only a head still open after this read: one that ended in it
            # may share the read with a body
            if self._in_head and self._head_bytes > max_header_bytes and not self.transport.is_closing():
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
                             f"{max_header_bytes:,}-byte limit (HCP_MAX_HEADER_BYTES).",
                             details={"limit_bytes": max_header_bytes}).model_dump_json().encode()
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json"
                                 b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
                                 + body)
            self.transport.close()

    return HeadLimitedProtocol
