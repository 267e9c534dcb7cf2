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
  return found ? (found.page ? t("page", { n: found.page }) : found.slide ? t("slide", { n: found.slide }) : "") : "";
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
  const quote = tag && tag.evidence;
  let found = false;
  const chunks = assetPage.detail.chunks.map((c) => {
    const where = c.page ? t("page", { n: c.page }) : c.slide ? t("slide", { n: c.slide }) : (c.section || "");
    const parts = found ? [c.text] : highlighted(c.text, quote);
    if (parts.length > 1) found = true;
    return el("p", { class: "chunk" }, where ? el("span", { class: "where" }, where) : null, ...parts);
  });
  const missing = quote && !found ? [el("p", { class: "muted" }, t("evidence_not_found"))] : [];
  $("#asset-text").replaceChildren(el("strong", {}, t("asset_text")), ...missing, ...chunks);
  const mark = $("#asset-text mark");
  if (mark) mark.scrollIntoView({ block: "nearest" });
}

function renderVersions() {
  $("#asset-versions tbody").replaceChildren(...assetPage.detail.versions.map((v) => el("tr", {},
    el("td", {}, String(v.version)), el("td", {}, when(v.created_at)),
    el("td", {}, `${v.size_bytes.toLocaleString()} B`), el("td", {}, el("code", {}, v.content_hash.slice(0, 12))))));
}

function renderHistory() {
  const rows = [];
  for (const e of assetPage.history) {
    const shown = assetPage.open.has(e.id);
    rows.push(el("tr", { "data-history": e.action },
      el("td", {}, when(e.at)), el("td", {}, el("code", {}, e.actor), ` (${t("role_" + e.role)})`),
      el("td", {}, e.action), el("td", {}, `${e.target_type} ${e.target_id || ""}`),
      el("td", {}, el("button", { type: "button", "aria-expanded": String(shown), onclick: () => {
        if (shown) assetPage.open.delete(e.id); else assetPage.open.add(e.id);
        renderHistory();
      } }, shown ? t("hide_change") : t("show_change")))));
    if (shown) rows.push(changeRow(e));
  }
  $("#asset-history tbody").replaceChildren(...rows);
  $("#asset-history-more").hidden = !assetPage.cursor;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#asset-history-more").addEventListener("click", () => moreHistory().catch((err) => toast(err.message)));
});
