"""Plain text: decoded as UTF-8, or GB18030 (a superset of GBK/GB2312) for legacy Chinese files."""

from __future__ import annotations

import re

from indexers.document import ParsedDocument, TextBlock
from indexers.errors import IngestError


def decode_text(data: bytes, path: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text.replace("\r\n", "\n").replace("\r", "\n")
    raise IngestError("unreadable_file", "The text file is neither UTF-8 nor GB18030 text (binary data?).", path)


def parse_text(data: bytes, path: str) -> ParsedDocument:
    text = decode_text(data, path)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if not paragraphs:
        raise IngestError("no_extractable_text", "The text file contains only whitespace.", path)
    title = paragraphs[0].splitlines()[0][:200]
    return ParsedDocument(format="txt", blocks=[TextBlock(text=p) for p in paragraphs], title=title, pages=1)
