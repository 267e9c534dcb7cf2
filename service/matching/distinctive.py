"""Which of the words a need shares with a passage are worth naming in a reason.

"Mentions 'treatment'" is not a reason: nearly every medical passage says treatment, patient, 治疗. A word is named
only if it is distinctive: more than one character, not a number, not on the list of generic terms
(taxonomy/generic_terms.yaml, data), and not in more than a set share of the passages of its language (a low IDF,
judged on a sample of the current passages, re-drawn when the content changes).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from service.core import safe_yaml
from service.store.db import Database
from service.store.models import Asset, Chunk


class GenericTerms(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_chunk_share: float = Field(gt=0, le=1)
    min_chunks: int = Field(ge=1)
    sample_chunks: int = Field(ge=1, le=100_000)
    terms: dict[str, list[str]]

    def listed(self) -> frozenset[str]:
        return frozenset(t.lower() for words in self.terms.values() for t in words)


def load_generic_terms(path: Path) -> GenericTerms:
    try:
        return GenericTerms.model_validate(safe_yaml.load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read the generic terms {path}: {err}") from err


def telling(term: str) -> bool:
    """Not a lone character or a number, which BM25 may match on ("GLP-1" segments into "glp" and "1") but which
    say nothing to a person."""
    return len(term) > 1 and not term.replace(".", "").isdigit()


@dataclass(frozen=True)
class Shares:
    """Per language, how many sampled passages there were and in how many each word occurs."""

    passages: dict[str, int]
    counts: dict[str, Counter[str]]


class Distinctive:
    """Decides which shared words a reason may name; the passage shares are re-drawn when the store changes."""

    def __init__(self, db: Database, generic: GenericTerms, terms: Callable[[str], Sequence[str]]) -> None:
        self.db, self.generic, self.terms = db, generic, terms
        self.listed = generic.listed()
        self._lock = threading.Lock()
        self._shares: tuple[object, Shares] | None = None

    def words(self, terms: Iterable[str], language: str, generation: object,
              chunk_ids: Callable[[int], list[str]]) -> list[str]:
        """The distinctive ones of ``terms`` (in order, once each). ``generation``: the store's state the shares
        must be current to; ``chunk_ids(n)``: at most n current passage ids, spread over the content."""
        shares = self._current(generation, chunk_ids)
        total = shares.passages.get(language, 0)
        counts = shares.counts.get(language, Counter())
        limit = self.generic.max_chunk_share * total
        out = []
        for term in dict.fromkeys(terms):
            if not telling(term) or term.lower() in self.listed:
                continue
            if total >= self.generic.min_chunks and counts[term] > limit:
                continue
            out.append(term)
        # jieba's search mode also yields the pieces of a long word ("心血管" → "心血", "血管"): name the word once
        return [t for t in out if not any(t != other and t in other for other in out)]

    def _current(self, generation: object, chunk_ids: Callable[[int], list[str]]) -> Shares:
        held = self._shares
        if held is not None and held[0] == generation:
            return held[1]
        with self._lock:  # one thread draws; the others wait for it rather than draw again
            held = self._shares
            if held is None or held[0] != generation:
                held = self._shares = (generation, self._draw(chunk_ids(self.generic.sample_chunks)))
        return held[1]

    def _draw(self, ids: list[str]) -> Shares:
        passages: Counter[str] = Counter()
        counts: dict[str, Counter[str]] = {}
        if ids:
            with self.db.session() as s:
                rows = s.execute(select(Chunk.text, Asset.language).join(Asset, Asset.id == Chunk.asset_id)
                                 .where(Chunk.id.in_(ids))).all()
            for text, language in rows:
                passages[language] += 1
                counts.setdefault(language, Counter()).update(set(self.terms(text)))
        return Shares(dict(passages), counts)
