"""Panel plans by HCP id: the stages around the panel planner. Before it, each personalised HCP's profile becomes
their need (under whatever need-tags the panel gives) and their resting pieces are excluded; after it, the learned
ranker orders each HCP's suggestions, which get ids and evidence. A panel may so hold ids only. The planner itself
knows nothing of profiles."""

from __future__ import annotations

from datetime import UTC, datetime

from service.core.taxonomy import Taxonomy
from service.engagement import records
from service.engagement.profile import Profile
from service.engagement.rules import EngagementRules
from service.engagement.serving import ServedRanker
from service.matching.learned_order import ordered
from service.matching.panels import PanelPlanner
from service.matching.profile_need import merged
from service.matching.schemas import PanelPlanRequest, PanelPlanResponse
from service.matching.suggestions import evidence, new_id
from service.store import hcps, opt_outs
from service.store.db import Database
from service.store.visibility import Scope

POOL = 6  # suggestions the planner lists per HCP (at least) for the learned ranker to order, before the cut to k


class HcpPanelPlanner:
    def __init__(self, planner: PanelPlanner, db: Database, rules: EngagementRules, ranker: ServedRanker) -> None:
        self.planner, self.db, self.rules, self.ranker = planner, db, rules, ranker

    def plan(self, body: PanelPlanRequest, taxonomy: Taxonomy, scope: Scope | None = None) -> PanelPlanResponse:
        now = datetime.now(UTC)
        with self.db.session() as s:
            blocked = opt_outs.opted_out(s, [h.hcp_id for h in body.hcps])
            personal = [h for h in body.hcps if h.personalized and h.hcp_id not in blocked]
            profiles: dict[str, Profile | None] = {}
            for language in {h.language for h in personal}:  # labels in each HCP's language
                ids = [h.hcp_id for h in personal if h.language == language]
                profiles.update(records.profiles(s, ids, taxonomy, self.rules, language, now, ranker=self.ranker))
            resting = hcps.resting_of_many(s, [h.hcp_id for h in personal], now, self.rules.cooldown_days)
        rows = []
        for hcp in body.hcps:
            if hcp.hcp_id not in profiles:
                rows.append(hcp)
                continue
            update = merged(hcp.need_tags, hcp.exclude_asset_ids, profiles[hcp.hcp_id], resting[hcp.hcp_id],
                            taxonomy)
            rows.append(hcp.model_copy(update={**update, "k": max(hcp.k, POOL)}))
        plan = self.planner.plan(body.model_copy(update={"hcps": rows}), taxonomy, scope)
        shown = []
        scores = self.ranker.scores_many({row.hcp_id: [x.asset_id for x in row.suggestions] for row in plan.hcps
                                          if profiles.get(row.hcp_id) is not None})
        for asked, row in zip(body.hcps, plan.hcps, strict=True):
            if profiles.get(row.hcp_id) is None:  # not personalised, or nothing held about them: nothing kept
                continue
            suggestions = ordered(row.suggestions, scores.get(row.hcp_id))[:asked.k]
            for item in suggestions:
                item.suggestion_id = new_id()
                item.evidence = evidence(item, profiles[row.hcp_id], set(asked.need_tags), asked.language)
                shown.append((item.suggestion_id, row.hcp_id, item.asset_id))
            expiries = [x.valid_until for x in suggestions if x.valid_until is not None]
            row.suggestions = suggestions
            row.channel = suggestions[0].channel if suggestions else None
            row.expiry = min(expiries) if expiries else None
        with self.db.session() as s:
            hcps.add_suggestions(s, shown)
        return plan
