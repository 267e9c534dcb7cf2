"""Nothing read from the database is unpickled (issue 46, finding 9): a model generation whose bytes are a pickle
that would run code, stored with matching SHA-256s as anyone who can write one row could, is refused without
running it, and the service goes on tagging without learned heads until the next retrain."""

from __future__ import annotations

import pickle
from pathlib import Path

from service.runtime import build_components
from service.settings import Settings
from service.store.generations import add_generation, serving_state


class WritesAFile:
    """Unpickling this opens (so creates) ``path`` for writing: proof that the bytes were run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.path), "w")


def test_a_pickle_stored_as_a_model_generation_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "the-pickle-ran"
    evil = pickle.dumps({"taxonomy": None, "payload": WritesAFile(marker)})
    c = build_components(Settings(data_dir=tmp_path / "data", llm_mode="off", worker_enabled=False))
    try:
        generation = add_generation(c.db, c.tagger.taxonomy.key, evil, evil, 36, ("intruder", "admin"))
        assert serving_state(c.db).generation == generation  # type: ignore[union-attr]
        c.tagger.sync(max_age_s=0)  # what every process does within HCP_STATE_CHECK_S
        assert not marker.exists(), "bytes from the database were unpickled"
        assert c.tagger.generation == generation and c.tagger.engine.heads is None
        vectors = c.embedder.embed_passages(["Cardiovex lowers stroke risk in atrial fibrillation."])
        result = c.tagger.tag("Cardiovex lowers stroke risk in atrial fibrillation.", title="note", language="en",
                              chunks=["Cardiovex lowers stroke risk in atrial fibrillation."], chunk_vectors=vectors,
                              content_hash=None, metadata={})
        assert result.tags, "tagging goes on without the refused heads"
    finally:
        c.close()
