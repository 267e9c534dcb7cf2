"""Files to documents: safety checks, the format's parser, sidecar metadata, language and hashing."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from indexers.document import Document, ParsedDocument, detect_language, sha256_hex
from indexers.errors import IngestError
from indexers.parsers import PARSERS
from indexers.safety import Limits, check_file, format_for
from indexers.sidecar import compliance_meta, read_sidecar


def source_key_for(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.resolve().as_posix()


def parse_file(path: Path, limits: Limits | None = None, display: str | None = None) -> tuple[ParsedDocument, bytes]:
    """Checked and parsed, not yet a document (benchmarks use this directly)."""
    limits = limits or Limits()
    where = display or str(path)
    fmt = format_for(path, where)
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:  # refuse before reading it into memory
            raise IngestError("file_too_large", f"The file is {size / 1e6:,.1f} MB; the limit is "
                              f"{limits.max_file_bytes / 1e6:,.0f} MB.", where)
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError("unreadable_file", f"The file cannot be read: {exc.strerror}.", where) from exc
    check_file(Path(where), data, fmt, limits)
    parsed = PARSERS[fmt](data, where).finalise()
    if not parsed.text.strip():
        raise IngestError("no_extractable_text", "No text could be extracted from the file.", where)
    return parsed, data


def read_file(path: Path, root: Path | None = None, limits: Limits | None = None) -> Document:
    """One file of a content repository as a :class:`Document`; raises :class:`IngestError`."""
    key = source_key_for(path, root)
    parsed, data = parse_file(path, limits, display=key)
    meta_data = {**parsed.metadata, **read_sidecar(path)}
    meta = compliance_meta(meta_data, key)
    return Document(
        source_key=key,
        title=(meta.title or parsed.title or path.stem).strip()[:500],
        language=meta.language or detect_language(parsed.text),
        source=meta.source or "internal",
        format=parsed.format,
        content_hash=sha256_hex(data),
        size_bytes=len(data),
        published=meta.published or parsed.published,
        meta=meta,
        text=parsed.text,
        blocks=[asdict(b) for b in parsed.blocks],
        pages=parsed.pages,
    )
