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
    route: "Answered by", cache: "Answer cache", withheld: "Output check", page_of: "page", slide_of: "slide", sheet_of: "sheet", ocr: "read by OCR, confidence",
    uploaded: "Uploaded", deleted: "Deleted", waiting: "waiting", unsupported: "Sentences without support",
    notfound: "no such document, or not visible to you", fused: "Fused", vector: "vector", keyword: "keyword", translated: "translated", translated_question: "question in the other language",
    vectorcol: "Vector (rank · cosine)", keywordcol: "Keyword (rank · BM25)", fusion: "Fusion", candidates: "Candidates",
    plan: "Vector plan", filter: "Access filter", teams_any: "shared with one of", reranked: "cross-encoder",
    plan_exact: "exact scan", plan_graph: "graph", plan_graph_then_exact: "graph, then exact", plan_skipped: "nothing visible",
    recent: "Recent requests", time: "Time", endpoint: "Endpoint", status: "Status", provider: "Provider", flags: "Flags",
    chain: "Audit chain", chain_ok: "takes appends", chain_refusing: "refuses appends",
    chain_verified: "verified intact, records", chain_problems: "problems",
    failed: "Files the last ingest could not read", folder: "Folder", error: "Error",
    ssowith: "Sign in with", arguments: "Arguments", expired: "Your sign-in has expired or was revoked: sign in again.",
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
    route: "Beantwortet von", cache: "Antwort-Cache", withheld: "Ausgabeprüfung", page_of: "Seite", slide_of: "Folie", sheet_of: "Blatt", ocr: "per OCR gelesen, Konfidenz",
    uploaded: "Hochgeladen", deleted: "Gelöscht", waiting: "wartet", unsupported: "Sätze ohne Beleg",
    notfound: "kein solches Dokument, oder für Sie nicht sichtbar", fused: "Fusioniert", vector: "Vektor", keyword: "Stichwort", translated: "übersetzt", translated_question: "Frage in der anderen Sprache",
    vectorcol: "Vektor (Rang · Kosinus)", keywordcol: "Stichwort (Rang · BM25)", fusion: "Fusion", candidates: "Kandidaten",
    plan: "Vektorplan", filter: "Zugriffsfilter", teams_any: "geteilt mit einem von", reranked: "Cross-Encoder",
    plan_exact: "exakter Scan", plan_graph: "Graph", plan_graph_then_exact: "Graph, dann exakt", plan_skipped: "nichts sichtbar",
    recent: "Letzte Anfragen", time: "Zeit", endpoint: "Endpunkt", status: "Status", provider: "Anbieter", flags: "Hinweise",
    chain: "Audit-Kette", chain_ok: "nimmt Einträge an", chain_refusing: "verweigert Einträge",
    chain_verified: "geprüft und unversehrt, Einträge", chain_problems: "Probleme",
    failed: "Dateien, die der letzte Import nicht lesen konnte", folder: "Ordner", error: "Fehler",
    ssowith: "Anmelden mit", arguments: "Argumente", expired: "Ihre Anmeldung ist abgelaufen oder wurde widerrufen: bitte neu anmelden.",
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
  if (r.status === 401 && path !== "/v1/me") {
    // The key was revoked or the sign-in's token expired: back to sign-in.
    signedOut(t("expired"));
  }
  if (!r.ok) {
    let msg = r.status + "";
    try { msg = (await r.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

function signedOut(message) {
  sessionStorage.removeItem("hort-key");
  me = null;
  $("signin").hidden = false;
  $("tabs").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  for (const s of document.querySelectorAll(".tab")) s.hidden = true;
  // Nothing the signed-out person saw stays in the page.
  for (const id of ["answer", "citations", "flags", "viewer-text", "viewer-title", "approval-list", "search-plan", "search-timing"])
    $(id).replaceChildren();
  for (const tb of document.querySelectorAll("tbody")) tb.replaceChildren();
  $("viewer").hidden = true;
  $("signin-error").textContent = message || "";
}

// The issuer's sign-in (if configured) ends on this page with the token, or
// with why it failed, in a <meta> tag: keep the token for the tab, drop the
// code from the address.
async function issuerSignIn() {
  const tok = document.querySelector('meta[name="hort-token"]');
  const err = document.querySelector('meta[name="hort-signin-error"]');
  if (tok || err) history.replaceState(null, "", "/");
  if (tok) { sessionStorage.setItem("hort-key", tok.content); tok.remove(); }
  if (err) { $("signin-error").textContent = err.content; err.remove(); }
  try {
    const c = await (await fetch("/console/oidc/config")).json();
    if (c.enabled) {
      $("sso").textContent = `${t("ssowith")} ${c.label}`;
      $("sso-box").hidden = false;
    }
  } catch (_) { /* keys only */ }
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
  openLocation();
}

function show(tab) {
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-pressed", String(b.dataset.tab === tab));
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + tab;
  if (tab === "approvals") loadApprovals();
  if (tab === "usage") loadUsage();
  if (tab === "documents") loadDocuments();
}

// ---- Ask ----
// What a page number is in this document: slides and sheets are the pages
// of presentations and spreadsheets.
function placeOf(doc, page) {
  const ext = (doc.split(".").pop() || "").toLowerCase();
  const word = ext === "pptx" || ext === "odp" ? "slide_of" : ext === "xlsx" || ext === "ods" ? "sheet_of" : "page_of";
  return `${t(word)} ${page}`;
}

// Text read by OCR says so (the quote may differ from the scan).
function ocrNote(x) {
  return x.ocr_confidence == null ? "" : ` (${t("ocr")} ${Math.round(x.ocr_confidence)} %)`;
}

// A citation's place as a link (`#doc=…&page=…&start=…&end=…&n=…`): it can be
// opened, bookmarked or typed, and the API decides what the reader may see.
function citeHref(c) {
  const q = new URLSearchParams({ doc: c.doc, start: String(c.start), end: String(c.end), n: String(c.n) });
  if (c.page) q.set("page", String(c.page));
  return "#" + q.toString();
}

function citeLink(text, c, attrs) {
  const a = el("a", text, Object.assign({ href: citeHref(c) }, attrs || {}));
  a.addEventListener("click", (e) => {
    e.preventDefault();
    history.pushState(null, "", a.getAttribute("href"));
    openLocation();
  });
  return a;
}

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
      box.append(citeLink(part, c, { class: "cite", "aria-label": `${part} ${c.doc}${c.page ? `, ${placeOf(c.doc, c.page)}` : ""}` }));
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
    const label = `${c.doc}${c.page ? `, ${placeOf(c.doc, c.page)}` : ""}${ocrNote(c)}: “${c.quote}”`;
    li.append(citeLink(label, c, { class: "cite-link" }));
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

// Opens the place the location names (a citation link, or a typed URL):
// the page's text around the quoted span, the span highlighted.
async function openLocation() {
  const h = new URLSearchParams(location.hash.slice(1));
  const doc = h.get("doc");
  if (!doc || !key()) return;
  const start = Number(h.get("start")) || 0, end = Math.max(start, Number(h.get("end")) || start);
  const page = h.get("page"), n = h.get("n");
  if ($("tab-ask").hidden) show("ask");
  const q = new URLSearchParams({ doc, start: String(Math.max(0, start - 1500)), end: String(end + 1500) });
  if (page) q.set("page", page);
  const v = $("viewer");
  const title = `${n ? `[${n}] ` : ""}${doc}${page ? `, ${placeOf(doc, page)}` : ""}`;
  try {
    const p = await (await api("/v1/documents/page?" + q.toString())).json();
    const chars = Array.from(p.text);
    const a = Math.max(0, start - p.start), b = Math.max(a, end - p.start);
    const mark = el("mark", chars.slice(a, b).join(""));
    $("viewer-text").replaceChildren(document.createTextNode(chars.slice(0, a).join("")), mark,
      document.createTextNode(chars.slice(b).join("")));
    $("viewer-title").textContent = title;
    v.hidden = false;
    mark.scrollIntoView({ block: "center" });
  } catch (e) {
    // Not found and not visible read the same: nothing of the document shows.
    $("viewer-title").textContent = `${doc}: ${t("notfound")}`;
    $("viewer-text").replaceChildren();
    v.hidden = false;
  }
  $("viewer-title").focus();
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
  $("search-plan").replaceChildren();
  try {
    const r = await api("/v1/search", { method: "POST", json: { query: q, k: Number(k), explain: true } });
    // Server-Timing: "embed;dur=14.1, vector;dur=0.1, …" shown as "embed 14.1 ms · …".
    $("search-timing").textContent = (r.headers.get("Server-Timing") || "").split(",")
      .map((x) => x.trim().match(/^(\w+);dur=([\d.]+)$/)).filter(Boolean)
      .map((m) => `${m[1]} ${Number(m[2]).toFixed(1)} ms`).join(" · ");
    const { hits, explain } = await r.json();
    const side = (e) => e ? `#${e.rank} · ${e.score}` : "–";
    hits.forEach((h, i) => {
      const x = explain.hits[i] || {};
      const tr = el("tr");
      const c = { doc: h.doc, page: h.page, start: h.start, end: h.end, n: i + 1 };
      const doc = el("td");
      doc.append(citeLink(h.doc, c), ocrNote(h));
      tr.append(el("td", i + 1), doc, el("td", h.page || ""), el("td", h.score), el("td", side(x.vector)),
        el("td", side(x.keyword)), el("td", h.text.slice(0, 400)));
      tbody.append(tr);
    });
    const plans = Object.entries(explain.plans).map(([p, n]) => `${t("plan_" + p)} ×${n}`).join(", ") || "–";
    const f = explain.filter;
    const add = (label, text) => $("search-plan").append(el("dt", label), el("dd", text));
    const translated = explain.translated_weight > 0 ? `, ${t("translated")} ${explain.translated_weight}` : "";
    add(t("fusion"), `${explain.fusion} (${t("vector")} ${explain.vector_weight}, ${t("keyword")} ${explain.keyword_weight}${translated})` +
      (explain.reranked ? ` + ${t("reranked")}` : ""));
    add(t("candidates"), `${t("vector")} ${explain.vector_candidates}, ${t("keyword")} ${explain.keyword_candidates}` +
      (explain.translated_candidates > 0 ? `, ${t("translated")} ${explain.translated_candidates}` : ""));
    if (explain.translated_question) add(t("translated_question"), explain.translated_question);
    add(t("plan"), plans);
    add(t("filter"), `${t("teams_any")} ${f.teams.join(", ")}; ${t("clearance")} ≤ ${f.clearance}` +
      (f.docs ? `; ${JSON.stringify(f.docs)}` : ""));
  } catch (e) {
    $("search-timing").textContent = e.message;
  }
}

// ---- Approvals ----
// Refreshed every few seconds: items keep their place (and a reason being
// typed), new ones are added, decided ones go.
async function loadApprovals() {
  const ul = $("approval-list");
  try {
    const list = await (await api("/v1/approvals?status=pending")).json();
    const items = list.approvals || list;
    const ids = new Set(items.map((a) => a.id));
    for (const li of [...ul.children]) if (!ids.has(li.dataset.id)) li.remove();
    $("approvals-empty").hidden = items.length > 0;
    for (const a of items) {
      if (ul.querySelector(`li[data-id="${CSS.escape(a.id)}"]`)) continue;
      ul.append(approvalItem(a));
    }
  } catch (e) {
    ul.replaceChildren(el("li", e.message, { class: "error" }));
  }
}

function approvalItem(a) {
  const li = el("li", null, { "data-id": a.id });
  li.append(el("p", `${a.id}: ${a.principal} — ${a.tool} — ${a.summary || ""}`));
  // Exactly what would run (document text as its size and SHA-256).
  const det = el("details");
  det.append(el("summary", `${t("arguments")} · ${a.created_at.replace("T", " ").slice(0, 19)}`),
    el("pre", JSON.stringify(a.arguments, null, 2)));
  li.append(det);
  const reason = el("input", null, { "aria-label": t("reason"), placeholder: t("reason") });
  const ok = el("button", t("approve"), { type: "button" });
  const no = el("button", t("reject"), { type: "button" });
  const decide = async (d) => {
    try {
      await api(`/v1/approvals/${encodeURIComponent(a.id)}`, { method: "POST", json: { decision: d, reason: reason.value || null } });
    } catch (e) { li.append(el("p", e.message, { class: "error" })); return; }
    li.remove();
    loadApprovals();
  };
  ok.addEventListener("click", () => decide("approve"));
  no.addEventListener("click", () => decide("reject"));
  li.append(reason, ok, no);
  return li;
}
// Live: new and decided actions show up within seconds, without a reload.
setInterval(() => { if (!$("tab-approvals").hidden && key()) loadApprovals(); }, 3000);

// ---- Usage ----
async function loadUsage() {
  // Nothing stale shows while the new figures load.
  const b = $("budgets").tBodies[0], s = $("spend").tBodies[0];
  b.replaceChildren(); s.replaceChildren(); $("recent").tBodies[0].replaceChildren(); $("chain").textContent = "";
  const u = await (await api("/v1/usage")).json();
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
  const admin = me.roles.includes("admin");
  const a = await (await api("/v1/audit?limit=20" + (admin ? "&verify=true" : ""))).json();
  let chain = a.refusing ? `${t("chain_refusing")}: ${a.refusing}` : t("chain_ok");
  if (a.verified) {
    chain += a.verified.intact ? ` — ${t("chain_verified")} (${a.verified.records})`
      : ` — ${t("chain_problems")}: ${a.verified.problems.join("; ")}`;
  }
  $("chain").textContent = chain;
  $("chain").className = a.refusing || (a.verified && !a.verified.intact) ? "error" : "";
  const r = $("recent").tBodies[0];
  r.replaceChildren();
  for (const x of a.recent) {
    const tr = el("tr");
    tr.append(el("td", x.time.replace("T", " ").slice(0, 19)), el("td", x.principal), el("td", x.endpoint),
      el("td", x.status), el("td", x.provider ? `${x.provider} (${x.locality})` : "–"),
      el("td", x.cost_usd.toFixed(4)), el("td", (x.flags || []).join(", ")));
    r.append(tr);
  }
}

// ---- Documents ----
async function loadDocuments() {
  const tbody = $("doc-list").tBodies[0];
  tbody.replaceChildren();
  const { documents, failed } = await (await api("/v1/documents")).json();
  const fb = $("failed").tBodies[0];
  fb.replaceChildren();
  $("failed-box").hidden = !failed || failed.length === 0;
  for (const f of failed || []) {
    const tr = el("tr");
    tr.append(el("td", f.root), el("td", f.path), el("td", f.error),
      el("td", new Date(f.at * 1000).toISOString().replace("T", " ").slice(0, 19)));
    fb.append(tr);
  }
  for (const d of documents) {
    const tr = el("tr");
    const td = el("td");
    if (me.roles.includes("admin") && d.uploaded) {
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

document.addEventListener("DOMContentLoaded", async () => {
  translate();
  // Handlers first: a key typed and sent at once must never be submitted
  // natively (the CSP's form-action 'none' blocks that too).
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("key").value); });
  // A reload forgets everything the last person saw.
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem("hort-key"); history.replaceState(null, "", "/"); location.reload();
  });
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
  $("ask-form").addEventListener("submit", (e) => { e.preventDefault(); ask($("question").value); });
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("search-q").value, $("search-k").value); });
  $("upload-form").addEventListener("submit", (e) => { e.preventDefault(); upload(); });
  window.addEventListener("hashchange", openLocation);
  await issuerSignIn();
  if (key()) signIn(key());
});
