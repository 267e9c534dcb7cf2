"""SQL records (SQLAlchemy 2 typed mappings). The schema changes only through Alembic migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    versions: Mapped[list[AssetVersion]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                        order_by="AssetVersion.version")
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

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
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)

    asset: Mapped[Asset] = relationship(back_populates="chunks")

    __table_args__ = (Index("ix_chunks_asset_version", "asset_id", "version", "ordinal"),)


class LLMTagCache(Base):
    """An LLM tagging answer, reused while content, taxonomy, models, prompt and candidates are the same."""

    __tablename__ = "llm_tag_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer: Mapped[dict[str, object]] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
