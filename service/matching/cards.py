"""The asset as matching sees it: the few columns ranking, reasons and the response read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

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
    extra: dict[str, Any] | None


CARD_COLUMNS = (Asset.id, Asset.title, Asset.language, Asset.source, Asset.format, Asset.product,
                Asset.valid_until, Asset.published_at, Asset.extra)
