"""Stored evaluation reports: the JSON is kept; the HTML is rendered from it when asked for."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.reports.schema import EvalReport, EvalReportSummary
from service.store import audit
from service.store.models import EvalReportRow


def save_report(s: Session, report: EvalReport, actor: str, role: str,
                baseline_id: str | None = None) -> EvalReport:
    """Add ``report`` under a new id (the stored JSON carries it) to ``s``, with its audit entry, so both commit
    together."""
    report = report.model_copy(update={"id": f"rep_{secrets.token_hex(8)}"})
    assert report.id is not None
    s.add(EvalReportRow(id=report.id, title=report.title, source=report.run.source, created_by=actor,
                        created_at=report.created_at, data=report.model_dump(mode="json")))
    audit.record(s, actor, role, "eval_report.create", "eval_report", report.id, None,
                 {"title": report.title, "baseline_id": baseline_id})
    return report


def get_report(s: Session, report_id: str) -> EvalReport | None:
    row = s.get(EvalReportRow, report_id)
    return EvalReport.model_validate(row.data) if row is not None else None


def list_reports(s: Session, limit: int = 50) -> list[EvalReportSummary]:
    out = []
    for row in s.scalars(select(EvalReportRow).order_by(EvalReportRow.created_at.desc()).limit(limit)):
        r = EvalReport.model_validate(row.data)
        out.append(EvalReportSummary(id=row.id, title=row.title, source=row.source, created_at=row.created_at,
                                     created_by=row.created_by, items=r.run.items, predictions=r.run.predictions,
                                     f1=r.overall.f1, macro_f1_mean=r.overall.macro_f1_mean, ece=r.reliability.ece))
    return out
