// One asset's page (staff), at #asset/<id>: its tags (method, confidence, review state; the chosen tag's
// evidence marked in the text, with its page or slide), its versions and its history (who did what to it and
// its tags, before and after). It uses the console's helpers ($, el, api, t, state, when, highlighted, label,
// valueLabel) and only the public API.
"use strict";

const assetPage = { detail: null, history: [], cursor: null, tag: 0, open: new Set(), latest: latestOnly() };

async function openAsset(id) {
  if (!id) { location.hash = "library"; return; }
  const [detail, history] = await assetPage.latest(Promise.all([
    api(`/v1/assets/${encodeURIComponent(id)}`).then((r) => r.json()),
    api(`/v1/assets/${encodeURIComponent(id)}/history?limit=50`).then((r) => r.json()),
  ])) || [];
  if (!detail) return;
  assetPage.detail = detail;
  assetPage.history = history.items;
  assetPage.cursor = history.next_cursor;
  assetPage.tag = 0;
  assetPage.open.clear();
  renderAsset();
  $("#asset-title").focus();
}

async function moreHistory() {
  const id = assetPage.detail.id;
  const page = await (await api(`/v1/assets/${encodeURIComponent(id)}/history?limit=50&cursor=${assetPage.cursor}`)).json();
  assetPage.history.push(...page.items);
  assetPage.cursor = page.next_cursor;
  renderHistory();
}

function renderAsset() {
  const a = assetPage.detail;
  if (!a) return;
  $("#asset-title").textContent = a.title;
  const facts = [a.id, a.format, a.language, t("status_" + a.approval_status), t("source_" + a.source),
    a.valid_until ? `${t("valid_until")} ${a.valid_until}` : null, a.approval_code, a.owner].filter(Boolean);
  $("#asset-facts").textContent = facts.join(" · ");
  renderAssetTags();
  renderVersions();
  renderHistory();
}

function tagWhere(tag) {
  // the page or slide of the first chunk the evidence quote is in
  const found = tag.evidence && assetPage.detail.chunks.find((c) => highlighted(c.text, tag.evidence).length > 1);
  return found ? where(found) : "";
}

function renderAssetTags() {
  const tags = assetPage.detail.tags;
  $("#asset-no-tags").hidden = tags.length > 0;
  $("#asset-tags").replaceChildren(...tags.map((tag, i) => {
    const where = tagWhere(tag);
    return el("li", { "data-tag": String(tag.id), class: `tag${i === assetPage.tag ? " current" : ""}` },
      el("div", {},
        el("div", { class: "dim" }, `${label(dimension(tag.dimension)) || tag.dimension} · ${t("method")} ${tag.method}`
          + ` · ${t("tag_status_" + tag.status)}${where ? " · " + where : ""}`),
        el("span", { class: "value" }, `${valueLabel(tag.dimension, tag.value)} `),
        el("span", { class: `conf ${confidenceClass(tag.confidence)}`, title: t("confidence") }, tag.confidence.toFixed(2))),
      el("div", { class: "actions" }, el("button", { type: "button", "aria-pressed": String(i === assetPage.tag),
        "data-show": String(tag.id), onclick: () => { assetPage.tag = i; renderAssetTags(); } }, t("show_evidence"))),
      el("div", { class: "quote" }, tag.evidence ? `“${tag.evidence}”` : t("no_evidence")));
  }));
  const tag = tags[assetPage.tag];
  $("#asset-text").replaceChildren(...textWithQuote(assetPage.detail.chunks, tag && tag.evidence, t("asset_text")));
  const mark = $("#asset-text mark");
  if (mark) mark.scrollIntoView({ block: "nearest" });
}

function renderVersions() {
  $("#asset-versions tbody").replaceChildren(...assetPage.detail.versions.map((v) => el("tr", {},
    el("td", {}, String(v.version)), el("td", {}, when(v.created_at)),
    el("td", {}, `${v.size_bytes.toLocaleString()} B`), el("td", {}, el("code", {}, v.content_hash.slice(0, 12))))));
}

function renderHistory() {
  $("#asset-history tbody").replaceChildren(...auditRows(assetPage.history, assetPage.open, renderHistory));
  $("#asset-history-more").hidden = !assetPage.cursor;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#asset-history-more").addEventListener("click", () => moreHistory().catch((err) => toast(err.message)));
});
