"""What a source sentence establishes, and which source sentence a claim speaks of.

A claim is lined up with the cited sentences by what they share, its numbers weighing double and the words of
comparison left out (a misquote copies those: "similar in both arms" said of the wrong endpoint). Chinese is
compared in character pairs, English in word stems, so no segmenter decides what matches.

A sentence's direction comes first from its statistics (a ratio's interval against 1, a p value), then from its
own words; a difference the source calls a trend, or whose p is 0.05 or more, is not established.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from service.claims.lexicon import Lexicon
from service.claims.numbers import Number, numbers, p_significant, ratios

_WORD = re.compile(r"[A-Za-z][A-Za-z\-]*|[\u3400-\u9fff]+")
_CJK = re.compile(r"[\u3400-\u9fff]")
QUANTITY = ("lower", "higher", "similar")
VERDICTS = ("superior", "noninferior", "inferior")


@dataclass(frozen=True)
class Assessment:
    """What one source sentence says about a difference."""

    direction: str | None  # lower | higher | similar
    significant: bool | None
    verdicts: frozenset[str] = frozenset()
    trend: bool = False

    @property
    def says_something(self) -> bool:
        return self.direction is not None or bool(self.verdicts)


@dataclass
class Sentence:
    """A source sentence with where it came from (its passage's index) and what it holds."""

    text: str
    passage: int
    terms: frozenset[str]
    numbers: list[Number]
    assessment: Assessment
    superlatives: frozenset[str] = field(default_factory=frozenset)


def terms(text: str, lexicon: Lexicon, *, skip: list[tuple[int, int]] | None = None) -> frozenset[str]:
    """Word stems (English, five letters) and character pairs (Chinese), less the generic words; ``skip``: spans
    to leave out (the claim's own comparison words)."""
    if skip:
        chars = list(text)
        for start, end in skip:
            for i in range(start, min(end, len(chars))):
                chars[i] = " "
        text = "".join(chars)
    out: set[str] = set()
    for word in _WORD.findall(text):
        if _CJK.match(word):
            for generic in lexicon.generic_zh:
                word = word.replace(generic, " ")
            for run in word.split():
                out.update(run[i:i + 2] for i in range(len(run) - 1))
                if len(run) == 1:
                    out.add(run)
        elif word.casefold() not in lexicon.generic_en and len(word) > 1:
            out.add(word.casefold()[:5])
    return frozenset(out)


def quantity_direction(words: set[str]) -> str | None:
    """A sentence's one quantity direction: a stated rise or fall outranks "similar", which beside one is an
    adjective ("higher than in similar registries"); a negated difference reads as similar by its own pattern."""
    if "lower" in words or "higher" in words:
        return "lower" if "lower" in words and "higher" not in words else \
            "higher" if "lower" not in words else None
    return "similar" if "similar" in words else None


def assess(text: str, lexicon: Lexicon) -> Assessment:
    words = {hit.label for hit in lexicon.directions(text)}
    trend = "trend" in words
    verdicts = frozenset(words & set(VERDICTS))
    p = p_significant(text)
    stated = ratios(text, lexicon.ratio_names)
    for ratio in stated:
        if ratio.direction is not None:
            return Assessment(ratio.direction, ratio.direction != "similar", verdicts, trend)
    direction = quantity_direction(words)
    if direction is None and p is not None and stated:
        direction = ("lower" if stated[0].value < 1 else "higher") if p else "similar"
    significant = p if p is not None else (False if trend or direction == "similar" else None)
    if direction in ("lower", "higher") and p is False:
        direction = "similar"  # a difference its own p value does not establish
    return Assessment(direction, significant, verdicts, trend)


def judge(claim_words: set[str], source: Assessment) -> str | None:
    """"supports", "contradicts", or None when the source sentence says nothing either way."""
    if not source.says_something:
        return None
    verdict: str | None = None

    d = quantity_direction(claim_words)
    if d is not None:
        if d == "similar":
            if source.direction in ("lower", "higher") and source.significant is not False and not source.trend:
                return "contradicts"
            if source.direction == "similar":
                verdict = "supports"
        else:
            opposite = "higher" if d == "lower" else "lower"
            if source.direction == opposite:
                return "contradicts"
            if source.direction == "similar" or (source.trend and "trend" not in claim_words):
                return "contradicts"
            if source.direction == d:
                verdict = "supports"
    established = source.significant is True and source.direction in ("lower", "higher")
    if "superior" in claim_words:
        if "superior" in source.verdicts or established:
            verdict = verdict or "supports"
        elif source.direction == "similar" or "inferior" in source.verdicts or source.verdicts == {"noninferior"}:
            return "contradicts"
    if "noninferior" in claim_words:
        if "inferior" in source.verdicts and not source.verdicts & {"superior", "noninferior"}:
            return "contradicts"
        if source.verdicts & {"superior", "noninferior"} or source.direction is not None:
            verdict = verdict or "supports"
    if "inferior" in claim_words:
        if source.verdicts & {"superior", "noninferior"} or established:
            return "contradicts"
        if "inferior" in source.verdicts:
            verdict = verdict or "supports"
    return verdict


def clauses(text: str) -> list[str]:
    """A sentence's clauses: split at commas and semicolons outside brackets, so "fell 2.1, rose 1.2" is two
    comparisons and "(HR 0.81; 95% CI 0.71-0.93)" stays with its own."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "(（[":
            depth += 1
        elif ch in ")）]":
            depth = max(0, depth - 1)
        elif depth == 0 and ch in ",，;；" and not (ch == "," and 0 < i < len(text) - 1 and text[i + 1].isdigit()):
            if text[start:i].strip():
                out.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def source_sentences(passages: list[str], lexicon: Lexicon, split: Callable[[str], list[str]]) -> list[Sentence]:
    """Each passage's sentences, and the clauses of a sentence that holds more than one: a comparison is lined
    up with the clause that makes it when its sentence makes two."""
    out = []
    for index, passage in enumerate(passages):
        for sentence in split(passage):
            parts = clauses(sentence)
            for text in [sentence, *(parts if len(parts) > 1 else [])]:
                out.append(Sentence(text, index, terms(text, lexicon), numbers(text), assess(text, lexicon),
                                    frozenset(h.label for h in lexicon.superlatives(text))))
    return out


def alignment(claim_terms: frozenset[str], claim_numbers: list[Number], sentence: Sentence) -> float:
    """How surely ``sentence`` speaks of what the claim does, 0 to 1: shared stems or pairs, numbers double."""
    shared_numbers = sum(1 for n in claim_numbers if any(n.matches(m) for m in sentence.numbers))
    total = len(claim_terms) + 2 * len(claim_numbers)
    if total == 0:
        return 0.0
    return (len(claim_terms & sentence.terms) + 2 * shared_numbers) / total
