"""Walk a content repository recursively: every supported file and feed becomes a document or an error."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from indexers.document import Document
from indexers.errors import IngestError
from indexers.news import is_feed, read_feed
from indexers.reader import read_file, source_key_for
from indexers.safety import EXTENSIONS, Limits
from indexers.sidecar import is_sidecar


def candidate_files(root: Path) -> list[Path]:
    """Files a scan will try, in a stable order (hidden files and folders, ``_``-folders and sidecars skipped).
    A link whose target lies outside ``root`` is never followed: a link inside an ingest root to /etc/passwd
    must not become an asset (folders are not followed into either, as os.walk does by default)."""
    if root.is_file():
        return [root]
    inside = root.resolve()
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".") or is_sidecar(path):
                continue
            real = path.resolve()
            if real != inside and inside not in real.parents:
                continue
            found.append(path)
    return found


def scan(root: Path, limits: Limits | None = None, base: Path | None = None
         ) -> Iterator[tuple[Path, Document | IngestError]]:
    """Each file (or feed item) under ``root`` with its document, or the error that stopped it. Source keys
    are paths relative to ``base`` (default: ``root``, or a file's folder)."""
    base = base or (root if root.is_dir() else root.parent)
    for path in candidate_files(root):
        key = source_key_for(path, base)
        try:
            if is_feed(path):
                for item in read_feed(path, key):
                    yield path, item
            elif path.suffix.lower() in EXTENSIONS:
                yield path, read_file(path, base, limits)
            else:
                yield path, IngestError("unsupported_type", f"Files of type '{path.suffix or '(none)'}' cannot be "
                                        "ingested; supported: PDF, DOCX, PPTX, HTML, Markdown, TXT and news feeds "
                                        "(.rss, .atom, .jsonl).", key)
        except IngestError as err:
            yield path, err
