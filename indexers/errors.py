"""Typed ingest errors: a machine-readable code and a sentence a content editor understands."""

from __future__ import annotations

from typing import Literal

IngestErrorCode = Literal[
    "empty_file", "corrupt_file", "truncated_file", "encrypted_file", "wrong_extension", "file_too_large",
    "zip_bomb", "no_extractable_text", "unsupported_type", "bad_metadata", "bad_feed_item", "unreadable_file",
]


class IngestError(Exception):
    """A file that cannot be ingested, and why."""

    def __init__(self, code: IngestErrorCode, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code: IngestErrorCode = code
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.code}]" if self.path else f"{self.message} [{self.code}]"

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "path": self.path}
