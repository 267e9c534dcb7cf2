"""Ingest throughput: pages/s per format (our checked, provenance-keeping parse against the bare
library call on the same files) and chunks/s (our chunker against plain tiktoken encoding of the
same text), all measured in this run.

    python bench/ingest.py [--content samples/content] [--seconds 3]
"""

from __future__ import annotations

import argparse
import io
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from indexers.chunker import chunk_blocks
from indexers.reader import parse_file
from indexers.safety import EXTENSIONS
from service.core.tokens import get_encoding


def bare_pdf(data: bytes) -> int:
    import pypdf

    return sum(len(p.extract_text() or "") for p in pypdf.PdfReader(io.BytesIO(data)).pages)


def bare_docx(data: bytes) -> int:
    import docx

    return sum(len(p.text) for p in docx.Document(io.BytesIO(data)).paragraphs)


def bare_pptx(data: bytes) -> int:
    from pptx import Presentation

    return sum(len(s.text_frame.text) for slide in Presentation(io.BytesIO(data)).slides
               for s in slide.shapes if s.has_text_frame)


def bare_html(data: bytes) -> int:
    import trafilatura

    return len(trafilatura.extract(data.decode("utf-8")) or "")


def bare_text(data: bytes) -> int:
    return len(data.decode("utf-8"))


BARE: dict[str, Callable[[bytes], int]] = {"pdf": bare_pdf, "docx": bare_docx, "pptx": bare_pptx, "html": bare_html,
                                           "markdown": bare_text, "txt": bare_text}


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Units per second of ``fn`` (which returns how many units it did), run for about ``seconds``."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        done += fn()
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--content", type=Path, default=Path("samples/content"))
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    by_format: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(args.content.rglob("*")):
        fmt = EXTENSIONS.get(path.suffix.lower())
        if fmt and path.is_file():
            by_format[fmt].append(path)
    print(f"{'format':<9} {'files':>5} {'pages':>5} {'hcp pages/s':>12} {'bare pages/s':>13} {'ratio':>6}")
    docs = []
    for fmt, paths in by_format.items():
        parsed = [parse_file(p)[0] for p in paths]
        docs += parsed
        pages = sum(max(1, d.pages) for d in parsed)
        blobs = [p.read_bytes() for p in paths]
        ours = rate(lambda paths=paths, pages=pages: (sum(1 for p in paths if parse_file(p)) and pages),
                    args.seconds)
        bare = rate(lambda blobs=blobs, pages=pages, fn=BARE[fmt]: (sum(fn(b) >= 0 for b in blobs) and pages),
                    args.seconds)
        print(f"{fmt:<9} {len(paths):>5} {pages:>5} {ours:>12.1f} {bare:>13.1f} {ours / bare:>6.2f}")
    enc = get_encoding()
    texts = [d.text for d in docs]
    n_chunks = sum(len(chunk_blocks(d.text, d.blocks)) for d in docs)
    chunk_rate = rate(lambda: sum(len(chunk_blocks(d.text, d.blocks)) for d in docs), args.seconds)
    tokens_per_s = rate(lambda: sum(len(enc.encode(t, disallowed_special=())) for t in texts), args.seconds)
    chunk_tokens_per_s = chunk_rate / n_chunks * sum(len(enc.encode(t, disallowed_special=())) for t in texts)
    print(f"\nchunker: {chunk_rate:,.0f} chunks/s ({n_chunks} chunks from {len(docs)} documents, 300-token chunks, "
          f"50 overlap); {chunk_tokens_per_s:,.0f} tokens/s vs bare tiktoken {tokens_per_s:,.0f} tokens/s: "
          f"ratio {chunk_tokens_per_s / tokens_per_s:.2f}")


if __name__ == "__main__":
    main()
