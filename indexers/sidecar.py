"""Compliance metadata a content team attaches to a file: ``NAME.meta.yaml`` / ``NAME.meta.json`` beside it
(``report.pdf.meta.yaml`` or ``report.meta.yaml``), or front matter in Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from indexers.document import ComplianceMeta
from indexers.errors import IngestError
from service.core import safe_yaml

SIDECAR_SUFFIXES = (".meta.yaml", ".meta.yml", ".meta.json")


def sidecar_paths(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in SIDECAR_SUFFIXES] + \
           [path.with_name(path.stem + s) for s in SIDECAR_SUFFIXES]


def is_sidecar(path: Path) -> bool:
    return path.name.endswith(SIDECAR_SUFFIXES)


def read_sidecar(path: Path) -> dict[str, Any]:
    """The first sidecar found for ``path`` (empty when there is none)."""
    for candidate in sidecar_paths(path):
        if not candidate.is_file():
            continue
        text = candidate.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if candidate.suffix == ".json" else safe_yaml.load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise IngestError("bad_metadata", f"The metadata file {candidate.name} cannot be read: {exc}",
                              str(path)) from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise IngestError("bad_metadata", f"The metadata file {candidate.name} must be a mapping of fields.",
                              str(path))
        return data
    return {}


def compliance_meta(data: dict[str, Any], path: str) -> ComplianceMeta:
    try:
        return ComplianceMeta.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise IngestError("bad_metadata", f"Metadata field '{field}' is invalid: {err['msg']}.", path) from exc
