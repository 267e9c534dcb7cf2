"""SYNTHETIC engagement: doctors with hidden preferences, reps who send content, doctors who open, read or dismiss it.

Nothing here is real data. The world follows the HCP360 handbook's description of what a doctor's profile is made
of, and its parameters were fixed (this file's constants) before any ranker was chosen, so that no model is
favoured by construction:

- static attributes (department, title, hospital tier, potential tier; the handbook's yearly tags);
- a hidden content preference (therapy area from the department, content type partly from the title, format and
  value driver per doctor) that drifts for half of the doctors at a random day (the handbook's dynamic tags);
- channel habits: a doctor answers some channels more than others;
- an activity level (lognormal: many doctors do little, so the "fewer than 3 events" slice is real);
- items with a hidden quality and a freshness that fades; reps push recent content of the doctor's area, which is
  why recent popularity is a strong baseline, as it is in real CRM data;
- response noise on every decision.

The output is the `hcp-content eval recommend` folder format: items.jsonl, users.jsonl, events.jsonl, plus
manifest.json saying it is synthetic and how it was made.

    python -m eval.synthetic_engagement --out var/engagement --doctors 2000 --days 90
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from service.settings import PROJECT_ROOT

SAMPLE_GOLD = PROJECT_ROOT / "samples" / "gold.yaml"
START = date(2026, 9, 1)  # day 0 of the synthetic window (fixed, so the files are byte-identical per seed)

AREAS = {"cardiovascular": (["atrial_fibrillation", "venous_thromboembolism", "heart_failure"], "cardiovex"),
         "metabolism": (["type2_diabetes", "obesity"], "glucora"),
         "oncology": (["nsclc"], "oncotinib")}
DEPARTMENTS = {"cardiology": "cardiovascular", "endocrinology": "metabolism", "oncology": "oncology",
               "general_practice": None}
CONTENT_TYPES = ["guideline", "clinical_study", "real_world_evidence", "patient_case", "mechanism_of_action",
                 "dosing_administration", "safety_information", "congress_report", "policy_market_access",
                 "disease_education", "news"]
FORMATS = ["slide_deck", "document", "web_article", "news_item", "video"]
VALUE_DRIVERS = ["efficacy", "safety", "onset_speed", "price_access", "convenience", "guideline_endorsement"]
CHANNELS = ["online", "face_to_face", "meeting", "third_party"]
TITLES = {"resident": ["disease_education", "dosing_administration", "patient_case", "mechanism_of_action"],
          "attending": ["clinical_study", "patient_case", "safety_information", "real_world_evidence"],
          "chief": ["guideline", "clinical_study", "congress_report", "policy_market_access"]}
HOSPITAL_TIERS = ["tier3", "tier2", "community"]
POTENTIAL = ["high", "medium", "low"]

# The fixed parameters (see the module's docstring: set before any ranker was fitted).
SYNTHETIC_ITEMS = 460
BACKLOG_DAYS = 180  # synthetic items are published over this many days before day 0 and through the window
ACTIVITY_MEDIAN, ACTIVITY_SIGMA = 0.22, 1.0  # exposures per doctor-day, lognormal
REP_SHARE = 0.55  # share of exposures that are a rep sending something; the rest the doctor finds online
DRIFT_SHARE, DRIFT_MIX = 0.5, 0.6
NOISE = 1.0  # logistic noise on each decision
FRESH_DAYS = 45.0  # an item's appeal falls by one unit of utility over this many days


@dataclass(frozen=True)
class Item:
    id: str
    tags: dict[str, list[str]]
    published: date
    quality: float


def _sample_items() -> list[tuple[str, dict[str, list[str]]]]:
    gold = yaml.safe_load(SAMPLE_GOLD.read_text(encoding="utf-8"))["assets"]
    keep = ("therapy_area", "disease", "product", "content_type", "format", "value_driver", "customer_need",
            "treatment_concept")
    out = []
    for key, tags in gold.items():
        norm = {d: (v if isinstance(v, list) else [v]) for d, v in tags.items() if d in keep and v}
        out.append((key, norm))
    return out


def _items(rng: np.random.Generator, days: int, synthetic_items: int) -> list[Item]:
    # the sample pieces are published over the same span as the synthetic ones, so some are new in the window
    items = [Item(key, tags, START + timedelta(days=int(rng.integers(-BACKLOG_DAYS // 2, days - 10))),
                  float(rng.normal(0, 0.5))) for key, tags in _sample_items()]
    areas = list(AREAS)
    for n in range(synthetic_items):
        area = areas[int(rng.choice(3, p=[0.4, 0.35, 0.25]))]
        diseases, product = AREAS[area]
        tags: dict[str, list[str]] = {"therapy_area": [area], "disease": [str(rng.choice(diseases))],
                                      "content_type": [str(rng.choice(CONTENT_TYPES))],
                                      "format": [str(rng.choice(FORMATS))],
                                      "value_driver": sorted({str(v) for v in rng.choice(VALUE_DRIVERS, 2)})}
        if rng.random() < 0.6:
            tags["product"] = [product]
        published = START + timedelta(days=int(rng.integers(-BACKLOG_DAYS, days)))
        items.append(Item(f"synthetic-item-{n:04d}", tags, published, float(rng.normal(0, 0.5))))
    return items


def _preference(rng: np.random.Generator, n: int, alpha: float, favoured: list[int] | None = None) -> np.ndarray:
    p = rng.dirichlet([alpha] * n)
    if favoured:
        prior = np.full(n, 0.02)
        prior[favoured] = 1.0
        p = 0.5 * p + 0.5 * prior / prior.sum()
    return p


def generate(out: Path, doctors: int = 2000, days: int = 90, seed: int = 7,
             synthetic_items: int = SYNTHETIC_ITEMS) -> dict[str, Any]:
    """Write the three files and the manifest under `out`; returns the manifest. `synthetic_items=0`: a world of
    the sample content alone (what `make run` loads into the service)."""
    rng = np.random.default_rng(seed)
    items = _items(rng, days, synthetic_items)
    n_items = len(items)
    area_of = np.array([list(AREAS).index(i.tags["therapy_area"][0]) for i in items])
    ct_of = np.array([CONTENT_TYPES.index(i.tags["content_type"][0]) if "content_type" in i.tags else 0
                      for i in items])
    fmt_of = np.array([FORMATS.index(i.tags["format"][0]) if "format" in i.tags else 1 for i in items])
    vd_of = np.zeros((n_items, len(VALUE_DRIVERS)))
    for j, item in enumerate(items):
        for v in item.tags.get("value_driver", []):
            vd_of[j, VALUE_DRIVERS.index(v)] = 1
    vd_of /= np.maximum(vd_of.sum(1, keepdims=True), 1)
    quality = np.array([i.quality for i in items])
    published = np.array([(i.published - START).days for i in items])

    users, events = [], []
    event_no = 0
    for u in range(doctors):
        dept = str(rng.choice(list(DEPARTMENTS), p=[0.35, 0.3, 0.15, 0.2]))
        title = str(rng.choice(list(TITLES), p=[0.35, 0.45, 0.2]))
        attrs = {"department": dept, "title": title, "hospital_tier": str(rng.choice(HOSPITAL_TIERS)),
                 "potential_tier": str(rng.choice(POTENTIAL, p=[0.2, 0.5, 0.3]))}
        hcp = f"hcp-s{u:05d}"
        users.append({"id": hcp, "attributes": attrs})
        home = DEPARTMENTS[dept]
        area_p = _preference(rng, 3, 1.0, [list(AREAS).index(home)] if home else None)
        if home:
            area_p = 0.3 * area_p + 0.7 * np.eye(3)[list(AREAS).index(home)]
        ct_p = _preference(rng, len(CONTENT_TYPES), 0.6, [CONTENT_TYPES.index(c) for c in TITLES[title]])
        ct_later = 0.4 * ct_p + DRIFT_MIX * rng.dirichlet([0.6] * len(CONTENT_TYPES))
        drift_day = int(rng.integers(0, days)) if rng.random() < DRIFT_SHARE else days + 1
        fmt_p = _preference(rng, len(FORMATS), 1.0)
        vd_p = _preference(rng, len(VALUE_DRIVERS), 0.8)
        chan_p = rng.dirichlet([0.7] * len(CHANNELS))
        rate = ACTIVITY_MEDIAN * float(np.exp(rng.normal(0, ACTIVITY_SIGMA)))
        base = 2.0 * np.log(area_p[area_of]) + 1.0 * np.log(fmt_p[fmt_of] + 1e-3) + \
            3.0 * (vd_of @ vd_p) + quality
        for day in range(days):
            for _ in range(int(rng.poisson(rate))):
                ct = ct_later if day >= drift_day else ct_p
                age = day - published
                available = age >= 0
                util = base + 1.5 * np.log(ct[ct_of]) - np.clip(age, 0, None) / FRESH_DAYS
                when = datetime(START.year, START.month, START.day, tzinfo=UTC) + timedelta(
                    days=day, seconds=int(rng.integers(8 * 3600, 20 * 3600)))
                if rng.random() < REP_SHARE:
                    # The rep: recent content of the doctor's area, otherwise anything recent (no personal model).
                    fit = available & (age < 60) & ((area_of == list(AREAS).index(home)) if home else True)
                    pool = np.flatnonzero(fit) if fit.any() else np.flatnonzero(available)
                    j = int(rng.choice(pool))
                    channel = str(rng.choice(["face_to_face", "online", "meeting"], p=[0.5, 0.4, 0.1]))
                    events.append(_event(event_no, hcp, items[j].id, "sent", channel, when))
                    event_no += 1
                    answer = util[j] - 1.0 + 2.0 * chan_p[CHANNELS.index(channel)] + rng.logistic(0, NOISE)
                    if answer > 0:
                        event_no = _respond(rng, events, event_no, hcp, items[j].id, channel,
                                            when + timedelta(hours=int(rng.integers(1, 48))), answer)
                    elif answer < -3.5 and rng.random() < 0.1:
                        events.append(_event(event_no, hcp, items[j].id, "dismissed", channel,
                                             when + timedelta(hours=2)))
                        event_no += 1
                else:
                    logits = np.where(available, util, -np.inf)
                    p = np.exp(logits - logits.max())
                    j = int(rng.choice(n_items, p=p / p.sum()))
                    channel = "online" if rng.random() < 0.8 else "third_party"
                    event_no = _respond(rng, events, event_no, hcp, items[j].id, channel, when,
                                        1.0 + rng.logistic(0, NOISE))
    events.sort(key=lambda e: (e["timestamp"], e["id"]))
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "items.jsonl", [{"id": i.id, "tags": i.tags, "published": i.published.isoformat(),
                                        "synthetic": i.id.startswith("synthetic-")} for i in items])
    _write_jsonl(out / "users.jsonl", users)
    _write_jsonl(out / "events.jsonl", events)
    manifest = {"synthetic": True, "generator": "eval/synthetic_engagement.py", "seed": seed, "doctors": doctors,
                "days": days, "synthetic_items": synthetic_items, "start": START.isoformat(), "items": n_items,
                "events": len(events),
                "note": "SYNTHETIC engagement: no real doctor, rep or event."}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _respond(rng: np.random.Generator, events: list[dict[str, Any]], event_no: int, hcp: str, item: str,
             channel: str, when: datetime, strength: float) -> int:
    """What a doctor does with a piece they turned to: the stronger the pull, the deeper they go."""
    steps = ["opened"] if channel != "meeting" else ["attended"]
    if strength > 0.5 or channel == "online":
        steps.append("viewed")
    if strength > 2.0 and rng.random() < 0.5:
        steps.append(str(rng.choice(["downloaded", "shared", "replied"], p=[0.6, 0.25, 0.15])))
    for n, action in enumerate(steps):
        dwell = int(20 + 60 * max(strength, 0) + rng.exponential(30)) if action == "viewed" else None
        events.append(_event(event_no, hcp, item, action, channel, when + timedelta(minutes=n), dwell))
        event_no += 1
    return event_no


def _event(n: int, hcp: str, item: str, action: str, channel: str, when: datetime,
           dwell: int | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"id": f"syn-{n:08d}", "user": hcp, "item": item, "action": action, "channel": channel,
                             "timestamp": when.isoformat().replace("+00:00", "Z")}
    if dwell is not None:
        event["dwell_seconds"] = dwell
    return event


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--doctors", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--synthetic-items", type=int, default=SYNTHETIC_ITEMS,
                        help="Synthetic pieces beside the sample content (0: the sample content alone).")
    args = parser.parse_args()
    print(json.dumps(generate(args.out, args.doctors, args.days, args.seed, args.synthetic_items)))


if __name__ == "__main__":
    main()
