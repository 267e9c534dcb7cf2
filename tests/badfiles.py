"""Builders of malformed inputs for the bad-file tests (kept small; the zip bomb is streamed)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pypdf

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "content"
GOOD_PDF = SAMPLES / "cardiovex" / "cardiovex_bleeding_safety_en.pdf"
GOOD_DOCX = SAMPLES / "cardiovex" / "cardiovex_dosing_guide_en.docx"
GOOD_PPTX = SAMPLES / "oncotinib" / "oncotinib_detail_aid_en.pptx"


def encrypted_pdf() -> bytes:
    writer = pypdf.PdfWriter(clone_from=str(GOOD_PDF))
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_docx() -> bytes:
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(GOOD_DOCX.read_bytes())).encrypt("secret", out)
    return out.getvalue()


def blank_pdf(pages: int = 2) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_bomb_docx(path: Path, expanded_mb: int = 300) -> None:
    """A real DOCX skeleton plus one member that inflates to ``expanded_mb`` MB of zeros."""
    with zipfile.ZipFile(GOOD_DOCX) as good, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in good.infolist():
            bomb.writestr(info, good.read(info))
        with bomb.open("word/media/padding.bin", "w") as member:
            block = b"\0" * (1 << 20)
            for _ in range(expanded_mb):
                member.write(block)
