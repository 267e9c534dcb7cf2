"""Tagging evaluation reports for marketing: made from the reviewers' decisions, kept as JSON, shown as HTML."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.auth import require
from service.api.deps import ComponentsDep, SessionDep
from service.api.errors import ApiError
from service.auth.keys import Principal
from service.core.fields import RECORD_ID_PATTERN, Text
from service.reports.build import build_report
from service.reports.render import REPORT_CSP, render_html
from service.reports.runs import run_from_reviews
from service.reports.schema import EvalReport, EvalReportSummary
from service.reports.stored import get_report, list_reports, save_report

router = APIRouter(prefix="/v1/eval/reports", tags=["eval"])

ReportId = Annotated[str, Path(min_length=1, max_length=40, pattern=RECORD_ID_PATTERN)]


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Text | None = Field(None, min_length=1, max_length=200)
    baseline_id: str | None = Field(None, min_length=1, max_length=40, pattern=RECORD_ID_PATTERN,
                                    description="A stored report to compare with (run A; this report is run B).")
    threshold: float = Field(0.8, ge=0.0, le=1.0, description="The auto-accept threshold to cost out.")


@router.post("", response_model=EvalReport, status_code=201,
             summary="Make a tagging-accuracy report from the reviewed tags (optionally against a baseline report)")
def create_report(body: ReportRequest, c: ComponentsDep, s: SessionDep,
                  principal: Annotated[Principal, Depends(require("eval:write"))]) -> EvalReport:
    baseline = None
    if body.baseline_id is not None:
        baseline = get_report(s, body.baseline_id)
        if baseline is None:
            raise ApiError(404, "report_not_found", f"No report {body.baseline_id!r} to compare with.")
    run = run_from_reviews(s, c.tagger.taxonomy)
    if not run.gold:
        raise ApiError(409, "no_reviewed_tags", "No tag has been reviewed yet: review some tags first, then "
                       "make a report from the decisions.")
    report = build_report(c.tagger.taxonomy, run, title=body.title, threshold=body.threshold, baseline=baseline,
                          baseline_id=body.baseline_id)
    return save_report(s, report, principal.key_id, principal.role, body.baseline_id)


@router.get("", response_model=list[EvalReportSummary], summary="Stored reports, newest first")
def read_reports(s: SessionDep, _: Annotated[Principal, Depends(require("eval:read"))],
                 limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[EvalReportSummary]:
    return list_reports(s, limit)


def _wants_html(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


@router.get("/{report_id}", response_model=EvalReport, summary="One report: JSON, or the HTML page",
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                             "description": "The report (JSON by default; HTML with `format=html` or "
                                            "`Accept: text/html`)."}})
def read_report(report_id: ReportId, request: Request, s: SessionDep,
                _: Annotated[Principal, Depends(require("eval:read"))],
                format: Literal["json", "html"] | None = None,
                lang: Literal["en", "zh"] = "en") -> HTMLResponse | JSONResponse:
    report = get_report(s, report_id)
    if report is None:
        raise ApiError(404, "report_not_found", f"No report {report_id!r}.")
    if not _wants_html(request, format):
        return JSONResponse(report.model_dump(mode="json"))
    return HTMLResponse(render_html(report, lang), headers={
        "Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
