"""The claim checker: a sentence's claims held against the passages it cites, in Chinese and English.

A sentence is read as claims of four kinds, and each is checked against the cited passages:
- every number (with its unit or statistic) must occur there, after units and formats are normalised;
- a stated direction (lower, higher, similar, superior, non-inferior) must agree with what the source sentence it
  speaks of establishes: a ratio whose interval excludes 1 is not "similar", a trend is not a reduction;
- a product named with an indication must be approved for it (``approved_for`` on the product's taxonomy value);
- a superlative (best, safest, first, only; 最, 第一, 唯一) must be in the source.

Each flag carries a ``score`` (how surely it holds: 1 for a number or word that is simply absent, the alignment
with the contradicting sentence for a direction) and the source sentence it failed on, so a reviewer sees why.
The rules decide what they can; ``undecided`` lists claims they could not tie to any source sentence, for an
entailment judge where one is configured. The rules' "contradicts" is never overruled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from indexers.chunker import sentences as split_sentences
from service.claims.evidence import (
    QUANTITY,
    VERDICTS,
    Sentence,
    alignment,
    clauses,
    judge,
    source_sentences,
    terms,
)
from service.claims.lexicon import Hit, Lexicon, default_lexicon
from service.claims.numbers import Number, normalise, numbers
from service.core.taxonomy import Taxonomy

FlagKind = Literal["unsupported_number", "contradicts_source", "off_label", "unsupported_superlative"]
ALIGNED_SHARE = 0.5  # a sentence less than half as well aligned as the best one speaks of something else
MIN_ALIGNMENT = 0.2


@dataclass(frozen=True)
class Flag:
    kind: FlagKind
    claim: str  # the words of the claim that failed ("similar", "3.5%", "Cardiovex + NSCLC", "safest")
    score: float
    quote: str | None  # the source sentence it failed on, or the closest one
    passage: int | None  # that sentence's passage (an index into the passages given)
    detail: str = ""


@dataclass(frozen=True)
class Support:
    quote: str
    passage: int
    score: float


@dataclass
class ClaimCheck:
    text: str
    flags: list[Flag] = field(default_factory=list)
    support: list[Support] = field(default_factory=list)  # the source sentences it rests on, best first
    claims: int = 0  # how many checkable claims the sentence holds
    undecided: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flags


_WRAPPED = re.compile(r"(?<=([^\s.!?。！？；;:：]))[ \t]*\n(?=([^\s\n]))")
_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")


def whole_sentences(text: str) -> list[str]:
    """Sentences, with a bracket's contents kept whole ("(HR 0.81; 95% CI 0.71-0.93)" belongs to its sentence) and
    a line a PDF wrapped mid-sentence joined again (a line break after no full stop is no sentence end)."""
    text = _WRAPPED.sub(lambda m: "" if _CJK_CHAR.match(m.group(1)) and _CJK_CHAR.match(m.group(2)) else " ",
                        text)
    out: list[str] = []
    for part in split_sentences(text):
        if out and _open_brackets(out[-1]) > 0:
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def _open_brackets(text: str) -> int:
    return sum(text.count(b) for b in "(（[") - sum(text.count(b) for b in ")）]")


def _name_pattern(names: list[str]) -> re.Pattern[str] | None:
    """Names as whole words (English) or substrings (Chinese); short all-capital acronyms ("AF") only as written."""
    parts = []
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        escaped = re.escape(name)
        if re.search(r"[\u3400-\u9fff]", name):
            parts.append(escaped)
        elif name.isupper() and len(name) <= 5:
            parts.append(rf"(?-i:(?<![A-Za-z]){escaped}(?![A-Za-z]))")
        else:
            parts.append(rf"(?<![A-Za-z]){escaped}(?![A-Za-z])")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


class Indications:
    """Products and the indications each is approved for, read from the taxonomy's ``approved_for``."""

    def __init__(self, taxonomy: Taxonomy | None, lexicon: Lexicon) -> None:
        self.approved: dict[str, set[str]] = {}
        self.product_names: dict[str, list[str]] = {}
        self.indication_names: dict[str, list[str]] = {}
        if taxonomy is None:
            return
        for dim in taxonomy.dimensions:
            for value in dim.values:
                if value.approved_for:
                    self.approved[value.id] = {v for vs in value.approved_for.values() for v in vs}
                    self.product_names[value.id] = [*value.label.all(), *value.synonyms.all()]
                    for other_dim in value.approved_for:
                        for other in taxonomy.dimension(other_dim).values:
                            self.indication_names[other.id] = [
                                n for n in (*other.label.all(), *other.synonyms.all())
                                if n.casefold() not in lexicon.not_indications]
        self._products = {pid: _name_pattern(names) for pid, names in self.product_names.items()}
        self._indications = {iid: _name_pattern(names) for iid, names in self.indication_names.items()}

    def name_spans(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for p in (*self._products.values(), *self._indications.values()) if p
                for m in p.finditer(normalise(text))]

    def products_in(self, text: str) -> list[tuple[str, str]]:
        return [(pid, m.group(0)) for pid, p in self._products.items() if p and (m := p.search(text))]

    def indications_in(self, text: str) -> list[tuple[str, str]]:
        return [(iid, m.group(0)) for iid, p in self._indications.items() if p and (m := p.search(text))]


class ClaimChecker:
    def __init__(self, taxonomy: Taxonomy | None = None, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or default_lexicon()
        self.indications = Indications(taxonomy, self.lexicon)

    def sources(self, passages: list[str]) -> list[Sentence]:
        """The passages' sentences as the checker reads them; compute once when many claims cite the same."""
        return source_sentences(passages, self.lexicon, whole_sentences)

    def has_claim(self, text: str) -> bool:
        """Whether a sentence states something checkable: a number, a comparison, a superlative or a
        product with an indication."""
        return bool(numbers(text) or [h for h in self.lexicon.directions(text) if h.label != "trend"]
                    or self.lexicon.superlatives(text)
                    or (self.indications.products_in(text) and self.indications.indications_in(text)))

    def check(self, text: str, passages: list[str] | None = None, *, sources: list[Sentence] | None = None
              ) -> ClaimCheck:
        """``text``'s claims held against ``passages`` (or their sentences, from :meth:`sources`)."""
        found = sources if sources is not None else self.sources(passages or [])
        result = ClaimCheck(text)
        claim_numbers = self._numbers(text)
        direction_hits = self.lexicon.directions(text)
        words = {h.label for h in direction_hits}
        ranked = self._ranked(text, claim_numbers, direction_hits, found)
        best = ranked[0] if ranked and ranked[0][0] >= MIN_ALIGNMENT else None
        result.claims = len(claim_numbers)
        for n in claim_numbers:  # every number must be in the cited passages
            if not any(n.matches(m) for s in found for m in s.numbers):
                near = best[1] if best else None
                result.flags.append(Flag("unsupported_number", n.text, 1.0, near.text if near else None,
                                         near.passage if near else None, "not in the cited source"))
        if words & {*QUANTITY, *VERDICTS}:
            result.claims += 1
            parts = clauses(text)
            if len(parts) == 1:
                self._direction(result, words, ranked, direction_hits)
            for part in parts if len(parts) > 1 else []:  # each comparison the sentence makes, on its own
                hits = self.lexicon.directions(part)
                said = {h.label for h in hits}
                if said & {*QUANTITY, *VERDICTS}:
                    self._direction(result, said, self._ranked(part, self._numbers(part), hits, found), hits)
        for hit in self.lexicon.superlatives(text):
            result.claims += 1
            if not any(hit.label in s.superlatives for s in found):
                near = best[1] if best else None
                result.flags.append(Flag("unsupported_superlative", hit.text, 1.0, near.text if near else None,
                                         near.passage if near else None, "the source makes no such claim"))
        self._indication(result, text)
        if best is not None and not result.flags:
            result.support = [Support(s.text, s.passage, score) for score, s in ranked
                              if score >= max(MIN_ALIGNMENT, ALIGNED_SHARE * best[0])][:3]
        return result

    def _numbers(self, text: str) -> list[Number]:
        """The claim's numbers, less the digits of names ("type 2 diabetes", "2型糖尿病")."""
        named = self.indications.name_spans(text)
        return [n for n in numbers(text) if not any(a <= n.start < b for a, b in named)]

    def _ranked(self, text: str, claim_numbers: list[Number], hits: list[Hit], found: list[Sentence]
                ) -> list[tuple[float, Sentence]]:
        """The source sentences best aligned with ``text`` first (its comparison words left out)."""
        own = terms(text, self.lexicon, skip=[(h.start, h.end) for h in hits])
        return sorted(((alignment(own, claim_numbers, s), s) for s in found), key=lambda p: -p[0])

    def _direction(self, result: ClaimCheck, words: set[str], ranked: list[tuple[float, Sentence]],
                   hits: list[Hit]) -> None:
        """The comparison against the best-aligned source sentence that says something about a difference;
        among equally aligned ones a contradiction wins."""
        if not ranked or ranked[0][0] < MIN_ALIGNMENT:
            result.undecided.append(" ".join(h.text for h in hits))
            return
        floor = max(MIN_ALIGNMENT, ALIGNED_SHARE * ranked[0][0])
        speaking = [(score, s) for score, s in ranked if score >= floor and s.assessment.says_something]
        if not speaking:
            result.undecided.append(" ".join(h.text for h in hits))
            return
        top = speaking[0][0]
        verdicts = [(judge(words, s.assessment), score, s) for score, s in speaking if score >= top - 1e-9]
        against = [v for v in verdicts if v[0] == "contradicts"]
        if against:
            _, score, s = against[0]
            claim = " ".join(h.text for h in hits if h.label != "trend")
            result.flags.append(Flag("contradicts_source", claim, round(score, 3), s.text, s.passage,
                                     _why(words, s)))
        elif all(v[0] is None for v in verdicts):
            result.undecided.append(" ".join(h.text for h in hits))

    def _indication(self, result: ClaimCheck, text: str) -> None:
        products = self.indications.products_in(text)
        mentioned = self.indications.indications_in(text)
        if not products or not mentioned:
            return
        result.claims += 1
        for pid, name in products:
            approved = self.indications.approved.get(pid, set())
            outside = [w for iid, w in mentioned if iid not in approved]
            if outside:  # "indicated for AF and NSCLC" is off-label for NSCLC, whatever else it names
                words = ", ".join(outside)
                result.flags.append(Flag("off_label", f"{name} + {words}", 1.0, None, None,
                                         f"{name} is not approved for {words}"))


def _why(words: set[str], sentence: Sentence) -> str:
    a = sentence.assessment
    said = sorted(words & {*QUANTITY, *VERDICTS})
    source = a.direction or "/".join(sorted(a.verdicts))
    if a.significant is True:
        source += " (established)"
    elif a.trend:
        source += " (a trend only)"
    elif a.significant is False:
        source += " (not significant)"
    return f"the claim says {'/'.join(said)}; the source says {source}"
