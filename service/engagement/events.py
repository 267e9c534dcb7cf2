"""Engagement events as they arrive (POST /v1/events, `hcp-content events import`): the contract, the checks
that need no database (pseudonymous ids, known actions and channels, not in the future), and the rows of a CSV or
JSON Lines export read one by one so a bad row is named by its number and field."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from service.core.fields import HCP_ID_PATTERN, RECORD_ID_PATTERN, TaxonomyId

Action = Literal["sent", "opened", "viewed", "clicked", "downloaded", "shared", "attended", "replied", "dismissed"]
MAX_BATCH = 10_000
FUTURE_SLACK = timedelta(minutes=10)  # clocks disagree; an event further ahead than this is a mistake

# What a pseudonymous id never looks like (PIPL: the service holds no directly identifying data). Checked on every
# HCP id: a CJK or Latin personal name, a mainland mobile number, an 18-digit resident id, an e-mail.
_NOT_PSEUDONYMOUS = {
    "chinese": (r"[\u3400-\u9fff]", "contains Chinese characters, like a name"),
    "mobile": (r"(?<!\d)1[3-9]\d{9}(?!\d)", "contains a mobile phone number"),
    "resident_id": (r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])", "contains a resident identity card number"),
    "email": (r"@[\w-]+\.[A-Za-z]{2,}", "contains an e-mail address"),
    "title": (r"^(?i:dr|mrs?|ms|prof)(?:[._ -]|(?=[A-Z][a-z]))[A-Za-z]+$", "looks like a personal name"),
}
# one pass over the id for all of them (an import checks two ids a row; five searches cost more than pydantic)
_ANY = re.compile("|".join(f"(?P<{name}>{pattern})" for name, (pattern, _) in _NOT_PSEUDONYMOUS.items()))


@lru_cache(maxsize=65536)  # HCP ids repeat across a file's rows
def pseudonymous_problem(value: str) -> str | None:
    """Why this id is not pseudonymous, or None when it may be stored."""
    found = _ANY.search(value)
    return None if found is None else _NOT_PSEUDONYMOUS[str(found.lastgroup)][1]


class EventIn(BaseModel):
    """One event: a rep sent a piece, or a doctor opened, viewed, … or dismissed one."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, pattern=HCP_ID_PATTERN,
                    description="The sender's id for this event: the same id twice is one event.")
    hcp_id: str = Field(min_length=1, max_length=128, pattern=HCP_ID_PATTERN,
                        description="The CRM's pseudonymous HCP id (a name, phone number or id card number is "
                                    "refused).")
    asset_id: str | None = Field(None, min_length=1, max_length=64, pattern=RECORD_ID_PATTERN)
    url: str | None = Field(None, min_length=1, max_length=2048, pattern=r"^\S+$",
                            description="Instead of asset_id: the URL or feed id of an ingested news item.")
    action: Action
    channel: TaxonomyId | None = Field(None, description="A value of the taxonomy's channel_preference dimension.")
    dwell_seconds: float | None = Field(None, ge=0, le=86_400)
    occurred_at: AwareDatetime = Field(description="When it happened (RFC 3339, with an offset).")
    suggestion_id: str | None = Field(None, min_length=1, max_length=64, pattern=RECORD_ID_PATTERN)
    reason: TaxonomyId | None = Field(None, description="A dismissal's reason (GET /v1/suggestions/reasons).")

    # The rules across fields (pseudonymous id, one target, not ahead, a reason only on a dismissal) are in
    # problem() below, run on every row by records.check_events: as pydantic validators they cost more than
    # the whole insert (an import validates a million rows).


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row (a CSV's header is row 0)
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


def problem(row: int, e: EventIn, now: datetime) -> RowError | None:
    """The first rule across fields this event breaks, or None."""
    why = pseudonymous_problem(e.hcp_id)
    if why:
        return RowError(row, "hcp_id", f"must be a pseudonymous id: this one {why}")
    if (e.asset_id is None) == (e.url is None):
        return RowError(row, "asset_id", "give exactly one of asset_id and url")
    if e.occurred_at > now + FUTURE_SLACK:
        return RowError(row, "occurred_at", "occurred_at is in the future")
    if e.reason is not None and e.action != "dismissed":
        return RowError(row, "reason", "only a dismissal has a reason")
    return None


def parse_row(row: int, raw: dict[str, Any]) -> EventIn | RowError:
    """One exported row as an event, or the first thing wrong with it (its field and why)."""
    raw.pop(None, None)  # type: ignore[call-overload]  # a CSV row longer than its header: its extra cells
    cleaned = {k: v for k, v in raw.items() if v or v == 0}  # an empty cell is an absent field
    try:
        return EventIn.model_validate(cleaned)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(row)"
        message = str(first["msg"]).removeprefix("Value error, ")
        return RowError(row, field, message)


def read_export(data: bytes, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """The rows of a CSV (header row; UTF-8, a BOM allowed) or JSON Lines export, numbered from 1."""
    text = data.decode("utf-8-sig")
    if name.lower().endswith((".jsonl", ".ndjson", ".json")):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                yield n, RowError(n, "(row)", f"not JSON: {err.msg}")
                continue
            yield n, value if isinstance(value, dict) else RowError(n, "(row)", "not a JSON object")
        return
    for n, record in enumerate(csv.DictReader(io.StringIO(text)), 1):
        yield n, dict(record)
