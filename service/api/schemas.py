"""The API's contract: request and response bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.core.fields import TaxonomyId, Text
from service.store.models import Asset, AssetTag, AssetVersion, Chunk, Job, JobItem


class TagResultTag(BaseModel):
    """A tag as the engine proposes it."""

    dimension: str
    value: str
    confidence: float
    method: str
    evidence: str | None
    evidence_verified: bool
    needs_review: bool


class TagOut(TagResultTag):
    """A stored tag: the proposal plus its review state and provenance."""

    id: int
    status: Literal["proposed", "accepted", "rejected", "edited"]
    taxonomy_version: str
    prompt_version: str | None
    models: dict[str, Any]
    tagging_status: str
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_comment: str | None

    @classmethod
    def of(cls, t: AssetTag) -> TagOut:
        return cls(id=t.id, dimension=t.dimension, value=t.value, confidence=t.confidence, method=t.method,
                   evidence=t.evidence, evidence_verified=t.evidence_verified, needs_review=t.needs_review,
                   status=t.status, taxonomy_version=t.taxonomy_version,  # type: ignore[arg-type]
                   prompt_version=t.prompt_version, models=dict(t.models or {}), tagging_status=t.tagging_status,
                   reviewed_by=t.reviewed_by, reviewed_at=t.reviewed_at, review_comment=t.review_comment)


class AssetSummary(BaseModel):
    id: str
    title: str
    language: str
    source: str
    format: str
    product: str | None
    approval_status: str
    valid_until: date | None
    published_at: date | None
    current_version: int
    updated_at: datetime
    tags: list[TagOut]

    @classmethod
    def of(cls, a: Asset, tags: list[AssetTag]) -> AssetSummary:
        return cls(id=a.id, title=a.title, language=a.language, source=a.source, format=a.format, product=a.product,
                   approval_status=a.approval_status, valid_until=a.valid_until, published_at=a.published_at,
                   current_version=a.current_version, updated_at=a.updated_at, tags=[TagOut.of(t) for t in tags])


class VersionOut(BaseModel):
    version: int
    content_hash: str
    size_bytes: int
    created_at: datetime

    @classmethod
    def of(cls, v: AssetVersion) -> VersionOut:
        return cls(version=v.version, content_hash=v.content_hash, size_bytes=v.size_bytes, created_at=v.created_at)


class ChunkOut(BaseModel):
    id: str
    ordinal: int
    text: str
    page: int | None
    slide: int | None
    section: str | None

    @classmethod
    def of(cls, c: Chunk) -> ChunkOut:
        return cls(id=c.id, ordinal=c.ordinal, text=c.text, page=c.page, slide=c.slide, section=c.section)


class AssetDetail(AssetSummary):
    uri: str | None
    approval_code: str | None
    owner: str | None
    versions: list[VersionOut]
    chunks: list[ChunkOut]


class QueueAsset(BaseModel):
    """An asset with the proposals that wait for a reviewer (filtered as asked)."""

    id: str
    title: str
    language: str
    format: str
    product: str | None
    approval_status: str
    tags: list[TagOut]


class ReviewQueue(BaseModel):
    items: list[QueueAsset]
    total_tags: int = Field(description="Proposals waiting for review that match the filters, over all pages.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class AssetPage(BaseModel):
    items: list[AssetSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class JobItemOut(BaseModel):
    ordinal: int
    name: str
    status: Literal["pending", "done", "failed"]
    outcome: str | None
    asset_id: str | None
    error_code: str | None
    error_message: str | None

    @classmethod
    def of(cls, i: JobItem) -> JobItemOut:
        return cls(ordinal=i.ordinal, name=i.name, status=i.status, outcome=i.outcome,  # type: ignore[arg-type]
                   asset_id=i.asset_id, error_code=i.error_code, error_message=i.error_message)


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "partial", "failed"]
    total: int
    done: int
    failed: int
    progress: float = Field(description="Share of items finished, 0..1.")
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    items: list[JobItemOut] | None = None

    @classmethod
    def of(cls, j: Job, items: list[JobItem] | None = None) -> JobOut:
        return cls(id=j.id, kind=j.kind, status=j.status, total=j.total, done=j.done,  # type: ignore[arg-type]
                   failed=j.failed, progress=round(j.done / j.total, 4) if j.total else 1.0, error=j.error,
                   created_by=j.created_by, created_at=j.created_at, started_at=j.started_at,
                   finished_at=j.finished_at, items=[JobItemOut.of(i) for i in items] if items is not None else None)


class IngestPathRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Text = Field(min_length=1, max_length=4096, description="A folder or file under one of HCP_INGEST_ROOTS.")


class TagTextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text = Field(min_length=1, max_length=200_000)
    title: Text = Field("", max_length=1000)
    language: Literal["zh", "en", "mixed"] | None = Field(None, description="Detected when omitted.")
    mode: Literal["embedding", "learned", "cascade", "full"] | None = Field(None, description="Default: the service's.")


class TagResultOut(BaseModel):
    tags: list[TagResultTag]
    status: str
    taxonomy: str
    prompt_version: str | None
    models: dict[str, str]
    prompt_tokens: int
    completion_tokens: int


class TaxonomyOut(BaseModel):
    id: str
    version: str
    source: str = Field(description="The taxonomy as YAML.")
    taxonomy: dict[str, Any]


class TaxonomyReplace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Text = Field(min_length=1, max_length=1_000_000, description="The new taxonomy as YAML.")
    expected_version: Text | None = Field(None, max_length=64, description="The version you read; 409 when the "
                                         "active taxonomy has changed since.")


class TaxonomyReplaced(BaseModel):
    id: str
    version: str
    changed_dimensions: list[str]
    retag_job: str | None


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["accept", "reject", "edit"]
    value: TaxonomyId | None = Field(None, description="The corrected value id (edit only).")
    comment: Text | None = Field(None, max_length=4000)


class AddTagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dimension: TaxonomyId
    value: TaxonomyId
    comment: Text | None = Field(None, max_length=4000)


class ReviewOut(BaseModel):
    tag: TagOut
    replaced_by: TagOut | None = None
    retrain_job: str | None = None


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target_type: str
    target_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


class KeyScopeBody(BaseModel):
    """A rep key's scope: the products and therapy areas (taxonomy value ids) it may be shown. Both empty:
    unscoped (every approved product)."""

    model_config = ConfigDict(extra="forbid")
    products: list[TaxonomyId] = Field(default_factory=list, max_length=100)
    therapy_areas: list[TaxonomyId] = Field(default_factory=list, max_length=100)


class KeyCreate(KeyScopeBody):
    role: Literal["admin", "content_editor", "reviewer", "rep"]
    name: Text = Field(min_length=1, max_length=200, description="Who or what uses the key (in the audit log).")


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    role: str
    scope: dict[str, list[str]] | None = Field(description="Products and therapy areas; null: unscoped.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    secret: str = Field(description="The whole key. Shown in this answer only; store it now.")
