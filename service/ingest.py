"""Documents into the stores: chunk, embed, write SQL rows and vectors, with versions.

Re-ingesting the same bytes is a no-op (or a metadata update when only the sidecar changed);
changed content at the same source key becomes a new version of the same asset. Vectors are
written before the SQL transaction commits and removed again if it fails, so a reader never
finds SQL rows without vectors; vectors of superseded versions go after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from indexers.chunker import Chunk as TextChunk
from indexers.chunker import chunk_blocks
from indexers.document import ComplianceMeta, Document, ParsedDocument, TextBlock, detect_language
from indexers.errors import IngestError
from indexers.news import fetch_feed
from indexers.reader import read_file
from indexers.safety import Limits
from indexers.scanner import scan
from service.core.embeddings import Embedder
from service.settings import Settings
from service.store import audit
from service.store.db import Database
from service.store.models import Asset, AssetVersion, Chunk
from service.store.points import PAYLOAD_INDEXES, asset_payload, chunk_point, embedding_text
from service.store.vectors import VectorStore, Where
from service.store.visibility import scope_tokens
from service.tagging.proposals import write_proposals
from service.tagging.result import Mode, TaggingResult
from service.tagging.tagger import Tagger

log = logging.getLogger(__name__)

Status = Literal["created", "new_version", "unchanged", "duplicate", "metadata_updated", "failed"]


@dataclass
class IngestOutcome:
    source_key: str
    status: Status
    asset_id: str | None = None
    version: int | None = None
    chunks: int = 0
    title: str | None = None
    error: IngestError | None = None
    tags: int = 0
    tagging_status: str | None = None


@dataclass(frozen=True)
class IngestConfig:
    """What ingest needs from the settings: the file limits, how text is chunked, and the approval status
    given to news from feeds."""

    limits: Limits
    chunk_tokens: int
    chunk_overlap_tokens: int
    tokenizer_encoding: str
    news_approval_status: str  # built by ``IngestConfig.of``: no defaults of its own to drift from the settings'

    @classmethod
    def of(cls, settings: Settings) -> IngestConfig:
        return cls(Limits(max_file_bytes=settings.max_file_bytes,
                          max_uncompressed_bytes=settings.max_uncompressed_bytes,
                          max_compression_ratio=settings.max_compression_ratio),
                   settings.chunk_tokens, settings.chunk_overlap_tokens, settings.tokenizer_encoding,
                   settings.news_feeds_approval_status)

    def chunk(self, text: str, blocks: list[TextBlock]) -> list[TextChunk]:
        return chunk_blocks(text, blocks, max_tokens=self.chunk_tokens, overlap_tokens=self.chunk_overlap_tokens,
                            encoding=self.tokenizer_encoding)


def tag_unstored(tagger: Tagger, embedder: Embedder, config: IngestConfig, text: str, *, title: str,
                 language: str | None, blocks: list[TextBlock], metadata: Mapping[str, str],
                 mode: Mode | None = None, deadline_s: float | None = None) -> TaggingResult:
    """Tag a document as ingest would (same chunks, same embedding text), storing nothing. ``deadline_s``: the
    most the LLM may take in all (see ``TaggingEngine.tag``)."""
    doc = ParsedDocument(format="txt", blocks=blocks).finalise()
    texts = [c.text for c in config.chunk(doc.text, doc.blocks)] or [text]
    vectors = embedder.embed_passages([embedding_text(title, t) for t in texts])
    return tagger.tag(doc.text or text, title=title, language=language or detect_language(text), chunks=texts,
                      chunk_vectors=vectors, content_hash=None, metadata=dict(metadata), mode=mode,
                      deadline_s=deadline_s)


def tag_file_unstored(tagger: Tagger, embedder: Embedder, config: IngestConfig, path: Path, *,
                      mode: Mode | None = None, deadline_s: float | None = None) -> TaggingResult:
    """Read one file as ingest would (same parsers, same limits) and tag it, storing nothing: what ``hcp-content
    tag FILE`` and ``POST /v1/tag/file`` both do. A file that cannot be read raises its ``IngestError``."""
    doc = read_file(path, path.parent, config.limits)
    return tag_unstored(tagger, embedder, config, doc.text, title=doc.title, language=doc.language,
                        blocks=[TextBlock(**b) for b in doc.blocks], metadata={"format": doc.format,
                                                                               "source": doc.source},
                        mode=mode, deadline_s=deadline_s)


class Ingestor:
    """Writes documents into the stores; with a ``tagger``, each new content is tagged before its rows are
    committed, so an asset is never stored without its tags. ``actor`` (key id, role) goes to the audit log."""

    def __init__(self, db: Database, vectors: VectorStore, embedder: Embedder, config: IngestConfig,
                 tagger: Tagger | None = None, actor: tuple[str, str] = ("cli", "admin"),
                 tagging_mode: Mode | None = None) -> None:
        self.db, self.vectors, self.embedder, self.config = db, vectors, embedder, config
        self.tagger, self.actor, self.tagging_mode = tagger, actor, tagging_mode
        self.limits = config.limits
        vectors.ensure_indexes(PAYLOAD_INDEXES)

    @classmethod
    def from_settings(cls, db: Database, vectors: VectorStore, embedder: Embedder, settings: Settings,
                      tagger: Tagger | None = None, actor: tuple[str, str] = ("cli", "admin"),
                      tagging_mode: Mode | None = None) -> Ingestor:
        return cls(db, vectors, embedder, IngestConfig.of(settings), tagger, actor, tagging_mode)

    # --- one document --------------------------------------------------------------------------
    def ingest(self, doc: Document) -> IngestOutcome:
        with self.db.session() as s:
            same = s.scalar(select(AssetVersion).where(AssetVersion.content_hash == doc.content_hash).limit(1))
            if same is not None:
                asset = same.asset
                if asset.uri != doc.source_key:
                    return IngestOutcome(doc.source_key, "duplicate", asset.id, same.version, title=asset.title)
                before = _summary(asset)
                if self._apply_metadata(asset, doc):
                    audit.record(s, *self.actor, "asset.metadata_update", "asset", asset.id, before, _summary(asset))
                    s.flush()
                    self.vectors.set_payload(Where(equals={"asset_id": asset.id}),
                                             asset_payload(asset, self._scope(s, asset.id)))
                    return IngestOutcome(doc.source_key, "metadata_updated", asset.id, asset.current_version,
                                         title=asset.title)
                return IngestOutcome(doc.source_key, "unchanged", asset.id, asset.current_version, title=asset.title)
            existing = s.scalar(select(Asset).where(Asset.uri == doc.source_key))
            asset_id = existing.id if existing else doc.asset_id
            version = (existing.current_version + 1) if existing else 1

        chunks = self.config.chunk(doc.text, [TextBlock(**b) for b in doc.blocks])
        if not chunks:
            raise IngestError("no_extractable_text", "No text could be extracted.", doc.source_key)
        texts = [embedding_text(doc.title, c.text) for c in chunks]
        embeddings = self.embedder.embed_passages(texts)
        chunk_ids = [f"{asset_id}:{version}:{c.ordinal}" for c in chunks]
        tagged: TaggingResult | None = None
        if self.tagger is not None:
            tagged = self.tagger.tag(doc.text, title=doc.title, language=doc.language, chunks=[c.text for c in chunks],
                                     chunk_vectors=embeddings, content_hash=doc.content_hash,
                                     metadata={"format": doc.format, "source": doc.source}, mode=self.tagging_mode)

        written: list[str] = []
        try:
            with self.db.session() as s:
                found = s.get(Asset, asset_id)
                if found is None:
                    asset = Asset(id=asset_id, uri=doc.source_key, current_version=version)
                    s.add(asset)
                else:
                    asset = found
                self._apply_metadata(asset, doc)
                asset.current_version = version
                asset.versions.append(AssetVersion(version=version, content_hash=doc.content_hash,
                                                   size_bytes=doc.size_bytes))
                for cid, c in zip(chunk_ids, chunks, strict=True):
                    asset.chunks.append(Chunk(id=cid, version=version, ordinal=c.ordinal, text=c.text, page=c.page,
                                              slide=c.slide, section=c.section, kind=c.kind, char_start=c.char_start,
                                              char_end=c.char_end, token_count=c.token_count))
                if tagged is not None:
                    s.flush()
                    write_proposals(s, asset_id, version, tagged)
                audit.record(s, *self.actor, "asset.new_version" if found else "asset.create", "asset", asset_id,
                             None, {**_summary(asset), "version": version, "chunks": len(chunks)})
                s.flush()
                payload = asset_payload(asset, self._scope(s, asset_id))
                points = [chunk_point(cid, vec, payload, version, c.page, c.slide, text)
                          for cid, vec, c, text in zip(chunk_ids, embeddings, chunks, texts, strict=True)]
                self.vectors.upsert(points)
                written = [p.id for p in points]
        except Exception:
            if written:  # the SQL transaction failed: take its vectors back out
                self.vectors.delete(written)
            raise
        if version > 1:
            self.vectors.delete_where(Where(equals={"asset_id": asset_id}, ranges={"version": (None, version - 1)}))
        return IngestOutcome(doc.source_key, "new_version" if version > 1 else "created", asset_id, version,
                             len(chunks), doc.title, tags=len(tagged.tags) if tagged else 0,
                             tagging_status=tagged.status if tagged else None)

    def _scope(self, session: Session, asset_id: str) -> list[str]:
        taxonomy = self.tagger.taxonomy if self.tagger is not None else None
        return scope_tokens(session, [asset_id], taxonomy).get(asset_id, [])

    @staticmethod
    def _apply_metadata(asset: Asset, doc: Document) -> bool:
        """Copy the document's metadata onto the asset row; True when anything changed."""
        meta = doc.meta
        extra = {k: v for k, v in (meta.model_extra or {}).items() if isinstance(v, (str, int, float, bool, list))}
        fields = {"title": doc.title, "language": doc.language, "source": doc.source, "format": doc.format,
                  "product": meta.product, "approval_code": meta.approval_code,
                  "approval_status": meta.approval_status, "valid_until": meta.valid_until, "owner": meta.owner,
                  "published_at": doc.published, "extra": extra}
        changed = False
        for name, value in fields.items():
            if getattr(asset, name, None) != value:
                setattr(asset, name, value)
                changed = True
        return changed

    # --- many ------------------------------------------------------------------------------------
    def ingest_items(self, items: Iterable[tuple[str, Document | IngestError]],
                     on_item: Callable[[IngestOutcome], None] | None = None) -> list[IngestOutcome]:
        outcomes: list[IngestOutcome] = []
        for key, item in items:
            if isinstance(item, IngestError):
                outcome = IngestOutcome(item.path or key, "failed", error=item)
            else:
                try:
                    outcome = self.ingest(item)
                except IngestError as err:
                    outcome = IngestOutcome(item.source_key, "failed", error=err)
            outcomes.append(outcome)
            if on_item:
                on_item(outcome)
        return outcomes

    def ingest_path(self, root: Path, on_item: Callable[[IngestOutcome], None] | None = None,
                    base: Path | None = None) -> list[IngestOutcome]:
        """Everything under ``root`` (source keys relative to ``base``); bad files are reported, never fatal."""
        return self.ingest_items(((str(path), item) for path, item in scan(root, self.limits, base)), on_item)

    def ingest_feed_urls(self, urls: Iterable[str],
                         on_item: Callable[[IngestOutcome], None] | None = None) -> list[IngestOutcome]:
        def items() -> Iterable[tuple[str, Document | IngestError]]:
            for url in urls:
                try:
                    meta = ComplianceMeta(source="external",
                                          approval_status=self.config.news_approval_status)
                    for item in fetch_feed(url, meta):
                        yield url, item
                except IngestError as err:
                    yield url, err
        return self.ingest_items(items(), on_item)


def _summary(asset: Asset) -> dict[str, Any]:
    return {"title": asset.title, "approval_status": asset.approval_status, "product": asset.product,
            "valid_until": asset.valid_until.isoformat() if asset.valid_until else None, "uri": asset.uri}
