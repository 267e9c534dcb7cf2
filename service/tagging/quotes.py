"""Evidence quotes must be found in the source: compared after normalising width, case, whitespace
and punctuation, so an LLM's harmless reformatting passes and an invented quote does not."""

from __future__ import annotations

import unicodedata


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in ("L", "N"))


class QuoteChecker:
    def __init__(self, source: str) -> None:
        self._source = normalise(source)

    def contains(self, quote: str, min_chars: int = 4) -> bool:
        needle = normalise(quote)
        return len(needle) >= min_chars and needle in self._source
