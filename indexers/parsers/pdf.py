"""PDF with pypdf: one block per page, page numbers kept."""

from __future__ import annotations

import io
from datetime import date

import pypdf
from pypdf.errors import EmptyFileError, FileNotDecryptedError, PdfReadError, PdfStreamError

from indexers.document import ParsedDocument, TextBlock
from indexers.errors import IngestError, IngestErrorCode

# Fewer visible characters per page than this and the PDF is treated as scanned/unextractable.
MIN_CHARS_PER_PAGE = 15


def parse_pdf(data: bytes, path: str) -> ParsedDocument:
    truncated = b"%%EOF" not in data[-2048:]
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Owner-password-only PDFs open with an empty user password; the rest are locked.
            try:
                if not reader.decrypt(""):
                    raise FileNotDecryptedError("password required")
            except FileNotDecryptedError as exc:
                raise IngestError("encrypted_file", "The PDF is password-protected; save an unprotected copy "
                                  "for the content library.", path) from exc
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except FileNotDecryptedError as exc:
        raise IngestError("encrypted_file", "The PDF is password-protected; save an unprotected copy.", path) from exc
    except (EmptyFileError, PdfStreamError, PdfReadError, ValueError, KeyError, TypeError) as exc:
        code: IngestErrorCode = "truncated_file" if truncated else "corrupt_file"
        raise IngestError(code, "The PDF is cut off (incomplete download or copy?) and cannot be read; export it again."
                          if truncated else "The PDF is damaged and cannot be read; export it again.", path) from exc
    if not pages:
        raise IngestError("corrupt_file", "The PDF has no pages.", path)
    visible = sum(len("".join(p.split())) for p in pages)
    if visible < MIN_CHARS_PER_PAGE * len(pages):
        raise IngestError("no_extractable_text", f"No text could be extracted from the PDF ({visible} characters on "
                          f"{len(pages)} pages): it is probably scanned images or lacks a Unicode map. "
                          "Provide a text PDF or the source document.", path)
    title = None
    published: date | None = None
    try:
        info = reader.metadata
        if info is not None:
            title = (info.title or "").strip() or None
            if info.creation_date:
                published = info.creation_date.date()
    except Exception:  # metadata is a nicety; broken metadata must not fail the document
        pass
    blocks = [TextBlock(text=text, page=i + 1) for i, text in enumerate(pages)]
    if title is None:
        title = next((line.strip() for line in pages[0].splitlines() if line.strip()), None)
    return ParsedDocument(format="pdf", blocks=blocks, title=title, published=published, pages=len(pages))
