"""The console and a report page in a real browser: Debian's Chromium, headless, driven by Playwright, against
the service on a loopback port. A reviewer accepts one tag and rejects another from the keyboard; the database
shows both decisions under the reviewer's key. An admin creates and revokes a key from the keyboard and finds
both in the audit log; a rep's key is shown no page it may not use, and a direct address to one is refused in
words. The report's charts are drawn; no page logs an error or asks anything of another origin.

Screenshots go to $HCP_SCREENSHOTS_DIR when set (`make screenshots` refreshes eval/screenshots/)."""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright
from sqlalchemy import select

from service.settings import Settings
from service.store.models import (
    ApiKey,
    Asset,
    AssetTag,
    AuditEntry,
    Chunk,
    HcpOptOut,
    Job,
    JobItem,
    TagReview,
    TaxonomyVersion,
)

from .api_helpers import ROOT, SUBSET, HttpApi, start_http, stop_http

# As root and with no network: no sandbox (needs user namespaces), no background calls to Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    for candidate in (os.environ.get("HCP_TEST_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    raise AssertionError("No Chromium found: install Debian's `chromium` package (`make setup-dev` does when run "
                         "as root), or point HCP_TEST_CHROMIUM at a Chromium or Chrome binary.")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpApi]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("console") / "data", llm_mode="off", worker_poll_s=0.1,
                        retrain_after_reviews=10_000)
    api = start_http(settings)
    api.ingest(SUBSET)
    yield api
    stop_http(api)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("HCP_SCREENSHOTS_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Watch:
    """Console errors, uncaught exceptions and requests to any other origin, for one page."""

    def __init__(self, page: Page, origin: str) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("request", lambda req: self._request(req, origin))

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            self.errors.append(f"{msg.type}: {msg.text}")

    def _request(self, req: Request, origin: str) -> None:
        if not (req.url.startswith(origin) or req.url.startswith(("blob:", "data:", "about:"))):
            self.foreign.append(req.url)


def _signed_in(browser: Browser, service: HttpApi, ready: str, role: str = "reviewer", at: str = ""
               ) -> tuple[Page, Watch]:
    """A console page signed in with ``role``'s key at the address ``/console/{at}``, watched from its first
    request, once ``ready`` is on screen."""
    page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
    watch = Watch(page, service.base_url)
    page.goto(f"{service.base_url}/console/{at}")
    page.fill("#key", service.keys[role])
    page.click("#login button[type=submit]")
    page.wait_for_selector(ready)
    return page, watch


# axe-core, vendored from npm by tests/vendor/fetch-axe.sh (its version and integrity hash are in VERSION)
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"


def _accessible(page: Page, name: str, worst_allowed: tuple[str, ...] = ()) -> None:
    """axe-core's WCAG checks on the page as it is now: no violation at all on a console page (the issue asks
    for no serious or critical one; the console has none of any impact, and keeps it so), or none beyond
    ``worst_allowed``'s impacts elsewhere. Evaluated through the driver, so the console's CSP (scripts from
    itself only) stays as it is."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations = page.evaluate("""async () => (await axe.run(document, { resultTypes: ["violations"] }))
        .violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                                  nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }))""")
    found = [v for v in violations if v["impact"] not in worst_allowed]
    assert found == [], f"{name}: {found}"


def _every_control_takes_the_focus(page: Page, name: str) -> None:
    """Tab, from the page's start, reaches every visible control (links, buttons, fields, anything with a
    tabindex): nothing a mouse can use is out of a keyboard's reach, and no control traps the focus."""
    controls = page.evaluate("""() => [...document.querySelectorAll(
            'a[href], button, input, select, textarea, [tabindex]')]
        .filter((e) => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0
                       && getComputedStyle(e).visibility !== 'hidden')
        .map((e, i) => { e.dataset.tabStop = String(i); return i; })""")
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    reached: set[int] = set()
    for _ in range(len(controls) + 40):  # each control once, and slack for a frame's own stops
        page.keyboard.press("Tab")
        stop = page.evaluate("() => document.activeElement && document.activeElement.dataset.tabStop")
        if stop is not None:
            reached.add(int(stop))
        if len(reached) == len(controls):
            break
    missed = page.evaluate("""(reached) => [...document.querySelectorAll('[data-tab-stop]')]
        .filter((e) => !reached.includes(Number(e.dataset.tabStop))).map((e) => e.outerHTML.slice(0, 120))""",
                           sorted(reached))
    assert missed == [], f"{name}: not reachable with Tab: {missed}"
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


def _both_languages(page: Page, shots: Path, name: str, chinese: dict[str, str]) -> None:
    """Screenshots of the page in English and in Chinese (``chinese``: what a selector then shows), then back;
    the accessibility check passes in both, and every control takes the focus from the keyboard."""
    _accessible(page, name)
    _every_control_takes_the_focus(page, name)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    page.click("#lang")
    for selector, text in chinese.items():
        expect(page.locator(selector)).to_contain_text(text)
    _accessible(page, f"{name} (zh)")
    page.screenshot(path=str(shots / f"{name}-zh.png"), full_page=True)
    page.click("#lang")


def _current_tag(page: Page) -> int:
    return int(page.locator(".tag.current").get_attribute("data-tag") or "0")


def test_console_accepts_and_rejects_from_the_keyboard(service: HttpApi, browser: Browser, shots: Path):
    page, watch = _signed_in(browser, service, ".tag.current")
    waiting_before = page.inner_text("#waiting")

    # the evidence quote of a tag that has one is marked in the asset's text
    tags = [int(x) for x in page.locator(".tag").evaluate_all("els => els.map(e => e.dataset.tag)")]
    with service.components.db.session() as s:
        evidence = {t.id: t.evidence for t in s.scalars(select(AssetTag).where(AssetTag.id.in_(tags)))}
    with_quote = next((i for i, t in enumerate(tags) if evidence[t]), None)
    if with_quote is not None:
        for _ in range(with_quote):
            page.keyboard.press("j")
        mark = " ".join(page.inner_text("mark").split()).lower()
        assert mark == " ".join(evidence[tags[with_quote]].split()).lower()
        for _ in range(with_quote):  # back to the first
            page.keyboard.press("k")
    _both_languages(page, shots, "queue", {"#waiting": "待审核", ".tag.current .accept": "通过"})

    accepted = _current_tag(page)
    page.keyboard.press("a")
    page.wait_for_selector(f".tag[data-tag='{accepted}']", state="detached")
    rejected = _current_tag(page)
    assert rejected != accepted
    page.keyboard.press("r")
    page.wait_for_selector(f".tag[data-tag='{rejected}']", state="detached")
    assert page.inner_text("#waiting") != waiting_before

    with service.components.db.session() as s:
        reviews = {r.tag_id: r for r in s.scalars(select(TagReview).where(TagReview.tag_id.in_([accepted, rejected])))}
        statuses = {t.id: (t.status, t.reviewed_by) for t in
                    s.scalars(select(AssetTag).where(AssetTag.id.in_([accepted, rejected])))}
    assert reviews[accepted].action == "accept" and reviews[rejected].action == "reject"
    assert {r.reviewer for r in reviews.values()} == {service.key_ids["reviewer"]}
    assert statuses == {accepted: ("accepted", service.key_ids["reviewer"]),
                        rejected: ("rejected", service.key_ids["reviewer"])}

    # filters: one dimension, and only low-confidence proposals
    dimension = page.locator(".tag.current").get_attribute("data-dimension") or "therapy_area"
    page.select_option("#f-dimension", dimension)
    page.fill("#f-max", "0.5")
    with page.expect_response(lambda r: "/v1/review/queue" in r.url and "max_confidence=0.5" in r.url):
        page.click("#filters button[type=submit]")
    with page.expect_response(lambda r: "/v1/assets/" in r.url):
        pass  # the first asset of the filtered queue is opened
    page.wait_for_selector(".tag.current")
    dims = page.locator(".tag").evaluate_all("els => els.map(e => e.dataset.dimension)")
    assert dims and set(dims) == {dimension}
    confidences = page.locator(".tag .conf").evaluate_all("els => els.map(e => parseFloat(e.textContent))")
    assert confidences and all(c <= 0.5 for c in confidences)

    # edit from the keyboard: E opens the values of the tag's dimension, Enter saves the chosen one
    edited = _current_tag(page)
    # the editor has the focus the moment it opens: E then Enter typed at once saves (a deferred focus lost the
    # Enter to the page under load); checked within one task of the page, so no timing decides it
    focused = page.evaluate("""() => {
        document.dispatchEvent(new KeyboardEvent("keydown", { key: "e", bubbles: true }));
        return document.activeElement.id;
    }""")
    assert focused == "edit-value"
    page.keyboard.press("Escape")  # closes the editor without saving
    page.wait_for_selector("#edit-value", state="detached")
    assert _current_tag(page) == edited
    page.keyboard.press("e")
    page.wait_for_selector("#edit-value")
    new_value = page.eval_on_selector("#edit-value", "s => s.options[s.selectedIndex].value")
    page.keyboard.press("Enter")
    page.wait_for_selector(f".tag[data-tag='{edited}']", state="detached")
    with service.components.db.session() as s:
        review = s.scalar(select(TagReview).where(TagReview.tag_id == edited))
    assert review is not None and review.action == "edit" and review.value_after == new_value

    page.click("#lang")  # Chinese UI text
    assert page.inner_text(".tag.current .accept") == "通过" and "待审核" in page.inner_text("#waiting")
    page.click("#lang")
    assert watch.errors == [] and watch.foreign == []


def test_a_content_editor_uploads_three_files_and_sees_two_tagged_and_one_failure_with_its_code(
        service: HttpApi, browser: Browser, shots: Path, tmp_path: Path):
    soon = date.today() + timedelta(days=20)
    note = tmp_path / "cardiovex_elderly_note_en.md"
    note.write_text(f"---\ntitle: Cardiovex in very elderly patients\nproduct: cardiovex\napproval_status: approved\n"
                    f"valid_until: {soon}\n---\n# Cardiovex in very elderly patients\n\nCardiovex 20 mg once daily "
                    "was studied in 1,204 patients with atrial fibrillation aged 80 or older. Major bleeding occurred "
                    "in 4.2% of them per year.\n", encoding="utf-8")
    faq = tmp_path / "glucora_weekly_faq_zh.txt"
    faq.write_text("格卢可每周一次皮下注射，用于2型糖尿病成人患者的血糖控制。漏打一次时，如距下次注射超过3天，应尽快补打。\n",
                   encoding="utf-8")
    broken = tmp_path / "broken_study.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 500 + b"\n%%EOF\n")

    page, watch = _signed_in(browser, service, "#upload-form", role="content_editor", at="#library")
    visible = page.locator(".tab:not([hidden])").evaluate_all("els => els.map(e => e.dataset.tab)")
    # a content editor reviews nothing and administers nothing; the content gaps are theirs to read
    assert visible == ["library", "gaps", "taxonomy"]
    page.set_input_files("#files", [str(note), str(faq), str(broken)])
    page.focus("#upload-form button[type=submit]")
    page.keyboard.press("Enter")
    job = page.locator("#upload-items li.job")
    expect(job).to_have_attribute("data-status", "partial", timeout=180_000)
    expect(page.locator("#upload-items li[data-state=done]")).to_have_count(2)
    failed = page.locator("#upload-items li[data-state=failed]")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("broken_study.pdf")
    expect(failed).to_contain_text("corrupt_file")
    _accessible(page, "library after an upload")
    page.screenshot(path=str(shots / "library-upload.png"), full_page=True)
    with service.components.db.session() as s:
        job_id = job.get_attribute("data-job")
        items = {i.name: i for i in s.scalars(select(JobItem).where(JobItem.job_id == job_id))}
        assert items["broken_study.pdf"].error_code == "corrupt_file"
        added = {items[n].asset_id for n in (note.name, faq.name)}
        tagged = {a: len(list(s.scalars(select(AssetTag.id).where(AssetTag.asset_id == a)))) for a in added}
        note_id, faq_id = items[note.name].asset_id, items[faq.name].asset_id
    assert None not in added and all(n > 0 for n in tagged.values()), tagged

    # the note's own page, opened from the keyboard: its tags with their evidence marked in the text, its one
    # version, and its history, which names the editor's key
    page.focus(f"[data-open='{note_id}']")
    page.keyboard.press("Enter")
    expect(page.locator("#asset-title")).to_have_text("Cardiovex in very elderly patients")
    expect(page.locator(".tab[data-tab=library]")).to_have_attribute("aria-current", "page")
    with service.components.db.session() as s:
        stored = {t.id: t for t in s.scalars(select(AssetTag).where(AssetTag.asset_id == note_id))}
    shown = page.locator("#asset-tags li").evaluate_all("els => els.map(e => Number(e.dataset.tag))")
    assert set(shown) == set(stored)
    quoted = next(i for i, tag_id in enumerate(shown) if stored[tag_id].evidence)
    page.locator("#asset-tags li button[data-show]").nth(quoted).press("Enter")
    mark = " ".join(page.inner_text("#asset-text mark").split()).lower()
    assert mark == " ".join((stored[shown[quoted]].evidence or "").split()).lower()
    expect(page.locator("#asset-text")).not_to_contain_text("null")
    expect(page.locator("#asset-versions tbody tr")).to_have_count(1)
    created = page.locator("#asset-history tr[data-action='asset.create']")
    expect(created).to_contain_text(service.key_ids["content_editor"])
    created.locator("button").press("Enter")
    expect(page.locator("#asset-history tr.change")).to_contain_text("Cardiovex in very elderly patients")
    _both_languages(page, shots, "asset", {"#asset-tags": "查看依据", "#asset-history tbody": "收起变更"})
    page.focus("#asset-view a[href='#library']")  # back to the library
    page.keyboard.press("Enter")
    expect(page.locator("#library-view")).to_be_visible()

    # filtered by a tag: only assets carrying it, the new Chinese FAQ among them
    page.select_option("#l-tag", "product:glucora")
    page.press("#l-q", "Enter")
    expect(page.locator(f"#assets-table tbody tr[data-asset='{note_id}']")).to_have_count(0)
    expect(page.locator(f"#assets-table tbody tr[data-asset='{faq_id}']")).to_be_visible()
    listed = page.locator("#assets-table tbody tr").evaluate_all("els => els.map(e => e.dataset.asset)")
    with service.components.db.session() as s:
        glucora = set(s.scalars(select(AssetTag.asset_id).where(AssetTag.dimension == "product",
                                                                AssetTag.value == "glucora")))
    assert set(listed) <= glucora
    page.select_option("#l-tag", "")

    # the expiring view lists what lapses within 30 days: the note, valid for 20 more days
    page.check("#l-expiring")
    page.press("#l-q", "Enter")
    rows = page.locator("#assets-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Cardiovex in very elderly patients")
    # delete, from the keyboard: the button asks first and the confirmation takes the focus
    page.focus(f"[data-delete='{note_id}']")
    page.keyboard.press("Enter")
    expect(page.locator(f"[data-confirm-delete='{note_id}']")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#no-assets")).to_be_visible()
    with service.components.db.session() as s:
        assert s.get(Asset, note_id) is None
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "asset.delete",
                                                  AuditEntry.target_id == note_id)).first() is not None
    page.uncheck("#l-expiring")
    page.press("#l-q", "Enter")
    expect(page.locator("#assets-table tbody tr").first).to_be_visible()
    # the rows and the upload's items are in Chinese too, not only the headings
    _both_languages(page, shots, "library", {"#assets-table thead": "有效期至", "#assets-table tbody": "删除",
                                             "#upload-items": "已添加并打标签"})
    assert watch.errors == [] and watch.foreign == []
    # the other upload goes too: this module's service is shared with the other journeys
    r = httpx.delete(f"{service.base_url}/v1/assets/{faq_id}", headers=service.h("content_editor"))
    assert r.status_code == 204, r.text


def test_an_admin_creates_and_revokes_a_key_from_the_keyboard_and_finds_both_in_the_audit_log(
        service: HttpApi, browser: Browser, shots: Path):
    page, watch = _signed_in(browser, service, "#keys-table tbody tr", role="admin", at="#admin")
    assert page.locator(".tab[data-tab=admin]").get_attribute("aria-current") == "page"
    page.focus("#k-name")
    page.keyboard.type("Field rep Wang")
    page.keyboard.press("Tab")  # to the role
    page.select_option("#k-role", "rep")
    page.press("#k-name", "Enter")  # Enter in the form creates the key
    expect(page.locator("#secret-value")).to_be_focused()
    secret = page.inner_text("#secret-value")
    with service.components.db.session() as s:
        created = s.scalars(select(ApiKey).where(ApiKey.name == "Field rep Wang")).one()
        key_id, role, revoked = created.id, created.role, created.revoked_at
    assert role == "rep" and revoked is None and secret.startswith(f"hcp_{key_id}_")
    assert httpx.get(f"{service.base_url}/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()["role"] == "rep"
    page.screenshot(path=str(shots / "admin-keys.png"))

    # revoke: the button asks first, and the confirmation has the focus; Enter confirms
    page.focus(f"[data-revoke='{key_id}']")
    page.keyboard.press("Enter")
    expect(page.locator(f"[data-confirm-revoke='{key_id}']")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"#keys-table tr[data-key='{key_id}']")).to_contain_text("revoked")
    with service.components.db.session() as s:
        assert s.get(ApiKey, key_id).revoked_at is not None  # type: ignore[union-attr]
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.target_id == key_id,
                                                                AuditEntry.actor == service.key_ids["admin"])))
    assert actions == {"key.create", "key.revoke"}
    assert httpx.get(f"{service.base_url}/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401

    # the audit log, filtered by the admin's key id: both entries, the revocation's change side by side
    page.fill("#a-actor", service.key_ids["admin"])
    # the revocation's own reload of the (unfiltered) log may draw first; the rows pressed below are the filtered
    # load's, not ones about to be replaced
    with page.expect_request_finished(lambda r: "/v1/audit?" in r.url and "actor=" in r.url):
        page.press("#a-actor", "Enter")
    entries = page.locator("#audit-table tr[data-audit]").filter(has_text=key_id)
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text("key.revoke")  # newest first
    entries.first.locator("button").press("Enter")
    change = page.locator("#audit-table tr.change")
    expect(change.locator("figure")).to_have_count(2)
    expect(change).to_contain_text("revoked_at")
    page.fill("#a-since", "2099-01-01")  # nothing yet on a day to come
    page.press("#a-actor", "Enter")
    expect(page.locator("#audit-table tr[data-audit]")).to_have_count(0)
    page.fill("#a-since", "")
    page.press("#a-actor", "Enter")
    _both_languages(page, shots, "admin-audit", {"#audit-table thead": "操作", "#keys-table tbody": "已吊销"})
    assert watch.errors == [] and watch.foreign == []


def test_a_rep_key_is_shown_no_page_it_may_not_use_and_a_direct_address_is_refused_in_words(
        service: HttpApi, browser: Browser, shots: Path):
    door = browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
    door_watch = Watch(door, service.base_url)
    door.goto(f"{service.base_url}/console/")
    expect(door.locator("#key")).to_be_visible()
    _both_languages(door, shots, "sign-in", {"#login button": "登录"})
    door.close()
    assert door_watch.errors == [] and door_watch.foreign == []
    page, watch = _signed_in(browser, service, "#need-form", role="rep")
    visible = page.locator(".tab:not([hidden])").evaluate_all("els => els.map(e => e.dataset.tab)")
    assert visible == ["suggest"]  # no library, review queue, reports or admin for a rep
    expect(page.locator("#whoami")).to_contain_text("Rep")
    for at, name in (("#admin", "Admin"), ("#queue", "Review queue"), ("#reports", "Reports"),
                     ("#library", "Library"), ("#taxonomy", "Taxonomy")):
        page.goto(f"{service.base_url}/console/{at}")
        expect(page.locator("#refused-text")).to_contain_text(f"{name} is not open to a Rep key")
        assert page.locator("#admin-view").is_hidden() and page.locator("#queue-view").is_hidden()
        assert page.locator("#library-view").is_hidden()
    _accessible(page, "refused")
    page.screenshot(path=str(shots / "refused.png"))
    # the API refuses the same, whatever a page would show
    assert httpx.get(f"{service.base_url}/v1/audit", headers=service.h("rep")).status_code == 403
    assert watch.errors == [] and watch.foreign == []  # nothing the rep may not read was even asked for


def test_a_rep_builds_a_need_sees_results_and_gets_talking_points_whose_citations_open_the_passage(
        service: HttpApi, browser: Browser, shots: Path, tmp_path: Path):
    page, watch = _signed_in(browser, service, "#need-form", role="rep", at="#suggest")
    # the pickers speak the HCP's language: Chinese by default, English when the HCP reads English
    expect(page.locator("fieldset[data-dimension=therapy_area] legend")).to_have_text("治疗领域")
    page.select_option("#s-language", "en")
    expect(page.locator("fieldset[data-dimension=therapy_area] legend")).to_have_text("Therapy area")
    page.check("#need-therapy_area-cardiovascular")
    page.check("#need-value_driver-safety")
    page.click("#need-form button[type=submit]")
    results = page.locator("#results li")
    expect(results.first).to_be_visible()
    expect(page.locator("#match-notice")).to_be_visible()
    shown = results.evaluate_all("els => els.map(e => e.dataset.result)")
    with service.components.db.session() as s:
        assets = {a.id: a for a in s.scalars(select(Asset).where(Asset.id.in_(shown)))}
        # only approved, unexpired content reaches a rep, each with its reason and source marked
        assert set(assets) == set(shown) and all(a.approval_status == "approved" for a in assets.values())
        assert all(a.valid_until is None or a.valid_until >= date.today() for a in assets.values())
    first = results.first
    expect(first.locator(".reason")).not_to_be_empty()
    expect(first.locator(".badge")).to_have_text("Internal" if assets[shown[0]].source == "internal" else "External")
    page.screenshot(path=str(shots / "suggest.png"), full_page=True)

    page.click("#make-points")
    citations = page.locator("#points button.cite")
    expect(citations.first).to_be_visible(timeout=60_000)
    expect(page.locator("#points li")).to_have_count(3)
    expect(page.locator("#points")).not_to_contain_text("null")
    # quoted and drafted points look different: each says which it is
    labels = {"extractive": "Quoted", "llm": "Drafted · checked against its source"}
    for item in page.locator("#points li").all():
        assert item.locator(".method").inner_text() == labels[item.get_attribute("data-point") or ""]
    # a citation opens its passage, the quoted words marked; it is the asset's current text
    chunk_id = citations.first.get_attribute("data-citation")
    citations.first.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#passage")
    expect(dialog).to_be_visible()
    mark = " ".join(dialog.locator("mark").inner_text().split())
    with service.components.db.session() as s:
        chunk = s.get(Chunk, chunk_id)
        assert chunk is not None and chunk.asset_id in shown
        assert mark and mark in " ".join(chunk.text.split())
    _accessible(page, "suggestions with a passage open")
    page.screenshot(path=str(shots / "suggest-points.png"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # an HCP who opts out: recorded, and their list uses nothing about them
    page.fill("#s-hcp", "crm-4711")
    page.press("#s-hcp", "Tab")
    expect(page.locator("#opt-out-state")).to_contain_text("accepts personalised")
    page.click("#opt-out")
    expect(page.locator("#opt-out-state")).to_contain_text("declined personalised")
    with service.components.db.session() as s:
        assert s.get(HcpOptOut, "crm-4711") is not None
    page.click("#need-form button[type=submit]")
    expect(page.locator("#match-notice")).to_contain_text("opted out")
    page.click("#opt-in")
    expect(page.locator("#opt-out-state")).to_contain_text("accepts personalised")
    with service.components.db.session() as s:
        assert s.get(HcpOptOut, "crm-4711") is None

    # a panel from a CSV: a row per suggestion on screen, and the same plan downloaded
    page.set_input_files("#panel-file", str(ROOT / "samples" / "panel.csv"))
    page.click("#panel-form button[type=submit]")
    expect(page.locator("#plan-table tbody tr").first).to_be_visible()
    hcps = set(page.locator("#plan-table tbody tr").evaluate_all("els => els.map(e => e.dataset.hcp)"))
    assert hcps == {"hcp-001", "hcp-002", "hcp-003", "hcp-004"}
    with page.expect_download() as download:
        page.click("#panel-download")
    saved = tmp_path / "plan.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(saved.open(encoding="utf-8")))
    assert len(rows) == page.locator("#plan-table tbody tr").count() and rows[0]["asset_id"]
    with service.components.db.session() as s:
        plan = s.scalars(select(AuditEntry).where(AuditEntry.action == "panel.plan")
                         .order_by(AuditEntry.id.desc())).first()
        assert plan is not None and plan.after and plan.after["hcps"] == 4
    _both_languages(page, shots, "suggest-panel", {"#need-form h2": "医生需求", "#plan-table thead": "渠道"})
    assert watch.errors == [] and watch.foreign == []


def test_an_admin_breaks_the_taxonomy_sees_the_error_at_its_line_fixes_it_saves_and_watches_the_retag_finish(
        service: HttpApi, browser: Browser, shots: Path):
    page, watch = _signed_in(browser, service, "#tx-active:not(:empty)", role="admin", at="#taxonomy")
    active = page.input_value("#tx-source")
    version = yaml.safe_load(active)["version"]
    lines = active.splitlines()
    at = lines.index("      - id: cardiologist")
    # an unknown field under a value: the check answers as one types, at that line, naming the field
    broken = "\n".join([*lines[:at + 1], "        colour: red", *lines[at + 1:]])
    page.fill("#tx-source", broken)
    expect(page.locator("#tx-gutter li.bad")).to_have_text(str(at + 2))
    expect(page.locator("#tx-marker")).to_contain_text(f"Line {at + 2}")
    expect(page.locator("#tx-marker")).to_contain_text("colour")
    expect(page.locator("#tx-save")).to_be_disabled()
    page.focus("#tx-goto")  # to the line, from the keyboard: the bad line is selected, its message at it
    page.keyboard.press("Enter")
    expect(page.locator("#tx-source")).to_be_focused()
    assert page.evaluate("() => { const s = document.querySelector('#tx-source'); "
                         "return s.value.slice(s.selectionStart, s.selectionEnd); }") == "        colour: red"
    marker = page.locator("#tx-marker").bounding_box()
    gutter_line = page.locator("#tx-gutter li.bad").bounding_box()
    assert marker and gutter_line and abs(marker["y"] - gutter_line["y"]) <= 4  # at the line
    _accessible(page, "taxonomy with an error")
    page.screenshot(path=str(shots / "taxonomy-error.png"))

    # fixed, as a new version whose cardiologist definition changed: reviewed as a diff, saved from the keyboard
    fixed = active.replace(f'version: "{version}"', f'version: "{version}.ui"').replace(
        'en: "A cardiologist."', 'en: "A cardiologist, in hospital or in practice."')
    assert fixed.count("in hospital or in practice") == 1
    page.fill("#tx-source", fixed)
    expect(page.locator("#tx-problem")).to_contain_text(f"version {version}.ui")
    page.focus("#tx-review")
    page.keyboard.press("Enter")
    expect(page.locator("#tx-diff-lines .add")).to_have_count(2)
    expect(page.locator("#tx-retags")).to_contain_text("audience")
    expect(page.locator("#tx-save")).to_be_focused()
    page.screenshot(path=str(shots / "taxonomy-diff.png"), full_page=True)
    page.keyboard.press("Enter")
    retag = page.locator("#tx-retag")
    expect(retag).to_have_attribute("data-status", "succeeded", timeout=180_000)
    expect(page.locator("#tx-active")).to_contain_text(f"{version}.ui")
    with service.components.db.session() as s:
        now = s.scalars(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True))).one()
        assert now.version == f"{version}.ui" and now.created_by == service.key_ids["admin"]
        job = s.get(Job, retag.get_attribute("data-job"))
        assert job is not None and job.status == "succeeded" and job.kind == "retag"
        retagged = s.scalars(select(AssetTag).where(AssetTag.dimension == "audience",
                                                    AssetTag.taxonomy_version.endswith(f"{version}.ui"))).first()
        assert retagged is not None
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "taxonomy.replace",
                                                  AuditEntry.actor == service.key_ids["admin"])).first()
    _both_languages(page, shots, "taxonomy", {"#tx-retag": "重新标注", ".tab[data-tab=taxonomy]": "标签体系"})
    assert watch.errors == [] and watch.foreign == []


def _review_by_gold(api: HttpApi, assets: list[dict[str, Any]]) -> None:
    """What a reviewer who knows the answers would do: accept right proposals, reject wrong ones, add misses."""
    gold = {Path(k).name: v for k, v in
            yaml.safe_load((ROOT / "samples" / "gold.yaml").read_text(encoding="utf-8"))["assets"].items()}
    with httpx.Client(base_url=api.base_url, headers=api.h("reviewer"), timeout=60) as client:
        for summary in assets:
            asset = client.get(f"/v1/assets/{summary['id']}").json()
            for dimension, values in gold[Path(asset["uri"]).name].items():
                values = {values} if isinstance(values, str) else set(values or [])
                for tag in asset["tags"]:
                    if tag["dimension"] == dimension and tag["status"] == "proposed" and tag["method"] != "metadata":
                        action = "accept" if tag["value"] in values else "reject"
                        assert client.post(f"/v1/tags/{tag['id']}/review", json={"action": action}).status_code == 200
                for value in values - {t["value"] for t in asset["tags"] if t["dimension"] == dimension}:
                    r = client.post(f"/v1/assets/{asset['id']}/tags", json={"dimension": dimension, "value": value})
                    assert r.status_code == 201, r.text


def test_report_page_draws_its_charts(service: HttpApi, browser: Browser, shots: Path):
    # the samples this module ingested, whose answers the gold knows (other journeys here may add their own files)
    samples = {Path(rel).name for rel in SUBSET}
    with httpx.Client(base_url=service.base_url, headers=service.h("admin"), timeout=60) as client:
        listed = client.get("/v1/assets", params={"limit": 200}).json()["items"]
        assets = [a for a in listed if Path(client.get(f"/v1/assets/{a['id']}").json()["uri"]).name in samples]
    assert len(assets) == len(SUBSET)
    half = len(assets) // 2
    _review_by_gold(service, assets[:half])  # a first review round, and a report on it: run A
    with httpx.Client(base_url=service.base_url, headers=service.h("reviewer"), timeout=120) as client:
        first = client.post("/v1/eval/reports", json={"title": "First review round"}).json()
    _review_by_gold(service, assets[half:])

    page, watch = _signed_in(browser, service, "#waiting")
    page.click("button[data-tab=reports]")
    page.wait_for_selector(f"#reports li[data-report='{first['id']}']")
    page.select_option("#baseline", first["id"])
    page.click("#new-report")
    page.wait_for_selector("#reports li:nth-child(2)")
    frame = page.frame_locator("#report-frame")
    frame.locator("figure.plot svg").first.wait_for()
    report_id = page.locator("#reports li").first.get_attribute("data-report")
    assert report_id and report_id != first["id"] and frame.locator("figure.plot svg").count() >= 5
    assert frame.locator("#comparison").count() == 1  # run A (first round) against run B (all reviews)
    _both_languages(page, shots, "reports", {"#new-report": "生成报告"})
    assert watch.errors == [] and watch.foreign == []

    # the report on its own page, as a reviewer's browser opens it with the key in a header
    report_page = browser.new_page(viewport={"width": 1200, "height": 900},
                                   extra_http_headers={"Authorization": f"Bearer {service.keys['reviewer']}"})
    report_watch = Watch(report_page, service.base_url)
    response = report_page.goto(f"{service.base_url}/v1/eval/reports/{report_id}")
    assert response is not None and response.status == 200
    drawn = report_page.eval_on_selector_all("figure.plot svg", """svgs => svgs.map(svg => {
        const box = svg.getBoundingClientRect();
        const marks = svg.querySelectorAll('path, rect, use').length;
        return {plot: svg.parentElement.dataset.plot, width: box.width, height: box.height, marks};
    })""")
    names = {d["plot"] for d in drawn}
    assert {"dimensions", "reliability", "precision_coverage", "methods", "acceptance", "comparison"} <= names
    assert all(d["width"] > 100 and d["height"] > 100 and d["marks"] > 5 for d in drawn), drawn
    assert report_page.inner_text("[data-key='overall.f1']") != ""
    _accessible(report_page, "report", worst_allowed=("minor", "moderate"))  # the report page: serious, critical
    report_page.screenshot(path=str(shots / "report.png"), full_page=False)
    report_page.screenshot(path=str(shots / "report-full.png"), full_page=True)
    assert report_watch.errors == [] and report_watch.foreign == []


# Two planted errors (a number the study never reported; "similar" of a difference its interval establishes) and
# one faithful sentence.
PLANTED_DRAFT = (
    "# Cardiovex: bleeding results\n\n"
    "Major bleeding occurred at 2.4% per year with Cardiovex and 3.8% per year with warfarin.\n\n"
    "ISTH major bleeding was similar in both arms.\n\n"
    "Intracranial haemorrhage was reduced by 46% (0.4% vs 0.8% per year).\n"
)


def test_an_editor_checks_a_draft_and_sees_both_planted_errors_marked_beside_their_sources(
        service: HttpApi, browser: Browser, shots: Path, tmp_path: Path):
    draft = tmp_path / "bleeding_draft_en.md"
    draft.write_text(PLANTED_DRAFT, encoding="utf-8")
    with service.components.db.session() as s:
        bleeding = next(a for a in s.scalars(select(Asset)) if a.title.startswith("VIVA-AF safety analysis"))
        bleeding_id, bleeding_title = bleeding.id, bleeding.title
    page, watch = _signed_in(browser, service, "#upload-form", role="content_editor", at="#library")
    page.click("#open-check")  # from the library
    expect(page.locator("#check-form")).to_be_visible()
    expect(page.locator(".tab[data-tab=library]")).to_have_attribute("aria-current", "page")
    page.set_input_files("#c-draft", str(draft))
    page.select_option("#c-refs", [bleeding_id])
    page.focus("#c-run")
    page.keyboard.press("Enter")
    flags = page.locator("#check-flags li[data-kind]")
    expect(flags).to_have_count(2, timeout=60_000)
    kinds = flags.evaluate_all("els => els.map(e => e.dataset.kind)")
    assert sorted(kinds) == ["contradicts_source", "unsupported_number"]
    for i, kind in enumerate(kinds):
        item = flags.nth(i)
        expect(item).to_contain_text(bleeding_title)  # beside its source
        quote = item.locator("blockquote").inner_text()
        assert ("0.71-0.93" in quote) if kind == "contradicts_source" else ("3.8%" in quote), quote
    marks = page.locator("#check-text mark.flagged")
    expect(marks).to_have_count(2)
    marked = " ".join(marks.all_inner_texts())
    assert "2.4% per year" in marked and "similar in both arms" in marked and "Intracranial" not in marked
    _both_languages(page, shots, "check", {"#check-flags li[data-kind=contradicts_source]": "与来源相矛盾",
                                           "#check-flags li[data-kind=unsupported_number]": "该数字未见于所引用的文献",
                                           "#c-refs": "已批准"})
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the flags fall under the draft
    box_text, box_flags = page.locator("#check-text").bounding_box(), page.locator("#check-flags").bounding_box()
    assert box_text and box_flags and box_flags["y"] >= box_text["y"] + box_text["height"] - 1
    assert page.evaluate("() => document.querySelector('#check-result').scrollWidth") <= 390
    _accessible(page, "check on a phone")
    page.screenshot(path=str(shots / "check-phone.png"), full_page=True)
    assert watch.errors == [] and watch.foreign == []
    with service.components.db.session() as s:  # the check was audited; the draft itself is not kept
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "content.check")).first() is not None
        assert not any(a.title.startswith("Cardiovex: bleeding results") for a in s.scalars(select(Asset)))


def test_a_cardiovex_rep_asking_for_metabolism_is_told_nothing_in_scope_fits_and_the_gap_is_reported(
        service: HttpApi, browser: Browser, shots: Path):
    made = httpx.post(f"{service.base_url}/v1/keys", json={"role": "rep", "name": "cardiovex rep",
                                                            "products": ["cardiovex"]},
                      headers=service.h("admin"), timeout=30)
    assert made.status_code == 201, made.text
    page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
    watch = Watch(page, service.base_url)
    page.goto(f"{service.base_url}/console/#suggest")
    page.fill("#key", made.json()["secret"])
    page.click("#login button[type=submit]")
    page.wait_for_selector("#need-form")
    page.select_option("#s-language", "en")
    page.check("#need-therapy_area-metabolism")
    page.check("#need-value_driver-safety")
    page.click("#need-form button[type=submit]")
    coverage = page.locator("#coverage")
    expect(coverage).to_be_visible()
    expect(coverage).to_contain_text("Nothing in your products covers Endocrinology and metabolism")
    expect(page.locator("#results li")).to_have_count(0)
    assert page.locator("input[data-use]:checked").count() == 0, "nothing is pre-selected for talking points"
    expect(page.locator("#make-points")).to_be_hidden()
    # the panel: the metabolism and oncology doctors are marked, nothing is planned for them
    page.set_input_files("#panel-file", str(ROOT / "samples" / "panel.csv"))
    page.click("#panel-form button[type=submit]")
    for hcp in ("hcp-002", "hcp-004"):
        row = page.locator(f"#plan-table tbody tr[data-hcp={hcp}]")
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-coverage", "none")
        expect(row).to_contain_text("Nothing in scope fits")
    _both_languages(page, shots, "suggest-nothing-fits", {"#plan-table thead": "覆盖情况"})
    assert watch.errors == [] and watch.foreign == []
    page.close()
    # what the rep could not be served is on the content team's gap page, in both languages, with no doctor
    gaps, gaps_watch = _signed_in(browser, service, "#gaps-table", role="reviewer", at="#gaps")
    expect(gaps.locator("#gaps-table")).to_contain_text("Endocrinology and metabolism")
    expect(gaps.locator("#gaps-table")).not_to_contain_text("hcp-0")
    expect(gaps.locator("#gaps-download")).to_have_attribute("href", re.compile("^blob:"))
    _both_languages(gaps, shots, "content-gaps", {"#gaps-table": "内分泌与代谢", "#gaps-h": "无内容可满足的需求"})
    assert gaps_watch.errors == [] and gaps_watch.foreign == []


def test_a_rep_picks_a_doctor_sees_the_profile_dismisses_a_suggestion_with_a_reason_and_never_sees_it_again(
        service: HttpApi, browser: Browser, shots: Path):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from service.store.hcp_models import HcpEvent
    from service.store.models import Asset

    with service.components.db.session() as s:
        visible = {(a.uri or "").rsplit("/", 1)[-1]: a.id
                   for a in s.scalars(select(Asset).where(Asset.approval_status == "approved"))}
    read = [visible["cardiovex_real_world_en.md"], visible["cardiovex_bleeding_safety_en.pdf"]]
    now = datetime.now(UTC)
    events = [{"id": f"b-{n}", "hcp_id": "hcp-b001", "asset_id": asset, "action": action, "channel": "online",
               "occurred_at": (now - timedelta(days=2 + n)).isoformat()}
              for n, (asset, action) in enumerate([(read[0], "opened"), (read[0], "viewed"), (read[1], "opened")])]
    r = httpx.post(f"{service.base_url}/v1/events", json={"events": events}, headers=service.h("admin"), timeout=30)
    assert r.status_code == 200 and r.json()["stored"] == 3, r.text
    r = httpx.put(f"{service.base_url}/v1/hcps/hcp-b001", json={"attributes": {"department": ["cardiology"]}},
                  headers=service.h("admin"), timeout=30)
    assert r.status_code == 200, r.text
    page, watch = _signed_in(browser, service, "#need-form", role="rep", at="#suggest")
    page.select_option("#s-language", "en")
    page.fill("#s-hcp", "hcp-b001")
    page.press("#s-hcp", "Tab")  # the change: the card loads
    card = page.locator("#profile-card")
    expect(card).to_contain_text("Cardiovascular")
    expect(card).to_contain_text("opened 2 · read 1")
    expect(card).to_contain_text("Cardiology")  # the CRM's department, as the taxonomy labels it
    expect(card.locator(".fresh.fresh")).not_to_have_count(0)
    page.click("#need-form button[type=submit]")  # no need picked: the doctor's profile is the need
    first = page.locator("#results li").first
    expect(first).to_be_visible()
    expect(first.locator(".evidence")).to_contain_text("Why this doctor:")
    dismissed = first.get_attribute("data-result")
    first.locator("button[data-dismiss]").click()
    page.select_option(f"#results li[data-result='{dismissed}'] select", "already_discussed")
    page.click(f"button[data-confirm-dismiss='{dismissed}']")
    expect(page.locator(f"#results li[data-result='{dismissed}']")).to_have_count(0)
    _both_languages(page, shots, "suggest-doctor", {"#profile-card h3": "互动画像"})
    page.click("#need-form button[type=submit]")  # asked again: it does not come back
    expect(page.locator("#results li").first).to_be_visible()
    expect(page.locator(f"#results li[data-result='{dismissed}']")).to_have_count(0)
    assert watch.errors == [] and watch.foreign == []
    page.close()
    with service.components.db.session() as s:  # the database agrees
        stored = s.scalars(select(HcpEvent).where(HcpEvent.hcp_id == "hcp-b001",
                                                  HcpEvent.action == "dismissed")).all()
        assert [(e.asset_id, e.reason) for e in stored] == [(dismissed, "already_discussed")]
