// The draft check page (editors, reviewers), at #check: a draft and the references it cites (library assets
// and/or files) go to POST /v1/content/check; the draft comes back with each flagged sentence marked and
// numbered, and beside it each flag with the reference sentence it failed on. It uses the console's helpers
// ($, el, api, t, toast, state, where) and only the public API.
"use strict";

const checking = { result: null, assets: [] };

async function openCheck() {
  // every asset a reference may be: staff see drafts too (an unapproved reference is one of the flags)
  const page = await (await api("/v1/assets?limit=200")).json();
  checking.assets = page.items;
  renderCheck();
}

// The library's assets to cite, each with its status in the page's language; a choice made survives a redraw.
function fillCheckReferences() {
  const select = $("#c-refs");
  const chosen = new Set([...select.selectedOptions].map((o) => o.value));
  select.replaceChildren(...checking.assets.map((a) => el("option", { value: a.id },
    `${a.title} · ${t("status_" + a.approval_status)}`)));
  for (const option of select.options) option.selected = chosen.has(option.value);
}

async function runCheck() {
  const draft = $("#c-draft").files[0];
  if (!draft) { toast(t("check_choose_draft")); return; }
  const form = new FormData();
  form.append("file", draft, draft.name);
  for (const option of $("#c-refs").selectedOptions) form.append("reference_ids", option.value);
  for (const file of $("#c-files").files) form.append("references", file, file.name);
  $("#c-run").disabled = true;
  checking.result = null;
  $("#check-status").textContent = t("check_running");
  renderCheck();
  try {
    checking.result = await (await api("/v1/content/check", { method: "POST", body: form })).json();
  } catch (err) {
    $("#check-status").textContent = "";
    toast(err.message);
  } finally {
    $("#c-run").disabled = false;
  }
  renderCheck();
}

function checkReferenceTitle(id) {
  const ref = checking.result.references.find((r) => r.id === id);
  return ref ? ref.title : id;
}

// The draft's text with each flagged sentence marked and numbered as in the list beside it.
function checkMarkedText(result) {
  const spans = result.flags.map((f, i) => ({ ...f, n: i + 1 })).filter((f) => f.start !== null)
    .sort((a, b) => a.start - b.start || a.n - b.n);
  const parts = [];
  let at = 0;
  for (const f of spans) {
    if (f.start < at) {  // a second flag on the same sentence: its number joins the first mark
      parts[parts.length - 1].querySelector("sup").textContent += `,${f.n}`;
      continue;
    }
    parts.push(result.text.slice(at, f.start));
    parts.push(el("mark", { class: "flagged", "data-flag": String(f.n) }, result.text.slice(f.start, f.end),
      el("sup", {}, String(f.n))));
    at = f.end;
  }
  parts.push(result.text.slice(at));
  return parts;
}

function checkFlagItem(flag, n) {
  const place = where(flag);
  const source = flag.reference
    ? el("p", { class: "muted" }, t("check_source"), " ", el("strong", {}, checkReferenceTitle(flag.reference)),
      flag.reference_page ? ` · ${t("page", { n: flag.reference_page })}` : "",
      flag.reference_slide ? ` · ${t("slide", { n: flag.reference_slide })}` : "")
    : null;
  return el("li", { "data-kind": flag.kind, "data-n": String(n) },
    el("span", { class: "kind" }, `${n}. ${t("flag_" + flag.kind)}`),
    flag.claim ? " " : null, flag.claim ? el("span", { class: "claim" }, flag.claim) : null,
    place ? el("span", { class: "muted" }, ` · ${place}`) : null,
    // the service's own words are English; in another language the flag's kind is explained in that language
    el("p", {}, state.lang === "en" ? flag.detail : t("flag_help_" + flag.kind)),
    source,
    flag.quote ? el("blockquote", {}, flag.quote) : null);
}

function renderCheck() {
  fillCheckReferences();
  const result = checking.result;
  $("#check-result").hidden = !result;
  if (!result) return;
  $("#check-status").textContent = t("check_done", { claims: result.claims, sentences: result.sentences,
    flags: result.flags.length });
  $("#check-text").replaceChildren(...checkMarkedText(result));
  $("#check-flags").replaceChildren(...(result.flags.length
    ? result.flags.map((f, i) => checkFlagItem(f, i + 1))
    : [el("li", { class: "none" }, t("check_none"))]));
}

document.addEventListener("DOMContentLoaded", () => {
  $("#check-form").addEventListener("submit", (e) => {
    e.preventDefault();
    runCheck().catch((err) => toast(err.message));
  });
});
