"""Opaque keyset cursors: the last row's id, URL-safe base64, checked on the way back."""

from __future__ import annotations

import base64
import binascii

from service.api.errors import ApiError


def encode_cursor(row_id: str) -> str:
    return base64.urlsafe_b64encode(row_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(422, "invalid_cursor", "The cursor is not one this API returned.") from exc
    if not decoded:
        raise ApiError(422, "invalid_cursor", "The cursor is not one this API returned.")
    return decoded
