"""What a rep may see: approved and not expired. Every read path for reps filters through this."""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from service.store.models import Asset

# Tag statuses that describe an asset (rejected and edited-away tags do not).
ACTIVE_TAG = ("proposed", "accepted")


def rep_visible() -> ColumnElement[bool]:
    """Approved and not expired: all a rep may ever see."""
    return and_(Asset.approval_status == "approved",
                or_(Asset.valid_until.is_(None), Asset.valid_until >= date.today()))
