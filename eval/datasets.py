"""Readers for gold labels: the project's gold YAML (with its content folder), HoC TSV and CHIP-CTC JSON."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from indexers.document import Document
from indexers.errors import IngestError
from indexers.scanner import scan
from service.core.taxonomy import Taxonomy


@dataclass
class GoldItem:
    id: str
    text: str
    labels: dict[str, set[str]]
    title: str = ""
    language: str = "en"
    chunks: list[str] = field(default_factory=list)
    content_hash: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def detect_format(path: Path) -> str:
    if path.suffix == ".tsv":
        return "hoc"
    if path.suffix == ".json":
        return "chip-ctc"
    return "project"


def load_gold(path: Path, taxonomy: Taxonomy, *, limit: int | None = None, seed: int = 13) -> list[GoldItem]:
    fmt = detect_format(path)
    if fmt == "hoc":
        items = load_hoc(path, taxonomy)
    elif fmt == "chip-ctc":
        items = load_chip_ctc(path, taxonomy)
    else:
        items = load_project_gold(path, taxonomy)
    if limit is not None and limit < len(items):
        # A seeded sample, not the first N: benchmark files are often sorted by label.
        items = random.Random(seed).sample(items, limit)
    return items


def _label_map(taxonomy: Taxonomy) -> dict[str, str]:
    dim = taxonomy.dimensions[0]
    return {v.label.en.lower(): v.id for v in dim.values if v.label.en} | {v.id: v.id for v in dim.values}


def load_hoc(path: Path, taxonomy: Taxonomy) -> list[GoldItem]:
    """HoC TSV: ``pmid, text, labels`` with ``;``-separated hallmark names."""
    dim = taxonomy.dimensions[0].id
    names = _label_map(taxonomy)
    items = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            labels = {names[x.strip().lower()] for x in (row["labels"] or "").split(";") if x.strip()}
            items.append(GoldItem(id=row["pmid"], text=row["text"], labels={dim: labels}))
    return items


def load_chip_ctc(path: Path, taxonomy: Taxonomy) -> list[GoldItem]:
    """CHIP-CTC JSON: ``[{id, label, text}]``, one category per sentence."""
    dim = taxonomy.dimensions[0].id
    names = _label_map(taxonomy)
    data = json.loads(path.read_text(encoding="utf-8"))
    return [GoldItem(id=str(r["id"]), text=r["text"].strip(), labels={dim: {names[r["label"].lower()]}}, language="zh")
            for r in data]


def load_project_gold(path: Path, taxonomy: Taxonomy, content: Path | None = None) -> list[GoldItem]:
    """The project's gold YAML: ``assets: {source_key: {dimension: value or [values]}}``; texts come from
    the content folder beside it (``content/``)."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    folder = content or path.parent / "content"
    docs: dict[str, Document] = {}
    for _, item in scan(folder):
        if not isinstance(item, IngestError):
            docs[item.source_key] = item
    items = []
    for key, tags in spec["assets"].items():
        doc = docs.get(key)
        if doc is None:
            raise FileNotFoundError(f"gold asset {key} is not in {folder}")
        labels = {}
        for dim_id, values in tags.items():
            taxonomy.dimension(dim_id)  # a gold file naming an unknown dimension is an error
            labels[dim_id] = {values} if isinstance(values, str) else set(values or [])
        items.append(GoldItem(id=key, text=doc.text, labels=labels, title=doc.title, language=doc.language,
                              chunks=[], content_hash=doc.content_hash,
                              metadata={"format": doc.format, "source": doc.source}))
    return items
