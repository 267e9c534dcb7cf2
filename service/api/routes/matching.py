"""Matching and talking points for reps, and the PIPL opt-out list."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from service.api.auth import require, scope_of
from service.api.deps import ComponentsDep, SessionDep
from service.api.errors import ApiError
from service.api.params import HcpIdPath, RecordIdPath
from service.auth.keys import Principal
from service.core.fields import HcpId
from service.matching.need import NeedError, parse_need
from service.matching.panel_csv import read_panel_csv
from service.matching.panels import plan_csv
from service.matching.schemas import (
    MatchRequest,
    MatchResponse,
    PanelPlanRequest,
    PanelPlanResponse,
    TalkingPointsFollowup,
    TalkingPointsRequest,
    TalkingPointsResponse,
)
from service.matching.talking_points import AssetsNotVisible
from service.runtime import Components
from service.store import audit, opt_outs

router = APIRouter(tags=["matching"])

class OptOutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hcp_id: HcpId = Field(description="The CRM's pseudonymous HCP id.")


class OptOutOut(BaseModel):
    hcp_id: str
    opted_out: bool


def _need_error(err: NeedError) -> ApiError:
    return ApiError(422, err.code, err.message, err.details)


Rep = Annotated[Principal, Depends(require("match"))]
OptOutKeeper = Annotated[Principal, Depends(require("hcp:opt_out"))]


@router.post("/v1/match", response_model=MatchResponse, summary="Approved content for an HCP's need")
async def match(body: MatchRequest, c: ComponentsDep, principal: Rep, request: Request) -> MatchResponse:
    # ranked on the match threads (HCP_MATCH_THREADS), not the shared pool: see Settings.match_threads
    scope = scope_of(principal, c)
    try:
        ranked = partial(c.hcp_matcher.match, body, c.tagger.taxonomy, scope=scope)
        answer = await to_thread.run_sync(ranked, limiter=match_limiter(request))
    except NeedError as err:
        raise _need_error(err) from err
    if answer.coverage is not None:  # counted for the content-gap report: the need's values, never the HCP
        need = parse_need(c.tagger.taxonomy, body.need_tags, body.need_text)
        c.demand.note(need, answer.coverage.status, answer.coverage.uncovered, body.language, scope, "match")
    return answer


def match_limiter(request: Request) -> CapacityLimiter:
    """The app's limiter of concurrent rankings, made on first use (it belongs to the running event loop)."""
    state = request.app.state
    limiter: CapacityLimiter | None = getattr(state, "match_limiter", None)
    if limiter is None:
        limiter = state.match_limiter = CapacityLimiter(state.components.settings.effective_match_threads)
    return limiter


def _plan(c: Components, s: Session, principal: Principal, body: PanelPlanRequest) -> PanelPlanResponse:
    try:
        planner = c.hcp_panels
    except ValueError as err:
        raise ApiError(409, "panel_rules_mismatch", f"The panel rules do not fit the active taxonomy: {err}. Fix "
                       "the rules file (HCP_PANEL_RULES_PATH) or the taxonomy.") from err
    scope = scope_of(principal, c)
    try:
        plan = planner.plan(body, c.tagger.taxonomy, scope=scope)
    except NeedError as err:
        raise _need_error(err) from err
    for hcp, row in zip(body.hcps, plan.hcps, strict=True):  # the content-gap report's counts, never the HCP
        c.demand.note(parse_need(c.tagger.taxonomy, hcp.need_tags, hcp.need_text), row.coverage, row.uncovered,
                      hcp.language, scope, "panel")
    # the plan is audited by its size alone: no HCP id and no need is stored (data minimisation, as /match)
    audit.record(s, principal.key_id, principal.role, "panel.plan", "panel", None, None,
                 {"hcps": len(plan.hcps), "opted_out": plan.opted_out, "distinct_needs": plan.distinct_needs,
                  "suggestions": sum(len(h.suggestions) for h in plan.hcps)})
    return plan


PLAN_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "The plan; as CSV (a row per suggestion) with `Accept: text/csv`."}}
MAX_PANEL_CSV_BYTES = 2 * 1024 * 1024


def _answer(plan: PanelPlanResponse, request: Request) -> PanelPlanResponse | Response:
    if "text/csv" in request.headers.get("accept", ""):
        return Response(plan_csv(plan), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="panel-plan.csv"'})
    return plan


@router.post("/v1/panels/plan", response_model=PanelPlanResponse, summary="What to send every HCP of a panel, "
             "by which channel, with what priority", responses=PLAN_RESPONSES)
def plan_panel(body: PanelPlanRequest, request: Request, c: ComponentsDep, s: SessionDep,
               principal: Rep) -> PanelPlanResponse | Response:
    return _answer(_plan(c, s, principal, body), request)


@router.post("/v1/panels/plan/csv", response_model=PanelPlanResponse, summary="The plan for a panel uploaded as "
             "CSV (a row per HCP, a column per need dimension)", responses=PLAN_RESPONSES,
             description="Columns: `hcp_id`; optionally `language`, `need_text`, `k`, `personalized`, "
             "`only_language`, `formats`, `exclude_asset_ids`; and any HCP dimension of the taxonomy by id, its "
             "values separated by `;` (each optionally `value:weight`). Errors name the row and column.")
def plan_panel_csv(panel: Annotated[UploadFile, File(description="The panel, UTF-8 CSV.")], request: Request,
                   c: ComponentsDep, s: SessionDep, principal: Rep) -> PanelPlanResponse | Response:
    data = panel.file.read(MAX_PANEL_CSV_BYTES + 1)
    if len(data) > MAX_PANEL_CSV_BYTES:
        raise ApiError(413, "file_too_large", f"The panel is larger than {MAX_PANEL_CSV_BYTES:,} bytes; a plan "
                       "takes at most 500 HCPs.", {"limit_bytes": MAX_PANEL_CSV_BYTES})
    try:
        body = read_panel_csv(data, c.tagger.taxonomy)
    except NeedError as err:
        raise _need_error(err) from err
    return _answer(_plan(c, s, principal, body), request)


@router.post("/v1/talking-points", response_model=TalkingPointsResponse,
             summary="Talking points citing approved content")
def talking_points(body: TalkingPointsRequest, c: ComponentsDep, principal: Rep) -> TalkingPointsResponse:
    try:
        request = c.hcp_matcher.talking_points_request(body, c.tagger.taxonomy)
        return c.talking_points.write(request, c.tagger.taxonomy, scope=scope_of(principal, c), owner=principal.key_id)
    except NeedError as err:
        raise _need_error(err) from err
    except AssetsNotVisible as err:
        raise ApiError(404, "asset_not_found", "No approved, unexpired asset you may be shown has these ids.",
                       {"asset_ids": err.asset_ids}) from err


@router.get("/v1/talking-points/{followup_id}", response_model=TalkingPointsFollowup,
            summary="The LLM's talking points for a request that answered before they were ready")
def talking_points_followup(followup_id: RecordIdPath, c: ComponentsDep, principal: Rep) -> TalkingPointsFollowup:
    found = c.talking_points.followup(followup_id, principal.key_id, scope_of(principal, c))
    if found is None:
        raise ApiError(404, "followup_not_found", "No talking-point follow-up with this id was asked for with "
                       "your key, or it has expired.", {"id": followup_id})
    return found


@router.post("/v1/opt-outs", response_model=OptOutOut, status_code=201,
             summary="Record that an HCP declines personalised recommendations")
def opt_out(body: OptOutRequest, s: SessionDep, principal: OptOutKeeper) -> OptOutOut:
    opt_outs.opt_out(s, body.hcp_id, principal.key_id, principal.role)
    return OptOutOut(hcp_id=body.hcp_id, opted_out=True)


@router.get("/v1/opt-outs/{hcp_id}", response_model=OptOutOut, summary="Whether an HCP has opted out")
def read_opt_out(hcp_id: HcpIdPath, s: SessionDep, _: OptOutKeeper) -> OptOutOut:
    return OptOutOut(hcp_id=hcp_id, opted_out=bool(opt_outs.opted_out(s, [hcp_id])))


@router.delete("/v1/opt-outs/{hcp_id}", status_code=204, response_class=Response,
               summary="Lift an HCP's opt-out (they asked for personalised recommendations again)")
def opt_in(hcp_id: HcpIdPath, s: SessionDep, principal: OptOutKeeper) -> Response:
    if not opt_outs.opt_in(s, hcp_id, principal.key_id, principal.role):
        raise ApiError(404, "not_opted_out", f"HCP {hcp_id} is not on the opt-out list.")
    return Response(status_code=204)
