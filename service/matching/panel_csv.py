"""A rep's panel as CSV, the shape CRMs export: one row per HCP, a column per need dimension.

Columns (any order, header row first): ``hcp_id`` (required); optional ``language`` (zh or en), ``need_text``,
``k``, ``personalized`` and ``only_language`` (true/false), ``formats`` and ``exclude_asset_ids``; and any of
the taxonomy's HCP dimensions by id (``therapy_area``, ``value_driver``, ``channel_preference``...), its cell
the value ids separated by ``;``, each optionally weighted as ``value:2``. An empty cell says nothing.
Errors name the row and the column, so the rep can fix the spreadsheet."""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import ValidationError

from service.core.taxonomy import Taxonomy
from service.matching.need import NeedError
from service.matching.schemas import PanelHcp, PanelPlanRequest

LIST_SEPARATOR = ";"
SCALAR_COLUMNS = ("hcp_id", "language", "need_text", "k", "personalized", "only_language")
LIST_COLUMNS = ("formats", "exclude_asset_ids")
TRUE, FALSE = {"true", "yes", "1", "y", "是"}, {"false", "no", "0", "n", "否"}


def read_panel_csv(data: bytes, taxonomy: Taxonomy) -> PanelPlanRequest:
    """The plan request for a panel CSV (UTF-8, with or without a BOM). Raises NeedError (→ 422) naming the row
    and column of the first problem; which values exist is checked by the planner, as for JSON."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise NeedError("bad_csv_encoding", f"The panel is not UTF-8 text (byte {err.start}); save it from your "
                        "spreadsheet as \"CSV UTF-8\".") from err
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    if "hcp_id" not in header:
        raise NeedError("csv_missing_column", "The panel's first row must name its columns, hcp_id among them.",
                        {"columns": header})
    need_columns = {d.id for d in taxonomy.for_hcp()}
    unknown = [name for name in header if name not in (*SCALAR_COLUMNS, *LIST_COLUMNS) and name not in need_columns]
    if unknown:
        raise NeedError("csv_unknown_column", f"Unknown column {unknown[0]!r}: use hcp_id, "
                        f"{', '.join((*SCALAR_COLUMNS[1:], *LIST_COLUMNS))} or an HCP dimension of the taxonomy.",
                        {"column": unknown[0], "dimensions": sorted(need_columns)})
    hcps = [_hcp(row_number, {k.strip(): (v or "").strip() for k, v in row.items() if k}, need_columns)
            for row_number, row in enumerate(reader, start=2)]
    if not hcps:
        raise NeedError("csv_empty", "The panel has a header but no HCP rows.")
    try:
        return PanelPlanRequest(hcps=hcps)
    except ValidationError as err:
        raise NeedError("csv_invalid", f"The panel is not a valid plan: {err.errors()[0]['msg']}.") from err


def _hcp(row_number: int, row: dict[str, str], need_columns: set[str]) -> PanelHcp:
    fields: dict[str, Any] = {name: row[name] for name in ("hcp_id", "language", "need_text", "k") if row.get(name)}
    for name in ("personalized", "only_language"):
        if name in row:
            fields[name] = _flag(row_number, name, row[name], default=name == "personalized")
    for name in LIST_COLUMNS:
        fields[name] = _items(row.get(name, ""))
    need: dict[str, dict[str, float]] = {}
    for name in sorted(need_columns & row.keys()):
        if row[name]:
            need[name] = dict(_weighted(row_number, name, item) for item in _items(row[name]))
    fields["need_tags"] = need
    try:
        return PanelHcp.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        column = str(first["loc"][0]) if first["loc"] else "hcp_id"
        raise NeedError("csv_invalid_row", f"Row {row_number}, column {column}: {first['msg']}.",
                        {"row": row_number, "column": column}) from err


def _items(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(LIST_SEPARATOR) if item.strip()]


def _weighted(row_number: int, column: str, item: str) -> tuple[str, float]:
    value, _, weight = item.partition(":")
    try:
        return value.strip(), float(weight) if weight.strip() else 1.0
    except ValueError as err:
        raise NeedError("csv_invalid_row", f"Row {row_number}, column {column}: {item!r} is not value or "
                        "value:weight.", {"row": row_number, "column": column}) from err


def _flag(row_number: int, column: str, cell: str, default: bool) -> bool:
    if not cell:
        return default
    if cell.lower() in TRUE:
        return True
    if cell.lower() in FALSE:
        return False
    raise NeedError("csv_invalid_row", f"Row {row_number}, column {column}: {cell!r} is not true or false.",
                    {"row": row_number, "column": column})
