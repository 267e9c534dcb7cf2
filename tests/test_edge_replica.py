"""Follower processes' copy of the embedded store: it sees every write the leader made, in order, across the
leader's index builds and restarts, and refuses writes of its own."""

import time

import numpy as np
import pytest

from service.store.edge_follower import EdgeFollower
from service.store.edge_replica import followers_folder
from service.store.edge_store import EdgeVectorStore
from service.store.vectors import VectorPoint, VectorStoreError, Where, point_id

from .vector_writer import DIM


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def points(start: int, n: int, dim: int = DIM, **payload) -> list[VectorPoint]:
    rng = np.random.default_rng(start)
    return [VectorPoint(point_id(f"p{i}"), unit(rng.standard_normal(dim)), {"i": i, "status": "approved", **payload})
            for i in range(start, start + n)]


def state(store) -> dict[str, dict]:
    """Every point's payload, by id: what a follower must agree with the leader on."""
    return {p.id: p.payload for p in store.scroll()}


def test_a_follower_sees_every_leader_write_in_order_and_refuses_its_own(tmp_path):
    leader = EdgeVectorStore(tmp_path / "s", DIM, background=False, replicate=True)
    leader.ensure_index("status", "keyword")
    first = points(0, 30)
    leader.upsert(first)
    follower = EdgeFollower(tmp_path / "s", DIM, poll_s=3600)  # caught up by hand below
    try:
        assert follower.count() == 30
        assert follower.search(first[3].vector, 1)[0].payload["i"] == 3

        leader.upsert(points(30, 10))
        leader.set_payload(Where(equals={"i": 3}), {"status": "withdrawn"})
        leader.delete([first[5].id])
        leader.delete_where(Where(ranges={"i": (35, None)}))
        assert follower.count() == 30, "nothing reaches the follower before it catches up"
        follower.catch_up()
        assert state(follower) == state(leader)
        assert follower.count() == 30 + 10 - 1 - 5
        hit = follower.search(first[3].vector, 1, Where(equals={"status": "approved"}))[0]
        assert hit.payload["i"] != 3, "an approval withdrawn on the leader must filter on the follower too"
        assert follower.info()["applied_writes"] == 6  # since the leader started: the index, 3 upserts, 3 removals

        with pytest.raises(VectorStoreError, match="read-only"):
            follower.upsert(points(100, 1))
        with pytest.raises(VectorStoreError, match="read-only"):
            follower.set_payload(Where(equals={"i": 1}), {"status": "withdrawn"})
        assert leader.count() == follower.count() == 34
    finally:
        follower.close()
        leader.close()
    assert list(followers_folder(tmp_path / "s").iterdir()) == [], "a closed follower leaves no copy behind"


def test_a_follower_moves_to_the_leaders_new_index_with_the_writes_made_during_its_build(tmp_path):
    dim, n = 384, 9000  # above the engine's indexing threshold, so a real HNSW graph is built
    leader = EdgeVectorStore(tmp_path / "s", dim, background=False, replicate=True)
    leader.upsert(points(0, n, dim))
    follower = EdgeFollower(tmp_path / "s", dim, poll_s=3600)
    try:
        leader.optimize(wait=False)
        late = 0
        while leader.rebuilding:  # writes during the build reach the follower through either log
            if late < 200:
                leader.upsert(points(10_000 + late, 1, dim, late="yes"))
                late += 1
            follower.catch_up()
            time.sleep(0.005)
        leader.upsert(points(20_000, 1, dim, late="yes"))
        follower.catch_up()
        assert follower.info()["base"] == 2, "the build's copy must become the followers' base"
        assert follower.info()["indexed_vectors"] >= n, "the follower searches the leader's new HNSW graph"
        assert state(follower) == state(leader)
        assert follower.count(Where(equals={"late": "yes"})) == late + 1
    finally:
        follower.close()
        leader.close()


def test_a_restarted_leader_starts_its_followers_again_from_its_new_base(tmp_path):
    leader = EdgeVectorStore(tmp_path / "s", DIM, background=False, replicate=True)
    leader.upsert(points(0, 10))
    follower = EdgeFollower(tmp_path / "s", DIM, poll_s=3600)
    try:
        leader.close()
        leader = EdgeVectorStore(tmp_path / "s", DIM, background=False, replicate=True)
        leader.upsert(points(10, 5))
        follower.catch_up()
        assert follower.count() == 15 and state(follower) == state(leader)
    finally:
        follower.close()
        leader.close()


def test_a_follower_without_a_leader_says_what_is_missing(tmp_path):
    EdgeVectorStore(tmp_path / "s", DIM, background=False).close()  # a store that publishes nothing
    with pytest.raises(VectorStoreError, match="HCP_SERVE_PROCESSES"):
        EdgeFollower(tmp_path / "s", DIM, wait_s=0.3)
