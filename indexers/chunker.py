"""Token-aware chunking that respects pages, slides, headings and sentence ends (Chinese and English).

Chunks never cross a page, a slide or a section, nor the line between a slide and its speaker notes: a passage
shown to a rep must point at one place, and a presenter's notes are not the slide's claims.
Inside a unit, sentences are packed up to ``max_tokens`` with ``overlap_tokens`` of trailing
sentences repeated at the start of the next chunk; a sentence longer than a chunk is cut on tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import groupby

from indexers.document import TextBlock
from service.core.tokens import count_tokens, get_encoding

# Sentence ends: Chinese full stops (。！？；), English ones followed by space, and line breaks.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=[.])(?=\s)|\n+")


@dataclass
class Chunk:
    ordinal: int
    text: str
    char_start: int
    char_end: int
    token_count: int
    page: int | None
    slide: int | None
    section: str | None
    kind: str = "body"  # "notes": a slide's speaker notes, the presenter's words and never the slide's claims


@dataclass
class _Span:
    start: int
    end: int
    tokens: int


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (Chinese and English punctuation, line breaks), trimmed."""
    return [text[s:e] for s, e in _sentences(text, 0)]


def sentence_spans(text: str, base: int = 0) -> list[tuple[int, int]]:
    """Each sentence of ``text`` as (start, end) offsets, shifted by ``base``."""
    return _sentences(text, base)


def _sentences(text: str, base: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start()
        if end > start and text[start:end].strip():
            spans.append((start, end))
        start = max(start, match.end())
    if text[start:].strip():
        spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((base + s, base + e))
    return out


def chunk_blocks(full_text: str, blocks: list[TextBlock], *, max_tokens: int = 300, overlap_tokens: int = 50,
                 encoding: str = "cl100k_base") -> list[Chunk]:
    """Chunks of ``full_text`` (whose block offsets are in ``blocks``), with provenance."""
    if max_tokens < 16:
        raise ValueError("max_tokens must be at least 16")
    overlap_tokens = min(overlap_tokens, max_tokens // 2)
    enc = get_encoding(encoding)
    chunks: list[Chunk] = []

    def emit(spans: list[_Span], unit: TextBlock) -> None:
        start, end = spans[0].start, spans[-1].end
        text = full_text[start:end]
        chunks.append(Chunk(len(chunks), text, start, end, count_tokens(text, encoding), unit.page, unit.slide,
                            unit.section, "notes" if unit.kind == "notes" else "body"))

    def unit_key(block: TextBlock) -> tuple[int | None, int | None, str | None, bool]:
        # speaker notes are a unit of their own: a passage is either the slide's words or the presenter's
        return block.page, block.slide, block.section, block.kind == "notes"

    for _, group in groupby(blocks, key=unit_key):
        unit_blocks = list(group)
        spans: list[_Span] = []
        for block in unit_blocks:
            for s, e in _sentences(full_text[block.char_start:block.char_end], block.char_start):
                tokens = enc.encode(full_text[s:e], disallowed_special=())
                if len(tokens) <= max_tokens:
                    spans.append(_Span(s, e, len(tokens)))
                    continue
                # An over-long sentence: cut on token boundaries, mapped back to character offsets.
                _, offsets = enc.decode_with_offsets(tokens)
                step = max_tokens - overlap_tokens
                for i in range(0, len(tokens), step):
                    j = min(len(tokens), i + max_tokens)
                    p_end = s + (offsets[j] if j < len(tokens) else e - s)
                    spans.append(_Span(s + offsets[i], p_end, j - i))
                    if j == len(tokens):
                        break
        current: list[_Span] = []
        for span in spans:
            # Measured on the joined text, not summed: the gaps between sentences cost tokens too.
            if current and count_tokens(full_text[current[0].start:span.end], encoding) > max_tokens:
                emit(current, unit_blocks[0])
                carry: list[_Span] = []
                budget = min(overlap_tokens, max_tokens - span.tokens)
                for previous in reversed(current):
                    if count_tokens(full_text[previous.start:span.end], encoding) > budget + span.tokens:
                        break
                    carry.insert(0, previous)
                current = carry
            current.append(span)
        if current:
            emit(current, unit_blocks[0])
    return chunks
