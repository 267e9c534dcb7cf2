"""Uploaded files onto disk: a safe name, and the size limit enforced while copying (413 past it)."""

from __future__ import annotations

import errno
import re
from pathlib import Path

from fastapi import UploadFile

from service.api.errors import ApiError

COPY_CHUNK = 1024 * 1024


MAX_NAME_BYTES = 200  # file systems refuse names past 255 bytes; leave room for a prefix


def safe_name(name: str | None) -> str:
    """The file name alone (no folders, no control characters), never empty, ``.`` or ``..``, and short enough
    for any file system (a longer one keeps its extension and loses the end of its stem)."""
    base = Path((name or "upload").replace("\\", "/")).name.strip()
    base = re.sub(r"[\x00-\x1f/]", "_", base)
    if len(base.encode("utf-8")) > MAX_NAME_BYTES:
        suffix = Path(base).suffix if len(Path(base).suffix.encode("utf-8")) <= 16 else ""
        stem = base[:len(base) - len(suffix)] if suffix else base
        while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
            stem = stem[:-1]
        base = stem + suffix
    return base if base and base not in (".", "..") else "upload"


def save_upload(upload: UploadFile, target: Path, limit: int) -> None:
    """Copy ``upload`` to ``target``, refusing it (413) as soon as it passes ``limit`` bytes."""
    written = 0
    try:
        with target.open("wb") as out:
            while chunk := upload.file.read(COPY_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise ApiError(413, "file_too_large", f"{target.name} is larger than the {limit:,}-byte "
                                   "limit (HCP_MAX_FILE_BYTES).", {"file": target.name, "limit_bytes": limit})
                out.write(chunk)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        target.unlink(missing_ok=True)
        raise ApiError(507, "insufficient_storage", f"The server ran out of disk space while storing "
                       f"{target.name}; nothing from this request was kept. Try again once space is freed.",
                       {"file": target.name}) from err
