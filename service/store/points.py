"""What a chunk's vector point carries: its embedding text, its asset's filter payload, its BM25 terms.
Ingest writes points, reconciliation re-writes them, matching filters on them; all three read this one
definition, from the store layer they share."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.core.lexical import default_encoder
from service.store.models import Asset
from service.store.vectors import IndexType, VectorPoint, point_id

# Payload fields the matching stage filters on, with their index types.
PAYLOAD_INDEXES: dict[str, IndexType] = {
    "asset_id": "keyword", "source": "keyword", "language": "keyword", "format": "keyword",
    "approval_status": "keyword", "product": "keyword", "valid_until": "integer", "published": "integer",
    "version": "integer", "scope": "keyword",
}
NO_EXPIRY = 99_991_231


def day_number(value: date | None, default: int) -> int:
    """A date as yyyymmdd, so range filters work on every vector backend."""
    return value.year * 10_000 + value.month * 100 + value.day if value else default


def embedding_text(title: str, text: str) -> str:
    """What a chunk is embedded as: the title gives a passage its context ("Safety" under which product?).
    Ingest, re-index, re-tag and tag-only all embed through this, so their vectors agree."""
    return text if text.startswith(title) else f"{title}\n{text}"


def chunk_point(chunk_id: str, vector: Any, payload: dict[str, Any], version: int, page: int | None,
                slide: int | None, text: str) -> VectorPoint:
    """A chunk's dense vector and BM25 terms (of ``text``, its embedding text), with its asset's payload plus
    its own provenance."""
    return VectorPoint(point_id(chunk_id), vector, {**payload, "chunk_id": chunk_id, "version": version,
                                                    "page": page, "slide": slide},
                       sparse=default_encoder().document(text))


def asset_payload(asset: Asset, scope: list[str]) -> dict[str, Any]:
    """What every chunk vector of ``asset`` carries for filtering; ``scope``: its scope tokens
    (``service.store.visibility.scope_tokens``)."""
    return {"asset_id": asset.id, "source": asset.source, "language": asset.language, "format": asset.format,
            "approval_status": asset.approval_status, "product": asset.product or "", "scope": scope,
            "valid_until": day_number(asset.valid_until, NO_EXPIRY), "published": day_number(asset.published_at, 0)}
