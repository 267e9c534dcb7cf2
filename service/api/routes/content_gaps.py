"""The content-gap report: what reps asked for that nothing in reach served, for content teams and marketing."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from service.api.auth import require
from service.api.deps import ComponentsDep, SessionDep
from service.auth.keys import Principal
from service.matching.content_gaps import ContentGaps, content_gaps, gaps_csv

router = APIRouter(prefix="/v1/reports", tags=["reports"])

GAP_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "The report; as CSV (UTF-8 with BOM, for spreadsheets) with `format=csv` or "
          "`Accept: text/csv`."}}


@router.get("/content-gaps", response_model=ContentGaps, responses=GAP_RESPONSES,
            summary="Needs asked for that nothing in scope served, and needs served by one expiring asset")
def read_content_gaps(request: Request, c: ComponentsDep, s: SessionDep,
                      _: Annotated[Principal, Depends(require("gaps:read"))],
                      days: Annotated[int, Query(ge=1, le=366, description="The window, in days.")] = 30,
                      lang: Annotated[Literal["zh", "en"], Query(description="The labels' language.")] = "zh",
                      format: Annotated[Literal["json", "csv"] | None, Query()] = None,
                      ) -> ContentGaps | Response:
    c.demand.flush()  # this process's counts so far
    taxonomy = c.tagger.taxonomy
    report = content_gaps(s, taxonomy, c.matcher.catalog.current(taxonomy), days, lang)
    if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
        return Response(gaps_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="content-gaps.csv"'})
    return report
