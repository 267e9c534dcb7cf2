"""The engagement stage's operations on one session: record events, set an HCP's static attributes, read their
profile, and erase them. Routes and the CLI call these; each write and its audit entry share the session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from service.core.refusal import Refused
from service.core.taxonomy import Taxonomy
from service.engagement.events import EventIn, RowError, problem
from service.engagement.profile import CHANNEL_DIMENSION, Profile, derive, opted_out
from service.engagement.rules import EngagementRules
from service.engagement.serving import ServedRanker
from service.store import audit, hcps, opt_outs


@dataclass
class Recorded:
    received: int = 0
    stored: int = 0  # new events
    duplicates: int = 0  # ids already stored (or repeated in the batch)
    opted_out: int = 0  # events of opted-out HCPs: not recorded
    expired: int = 0  # older than the retention period: not recorded


def check_events(s: Session, events: Sequence[tuple[int, EventIn]], taxonomy: Taxonomy,
                 rules: EngagementRules, assets: set[str] | None = None
                 ) -> tuple[list[tuple[int, EventIn, str]], list[RowError]]:
    """Each event with the asset it names, or the row's error: an unknown asset or URL, a channel the taxonomy
    does not have, a dismissal reason the rules do not list. `assets`: every asset id, when the caller (an
    import of many batches) read them once."""
    known, by_url = hcps.resolve_assets(s, [] if assets is not None else [e.asset_id for _, e in events if e.asset_id],
                                        [e.url for _, e in events if e.url])
    known = assets if assets is not None else known
    channels = ({v.id for v in taxonomy.dimension(CHANNEL_DIMENSION).values}
                if taxonomy.has_dimension(CHANNEL_DIMENSION) else set())
    good, bad = [], []
    now = datetime.now(UTC)
    for row, e in events:
        asset = e.asset_id if e.asset_id in known else by_url.get(e.url or "")
        broken = problem(row, e, now)
        if broken is not None:
            bad.append(broken)
        elif asset is None:
            what = ("asset_id", f"no asset has id {e.asset_id}") if e.asset_id else (
                "url", "no ingested asset or news item has this URL")
            bad.append(RowError(row, *what))
        elif e.channel is not None and e.channel not in channels:
            bad.append(RowError(row, "channel", f"{e.channel!r} is not a value of {CHANNEL_DIMENSION}: "
                                f"{', '.join(sorted(channels))}"))
        elif e.reason is not None and e.reason not in rules.dismiss_reasons:
            bad.append(RowError(row, "reason", f"{e.reason!r} is not a dismiss reason: "
                                f"{', '.join(rules.dismiss_reasons)}"))
        else:
            good.append((row, e, asset))
    return good, bad


def record_events(s: Session, events: Sequence[tuple[int, EventIn, str]], retention_days: int,
                  now: datetime | None = None, blocked: set[str] | None = None) -> Recorded:
    """Store checked events (row, event, asset id): nothing for an opted-out HCP or older than the retention.
    `blocked`: the opted-out HCPs, when the caller (an import of many batches) read them once."""
    now = now or datetime.now(UTC)
    out = Recorded(received=len(events))
    if blocked is None:
        blocked = opt_outs.opted_out(s, {e.hcp_id for _, e, _ in events})
    oldest = now - timedelta(days=retention_days)
    rows: list[tuple[object, ...]] = []
    ids: set[str] = set()
    for _, e, asset in events:
        if e.hcp_id in blocked:
            out.opted_out += 1
        elif e.occurred_at < oldest:
            out.expired += 1
        elif e.id in ids:
            out.duplicates += 1
        else:
            ids.add(e.id)
            rows.append((e.id, e.hcp_id, asset, e.action, e.channel, e.dwell_seconds, e.occurred_at, e.suggestion_id,
                         e.reason))  # hcps.EVENT_COLUMNS' order
    out.stored = hcps.insert_events(s, rows)
    out.duplicates += len(rows) - out.stored
    return out


def check_attributes(attributes: Mapping[str, Sequence[str]], taxonomy: Taxonomy) -> dict[str, list[str]]:
    """Static attributes: dimensions an HCP may carry (applies_to hcp or both), values the taxonomy has."""
    allowed = {d.id: d for d in taxonomy.for_hcp()}
    out: dict[str, list[str]] = {}
    for dim_id, values in attributes.items():
        dim = allowed.get(dim_id)
        if dim is None:
            raise Refused("invalid", "unknown_dimension", f"{dim_id!r} is not a dimension an HCP carries: "
                          f"{', '.join(sorted(allowed))}", {"dimension": dim_id})
        unknown = [v for v in values if dim.value(v) is None]
        if unknown:
            raise Refused("invalid", "unknown_value", f"{dim_id} has no value {unknown[0]!r}",
                          {"dimension": dim_id, "value": unknown[0]})
        if dim.cardinality == "single" and len(set(values)) > 1:
            raise Refused("invalid", "single_value", f"{dim_id} takes one value", {"dimension": dim_id})
        out[dim_id] = sorted(set(values))
    return out


def profile(s: Session, hcp_id: str, taxonomy: Taxonomy, rules: EngagementRules, language: str = "en",
            now: datetime | None = None, ranker: ServedRanker | None = None) -> Profile | None:
    """What is held about the HCP and what was derived from it (with `ranker`, the predicted tags too); None when
    nothing is held."""
    if opt_outs.opted_out(s, [hcp_id]):
        return opted_out(hcp_id)
    return profiles(s, [hcp_id], taxonomy, rules, language, now, ranker)[hcp_id]


def profiles(s: Session, hcp_ids: Sequence[str], taxonomy: Taxonomy, rules: EngagementRules, language: str = "en",
             now: datetime | None = None, ranker: ServedRanker | None = None) -> dict[str, Profile | None]:
    """profile() for HCPs the caller checked are not opted out, in a few queries for all of them (a panel)."""
    held = hcps.records(s, hcp_ids)
    events = hcps.events_of_many(s, hcp_ids)
    tags = hcps.current_tags(s, {e.asset_id for evs in events.values() for e in evs})
    moment = now or datetime.now(UTC)
    out: dict[str, Profile | None] = {}
    for hcp_id in hcp_ids:
        if hcp_id not in held and not events.get(hcp_id):
            out[hcp_id] = None
            continue
        derived = derive(hcp_id, events.get(hcp_id, []), tags, held.get(hcp_id, {}), taxonomy, rules, moment,
                         language)
        if ranker is not None:
            derived.predicted = [p.model_copy(update={"label": taxonomy.value_label(p.dimension, p.value, language)})
                                 for p in ranker.predicted(hcp_id) if taxonomy.has(p.dimension, p.value)]
        out[hcp_id] = derived
    return out


def purge_expired(s: Session, retention_days: int, now: datetime | None = None) -> int:
    """Delete events older than the retention period (audited by their count when there were any)."""
    removed = hcps.purge_events_before(s, (now or datetime.now(UTC)) - timedelta(days=retention_days))
    if removed:
        audit.record(s, "system", "admin", "events.purge", "events", None, None,
                     {"removed": removed, "retention_days": retention_days})
    return removed
