// The review console: a queue of proposals waiting for review, the evidence highlighted in the asset's text,
// accept / reject / edit from the keyboard. It only calls the public API with the reviewer's own key; the
// key lives in this tab's sessionStorage. Text from the service is always set as text, never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  key: sessionStorage.getItem("hcp-key") || "",
  lang: localStorage.getItem("hcp-lang") || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en"),
  strings: {}, taxonomy: null, assets: [], cursor: null, total: 0,
  assetIndex: -1, detail: null, tagIndex: 0, editing: null, busy: false, me: null,
};

function t(name, vars) {
  let s = (state.strings[state.lang] || {})[name] || (state.strings.en || {})[name] || name;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, String(v));
  return s;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove("show"), 2200);
}

function when(iso) {
  return iso ? iso.slice(0, 16).replace("T", " ") : "";
}

// An inline "are you sure?" in place of a destructive button (revoke, delete): the question, a yes button with
// ``yesAttrs`` (call focusYes with the same selector once drawn, so Enter confirms) and a cancel button.
function confirmation(question, yesLabel, yesAttrs, onYes, onCancel) {
  return el("span", { class: "confirm", role: "group", "aria-label": question },
    el("span", {}, question + " "),
    el("button", { type: "button", class: "reject", ...yesAttrs, onclick: onYes }, yesLabel),
    el("button", { type: "button", onclick: onCancel }, t("cancel")));
}

function focusYes(selector) {
  const button = document.querySelector(selector);
  if (button) button.focus();
}

// Audit entries as table rows (when, who, what, target), each with a button that shows its change under it;
// ``open`` holds the ids shown, and ``rerender`` draws the table again when one is toggled.
function auditRows(entries, open, rerender) {
  const rows = [];
  for (const e of entries) {
    const shown = open.has(e.id);
    rows.push(el("tr", { "data-audit": String(e.id), "data-action": e.action },
      el("td", {}, when(e.at)), el("td", {}, el("code", {}, e.actor), ` (${t("role_" + e.role)})`),
      el("td", {}, e.action), el("td", {}, `${e.target_type} ${e.target_id || ""}`),
      el("td", {}, el("button", { type: "button", "aria-expanded": String(shown),
                                  onclick: () => { if (shown) open.delete(e.id); else open.add(e.id); rerender(); } },
        shown ? t("hide_change") : t("show_change")))));
    if (shown) rows.push(changeRow(e));
  }
  return rows;
}

// An audit entry's state before and after, side by side, as a table row under the entry's own.
function changeRow(entry) {
  const pretty = (value) => (value === null || value === undefined ? "—" : JSON.stringify(value, null, 2));
  return el("tr", { class: "change", "data-change": String(entry.id) },
    el("td", { colspan: "5" }, el("div", { class: "sides" },
      el("figure", {}, el("figcaption", {}, t("before")), el("pre", {}, pretty(entry.before))),
      el("figure", {}, el("figcaption", {}, t("after")), el("pre", {}, pretty(entry.after))))));
}

// One list's loads may answer out of order (a reload after a change, then a filter applied since): only the
// latest request's answer counts. The returned function resolves to null for a superseded request, and its
// errors are dropped too.
function latestOnly() {
  let asked = 0;
  return async (request) => {
    const mine = ++asked;
    try {
      const value = await request;
      return mine === asked ? value : null;
    } catch (err) {
      if (mine === asked) throw err;
      return null;
    }
  };
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, Accept: "application/json", ...(options.headers || {}) };
  if (typeof options.body === "string") headers["Content-Type"] = "application/json";  // FormData sets its own
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new ApiError(0, "network", t("error_network"));
  }
  if (!response.ok) {
    let body = {};
    try { body = await response.json(); } catch (err) { /* not JSON: keep the status text */ }
    const message = response.status === 401 ? t("error_401") : response.status === 403 ? t("error_403")
      : body.message || response.statusText;
    throw new ApiError(response.status, body.code || String(response.status), message);
  }
  return response;
}

// ---- language -------------------------------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
  if (state.taxonomy) { fillDimensions(); renderAssets(); renderDetail(); renderWhoami(); }
  // pages drawn from data re-draw their words (rows, statuses, buttons) in the new language
  if (state.me) for (const spec of Object.values(PAGES)) if (spec.render && mayOpen(spec)) spec.render();
}

function dimension(id) {
  return state.taxonomy.dimensions.find((d) => d.id === id);
}

function label(obj) {
  return (obj && obj.label && (obj.label[state.lang] || obj.label.en || obj.label.zh)) || "";
}

function valueLabel(dimId, valueId) {
  const dim = dimension(dimId);
  const value = dim && dim.values.find((v) => v.id === valueId);
  return value ? label(value) : valueId;
}

// ---- sign-in --------------------------------------------------------------------------------------------

// The pages, the permission each needs (the API enforces the same), and what opening one does.
const PAGES = {
  suggest: { needs: "match", view: "#suggest-view", open: () => openSuggest(), render: () => renderSuggest() },
  library: { needs: "assets:write", view: "#library-view", open: () => openLibrary(),
             render: () => { fillTagFilter(); renderLibrary(); } },
  queue: { needs: "tags:review", view: "#queue-view", open: () => loadQueue(true) },
  reports: { needs: "eval:read", view: "#reports-view", open: () => loadReports() },
  gaps: { needs: "gaps:read", view: "#gaps-view", open: () => loadGaps(), render: () => loadGaps() },
  taxonomy: { needs: "taxonomy:write", view: "#taxonomy-view", open: () => openTaxonomy(), render: () => renderTaxonomy() },
  // an asset's own page, at #asset/<id>, opened from the library (its tab stays lit)
  asset: { needs: "assets:read", view: "#asset-view", under: "library", open: (id) => openAsset(id), render: () => renderAsset() },
  // a draft checked against its references (editors and reviewers), at #check, linked from the library
  check: { needs: "content:check", view: "#check-view", under: "library", open: () => openCheck(), render: () => renderCheck() },
  admin: { needs: "keys:admin", view: "#admin-view", open: () => openAdmin(), render: () => renderAdmin() },
};

function allowed(name) {
  return Boolean(PAGES[name] && mayOpen(PAGES[name]));
}

function mayOpen(spec) {
  return Boolean(state.me && state.me.permissions.includes(spec.needs));
}

async function signIn(key) {
  state.key = key;
  state.me = await (await api("/v1/me")).json();
  const taxonomy = await (await api("/v1/taxonomy")).json();
  state.taxonomy = taxonomy.taxonomy;
  sessionStorage.setItem("hcp-key", key);
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  $("#sign-out").hidden = false;
  for (const b of document.querySelectorAll(".tab")) b.hidden = !allowed(b.dataset.tab);
  $("#whoami").hidden = false;
  renderWhoami();
  fillDimensions();
  await route();
}

function renderWhoami() {
  if (state.me) $("#whoami").textContent = `${state.me.name} · ${t("role_" + state.me.role)}`;
}

function signOut() {
  sessionStorage.removeItem("hcp-key");
  state.key = "";
  location.hash = "";
  location.reload();
}

// The page named in the address (#admin, #queue, #reports), else the first this key may use. A page the key
// may not use is refused in words, naming its role; the API would refuse its requests anyway.
async function route() {
  if (!state.me) return;
  const [asked, ...rest] = location.hash.replace(/^#/, "").split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
  const first = Object.keys(PAGES).find((page) => allowed(page) && !PAGES[page].under);
  const name = asked in PAGES ? asked : first;
  for (const [page, spec] of Object.entries(PAGES)) $(spec.view).hidden = page !== name || !allowed(page);
  const lit = name && PAGES[name] && PAGES[name].under || name;
  for (const b of document.querySelectorAll(".tab")) {
    b.classList.toggle("active", b.dataset.tab === lit);
    if (b.dataset.tab === lit) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  const refused = !name || !allowed(name);
  $("#refused-view").hidden = !refused;
  if (refused) {
    $("#refused-text").textContent = name
      ? t("refused_page", { page: t("tab_" + name), role: t("role_" + state.me.role) })
      : t("no_page_for_role", { role: t("role_" + state.me.role) });
    return;
  }
  try { await PAGES[name].open(arg); } catch (err) { toast(err.message); }
}

function showTab(name) {
  if (location.hash === `#${name}`) route(); else location.hash = name;
}

// ---- queue ----------------------------------------------------------------------------------------------

function fillDimensions() {
  const select = $("#f-dimension");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, t("all_dimensions")));
  for (const d of state.taxonomy.dimensions) select.append(el("option", { value: d.id }, `${label(d)} (${d.id})`));
  select.value = chosen;
}

function queueQuery() {
  const params = new URLSearchParams({ limit: "20", min_confidence: $("#f-min").value || "0",
    max_confidence: $("#f-max").value || "1" });
  if ($("#f-dimension").value) params.set("dimension", $("#f-dimension").value);
  if (state.cursor) params.set("cursor", state.cursor);
  return `/v1/review/queue?${params}`;
}

async function loadQueue(reset) {
  if (reset) { state.assets = []; state.cursor = null; state.assetIndex = -1; state.detail = null; }
  const page = await (await api(queueQuery())).json();
  state.assets.push(...page.items);
  state.cursor = page.next_cursor;
  state.total = page.total_tags;
  renderAssets();
  if (reset && state.assets.length) await selectAsset(0);
  else renderDetail();
}

function renderAssets() {
  const list = $("#assets");
  // each a button, so that Tab and Enter reach any asset (N and P step through them too)
  list.replaceChildren(...state.assets.map((a, i) => el("li",
    { class: i === state.assetIndex ? "current" : "", "data-asset": a.id },
    el("button", { type: "button", class: "row", onclick: () => selectAsset(i) },
      el("span", { class: "n" }, String(a.tags.length)), a.title))));
  $("#more").hidden = !state.cursor;
  $("#empty").hidden = state.assets.length > 0;
  $("#waiting").textContent = t("waiting", { n: state.total });
}

async function selectAsset(i) {
  if (i < 0 || i >= state.assets.length) return;
  state.assetIndex = i;
  state.tagIndex = 0;
  state.editing = null;
  renderAssets();
  const asset = state.assets[i];
  state.detail = await (await api(`/v1/assets/${encodeURIComponent(asset.id)}`)).json();
  renderDetail();
}

function confidenceClass(c) {
  return c < 0.4 ? "low" : c < 0.7 ? "mid" : "high";
}

function currentTags() {
  return state.assetIndex >= 0 ? state.assets[state.assetIndex].tags : [];
}

function renderDetail() {
  const box = $("#detail");
  const asset = state.assets[state.assetIndex];
  if (!asset || !state.detail || state.detail.id !== asset.id) {
    box.replaceChildren(el("p", { class: "muted" }, t("pick_asset")));
    return;
  }
  const tags = currentTags();
  state.tagIndex = Math.min(state.tagIndex, Math.max(0, tags.length - 1));
  const items = tags.map((tag, i) => renderTag(tag, i === state.tagIndex));
  const meta = `${asset.id} · ${asset.language} · ${asset.format} · ${t("status_" + asset.approval_status)}`;
  box.replaceChildren(el("h2", {}, asset.title), el("p", { class: "muted" }, meta),
    el("ol", { class: "tags" }, ...items), renderText(tags[state.tagIndex]));
  const mark = box.querySelector("mark");
  if (mark) mark.scrollIntoView({ block: "center" });
  // Focused in the same task that shows it: a reviewer who types E then Enter at once must not lose the Enter
  // (with a deferred focus the Enter reached the page, not the editor, and nothing was saved).
  const editor = box.querySelector("#edit-value");
  if (editor) editor.focus();
}

function renderTag(tag, current) {
  const quote = tag.evidence ? `“${tag.evidence}”` : t("no_evidence");
  const actions = state.editing === tag.id ? renderEditor(tag) : el("div", { class: "actions" },
    el("button", { type: "button", class: "accept", title: "A", onclick: () => review(tag, "accept") }, t("accept")),
    el("button", { type: "button", class: "reject", title: "R", onclick: () => review(tag, "reject") }, t("reject")),
    el("button", { type: "button", title: "E", onclick: () => startEdit(tag) }, t("edit")));
  return el("li", { class: `tag${current ? " current" : ""}`, "data-tag": String(tag.id), "data-dimension": tag.dimension,
                    onclick: () => { state.tagIndex = currentTags().indexOf(tag); renderDetail(); } },
    el("div", {},
      el("div", { class: "dim" }, `${label(dimension(tag.dimension)) || tag.dimension} · ${t("method")} ${tag.method}`),
      el("span", { class: "value" }, `${valueLabel(tag.dimension, tag.value)} `),
      el("span", { class: `conf ${confidenceClass(tag.confidence)}`, title: t("confidence") },
        tag.confidence.toFixed(2))),
    actions,
    el("div", { class: "quote" }, quote));
}

function renderEditor(tag) {
  const dim = dimension(tag.dimension);
  const select = el("select", { id: "edit-value" },
    ...dim.values.filter((v) => v.id !== tag.value).map((v) => el("option", { value: v.id }, `${label(v)} (${v.id})`)));
  select.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); review(tag, "edit", select.value); }
    if (e.key === "Escape") { e.preventDefault(); state.editing = null; renderDetail(); }
  });
  return el("div", { class: "actions" }, select,
    el("button", { type: "button", onclick: () => review(tag, "edit", select.value) }, t("save")),
    el("button", { type: "button", onclick: () => { state.editing = null; renderDetail(); } }, t("cancel")));
}

// The text folded for matching (runs of whitespace to one space, lower case), with each folded character's
// position in the original, so a match found in the folded text can be marked in the original.
function folded(text) {
  let out = "";
  const at = [];
  let prevSpace = true;
  for (let k = 0; k < text.length; k++) {
    const space = /\s/.test(text[k]);
    if (space && prevSpace) continue;
    out += space ? " " : text[k].toLowerCase();
    at.push(k);
    prevSpace = space;
  }
  return { out, at };
}

// The chunk's text with the quote marked: an exact match first, else one that ignores case and spacing.
function highlighted(text, quote) {
  if (!quote) return [text];
  let start = text.indexOf(quote);
  let end = start + quote.length;
  if (start < 0) {
    const f = folded(text);
    const q = folded(quote).out.trim();
    const i = q ? f.out.indexOf(q) : -1;
    if (i < 0) return [text];
    start = f.at[i];
    end = f.at[i + q.length - 1] + 1;
  }
  return [text.slice(0, start), el("mark", {}, text.slice(start, end)), text.slice(end)];
}

function renderText(tag) {
  return el("div", { class: "text" }, ...textWithQuote(state.detail.chunks, tag && tag.evidence, t("evidence")));
}

// Where a chunk or a citation is: its page or slide, in words ("" when it has neither).
function where(item) {
  return item.page ? t("page", { n: item.page }) : item.slide ? t("slide", { n: item.slide }) : "";
}

// An asset's chunks under a heading, the first place the quote is found marked (a note when it is nowhere).
function textWithQuote(chunks, quote, heading) {
  let found = false;
  const paragraphs = chunks.map((c) => {
    const at = where(c) || c.section || "";
    const parts = found ? [c.text] : highlighted(c.text, quote);
    if (parts.length > 1) found = true;
    return el("p", { class: "chunk" }, at ? el("span", { class: "where" }, at) : null, ...parts);
  });
  const missing = quote && !found ? [el("p", { class: "muted" }, t("evidence_not_found"))] : [];
  return [el("strong", {}, heading), ...missing, ...paragraphs];
}

function startEdit(tag) {
  state.editing = tag.id;
  renderDetail();
}

async function review(tag, action, value) {
  if (state.busy) return;
  state.busy = true;
  try {
    const body = action === "edit" ? { action, value } : { action };
    await api(`/v1/tags/${tag.id}/review`, { method: "POST", body: JSON.stringify(body) });
    const tags = currentTags();
    tags.splice(tags.indexOf(tag), 1);
    state.total = Math.max(0, state.total - 1);
    state.editing = null;
    toast(action === "accept" ? t("accepted") : action === "reject" ? t("rejected")
      : t("edited", { value: valueLabel(tag.dimension, value) }));
    if (!tags.length) {
      state.assets.splice(state.assetIndex, 1);
      state.detail = null;
      if (!state.assets.length && state.cursor) await loadQueue(false);
      renderAssets();
      await selectAsset(Math.min(state.assetIndex, state.assets.length - 1));
    } else {
      renderAssets();
      renderDetail();
    }
  } catch (err) {
    toast(err.message);
  } finally {
    state.busy = false;
  }
}

function moveTag(step) {
  const n = currentTags().length;
  if (!n) return;
  state.tagIndex = (state.tagIndex + step + n) % n;
  state.editing = null;
  renderDetail();
}

function onKey(e) {
  if ($("#queue-view").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  if (["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) return;
  const tag = currentTags()[state.tagIndex];
  const actions = {
    j: () => moveTag(1), ArrowDown: () => moveTag(1), k: () => moveTag(-1), ArrowUp: () => moveTag(-1),
    n: () => selectAsset(state.assetIndex + 1), p: () => selectAsset(state.assetIndex - 1),
    a: () => tag && review(tag, "accept"), r: () => tag && review(tag, "reject"), e: () => tag && startEdit(tag),
    "?": () => toast(t("shortcuts")),
  };
  const action = actions[e.key];
  if (action) { e.preventDefault(); action(); }
}

// ---- reports --------------------------------------------------------------------------------------------

async function loadReports() {
  const reports = await (await api("/v1/eval/reports")).json();
  $("#no-reports").hidden = reports.length > 0;
  const baseline = $("#baseline");
  const chosen = baseline.value;
  baseline.replaceChildren(el("option", { value: "" }, t("no_baseline")),
    ...reports.map((r) => el("option", { value: r.id }, `${r.title} (${r.id})`)));
  baseline.value = chosen;
  $("#reports").replaceChildren(...reports.map((r) => el("li", { "data-report": r.id },
    el("button", { type: "button", class: "row", onclick: () => openReport(r.id) }, r.title,
      el("span", { class: "meta" }, `${r.id} · ${t("f1")} ${r.f1.toFixed(3)} · ${t("ece")} ${r.ece.toFixed(3)} · `
        + `${r.items} ${t("items")} · ${t("created")} ${when(r.created_at)}`)))));
  return reports;
}

async function openReport(id) {
  const html = await (await api(`/v1/eval/reports/${encodeURIComponent(id)}?format=html&lang=${state.lang}`,
    { headers: { Accept: "text/html" } })).text();
  const frame = $("#report-frame");
  if (frame.dataset.url) URL.revokeObjectURL(frame.dataset.url);
  frame.dataset.url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
  frame.src = frame.dataset.url;
}

async function newReport() {
  const baseline = $("#baseline").value;
  const body = JSON.stringify(baseline ? { baseline_id: baseline } : {});
  const report = await (await api("/v1/eval/reports", { method: "POST", body })).json();
  toast(t("report_made", { id: report.id }));
  await loadReports();
  await openReport(report.id);
}

// ---- start ----------------------------------------------------------------------------------------------

async function start() {
  state.strings = await (await fetch("i18n.json")).json();
  applyLanguage();
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("hcp-lang", state.lang);
    applyLanguage();
  });
  $("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#login-error").textContent = "";
    try { await signIn($("#key").value.trim()); } catch (err) { $("#login-error").textContent = err.message; }
  });
  $("#sign-out").addEventListener("click", signOut);
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("#filters").addEventListener("submit", (e) => {
    e.preventDefault();
    loadQueue(true).catch((err) => toast(err.message));
  });
  $("#more").addEventListener("click", () => loadQueue(false).catch((err) => toast(err.message)));
  $("#new-report").addEventListener("click", () => newReport().catch((err) => toast(err.message)));
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => { route(); });
  if (state.key) {
    try { await signIn(state.key); } catch (err) { sessionStorage.removeItem("hcp-key"); state.key = ""; }
  }
}

// admin.js (loaded after this file) adds its page before the console starts
document.addEventListener("DOMContentLoaded", start);
