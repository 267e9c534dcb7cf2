"""The matching contract: what a caller asks for and what comes back (the API serves these models as is)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.core.fields import HcpId, RecordId, TaxonomyId, Text

Language = Literal["zh", "en"]
# why a list is or is not personalised: the HCP's needs were used; the HCP is on the opt-out list; the
# caller asked for a non-personalised list
Basis = Literal["need_tags", "opted_out", "not_requested"]

MAX_VALUE_WEIGHT = 5.0
MAX_EXCLUDED = 500
# at most 64 values per dimension; the taxonomy decides which dimensions and values exist
NeedTags = dict[TaxonomyId, Annotated[list[TaxonomyId], Field(max_length=64)]
                | Annotated[dict[TaxonomyId, Annotated[float, Field(ge=0, le=MAX_VALUE_WEIGHT)]], Field(max_length=64)]]


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    need_tags: NeedTags = Field(default_factory=dict, max_length=32, description=(
        "The HCP's needs: dimension → values, or dimension → {value: weight} (weights 0–5, default 1). "
        "Dimensions and values come from the active taxonomy (`GET /v1/taxonomy`)."),
        examples=[{"therapy_area": ["cardiovascular"], "value_driver": {"safety": 2.0}}])
    need_text: Text | None = Field(None, max_length=2000, description="A free-text need, e.g. a question the "
                                  "HCP asked. Never include personal data.")
    language: Language = Field("zh", description="The HCP's language: reasons and notices are written in it.")
    only_language: bool = Field(False, description="Return only content in `language`.")
    formats: list[TaxonomyId] = Field(default_factory=list, max_length=10, description="Preferred formats "
                               "(`format` taxonomy values or file formats such as `pptx`): ranked higher, "
                               "never required.")
    k: int = Field(10, ge=1, le=50, description="How many assets to return.")
    external_share: float | None = Field(None, ge=0, le=1, description="Share of external content (news, "
                                         "third-party) in the list; unset: the service default "
                                         "(`HCP_MATCH_EXTERNAL_SHARE`).")
    personalized: bool = Field(True, description="False: a list that uses nothing about the HCP (PIPL art. 24).")
    hcp_id: HcpId | None = Field(None, description="The CRM's pseudonymous HCP id. Checked against the opt-out "
                               "list; when personalised, the doctor's profile (their engagement and attributes) "
                               "becomes the need under any need_tags given, pieces sent within the cooldown or "
                               "dismissed are left out, and each result carries a suggestion id and its evidence.")
    exclude_asset_ids: list[RecordId] = Field(default_factory=list, max_length=MAX_EXCLUDED, description=(
        "Assets never to suggest, e.g. what the CRM sent this HCP recently."))


class ScoreParts(BaseModel):
    dense: float | None = Field(None, description="Best passage's cosine similarity to the need.")
    lexical: float | None = Field(None, description="Best passage's BM25 score for the need's words.")
    tags: float = Field(0.0, description="Weighted share of the need-tags the asset carries (0–1).")
    fused: float = Field(description="The channels fused (reciprocal-rank or weighted).")
    freshness: float = Field(1.0, description="Age decay applied to external news (1 = none).")
    format: float = Field(1.0, description="Boost for a preferred format (1 = none).")
    mismatch: float = Field(1.0, description="Penalty for content of another therapy area or disease than the "
                            "need's (the taxonomy's `mismatch_penalty`; 1 = none).")


class MatchedTag(BaseModel):
    dimension: str
    value: str
    label: str
    confidence: float
    reviewed: bool = Field(description="A reviewer accepted this tag.")


class Passage(BaseModel):
    chunk_id: str
    text: str
    page: int | None = None
    slide: int | None = None


class Alternate(BaseModel):
    """Another copy of a result (its translation, another version) folded into it as a near-duplicate."""

    asset_id: str
    title: str
    language: str
    format: str


class MatchResult(BaseModel):
    asset_id: str
    title: str
    source: str
    format: str
    language: str
    product: str | None = None
    published: date | None = None
    valid_until: date | None = None
    score: float = Field(description="The fused ranking score: orders the list, says nothing across needs.")
    relevance: float = Field(0.0, description="The calibrated probability (0–1) that this result serves the need "
                             "(0 in a non-personalised list, which uses no need).")
    strength: Literal["strong", "partial", "weak"] | None = Field(None, description="`relevance` in words a rep "
                                                                   "reads; None in a non-personalised list.")
    score_parts: ScoreParts
    matched_tags: list[MatchedTag]
    passage: Passage | None = None
    reason: str
    alternates: list[Alternate] = Field(default_factory=list, description=(
        "Near-duplicates of this result (one content family, e.g. its other-language copy) left out of the "
        "list so that they do not fill it; send whichever suits the HCP."))
    suggestion_id: str | None = Field(None, description="With the `hcp_id` of a doctor the service holds something "
                                      "about: the id feedback on this suggestion names "
                                      "(POST /v1/suggestions/{id}/feedback).")
    evidence: str | None = Field(None, description="With an `hcp_id`: why this doctor, from their engagement "
                                 "(\"opened 3 pieces on Safety in the last 30 days\"). For the rep only: never "
                                 "shown or said to the doctor.")


class NeedValue(BaseModel):
    dimension: str
    value: str
    label: str


class Uncovered(BaseModel):
    """A part of the need nothing listed covers, and why."""

    dimension: str | None = Field(description="None: the free-text need as a whole.")
    value: str | None
    label: str
    cause: Literal["scope", "language", "content", "combination"] = Field(description=(
        "`scope`: content covers it, but none within your key's products or therapy areas; `language`: only in "
        "another language than the one asked for; `content`: no approved, unexpired content covers it; "
        "`combination`: content covers it, but none that also fits the rest of the need well enough to list."))


class Coverage(BaseModel):
    status: Literal["full", "partial", "none"] = Field(description="`none`: nothing is listed; `partial`: what is "
                                                      "listed leaves parts of the need (`uncovered`) uncovered.")
    covered: list[NeedValue] = Field(default_factory=list)
    uncovered: list[Uncovered] = Field(default_factory=list)
    message: str | None = Field(None, description="What is missing, in the HCP's language, for the rep.")


class ProfileUse(BaseModel):
    hcp_id: str
    events: int = Field(description="Engagement events held for the doctor.")
    need_tags: dict[str, dict[str, float]] = Field(description="The need the profile gave (the rep's need-tags "
                                                   "replace it in the dimensions they name).")
    resting: int = Field(description="Pieces left out: sent within the cooldown, or dismissed.")


class MatchResponse(BaseModel):
    personalized: bool
    basis: Basis
    notice: str = Field(description="What the list is based on, in the HCP's language, for the rep to show.")
    k: int
    external_share_requested: float | None
    external_share: float = Field(description="Share of external items in the returned list.")
    fusion: str
    min_relevance: float = Field(description="The floor: results below this relevance are not listed.")
    coverage: Coverage | None = Field(None, description="What of the need the listed results cover (None in a "
                                      "non-personalised list).")
    results: list[MatchResult]
    profile: ProfileUse | None = Field(None, description="With an `hcp_id`: what of the doctor's profile became "
                                       "the need, and how many pieces were left out as sent or dismissed.")
    partial_results: list[MatchResult] = Field(default_factory=list, description=(
        "When the need is not fully served: the closest results below the floor that cover part of it (never "
        "another therapy area's), for the rep to judge; never pre-selected, never planned."))


class TalkingPointsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    need_tags: NeedTags = Field(default_factory=dict, max_length=32, description="As for `POST /v1/match`.")
    need_text: Text | None = Field(None, max_length=2000)
    language: Language = Field("zh", description="The language the points are written in.")
    asset_ids: list[RecordId] | None = Field(None, min_length=1, max_length=10, description=(
        "Draw on these assets (e.g. from a match the rep chose); unset: the top matches for the need."))
    n: int = Field(3, ge=3, le=5, description="How many points.")
    personalized: bool = True
    hcp_id: HcpId | None = Field(None, description="Checked against the opt-out list; when personalised, the "
                               "doctor's profile becomes the need under any need_tags given. Only the need reaches "
                               "the writer: nothing of what was tracked about the doctor is ever in the points.")


class Citation(BaseModel):
    asset_id: str
    title: str
    quote: str = Field(description="Words from the asset's current approved text, verified to be there.")
    chunk_id: str
    page: int | None = None
    slide: int | None = None


class TalkingPoint(BaseModel):
    text: str
    citations: list[Citation] = Field(min_length=1)
    method: Literal["llm", "extractive"] = Field(description="`extractive`: a source sentence quoted as is, "
                                                 "because no LLM point was available.")


class DroppedPoint(BaseModel):
    """An LLM point that did not reach the rep, and the check it failed."""

    text: str
    reason: str = Field(description="A key of `dropped`: `contradicts_source`, `unsupported_number`, `off_label`, "
                        "`unsupported_superlative`, `unsupported_claim`, ...")
    claim: str | None = Field(None, description="The words that failed (a number, a comparison, a superlative).")
    quote: str | None = Field(None, description="The cited source sentence it failed on, where there is one.")
    detail: str | None = None


class TalkingPointsResponse(BaseModel):
    points: list[TalkingPoint]
    extractive: bool = Field(description="At least one point is a quoted sentence rather than LLM-written.")
    language: Language
    personalized: bool
    basis: Basis
    notice: str
    model: str | None = None
    prompt_version: str
    llm_error: str | None = Field(None, description="Why no LLM points came back (e.g. `llm_timeout`).")
    dropped: dict[str, int] = Field(default_factory=dict, description="LLM points dropped, by reason "
                                    "(`invalid_citation`, `tracking_language`, `unsupported_number`, "
                                    "`unsupported_claim`, `contradicts_source`, `off_label`, "
                                    "`unsupported_superlative`, `mixed_sources`, `wrong_language`, `duplicate`; in "
                                    "a follow-up also `no_longer_visible`).")
    dropped_points: list[DroppedPoint] = Field(default_factory=list, description=(
        "Each dropped LLM point with the reason and the source sentence it failed on."))
    followup: str | None = Field(None, description="Set when the LLM missed the request's deadline and goes on "
                                 "drafting: poll `GET /v1/talking-points/{followup}` for its points.")


class TalkingPointsFollowup(BaseModel):
    id: str
    status: Literal["pending", "ready", "failed"] = Field(
        description="`pending`: still drafting, ask again in a few seconds; `ready`: `result` holds the points; "
        "`failed`: no LLM points will come (`error` says why), keep the extractive ones.")
    result: TalkingPointsResponse | None = None
    error: str | None = None


# --- panel plans ------------------------------------------------------------------------------------
MAX_PANEL = 500
ChannelBasis = Literal["preference", "preference_only", "format"]


class PanelHcp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hcp_id: HcpId = Field(description="The CRM's pseudonymous HCP id (unique in the plan); checked against the "
                          "opt-out list, never stored.")
    need_tags: NeedTags = Field(default_factory=dict, max_length=32, description=(
        "As for `POST /v1/match`; may also carry the HCP-only dimensions (`channel_preference`, "
        "`potential_tier`), which set the channel and the priority."))
    need_text: Text | None = Field(None, max_length=2000)
    language: Language = "zh"
    only_language: bool = False
    formats: list[TaxonomyId] = Field(default_factory=list, max_length=10)
    exclude_asset_ids: list[RecordId] = Field(default_factory=list, max_length=MAX_EXCLUDED, description=(
        "What the CRM sent this HCP recently: never suggested again."))
    k: int = Field(3, ge=1, le=20, description="How many items to suggest.")
    personalized: bool = True


class PanelPlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hcps: list[PanelHcp] = Field(min_length=1, max_length=MAX_PANEL, description=(
        f"The rep's panel: at most {MAX_PANEL} HCPs, each id once."))
    external_share: float | None = Field(None, ge=0, le=1, description="As for `POST /v1/match`, for every HCP.")


class Driver(BaseModel):
    driver: str = Field(description="`relevance`, a need dimension (`potential_tier`, `adoption_stage`), or "
                        "`not_personalised`.")
    value: str | float | None = Field(description="The HCP's value of the dimension, or the first suggestion's "
                                      "calibrated relevance (0 when nothing fits).")
    score: float = Field(description="The driver's score, 0–1.")
    weight: float
    contribution: float = Field(description="weight × score: its share of the priority.")


class Suggestion(MatchResult):
    channel: str = Field(description="How to send it: a `channel_preference` value.")
    channel_basis: ChannelBasis = Field(description=(
        "`preference`: the HCP's most wanted channel that carries this format; `preference_only`: none of the "
        "HCP's channels carries it, the most wanted is used anyway; `format`: no preference known (or usable), "
        "the format's default channel (taxonomy/panel_rules.yaml)."))


class HcpPlan(BaseModel):
    hcp_id: str
    personalized: bool
    basis: Basis
    notice: str
    channel: str | None = Field(description="The first suggestion's channel.")
    coverage: Literal["full", "partial", "none"] | None = Field(description=(
        "What of the HCP's need the suggestions cover (`POST /v1/match`'s `coverage.status`): `none`: nothing in "
        "scope fits, nothing is suggested; None: a non-personalised plan."))
    coverage_note: str | None = Field(None, description="What is missing, in the HCP's language.")
    uncovered: list[Uncovered] = Field(default_factory=list)
    priority: float = Field(description="0–1, higher first; the drivers say why.")
    priority_rank: int = Field(description="1 = the HCP to act on first in this plan.")
    drivers: list[Driver]
    expiry: date | None = Field(description="The earliest `valid_until` of the suggested content: the plan "
                                "must not be acted on after it. None: nothing suggested expires.")
    suggestions: list[Suggestion]


class PanelPlanResponse(BaseModel):
    hcps: list[HcpPlan] = Field(description="In the request's order.")
    opted_out: int = Field(description="HCPs given the non-personalised list because they opted out.")
    distinct_needs: int = Field(description="Distinct needs retrieved for (HCPs with one need share the work).")
