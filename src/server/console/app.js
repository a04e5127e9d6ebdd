// hort's console: plain JavaScript, no third-party code, no requests but to
// this server. Untrusted text (answers, documents) is only ever set as
// textContent, never as HTML. The API key lives in sessionStorage (gone
// with the tab) and travels in the Authorization header, never in a URL.
"use strict";

const T = {
  en: {
    skip: "Skip to content", signin: "Sign in", signout: "Sign out", apikey: "API key",
    ask: "Ask", search: "Search testing", approvals: "Approvals", usage: "Usage", documents: "Documents",
    question: "Your question", askbtn: "Ask", query: "Query", searchbtn: "Search",
    document: "Document", page: "Page", score: "Score", text: "Text",
    noapprovals: "Nothing waits for a decision.", account: "Account", spent: "Spent (USD)",
    budget: "Budget (USD)", month: "Month", requests: "Requests", path: "Path",
    teams: "Teams (comma-separated)", classification: "Classification", file: "File",
    upload: "Upload", pages: "Pages", del: "Delete", approve: "Approve", reject: "Reject",
    reason: "Reason", badkey: "This key was not accepted.", as: "Signed in as",
    clearance: "clearance", thinking: "Asking…", injection: "Sources that look like prompt injection",
    quarantined: "kept out of the prompt", pii: "Personal data masked before the model saw it",
    route: "Answered by", cache: "Answer cache", withheld: "Output check", page_of: "page",
    uploaded: "Uploaded", deleted: "Deleted", waiting: "waiting", unsupported: "Sentences without support",
  },
  de: {
    skip: "Zum Inhalt", signin: "Anmelden", signout: "Abmelden", apikey: "API-Schlüssel",
    ask: "Fragen", search: "Suche testen", approvals: "Freigaben", usage: "Verbrauch", documents: "Dokumente",
    question: "Ihre Frage", askbtn: "Fragen", query: "Suchanfrage", searchbtn: "Suchen",
    document: "Dokument", page: "Seite", score: "Wert", text: "Text",
    noapprovals: "Nichts wartet auf eine Entscheidung.", account: "Konto", spent: "Ausgegeben (USD)",
    budget: "Budget (USD)", month: "Monat", requests: "Anfragen", path: "Pfad",
    teams: "Teams (durch Kommas getrennt)", classification: "Einstufung", file: "Datei",
    upload: "Hochladen", pages: "Seiten", del: "Löschen", approve: "Freigeben", reject: "Ablehnen",
    reason: "Begründung", badkey: "Dieser Schlüssel wurde nicht akzeptiert.", as: "Angemeldet als",
    clearance: "Freigabestufe", thinking: "Frage läuft…", injection: "Quellen, die wie Prompt-Injection aussehen",
    quarantined: "nicht an das Modell gegeben", pii: "Personenbezogene Daten vor dem Modell maskiert",
    route: "Beantwortet von", cache: "Antwort-Cache", withheld: "Ausgabeprüfung", page_of: "Seite",
    uploaded: "Hochgeladen", deleted: "Gelöscht", waiting: "wartet", unsupported: "Sätze ohne Beleg",
  },
};
const lang = (navigator.language || "en").toLowerCase().startsWith("de") ? "de" : "en";
const t = (k) => T[lang][k] || T.en[k] || k;

const $ = (id) => document.getElementById(id);
const el = (tag, text, attrs) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
};
let me = null;

function key() { return sessionStorage.getItem("hort-key"); }

async function api(path, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  o.headers = Object.assign({ "Authorization": "Bearer " + key() }, o.headers);
  if (o.json !== undefined) {
    o.headers["Content-Type"] = "application/json";
    o.body = JSON.stringify(o.json);
    delete o.json;
  }
  const r = await fetch(path, o);
  if (!r.ok) {
    let msg = r.status + "";
    try { msg = (await r.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

function translate() {
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
}

async function signIn(k) {
  sessionStorage.setItem("hort-key", k);
  try {
    me = await (await api("/v1/me")).json();
  } catch (e) {
    sessionStorage.removeItem("hort-key");
    $("signin-error").textContent = t("badkey");
    return;
  }
  $("signin").hidden = true;
  $("tabs").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = `${t("as")} ${me.name} — ${me.teams.join(", ")} — ${t("clearance")}: ${me.clearance}` +
    (me.roles.length ? ` — ${me.roles.join(", ")}` : "");
  $("upload-form").hidden = !me.roles.includes("admin");
  show("ask");
}

function show(tab) {
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-pressed", String(b.dataset.tab === tab));
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + tab;
  if (tab === "approvals") loadApprovals();
  if (tab === "usage") loadUsage();
  if (tab === "documents") loadDocuments();
}

// ---- Ask ----
function renderAnswer(text, citations) {
  const box = $("answer");
  box.replaceChildren();
  // One source may support several sentences: the k-th [n] of the text
  // opens the k-th citation of source n (each names its own sentence).
  const byN = new Map();
  for (const c of citations || []) {
    if (!byN.has(c.n)) byN.set(c.n, []);
    byN.get(c.n).push(c);
  }
  const seen = new Map();
  for (const part of text.split(/(\[\d+\])/)) {
    const m = part.match(/^\[(\d+)\]$/);
    const list = m && byN.get(Number(m[1]));
    let c = null;
    if (list) {
      const k = seen.get(list) || 0;
      c = list[Math.min(k, list.length - 1)];
      seen.set(list, k + 1);
    }
    if (c) {
      const b = el("button", part, { type: "button", class: "cite", "aria-label": `${part} ${c.doc}` });
      b.addEventListener("click", () => openCitation(c));
      box.append(b);
    } else {
      box.append(document.createTextNode(part));
    }
  }
}

function renderCitations(citations) {
  const ol = $("citations");
  ol.replaceChildren();
  for (const c of citations || []) {
    const li = el("li", null, { value: String(c.n) });
    const label = `${c.doc}${c.page ? `, ${t("page_of")} ${c.page}` : ""}: “${c.quote}”`;
    const b = el("button", label, { type: "button", class: "cite-link" });
    b.addEventListener("click", () => openCitation(c));
    li.append(b);
    ol.append(li);
  }
}

function renderFlags(a) {
  const ul = $("flags");
  ul.replaceChildren();
  const f = a.flags || {};
  const add = (s) => ul.append(el("li", s));
  if (f.injection_suspected && f.injection_suspected.length)
    add(`${t("injection")}: ${f.injection_suspected.length} (${f.quarantined.length} ${t("quarantined")})`);
  if (f.pii_masked) add(`${t("pii")}: ${f.pii_masked}`);
  for (const o of f.output_blocked || []) add(`${t("withheld")}: ${o}`);
  if (f.unsupported_sentences && f.unsupported_sentences.length) add(`${t("unsupported")}: ${f.unsupported_sentences.length}`);
  if (a.route) add(`${t("route")} ${a.route.provider} (${a.route.locality}): ${a.route.reason}`);
  if (a.cache) add(`${t("cache")}: ${a.cache.status}${a.cache.kind ? " (" + a.cache.kind + ")" : ""}`);
}

async function openCitation(c) {
  const from = Math.max(0, c.start - 1500);
  const q = new URLSearchParams({ doc: c.doc, start: String(from), end: String(c.end + 1500) });
  if (c.page) q.set("page", String(c.page));
  const v = $("viewer");
  try {
    const p = await (await api("/v1/documents/page?" + q.toString())).json();
    const chars = Array.from(p.text);
    const a = c.start - p.start, b = c.end - p.start;
    const pre = $("viewer-text");
    const mark = el("mark", chars.slice(a, b).join(""));
    pre.replaceChildren(document.createTextNode(chars.slice(0, a).join("")), mark,
      document.createTextNode(chars.slice(b).join("")));
    $("viewer-title").textContent = `[${c.n}] ${c.doc}${c.page ? `, ${t("page_of")} ${c.page}` : ""}`;
    v.hidden = false;
    mark.scrollIntoView({ block: "center" });
    $("viewer-title").focus();
  } catch (e) {
    $("viewer-title").textContent = e.message;
    $("viewer-text").replaceChildren();
    v.hidden = false;
  }
}

async function ask(question) {
  $("answer").textContent = t("thinking");
  $("citations").replaceChildren();
  $("flags").replaceChildren();
  $("viewer").hidden = true;
  let streamed = "";
  try {
    const r = await api("/v1/query", { method: "POST", json: { query: question, stream: true } });
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let ev = "message", data = "";
        for (const line of raw.split("\n")) {
          if (line.startsWith("event:")) ev = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (ev === "delta") { streamed += JSON.parse(data).text; $("answer").textContent = streamed; }
        else if (ev === "reset") { streamed = ""; $("answer").textContent = ""; }
        else if (ev === "done") {
          const a = JSON.parse(data);
          renderAnswer(a.answer, a.citations);
          renderCitations(a.citations);
          renderFlags(a);
        } else if (ev === "error") {
          $("answer").replaceChildren(el("span", JSON.parse(data).error.message, { class: "error" }));
        }
      }
    }
  } catch (e) {
    $("answer").replaceChildren(el("span", e.message, { class: "error" }));
  }
}

// ---- Search testing ----
async function search(q, k) {
  const tbody = $("search-hits").tBodies[0];
  tbody.replaceChildren();
  try {
    const r = await api("/v1/search", { method: "POST", json: { query: q, k: Number(k) } });
    $("search-timing").textContent = r.headers.get("Server-Timing") || "";
    const { hits } = await r.json();
    hits.forEach((h, i) => {
      const tr = el("tr");
      tr.append(el("td", i + 1), el("td", h.doc), el("td", h.page || ""), el("td", h.score),
        el("td", h.text.slice(0, 400)));
      tbody.append(tr);
    });
  } catch (e) {
    $("search-timing").textContent = e.message;
  }
}

// ---- Approvals ----
async function loadApprovals() {
  const ul = $("approval-list");
  try {
    const list = await (await api("/v1/approvals?status=pending")).json();
    const items = list.approvals || list;
    ul.replaceChildren();
    $("approvals-empty").hidden = items.length > 0;
    for (const a of items) {
      const li = el("li");
      li.append(el("p", `${a.id}: ${a.principal} — ${a.tool} — ${a.summary || ""}`));
      const reason = el("input", null, { "aria-label": t("reason"), placeholder: t("reason") });
      const ok = el("button", t("approve"), { type: "button" });
      const no = el("button", t("reject"), { type: "button" });
      const decide = async (d) => {
        try {
          await api(`/v1/approvals/${encodeURIComponent(a.id)}`, { method: "POST", json: { decision: d, reason: reason.value || null } });
        } catch (e) { li.append(el("p", e.message, { class: "error" })); return; }
        loadApprovals();
      };
      ok.addEventListener("click", () => decide("approve"));
      no.addEventListener("click", () => decide("reject"));
      li.append(reason, ok, no);
      ul.append(li);
    }
  } catch (e) {
    ul.replaceChildren(el("li", e.message, { class: "error" }));
  }
}
setInterval(() => { if (!$("tab-approvals").hidden && key()) loadApprovals(); }, 5000);

// ---- Usage ----
async function loadUsage() {
  const u = await (await api("/v1/usage")).json();
  const b = $("budgets").tBodies[0], s = $("spend").tBodies[0];
  b.replaceChildren(); s.replaceChildren();
  for (const x of u.budgets || []) {
    const tr = el("tr");
    tr.append(el("td", `${x.kind} ${x.name}`), el("td", x.spent_usd.toFixed(4)), el("td", x.budget_usd.toFixed(2)),
      el("td", x.share === null ? "–" : (x.share * 100).toFixed(1)));
    b.append(tr);
  }
  for (const x of u.usage || []) {
    const tr = el("tr");
    tr.append(el("td", `${x.kind} ${x.name}`), el("td", x.month), el("td", x.spend.requests), el("td", x.spend.cost_usd.toFixed(4)));
    s.append(tr);
  }
}

// ---- Documents ----
async function loadDocuments() {
  const tbody = $("doc-list").tBodies[0];
  tbody.replaceChildren();
  const { documents } = await (await api("/v1/documents")).json();
  for (const d of documents) {
    const tr = el("tr");
    const td = el("td");
    if (me.roles.includes("admin")) {
      const del = el("button", t("del"), { type: "button", "aria-label": `${t("del")} ${d.path}` });
      del.addEventListener("click", async () => {
        try {
          await api("/v1/documents?path=" + encodeURIComponent(d.path), { method: "DELETE" });
          $("doc-status").textContent = `${t("deleted")}: ${d.path}`;
        } catch (e) { $("doc-status").textContent = e.message; }
        loadDocuments();
      });
      td.append(del);
    }
    tr.append(el("td", d.path), el("td", d.classification), el("td", d.n_pages), td);
    tbody.append(tr);
  }
}

async function upload() {
  const f = $("up-file").files[0];
  if (!f) return;
  const bytes = new Uint8Array(await f.arrayBuffer());
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  try {
    await api("/v1/documents", { method: "POST", json: {
      path: $("up-path").value, content_base64: btoa(bin),
      teams: $("up-teams").value.split(",").map((s) => s.trim()).filter(Boolean),
      classification: $("up-class").value,
    } });
    $("doc-status").textContent = `${t("uploaded")}: ${$("up-path").value}`;
  } catch (e) { $("doc-status").textContent = e.message; }
  loadDocuments();
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("key").value); });
  $("signout").addEventListener("click", () => { sessionStorage.removeItem("hort-key"); location.reload(); });
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
  $("ask-form").addEventListener("submit", (e) => { e.preventDefault(); ask($("question").value); });
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("search-q").value, $("search-k").value); });
  $("upload-form").addEventListener("submit", (e) => { e.preventDefault(); upload(); });
  if (key()) signIn(key());
});
