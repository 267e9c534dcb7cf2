// The suggestions page (reps): build an HCP's need from the taxonomy's HCP dimensions (labelled in the HCP's
// language) or in words, see the matched content with its reasons and passage, draft talking points whose
// citations open the cited passage, record or lift an HCP's opt-out, and plan a whole panel from a CSV. It uses
// the console's helpers ($, el, api, t, toast, state, highlighted) and only the public API. Nothing about an
// HCP is kept in the browser beyond this tab's page.
"use strict";

const suggest = { response: null, points: null, chosen: new Set(), poll: null, plan: null, planUrl: null,
                  optedOut: null, latest: latestOnly() };

async function openSuggest() {
  renderPickers();
}

function renderSuggest() {
  renderPickers();
  renderProfile();
  renderResults();
  renderPoints();
  renderOptOut();
  renderPlan();
}

// ---- the need -------------------------------------------------------------------------------------------

function hcpLanguage() {
  return $("#s-language").value;
}

// The HCP's need dimensions, each a group of checkboxes labelled in the HCP's language (what the rep reads
// out and the HCP recognises); the choices survive a re-draw.
function renderPickers() {
  if (!state.taxonomy) return;
  const chosen = needTags();
  const lang = hcpLanguage();
  const name = (obj) => (obj.label && (obj.label[lang] || obj.label.en || obj.label.zh)) || obj.id;
  const dims = state.taxonomy.dimensions.filter((d) => d.applies_to === "hcp" || d.applies_to === "both");
  $("#pickers").replaceChildren(...dims.map((d) => el("fieldset", { class: "picker", "data-dimension": d.id },
    el("legend", {}, name(d)),
    ...d.values.map((v) => {
      const box = el("input", { type: "checkbox", name: d.id, value: v.id, id: `need-${d.id}-${v.id}` });
      box.checked = Boolean(chosen[d.id] && chosen[d.id].includes(v.id));
      return el("label", { class: "check", for: box.id }, box, ` ${name(v)}`);
    }))));
}

function needTags() {
  const tags = {};
  for (const box of document.querySelectorAll("#pickers input:checked")) (tags[box.name] ||= []).push(box.value);
  return tags;
}

function needBody() {
  const body = { need_tags: needTags(), language: hcpLanguage(), personalized: !$("#s-general").checked };
  const text = $("#s-text").value.trim();
  const hcp = $("#s-hcp").value.trim();
  if (text) body.need_text = text;
  if (hcp) body.hcp_id = hcp;
  return body;
}

async function findContent(e) {
  e.preventDefault();
  const body = needBody();
  $("#need-error").textContent = "";
  if (body.personalized && !Object.keys(body.need_tags).length && !body.need_text && !body.hcp_id) {
    $("#need-error").textContent = t("need_empty");
    return;
  }
  const answer = await suggest.latest(api("/v1/match", { method: "POST", body: JSON.stringify({ ...body, k: 10 }) })
    .then((r) => r.json()));
  if (!answer) return;
  suggest.response = answer;
  suggest.points = null;
  // the three strongest are pre-selected for talking points; partial matches never are
  suggest.chosen = new Set(answer.results.slice(0, 3).map((r) => r.asset_id));
  renderResults();
  renderPoints();
  const first = document.querySelector("#results li");
  if (first) first.focus();
}

// ---- results --------------------------------------------------------------------------------------------

function renderResults() {
  const answer = suggest.response;
  $("#match-notice").textContent = answer ? answer.notice : "";
  $("#match-notice").hidden = !answer;
  $("#make-points").hidden = !answer || !(answer.results.length || (answer.partial_results || []).length);
  const coverage = answer && answer.coverage;
  $("#coverage").hidden = !coverage || !coverage.message;
  $("#coverage").textContent = coverage && coverage.message ? coverage.message : "";
  $("#coverage").dataset.status = coverage ? coverage.status : "";
  $("#no-results").hidden = !answer || answer.results.length > 0 || Boolean(coverage && coverage.message);
  const partial = answer ? answer.partial_results || [] : [];
  $("#partial").hidden = partial.length === 0;
  if (!answer) { $("#results").replaceChildren(); $("#partial-results").replaceChildren(); return; }
  $("#results").replaceChildren(...answer.results.map(resultItem));
  $("#partial-results").replaceChildren(...partial.map(resultItem));
}

// One result: title, source, how strong a match (in words; the relevance on hover), why, the passage, and whether
// it is used for talking points.
function resultItem(r) {
  const use = el("input", { type: "checkbox", "data-use": r.asset_id, id: `use-${r.asset_id}` });
  use.checked = suggest.chosen.has(r.asset_id);
  use.addEventListener("change", () => { if (use.checked) suggest.chosen.add(r.asset_id); else suggest.chosen.delete(r.asset_id); });
  const passage = r.passage ? el("blockquote", { class: "passage" },
    where(r.passage) ? el("span", { class: "where" }, where(r.passage)) : null, r.passage.text) : null;
  return el("li", { "data-result": r.asset_id, tabindex: "-1" },
    el("div", { class: "head" },
      el("strong", {}, r.title), " ",
      el("span", { class: `badge ${r.source}` }, t("source_" + r.source)),
      el("span", { class: "muted" }, ` ${r.format} · ${r.language}${r.valid_until ? " · " + t("valid_until") + " " + r.valid_until : ""}`),
      r.strength ? el("span", { class: `strength ${r.strength}`, title: `${t("relevance")} ${r.relevance.toFixed(2)}` },
        t("strength_" + r.strength)) : null),
    el("p", { class: "reason" }, r.reason),
    r.matched_tags.length ? el("p", { class: "chips" }, ...r.matched_tags.map((m) =>
      el("span", { class: "chip" }, m.label))) : null,
    passage,
    feedbackControls(r),
    el("label", { class: "check", for: use.id }, use, ` ${t("use_for_points")}`));
}

// ---- talking points -------------------------------------------------------------------------------------

async function makePoints() {
  const body = { ...needBody(), n: 3 };
  const listed = [...suggest.response.results, ...(suggest.response.partial_results || [])];
  const chosen = listed.map((r) => r.asset_id).filter((id) => suggest.chosen.has(id));
  if (chosen.length) body.asset_ids = chosen.slice(0, 10);
  $("#points").replaceChildren(el("p", { class: "muted" }, t("drafting")));
  suggest.points = await (await api("/v1/talking-points", { method: "POST", body: JSON.stringify(body) })).json();
  renderPoints();
  if (suggest.points.followup) followPoints(suggest.points.followup);
}

// The LLM missed the request's deadline and goes on drafting: the quoted points stand until its own arrive.
function followPoints(id) {
  clearTimeout(suggest.poll);
  suggest.poll = setTimeout(async () => {
    try {
      const found = await (await api(`/v1/talking-points/${encodeURIComponent(id)}`)).json();
      if (found.status === "pending") { followPoints(id); return; }
      if (found.status === "ready" && found.result) { suggest.points = found.result; renderPoints(); }
    } catch (err) { toast(err.message); }
  }, 2000);
}

function renderPoints() {
  const answer = suggest.points;
  if (!answer) { $("#points").replaceChildren(); return; }
  let n = 0;
  // a quoted sentence and a point the model drafted (and the claim checker passed) look different
  const items = answer.points.map((p) => el("li", { "data-point": p.method },
    el("span", { class: "method" }, t("point_" + p.method)), " ", p.text, " ",
    ...p.citations.map((c) => {
      n += 1;
      return el("button", { type: "button", class: "cite", "data-citation": c.chunk_id,
                            onclick: () => openPassage(c).catch((err) => toast(err.message)) },
        `[${n}] ${c.title}${where(c) ? " · " + where(c) : ""}`);
    })));
  // el() drops a null child; replaceChildren would write it as "null"
  $("#points").replaceChildren(el("div", {},
    el("h2", {}, t("talking_points")),
    el("p", { class: "muted" }, answer.notice),
    answer.extractive ? el("p", { class: "muted", "data-extractive": "" }, t("points_extractive")) : null,
    answer.followup ? el("p", { class: "muted" }, t("points_followup")) : null,
    el("ol", { class: "points" }, ...items)));
}

// A citation opens the passage it quotes: the asset's current chunk, the quote marked.
async function openPassage(citation) {
  const asset = await (await api(`/v1/assets/${encodeURIComponent(citation.asset_id)}`)).json();
  const chunk = asset.chunks.find((c) => c.id === citation.chunk_id);
  $("#passage-title").textContent = asset.title;
  $("#passage-where").textContent = [where(citation), asset.approval_code].filter(Boolean).join(" · ");
  $("#passage-text").replaceChildren(...(chunk ? highlighted(chunk.text, citation.quote)
    : [el("span", { class: "muted" }, t("passage_gone"))]));
  const dialog = $("#passage");
  if (!dialog.open) dialog.showModal();
  const mark = dialog.querySelector("mark");
  if (mark) mark.scrollIntoView({ block: "center" });
}

// ---- opt-out --------------------------------------------------------------------------------------------

async function checkOptOut() {
  const hcp = $("#s-hcp").value.trim();
  if (!hcp) { suggest.optedOut = null; renderOptOut(); return; }
  const found = await (await api(`/v1/opt-outs/${encodeURIComponent(hcp)}`)).json();
  if ($("#s-hcp").value.trim() === hcp) { suggest.optedOut = found.opted_out; renderOptOut(); }
}

async function setOptOut(out) {
  const hcp = $("#s-hcp").value.trim();
  if (!hcp) { toast(t("hcp_id_needed")); $("#s-hcp").focus(); return; }
  if (out) await api("/v1/opt-outs", { method: "POST", body: JSON.stringify({ hcp_id: hcp }) });
  else await api(`/v1/opt-outs/${encodeURIComponent(hcp)}`, { method: "DELETE" });
  suggest.optedOut = out;
  toast(out ? t("opted_out_toast", { hcp }) : t("opted_in_toast", { hcp }));
  loadProfile().catch((err) => toast(err.message));  // an opt-out erased what was held: the card says so
  renderOptOut();
}

function renderOptOut() {
  const known = suggest.optedOut !== null && $("#s-hcp").value.trim();
  $("#opt-out-state").textContent = known ? (suggest.optedOut ? t("opt_out_on") : t("opt_out_off")) : "";
  $("#opt-out").hidden = Boolean(known && suggest.optedOut);
  $("#opt-in").hidden = !(known && suggest.optedOut);
}

// ---- panel plan -----------------------------------------------------------------------------------------

// RFC 4180 CSV (quoted fields, doubled quotes, newlines in quotes), as the service writes the plan.
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(field); field = ""; }
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += ch;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

async function planPanel(e) {
  e.preventDefault();
  const file = $("#panel-file").files[0];
  $("#panel-error").textContent = "";
  if (!file) { $("#panel-error").textContent = t("choose_panel"); return; }
  const form = new FormData();
  form.append("panel", file, file.name);
  let text;
  try {
    text = await (await api("/v1/panels/plan/csv", { method: "POST", body: form, headers: { Accept: "text/csv" } })).text();
  } catch (err) {
    $("#panel-error").textContent = `${err.code}: ${err.message}`;
    return;
  }
  if (suggest.planUrl) URL.revokeObjectURL(suggest.planUrl);
  suggest.planUrl = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  suggest.plan = parseCsv(text);
  renderPlan();
}

const PLAN_SHOWN = ["hcp_id", "priority_rank", "coverage", "rank", "title", "channel", "reason"];

function renderPlan() {
  const link = $("#panel-download");
  link.hidden = !suggest.plan;
  if (!suggest.plan) return;
  link.href = suggest.planUrl;
  const [header, ...rows] = suggest.plan;
  const at = PLAN_SHOWN.map((name) => header.indexOf(name));
  $("#plan-table thead").replaceChildren(el("tr", {}, ...PLAN_SHOWN.map((name) => el("th", {}, t("plan_" + name)))));
  const note = header.indexOf("coverage_note");
  // a doctor nothing in scope fits gets no suggestion: the row says so, and why, instead of an empty line
  const cell = (row, name, i) => {
    if (name === "channel" && row[i]) return t("channel_" + row[i]);
    if (name === "coverage" && row[i]) return t("coverage_" + row[i]);
    if (name === "reason" && !row[i] && row[note]) return row[note];
    return row[i] || "—";
  };
  $("#plan-table tbody").replaceChildren(...rows.map((row) => el("tr", { "data-hcp": row[at[0]], "data-coverage": row[at[2]] },
    ...at.map((i, k) => el("td", {}, cell(row, PLAN_SHOWN[k], i))))));
  $("#plan-table").hidden = false;
  $("#plan-summary").textContent = t("plan_summary", { hcps: new Set(rows.map((r) => r[at[0]])).size, rows: rows.length });
}

document.addEventListener("DOMContentLoaded", () => {
  $("#need-form").addEventListener("submit", (e) => findContent(e).catch((err) => { $("#need-error").textContent = err.message; }));
  $("#s-language").addEventListener("change", renderPickers);
  $("#make-points").addEventListener("click", () => makePoints().catch((err) => { $("#points").replaceChildren(); toast(err.message); }));
  $("#s-hcp").addEventListener("change", () => checkOptOut().catch((err) => toast(err.message)));
  $("#opt-out").addEventListener("click", () => setOptOut(true).catch((err) => toast(err.message)));
  $("#opt-in").addEventListener("click", () => setOptOut(false).catch((err) => toast(err.message)));
  $("#panel-form").addEventListener("submit", (e) => planPanel(e).catch((err) => toast(err.message)));
  $("#passage-close").addEventListener("click", () => $("#passage").close());
});
