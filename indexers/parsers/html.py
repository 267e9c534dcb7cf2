"""HTML: the readable article without navigation or boilerplate (trafilatura), as Markdown sections."""

from __future__ import annotations

import trafilatura
from trafilatura.metadata import extract_metadata

from indexers.document import ParsedDocument
from indexers.errors import IngestError
from indexers.parsers.markdown import markdown_blocks
from indexers.parsers.text import decode_text


def html_to_markdown(html: str) -> str | None:
    return trafilatura.extract(html, output_format="markdown", include_tables=True, include_comments=False,
                               include_links=False, include_images=False, favor_recall=True)


def parse_html(data: bytes, path: str) -> ParsedDocument:
    html = decode_text(data, path)
    markdown = html_to_markdown(html)
    if not markdown or not markdown.strip():
        raise IngestError("no_extractable_text", "No readable article text was found in the web page.", path)
    blocks, heading_title = markdown_blocks(markdown)
    meta = extract_metadata(html)
    title = (meta.title if meta and meta.title else None) or heading_title or blocks[0].text.splitlines()[0]
    published = None
    if meta and meta.date:
        from datetime import date

        try:
            published = date.fromisoformat(meta.date[:10])
        except ValueError:
            published = None
    return ParsedDocument(format="html", blocks=blocks, title=title, published=published, pages=1)
