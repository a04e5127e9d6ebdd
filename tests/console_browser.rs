//! The web console in a real browser: tests/browser/console.py drives a
//! headless Chromium (fetched by `make browser`, pinned) with Playwright
//! against a real `hort serve` on loopback, with the real embedding model, a
//! paid provider (a local server speaking the OpenAI wire format), a budget,
//! an agent whose write waits for approval, and principals who may and may
//! not see the legal documents. Screenshots of each page go to
//! `target/console-screenshots` (`HORT_UPDATE_SCREENSHOTS=1`: to
//! docs/screenshots, which the README shows).

mod common;

use common::{local_state, principal, repo, start_quoting_llm, Env, Server};

#[test]
fn the_console_in_a_real_browser() {
    let browser = repo().join("data/browser");
    let py = repo().join("data/browser-py");
    // HORT_CHROMIUM_BIN: another Chromium (Debian's /usr/bin/chromium, say).
    let other = std::env::var_os("HORT_CHROMIUM_BIN").is_some();
    assert!(
        (other || browser.join("chromium").is_file()) && py.join(".stamp").is_file(),
        "the test browser is missing: run `make browser` (make test does it for you)"
    );
    let llm = start_quoting_llm();
    let idp = common::start_fake_idp(
        "erika",
        serde_json::json!({"teams": ["staff", "finance"], "clearance": "confidential"}),
    );
    let extra = format!(
        r#"
{sign_in}
{provider}
[routing]
chain = ["cloud"]
extractive_fallback = false

[[mcp.grants]]
role = "agent-writer"
tools = ["search", "ingest_document"]

{state}
{carol}
{boss}
{writer}"#,
        sign_in = common::sign_in_toml(&idp.addr, Some("Nordwind SSO")),
        provider = common::priced_provider("cloud", &llm.addr, 0.5, 1.0),
        state = local_state(""),
        carol = principal(
            "carol",
            r#"["staff", "finance"]"#,
            "confidential",
            "monthly_budget_usd = 50.0"
        ),
        boss = principal(
            "boss",
            r#"["staff"]"#,
            "internal",
            r#"roles = ["approver", "admin"]"#
        ),
        writer = principal(
            "writer",
            r#"["staff"]"#,
            "internal",
            r#"roles = ["agent-writer"]"#
        ),
    );
    let env = Env::with_extra("minilm-l6", &extra);
    std::fs::write(env.path().join("jwks.json"), idp.jwks.to_string()).unwrap();
    // The sample corpus and one file no parser can read.
    env.ingest_fixtures_with(&[("finance/scan-0042.pdf", b"%PDF-1.7 torn")]);
    let server = Server::start(&env);
    // A sentence only the restricted legal document has.
    let falcon =
        std::fs::read_to_string(repo().join("fixtures/corpus/legal/project-falcon.md")).unwrap();
    let secret = falcon
        .lines()
        .map(str::trim)
        .find(|l| l.len() > 60 && !l.starts_with('#'))
        .expect("a long line in project-falcon.md")
        .chars()
        .take(50)
        .collect::<String>();
    let shots = if std::env::var_os("HORT_UPDATE_SCREENSHOTS").is_some() {
        repo().join("docs/screenshots")
    } else {
        repo().join("target/console-screenshots")
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/browser/console.py"))
        .env("PYTHONPATH", &py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("HORT_URL", format!("http://{}", server.addr))
        .env("HORT_CHROMIUM", &browser)
        .env("HORT_SCREENSHOTS", &shots)
        .env("HORT_SECRET", &secret)
        .env(
            "HORT_QUESTION",
            "Who must approve travel expenses above the limit?",
        )
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        idp.refused.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the issuer refused a token request"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser checks failed\n--- passed ---\n{stdout}\n--- error ---\n{stderr}\n--- server log ---\n{}",
        server.log.lock().unwrap()
    );
    for check in [
        "sign in",
        "ask, cite, budget",
        "restricted",
        "approval",
        "search testing",
        "documents",
        "keyboard only",
        "accessibility",
        "german",
        "issuer sign-in",
        "no console errors",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {check}")),
            "{check} did not pass:\n{stdout}"
        );
    }
}
