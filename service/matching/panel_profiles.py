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

POOL = 10  # suggestions the planner lists per HCP for the learned ranker to order, before the cut to the HCP's k


class HcpPanelPlanner:
    def __init__(self, planner: PanelPlanner, db: Database, rules: EngagementRules, ranker: ServedRanker) -> None:
        self.planner, self.db, self.rules, self.ranker = planner, db, rules, ranker

    def plan(self, body: PanelPlanRequest, taxonomy: Taxonomy, scope: Scope | None = None) -> PanelPlanResponse:
        profiles: dict[str, Profile | None] = {}
        now = datetime.now(UTC)
        with self.db.session() as s:
            blocked = opt_outs.opted_out(s, [h.hcp_id for h in body.hcps])
            rows = []
            for hcp in body.hcps:
                if not hcp.personalized or hcp.hcp_id in blocked:
                    rows.append(hcp)
                    continue
                profile = profiles[hcp.hcp_id] = records.profile(s, hcp.hcp_id, taxonomy, self.rules, hcp.language,
                                                                 now, ranker=self.ranker)
                resting = hcps.resting_assets(s, hcp.hcp_id, now, self.rules.cooldown_days)
                update = merged(hcp.need_tags, hcp.exclude_asset_ids, profile, resting, taxonomy)
                rows.append(hcp.model_copy(update={**update, "k": max(hcp.k, POOL)}))
        plan = self.planner.plan(body.model_copy(update={"hcps": rows}), taxonomy, scope)
        shown = []
        for asked, row in zip(body.hcps, plan.hcps, strict=True):
            if profiles.get(row.hcp_id) is None:  # not personalised, or nothing held about them: nothing kept
                continue
            suggestions = ordered(row.suggestions, self.ranker.scores(row.hcp_id))[:asked.k]
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
