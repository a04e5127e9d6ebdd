"""The web console in a real browser (headless Chromium driven by Playwright),
against a real `hort serve` on loopback that tests/console_browser.rs starts.

Every check acts as a person would (typing, clicking, pressing keys) and
asserts on what a person sees. Settings come from the environment:

  HORT_URL          the server, e.g. http://127.0.0.1:41234
  HORT_CHROMIUM     the browser's directory (data/browser)
  HORT_CHROMIUM_BIN another Chromium to use instead, e.g. Debian's /usr/bin/chromium
  HORT_SCREENSHOTS  where each page's screenshot goes
  HORT_SECRET       a sentence of a restricted document the guest must never see
  HORT_QUESTION     a question the paid provider answers with a citation

Prints one line per passed check; exits non-zero on the first failure.
"""
import json
import os
import re
import sys
import urllib.error
import urllib.request

from playwright.sync_api import expect, sync_playwright

URL = os.environ["HORT_URL"]
BROWSER = os.environ["HORT_CHROMIUM"]
SHOTS = os.environ["HORT_SCREENSHOTS"]
SECRET = os.environ["HORT_SECRET"]
QUESTION = os.environ["HORT_QUESTION"]
TIMEOUT = 60_000
# The shared CI machine may be slow: assertions wait up to 30 s for the page.
expect.set_options(timeout=30_000)
errors = []  # console errors and uncaught exceptions of every page
# The checks provoke these on purpose (a wrong key, a restricted document):
# the browser logs the refused request; anything else is a real error.
EXPECTED = re.compile(r"Failed to load resource: the server responded with a status of (400|401|404)")


def api(method, path, key=None, body=None, headers=None):
    """A plain HTTP call beside the browser (status, parsed body, headers)."""
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None), r.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None), e.headers


def new_page(browser, locale="en-US"):
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("console", lambda m: m.type == "error" and not EXPECTED.search(m.text)
            and errors.append(f"{page.url}: {m.text}"))
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    page.goto(URL + "/")
    return page


def sign_in(page, key):
    page.fill("#key", key)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#tabs")).to_be_visible()


def tab(page, name):
    page.click(f'#tabs button[data-tab="{name}"]')
    expect(page.locator(f"#tab-{name}")).to_be_visible()


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, name + ".png"), full_page=True)


def norm(s):
    return re.sub(r"\s+", " ", s).strip()


def budget_spent(page, account):
    """Spent (USD) of `account` in the usage page's budget table."""
    tab(page, "usage")
    row = page.locator("#budgets tbody tr", has_text=account)
    expect(row).to_have_count(1)
    return float(row.locator("td").nth(1).text_content())


def ask(page, question, cited=True):
    tab(page, "ask")
    page.fill("#question", question)
    page.click("#ask")
    if cited:
        expect(page.locator("#citations li").first).to_be_visible()
    else:
        expect(page.locator("#flags li").first).to_be_visible()


def check_sign_in(browser):
    page = new_page(browser)
    # Before signing in there is nothing but the sign-in.
    expect(page.locator("#signin")).to_be_visible()
    for hidden in ["#tabs", "#signout", "#tab-ask", "#tab-usage"]:
        expect(page.locator(hidden)).to_be_hidden()
    shot(page, "signin")
    page.fill("#key", "not-a-key")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_have_text("This key was not accepted.")
    assert page.evaluate("sessionStorage.getItem('hort-key')") is None
    sign_in(page, "key-carol")
    expect(page.locator("#who")).to_contain_text("carol")
    expect(page.locator("#who")).to_contain_text("finance")
    expect(page.locator("#who")).to_contain_text("confidential")
    # The key is kept for the tab only and never put in a URL.
    assert "key-carol" not in page.url
    assert page.evaluate("sessionStorage.getItem('hort-key')") == "key-carol"
    assert page.evaluate("localStorage.length") == 0
    # Reloading keeps the sign-in (same tab); signing out forgets it.
    page.reload()
    expect(page.locator("#who")).to_contain_text("carol")
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('hort-key')") is None
    page.context.close()
    # Without the script (blocked, not yet loaded), submitting the form puts
    # the key in no address.
    ctx = browser.new_context(java_script_enabled=False)
    bare = ctx.new_page()
    bare.goto(URL + "/")
    bare.fill("#key", "key-carol")
    bare.focus("#key")
    bare.keyboard.press("Enter")
    bare.wait_for_timeout(1000)
    assert "key-carol" not in bare.url, bare.url
    ctx.close()


def check_ask_cite_and_budget(browser):
    page = new_page(browser)
    sign_in(page, "key-carol")
    before = budget_spent(page, "carol")
    ask(page, QUESTION)
    answer = page.locator("#answer")
    # The numbers in the text are links, and they are the list's numbers.
    in_text = sorted({int(n) for n in re.findall(r"\[(\d+)\]", answer.text_content())})
    listed = sorted({int(li.get_attribute("value")) for li in page.locator("#citations li").all()})
    assert in_text and in_text == listed, (in_text, listed)
    assert page.locator("#answer a.cite").count() == len(re.findall(r"\[\d+\]", answer.text_content()))
    flags = page.locator("#flags").text_content()
    assert "Answered by cloud (local)" in flags, flags
    assert "Answer cache: stored" in flags, flags
    # Open the citation: the cited page, the quote highlighted.
    link = page.locator("#answer a.cite").first
    href = link.get_attribute("href")
    link.click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    mark = page.locator("#viewer-text mark")
    expect(mark).to_be_visible()
    quoted = norm(mark.text_content())
    cite = page.locator("#citations li").first.text_content()
    assert quoted and quoted[:40] in norm(cite), (quoted, cite)
    # The span is the one the answer's citation names, on its page.
    params = dict(p.split("=", 1) for p in href[1:].split("&"))
    doc = urllib.request.unquote(params["doc"])
    expect(page.locator("#viewer-title")).to_contain_text(doc)
    if "page" in params:
        expect(page.locator("#viewer-title")).to_contain_text("page " + params["page"])
    q = f"/v1/documents/page?doc={params['doc']}&start={params['start']}&end={params['end']}"
    if "page" in params:
        q += "&page=" + params["page"]
    status, body, _ = api("GET", q, "key-carol")
    assert status == 200 and norm(body["text"]) == quoted, (status, body)
    assert page.evaluate("document.activeElement.id") == "viewer-title"
    shot(page, "ask")
    # The link is an address: opened in a new tab of the same session it
    # shows the same place.
    page.goto(URL + "/" + href)
    expect(page.locator("#viewer-text mark")).to_have_text(mark.text_content())
    # The paid answer moved carol's budget, and the request is listed.
    after = budget_spent(page, "carol")
    assert after > before, (before, after)
    asked = page.locator("#recent tbody tr", has_text="/v1/query")
    expect(asked).to_have_count(1)
    expect(asked).to_contain_text("cloud (local)")
    expect(asked).to_contain_text("cache:stored")
    expect(page.locator("#chain")).to_have_text("takes appends")
    shot(page, "usage")
    print(f"budget of carol: {before:.4f} -> {after:.4f} USD")
    page.context.close()


def check_restricted(browser):
    page = new_page(browser)
    sign_in(page, "key-guest")
    ask(page, "What is Project Falcon and who is involved?", cited=False)
    hrefs = [a.get_attribute("href") for a in page.locator("a[href^='#']").all()]
    assert not any("legal" in h for h in hrefs), hrefs
    assert SECRET not in norm(page.locator("body").text_content())
    tab(page, "search")
    page.fill("#search-q", "Project Falcon")
    page.click("#search-form button[type=submit]")
    expect(page.locator("#search-plan")).to_contain_text("public")
    docs = page.locator("#search-hits tbody tr td:nth-child(2)").all_text_contents()
    assert not any(d.startswith("legal/") for d in docs), docs
    tab(page, "documents")
    expect(page.locator("#doc-list tbody tr").first).to_be_visible()
    listed = page.locator("#doc-list tbody").text_content()
    assert "legal/" not in listed and "finance/" not in listed, listed
    # Typing the restricted document's address shows nothing of it.
    page.goto(URL + "/#doc=legal%2Fproject-falcon.md&start=0&end=200&n=1")
    expect(page.locator("#viewer-title")).to_contain_text("not visible to you")
    expect(page.locator("#viewer-text")).to_have_text("")
    assert SECRET not in norm(page.locator("body").text_content())
    # So does the API's own address, typed or with the guest's key.
    r = page.goto(URL + "/v1/documents/page?doc=legal/project-falcon.md")
    assert r.status == 401, r.status
    status, body, _ = api("GET", "/v1/documents/page?doc=legal/project-falcon.md", "key-guest")
    assert status == 404 and SECRET not in json.dumps(body), (status, body)
    page.context.close()


def mcp_pending_write():
    """The writer agent asks to store a document: an action waits for approval."""
    hdr = {"Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}
    status, _, h = api("POST", "/mcp", "key-writer", init, hdr)
    assert status == 200, status
    hdr["Mcp-Session-Id"] = h["Mcp-Session-Id"]
    api("POST", "/mcp", "key-writer", {"jsonrpc": "2.0", "method": "notifications/initialized"}, hdr)
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "ingest_document",
        "arguments": {"path": "agent/minutes.md", "content": "The board meets on Tuesdays.",
                      "teams": ["staff"], "classification": "internal"}}}
    status, body, _ = api("POST", "/mcp", "key-writer", call, hdr)
    assert status == 200, (status, body)
    structured = body["result"]["structuredContent"]
    assert structured["status"] == "pending_approval", body
    return structured["approval_id"]


def check_approval(browser):
    page = new_page(browser)
    sign_in(page, "key-boss")
    tab(page, "approvals")
    expect(page.locator("#approvals-empty")).to_be_visible()
    aid = mcp_pending_write()
    # Live: the waiting action appears without reloading.
    item = page.locator("#approval-list li", has_text=aid)
    expect(item).to_be_visible(timeout=15_000)
    expect(item).to_contain_text("writer")
    expect(item).to_contain_text("ingest_document")
    item.get_by_label("Reason").fill("minutes are fine")
    item.locator("summary").click()
    expect(item.locator("pre")).to_contain_text("agent/minutes.md")
    # A refresh while the approver types keeps what was typed.
    page.wait_for_timeout(3500)
    expect(item.get_by_label("Reason")).to_have_value("minutes are fine")
    shot(page, "approvals")
    item.get_by_role("button", name="Approve").click()
    expect(item).to_have_count(0)
    status, action, _ = api("GET", f"/v1/approvals/{aid}", "key-boss")
    assert status == 200 and action["status"] == "approved", action
    assert action["decided_by"] == "boss" and action["reason"] == "minutes are fine", action
    page.context.close()


def check_search_testing(browser):
    page = new_page(browser)
    sign_in(page, "key-carol")
    tab(page, "search")
    page.fill("#search-q", "travel expenses approval")
    page.fill("#search-k", "5")
    page.click("#search-form button[type=submit]")
    rows = page.locator("#search-hits tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() <= 5
    # Both scores: at least one hit carries a vector and a keyword rank.
    both = [r for r in rows.all() if "#" in r.locator("td").nth(4).text_content()
            and "#" in r.locator("td").nth(5).text_content()]
    assert both, "no hit with both scores"
    plan = page.locator("#search-plan").text_content()
    for want in ["Fusion", "weighted", "Vector plan", "Access filter", "finance", "staff", "confidential"]:
        assert want in plan, (want, plan)
    assert re.search(r"exact scan|graph", plan), plan
    shot(page, "search")
    page.context.close()


def check_documents(browser, tmp):
    page = new_page(browser)
    sign_in(page, "key-boss")
    tab(page, "documents")
    expect(page.locator("#upload-form")).to_be_visible()
    # What the last ingest could not read, with the reason.
    failed = page.locator("#failed tbody tr")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("finance/scan-0042.pdf")
    path = os.path.join(tmp, "kantine.md")
    with open(path, "w") as f:
        f.write("# Kantine\n\nDie Kantine öffnet um 11:30 Uhr.\n")
    page.fill("#up-path", "notes/kantine.md")
    page.fill("#up-teams", "staff")
    page.select_option("#up-class", "internal")
    page.set_input_files("#up-file", path)
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#doc-status")).to_have_text("Uploaded: notes/kantine.md")
    expect(page.locator("#doc-list tbody tr", has_text="notes/kantine.md")).to_have_count(1)
    shot(page, "documents")
    # Only uploads can be deleted here; folder documents go with their files.
    dels = page.get_by_role("button", name=re.compile("^Delete")).all()
    assert [d.get_attribute("aria-label") for d in dels] == ["Delete notes/kantine.md"], dels
    page.get_by_role("button", name="Delete notes/kantine.md").click()
    expect(page.locator("#doc-status")).to_have_text("Deleted: notes/kantine.md")
    expect(page.locator("#doc-list tbody tr", has_text="notes/kantine.md")).to_have_count(0)
    # A reader has no upload form and no delete buttons.
    page.click("#signout")
    sign_in(page, "key-carol")
    tab(page, "documents")
    expect(page.locator("#doc-list tbody tr").first).to_be_visible()
    expect(page.locator("#upload-form")).to_be_hidden()
    expect(page.locator("#failed-box")).to_be_hidden()
    assert page.get_by_role("button", name=re.compile("^Delete")).count() == 0
    page.context.close()


def focus_until(page, predicate, limit=40):
    """Presses Tab until `predicate` (JS, on document.activeElement) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(e => {predicate})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached {predicate}")


def check_keyboard_only(browser):
    page = new_page(browser)
    focus_until(page, "e.id === 'key'", 5)
    page.keyboard.type("key-carol")
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_contain_text("carol")
    focus_until(page, "e.id === 'question'")
    # Focus is visible wherever it is.
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.type(QUESTION)
    focus_until(page, "e.id === 'ask'", 3)
    page.keyboard.press("Enter")
    expect(page.locator("#citations li").first).to_be_visible()
    focus_until(page, "e.classList.contains('cite')")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    expect(page.locator("#viewer-text mark")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "viewer-title"
    # The other sections are reachable by keyboard too.
    focus_until(page, "e.dataset.tab === 'usage'", 60)
    page.keyboard.press("Enter")
    expect(page.locator("#tab-usage")).to_be_visible()
    page.context.close()


def check_accessibility(browser):
    page = new_page(browser)
    sign_in(page, "key-boss")
    problems = []
    for name in ["ask", "search", "approvals", "usage", "documents"]:
        tab(page, name)
        # Every field is labelled.
        problems += page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.offsetParent !== null)
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => 'unlabelled ' + (e.id || e.outerHTML.slice(0, 60)))""")
        # Text contrast at least 4.5:1 against the nearest opaque background.
        problems += page.evaluate("""() => {
            const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
            const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
                .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
                .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
            const bg = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
            const out = [];
            for (const e of document.querySelectorAll('body *')) {
                if (e.offsetParent === null || ![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
                const a = lum(rgb(getComputedStyle(e).color)), b = lum(bg(e));
                const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
                if (ratio < 4.5) out.push(`contrast ${ratio.toFixed(2)} on ${e.tagName} "${e.textContent.trim().slice(0, 30)}"`);
            }
            return out; }""")
    assert not problems, problems
    page.context.close()


def check_german(browser):
    page = new_page(browser, locale="de-DE")
    expect(page.locator("#signin-title")).to_have_text("Anmelden")
    assert page.evaluate("document.documentElement.lang") == "de"
    sign_in(page, "key-carol")
    expect(page.locator("#who")).to_contain_text("Angemeldet als carol")
    expect(page.locator('#tabs button[data-tab="approvals"]')).to_have_text("Freigaben")
    shot(page, "german")
    page.context.close()


def check_issuer_sign_in(browser):
    page = new_page(browser)
    sso = page.locator("#sso")
    expect(sso).to_have_text("Sign in with Nordwind SSO")
    sso.click()
    # Through the issuer and back, signed in; the code is gone from the address.
    expect(page.locator("#who")).to_contain_text("jwt:erika")
    expect(page.locator("#who")).to_contain_text("confidential")
    assert page.url == URL + "/", page.url
    token = page.evaluate("sessionStorage.getItem('hort-key')")
    assert token and token.count(".") == 2, "the ID token is kept for the tab"
    assert page.locator('meta[name="hort-token"]').count() == 0
    ask(page, QUESTION)
    # A callback nobody started here (a crafted link) signs nobody in.
    page.context.clear_cookies()
    page.evaluate("sessionStorage.clear()")
    page.goto(URL + "/console/oidc/callback?code=code-1&state=forged")
    expect(page.locator("#signin-error")).to_contain_text("not started here")
    expect(page.locator("#tabs")).to_be_hidden()
    assert page.url == URL + "/", page.url
    page.context.close()


def main():
    tmp = os.environ.get("TMPDIR", "/tmp")
    env = dict(os.environ, LD_LIBRARY_PATH=f"{BROWSER}/lib:{BROWSER}", FONTCONFIG_PATH=BROWSER)
    checks = [check_sign_in, check_ask_cite_and_budget, check_restricted, check_approval,
              check_search_testing, lambda b: check_documents(b, tmp), check_keyboard_only,
              check_accessibility, check_german, check_issuer_sign_in]
    names = ["sign in", "ask, cite, budget", "restricted", "approval", "search testing",
             "documents", "keyboard only", "accessibility", "german", "issuer sign-in"]
    with sync_playwright() as p:
        exe = os.environ.get("HORT_CHROMIUM_BIN") or os.path.join(BROWSER, "chromium")
        browser = p.chromium.launch(
            executable_path=exe, env=env,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-quic", "--disable-dev-shm-usage"])
        for name, check in zip(names, checks):
            check(browser)
            print("ok", name, flush=True)
        browser.close()
    # CSP violations, script errors and server errors show up here.
    assert not errors, errors
    print("ok no console errors")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAILED:", e, file=sys.stderr)
        raise
