// The admin page: API keys (create with the secret shown once, list, revoke after a confirmation) and the audit
// log (filtered by actor, action and day; each entry's state before and after side by side). It uses the
// console's helpers ($, el, api, t, toast, state) and only the public API.
"use strict";

const admin = { keys: [], audit: [], cursor: null, confirming: null, open: new Set(), latest: latestOnly() };

async function openAdmin() {
  await Promise.all([loadKeys(), loadAudit(true)]);
}

function renderAdmin() {
  renderKeys();
  renderAudit();
}

// ---- keys -----------------------------------------------------------------------------------------------

async function loadKeys() {
  admin.keys = await (await api("/v1/keys")).json();
  renderKeys();
}

function renderKeys() {
  const rows = admin.keys.map((k) => {
    const revoked = Boolean(k.revoked_at);
    let action = null;
    if (!revoked && admin.confirming === k.id) {
      action = confirmation(t("revoke_confirm", { name: k.name }), t("revoke_yes"), { "data-confirm-revoke": k.id },
        () => revokeKey(k.id).catch((err) => toast(err.message)),
        () => { admin.confirming = null; renderKeys(); });
    } else if (!revoked && k.id !== state.me.key_id) {
      action = el("button", { type: "button", "data-revoke": k.id, onclick: () => {
        admin.confirming = k.id;
        renderKeys();
        focusYes(`[data-confirm-revoke="${CSS.escape(k.id)}"]`);
      } }, t("revoke"));
    }
    return el("tr", { "data-key": k.id, class: revoked ? "revoked" : "" },
      el("td", {}, k.name), el("td", {}, t("role_" + k.role)), el("td", {}, el("code", {}, k.id)),
      el("td", {}, when(k.created_at)),
      el("td", {}, revoked ? `${t("key_revoked")} ${when(k.revoked_at)}` : t("key_active")),
      el("td", {}, action));
  });
  $("#keys-table tbody").replaceChildren(...rows);
}

async function createKey(e) {
  e.preventDefault();
  const body = JSON.stringify({ name: $("#k-name").value.trim(), role: $("#k-role").value });
  const created = await (await api("/v1/keys", { method: "POST", body })).json();
  $("#secret-value").textContent = created.secret;
  $("#new-secret").hidden = false;
  $("#secret-value").focus();
  $("#k-name").value = "";
  toast(t("key_created", { name: created.name }));
  await Promise.all([loadKeys(), loadAudit(true)]);
}

async function revokeKey(id) {
  await api(`/v1/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
  admin.confirming = null;
  toast(t("key_revoked_toast"));
  await Promise.all([loadKeys(), loadAudit(true)]);
  const row = document.querySelector(`#keys-table tr[data-key="${CSS.escape(id)}"] td`);
  if (row) row.setAttribute("tabindex", "-1");
}

// ---- audit ----------------------------------------------------------------------------------------------

function auditQuery(cursor) {
  const params = new URLSearchParams({ limit: "50" });
  for (const [name, sel] of [["actor", "#a-actor"], ["action", "#a-action"], ["since", "#a-since"], ["until", "#a-until"]]) {
    const value = $(sel).value.trim();
    if (value) params.set(name, value);
  }
  if (cursor) params.set("cursor", cursor);
  return `/v1/audit?${params}`;
}

async function loadAudit(reset) {
  $("#audit-error").textContent = "";
  let page;
  try {
    page = await admin.latest(api(auditQuery(reset ? null : admin.cursor)).then((r) => r.json()));
  } catch (err) {
    $("#audit-error").textContent = err.message;
    return;
  }
  if (!page) return;  // a later load (a filter applied since) has the say
  admin.audit = reset ? page.items : [...admin.audit, ...page.items];
  admin.cursor = page.next_cursor;
  renderAudit();
}

function renderAudit() {
  $("#audit-table tbody").replaceChildren(...auditRows(admin.audit, admin.open, renderAudit));
  $("#audit-more").hidden = !admin.cursor;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#key-form").addEventListener("submit", (e) => createKey(e).catch((err) => toast(err.message)));
  $("#audit-form").addEventListener("submit", (e) => { e.preventDefault(); loadAudit(true); });
  $("#audit-more").addEventListener("click", () => loadAudit(false));
});
