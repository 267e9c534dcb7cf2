"""What the service holds about HCPs (the engagement stage's records): their events, their static attributes and
the suggestions made to them. Every row is keyed by the CRM's pseudonymous id; an opt-out or an erasure deletes
all three (service/store/hcps.py::erase), and nothing else in the database names an HCP."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.store.models import Base, UTCDateTime, utcnow


class HcpEvent(Base):
    """One engagement event: a rep sent a piece, a doctor opened, viewed… or dismissed it. `id` is the sender's
    own id, so the same event sent twice is stored once."""

    __tablename__ = "hcp_events"
    __table_args__ = (Index("ix_hcp_events_hcp_time", "hcp_id", "occurred_at"),
                      Index("ix_hcp_events_time", "occurred_at"))

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hcp_id: Mapped[str] = mapped_column(String(128))
    asset_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(64))
    dwell_seconds: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    suggestion_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))  # a dismissal's reason (taxonomy/engagement.yaml)


class HcpRecord(Base):
    """An HCP's static attributes (department, title, hospital tier, any `applies_to: hcp|both` dimension)."""

    __tablename__ = "hcp_records"

    hcp_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    attributes: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class HcpSuggestion(Base):
    """A suggestion shown to a rep for an HCP: the id their feedback names."""

    __tablename__ = "hcp_suggestions"
    __table_args__ = (Index("ix_hcp_suggestions_hcp", "hcp_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hcp_id: Mapped[str] = mapped_column(String(128))
    asset_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
