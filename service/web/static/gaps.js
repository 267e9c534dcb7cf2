// The content-gap page (content teams, marketing), at #gaps: what reps asked for that nothing in reach served, and
// what one expiring asset alone serves, each with how often it was asked for. It reads GET /v1/reports/content-gaps
// (labels in the page's language) and offers the same report as CSV. It uses the console's helpers ($, el, api, t,
// state) and only the public API.
"use strict";

const gapsPage = { report: null, csvUrl: null };

function gapsQuery(format) {
  return `/v1/reports/content-gaps?days=${encodeURIComponent($("#gaps-days").value)}&lang=${state.lang}` +
    (format ? `&format=${format}` : "");
}

async function loadGaps() {
  gapsPage.report = await (await api(gapsQuery())).json();
  const csv = await (await api(gapsQuery("csv"))).blob();
  if (gapsPage.csvUrl) URL.revokeObjectURL(gapsPage.csvUrl);
  gapsPage.csvUrl = URL.createObjectURL(csv);
  renderGaps();
}

function gapScope(scope) {
  return scope ? scope.split(";").join(" · ") : t("gaps_unscoped");
}

function gapTable(table, columns, rows, cells) {
  table.querySelector("thead").replaceChildren(el("tr", {}, ...columns.map((c) => el("th", { scope: "col" }, t(c)))));
  table.querySelector("tbody").replaceChildren(...rows.map((row) => el("tr", {}, ...cells(row).map((v) => el("td", {}, String(v))))));
  table.hidden = rows.length === 0;
}

function renderGaps() {
  const report = gapsPage.report;
  if (!report) return;
  $("#gaps-download").href = gapsPage.csvUrl || "#";
  $("#gaps-none").hidden = report.gaps.length > 0;
  gapTable($("#gaps-table"), ["gaps_need", "gaps_language", "gaps_scope", "gaps_asked", "gaps_unserved", "gaps_last"],
    report.gaps, (g) => [g.label, g.language, gapScope(g.scope), g.asked, g.unserved, g.last_asked]);
  $("#single-none").hidden = report.single_source.length > 0;
  gapTable($("#single-table"), ["gaps_need", "gaps_asset", "valid_until", "gaps_days_left", "gaps_asked"],
    report.single_source, (r) => [r.label, r.title, r.valid_until, r.days_left, r.asked]);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#gaps-days").addEventListener("change", () => loadGaps().catch((err) => toast(err.message)));
});
