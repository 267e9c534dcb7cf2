"""What tagging produces: a tag with its confidence, method and evidence, and one asset's result.

A leaf module: the engine, the tagger, ingest and the store's callers share these types without importing the
engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["embedding", "learned", "cascade", "full"]
MODES: tuple[Mode, ...] = ("embedding", "learned", "cascade", "full")
LLM_MODES: tuple[Mode, ...] = ("cascade", "full")
Method = Literal["llm", "embedding", "keyword", "learned", "metadata", "human"]
Status = Literal["ok", "cached", "llm_unavailable", "llm_off"]


@dataclass
class Tag:
    dimension: str
    value: str
    confidence: float
    method: Method
    evidence: str | None
    evidence_verified: bool
    needs_review: bool
    signals: dict[str, float | None] = field(default_factory=dict)


@dataclass
class TaggingResult:
    tags: list[Tag]
    status: Status
    taxonomy: str
    prompt_version: str | None
    models: dict[str, str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    llm_error: str | None = None
    asked: list[str] = field(default_factory=list)  # the dimensions put to the LLM

    def values(self, dimension: str) -> set[str]:
        return {t.value for t in self.tags if t.dimension == dimension}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
