"""The asset and chunk as matching sees them: the few columns ranking, reasons and the response read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from service.store.models import Asset


@dataclass(frozen=True, slots=True)
class AssetCard:
    """What ranking and the response read of an asset: a plain row, not an ORM object (a request loads a few
    hundred; identity-mapping and expunging each cost more than the query)."""

    id: str
    title: str
    language: str
    source: str
    format: str
    product: str | None
    valid_until: date | None
    published_at: date | None
    family: str | None  # the content family its metadata names (translations, versions of one piece)


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A chunk as a response and talking points read it: a plain row, like the card."""

    id: str
    ordinal: int
    text: str
    page: int | None
    slide: int | None
    section: str | None
    kind: str = "body"  # "notes": a slide's speaker notes


# the family is read out of the metadata JSON by the database: decoding every candidate's whole metadata cost more
# than the rest of its row
FAMILY = "family"
CARD_COLUMNS = (Asset.id, Asset.title, Asset.language, Asset.source, Asset.format, Asset.product,
                Asset.valid_until, Asset.published_at, Asset.extra[FAMILY].as_string())
