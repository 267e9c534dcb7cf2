"""DOCX with python-docx: paragraphs and tables in document order, headings give the section path."""

from __future__ import annotations

import io
from typing import Any

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph

from indexers.document import ParsedDocument, TextBlock
from indexers.errors import IngestError


def _heading_level(paragraph: Paragraph) -> int | None:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name == "Title":
        return 0
    if name.startswith("Heading"):
        digits = name.removeprefix("Heading").strip()
        return int(digits) if digits.isdigit() else 1
    return None


def _table_text(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if not cells or cells[-1] != text:  # merged cells repeat their text
                cells.append(text)
        rows.append(" | ".join(cells))
    return "\n".join(r for r in rows if r.strip(" |"))


def parse_docx(data: bytes, path: str) -> ParsedDocument:
    try:
        document: Any = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise IngestError("corrupt_file", "The Word file is damaged and cannot be opened; save it again.",
                          path) from exc
    except Exception as exc:  # lxml errors inside a damaged package
        reason = type(exc).__name__
        raise IngestError("corrupt_file", f"The Word file is damaged and cannot be opened ({reason}).", path) from exc
    blocks: list[TextBlock] = []
    headings: list[str] = []
    title: str | None = None
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            level = _heading_level(item)
            if level is not None:
                if level == 0:
                    title = title or text
                    blocks.append(TextBlock(text=text, kind="title"))
                    continue
                headings = [*headings[: level - 1], text]
                blocks.append(TextBlock(text=text, section=" > ".join(headings), kind="heading"))
                continue
            blocks.append(TextBlock(text=text, section=" > ".join(headings) or None))
        elif isinstance(item, Table):
            text = _table_text(item)
            if text:
                blocks.append(TextBlock(text=text, section=" > ".join(headings) or None, kind="table"))
    props = document.core_properties
    title = (props.title or "").strip() or title
    published = props.created.date() if props.created else None
    return ParsedDocument(format="docx", blocks=blocks, title=title, published=published, pages=1)
