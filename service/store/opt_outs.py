"""The PIPL opt-out list: HCPs who declined personalised recommendations. Each change is audited in the caller's
session, so the list and its log commit together."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store import audit, hcps
from service.store.models import HcpOptOut


def opted_out(s: Session, hcp_ids: Iterable[str]) -> set[str]:
    """Which of these HCPs are on the list (one query for a whole panel)."""
    ids = sorted({h.strip() for h in hcp_ids})
    if not ids:
        return set()
    return set(s.scalars(select(HcpOptOut.hcp_id).where(HcpOptOut.hcp_id.in_(ids))))


def everyone(s: Session) -> set[str]:
    """The whole list (an import of many batches reads it once: it is short)."""
    return set(s.scalars(select(HcpOptOut.hcp_id)))


def opt_out(s: Session, hcp_id: str, actor: str, role: str) -> None:
    """Put the HCP on the list and erase what was held and derived about them (events, attributes,
    suggestions), in this one transaction (idempotent: a second call records nothing)."""
    if s.get(HcpOptOut, hcp_id) is None:
        s.add(HcpOptOut(hcp_id=hcp_id, recorded_by=actor))
        erased = hcps.erase_rows(s, hcp_id)
        audit.record(s, actor, role, "hcp.opt_out", "hcp", hcp_id, None, {"opted_out": True, "erased": erased})


def opt_in(s: Session, hcp_id: str, actor: str, role: str) -> bool:
    """Take the HCP off the list; False when they were not on it."""
    row = s.get(HcpOptOut, hcp_id)
    if row is None:
        return False
    s.delete(row)
    audit.record(s, actor, role, "hcp.opt_in", "hcp", hcp_id, {"opted_out": True}, {"opted_out": False})
    return True
