"""Serving processes beside the embedded engine's owner: a base copy of its shard and a log of every write since.

One process may hold an embedded shard (its WAL is locked), and a search holds Python's interpreter lock, so one
process ranks one request at a time whatever the cores. To rank on N cores, the owner (the *leader*: it takes
every write) publishes:

- ``replica/base-K/``: a flushed copy of its shard, taken at write number ``seq``;
- ``replica/ops-K.log``: every write after ``seq``, appended as it is applied, in the order applied;
- ``replica/BASE``: which base and log are current (JSON, replaced atomically).

A *follower* (:class:`EdgeFollower`) copies the base into a folder of its own, opens it, replays the log and keeps
tailing it every ``HCP_REPLICA_POLL_S``. When the leader builds a new HNSW generation it publishes that as the
next base (the log restarts from the build's copy), and followers move to it in the background while they keep
serving the old one. A follower is behind the leader by at most one poll; what it returns is still checked
against the database when the answer is built (approval, expiry, scope), so lag can hide new content for that
long but never show content a rep may not see.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import struct
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from service.store.vectors import VectorStoreError

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<I")  # each record: its length, then pickle((seq, op))
Record = tuple[str, Any]  # a write in the store's own terms: ("upsert", [VectorPoint]), ("delete", ids), ...


def replica_folder(root: Path) -> Path:
    return root / "replica"


@dataclass(frozen=True)
class Marker:
    """The current base and the log of the writes after it."""

    epoch: str  # a new one each time a leader starts: followers then start again from its base
    number: int
    seq: int

    @property
    def base(self) -> str:
        return f"base-{self.number:06d}"

    @property
    def log(self) -> str:
        return f"ops-{self.number:06d}.log"

    @staticmethod
    def read(folder: Path) -> Marker | None:
        try:
            raw = json.loads((folder / "BASE").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return Marker(str(raw["epoch"]), int(raw["number"]), int(raw["seq"]))

    def write(self, folder: Path) -> None:
        tmp = folder / "BASE.tmp"
        tmp.write_text(json.dumps({"epoch": self.epoch, "number": self.number, "seq": self.seq}))
        tmp.replace(folder / "BASE")


@dataclass(frozen=True)
class LogMark:
    """Where the log stood when the leader copied its shard: the write count and the byte offset in the log."""

    seq: int
    offset: int


class ReplicaLog:
    """The leader's side. Every method is called under the store's write lock except :meth:`publish`'s copy."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.clear(folder)
        self.epoch = uuid.uuid4().hex
        self.seq = 0
        self._number = 0
        self._file: BinaryIO | None = None
        self._lock = threading.Lock()  # appends against the switch to a new log

    @staticmethod
    def clear(folder: Path) -> None:
        """Remove a previous leader's bases and logs (followers' copies are theirs to remove)."""
        if not folder.is_dir():
            return
        for child in folder.iterdir():
            if child.name.startswith(("base-", "ops-", "BASE")):
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)

    def mark(self) -> LogMark:
        with self._lock:
            return LogMark(self.seq, self._file.tell() if self._file else 0)

    def append(self, record: Record) -> None:
        with self._lock:
            if self._file is None:
                return  # nothing published yet: there is no follower to tell
            self.seq += 1
            data = pickle.dumps((self.seq, record), protocol=pickle.HIGHEST_PROTOCOL)
            self._file.write(_FRAME.pack(len(data)) + data)
            self._file.flush()  # to the page cache, where followers on this host read it

    def publish(self, shard_folder: Path, mark: LogMark) -> None:
        """Make a copy of ``shard_folder`` (a flushed shard at ``mark``) the base followers start from."""
        number = self._number + 1
        marker = Marker(self.epoch, number, mark.seq)
        staging = self.folder / f"{marker.base}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(shard_folder, staging)
        staging.rename(self.folder / marker.base)
        with self._lock:
            fresh = (self.folder / marker.log).open("wb")
            if self._file is not None:  # the writes since the copy carry over to the new base's log
                self._file.flush()
                with (self.folder / Marker(self.epoch, self._number, 0).log).open("rb") as old:
                    old.seek(mark.offset)
                    shutil.copyfileobj(old, fresh)
                self._file.close()
            fresh.flush()
            self._file, self._number = fresh, number
            marker.write(self.folder)
        # a follower still on base number-1 moves on at its next poll; the ones before are nobody's
        for stale in range(1, number - 1):
            old_marker = Marker(self.epoch, stale, 0)
            shutil.rmtree(self.folder / old_marker.base, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (self.folder / old_marker.log).unlink()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class LogReader:
    """A follower's position in one log file: whole records only (a record being written is read next time)."""

    def __init__(self, path: Path, after_seq: int) -> None:
        self.path = path
        self.seq = after_seq
        self._offset = 0

    def read_new(self) -> list[Record]:
        records: list[Record] = []
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        at = 0
        while at + _FRAME.size <= len(data):
            (size,) = _FRAME.unpack_from(data, at)
            if at + _FRAME.size + size > len(data):
                break
            seq, record = pickle.loads(data[at + _FRAME.size: at + _FRAME.size + size])  # the leader's own file
            at += _FRAME.size + size
            if seq != self.seq + 1:
                raise VectorStoreError(f"the replica log {self.path} skips from write {self.seq} to {seq}")
            self.seq = seq
            records.append(record)
        self._offset += at
        return records


def followers_folder(root: Path) -> Path:
    """Where followers keep their own copies, ``<pid>/`` each (a shard folder is locked by the process that
    opens it, so each needs its own)."""
    return replica_folder(root) / "followers"


def remove_dead_followers(folder: Path) -> None:
    """Copies left by followers that died without closing (a kill, a crash)."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name.isdigit() and not _alive(int(child.name)):
            shutil.rmtree(child, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
