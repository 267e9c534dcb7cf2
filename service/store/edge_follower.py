"""A read-only copy of the embedded engine's shard that follows the leader's writes (see
:mod:`service.store.edge_replica` for what the leader publishes and why)."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from qdrant_edge import EdgeShard, SearchParams

from service.store.edge_replica import (
    LogReader,
    Marker,
    Record,
    followers_folder,
    remove_dead_followers,
    replica_folder,
)
from service.store.edge_store import EdgeVectorStore, _Generation
from service.store.vectors import VectorStoreError

log = logging.getLogger(__name__)


class EdgeFollower(EdgeVectorStore):
    """Searches like :class:`EdgeVectorStore` over its own copy of the leader's shard; refuses writes.

    It does not run :class:`EdgeVectorStore`'s constructor: a follower opens no ``CURRENT`` generation of its
    own and never builds an index; it takes the leader's published base and replays the leader's log."""

    def __init__(self, leader_root: Path, dim: int, *, hnsw_ef: int = 128, poll_s: float = 0.2,
                 wait_s: float = 60.0, search_threads: int | None = None) -> None:
        self.leader_root = Path(leader_root)
        self.search_threads = search_threads
        self.replicas = replica_folder(self.leader_root)
        remove_dead_followers(followers_folder(self.leader_root))
        self.root = followers_folder(self.leader_root) / str(os.getpid())
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.dim = dim
        self._search_params = SearchParams(hnsw_ef=hnsw_ef)
        self.optimize_after, self.background = 0, False
        self._write_lock = threading.RLock()  # replays and the move to a new base
        self._state_lock = threading.Lock()
        self._pending, self._rebuild_thread, self._replicas = None, None, None
        self._closed, self._unindexed, self.rebuilds = False, 0, 0
        self.last_rebuild_error: str | None = None  # the last failure to follow (shown in info())
        self._copies = 0
        self._gen, self._marker, self._reader = self._first_copy(wait_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, args=(poll_s,), name="edge-follow", daemon=True)
        self._thread.start()

    # --- following ---------------------------------------------------------------------------
    def _first_copy(self, wait_s: float) -> tuple[_Generation, Marker, LogReader]:
        deadline = time.monotonic() + wait_s
        while True:
            marker = Marker.read(self.replicas)
            try:
                if marker is not None:
                    return self._copy(marker)
                problem = f"no base published under {self.replicas}"
            except (OSError, VectorStoreError) as exc:  # the base went while it was copied: take the next one
                problem = str(exc)
            if time.monotonic() > deadline:
                raise VectorStoreError(f"cannot follow the vector store's leader: {problem} (is the leader "
                                       "process serving with HCP_SERVE_PROCESSES > 1?)")
            time.sleep(0.2)

    def _copy(self, marker: Marker) -> tuple[_Generation, Marker, LogReader]:
        self._copies += 1
        name = self._generation_name(self._copies)
        target = self.root / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.replicas / marker.base, target)
        try:
            shard = EdgeShard.load(str(target), self._config())
        except Exception as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise VectorStoreError(f"cannot open the copy of {marker.base}: {exc}") from exc
        reader = LogReader(self.replicas / marker.log, marker.seq)
        self._replay(shard, reader)
        return _Generation(name, shard), marker, reader

    def _replay(self, shard: EdgeShard, reader: LogReader) -> None:
        for record in reader.read_new():
            op, _ = self._engine_op(record)
            self._apply(shard, op)

    def catch_up(self) -> None:
        """Apply the leader's writes since the last call; move to its newest base when it published one."""
        marker = Marker.read(self.replicas)
        if marker is None or marker == self._marker:
            with self._write_lock:
                self._replay(self._gen.shard, self._reader)
            return
        fresh, marker, reader = self._copy(marker)  # the old copy serves meanwhile
        with self._write_lock:
            self._replay(fresh.shard, reader)
            with self._state_lock:
                old, self._gen = self._gen, fresh
                old.retired = True
                close_old = old.readers == 0
            self._marker, self._reader = marker, reader
        if close_old:
            self._dispose(old)

    def _follow(self, poll_s: float) -> None:
        while not self._stop.wait(poll_s):
            try:
                self.catch_up()
                self.last_rebuild_error = None
            except Exception as exc:  # the next poll tries again; info() and /readyz show it meanwhile
                if self.last_rebuild_error is None:
                    log.exception("could not follow the vector store's leader")
                self.last_rebuild_error = f"following the leader failed: {exc}"

    @property
    def applied(self) -> int:
        """How many of the leader's writes this copy has applied (since the leader started)."""
        return self._reader.seq

    # --- no writes ---------------------------------------------------------------------------
    def _record(self, record: Record) -> None:
        raise VectorStoreError("this process serves a read-only copy of the vector store; writes go through the "
                               "leader process")

    def optimize(self, wait: bool = True) -> None:
        raise VectorStoreError("a follower does not build indexes; the leader publishes them")

    def info(self) -> dict[str, Any]:
        return {**super().info(), "role": "follower", "base": self._marker.number, "applied_writes": self.applied}

    def close(self) -> None:
        if self._closed:
            return
        self._stop.set()
        self._thread.join()
        super().close()
        shutil.rmtree(self.root, ignore_errors=True)
