"""SQL records (SQLAlchemy 2 typed mappings). The schema changes only through Alembic migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands them back naive)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back aware (SQLite keeps no zone and returns naive values,
    which would reach API clients without an offset: not an RFC 3339 date-time)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value).astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    pass


class Asset(Base):
    """One piece of content; its id is stable across versions (derived from its source identity)."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))  # zh, en, mixed
    source: Mapped[str] = mapped_column(String(16))  # internal, external
    format: Mapped[str] = mapped_column(String(16))  # pdf, docx, pptx, html, markdown, txt, news
    uri: Mapped[str | None] = mapped_column(Text)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    product: Mapped[str | None] = mapped_column(String(128))
    approval_code: Mapped[str | None] = mapped_column(String(128))
    approval_status: Mapped[str] = mapped_column(String(16), default="draft")  # draft, approved, withdrawn
    valid_until: Mapped[date | None] = mapped_column(Date)
    owner: Mapped[str | None] = mapped_column(String(128))
    published_at: Mapped[date | None] = mapped_column(Date)
    extra: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    versions: Mapped[list[AssetVersion]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                        order_by="AssetVersion.version")
    tags: Mapped[list[AssetTag]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                order_by="(AssetTag.dimension, AssetTag.id)")
    chunks: Mapped[list[Chunk]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                               order_by="(Chunk.version, Chunk.ordinal)")

    __table_args__ = (
        Index("ix_assets_source_status", "source", "approval_status"),
        Index("ix_assets_valid_until", "valid_until"),
    )


class AssetVersion(Base):
    """A distinct content of an asset: re-ingesting the same bytes adds nothing."""

    __tablename__ = "asset_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="versions")

    __table_args__ = (
        UniqueConstraint("asset_id", "version", name="uq_asset_versions_version"),
        UniqueConstraint("asset_id", "content_hash", name="uq_asset_versions_hash"),
    )


class Chunk(Base):
    """A retrievable piece of an asset version's text, with its provenance."""

    __tablename__ = "chunks"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    page: Mapped[int | None] = mapped_column(Integer)
    slide: Mapped[int | None] = mapped_column(Integer)
    section: Mapped[str | None] = mapped_column(Text)
    # "notes": a slide's speaker notes (the presenter's words: never offered as a talking point); else "body"
    kind: Mapped[str] = mapped_column(String(16), default="body", server_default="body")
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)

    asset: Mapped[Asset] = relationship(back_populates="chunks")

    __table_args__ = (Index("ix_chunks_asset_version", "asset_id", "version", "ordinal"),)


class TalkingPointFollowup(Base):
    """Talking points the LLM is still drafting after the request's deadline answered with extractive ones: the
    key that asked polls for them (`GET /v1/talking-points/{id}`) until ``expires_at``."""

    __tablename__ = "talking_point_followups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | ready | failed
    response: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())  # a draft still pending after this was lost
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LLMTagCache(Base):
    """An LLM tagging answer, reused while content, taxonomy, models, prompt and candidates are the same."""

    __tablename__ = "llm_tag_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer: Mapped[dict[str, object]] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AssetTag(Base):
    """A tag on an asset: proposed by the engine, then perhaps accepted, rejected or replaced by a reviewer.

    Reviewed tags are gold labels: re-tagging never overwrites them, and the learned heads train on them."""

    __tablename__ = "asset_tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    dimension: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(128))
    confidence: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(16))  # llm, embedding, keyword, learned, metadata, human
    evidence: Mapped[str | None] = mapped_column(Text)
    evidence_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed, accepted, rejected, edited
    taxonomy_version: Mapped[str] = mapped_column(String(64))
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    models: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    signals: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    tagging_status: Mapped[str] = mapped_column(String(24))  # ok, cached, llm_unavailable, llm_off
    reviewed_by: Mapped[str | None] = mapped_column(String(32))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="tags")

    __table_args__ = (
        Index("ix_asset_tags_asset_dimension", "asset_id", "dimension"),
        Index("ix_asset_tags_dimension_value", "dimension", "value"),
        Index("ix_asset_tags_review", "needs_review", "status"),
    )


class TagReview(Base):
    """Every review decision, kept even when the tag later changes: the history behind the gold labels."""

    __tablename__ = "tag_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tag_id: Mapped[int | None] = mapped_column(ForeignKey("asset_tags.id", ondelete="SET NULL"))
    asset_id: Mapped[str] = mapped_column(String(64), index=True)
    dimension: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # accept, reject, edit
    value_before: Mapped[str] = mapped_column(String(128))
    value_after: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column(Float)  # the engine's confidence when reviewed
    method: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class TaxonomyVersion(Base):
    """A taxonomy as it was loaded or replaced; the active one is what the service tags against."""

    __tablename__ = "taxonomy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    taxonomy_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)  # the YAML as given
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("taxonomy_id", "version", name="uq_taxonomy_versions_version"),)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored (keys are 256-bit random, so a fast hash is enough)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the public prefix, shown in logs and audit
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # {"products": [...], "therapy_areas": [...]} (taxonomy value ids); None: unscoped
    scope: Mapped[dict[str, list[str]] | None] = mapped_column(JSON)


class ModelGeneration(Base):
    """One retraining's heads and calibration, for one taxonomy version: skops bytes, never a pickle
    (``service.tagging.model_bytes``), each with its SHA-256. The newest generation of the active taxonomy is
    what every process tags with: replicas and workers read it from here, so a retrain on one process reaches
    all of them (migration 0009)."""

    __tablename__ = "model_generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    taxonomy_key: Mapped[str] = mapped_column(String(120), index=True)
    heads: Mapped[bytes] = mapped_column(LargeBinary)
    heads_sha256: Mapped[str] = mapped_column(String(64))
    calibrator: Mapped[bytes] = mapped_column(LargeBinary)
    calibrator_sha256: Mapped[str] = mapped_column(String(64))
    items: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateLimitWindow(Base):
    """Requests one API key made in one minute (``window``: minutes since the epoch), counted by every replica:
    the shared rate limit (migration 0010)."""

    __tablename__ = "rate_limit_windows"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)


class StoreChanges(Base):
    """One row whose ``generation`` database triggers bump on every write to ``assets`` or ``asset_tags``
    (migration 0008), from any writer: in-memory copies of those tables compare it to know they are current."""

    __tablename__ = "store_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class NeedDemand(Base):
    """How often a need value was asked for on one day, in one language and key scope, and how often nothing
    listed covered it (the content-gap report, migration 0012). Counts only: no HCP id, no need text, nothing that
    says who asked."""

    __tablename__ = "need_demand"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    scope: Mapped[str] = mapped_column(String(512), primary_key=True)  # the key's scope tokens; "" unscoped
    source: Mapped[str] = mapped_column(String(16), primary_key=True)  # match | panel
    asked: Mapped[int] = mapped_column(Integer)
    unserved: Mapped[int] = mapped_column(Integer)  # nothing above the floor covered it


class HcpOptOut(Base):
    """An HCP who declined personalised recommendations (PIPL art. 24): matching for this id never uses
    their need-tags. Only the CRM's pseudonymous id is kept, nothing about the person."""

    __tablename__ = "hcp_opt_outs"

    hcp_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(32))


class AuditEntry(Base):
    """One write: who (key id and role), what (action, target), when, and the state before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(32))  # key id, or "cli"/"system"
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(96))
    before: Mapped[dict[str, object] | None] = mapped_column(JSON)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON)


class Job(Base):
    """A background job (ingest an upload or a path, re-tag, retrain), durable across restarts."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # ingest_upload, ingest_path, retag, retrain
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    # queued, running, succeeded, failed (every item failed or the job itself broke), partial (some failed)
    created_by: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # the worker holding the job and when it last said so: a job whose heartbeat is stale (its process
    # died) is taken over by the next worker that looks
    worker_id: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    items: Mapped[list[JobItem]] = relationship(back_populates="job", cascade="all, delete-orphan",
                                                order_by="JobItem.ordinal")


class JobItem(Base):
    """One unit of a job (a file, an asset) with its outcome."""

    __tablename__ = "job_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)  # file name or asset id, as the user knows it
    path: Mapped[str | None] = mapped_column(Text)  # where the worker reads it
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, done, failed
    outcome: Mapped[str | None] = mapped_column(String(120))  # created, new_version, unchanged, ...
    asset_id: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    job: Mapped[Job] = relationship(back_populates="items")

    __table_args__ = (UniqueConstraint("job_id", "ordinal", name="uq_job_items_ordinal"),)


class EvalReportRow(Base):
    """A tagging evaluation report: the JSON the HTML page is rendered from (so the page's numbers are the
    JSON's), with who made it and from which gold."""

    __tablename__ = "eval_reports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)  # "reviewed" or the gold file's name
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    data: Mapped[dict[str, object]] = mapped_column(JSON)
