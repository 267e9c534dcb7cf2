"""External news: RSS/Atom feeds (files or URLs) and JSON Lines files, one document per item.

Feed-level compliance metadata (approval status, owner, validity) comes from the feed file's
sidecar and applies to each item; items are external content by definition.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx

from indexers.document import ComplianceMeta, Document, ParsedDocument, TextBlock, detect_language, sha256_hex
from indexers.errors import IngestError
from indexers.sidecar import compliance_meta, read_sidecar

FEED_SUFFIXES = (".rss", ".atom", ".jsonl")
_TAG = re.compile(r"<[^>]+>")


def is_feed(path: Path) -> bool:
    return path.suffix.lower() in FEED_SUFFIXES


def _plain(html: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p>", "\n\n", html)
    return html_lib.unescape(_TAG.sub("", text)).strip()


def _date(value: Any) -> date | None:
    if not value:
        return None
    if isinstance(value, (tuple, list)) or hasattr(value, "tm_year"):
        return date(value[0], value[1], value[2])
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _document(key: str, title: str, body: str, published: date | None, meta: ComplianceMeta, extra: dict[str, Any]
              ) -> Document:
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    parsed = ParsedDocument(format="news", blocks=[TextBlock(text=title, kind="title"),
                                                   *[TextBlock(text=p) for p in paragraphs]]).finalise()
    text = parsed.text
    item_meta = meta.model_copy(update={k: v for k, v in extra.items() if k in ComplianceMeta.model_fields and v})
    return Document(source_key=key, title=title[:500], language=item_meta.language or detect_language(text),
                    source="external", format="news", content_hash=sha256_hex(text.encode("utf-8")),
                    size_bytes=len(text.encode("utf-8")), published=published or item_meta.published,
                    meta=item_meta, text=text, blocks=[asdict(b) for b in parsed.blocks], pages=1)


def parse_feed(data: bytes, key: str, meta: ComplianceMeta) -> Iterator[Document | IngestError]:
    """Items of an RSS/Atom feed; a broken item is reported, the rest still come."""
    feed = feedparser.parse(data)
    if feed.bozo and not feed.entries:
        raise IngestError("corrupt_file", f"The news feed cannot be read: {feed.get('bozo_exception')}", key)
    for i, entry in enumerate(feed.entries):
        item_key = f"{key}#{entry.get('id') or entry.get('link') or i}"
        title = _plain(entry.get("title", "")).strip()
        content = entry.get("content", [{}])[0].get("value") if entry.get("content") else None
        body = _plain(content or entry.get("summary", ""))
        if not title or not body:
            yield IngestError("bad_feed_item", f"Feed item {i + 1} has no {'title' if not title else 'text'}.",
                              item_key)
            continue
        published = _date(entry.get("published_parsed") or entry.get("updated_parsed"))
        yield _document(item_key, title, body, published, meta, {"source_name": feed.feed.get("title")})


def parse_jsonl(data: bytes, key: str, meta: ComplianceMeta) -> Iterator[Document | IngestError]:
    """One news item per line: ``{"id"|"url", "title", "text"|"content"|"summary", "published", "language"}``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError("unreadable_file", "The JSON Lines file is not UTF-8 text.", key) from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{key}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield IngestError("bad_feed_item", f"Line {number} is not valid JSON ({exc.msg}).", where)
            continue
        if not isinstance(item, dict):
            yield IngestError("bad_feed_item", f"Line {number} is not a JSON object.", where)
            continue
        title = str(item.get("title") or "").strip()
        body = _plain(str(item.get("text") or item.get("content") or item.get("summary") or ""))
        if not title or not body:
            yield IngestError("bad_feed_item", f"Line {number} needs a title and a text.", where)
            continue
        item_id = item.get("id") or item.get("url") or item.get("guid") or number
        yield _document(f"{key}#{item_id}", title, body, _date(item.get("published")), meta,
                        {"language": item.get("language")})


def read_feed(path: Path, key: str) -> Iterator[Document | IngestError]:
    meta = compliance_meta({**read_sidecar(path), "source": "external"}, key)
    data = path.read_bytes()
    if not data.strip():
        raise IngestError("empty_file", "The news feed file is empty.", key)
    if path.suffix.lower() == ".jsonl":
        yield from parse_jsonl(data, key, meta)
    else:
        yield from parse_feed(data, key, meta)


def fetch_feed(url: str, meta: ComplianceMeta | None = None,
               timeout_s: float = 20.0) -> Iterator[Document | IngestError]:
    """A feed the user configured by URL (fetched when an ingest runs, never at request time)."""
    try:
        response = httpx.get(url, timeout=timeout_s, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise IngestError("unreadable_file", f"The news feed at {url} could not be fetched: {exc}", url) from exc
    stamp = datetime.now(UTC).date()
    base = meta or ComplianceMeta(source="external")
    yield from parse_feed(response.content, url, base.model_copy(update={"published": base.published or stamp}))
