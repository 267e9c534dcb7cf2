"""PPTX with python-pptx: titles, bodies, tables and speaker notes, slide numbers kept."""

from __future__ import annotations

import io
from typing import Any

from pptx import Presentation
from pptx.exc import PackageNotFoundError

from indexers.document import ParsedDocument, TextBlock
from indexers.errors import IngestError


def _shape_texts(shape: Any) -> list[str]:
    texts: list[str] = []
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        texts.append("\n".join(p.text for p in shape.text_frame.paragraphs if p.text.strip()))
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in shape.table.rows]
        texts.append("\n".join(rows))
    for child in getattr(shape, "shapes", []) or []:  # groups
        texts.extend(_shape_texts(child))
    return [t for t in texts if t.strip()]


def parse_pptx(data: bytes, path: str) -> ParsedDocument:
    try:
        deck: Any = Presentation(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise IngestError("corrupt_file", "The PowerPoint file is damaged and cannot be opened; save it again.",
                          path) from exc
    except Exception as exc:
        raise IngestError("corrupt_file", f"The PowerPoint file is damaged ({type(exc).__name__}).", path) from exc
    blocks: list[TextBlock] = []
    deck_title: str | None = None
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        slide_title = title_shape.text.strip() if title_shape is not None and title_shape.has_text_frame else ""
        if slide_title:
            deck_title = deck_title or slide_title
            blocks.append(TextBlock(text=slide_title, slide=number, section=slide_title, kind="title"))
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            for text in _shape_texts(shape):
                blocks.append(TextBlock(text=text, slide=number, section=slide_title or None,
                                        kind="table" if getattr(shape, "has_table", False) else "body"))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            if notes:
                blocks.append(TextBlock(text=notes, slide=number, section=slide_title or None, kind="notes"))
    title = (deck.core_properties.title or "").strip() or deck_title
    return ParsedDocument(format="pptx", blocks=blocks, title=title, pages=len(deck.slides))
