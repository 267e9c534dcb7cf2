// The library page (content editors, admins): upload files and their sidecars (chosen or dropped) and follow
// each file's job item live, its failure's code and sentence shown as the service gives them; browse assets by
// status, language, format, source, text and "expiring in 30 days"; delete after a confirmation. It uses the
// console's helpers ($, el, api, t, toast, state) and only the public API.
"use strict";

const library = { assets: [], cursor: null, confirming: null, job: null, timer: null, latest: latestOnly() };
const FINISHED = ["succeeded", "partial", "failed"];

async function openLibrary() {
  fillTagFilter();
  await loadAssets(true);
}

// One choice per taxonomy value, grouped by dimension (content dimensions only: HCP-only ones tag no asset).
function fillTagFilter() {
  const select = $("#l-tag");
  const chosen = select.value;
  const dims = state.taxonomy.dimensions.filter((d) => d.applies_to !== "hcp");
  select.replaceChildren(el("option", { value: "" }, t("any")), ...dims.map((d) => el("optgroup", { label: label(d) },
    ...d.values.map((v) => el("option", { value: `${d.id}:${v.id}` }, label(v))))));
  select.value = chosen;
}

// ---- upload ---------------------------------------------------------------------------------------------

async function upload(files) {
  if (!files.length) { toast(t("choose_files")); return; }
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const job = await (await api("/v1/uploads", { method: "POST", body: form })).json();
  $("#files").value = "";
  followJob(job);
}

function followJob(job) {
  library.job = job;
  renderJob();
  clearTimeout(library.timer);
  if (FINISHED.includes(job.status)) { loadAssets(true).catch((err) => toast(err.message)); return; }
  library.timer = setTimeout(async () => {
    try { followJob(await (await api(`/v1/jobs/${encodeURIComponent(job.id)}`)).json()); }
    catch (err) { toast(err.message); }
  }, 500);
}

function outcome(text) {
  // "created", or a feed's "created,unchanged": each status in words
  return (text || "created").split(",").map((part) => t("outcome_" + part)).join(", ");
}

function renderJob() {
  const job = library.job;
  if (!job) return;
  const items = (job.items || []).map((item) => {
    const state = item.status === "failed" ? "failed" : item.status === "done" ? "done" : "pending";
    const detail = item.status === "failed"
      ? el("span", { class: "error" }, el("code", {}, item.error_code || "failed"), " ", item.error_message || "")
      : el("span", { class: "muted" }, item.status === "done" ? outcome(item.outcome) : t("item_pending"));
    return el("li", { "data-item": item.name, "data-state": state, class: state },
      el("strong", {}, item.name), " ", detail);
  });
  $("#upload-items").replaceChildren(
    el("li", { class: "job", "data-job": job.id, "data-status": job.status },
      t("job_progress", { done: job.done, failed: job.failed, total: job.total, status: t("job_" + job.status) })),
    ...items);
}

// ---- assets ---------------------------------------------------------------------------------------------

function assetQuery(cursor) {
  const params = new URLSearchParams({ limit: "50" });
  for (const [name, sel] of [["approval_status", "#l-status"], ["language", "#l-language"], ["format", "#l-format"],
    ["source", "#l-source"], ["q", "#l-q"]]) {
    const value = $(sel).value.trim();
    if (value) params.set(name, value);
  }
  if ($("#l-tag").value) params.set("tag", $("#l-tag").value);
  if ($("#l-expiring").checked) params.set("expires_within", "30");
  if (cursor) params.set("cursor", cursor);
  return `/v1/assets?${params}`;
}

async function loadAssets(reset) {
  const page = await library.latest(api(assetQuery(reset ? null : library.cursor)).then((r) => r.json()));
  if (!page) return;  // a later load (a filter applied since) has the say
  library.assets = reset ? page.items : [...library.assets, ...page.items];
  library.cursor = page.next_cursor;
  renderLibrary();
}

function renderLibrary() {
  const rows = library.assets.map((a) => {
    let action;
    if (library.confirming === a.id) {
      action = confirmation(t("delete_confirm", { title: a.title }), t("delete_yes"), { "data-confirm-delete": a.id },
        () => deleteAsset(a.id).catch((err) => toast(err.message)),
        () => { library.confirming = null; renderLibrary(); });
    } else {
      action = el("button", { type: "button", "data-delete": a.id, onclick: () => {
        library.confirming = a.id;
        renderLibrary();
        focusYes(`[data-confirm-delete="${CSS.escape(a.id)}"]`);
      } }, t("delete"));
    }
    return el("tr", { "data-asset": a.id },
      el("td", {}, el("a", { href: `#asset/${encodeURIComponent(a.id)}`, "data-open": a.id }, a.title)), el("td", {}, a.format), el("td", {}, a.language), el("td", {}, t("status_" + a.approval_status)),
      el("td", {}, validity(a.valid_until)), el("td", {}, String(a.tags.length)), el("td", {}, action));
  });
  $("#assets-table tbody").replaceChildren(...rows);
  $("#no-assets").hidden = library.assets.length > 0;
  $("#assets-more").hidden = !library.cursor;
  renderJob();
}

function validity(day) {
  if (!day) return "—";
  const today = new Date().toISOString().slice(0, 10);
  return day < today ? el("span", { class: "expired" }, `${day} · ${t("expired")}`) : day;
}

async function deleteAsset(id) {
  await api(`/v1/assets/${encodeURIComponent(id)}`, { method: "DELETE" });
  library.confirming = null;
  toast(t("asset_deleted"));
  await loadAssets(true);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#upload-form").addEventListener("submit", (e) => {
    e.preventDefault();
    upload([...$("#files").files]).catch((err) => toast(err.message));
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload([...e.dataTransfer.files]).catch((err) => toast(err.message));
  });
  $("#library-filters").addEventListener("submit", (e) => {
    e.preventDefault();
    loadAssets(true).catch((err) => toast(err.message));
  });
  $("#assets-more").addEventListener("click", () => loadAssets(false).catch((err) => toast(err.message)));
});
