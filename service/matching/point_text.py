"""What a talking point may be made of: a sentence a rep could say to a doctor as it is, in the language asked
for, free of tracking language and of instructions planted in the source.

A sentence is offered only when it opens and closes like a sentence, is long enough to carry a claim, is not a
heading, and is neither coaching for the rep ("Lead with the primary endpoint") nor a patient's description
(the claim checker's vocabulary, taxonomy/claims.yaml); speaker notes are left out by their chunk's kind. The
guardrails (prompts/talking_points/guardrails.yaml) run on every point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from service.claims.lexicon import Lexicon
from service.core.prompts import PROMPTS_DIR
from service.matching.cards import ChunkRow

MIN_WORDS_EN = 6  # "Once-daily dosing." is a fragment; a point a rep says is a whole claim
MIN_CHARS_EN = 40
MIN_CJK_ZH = 12
_CJK = re.compile(r"[\u3400-\u9fff]")
_SENTENCE_CLOSE = re.compile(r"[.!?。！？][\"'”’)）」』]*$")
_SENTENCE_OPEN = re.compile(r"^[\"'“‘(（「『]*[A-Z0-9\u3400-\u9fff]")
_LETTER = re.compile(r"[A-Za-z\u3400-\u9fff]")



@dataclass
class Guardrails:
    tracking: list[re.Pattern[str]]
    injection: list[re.Pattern[str]]

    @classmethod
    def load(cls, path: Path = PROMPTS_DIR / "talking_points" / "guardrails.yaml") -> Guardrails:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        compiled = {key: [re.compile(p, re.IGNORECASE) for p in data.get(key, [])] for key in ("tracking", "injection")}
        return cls(compiled["tracking"], compiled["injection"])

    def tracks(self, text: str) -> bool:
        return any(p.search(text) for p in self.tracking)

    def injects(self, text: str) -> bool:
        return any(p.search(text) for p in self.injection)


def in_language(text: str, language: str) -> bool:
    letters = _LETTER.findall(text)
    if not letters:
        return False
    cjk = sum(1 for ch in letters if _CJK.match(ch)) / len(letters)
    return cjk >= 0.2 if language == "zh" else cjk < 0.2


def sayable(sentence: str, headings: set[str]) -> bool:
    """A sentence a rep could say as it is: it opens like a sentence (not mid-way, as a chunk's overlap can),
    closes with a full stop, question or exclamation mark (a heading, title or bullet does not), is long enough
    to carry a claim, and is not one of the document's headings."""
    text = sentence.strip()
    if not _SENTENCE_CLOSE.search(text) or not _SENTENCE_OPEN.match(text):
        return False
    if text.rstrip(".!?。！？").strip().casefold() in headings:
        return False
    cjk = len(_CJK.findall(text))
    if cjk >= 0.3 * len(_LETTER.findall(text) or [0]):
        return cjk >= MIN_CJK_ZH
    return len(text) >= MIN_CHARS_EN and len(text.split()) >= MIN_WORDS_EN


def heading_texts(title: str, chunks: list[ChunkRow]) -> set[str]:
    """The asset's title and every heading on its chunks' section paths, compared case-insensitively."""
    out = {title.strip().casefold()}
    for chunk in chunks:
        for part in re.split(r"\s*[>/›»]\s*", chunk.section or ""):
            if part.strip():
                out.add(part.strip().rstrip(".!?。！？").casefold())
    return out


def offerable(sentence: str, lexicon: Lexicon) -> bool:
    """Not coaching for the rep and not a patient's description (speaker notes are left out by their chunk)."""
    return not lexicon.is_coaching(sentence) and not lexicon.is_demographic(sentence)
