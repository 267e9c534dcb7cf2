"""One parser per format; each takes bytes and returns a ParsedDocument with provenance."""

from __future__ import annotations

from collections.abc import Callable

from indexers.document import FileFormat, ParsedDocument
from indexers.parsers.docx import parse_docx
from indexers.parsers.html import parse_html
from indexers.parsers.markdown import parse_markdown
from indexers.parsers.pdf import parse_pdf
from indexers.parsers.pptx import parse_pptx
from indexers.parsers.text import parse_text

PARSERS: dict[FileFormat, Callable[[bytes, str], ParsedDocument]] = {
    "pdf": parse_pdf,
    "docx": parse_docx,
    "pptx": parse_pptx,
    "html": parse_html,
    "markdown": parse_markdown,
    "txt": parse_text,
}
