"""The claim checker's vocabulary, loaded from taxonomy/claims.yaml and compiled once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

LEXICON_PATH = Path(__file__).resolve().parents[2] / "taxonomy" / "claims.yaml"
DIRECTIONS = ("similar", "lower", "higher", "superior", "noninferior", "inferior", "trend")


@dataclass(frozen=True)
class Hit:
    """A vocabulary entry found in a text: what it is (a direction, a superlative id) and where."""

    label: str
    start: int
    end: int
    text: str


def _compile(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def _longest_first(hits: list[Hit]) -> list[Hit]:
    """Hits that no longer hit overlaps: "non-inferior" keeps its own label, not also "inferior"."""
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (-(h.end - h.start), h.start)):
        if all(hit.end <= k.start or hit.start >= k.end for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def _ascii_bounded(text: str, start: int, end: int) -> bool:
    """An English word is a word only between non-letters ("less" is not in "regardless")."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    word = text[start:end]
    if word[:1].isascii() and word[:1].isalpha() and before.isascii() and before.isalpha():
        return False
    return not (word[-1:].isascii() and word[-1:].isalpha() and after.isascii() and after.isalpha())


class Lexicon:
    def __init__(self, data: dict) -> None:
        self.version = str(data.get("version", ""))
        self._directions = {label: [re.compile(p, re.IGNORECASE) for p in data["directions"].get(label, [])]
                            for label in DIRECTIONS}
        self._superlatives = {sid: [re.compile(p, re.IGNORECASE) for p in words]
                              for sid, words in data["superlatives"].items()}
        self.ratio_names: list[str] = list(data["ratios"])
        self._safety = _compile(data["safety"])
        self._coaching = _compile(data["coaching"])
        self._demographics = _compile(data["demographics"])
        self.not_indications = frozenset(n.casefold() for n in data.get("not_indications", []))
        generic = data.get("generic", {})
        self.generic_en: frozenset[str] = frozenset(w.casefold() for w in generic.get("en", []))
        self.generic_zh: tuple[str, ...] = tuple(sorted(generic.get("zh", []), key=len, reverse=True))

    @classmethod
    def load(cls, path: Path = LEXICON_PATH) -> Lexicon:
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")))

    def _find(self, table: dict[str, list[re.Pattern[str]]], text: str) -> list[Hit]:
        hits = [Hit(label, m.start(), m.end(), m.group(0)) for label, patterns in table.items()
                for pattern in patterns for m in pattern.finditer(text)
                if m.end() > m.start() and _ascii_bounded(text, m.start(), m.end())]
        return _longest_first(hits)

    def directions(self, text: str) -> list[Hit]:
        return self._find(self._directions, text)

    def superlatives(self, text: str) -> list[Hit]:
        return self._find(self._superlatives, text)

    def is_safety(self, text: str) -> bool:
        return bool(self._safety.search(text))

    def is_coaching(self, text: str) -> bool:
        return bool(self._coaching.search(text.strip()))

    def is_demographic(self, text: str) -> bool:
        return bool(self._demographics.search(text))


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    return Lexicon.load()
