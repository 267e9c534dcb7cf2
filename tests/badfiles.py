"""Builders of malformed inputs for the bad-file tests (kept small; the zip bomb is streamed)."""

from __future__ import annotations

import io
import struct
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


def lying_zip_bomb_docx(path: Path, expanded_mb: int, claimed_bytes: int = 2_000_000) -> None:
    """A real DOCX whose ``word/document.xml`` inflates to ``expanded_mb`` MB while the zip's central directory
    says it holds ``claimed_bytes``: every declared size and ratio looks like a document's."""
    with zipfile.ZipFile(GOOD_DOCX) as good, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in good.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info, good.read(info))
        with bomb.open("word/document.xml", "w") as member:
            block = b"\0" * (1 << 20)
            for _ in range(expanded_mb):
                member.write(block)
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")  # the central directory's first entry
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_length] == b"word/document.xml":
            struct.pack_into("<I", data, at + 24, claimed_bytes)  # the uncompressed size the directory claims
        at = data.find(b"PK\x01\x02", at + 46)
    path.write_bytes(bytes(data))


def malformed_uploads(folder: Path) -> dict[str, tuple[str, bytes]]:
    """Every malformed upload the ingest tests refuse, as ``case → (file name, bytes)``; the zip bomb is written
    under ``folder`` (300 MB expanded, under 2 MB on disk) and read back, so nothing big is held twice."""
    pptx = bytearray(GOOD_PPTX.read_bytes())
    pptx[200:4000] = b"\xff" * 3800
    bomb = folder / "bomb.docx"
    zip_bomb_docx(bomb, expanded_mb=300)
    cases: dict[str, tuple[str, bytes]] = {f"empty {ext}": (f"empty.{ext}", b"") for ext in ("pdf", "docx", "pptx",
                                                                                               "txt", "md")}
    cases |= {
        "corrupt pdf": ("c.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 500 + b"\n%%EOF\n"),
        "corrupt docx": ("c.docx", b"PK\x03\x04" + b"garbage" * 300 + b"PK\x05\x06" + b"\0" * 18),
        "corrupt pptx": ("c.pptx", bytes(pptx)),
        "encrypted pdf": ("locked.pdf", encrypted_pdf()),
        "encrypted docx": ("locked.docx", encrypted_docx()),
        "docx named pdf": ("report.pdf", GOOD_DOCX.read_bytes()),
        "pdf named pptx": ("slides.pptx", GOOD_PDF.read_bytes()),
        "pdf named html": ("page.html", GOOD_PDF.read_bytes()),
        "scanned pdf": ("scan.pdf", blank_pdf()),
        "video": ("movie.mp4", b"\0\0\0\x18ftypmp42"),
        "zip bomb": ("bomb.docx", bomb.read_bytes()),
    }
    for good in (GOOD_PDF, GOOD_DOCX, GOOD_PPTX):
        data = good.read_bytes()
        cases[f"truncated {good.suffix}"] = (f"cut{good.suffix}", data[: len(data) // 2])
    return cases
