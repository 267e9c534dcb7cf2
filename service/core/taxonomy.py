"""The taxonomy: dimensions and values marketing edits as YAML. Loaded, validated, never hard-coded.

Errors name the file, the line and the field, so whoever edits the YAML can fix it without a developer:
``taxonomy/pharma.yaml:118: dimensions[3].values[2].id: duplicate value id 'safety' in dimension 'value_driver'``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.core.safe_yaml import SafeLoader, compose_and_load

ID_PATTERN = r"^[a-z0-9][a-z0-9_\-.]*$"


class TaxonomyError(ValueError):
    """A taxonomy file is not valid. ``line`` is 1-based; ``field`` is the path to the bad entry."""

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_Item = TypeVar("_Item", bound=_HasId)


def _unique_ids(items: list[_Item], what: str) -> list[_Item]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"duplicate {what} id {item.id!r}")
        seen.add(item.id)
    return items


class Localized(_Strict):
    """A text in Chinese and English (at least one)."""

    zh: str | None = None
    en: str | None = None

    @model_validator(mode="after")
    def _one_language(self) -> Localized:
        if not (self.zh or self.en):
            raise ValueError("needs a zh or an en text")
        return self

    def get(self, language: str = "en") -> str:
        return (self.zh if language == "zh" else self.en) or self.en or self.zh or ""

    def all(self) -> list[str]:
        return [t for t in (self.en, self.zh) if t]


class Synonyms(_Strict):
    zh: list[str] = Field(default_factory=list)
    en: list[str] = Field(default_factory=list)

    def all(self) -> list[str]:
        return [*self.en, *self.zh]


class TaxonomyValue(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    label: Localized
    definition: Localized
    synonyms: Synonyms = Field(default_factory=Synonyms)
    examples: list[str] = Field(default_factory=list)
    implies: dict[str, list[str]] = Field(default_factory=dict, description=(
        "Values of other dimensions this value entails (a product's therapy area): content tagged with this "
        "value also counts as carrying those when matching."))
    approved_for: dict[str, list[str]] = Field(default_factory=dict, description=(
        "A product's approved indications, as values of other dimensions (its diseases): the claim checker flags a "
        "claim that names this product with an indication outside them as off-label."))

    def prototype_texts(self) -> list[str]:
        """Texts that describe this value (labels, definition, synonyms, examples), both languages."""
        return [*self.label.all(), *self.definition.all(), *self.synonyms.all(), *self.examples]


class MetadataRule(_Strict):
    """A dimension read from an asset's own metadata (its file format, its source), not guessed."""

    field: str
    values: dict[str, str] = Field(min_length=1)


class Dimension(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    label: Localized
    kind: Literal["factual", "strategic"]
    cardinality: Literal["single", "multi"] = "multi"
    applies_to: Literal["content", "hcp", "both"] = "both"
    description: Localized | None = None
    weight: float = Field(1.0, ge=0, description="Weight of this dimension when matching needs to content.")
    mismatch_penalty: float = Field(1.0, ge=0, le=1, description=(
        "Matching: score multiplier for content tagged only with other values of this dimension than the need "
        "asks for (a cardiologist's oncology deck); 1 = no penalty."))
    threshold: float = Field(0.6, ge=0, le=1, description="Confidence below which a tag needs review.")
    from_metadata: MetadataRule | None = None
    values: list[TaxonomyValue] = Field(min_length=1)

    @model_validator(mode="after")
    def _metadata_values_exist(self) -> Dimension:
        if self.from_metadata is not None:
            unknown = sorted(set(self.from_metadata.values.values()) - {v.id for v in self.values})
            if unknown:
                raise ValueError(f"from_metadata maps to unknown value ids {unknown}")
        return self

    @field_validator("values")
    @classmethod
    def _unique_values(cls, values: list[TaxonomyValue]) -> list[TaxonomyValue]:
        return _unique_ids(values, "value")

    def value(self, value_id: str) -> TaxonomyValue | None:
        return next((v for v in self.values if v.id == value_id), None)

    @property
    def value_ids(self) -> list[str]:
        return [v.id for v in self.values]


class Taxonomy(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    version: str = Field(min_length=1)
    name: Localized
    description: Localized | None = None
    dimensions: list[Dimension] = Field(min_length=1)

    @field_validator("dimensions")
    @classmethod
    def _unique_dimensions(cls, dimensions: list[Dimension]) -> list[Dimension]:
        return _unique_ids(dimensions, "dimension")

    @model_validator(mode="after")
    def _implications_exist(self) -> Taxonomy:
        for dim in self.dimensions:
            for value in dim.values:
                for target_dim, target_values in value.implies.items():
                    missing = [v for v in target_values if not self.has(target_dim, v)]
                    if missing or target_dim == dim.id:
                        raise ValueError(f"{dim.id}:{value.id} implies {target_dim}:{missing or target_values}, "
                                         "which is not a value of another dimension")
                for target_dim, target_values in value.approved_for.items():
                    missing = [v for v in target_values if not self.has(target_dim, v)]
                    if missing or target_dim == dim.id:
                        raise ValueError(f"{dim.id}:{value.id} is approved for {target_dim}:"
                                         f"{missing or target_values}, which is not a value of another dimension")
        cycle = _implication_cycle(self.dimensions)
        if cycle:
            # tagging decides an implied dimension before the dimensions that imply it: a circle has no first
            raise ValueError(f"implications go round in a circle: {' -> '.join(cycle)}")
        return self

    def implications(self, dimension_id: str, value_id: str) -> list[tuple[str, str]]:
        """(dimension, value) pairs that ``dimension_id:value_id`` entails."""
        value = self.dimension(dimension_id).value(value_id)
        return [(d, v) for d, values in (value.implies if value else {}).items() for v in values]

    def implied_by(self, dimension_id: str, value_id: str) -> list[tuple[str, str]]:
        """(dimension, value) pairs that entail ``dimension_id:value_id``."""
        return [(d.id, v.id) for d in self.dimensions for v in d.values
                if value_id in v.implies.get(dimension_id, [])]

    @property
    def key(self) -> str:
        """``id@version``: what tags, caches, heads and jobs record as the taxonomy they were made with."""
        return f"{self.id}@{self.version}"

    def dimension(self, dimension_id: str) -> Dimension:
        for dim in self.dimensions:
            if dim.id == dimension_id:
                return dim
        raise KeyError(dimension_id)

    def has_dimension(self, dimension_id: str) -> bool:
        return any(d.id == dimension_id for d in self.dimensions)

    def has(self, dimension_id: str, value_id: str) -> bool:
        return any(d.id == dimension_id and d.value(value_id) is not None for d in self.dimensions)

    def value_label(self, dimension_id: str, value_id: str, language: str) -> str:
        """A value's label in ``language``; the id itself for a value the taxonomy does not have (or has since
        dropped)."""
        if not self.has(dimension_id, value_id):
            return value_id
        found = self.dimension(dimension_id).value(value_id)
        return found.label.get(language) if found else value_id

    def metadata_dimension(self, field: str) -> Dimension | None:
        """The dimension read from the asset metadata ``field`` (``format``, ``source``), if any."""
        return next((d for d in self.dimensions if d.from_metadata is not None and d.from_metadata.field == field),
                    None)

    def for_content(self) -> list[Dimension]:
        return [d for d in self.dimensions if d.applies_to in ("content", "both")]

    def for_hcp(self) -> list[Dimension]:
        return [d for d in self.dimensions if d.applies_to in ("hcp", "both")]


def _implication_cycle(dimensions: list[Dimension]) -> list[str]:
    """A circle of dimensions whose values imply values of the next one (``[a, b, a]``), or ``[]``."""
    edges = {d.id: sorted({t for v in d.values for t in v.implies}) for d in dimensions}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for target in edges.get(node, []):
            if state.get(target) == 1:
                return [*path[path.index(target):], node, target] if target in path else [node, target]
            if target not in state:
                found = visit(target, [*path, node])
                if found:
                    return found
        state[node] = 2
        return []

    for dim in dimensions:
        if dim.id not in state:
            found = visit(dim.id, [])
            if found:
                return found
    return []


# --- YAML with line numbers ---------------------------------------------------------------------

class _UniqueKeyLoader(SafeLoader):
    """PyYAML silently keeps the last of two equal keys; a taxonomy editor must hear about it."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _line_index(node: yaml.Node, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], int]]:
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            yield (*path, key), key_node.start_mark.line + 1
            for sub_path, line in _line_index(value_node, (*path, key)):
                if sub_path != (*path, key):
                    yield sub_path, line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _line_index(item, (*path, i))


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_taxonomy(text: str, file: str = "<taxonomy>") -> Taxonomy:
    """Validate taxonomy YAML ``text``; raises :class:`TaxonomyError` naming the line and field."""
    try:  # composed once: the line index and the data come from the same tree
        root, data = compose_and_load(text, _UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise TaxonomyError(file, mark.line + 1 if mark else None, "", f"invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise TaxonomyError(file, None, "", f"invalid YAML: {exc}") from exc
    if not isinstance(data, dict) or root is None:
        raise TaxonomyError(file, 1, "", "a taxonomy is a mapping with id, version, name and dimensions")
    lines = dict(_line_index(root))
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as exc:
        # A misspelt field also makes the real one "missing": the misspelling is the news.
        first = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        loc = tuple(first["loc"])
        # Duplicate ids are reported on the list; point at the offending item instead.
        message = first["msg"].removeprefix("Value error, ")
        if "duplicate" in message and loc and loc[-1] in ("values", "dimensions"):
            dup = message.split("'")[1] if "'" in message else None
            items = data
            for part in loc:
                items = items[part]
            indices = [i for i, item in enumerate(items) if isinstance(item, dict) and item.get("id") == dup]
            if len(indices) > 1:
                loc = (*loc, indices[1], "id")
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
        raise TaxonomyError(file, line, _field_path(loc), message) from exc


def load_taxonomy(path: str | Path) -> Taxonomy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(str(path), None, "", f"cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise TaxonomyError(str(path), None, "", "the file is not UTF-8 text") from exc
    return parse_taxonomy(text, str(path))
