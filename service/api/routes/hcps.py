"""Engagement events, HCP records and profiles, feedback on suggestions, and erasure (PIPL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.auth import require
from service.api.deps import ComponentsDep, SessionDep
from service.api.errors import ApiError
from service.api.params import HcpIdPath, RecordIdPath
from service.auth.keys import Principal
from service.core.fields import TaxonomyId
from service.engagement import records
from service.engagement.events import EventBatch, EventIn, pseudonymous_problem
from service.engagement.profile import Profile, nothing_held
from service.store import audit, hcps, opt_outs

router = APIRouter(tags=["hcps"])

Writer = Annotated[Principal, Depends(require("events:write"))]
Reader = Annotated[Principal, Depends(require("hcp:read"))]
RecordKeeper = Annotated[Principal, Depends(require("hcp:write"))]
Eraser = Annotated[Principal, Depends(require("hcp:erase"))]


class EventsOut(BaseModel):
    received: int
    stored: int = Field(description="New events.")
    duplicates: int = Field(description="Events whose id was already stored (or repeated in the batch).")
    opted_out: int = Field(description="Events of opted-out HCPs: not recorded.")
    expired: int = Field(description="Events older than HCP_EVENT_RETENTION_DAYS: not recorded.")


class HcpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: dict[TaxonomyId, Annotated[list[TaxonomyId], Field(max_length=16)]] = Field(
        max_length=32, description="Dimension → values: department, title, hospital_tier and any dimension "
        "with applies_to hcp or both.", examples=[{"department": ["cardiology"], "title": ["chief"]}])


class HcpOut(BaseModel):
    hcp_id: str
    attributes: dict[str, list[str]]
    created: bool


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["executed", "completed", "dismissed"] = Field(description="executed: the rep acted on it "
                                                                   "(sent it); completed: done; dismissed: not "
                                                                   "for this doctor (give a reason).")
    reason: TaxonomyId | None = Field(None, description="A dismissal's reason (GET /v1/suggestions/reasons).")
    channel: TaxonomyId | None = Field(None, description="How it was sent (channel_preference value).")


class FeedbackOut(BaseModel):
    suggestion_id: str
    outcome: str
    recorded: bool = Field(description="False when the same feedback was already recorded.")


class Reason(BaseModel):
    id: str
    label: str


def _bad_rows(rejected: list[Any]) -> ApiError:
    """Every bad event, by its index in `events` and its field; the batch is recorded whole or not at all."""
    first = rejected[0]
    return ApiError(422, "invalid_events", f"events[{first.row}].{first.field}: {first.message}. Nothing was "
                    "recorded.", {"rejected": [r.as_dict() for r in rejected]})


@router.post("/v1/events", response_model=EventsOut, summary="Record engagement events (a batch of up to 10,000)",
             description="Recorded whole or not at all: a bad event answers 422 `invalid_events`, each bad one in "
             "`details.rejected` by its index in `events` (`row`) and its `field`. An id already stored is counted "
             "in `duplicates`; events of opted-out HCPs and events older than HCP_EVENT_RETENTION_DAYS are not "
             "recorded.")
def post_events(body: EventBatch, c: ComponentsDep, s: SessionDep, principal: Writer) -> EventsOut:
    c.disk.require()
    good, bad = records.check_events(s, list(enumerate(body.events)), c.tagger.taxonomy, c.engagement_rules)
    if bad:
        raise _bad_rows(bad)
    out = records.record_events(s, good, c.settings.event_retention_days)
    audit.record(s, principal.key_id, principal.role, "events.record", "events", None, None,
                 {"received": out.received, "stored": out.stored})  # counts only: no HCP, no asset
    return EventsOut(received=out.received, stored=out.stored, duplicates=out.duplicates, opted_out=out.opted_out,
                     expired=out.expired)


def _hcp_id(hcp_id: str) -> str:
    why = pseudonymous_problem(hcp_id)
    if why:
        raise ApiError(422, "not_pseudonymous", f"The HCP id must be pseudonymous: this one {why}.")
    return hcp_id


@router.put("/v1/hcps/{hcp_id}", response_model=HcpOut, summary="Set an HCP's static attributes (from the CRM)")
def put_hcp(hcp_id: HcpIdPath, body: HcpIn, c: ComponentsDep, s: SessionDep, principal: RecordKeeper) -> HcpOut:
    attributes = records.check_attributes(body.attributes, c.tagger.taxonomy)
    if opt_outs.opted_out(s, [_hcp_id(hcp_id)]):
        raise ApiError(409, "opted_out", f"HCP {hcp_id} opted out: nothing about them is recorded.")
    created = hcps.put_record(s, hcp_id, attributes, principal.key_id, principal.role)
    return HcpOut(hcp_id=hcp_id, attributes=attributes, created=created)


@router.get("/v1/hcps/{hcp_id}/profile", response_model=Profile,
            summary="What is held about an HCP and what was derived from it (the PIPL access right)",
            description="An HCP nothing is held about answers `held: false` and empty lists (a rep typing a new "
            "doctor's id is not an error).")
def read_profile(hcp_id: HcpIdPath, c: ComponentsDep, s: SessionDep, _: Reader,
                 language: Annotated[Literal["zh", "en"], Query(description="Labels in this language.")] = "en"
                 ) -> Profile:
    found = records.profile(s, hcp_id, c.tagger.taxonomy, c.engagement_rules, language, ranker=c.ranker)
    return found if found is not None else nothing_held(hcp_id)


@router.delete("/v1/hcps/{hcp_id}", status_code=204, response_class=Response,
               summary="Erase everything held about an HCP: events, attributes, suggestions")
def erase_hcp(hcp_id: HcpIdPath, s: SessionDep, principal: Eraser) -> Response:
    if not hcps.holds_anything(s, hcp_id):
        raise ApiError(404, "hcp_not_found", f"Nothing is held about HCP {hcp_id}.", {"hcp_id": hcp_id})
    hcps.erase(s, hcp_id, principal.key_id, principal.role, "hcp.erase")
    return Response(status_code=204)


@router.get("/v1/suggestions/reasons", response_model=list[Reason], summary="The reasons a dismissal may give")
def dismiss_reasons(c: ComponentsDep, _: Writer,
                    language: Annotated[Literal["zh", "en"], Query()] = "en") -> list[Reason]:
    return [Reason(id=k, label=v.get(language) or v.get("en") or k)
            for k, v in c.engagement_rules.dismiss_reasons.items()]


@router.post("/v1/suggestions/{suggestion_id}/feedback", response_model=FeedbackOut,
             summary="What the rep did with a suggestion: executed, completed or dismissed (with a reason)")
def feedback(suggestion_id: RecordIdPath, body: FeedbackIn, c: ComponentsDep, s: SessionDep,
             principal: Writer) -> FeedbackOut:
    found = hcps.read_suggestion(s, suggestion_id)
    if found is None:
        raise ApiError(404, "suggestion_not_found", "No suggestion has this id (or its HCP was erased).",
                       {"id": suggestion_id})
    if body.outcome == "dismissed" and body.reason is None:
        raise ApiError(422, "reason_required", "A dismissal needs a reason (GET /v1/suggestions/reasons).")
    event = EventIn(id=f"feedback-{suggestion_id}-{body.outcome}", hcp_id=found.hcp_id, asset_id=found.asset_id,
                    action="dismissed" if body.outcome == "dismissed" else "sent", channel=body.channel,
                    occurred_at=datetime.now(UTC), suggestion_id=suggestion_id, reason=body.reason)
    good, bad = records.check_events(s, [(0, event)], c.tagger.taxonomy, c.engagement_rules)
    if bad:
        raise ApiError(422, f"invalid_{bad[0].field}", bad[0].message)
    out = records.record_events(s, good, c.settings.event_retention_days)
    audit.record(s, principal.key_id, principal.role, "suggestion.feedback", "suggestion", suggestion_id, None,
                 {"outcome": body.outcome, "reason": body.reason})
    return FeedbackOut(suggestion_id=suggestion_id, outcome=body.outcome, recorded=out.stored > 0)
