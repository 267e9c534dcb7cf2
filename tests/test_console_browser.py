"""The review console and a report page in a real browser: Debian's Chromium, headless, driven by Playwright,
against the service on a loopback port. A reviewer accepts one tag and rejects another from the keyboard; the
database shows both decisions under the reviewer's key. The report's charts are drawn; no page logs an error
or asks anything of another origin.

Screenshots go to $HCP_SCREENSHOTS_DIR when set (`make screenshots` refreshes eval/screenshots/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright
from sqlalchemy import select

from service.settings import Settings
from service.store.models import AssetTag, TagReview

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


def _signed_in(browser: Browser, service: HttpApi, ready: str) -> tuple[Page, Watch]:
    """A reviewer's console page, watched from its first request, once ``ready`` is on screen."""
    page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
    watch = Watch(page, service.base_url)
    page.goto(f"{service.base_url}/console/")
    page.fill("#key", service.keys["reviewer"])
    page.click("#login button[type=submit]")
    page.wait_for_selector(ready)
    return page, watch


def _current_tag(page: Page) -> int:
    return int(page.locator(".tag.current").get_attribute("data-tag") or "0")


def test_console_accepts_and_rejects_from_the_keyboard(service: HttpApi, browser: Browser, shots: Path):
    rep = browser.new_page()  # a rep may not review: the console says so, in words (and the 403 is logged)
    rep.goto(f"{service.base_url}/console/")
    rep.fill("#key", service.keys["rep"])
    rep.click("#login button[type=submit]")
    expect(rep.locator("#login-error")).to_contain_text("reviewer or admin")
    rep.close()

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
    page.screenshot(path=str(shots / "console.png"))

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
    with httpx.Client(base_url=service.base_url, headers=service.h("admin"), timeout=60) as client:
        assets = client.get("/v1/assets", params={"limit": 200}).json()["items"]
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
    report_page.screenshot(path=str(shots / "report.png"), full_page=False)
    report_page.screenshot(path=str(shots / "report-full.png"), full_page=True)
    assert report_watch.errors == [] and report_watch.foreign == []
