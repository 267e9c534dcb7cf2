"""Matching for an HCP named by id: the stages around the matcher. The profile becomes the need
(profile_need.py), resting pieces are excluded, the matcher ranks, and the results become suggestions with ids and
evidence (suggestions.py), kept so feedback can name them. The matcher itself knows nothing of profiles."""

from __future__ import annotations

from datetime import UTC, datetime

from service.core.taxonomy import Taxonomy
from service.engagement import records
from service.engagement.rules import EngagementRules
from service.engagement.serving import ServedRanker
from service.matching.learned_order import learned_order
from service.matching.matcher import Matcher
from service.matching.need import NeedError, parse_need
from service.matching.profile_need import merged, personalise
from service.matching.schemas import MatchRequest, MatchResponse, ProfileUse, TalkingPointsRequest
from service.matching.suggestions import as_suggestions
from service.store import hcps, opt_outs
from service.store.db import Database
from service.store.visibility import Scope

POOL = 20  # results the matcher lists for the learned ranker to order, before the cut to the request's k


def need_of(request: MatchRequest, taxonomy: Taxonomy) -> bool:
    """Whether the request says anything about content (HCP-only dimensions such as department do not)."""
    return not parse_need(taxonomy, request.need_tags, request.need_text).empty


class HcpMatcher:
    def __init__(self, matcher: Matcher, db: Database, rules: EngagementRules, ranker: ServedRanker) -> None:
        self.matcher, self.db, self.rules, self.ranker = matcher, db, rules, ranker

    def talking_points_request(self, request: TalkingPointsRequest, taxonomy: Taxonomy) -> TalkingPointsRequest:
        """The request with the HCP's profile as its need (need-tags given win). The writer sees need-tags only,
        never the profile's evidence, so no point can say what was tracked ("you opened…")."""
        if request.hcp_id is None or not request.personalized:
            return request
        with self.db.session() as s:
            if opt_outs.opted_out(s, [request.hcp_id]):
                return request
            profile = records.profiles(s, [request.hcp_id], taxonomy, self.rules, request.language,
                                       ranker=self.ranker)[request.hcp_id]
        need = merged(request.need_tags, [], profile, [], taxonomy)["need_tags"]
        # content dimensions only: the doctor's tier or channel habits have no place in what is said to them
        content = {d: v for d, v in need.items() if d in request.need_tags
                   or (taxonomy.has_dimension(d) and taxonomy.dimension(d).applies_to == "both")}
        return request.model_copy(update={"need_tags": content})

    def match(self, request: MatchRequest, taxonomy: Taxonomy, *, scope: Scope | None = None) -> MatchResponse:
        hcp_id = request.hcp_id
        if hcp_id is None or not request.personalized:
            return self.matcher.match(request, taxonomy, scope=scope)
        with self.db.session() as s:
            if opt_outs.opted_out(s, [hcp_id]):  # the matcher answers the non-personalised list
                return self.matcher.match(request, taxonomy, scope=scope)
            profile = records.profiles(s, [hcp_id], taxonomy, self.rules, request.language,
                                       ranker=self.ranker)[hcp_id]
            resting = hcps.resting_assets(s, hcp_id, datetime.now(UTC), self.rules.cooldown_days)
        personal = personalise(request, profile, resting, taxonomy)
        if not need_of(personal, taxonomy):
            raise NeedError("no_profile", f"Too little is known about HCP {hcp_id} yet (no engagement that says what "
                            "they read): give need_tags or need_text, or ask for a non-personalised list "
                            "(personalized: false).")
        pooled = personal.model_copy(update={"k": max(personal.k, POOL)})
        listed = self.matcher.match(pooled, taxonomy, scope=scope)
        answer = learned_order(listed, self.ranker.scores(hcp_id, [r.asset_id for r in listed.results]), request.k)
        answer = answer.model_copy(update={"k": request.k})
        if profile is not None:  # a doctor nothing is held about stays so: a rep asking records nothing
            answer, rows = as_suggestions(answer, hcp_id, profile, set(request.need_tags), request.language)
            with self.db.session() as s:
                # what was shown, so feedback can name it; deleted with the HCP (no audit entry: nothing was
                # changed that a person decided, and the entry would have to name the HCP)
                hcps.add_suggestions(s, rows)
        use = ProfileUse(hcp_id=hcp_id, events=profile.events if profile else 0,
                         need_tags={d: (v if isinstance(v, dict) else {x: 1.0 for x in v})
                                    for d, v in personal.need_tags.items() if d not in request.need_tags},
                         resting=len(personal.exclude_asset_ids) - len(request.exclude_asset_ids))
        return answer.model_copy(update={"profile": use})
