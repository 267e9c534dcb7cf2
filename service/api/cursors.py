"""Opaque keyset cursors: the last row's id, URL-safe base64, checked on the way back."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Query

from service.api.errors import ApiError
from service.core.fields import RECORD_ID_PATTERN

# The ``next_cursor`` of a previous page; only its alphabet is documented, as the content is opaque.
CursorParam = Annotated[str | None, Query(max_length=400, pattern=RECORD_ID_PATTERN,
                                          description="next_cursor from the previous page")]


def encode_cursor(row_id: str) -> str:
    return base64.urlsafe_b64encode(row_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(422, "invalid_cursor", "The cursor is not one this API returned.") from exc
    if not decoded or not decoded.isprintable():  # ids are printable; PostgreSQL refuses a NUL outright
        raise ApiError(422, "invalid_cursor", "The cursor is not one this API returned.")
    return decoded
