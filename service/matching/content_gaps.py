"""The content-gap report, for the people who make content: what reps asked for that nothing in reach served, and
what is served by a single asset about to expire. Each row says how often it was asked for, so the content team
knows what to write next. Rows are need values, languages and key scopes, never doctors."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from service.core.taxonomy import Taxonomy
from service.matching.catalog import CatalogSnapshot
from service.matching.coverage import carriers
from service.matching.need import value_label
from service.store import demand
from service.store.points import day_number

EXPIRING_DAYS = 60


class Gap(BaseModel):
    dimension: str
    value: str
    label: str
    language: str = Field(description="The language the need was asked in.")
    scope: str = Field(description="The asking keys' scope (`product:…;area:…`); empty: unscoped keys.")
    asked: int = Field(description="How often it was asked for in the window (matches and panel rows).")
    unserved: int = Field(description="How often nothing listed covered it.")
    last_asked: date


class SingleSource(BaseModel):
    dimension: str
    value: str
    label: str
    asset_id: str = Field(description="The one approved, unexpired asset that covers it.")
    title: str
    valid_until: date
    days_left: int
    asked: int = Field(description="How often it was asked for in the window, in any language and scope.")


class ContentGaps(BaseModel):
    days: int
    since: date
    gaps: list[Gap] = Field(description="Need values asked for that nothing above the relevance floor covered, "
                            "most often unserved first.")
    single_source: list[SingleSource] = Field(description=(
        f"Need values covered by one asset only, which expires within {EXPIRING_DAYS} days."))


def content_gaps(s: Session, taxonomy: Taxonomy, catalog: CatalogSnapshot, days: int, language: str,
                 today: date | None = None) -> ContentGaps:
    """The report over the last ``days`` days; labels in ``language``."""
    today = today or date.today()
    first = today - timedelta(days=days - 1)
    rows = demand.since(s, first)
    gaps = [Gap(dimension=r.dimension, value=r.value, label=value_label(taxonomy, r.dimension, r.value, language),
                language=r.language, scope=r.scope, asked=r.asked, unserved=r.unserved, last_asked=r.last_day)
            for r in rows if r.unserved > 0]
    gaps.sort(key=lambda g: (-g.unserved, -g.asked, g.dimension, g.value, g.language, g.scope))
    asked: dict[tuple[str, str], int] = {}
    for r in rows:
        asked[(r.dimension, r.value)] = asked.get((r.dimension, r.value), 0) + r.asked
    return ContentGaps(days=days, since=first, gaps=gaps,
                       single_source=_single_source(taxonomy, catalog, asked, language, today))


def _single_source(taxonomy: Taxonomy, catalog: CatalogSnapshot, asked: dict[tuple[str, str], int], language: str,
                   today: date) -> list[SingleSource]:
    visible = catalog.visible(None, None, today)
    horizon = day_number(today + timedelta(days=EXPIRING_DAYS), 0)
    out = []
    for dim in taxonomy.for_hcp():
        if dim.applies_to == "hcp":
            continue
        for value in dim.values:
            rows = (carriers(catalog, taxonomy, dim.id, value.id) & visible).nonzero()[0]
            if len(rows) != 1 or catalog.valid_until[rows[0]] > horizon:
                continue
            card = catalog.cards[int(rows[0])]
            assert card.valid_until is not None  # it expires within the horizon
            out.append(SingleSource(dimension=dim.id, value=value.id, label=value.label.get(language),
                                    asset_id=card.id, title=card.title, valid_until=card.valid_until,
                                    days_left=(card.valid_until - today).days,
                                    asked=asked.get((dim.id, value.id), 0)))
    out.sort(key=lambda r: (r.valid_until, -r.asked, r.dimension, r.value))
    return out


GAP_COLUMNS = ("kind", "dimension", "value", "label", "language", "scope", "asked", "unserved", "last_asked",
               "asset_id", "title", "valid_until", "days_left")


def gaps_csv(report: ContentGaps) -> str:
    """Both tables as one CSV, UTF-8 with a byte-order mark so that a spreadsheet opens the Chinese intact."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(GAP_COLUMNS)
    for g in report.gaps:
        writer.writerow(["unserved", g.dimension, g.value, g.label, g.language, g.scope, g.asked, g.unserved,
                         g.last_asked, "", "", "", ""])
    for r in report.single_source:
        writer.writerow(["single_source_expiring", r.dimension, r.value, r.label, "", "", r.asked, "", "",
                         r.asset_id, r.title, r.valid_until, r.days_left])
    return out.getvalue()
