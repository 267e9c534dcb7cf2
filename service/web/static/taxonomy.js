// The taxonomy page (content editors, admins): the active taxonomy's YAML in an editor that the service checks
// as one types (the first problem's line and field shown at that line), the diff against the active version
// to review before saving, and the re-tag job's progress once saved. It uses the console's helpers ($, el, api,
// t, toast, state, latestOnly) and only the public API.
"use strict";

const taxo = { active: null, check: null, reviewed: false, timer: null, job: null, poll: null, latest: latestOnly() };
const LINE_PX = 20;  // the editor's line height (console.css): where a line's marker goes

async function openTaxonomy() {
  if (taxo.job && !FINISHED.includes(taxo.job.status)) return;  // a re-tag is being followed: keep the page
  taxo.active = await (await api("/v1/taxonomy")).json();
  $("#tx-source").value = taxo.active.source;
  taxo.check = null;
  taxo.reviewed = false;
  renderTaxonomy();
}

function renderTaxonomy() {
  if (!taxo.active) return;
  $("#tx-active").textContent = t("taxonomy_active", { id: taxo.active.id, version: taxo.active.version });
  renderGutter();
  renderProblem();
  renderDiff();
  renderRetag();
}

// ---- the editor -----------------------------------------------------------------------------------------

function renderGutter() {
  const lines = $("#tx-source").value.split("\n").length;
  const bad = taxo.check && taxo.check.error ? taxo.check.error.line : null;
  const gutter = $("#tx-gutter");
  if (gutter.childElementCount !== lines || gutter.dataset.bad !== String(bad)) {
    gutter.replaceChildren(...Array.from({ length: lines }, (_, i) =>
      el("li", i + 1 === bad ? { class: "bad" } : {}, String(i + 1))));
    gutter.dataset.bad = String(bad);
  }
  gutter.scrollTop = $("#tx-source").scrollTop;
  placeMarker();
}

// The problem's message sits at its line, and moves with the text as it scrolls.
function placeMarker() {
  const marker = $("#tx-marker");
  const error = taxo.check && taxo.check.error;
  marker.hidden = !(error && error.line);
  if (marker.hidden) return;
  // on its line, at the right (YAML lines are short), so that no text is covered; pinned to the editor's top
  // or bottom edge while that line is scrolled out of view
  const source = $("#tx-source");
  const top = (error.line - 1) * LINE_PX - source.scrollTop + 8;
  marker.style.top = `${Math.min(Math.max(0, top), source.clientHeight - LINE_PX - 4)}px`;
  marker.textContent = problemText(error);
}

function problemText(error) {
  const where = error.line ? t("taxonomy_line", { n: error.line }) : "";
  return [where, error.field, error.message].filter(Boolean).join(" · ");
}

function renderProblem() {
  const check = taxo.check;
  const box = $("#tx-problem");
  box.className = check && check.error ? "error" : "muted";
  box.textContent = !check ? t("taxonomy_unchanged")
    : check.error ? problemText(check.error)
    : check.diff.length ? t("taxonomy_valid", { version: check.version }) : t("taxonomy_unchanged");
  if (check && check.error && check.error.line) {
    const line = check.error.line;
    box.append(" ", el("button", { type: "button", id: "tx-goto", onclick: () => goToLine(line) }, t("taxonomy_goto")));
  }
  $("#tx-review").disabled = !(check && check.valid && check.diff.length);
  $("#tx-save").disabled = !(check && check.valid && taxo.reviewed);
}

// The problem's line selected and scrolled into view, the caret there, to fix it.
function goToLine(n) {
  const source = $("#tx-source");
  const lines = source.value.split("\n");
  if (n > lines.length) return;
  const start = lines.slice(0, n - 1).reduce((sum, line) => sum + line.length + 1, 0);
  source.focus();
  source.setSelectionRange(start, start + lines[n - 1].length);
  source.scrollTop = Math.max(0, (n - 6) * LINE_PX);
  renderGutter();
}

function edited() {
  taxo.reviewed = false;
  renderGutter();
  clearTimeout(taxo.timer);
  taxo.timer = setTimeout(() => checkSource().catch((err) => toast(err.message)), 250);
}

async function checkSource() {
  const source = $("#tx-source").value;
  if (!source.trim()) return;
  const check = await taxo.latest(api("/v1/taxonomy/check", { method: "POST", body: JSON.stringify({ source }) })
    .then((r) => r.json()));
  if (!check || source !== $("#tx-source").value) return;  // typed on since: the next check has the say
  taxo.check = check;
  renderTaxonomy();
}

// ---- review and save ------------------------------------------------------------------------------------

function renderDiff() {
  const box = $("#tx-diff");
  box.hidden = !taxo.reviewed || !taxo.check;
  if (box.hidden) return;
  const changed = taxo.check.changed_dimensions;
  $("#tx-retags").textContent = changed.length ? t("taxonomy_retags", { dims: changed.join(", ") })
    : t("taxonomy_no_retag");
  $("#tx-diff-lines").replaceChildren(...taxo.check.diff.map((line) => el("span", {
    class: line.startsWith("+") && !line.startsWith("+++") ? "add"
      : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : "" }, line + "\n")));
}

function reviewTaxonomy() {
  taxo.reviewed = true;
  renderTaxonomy();
  $("#tx-save").focus();
}

async function saveTaxonomy() {
  const body = JSON.stringify({ source: $("#tx-source").value, expected_version: taxo.active.version });
  const saved = await (await api("/v1/taxonomy", { method: "PUT", body })).json();
  toast(t("taxonomy_saved", { version: saved.version }));
  taxo.reviewed = false;
  taxo.check = null;
  taxo.active = await (await api("/v1/taxonomy")).json();
  state.taxonomy = taxo.active.taxonomy;  // the other pages' pickers and labels follow the new version
  taxo.job = null;
  renderTaxonomy();
  if (saved.retag_job) followRetag(saved.retag_job);
}

function followRetag(id) {
  clearTimeout(taxo.poll);
  taxo.poll = setTimeout(async () => {
    try {
      taxo.job = await (await api(`/v1/jobs/${encodeURIComponent(id)}`)).json();
      renderTaxonomy();
      if (!FINISHED.includes(taxo.job.status)) followRetag(id);
    } catch (err) { toast(err.message); }
  }, taxo.job ? 500 : 0);
}

function renderRetag() {
  const job = taxo.job;
  const box = $("#tx-retag");
  box.hidden = !job;
  if (!job) return;
  box.dataset.job = job.id;
  box.dataset.status = job.status;
  box.textContent = t("taxonomy_retag_progress", { done: job.done, failed: job.failed, total: job.total,
                                                   status: t("job_" + job.status) });
}

document.addEventListener("DOMContentLoaded", () => {
  const source = $("#tx-source");
  source.addEventListener("input", edited);
  source.addEventListener("scroll", () => { $("#tx-gutter").scrollTop = source.scrollTop; placeMarker(); });
  $("#tx-review").addEventListener("click", reviewTaxonomy);
  $("#tx-save").addEventListener("click", () => saveTaxonomy().catch((err) => {
    $("#tx-problem").className = "error";
    $("#tx-problem").textContent = `${err.code}: ${err.message}`;
  }));
  $("#tx-reload").addEventListener("click", () => { taxo.job = null; openTaxonomy().catch((err) => toast(err.message)); });
});
