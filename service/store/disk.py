"""Free space on the volumes the service writes to, held against a reserve (``HCP_MIN_FREE_BYTES``).

A full disk killed the process: SQLite answered "database or disk is full", then the vector store's memory-mapped
files took a SIGBUS when a page could not be backed, with nothing in the log. So the large writes (an upload, an
ingest item, a batch of events) are refused, or paused, while free space is under the reserve, and the volume
never fills under the engines; the reserve leaves room for the small writes that go on (audit entries, a job's
progress). When space returns, the same requests go through and paused jobs resume: nothing to restart."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from service.core.refusal import Refused


class DiskSpace:
    """The least free space among the volumes of ``paths`` (a path not made yet counts as its nearest parent's),
    and whether this process can still write there. ``deep`` paths are checked file by file: the embedded vector
    store maps its files into memory, and a write to one that became read-only (an immutable file, a read-only
    remount) is a SIGBUS, so its writes must stop before, not fail after."""

    def __init__(self, paths: Sequence[Path], reserve_bytes: int, deep: Sequence[Path] = ()) -> None:
        self.paths, self.reserve_bytes, self.deep = list(paths), reserve_bytes, list(deep)

    def free_bytes(self) -> int:
        return min(shutil.disk_usage(_existing(path)).free for path in [*self.paths, *self.deep])

    def problem(self, consequence: str = "nothing new is stored") -> Refused | None:
        """Why nothing can be stored now (507 under the reserve, 503 where the service cannot write), saying
        ``consequence``; None when it can."""
        unwritable = self._unwritable()
        if unwritable is not None:
            return Refused("unavailable", "storage_read_only", f"The server cannot write to {unwritable.name} "
                           f"(a read-only disk or file): {consequence}. Writes go on once it is writable "
                           "again.", {"path": unwritable.name})
        free = self.free_bytes()
        if self.reserve_bytes > 0 and free < self.reserve_bytes:
            return Refused("no_space", "insufficient_storage", f"The server's disk has {free / 1e6:,.0f} MB free, "
                           f"under the {self.reserve_bytes / 1e6:,.0f} MB it keeps in reserve (HCP_MIN_FREE_BYTES): "
                           f"{consequence}. Writes go on once space is freed.",
                           {"free_bytes": free, "reserve_bytes": self.reserve_bytes})
        return None

    def short(self) -> bool:
        return self.problem() is not None

    def require(self) -> None:
        """Raise the :meth:`problem` (answered 507 or 503) when nothing can be stored now."""
        refused = self.problem("nothing from this request was stored")
        if refused is not None:
            raise refused

    def describe(self) -> dict[str, int]:
        return {"free_bytes": self.free_bytes(), "reserve_bytes": self.reserve_bytes}

    def _unwritable(self) -> Path | None:
        # access(2) answers for this process: EROFS on a read-only mount, EPERM for an immutable file
        for folder in self.paths:
            if folder.exists() and not os.access(folder, os.W_OK):
                return folder
        for folder in self.deep:
            if not folder.exists():
                continue
            for path in (folder, *folder.rglob("*")):
                if not os.access(path, os.W_OK):
                    return path
        return None


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def is_disk_full(exc: BaseException) -> bool:
    """A write that failed for want of space: ENOSPC or EDQUOT, SQLite's SQLITE_FULL, PostgreSQL's ``disk_full``
    (SQLSTATE 53100), or the same wrapped by SQLAlchemy or an engine's own error."""
    seen: BaseException | None = exc
    for _ in range(4):  # the error, what it wraps (SQLAlchemy's .orig, a cause), and so on, a few levels deep
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(seen, "sqlstate", None) == "53100" or getattr(seen, "pgcode", None) == "53100":
            return True
        text = str(seen).lower()
        if "database or disk is full" in text or "no space left on device" in text:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False
