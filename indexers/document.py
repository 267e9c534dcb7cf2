"""The document model: parsed text blocks with provenance, and the asset-level metadata."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Language = Literal["zh", "en", "mixed"]
Source = Literal["internal", "external"]
FileFormat = Literal["pdf", "docx", "pptx", "html", "markdown", "txt", "news"]
ApprovalStatus = Literal["draft", "in_review", "approved", "withdrawn"]


@dataclass
class TextBlock:
    """A piece of text where it was found: page (PDF), slide (PPTX), section heading path."""

    text: str
    page: int | None = None
    slide: int | None = None
    section: str | None = None
    kind: Literal["title", "heading", "body", "table", "notes"] = "body"
    char_start: int = 0  # offsets in the document's full text, set by ParsedDocument.finalise
    char_end: int = 0


@dataclass
class ParsedDocument:
    """What a parser returns: text blocks plus whatever metadata the file itself carried."""

    format: FileFormat
    blocks: list[TextBlock]
    title: str | None = None
    published: date | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: int = 0  # pages or slides, for throughput figures
    text: str = ""

    def finalise(self) -> ParsedDocument:
        """Drop empty blocks and lay the rest end to end, recording each block's character offsets."""
        parts: list[str] = []
        offset = 0
        kept: list[TextBlock] = []
        for block in self.blocks:
            text = block.text.strip()
            if not text:
                continue
            if parts:
                parts.append("\n\n")
                offset += 2
            block.text, block.char_start, block.char_end = text, offset, offset + len(text)
            parts.append(text)
            offset += len(text)
            kept.append(block)
        self.blocks, self.text = kept, "".join(parts)
        return self


class ComplianceMeta(BaseModel):
    """What the content team attaches to an asset (sidecar file or front matter)."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None
    product: str | None = None
    approval_code: str | None = None
    approval_status: ApprovalStatus = "draft"
    valid_until: date | None = None
    owner: str | None = None
    published: date | None = None
    language: Language | None = None
    source: Source | None = None

    @field_validator("approval_status", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower().replace(" ", "_").replace("-", "_") if isinstance(value, str) else value


class Document(BaseModel):
    """An asset ready for storage: text with provenance, language, source and compliance metadata."""

    source_key: str = Field(description="Where the asset comes from (relative path or feed item id); "
                                        "a changed file at the same key becomes a new version.")
    title: str
    language: Language
    source: Source
    format: FileFormat
    content_hash: str
    size_bytes: int
    published: date | None = None
    meta: ComplianceMeta
    text: str
    blocks: list[dict[str, Any]]
    pages: int = 0

    @property
    def asset_id(self) -> str:
        """The id a new asset gets: from its first content's hash, so it is stable."""
        return asset_id_for(self.content_hash)


def asset_id_for(content_hash: str) -> str:
    return f"a_{content_hash[:20]}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def detect_language(text: str) -> Language:
    """zh, en or mixed, from the share of CJK characters against Latin words.

    One Chinese character carries about as much as one English word, so they are counted alike;
    a text is mixed when the minority language holds at least 20% of the units.
    """
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    total = cjk + latin
    if total == 0:
        return "en"
    share_zh = cjk / total
    if share_zh >= 0.8:
        return "zh"
    if share_zh <= 0.2:
        return "en"
    return "mixed"
