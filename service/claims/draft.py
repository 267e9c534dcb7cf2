"""A content draft checked the way medical-legal review reads it: each claim against the references it cites,
the piece's fair balance, and the references' own standing.

Flags, one per problem, each with where it is in the draft (page, slide, character offsets) and the reference
passage that contradicts it or is closest to it:
``unsupported_number``, ``contradicts_source``, ``off_label``, ``unsupported_superlative`` (from the claim
checker), ``missing_fair_balance`` (an efficacy claim in a piece that states no safety information),
``expired_reference`` and ``unapproved_reference`` (a cited asset a rep may not be shown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from indexers.chunker import sentence_spans
from indexers.document import ParsedDocument
from service.claims.check import ClaimChecker
from service.claims.lexicon import Lexicon

EFFICACY = ("lower", "higher", "superior", "noninferior")


@dataclass(frozen=True)
class Passage:
    text: str
    chunk_id: str | None = None
    page: int | None = None
    slide: int | None = None


@dataclass
class Reference:
    """What a draft cites: a stored asset (with its approval and expiry) or an uploaded file."""

    id: str
    title: str
    passages: list[Passage]
    approved: bool | None = None  # None: an uploaded file, whose standing the service does not know
    valid_until: date | None = None


@dataclass(frozen=True)
class DraftSentence:
    text: str
    start: int
    end: int
    page: int | None
    slide: int | None


@dataclass(frozen=True)
class DraftFlag:
    kind: str
    detail: str
    sentence: DraftSentence | None = None  # None for a flag about a reference
    claim: str | None = None
    score: float = 1.0
    reference: str | None = None
    quote: str | None = None
    chunk_id: str | None = None
    page: int | None = None
    slide: int | None = None


@dataclass
class DraftReport:
    text: str
    sentences: int = 0
    claims: int = 0
    flags: list[DraftFlag] = field(default_factory=list)


def draft_sentences(parsed: ParsedDocument) -> list[DraftSentence]:
    """The draft's sentences with their place; speaker notes are the presenter's, not the piece's claims."""
    out = []
    for block in parsed.blocks:
        if block.kind == "notes":
            continue
        for start, end in sentence_spans(parsed.text[block.char_start:block.char_end], block.char_start):
            out.append(DraftSentence(parsed.text[start:end], start, end, block.page, block.slide))
    return out


def unbalanced(sentences: list[str], lexicon: Lexicon) -> str | None:
    """The first efficacy claim of a piece that states no safety information anywhere, or None."""
    if any(lexicon.is_safety(s) for s in sentences):
        return None
    for s in sentences:
        if any(h.label in EFFICACY for h in lexicon.directions(s)) or lexicon.superlatives(s):
            return s
    return None


def check_draft(parsed: ParsedDocument, references: list[Reference], checker: ClaimChecker,
                today: date | None = None) -> DraftReport:
    today = today or date.today()
    report = DraftReport(parsed.text)
    owners: list[tuple[Reference, Passage]] = [(r, p) for r in references for p in r.passages]
    sources = checker.sources([p.text for _, p in owners])
    sentences = draft_sentences(parsed)
    report.sentences = len(sentences)
    for sentence in sentences:
        if not checker.has_claim(sentence.text):
            continue
        result = checker.check(sentence.text, sources=sources)
        report.claims += result.claims
        for flag in result.flags:
            ref, passage = owners[flag.passage] if flag.passage is not None else (None, None)
            report.flags.append(DraftFlag(
                flag.kind, flag.detail, sentence, flag.claim, flag.score, ref.id if ref else None, flag.quote,
                passage.chunk_id if passage else None, passage.page if passage else None,
                passage.slide if passage else None))
    first = unbalanced([s.text for s in sentences], checker.lexicon)
    if first is not None:
        where = next(s for s in sentences if s.text == first)
        report.flags.append(DraftFlag("missing_fair_balance", "an efficacy claim, and no safety information "
                                      "anywhere in the piece", where, first))
    for ref in references:
        if ref.approved is False:
            report.flags.append(DraftFlag("unapproved_reference", f"{ref.title} is not approved for use",
                                          reference=ref.id))
        if ref.valid_until is not None and ref.valid_until < today:
            report.flags.append(DraftFlag("expired_reference", f"{ref.title} expired on "
                                          f"{ref.valid_until.isoformat()}", reference=ref.id))
    return report
