"""Know the doctor: engagement events in, a profile out, suggestions by HCP id that leave out what was sent or
dismissed, feedback that sticks, and erasure that leaves nothing (PIPL). On the sample content, with a small slice
of the SYNTHETIC engagement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from eval.synthetic_engagement import generate
from service.engagement.rules import default_rules
from service.engagement.synthetic_load import load_synthetic
from service.store.hcp_models import HcpEvent, HcpRecord, HcpSuggestion
from service.store.models import Asset

from .api_helpers import Api, start_samples_api, stop_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    base = tmp_path_factory.mktemp("engagement")
    api = start_samples_api(base / "data")
    c = api.components
    folder = base / "synthetic"
    generate(folder, doctors=400, days=60, seed=11, synthetic_items=0)
    load_synthetic(c.db, folder, c.tagger.taxonomy, default_rules(), c.settings.event_retention_days)
    yield api
    stop_api(api)


def _asset_ids(api: Api) -> dict[str, str]:
    with api.components.db.session() as s:
        return {a.uri: a.id for a in s.scalars(select(Asset))}


def _busiest(api: Api) -> str:
    with api.components.db.session() as s:
        return str(s.execute(select(HcpEvent.hcp_id, func.count()).group_by(HcpEvent.hcp_id)
                             .order_by(func.count().desc(), HcpEvent.hcp_id)).first()[0])


def _event(n: int, hcp: str, asset: str, action: str, days_ago: float = 1, **extra: Any) -> dict[str, Any]:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return {"id": f"t-{hcp}-{n}", "hcp_id": hcp, "asset_id": asset, "action": action,
            "occurred_at": when.isoformat(), **extra}


def test_events_are_counted_once_and_a_bad_row_is_named_by_row_and_field(api: Api) -> None:
    asset = next(iter(_asset_ids(api).values()))
    batch = [_event(1, "hcp-t1", asset, "opened", channel="online"), _event(2, "hcp-t1", asset, "viewed",
                                                                           dwell_seconds=90)]
    first = api.client.post("/v1/events", json={"events": batch}, headers=api.h("rep"))
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == 2
    again = api.client.post("/v1/events", json={"events": batch + batch[:1]}, headers=api.h("rep"))
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 3
    bad = [*batch, _event(3, "hcp-t1", "0" * 32, "opened"), _event(4, "hcp-t1", asset, "opened", channel="fax")]
    r = api.client.post("/v1/events", json={"events": bad}, headers=api.h("rep"))
    assert r.status_code == 422 and r.json()["code"] == "invalid_events"
    assert [(e["row"], e["field"]) for e in r.json()["details"]["rejected"]] == [(2, "asset_id"), (3, "channel")]
    with api.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(HcpEvent).where(HcpEvent.hcp_id == "hcp-t1")) == 2


@pytest.mark.parametrize("hcp_id", ["张伟", "13912345678", "hcp-110101199003074514", "doc@hospital.cn",
                                    "Dr.Wang"])
def test_an_id_that_names_or_identifies_a_person_is_refused(api: Api, hcp_id: str) -> None:
    asset = next(iter(_asset_ids(api).values()))
    r = api.client.post("/v1/events", json={"events": [_event(1, hcp_id, asset, "opened")]}, headers=api.h("rep"))
    assert r.status_code == 422
    assert "pseudonymous" in str(r.json()["details"])


def test_the_profile_names_tags_with_their_evidence_and_freshness(api: Api) -> None:
    hcp = _busiest(api)
    r = api.client.get(f"/v1/hcps/{hcp}/profile", params={"language": "en"}, headers=api.h("rep"))
    assert r.status_code == 200, r.text
    profile = r.json()
    assert profile["static"]["department"] and profile["events"] > 0
    top = profile["dynamic"][0]
    assert 0 < top["score"] <= 1 and top["freshness"] in ("fresh", "stale")
    assert sum(top["evidence"]["actions"].values()) == top["evidence"]["events"] > 0
    areas = [t for t in profile["dynamic"] if t["dimension"] == "therapy_area"]
    assert abs(sum(t["score"] for t in areas) - 1) < 0.01
    assert profile["channel_preference"] and profile["channel_preference"][0]["responses"] > 0


def test_suggestions_by_id_carry_evidence_and_a_dismissed_piece_does_not_come_back(api: Api) -> None:
    hcp = _busiest(api)
    body = {"hcp_id": hcp, "language": "en", "k": 5}
    first = api.client.post("/v1/match", json=body, headers=api.h("rep"))
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["profile"]["hcp_id"] == hcp and answer["profile"]["need_tags"]
    assert answer["results"], answer
    top = answer["results"][0]
    assert top["suggestion_id"] and top["evidence"]
    assert hcp not in top["reason"]  # the content's reason says nothing of the doctor
    r = api.client.post(f"/v1/suggestions/{top['suggestion_id']}/feedback",
                        json={"outcome": "dismissed", "reason": "not_relevant"}, headers=api.h("rep"))
    assert r.status_code == 200 and r.json()["recorded"] is True
    again = api.client.post("/v1/match", json=body, headers=api.h("rep")).json()
    assert top["asset_id"] not in [x["asset_id"] for x in again["results"]]
    with api.components.db.session() as s:
        stored = s.scalar(select(HcpEvent).where(HcpEvent.suggestion_id == top["suggestion_id"]))
        assert stored is not None and stored.action == "dismissed" and stored.reason == "not_relevant"


def test_a_dismissal_without_a_reason_is_refused(api: Api) -> None:
    hcp = _busiest(api)
    answer = api.client.post("/v1/match", json={"hcp_id": hcp, "k": 2}, headers=api.h("rep")).json()
    sid = answer["results"][0]["suggestion_id"]
    r = api.client.post(f"/v1/suggestions/{sid}/feedback", json={"outcome": "dismissed"}, headers=api.h("rep"))
    assert r.status_code == 422 and r.json()["code"] == "reason_required"


def test_a_piece_sent_within_the_cooldown_is_left_out_without_the_crm_listing_it(api: Api) -> None:
    hcp = _busiest(api)
    answer = api.client.post("/v1/match", json={"hcp_id": hcp, "k": 3}, headers=api.h("rep")).json()
    sent = answer["results"][0]["asset_id"]
    r = api.client.post("/v1/events", json={"events": [_event(9, hcp, sent, "sent", days_ago=0.1,
                                                               channel="face_to_face")]}, headers=api.h("rep"))
    assert r.status_code == 200 and r.json()["stored"] == 1
    later = api.client.post("/v1/match", json={"hcp_id": hcp, "k": 3}, headers=api.h("rep")).json()
    assert sent not in [x["asset_id"] for x in later["results"]]
    assert later["profile"]["resting"] >= 1


def _held(api: Api, hcp: str) -> dict[str, int]:
    with api.components.db.session() as s:
        counts = {m.__tablename__: s.scalar(select(func.count()).select_from(m).where(m.hcp_id == hcp)) or 0
                  for m in (HcpEvent, HcpRecord, HcpSuggestion)}
        # every other table: no column of any row holds the id
        for table in api.components.db.tables():
            if table in counts or table in ("hcp_opt_outs", "audit_log", "alembic_version"):
                continue
            cols = [r[1] for r in s.execute(text(f'PRAGMA table_info("{table}")'))]
            for col in cols:
                n = s.scalar(text(f'SELECT count(*) FROM "{table}" WHERE CAST("{col}" AS TEXT) LIKE :p'),
                             {"p": f"%{hcp}%"})
                counts[f"{table}.{col}"] = n or 0
    # the vector store: no point's payload names the doctor (need vectors are cached by need, not by doctor)
    counts["vectors"] = sum(hcp in str(p.payload) for p in api.components.vectors.scroll())
    return counts


def test_an_opt_out_erases_every_event_profile_and_suggestion_and_its_audit_entry_holds_none(api: Api) -> None:
    hcp = _busiest(api)
    api.client.post("/v1/match", json={"hcp_id": hcp, "k": 3}, headers=api.h("rep"))
    before = _held(api, hcp)
    assert before["hcp_events"] and before["hcp_records"] and before["hcp_suggestions"]
    r = api.client.post("/v1/opt-outs", json={"hcp_id": hcp}, headers=api.h("rep"))
    assert r.status_code == 201
    assert not any(_held(api, hcp).values()), _held(api, hcp)
    profile = api.client.get(f"/v1/hcps/{hcp}/profile", headers=api.h("rep")).json()
    assert profile["personalised"] is False and profile["held"] is False
    assert profile["dynamic"] == [] and profile["static"] == {}
    entry = api.client.get("/v1/audit", params={"action": "hcp.opt_out"}, headers=api.h("admin")).json()
    after = entry["items"][0]["after"]
    assert set(after) == {"opted_out", "erased"} and after["erased"]["events"] == before["hcp_events"]
    # from now on nothing new is recorded, and the list is the non-personalised one
    asset = next(iter(_asset_ids(api).values()))
    r = api.client.post("/v1/events", json={"events": [_event(1, hcp, asset, "opened")]}, headers=api.h("rep"))
    assert r.json()["opted_out"] == 1 and not _held(api, hcp)["hcp_events"]
    listed = api.client.post("/v1/match", json={"hcp_id": hcp, "k": 3}, headers=api.h("rep")).json()
    assert listed["personalized"] is False and listed["basis"] == "opted_out"


def test_delete_erases_everything_held_and_a_second_delete_finds_nothing(api: Api) -> None:
    with api.components.db.session() as s:
        hcp = str(s.scalar(select(HcpRecord.hcp_id).order_by(HcpRecord.hcp_id.desc())))
    assert api.client.delete(f"/v1/hcps/{hcp}", headers=api.h("rep")).status_code == 403
    r = api.client.delete(f"/v1/hcps/{hcp}", headers=api.h("admin"))
    assert r.status_code == 204
    assert not any(_held(api, hcp).values())
    assert api.client.delete(f"/v1/hcps/{hcp}", headers=api.h("admin")).status_code == 404
    gone = api.client.get(f"/v1/hcps/{hcp}/profile", headers=api.h("rep"))
    assert gone.status_code == 200 and gone.json()["held"] is False and gone.json()["dynamic"] == []


def test_an_import_keeps_good_rows_names_bad_ones_and_strict_refuses_the_file(api: Api, tmp_path: Path) -> None:
    from service.engagement.importer import import_events

    asset = next(iter(_asset_ids(api).values()))
    day = (date.today() - timedelta(days=2)).isoformat()
    path = tmp_path / "export.csv"
    path.write_text("id,hcp_id,asset_id,action,channel,dwell_seconds,occurred_at\n"
                    f"i1,hcp-imp,{asset},opened,online,,{day}T10:00:00+08:00\n"
                    f"i2,hcp-imp,{asset},waved,online,,{day}T10:00:00+08:00\n"
                    f"i3,hcp-imp,{asset},viewed,online,abc,{day}T10:00:00+08:00\n"
                    f"i4,hcp-imp,{asset},viewed,online,30,{day}T10:01:00+08:00\n", encoding="utf-8")
    c = api.components
    strict = import_events(c.db, path, c.tagger.taxonomy, default_rules(), 730, strict=True)
    assert strict.refused and [(e.row, e.field) for e in strict.rejected] == [(2, "action"), (3, "dwell_seconds")]
    with c.db.session() as s:
        assert not s.scalar(select(func.count()).select_from(HcpEvent).where(HcpEvent.hcp_id == "hcp-imp"))
    loose = import_events(c.db, path, c.tagger.taxonomy, default_rules(), 730)
    assert loose.stored == 2 and len(loose.rejected) == 2 and not loose.refused


def test_a_panel_of_ids_only_is_planned_from_each_doctors_profile(api: Api) -> None:
    with api.components.db.session() as s:
        busy = [r[0] for r in s.execute(select(HcpEvent.hcp_id).group_by(HcpEvent.hcp_id)
                                        .order_by(func.count().desc(), HcpEvent.hcp_id).limit(6))][1:4]
    data = ("hcp_id\n" + "\n".join(busy) + "\n").encode()
    r = api.client.post("/v1/panels/plan/csv", files={"panel": ("panel.csv", data, "text/csv")},
                        headers=api.h("rep"))
    assert r.status_code == 200, r.text
    rows = {h["hcp_id"]: h for h in r.json()["hcps"]}
    assert set(rows) == set(busy)
    for hcp in busy:
        plan = rows[hcp]
        assert plan["basis"] == "need_tags" and plan["suggestions"], plan
        assert len(plan["suggestions"]) <= 3  # the panel's default k, after the learned ranker chose from more
        assert all(x["suggestion_id"] and x["evidence"] for x in plan["suggestions"])
    with api.components.db.session() as s:
        kept = s.scalar(select(func.count()).select_from(HcpSuggestion).where(HcpSuggestion.hcp_id.in_(busy)))
        assert kept >= sum(len(rows[h]["suggestions"]) for h in busy)


def test_a_doctor_with_attributes_but_no_engagement_gets_their_segments_reading(api: Api) -> None:
    r = api.client.put("/v1/hcps/hcp-newcomer", json={"attributes": {"department": ["oncology"],
                                                                      "title": ["chief"]}}, headers=api.h("admin"))
    assert r.status_code == 200 and r.json()["created"] is True
    assert api.client.put("/v1/hcps/hcp-newcomer", json={"attributes": {"department": ["oncology"]}},
                          headers=api.h("rep")).status_code == 403
    api.components.ranker.refit()  # the background refit, now
    profile = api.client.get("/v1/hcps/hcp-newcomer/profile", headers=api.h("rep")).json()
    assert profile["events"] == 0 and profile["dynamic"] == []
    assert any(p["dimension"] == "therapy_area" and p["value"] == "oncology" for p in profile["predicted"])
    answer = api.client.post("/v1/match", json={"hcp_id": "hcp-newcomer", "k": 3, "language": "en"},
                             headers=api.h("rep"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] and set(answer.json()["profile"]["need_tags"]["therapy_area"]) == {"oncology"}


def test_an_unknown_attribute_or_value_is_refused_by_name(api: Api) -> None:
    r = api.client.put("/v1/hcps/hcp-x1", json={"attributes": {"shoe_size": ["42"]}}, headers=api.h("admin"))
    assert r.status_code == 422 and r.json()["code"] == "unknown_dimension"
    r = api.client.put("/v1/hcps/hcp-x1", json={"attributes": {"department": ["astrology"]}}, headers=api.h("admin"))
    assert r.status_code == 422 and r.json()["code"] == "unknown_value"
    r = api.client.put("/v1/hcps/13912345678", json={"attributes": {}}, headers=api.h("admin"))
    assert r.status_code == 422 and r.json()["code"] == "not_pseudonymous"


def test_events_older_than_the_retention_are_neither_recorded_nor_kept(api: Api) -> None:
    from service.engagement.records import purge_expired
    from service.store import hcps

    asset = next(iter(_asset_ids(api).values()))
    old = _event(1, "hcp-old", asset, "opened", days_ago=800)
    r = api.client.post("/v1/events", json={"events": [old]}, headers=api.h("rep"))
    assert r.json()["expired"] == 1 and r.json()["stored"] == 0
    with api.components.db.session() as s:  # one stored before the retention was shortened
        hcps.insert_events(s, [("t-old-2", "hcp-old", asset, "opened", None, None,
                                 datetime.now(UTC) - timedelta(days=40), None, None)])
    with api.components.db.session() as s:
        assert purge_expired(s, retention_days=30) >= 1
    with api.components.db.session() as s:
        assert s.get(HcpEvent, "t-old-2") is None
