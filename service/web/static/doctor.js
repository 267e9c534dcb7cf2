// The doctor on the suggestions page (reps): once an HCP id is entered, the profile card (what their engagement
// says: tags with evidence and freshness, channels, predicted interests; static attributes from the CRM), each
// suggestion's evidence (for the rep's eyes only), and Done / Dismiss buttons that record feedback. A dismissed
// piece leaves the list at once and the service never suggests it to this doctor again. Uses the console's
// helpers ($, el, api, t, toast, state) and the public API only.
"use strict";

const doctor = { profile: null, reasons: null, latest: latestOnly() };

function canReadProfiles() {
  return Boolean(state.me && state.me.permissions.includes("hcp:read"));
}

async function loadProfile() {
  const hcp = $("#s-hcp").value.trim();
  doctor.profile = null;
  if (!hcp || !canReadProfiles()) { renderProfile(); return; }
  const lang = hcpLanguage();
  const found = await doctor.latest(api(`/v1/hcps/${encodeURIComponent(hcp)}/profile?language=${lang}`)
    .then((r) => r.json()));
  if (!found || $("#s-hcp").value.trim() !== hcp) return;
  doctor.profile = found;
  renderProfile();
}

function renderProfile() {
  const box = $("#profile-card");
  const p = doctor.profile;
  box.hidden = !p;
  if (!p) { box.replaceChildren(); return; }
  if (!p.held && p.personalised) { box.replaceChildren(el("p", { class: "muted" }, t("profile_unknown"))); return; }
  if (!p.personalised) { box.replaceChildren(el("p", { class: "muted" }, t("profile_opted_out"))); return; }
  const statics = Object.entries(p.static).map(([d, values]) => el("span", { class: "chip" },
    values.map((v) => hcpValueLabel(d, v)).join(", ")));
  const tags = p.dynamic.slice(0, 6).map((tag) => el("li", { "data-tag": `${tag.dimension}:${tag.value}` },
    el("strong", {}, tag.label), " ",
    el("meter", { min: "0", max: "1", value: String(tag.score), title: tag.score.toFixed(2) }), " ",
    el("span", { class: `fresh ${tag.freshness}` }, t("fresh_" + tag.freshness)), " ",
    el("span", { class: "muted" }, t("profile_evidence", {
      actions: Object.entries(tag.evidence.actions).map(([a, n]) => `${t("action_" + a)} ${n}`).join(" · "),
      day: tag.evidence.last_seen.slice(0, 10) }))));
  const channels = p.channel_preference.map((c) => el("span", { class: "chip" }, `${c.label} ${Math.round(c.score * 100)}%`));
  const predicted = p.predicted.filter((x) => x.dimension !== "source").slice(0, 5)
    .map((x) => el("span", { class: "chip" }, x.label));
  box.replaceChildren(...[  // replaceChildren would write a null as "null"
    el("h3", {}, t("profile_heading", { hcp: p.hcp_id })),
    el("p", { class: "muted" }, t("profile_private")),
    statics.length ? el("p", { class: "chips" }, ...statics) : null,
    tags.length ? el("ul", { class: "profile-tags" }, ...tags) : el("p", { class: "muted" }, t("profile_no_events")),
    channels.length ? el("p", { class: "chips" }, el("span", { class: "muted" }, t("profile_channels") + " "), ...channels) : null,
    predicted.length ? el("p", { class: "chips" }, el("span", { class: "muted" }, t("profile_predicted") + " "), ...predicted) : null,
  ].filter(Boolean));
}

// A static attribute's value in the HCP's language, as the taxonomy labels it.
function hcpValueLabel(dimension, value) {
  const dim = state.taxonomy && state.taxonomy.dimensions.find((d) => d.id === dimension);
  const found = dim && dim.values.find((v) => v.id === value);
  const lang = hcpLanguage();
  return (found && found.label && (found.label[lang] || found.label.en)) || value;
}

// Under a suggestion made for a doctor: why this doctor, and Done / Dismiss.
function feedbackControls(r) {
  if (!r.suggestion_id) return null;
  const done = el("button", { type: "button", "data-done": r.asset_id,
                              onclick: () => sendFeedback(r, "completed").catch((err) => toast(err.message)) }, t("done"));
  const dismiss = el("button", { type: "button", class: "reject", "data-dismiss": r.asset_id,
                                 onclick: () => askReason(r).catch((err) => toast(err.message)) }, t("dismiss"));
  return el("div", { class: "feedback" },
    r.evidence ? el("p", { class: "evidence", title: t("evidence_private") }, `${t("why_this_doctor")} ${r.evidence}`) : null,
    el("span", { class: "actions", id: `fb-${r.suggestion_id}` }, done, " ", dismiss));
}

async function askReason(r) {
  if (!doctor.reasons) doctor.reasons = await (await api(`/v1/suggestions/reasons?language=${state.lang}`)).json();
  const select = el("select", { id: `reason-${r.suggestion_id}`, "aria-label": t("dismiss_reason") },
    ...doctor.reasons.map((x) => el("option", { value: x.id }, x.label)));
  const slot = document.getElementById(`fb-${r.suggestion_id}`);
  slot.replaceChildren(el("label", { for: select.id }, t("dismiss_reason") + " "), select, " ",
    el("button", { type: "button", class: "reject", "data-confirm-dismiss": r.asset_id,
                   onclick: () => sendFeedback(r, "dismissed", select.value).catch((err) => toast(err.message)) },
      t("dismiss")), " ",
    el("button", { type: "button", onclick: () => renderResults() }, t("cancel")));
  select.focus();
}

async function sendFeedback(r, outcome, reason) {
  const body = { outcome };
  if (reason) body.reason = reason;
  await api(`/v1/suggestions/${encodeURIComponent(r.suggestion_id)}/feedback`, { method: "POST", body: JSON.stringify(body) });
  if (outcome === "dismissed") {  // gone from the list now; the service leaves it out from now on
    suggest.response.results = suggest.response.results.filter((x) => x.asset_id !== r.asset_id);
    suggest.chosen.delete(r.asset_id);
    renderResults();
    toast(t("dismissed_toast", { title: r.title }));
  } else {
    const slot = document.getElementById(`fb-${r.suggestion_id}`);
    if (slot) slot.replaceChildren(el("span", { class: "muted", "data-done-mark": "" }, t("marked_done")));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#s-hcp").addEventListener("change", () => loadProfile().catch((err) => toast(err.message)));
  $("#s-language").addEventListener("change", () => loadProfile().catch((err) => toast(err.message)));
});
