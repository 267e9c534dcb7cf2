"""Checks made before any parser touches a file: size, type by content, zip bombs, encryption.

A 646 KB DOCX that expands to 201 MB kept python-docx busy for 254 s at 4 GB of memory, so Office
files are judged from their zip directory (declared sizes and compression ratio) before parsing, then inflated
in small steps against a running budget, which catches a directory that lies.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from indexers.document import FileFormat
from indexers.errors import IngestError, IngestErrorCode

EXTENSIONS: dict[str, FileFormat] = {
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".html": "html", ".htm": "html",
    ".md": "markdown", ".markdown": "markdown", ".txt": "txt",
}
_STEP = 64 * 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 50 * 1024 * 1024
    max_uncompressed_bytes: int = 200 * 1024 * 1024
    max_compression_ratio: float = 100.0
    max_zip_entries: int = 10_000


def sniff(data: bytes) -> str:
    """What the bytes are, whatever the file is called: pdf, zip, ole, html or text."""
    head = data[:1024].lstrip()
    if data.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "zip"
    if data.startswith(OLE_MAGIC):
        return "ole"
    lowered = head[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "html"
    return "text"


def format_for(path: Path, where: str | None = None) -> FileFormat:
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError("unsupported_type", f"Files of type '{path.suffix or '(none)'}' cannot be ingested; "
                          "supported: PDF, DOCX, PPTX, HTML, Markdown and TXT.", where or str(path))
    return fmt


def check_zip(data: bytes, path: str, limits: Limits, kind: str) -> None:
    """Refuse zip bombs from the central directory alone, before anything is decompressed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        truncated = b"PK\x05\x06" not in data[-65_557:]
        code: IngestErrorCode = "truncated_file" if truncated else "corrupt_file"
        state = "cut off (incomplete download or copy?)" if truncated else "damaged"
        raise IngestError(code, f"The {kind} file is {state} and cannot be opened; export it again.", path) from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_zip_entries:
            raise IngestError("zip_bomb", f"The {kind} file holds {len(infos):,} parts, far more than a real document; "
                              "it was refused for safety.", path)
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos) or 1
        if total > limits.max_uncompressed_bytes or total / packed > limits.max_compression_ratio:
            raise IngestError("zip_bomb", f"The {kind} file would expand to {total / 1e6:,.0f} MB "
                              f"({total / packed:,.0f}x its size); it was refused for safety. "
                              "Save it again without embedded bulk data.", path)
        names = {i.filename for i in infos}
        _inflate_within(data, infos, path, limits, kind)
    expected = "word/document.xml" if kind == "Word" else "ppt/presentation.xml"
    if "[Content_Types].xml" not in names or expected not in names:
        raise IngestError("corrupt_file", f"The file is a zip archive but not a {kind} document.", path)


def _inflate_within(data: bytes, infos: list[zipfile.ZipInfo], path: str, limits: Limits, kind: str) -> None:
    """Inflate every part in small steps against a running budget, so a directory that lies about sizes is
    caught by what the data actually holds. zipfile stops a part at its declared size but, read in one go, first
    inflates the whole compressed run into memory: a 1 MB part claiming 2 MB inflated to 1 GiB that way. Here the
    data is inflated 64 KiB at a time and counted, never kept: past ``max_uncompressed_bytes`` in all it is a
    ``zip_bomb`` whatever the directory claims; data that does not inflate, or to other bytes than declared (its
    size and CRC), is a damaged file. (Damaged deflate data may decode to garbage for a while, so a part longer
    than its claim but within the budget is only judged damaged once it ends.)"""
    budget = limits.max_uncompressed_bytes
    view = memoryview(data)
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED:
            budget -= info.compress_size  # stored as is: its size on disk is its size
            continue
        try:
            if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:
                raise zlib.error("compression or encryption an Office file does not use")
            produced, crc = 0, 0
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            step = inflater.decompress(view[_data_offset(data, info):][:info.compress_size], _STEP)
            while True:
                produced, crc = produced + len(step), zlib.crc32(step, crc)
                if produced > budget:  # the directory lied (damaged data ends in a zlib error well before)
                    raise IngestError("zip_bomb", f"The {kind} file expands to more than "
                                      f"{limits.max_uncompressed_bytes / 1e6:,.0f} MB (its part {info.filename} "
                                      f"claims {info.file_size:,} bytes); it was refused for safety.", path)
                if not inflater.unconsumed_tail:
                    break
                step = inflater.decompress(inflater.unconsumed_tail, _STEP)
            step = inflater.flush()
            produced, crc = produced + len(step), zlib.crc32(step, crc)
        except (zlib.error, ValueError, struct.error) as exc:
            raise _damaged(kind, path) from exc
        if produced != info.file_size or crc != info.CRC:
            raise _damaged(kind, path)
        budget -= produced
        if budget < 0:
            raise IngestError("zip_bomb", f"The {kind} file expands past {limits.max_uncompressed_bytes / 1e6:,.0f} "
                              "MB; it was refused for safety.", path)


def _data_offset(data: bytes, info: zipfile.ZipInfo) -> int:
    """Where a part's compressed bytes start: after its local header, whose name and extra field lengths may
    differ from the central directory's."""
    if data[info.header_offset:info.header_offset + 4] != b"PK\x03\x04":
        raise ValueError("no local header where the directory points")
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    return info.header_offset + 30 + name_length + extra_length


def _damaged(kind: str, path: str) -> IngestError:
    return IngestError("corrupt_file", f"The {kind} file is damaged and cannot be opened; export it again.", path)


def check_file(path: Path, data: bytes, fmt: FileFormat, limits: Limits) -> None:
    """Size, emptiness, real type against the extension, Office encryption and zip bombs."""
    where = str(path)
    if len(data) == 0:
        raise IngestError("empty_file", "The file is empty (0 bytes); there is nothing to ingest.", where)
    if len(data) > limits.max_file_bytes:
        raise IngestError("file_too_large", f"The file is {len(data) / 1e6:,.1f} MB; the limit is "
                          f"{limits.max_file_bytes / 1e6:,.0f} MB. Split it or raise HCP_MAX_FILE_BYTES.", where)
    kind = sniff(data)
    if fmt in ("docx", "pptx"):
        label = "Word" if fmt == "docx" else "PowerPoint"
        if kind == "ole":
            if _office_encrypted(data):
                raise IngestError("encrypted_file", f"The {label} file is password-protected; save an unprotected "
                                  "copy for the content library.", where)
            raise IngestError("unsupported_type", f"This is an old binary Office file (.doc/.ppt); save it as "
                              f".{fmt} first.", where)
        if kind != "zip":
            raise IngestError("wrong_extension", f"The file is named .{fmt} but contains {_describe(kind)}; "
                              "rename it or export it again.", where)
        check_zip(data, where, limits, label)
    elif fmt == "pdf" and kind != "pdf":
        raise IngestError("wrong_extension", f"The file is named .pdf but contains {_describe(kind)}; "
                          "rename it or export it again.", where)
    elif fmt in ("html", "markdown", "txt") and kind in ("pdf", "zip", "ole"):
        raise IngestError("wrong_extension", f"The file is named {path.suffix} but contains {_describe(kind)}; "
                          "rename it to match what it is.", where)


def _describe(kind: str) -> str:
    return {"pdf": "a PDF", "zip": "a zip archive (an Office file?)", "ole": "an old binary Office file",
            "html": "a web page", "text": "plain text"}[kind]


def _office_encrypted(data: bytes) -> bool:
    import msoffcrypto

    try:
        return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception:
        return False
