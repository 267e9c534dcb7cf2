"""Free space on the volumes the service writes to, held against a reserve (``HCP_MIN_FREE_BYTES``).

A full disk killed the process: SQLite answered "database or disk is full", then the vector store's memory-mapped
files took a SIGBUS when a page could not be backed, with nothing in the log. So the large writes (an upload, an
ingest item, a batch of events) are refused, or paused, while free space is under the reserve, and the volume
never fills under the engines; the reserve leaves room for the small writes that go on (audit entries, a job's
progress). When space returns, the same requests go through and paused jobs resume: nothing to restart."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Sequence
from pathlib import Path

from service.core.refusal import Refused


class DiskSpace:
    """The least free space among ``paths``' volumes (a path not made yet counts as its nearest parent's)."""

    def __init__(self, paths: Sequence[Path], reserve_bytes: int) -> None:
        self.paths, self.reserve_bytes = list(paths), reserve_bytes

    def free_bytes(self) -> int:
        free = []
        for path in self.paths:
            probe = path
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            free.append(shutil.disk_usage(probe).free)
        return min(free)

    def short(self) -> bool:
        return self.reserve_bytes > 0 and self.free_bytes() < self.reserve_bytes

    def require(self, what: str) -> None:
        """Raise ``Refused`` (``insufficient_storage``, answered 507) when free space is under the reserve."""
        free = self.free_bytes()
        if self.reserve_bytes > 0 and free < self.reserve_bytes:
            raise Refused("no_space", "insufficient_storage", f"The server's disk has {free / 1e6:,.0f} MB free, "
                          f"under the {self.reserve_bytes / 1e6:,.0f} MB it keeps in reserve (HCP_MIN_FREE_BYTES): "
                          f"{what} was not stored. Try again once space is freed.",
                          {"free_bytes": free, "reserve_bytes": self.reserve_bytes})

    def describe(self) -> dict[str, int]:
        return {"free_bytes": self.free_bytes(), "reserve_bytes": self.reserve_bytes}


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
