"""Markdown: YAML front matter as metadata, headings give the section path (markdown-it tokens)."""

from __future__ import annotations

from typing import Any

import yaml
from markdown_it import MarkdownIt

from indexers.document import FileFormat, ParsedDocument, TextBlock
from indexers.errors import IngestError
from indexers.parsers.text import decode_text
from service.core import safe_yaml

_md = MarkdownIt("commonmark").enable("table")


def split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end == -1:
        return {}, text
    try:
        meta = safe_yaml.load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        raise IngestError("bad_metadata", f"The front matter is not valid YAML: {exc}", path) from exc
    if not isinstance(meta, dict):
        raise IngestError("bad_metadata", "The front matter must be a YAML mapping (key: value lines).", path)
    rest = text[end + 4 :]
    return meta, rest[rest.find("\n") + 1 :] if "\n" in rest else ""


def markdown_blocks(text: str) -> tuple[list[TextBlock], str | None]:
    """Blocks from Markdown source, one per paragraph/list/table, each under its heading path."""
    lines = text.split("\n")
    tokens = _md.parse(text)
    blocks: list[TextBlock] = []
    headings: list[str] = []
    title: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            level = int(token.tag[1])
            heading = tokens[i + 1].content.strip()
            if level == 1 and title is None:
                title = heading
            headings = [*headings[: level - 1], heading]
            blocks.append(TextBlock(text=heading, section=" > ".join(h for h in headings if h), kind="heading"))
            i += 3
            continue
        if token.level == 0 and token.map and token.type in (
            "paragraph_open", "bullet_list_open", "ordered_list_open", "table_open", "blockquote_open",
            "fence", "code_block",
        ):
            start, end = token.map
            chunk = "\n".join(lines[start:end]).strip()
            section = " > ".join(h for h in headings if h) or None
            if token.type == "table_open":
                blocks.append(TextBlock(text=chunk, section=section, kind="table"))
            else:
                blocks.append(TextBlock(text=chunk, section=section))
            # skip to the matching close token
            if token.nesting == 1:
                depth = 1
                i += 1
                while i < len(tokens) and depth:
                    depth += tokens[i].nesting if tokens[i].level == 0 else 0
                    i += 1
                continue
        i += 1
    return blocks, title


def parse_markdown(data: bytes, path: str, fmt: FileFormat = "markdown") -> ParsedDocument:
    text = decode_text(data, path)
    meta, body = split_front_matter(text, path)
    blocks, title = markdown_blocks(body)
    if not any(b.text.strip() for b in blocks):
        raise IngestError("no_extractable_text", "The Markdown file has no text.", path)
    title = str(meta.get("title") or title or blocks[0].text.splitlines()[0])[:300]
    return ParsedDocument(format=fmt, blocks=blocks, title=title, metadata=meta, pages=1)
