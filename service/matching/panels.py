"""A rep's whole panel planned in one call: for every HCP what to send (the matcher's ranking, less what the
CRM sent recently), by which channel and with what priority (taxonomy/panel_rules.yaml).

Shared work is done once per plan: the opt-out list is read in one query, HCPs with the same need share one
retrieval (and so one need vector), and the non-personalised list is loaded once per language filter."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass

from service.core.taxonomy import Taxonomy
from service.matching.matcher import CHANNELS, Matcher, format_values, recency_limit
from service.matching.need import Need, NeedError, parse_need
from service.matching.panel_rules import PanelRules
from service.matching.pool import Pool
from service.matching.schemas import (
    Basis,
    Driver,
    HcpPlan,
    MatchRequest,
    MatchResponse,
    PanelHcp,
    PanelPlanRequest,
    PanelPlanResponse,
    Suggestion,
)
from service.store.visibility import Scope


@dataclass
class _Planned:
    """One HCP while the plan is built."""

    hcp: PanelHcp
    need: Need
    basis: Basis
    request: MatchRequest
    response: MatchResponse | None = None


class PanelPlanner:
    def __init__(self, matcher: Matcher, rules: PanelRules) -> None:
        self.matcher, self.rules = matcher, rules

    def plan(self, body: PanelPlanRequest, taxonomy: Taxonomy, scope: Scope | None = None) -> PanelPlanResponse:
        """Raises NeedError (→ 422) for a duplicate HCP id or a need the taxonomy does not know, naming the HCP,
        before any work is done."""
        planned = self._check(body, taxonomy)
        needs: dict[str, list[_Planned]] = {}
        pools: dict[tuple[bool, str | None], list[_Planned]] = {}
        for p in planned:
            if p.basis == "need_tags":
                needs.setdefault(_need_key(p), []).append(p)
            else:
                pools.setdefault((p.hcp.only_language, p.hcp.language if p.hcp.only_language else None), []).append(p)
        for group in needs.values():
            first = group[0]
            candidates: Pool = self.matcher.candidates(first.request, first.need, taxonomy, set(CHANNELS),
                                                                  scope)
            for p in group:
                p.response = self.matcher.answer(p.request, p.need, candidates, taxonomy, scope=scope)
        for group in pools.values():
            limit = recency_limit(max(p.request.k for p in group), max(len(p.request.exclude_asset_ids) for p in group))
            pool = self.matcher.by_recency(group[0].request, scope, limit=limit)
            for p in group:
                p.response = self.matcher.non_personalised(p.request, taxonomy, p.basis, pool)
        plans = self._plans(planned, taxonomy)
        return PanelPlanResponse(hcps=plans, opted_out=sum(1 for p in planned if p.basis == "opted_out"),
                                 distinct_needs=len(needs))

    # --- checking ---------------------------------------------------------------------------------
    def _check(self, body: PanelPlanRequest, taxonomy: Taxonomy) -> list[_Planned]:
        seen = Counter(h.hcp_id for h in body.hcps)
        twice = sorted(h for h, n in seen.items() if n > 1)
        if twice:
            raise NeedError("duplicate_hcp_id", f"Each HCP may appear once in a plan; {twice[0]!r} appears "
                            f"{seen[twice[0]]} times.", {"hcp_ids": twice[:20]})
        opted_out = self.matcher.opted_out(h.hcp_id for h in body.hcps)
        out = []
        for i, hcp in enumerate(body.hcps):
            try:
                need = parse_need(taxonomy, hcp.need_tags, hcp.need_text)
            except NeedError as err:
                raise _about(err, i, hcp) from err
            basis: Basis = ("opted_out" if hcp.hcp_id.strip() in opted_out
                            else "need_tags" if hcp.personalized else "not_requested")
            if basis == "need_tags" and need.empty:
                raise _about(NeedError("empty_need", "Give need_tags (of content dimensions) or need_text, or plan "
                                       "this HCP non-personalised (personalized: false)."), i, hcp)
            request = MatchRequest(need_tags=hcp.need_tags, need_text=hcp.need_text, language=hcp.language,
                                   only_language=hcp.only_language, formats=hcp.formats, k=hcp.k,
                                   external_share=body.external_share, personalized=hcp.personalized,
                                   exclude_asset_ids=hcp.exclude_asset_ids)
            out.append(_Planned(hcp, need, basis, request))
        return out

    # --- channel and priority ---------------------------------------------------------------------
    def _plans(self, planned: list[_Planned], taxonomy: Taxonomy) -> list[HcpPlan]:
        formats = format_values(taxonomy)
        rows: list[tuple[float, int, HcpPlan]] = []
        for i, p in enumerate(planned):
            assert p.response is not None
            personal = p.basis == "need_tags"
            preferences = p.need.profile.get(self.rules.channel_dimension, {}) if personal else {}
            suggestions = []
            for r in p.response.results:
                channel, channel_basis = self.rules.channel(preferences, formats.get(r.format.lower()))
                suggestions.append(Suggestion(**r.model_dump(), channel=channel, channel_basis=channel_basis))
            drivers = self._drivers(p) if personal else [
                Driver(driver="not_personalised", value=p.basis, score=self.rules.priority.not_personalised,
                       weight=1.0, contribution=self.rules.priority.not_personalised)]
            priority = round(sum(d.contribution for d in drivers), 4)
            expiries = [s.valid_until for s in suggestions if s.valid_until is not None]
            covered = p.response.coverage
            rows.append((priority, i, HcpPlan(
                hcp_id=p.hcp.hcp_id, personalized=p.response.personalized, basis=p.basis, notice=p.response.notice,
                coverage=covered.status if covered else None, coverage_note=covered.message if covered else None,
                uncovered=covered.uncovered if covered else [],
                channel=suggestions[0].channel if suggestions else None, priority=priority, priority_rank=0,
                drivers=drivers, expiry=min(expiries) if expiries else None, suggestions=suggestions)))
        for rank, (_, _, plan) in enumerate(sorted(rows, key=lambda r: (-r[0], r[1])), start=1):
            plan.priority_rank = rank
        return [plan for _, _, plan in rows]

    def _drivers(self, p: _Planned) -> list[Driver]:
        """Relevance: the best suggestion's calibrated relevance (0 when nothing fits the need), so it reads the
        same whoever else is in the plan and whatever the need's kind."""
        rules = self.rules.priority
        assert p.response is not None
        relevance = round(max((r.relevance for r in p.response.results), default=0.0), 4)
        out = [Driver(driver="relevance", value=relevance, score=relevance, weight=rules.relevance,
                      contribution=round(rules.relevance * relevance, 4))]
        for dim_id, driver in rules.dimensions.items():
            values = {**p.need.tags.get(dim_id, {}), **p.need.profile.get(dim_id, {})}
            scored = [(driver.values[v], v) for v in values if v in driver.values]
            score, value = max(scored) if scored else (driver.unknown, None)
            out.append(Driver(driver=dim_id, value=value, score=score, weight=driver.weight,
                              contribution=round(driver.weight * score, 4)))
        return out


def _about(err: NeedError, index: int, hcp: PanelHcp) -> NeedError:
    details = err.details if isinstance(err.details, dict) else {"details": err.details} if err.details else {}
    return NeedError(err.code, f"HCP {hcp.hcp_id!r} (hcps[{index}]): {err.message}",
                     {"hcp_index": index, "hcp_id": hcp.hcp_id, **details})


def _need_key(p: _Planned) -> str:
    """HCPs whose candidates would be the same: the need and what retrieval and the adjusters read of the
    request (language, the language filter, preferred formats); not k or exclusions, applied when ranking."""
    return json.dumps([p.need.tags, p.need.text, p.hcp.language, p.hcp.only_language, sorted(p.hcp.formats)],
                      sort_keys=True, ensure_ascii=False)


CSV_COLUMNS = ("hcp_id", "priority_rank", "priority", "basis", "coverage", "coverage_note", "expiry", "rank",
               "asset_id", "title", "format", "language", "channel", "channel_basis", "relevance", "valid_until",
               "reason", "drivers")


def plan_csv(plan: PanelPlanResponse) -> str:
    """One row per suggestion (an HCP with none, such as one nothing in scope fits: one row with the asset columns
    empty and the coverage saying why), in the plan's order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for h in plan.hcps:
        drivers = ";".join(f"{d.driver}={d.contribution:g}" for d in h.drivers)
        head = [h.hcp_id, h.priority_rank, f"{h.priority:g}", h.basis, h.coverage or "", h.coverage_note or "",
                h.expiry or ""]
        if not h.suggestions:  # the suggestion's columns empty
            writer.writerow([*head, *[""] * (len(CSV_COLUMNS) - len(head) - 1), drivers])
        for rank, s in enumerate(h.suggestions, start=1):
            writer.writerow([*head, rank, s.asset_id, s.title, s.format, s.language, s.channel, s.channel_basis,
                             f"{s.relevance:g}", s.valid_until or "", s.reason, drivers])
    return out.getvalue()
