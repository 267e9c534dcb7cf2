"""The API's contract: request and response bodies. Answers made from database rows read them with
``from_attributes`` (``Model.model_validate(row)``), so a schema names the fields it shows and nothing copies them
by hand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from service.core.fields import Name, TaxonomyId, Text


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

    model_config = ConfigDict(from_attributes=True)
    id: int
    status: Literal["proposed", "accepted", "rejected", "edited"]
    taxonomy_version: str
    prompt_version: str | None
    models: dict[str, Any]
    tagging_status: str
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_comment: str | None


class AssetSummary(BaseModel):
    """An asset with the tags its reader may see (the rows are loaded that way by ``store.assets``)."""

    model_config = ConfigDict(from_attributes=True)
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


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    version: int
    content_hash: str
    size_bytes: int
    created_at: datetime


class ChunkOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    ordinal: int
    text: str
    page: int | None
    slide: int | None
    section: str | None


class AssetDetail(AssetSummary):
    uri: str | None
    approval_code: str | None
    owner: str | None
    versions: list[VersionOut]
    chunks: list[ChunkOut] = Field(description="The current version's chunks, in order.")


class QueueAsset(BaseModel):
    """An asset with the proposals that wait for a reviewer (filtered as asked)."""

    model_config = ConfigDict(from_attributes=True)
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
    model_config = ConfigDict(from_attributes=True)
    ordinal: int
    name: str
    status: Literal["pending", "done", "failed"]
    outcome: str | None
    asset_id: str | None
    error_code: str | None
    error_message: str | None


class JobSummary(BaseModel):
    """A job and its progress."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "partial", "failed"]
    total: int
    done: int
    failed: int
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field(description="Share of items finished, 0..1.")  # type: ignore[prop-decorator]
    @property
    def progress(self) -> float:
        return round(self.done / self.total, 4) if self.total else 1.0


class JobOut(JobSummary):
    """A job with each item's outcome."""

    items: list[JobItemOut]


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


class TaxonomyCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Text = Field(min_length=1, max_length=1_000_000, description="The taxonomy as YAML, as edited.")


class TaxonomyProblem(BaseModel):
    line: int | None = Field(description="1-based line of the YAML the problem is at.")
    field: str = Field(description="The path to the bad entry, e.g. `dimensions[2].values[0].id`.")
    message: str


class TaxonomyChecked(BaseModel):
    valid: bool = Field(description="`PUT /v1/taxonomy` would accept this source now.")
    error: TaxonomyProblem | None = None
    id: str | None = None
    version: str | None = None
    changed_dimensions: list[str] = Field(description="Dimensions saving would re-tag every asset on.")
    diff: list[str] = Field(description="Unified diff of the active taxonomy's YAML against this one, by line.")


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
    model_config = ConfigDict(from_attributes=True)
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

    @classmethod
    def of(cls, rows: Sequence[Any], limit: int) -> AuditPage:
        """A page from ``limit + 1`` rows read newest first: the extra row says there is a next page."""
        page = rows[:limit]
        return cls(items=[AuditOut.model_validate(r) for r in page],
                   next_cursor=str(page[-1].id) if len(rows) > limit and page else None)


class KeyScopeBody(BaseModel):
    """A rep key's scope: the products and therapy areas (taxonomy value ids) it may be shown. Both empty:
    unscoped (every approved product)."""

    model_config = ConfigDict(extra="forbid")
    products: list[TaxonomyId] = Field(default_factory=list, max_length=100)
    therapy_areas: list[TaxonomyId] = Field(default_factory=list, max_length=100)


class KeyCreate(KeyScopeBody):
    role: Literal["admin", "content_editor", "reviewer", "rep"]
    name: Name = Field(min_length=1, max_length=200, description="Who or what uses the key (in the audit log); no "
                       "control or bidirectional-control characters.")


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    role: str
    scope: dict[str, list[str]] | None = Field(description="Products and therapy areas; null: unscoped.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class MeOut(BaseModel):
    """The calling key: what a client shows and hides by (the API enforces the same permissions)."""

    key_id: str
    name: str
    role: str
    permissions: list[str] = Field(description="What this key's role may do, sorted.")
    scope: dict[str, list[str]] | None = Field(description="A rep key's products and therapy areas; null: unscoped.")


class KeyCreated(KeyOut):
    secret: str = Field(description="The whole key. Shown in this answer only; store it now.")
