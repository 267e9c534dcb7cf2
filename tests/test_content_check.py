"""POST /v1/content/check: a draft with planted errors is flagged beside the reference sentences they fail on;
bad input gets a 4xx with a code and leaves nothing behind; every check is audited."""

from __future__ import annotations

import pytest

from service.settings import Settings
from service.store.models import Asset, AuditEntry

from .api_helpers import SUBSET, Api, ingest_samples, start_api, stop_api

# Two planted errors (a number the study never reported; "similar" of a difference its interval establishes),
# one faithful sentence, and no safety statement beyond the bleeding results themselves.
DRAFT = (
    "# Cardiovex: bleeding results\n\n"
    "Major bleeding occurred at 2.4% per year with Cardiovex and 3.8% per year with warfarin.\n\n"
    "ISTH major bleeding was similar in both arms.\n\n"
    "Intracranial haemorrhage was reduced by 46% (0.4% vs 0.8% per year).\n"
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Api:
    settings = Settings(data_dir=tmp_path_factory.mktemp("check") / "data", llm_mode="off", worker_enabled=False,
                        tagging_mode="learned")
    api = start_api(settings)
    ingest_samples(api.components, SUBSET)
    yield api
    stop_api(api)


def _id(api: Api, title_start: str) -> str:
    with api.components.db.session() as s:
        return next(a.id for a in s.query(Asset) if a.title.startswith(title_start))


def _audits(api: Api) -> int:
    with api.components.db.session() as s:
        return s.query(AuditEntry).filter(AuditEntry.action == "content.check").count()


def _check(api: Api, role: str, draft: tuple[str, bytes], ids: list[str], files: list[tuple[str, bytes]] = ()):
    upload = [("file", (draft[0], draft[1]))] + [("references", f) for f in files]
    return api.client.post("/v1/content/check", data={"reference_ids": ids}, files=upload, headers=api.h(role))


def test_a_draft_with_two_planted_errors_gets_both_flagged_beside_its_source(api):
    bleeding = _id(api, "VIVA-AF safety analysis")
    before = _audits(api)
    r = _check(api, "content_editor", ("draft.md", DRAFT.encode()), [bleeding])
    assert r.status_code == 200, r.text
    out = r.json()
    flags = {f["kind"]: f for f in out["flags"]}
    assert set(flags) == {"unsupported_number", "contradicts_source"}, out["flags"]
    number, direction = flags["unsupported_number"], flags["contradicts_source"]
    assert number["claim"] == "2.4%" and number["reference"] == bleeding and "3.8%" in number["quote"]
    assert direction["claim"] == "similar" and "0.71-0.93" in direction["quote"]
    for flag in (number, direction):  # each points at its sentence in the draft's text and at a stored passage
        assert out["text"][flag["start"]:flag["end"]] == flag["sentence"]
        assert flag["chunk_id"] and flag["chunk_id"].startswith(bleeding)
    assert not any("Intracranial" in (f["sentence"] or "") for f in out["flags"])  # the faithful sentence stands
    assert _audits(api) == before + 1


def test_expired_and_unapproved_references_and_a_missing_safety_statement_are_flagged(api):
    leaflet = _id(api, "昂可替尼二线治疗T790M阳性患者")  # expired
    esc = _id(api, "ESC 2026年会速递")  # a draft, not approved
    piece = "卡迪维显著降低卒中风险，优于华法林。\n".encode()
    out = _check(api, "reviewer", ("piece.txt", piece), [leaflet, esc]).json()
    kinds = [f["kind"] for f in out["flags"]]
    assert "expired_reference" in kinds and "unapproved_reference" in kinds and "missing_fair_balance" in kinds
    assert {f["reference"] for f in out["flags"] if f["kind"].endswith("_reference")} == {leaflet, esc}


def test_an_uploaded_reference_file_is_checked_against_like_a_stored_one(api):
    reference = (b"# VIVA-AF\n\nMajor bleeding occurred at 3.1% per year with Cardiovex and 3.8% per year with "
                 b"warfarin (HR 0.81; 95% CI 0.71-0.93).\n\nBleeding adverse events were monitored.\n")
    out = _check(api, "content_editor", ("draft.md", DRAFT.encode()), [], [("viva.md", reference)]).json()
    assert {f["reference"] for f in out["flags"] if f["kind"] == "contradicts_source"} == {"viva.md"}


def test_bad_input_gets_a_4xx_with_a_code_and_stores_nothing(api):
    bleeding = _id(api, "VIVA-AF safety analysis")
    before = _audits(api)
    cases = [
        (("draft.exe", b"MZ\x90\x00 not a document"), [bleeding], {415}, None),
        (("draft.md", DRAFT.encode()), ["no-such-asset"], {404}, "reference_not_found"),
        (("draft.md", DRAFT.encode()), [], {422}, "no_references"),
        (("draft.md", b""), [bleeding], {422}, None),
    ]
    for draft, ids, statuses, code in cases:
        r = _check(api, "content_editor", draft, ids)
        assert r.status_code in statuses, (draft[0], ids, r.text)
        body = r.json()
        assert body["code"] and body["message"], body
        if code:
            assert body["code"] == code
    # a rep may not check drafts at all
    assert _check(api, "rep", ("draft.md", DRAFT.encode()), [bleeding]).status_code == 403
    assert _audits(api) == before  # nothing was checked, so nothing was recorded
