"""Lexical (BM25) encoding of text as sparse vectors, for Chinese and English alike.

Chinese has no spaces, so words come from jieba's search-mode segmentation (a long word and its sub-words,
"心房颤动" → 心房, 房颤, 颤动, 心房颤动): a query for 房颤 finds a passage about 心房颤动. Latin-script words
are lower-cased. Each term becomes a sparse dimension (a stable 31-bit hash); a document's weight is BM25's
saturated term frequency, and the inverse document frequency is left to Qdrant's ``Modifier.IDF``, which
keeps it current as the collection grows. Queries weigh each distinct term 1. Documents and queries must be
encoded by the same code: changing the tokenisation means ``hcp-content reindex``.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import jieba

# Words too common to tell passages apart; IDF would shrink them anyway, but they cost index space.
_STOPWORDS = frozenset({
    "的", "了", "和", "与", "及", "或", "在", "是", "为", "对", "以", "等", "中", "也",
    "而", "被", "将", "就", "都", "其", "该", "这", "那", "有", "于", "从", "并", "由",
    "之", "上", "下", "个", "我", "你", "他", "她", "它", "们", "吗", "呢", "啊", "吧",
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of",
    "on", "or", "that", "the", "this", "to", "was", "were", "will", "with", "not", "no", "but", "than", "then", "so",
    "if", "into", "per", "vs",
})
_WORD = re.compile(r"\w", re.UNICODE)

jieba.setLogLevel(logging.WARNING)


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]

    def __bool__(self) -> bool:
        return bool(self.indices)


def term_id(term: str) -> int:
    """A term's sparse dimension: stable across processes and versions (unlike Python's ``hash``)."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


class LexicalEncoder:
    """Terms of a text, and their BM25 document or query weights. Thread-safe; jieba loads on first use."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_terms: float = 120.0) -> None:
        self.k1, self.b, self.avg_terms = k1, b, avg_terms
        self._jieba: jieba.Tokenizer | None = None
        self._lock = threading.Lock()

    def _tokenizer(self) -> jieba.Tokenizer:
        if self._jieba is None:
            with self._lock:
                if self._jieba is None:
                    tokenizer = jieba.Tokenizer()
                    tokenizer.initialize()
                    self._jieba = tokenizer
        return self._jieba

    def terms(self, text: str) -> list[str]:
        """Normalised terms in reading order (width folded, lower-cased, stopwords and punctuation dropped)."""
        text = unicodedata.normalize("NFKC", text).casefold()
        out: list[str] = []
        for token in self._tokenizer().cut_for_search(text, HMM=True):
            token = token.strip()
            if not token or token in _STOPWORDS or not _WORD.search(token):
                continue
            if token.isascii() and len(token) == 1 and not token.isdigit():
                continue
            out.append(token)
        return out

    def document(self, text: str) -> SparseVector:
        counts = Counter(self.terms(text))
        length = sum(counts.values())
        if not length:
            return SparseVector([], [])
        norm = self.k1 * (1 - self.b + self.b * length / self.avg_terms)
        weights: dict[int, float] = {}
        for term, tf in counts.items():
            index = term_id(term)
            weights[index] = weights.get(index, 0.0) + tf * (self.k1 + 1) / (tf + norm)
        return SparseVector(list(weights), list(weights.values()))

    def query(self, text: str) -> SparseVector:
        return query_vector(self.terms(text))


def query_vector(terms: Iterable[str]) -> SparseVector:
    """A query's sparse vector: each distinct term once, weight 1 (the store applies IDF)."""
    indices = sorted({term_id(t) for t in terms})
    return SparseVector(indices, [1.0] * len(indices))


_default = LexicalEncoder()


def default_encoder() -> LexicalEncoder:
    """The encoder ingest and matching share (one jieba dictionary in memory per process)."""
    return _default
