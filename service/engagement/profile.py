"""An HCP's profile, derived on read from their events, the tags of what they engaged with, and the rules
(taxonomy/engagement.yaml): the HCP360 handbook's dynamic tags (content preference, interaction behaviour,
academic needs), channel preference, and the static attributes the CRM set. Derived on read, never stored: an
opt-out that deletes the events leaves nothing behind, and a rule change applies at once."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.core.taxonomy import Taxonomy
from service.engagement.rules import POSITIVE, EngagementRules
from service.store.hcps import StoredEvent

CHANNEL_DIMENSION = "channel_preference"
RECENT_DAYS = 30


class TagEvidence(BaseModel):
    events: int = Field(description="Events on pieces carrying this value.")
    actions: dict[str, int] = Field(description="Those events by action.")
    channels: dict[str, int] = Field(description="Those events by channel.")
    last_seen: datetime
    recent_pieces: int = Field(description="Distinct pieces carrying this value the doctor engaged with (any "
                               "action but sent and dismissed) in the last RECENT_DAYS days.")


class DynamicTag(BaseModel):
    dimension: str
    value: str
    label: str
    score: float = Field(description="This value's share of the doctor's decayed interest in the dimension (0–1).")
    freshness: Literal["fresh", "stale"] = Field(description="`stale`: no evidence within the rules' fresh_days.")
    half_life_days: float
    evidence: TagEvidence


class ChannelScore(BaseModel):
    channel: str
    label: str
    score: float = Field(description="Share of the doctor's decayed responses that came through this channel.")
    responses: int = Field(description="The doctor's own actions (opened, viewed, …) through this channel.")
    sends: int = Field(description="Pieces reps sent through this channel.")


class PredictedTag(BaseModel):
    dimension: str
    value: str
    label: str
    score: float = Field(description="Share of the ranker's next suggestions carrying this value (0–1).")


class Profile(BaseModel):
    hcp_id: str
    held: bool = Field(True, description="False when nothing is held about the HCP (no event, no attribute).")
    personalised: bool = Field(description="False once the HCP opted out: nothing is held or derived.")
    static: dict[str, list[str]] = Field(description="Attributes the CRM set (PUT /v1/hcps/{id}).")
    events: int
    first_seen: datetime | None
    last_seen: datetime | None
    dynamic: list[DynamicTag]
    channel_preference: list[ChannelScore]
    predicted: list[PredictedTag] = Field(default_factory=list, description=(
        "What the doctor is likely to engage with next: the tags of the ranker's top suggestions."))


def derive(hcp_id: str, events: Sequence[StoredEvent], tags: Mapping[str, Mapping[str, Sequence[str]]],
           static: Mapping[str, list[str]], taxonomy: Taxonomy, rules: EngagementRules, now: datetime,
           language: str = "en") -> Profile:
    """The profile from the HCP's events and the current tags of the assets they name."""
    dims = [d for d in taxonomy.for_content() if d.applies_to == "both"]
    weight: dict[tuple[str, str], float] = defaultdict(float)
    evidence: dict[tuple[str, str], list[StoredEvent]] = defaultdict(list)
    for event in events:
        interest = rules.weight(event.action, event.dwell_seconds)
        age = (now - event.occurred_at).total_seconds() / 86400
        asset_tags = tags.get(event.asset_id, {})
        for dim in dims:
            values = asset_tags.get(dim.id, [])
            for value in values:
                evidence[(dim.id, value)].append(event)
                weight[(dim.id, value)] += interest * rules.decay(dim.id, age) / len(values)
    dynamic = []
    for dim in dims:
        positive = {v: w for (d, v), w in weight.items() if d == dim.id and w > 0}
        total = sum(positive.values())
        for value, w in sorted(positive.items(), key=lambda kv: -kv[1]):
            seen = evidence[(dim.id, value)]
            last = max(e.occurred_at for e in seen)
            recent = {e.asset_id for e in seen if e.action in POSITIVE
                      and (now - e.occurred_at).total_seconds() < RECENT_DAYS * 86400}
            dynamic.append(DynamicTag(
                dimension=dim.id, value=value, label=taxonomy.value_label(dim.id, value, language),
                score=round(w / total, 4), half_life_days=rules.half_life(dim.id),
                freshness="fresh" if (now - last).days < rules.fresh_days else "stale",
                evidence=TagEvidence(events=len(seen), actions=dict(Counter(e.action for e in seen)),
                                     channels=dict(Counter(e.channel or "unknown" for e in seen)), last_seen=last,
                                     recent_pieces=len(recent))))
    dynamic.sort(key=lambda t: (-t.score, t.dimension, t.value))
    return Profile(hcp_id=hcp_id, personalised=True, static=dict(static), events=len(events),
                   first_seen=min((e.occurred_at for e in events), default=None),
                   last_seen=max((e.occurred_at for e in events), default=None), dynamic=dynamic,
                   channel_preference=channels(events, taxonomy, rules, now, language))


def channels(events: Sequence[StoredEvent], taxonomy: Taxonomy, rules: EngagementRules, now: datetime,
             language: str) -> list[ChannelScore]:
    """Which channels the doctor responds through: decayed responses per channel (the monthly half-life)."""
    if not taxonomy.has_dimension(CHANNEL_DIMENSION):
        return []
    dim = taxonomy.dimension(CHANNEL_DIMENSION)
    score: dict[str, float] = defaultdict(float)
    responses: Counter[str] = Counter()
    sends: Counter[str] = Counter()
    for e in events:
        if e.channel is None:
            continue
        if e.action == "sent":
            sends[e.channel] += 1
        elif e.action in POSITIVE:
            responses[e.channel] += 1
            age = (now - e.occurred_at).total_seconds() / 86400
            score[e.channel] += rules.weight(e.action, e.dwell_seconds) * rules.decay(CHANNEL_DIMENSION, age)
    total = sum(score.values())
    out = []
    for value in dim.values:
        if responses[value.id] or sends[value.id]:
            out.append(ChannelScore(channel=value.id, label=value.label.get(language),
                                    score=round(score[value.id] / total, 4) if total else 0.0,
                                    responses=responses[value.id], sends=sends[value.id]))
    return sorted(out, key=lambda c: (-c.score, c.channel))


def opted_out(hcp_id: str) -> Profile:
    """What an opted-out HCP's profile says: nothing is held."""
    return Profile(hcp_id=hcp_id, held=False, personalised=False, static={}, events=0, first_seen=None,
                   last_seen=None, dynamic=[], channel_preference=[])


def nothing_held(hcp_id: str) -> Profile:
    """What the profile of an HCP the service knows nothing about says."""
    return Profile(hcp_id=hcp_id, held=False, personalised=True, static={}, events=0, first_seen=None,
                   last_seen=None, dynamic=[], channel_preference=[])
