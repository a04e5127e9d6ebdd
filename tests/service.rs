//! `hort serve` as an operations team meets it, over real loopback sockets:
//! every error status of the interface produced by a real request, rate
//! limits and budgets (also across a restart), uploads and deletions,
//! back-pressure, timeouts, graceful shutdown, metrics and the audit log.

mod common;

use std::time::{Duration, Instant};

use common::{bearer, copy_tree, repo, start_scripted_llm, Env, Server};

/// Principals beyond alice/guest of the common configuration.
fn principals() -> String {
    let p = common::principal;
    [
        p(
            "admin",
            r#"["staff"]"#,
            "restricted",
            r#"roles = ["admin"]"#,
        ),
        p(
            "finadmin",
            r#"["finance"]"#,
            "restricted",
            r#"roles = ["admin"]"#,
        ),
        p(
            "limited",
            r#"["staff"]"#,
            "public",
            "requests_per_minute = 2",
        ),
        p(
            "spender",
            r#"["staff"]"#,
            "internal",
            "monthly_budget_usd = 1.0",
        ),
        p("ops1", r#"["ops"]"#, "public", ""),
        p("ops2", r#"["ops"]"#, "public", ""),
    ]
    .concat()
}

/// A configuration answering through the scripted model, with `server` and
/// `more` added, and the sample corpus ingested.
fn setup(llm: &str, server: &str, more: &str) -> Env {
    let extra = format!(
        r#"
[server]
{server}

{}
[[providers]]
name = "scripted"
kind = "openai"
base_url = "http://{llm}/v1"
model = "m"
locality = "local"
timeout_s = 30
max_retries = 0
usd_per_1k_input = 0.1

[routing]
chain = ["scripted"]
extractive_fallback = false

[[teams]]
name = "ops"
requests_per_minute = 3

{more}
{}"#,
        common::local_state(""),
        principals()
    );
    let env = Env::with_extra("minilm-l6", &extra);
    env.ingest_fixtures();
    env
}

fn post(s: &Server, path: &str, key: &str, body: &str) -> common::Response {
    s.post_json(path, Some(key), body)
}

fn code(r: &common::Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_string()
}

#[test]
fn error_statuses_limits_budgets_and_metrics() {
    let llm = start_scripted_llm();
    let env = setup(&llm, "max_body_kb = 64\nmax_upload_mb = 1", "");
    let mut s = Server::start(&env);
    let q = r#"{"query": "Who approves travel above 500 EUR?", "k": 4}"#;

    // 200 with a request id; the answer came from the scripted model.
    let ok = post(&s, "/v1/query", "key-alice", q);
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.json()["route"]["provider"], "scripted");
    assert!(ok.header("x-request-id").is_some_and(|v| !v.is_empty()));

    // 400: bad JSON, wrong types, empty and overlong questions.
    for body in [
        "not json",
        r#"{"query": 7}"#,
        r#"{"query": ""}"#,
        &format!(r#"{{"query": "{}"}}"#, "x".repeat(5000)),
    ] {
        let r = post(&s, "/v1/search", "key-alice", body);
        assert_eq!(r.status, 400, "{body:.60}");
        assert_eq!(code(&r), "bad_request");
    }
    // 401, identical for an unknown key and a near miss of a real one.
    let a = post(&s, "/v1/search", "key-nobody", q);
    let b = post(&s, "/v1/search", "key-alicE", q);
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(a.body, b.body);
    assert!(!String::from_utf8_lossy(&a.body).contains("alice"));
    // 403: documents need the admin role.
    let r = post(
        &s,
        "/v1/documents",
        "key-alice",
        r#"{"path": "a.md", "content": "x", "teams": ["staff"], "classification": "public"}"#,
    );
    assert_eq!((r.status, code(&r).as_str()), (403, "forbidden"));
    // 404: unknown endpoint, unknown document; 405: wrong method.
    let r = s.request("GET", "/v2/anything", &[], b"");
    assert_eq!((r.status, code(&r).as_str()), (404, "not_found"));
    let auth = bearer("key-admin");
    let r = s.request(
        "DELETE",
        "/v1/documents?path=never/uploaded.md",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!((r.status, code(&r).as_str()), (404, "not_found"));
    let r = s.request("GET", "/v1/search", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 405);
    // 413: over max_body_kb (64 KiB here); uploads have their own, larger limit.
    let big = format!(r#"{{"query": "{}"}}"#, "a".repeat(100 * 1024));
    let r = post(&s, "/v1/search", "key-alice", &big);
    assert_eq!((r.status, code(&r).as_str()), (413, "payload_too_large"));
    let upload = format!(
        r#"{{"path": "big.txt", "content": "{}", "teams": ["staff"], "classification": "public"}}"#,
        "word ".repeat(400 * 1024)
    );
    let r = post(&s, "/v1/documents", "key-admin", &upload);
    assert_eq!(r.status, 413, "2 MB upload over a 1 MB limit");
    // 502: the only provider fails and there is no fallback.
    let r = post(
        &s,
        "/v1/query",
        "key-alice",
        r#"{"query": "zzfail travel approval"}"#,
    );
    assert_eq!((r.status, code(&r).as_str()), (502, "provider_error"));

    // 429: the principal's own limit (2 per minute) ...
    for _ in 0..2 {
        assert_eq!(post(&s, "/v1/search", "key-limited", q).status, 200);
    }
    let r = post(&s, "/v1/search", "key-limited", q);
    assert_eq!((r.status, code(&r).as_str()), (429, "rate_limited"));
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // ... and the team's (3 per minute, shared by ops1 and ops2).
    assert_eq!(post(&s, "/v1/search", "key-ops1", q).status, 200);
    assert_eq!(post(&s, "/v1/search", "key-ops1", q).status, 200);
    assert_eq!(post(&s, "/v1/search", "key-ops2", q).status, 200);
    let r = post(&s, "/v1/search", "key-ops2", q);
    assert_eq!(r.status, 429);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("team ops"));
    // Others are not affected.
    assert_eq!(post(&s, "/v1/search", "key-guest", q).status, 200);

    // Budget: one expensive answer (100k tokens at 0.1 USD/1k = 10 USD)
    // spends spender's 1 USD; the next question is refused, search still works.
    let r = post(
        &s,
        "/v1/query",
        "key-spender",
        r#"{"query": "zzexpensive travel approval"}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!((r.json()["usage"]["cost_usd"].as_f64().unwrap() - 10.0).abs() < 1e-6);
    let r = post(&s, "/v1/query", "key-spender", q);
    assert_eq!((r.status, code(&r).as_str()), (429, "budget_exceeded"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("principal spender"));
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    let chat = r#"{"messages": [{"role": "user", "content": "travel approval"}]}"#;
    assert_eq!(
        post(&s, "/v1/chat/completions", "key-spender", chat).status,
        429
    );
    assert_eq!(post(&s, "/v1/search", "key-spender", q).status, 200);

    // Metrics show what happened.
    let m = String::from_utf8(s.request("GET", "/metrics", &[], b"").body).unwrap();
    for needle in [
        "hort_http_request_duration_seconds_count{route=\"/v1/search\",status=\"200\"}",
        "hort_http_request_duration_seconds_count{route=\"/v1/query\",status=\"502\"} 1",
        "hort_http_request_duration_seconds_count{route=\"other\",status=\"404\"} 1",
        "hort_rate_limited_total 2",
        "hort_budget_refused_total 2",
        "hort_provider_cost_usd_total{provider=\"scripted\"}",
        "hort_provider_tokens_total{provider=\"scripted\",direction=\"input\"}",
        "hort_provider_call_duration_seconds_count{provider=\"scripted\",outcome=\"ok\"}",
        "hort_index_documents 31",
    ] {
        assert!(m.contains(needle), "metrics lack {needle}:\n{m}");
    }

    // The budget holds across a restart (the usage journal is replayed).
    assert!(s.stop().success());
    let s = Server::start(&env);
    let r = post(&s, "/v1/query", "key-spender", q);
    assert_eq!((r.status, code(&r).as_str()), (429, "budget_exceeded"));
    assert_eq!(post(&s, "/v1/query", "key-alice", q).status, 200);
    // The log never carried a credential.
    let log = s.log.lock().unwrap().clone();
    assert!(
        log.contains("status=429") && log.contains("request_id="),
        "access log lines: {log}"
    );
    assert!(!log.contains("key-alice") && !log.contains("key-spender"));
}

#[test]
fn uploads_and_deletions_need_admin_and_apply_access_at_once() {
    let llm = start_scripted_llm();
    let env = setup(&llm, "", "");
    let s = Server::start(&env);
    let search = r#"{"query": "zebra crossing maintenance schedule", "k": 3}"#;
    let sees = |key: &str| -> bool {
        let r = post(&s, "/v1/search", key, search);
        assert_eq!(r.status, 200);
        r.json()["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["doc"] == "finance/zebra.md")
    };
    let doc = |classification: &str| {
        format!(
            r#"{{"path": "finance/zebra.md", "teams": ["finance"], "classification": "{classification}",
                "content": "The zebra crossing maintenance schedule: repaint every spring, inspect in autumn."}}"#
        )
    };
    let r = post(&s, "/v1/documents", "key-admin", &doc("confidential"));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["chunks"], 1);
    assert!(sees("key-alice"), "finance + confidential sees it at once");
    assert!(!sees("key-guest"), "staff/public does not");
    assert!(
        !sees("key-admin"),
        "uploading does not grant access (admin is not in finance)"
    );
    // Nobody replaces what they may not see: not even an admin.
    let r = post(&s, "/v1/documents", "key-admin", &doc("restricted"));
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(sees("key-alice"));
    // An admin who sees it re-uploads with a stricter rule: alice loses access at once.
    assert_eq!(
        post(&s, "/v1/documents", "key-finadmin", &doc("restricted")).status,
        201
    );
    assert!(!sees("key-alice"));
    // A PDF as base64.
    let pdf = std::fs::read(repo().join("fixtures/corpus/internal/travel-policy.pdf")).unwrap();
    let b64 = common::base64(&pdf);
    let r = post(
        &s,
        "/v1/documents",
        "key-admin",
        &format!(
            r#"{{"path": "finance/travel-copy.pdf", "teams": ["finance"], "classification": "internal", "content_base64": "{b64}"}}"#
        ),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["chunks"].as_u64().unwrap() >= 3);
    // Bad uploads are 400s that say why.
    for (body, why) in [
        (
            r#"{"path": "../etc/passwd.md", "content": "x", "teams": ["a"], "classification": "public"}"#,
            "`..`",
        ),
        (
            r#"{"path": "a.doc", "content": "x", "teams": ["a"], "classification": "public"}"#,
            "supported types",
        ),
        (
            r#"{"path": "a.md", "content": "x", "teams": [], "classification": "public"}"#,
            "team",
        ),
        (
            r#"{"path": "a.md", "content": "x", "teams": ["a"], "classification": "secret"}"#,
            "classification",
        ),
        (
            r#"{"path": "a.md", "content_base64": "!!", "teams": ["a"], "classification": "public"}"#,
            "base64",
        ),
        (
            r#"{"path": "a.md", "teams": ["a"], "classification": "public"}"#,
            "exactly one",
        ),
        (
            r#"{"path": "a.pdf", "content": "not a pdf", "teams": ["a"], "classification": "public"}"#,
            "PDF",
        ),
    ] {
        let r = post(&s, "/v1/documents", "key-admin", body);
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(why), "{body}: {msg}");
    }
    // Delete: only by an admin who sees it (else it is not there); then
    // gone for everyone; deleting again is a 404.
    let blind = bearer("key-admin");
    let r = s.request(
        "DELETE",
        "/v1/documents?path=finance/zebra.md",
        &[("Authorization", &blind)],
        b"",
    );
    assert_eq!(r.status, 404);
    let auth = bearer("key-finadmin");
    let del = |path: &str| s.request("DELETE", path, &[("Authorization", &auth)], b"");
    assert_eq!(del("/v1/documents?path=finance/zebra.md").status, 200);
    assert!(!sees("key-admin") && !sees("key-alice"));
    assert_eq!(del("/v1/documents?path=finance/zebra.md").status, 404);
    assert_eq!(del("/v1/documents").status, 400);
    // Folder documents are not deletable through the API (only uploads).
    assert_eq!(
        del("/v1/documents?path=finance/bank-accounts.txt").status,
        404
    );
    // A folder ingest afterwards keeps the uploaded PDF.
    drop(s);
    let out = env.run(&["ingest", "--json", "corpus"]);
    assert!(out.status.success());
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["documents"], 32, "{status}");
}

#[test]
fn overload_timeout_and_graceful_shutdown() {
    let llm = start_scripted_llm();
    let env = setup(&llm, "max_concurrency = 1\nrequest_timeout_s = 3", "");
    let mut s = Server::start(&env);
    // The node reads its dictionary at start; until then a question may
    // wait for it, so a load balancer (and this test, whose timeout is
    // short) sends none before /readyz says so.
    for r in s.wait_ready() {
        assert_eq!(r["status"], "starting", "{r}");
        assert_eq!(r["waiting_for"], serde_json::json!(["dictionary"]), "{r}");
    }
    let addr = s.addr.clone();
    // A request the model takes 6 s for: the 3 s timeout answers 503.
    let slow = std::thread::spawn({
        let addr = addr.clone();
        move || {
            let t = Instant::now();
            let auth = bearer("key-alice");
            let r = common::http(
                &addr,
                "POST",
                "/v1/query",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                br#"{"query": "zzslow travel approval"}"#,
            );
            (r, t.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(700));
    // While it runs, the only slot is taken: 503 at once, with Retry-After.
    let t = Instant::now();
    let r = post(&s, "/v1/search", "key-guest", r#"{"query": "travel"}"#);
    assert_eq!((r.status, code(&r).as_str()), (503, "overloaded"));
    assert!(r.header("retry-after").is_some());
    assert!(t.elapsed() < Duration::from_secs(2), "shed, not queued");
    // Monitoring still answers under saturation.
    assert_eq!(s.request("GET", "/healthz", &[], b"").status, 200);
    assert_eq!(s.request("GET", "/readyz", &[], b"").status, 200);
    let (r, took) = slow.join().unwrap();
    assert_eq!((r.status, code(&r).as_str()), (503, "timeout"));
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Graceful shutdown: a request in flight when SIGTERM arrives completes.
    let pending = std::thread::spawn(move || {
        let auth = bearer("key-alice");
        common::http(
            &addr,
            "POST",
            "/v1/query",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            br#"{"query": "zzpause travel approval"}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(600));
    let status = s.stop();
    let r = pending.join().unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(status.success(), "{status:?}");
    // Its audit record made it to disk before the exit.
    let audit = std::fs::read_to_string(env.path().join("audit.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], 200);
    assert_eq!(last["endpoint"], "/v1/query");
}

#[test]
fn audit_log_records_every_request_and_verify_names_tampering() {
    let llm = start_scripted_llm();
    let env = setup(&llm, "", "");
    let mut s = Server::start(&env);
    let pii_question =
        r#"{"query": "Refund to DE89 3704 0044 0532 0130 00, who approves travel?"}"#;
    assert_eq!(post(&s, "/v1/query", "key-alice", pii_question).status, 200);
    assert_eq!(
        post(&s, "/v1/search", "key-guest", r#"{"query": "holiday"}"#).status,
        200
    );
    assert_eq!(
        post(&s, "/v1/search", "key-wrong", r#"{"query": "holiday"}"#).status,
        401
    );
    let st = post(
        &s,
        "/v1/query",
        "key-alice",
        r#"{"query": "Who approves travel above 500 EUR?", "stream": true}"#,
    );
    assert_eq!(st.status, 200);
    assert_eq!(s.request("GET", "/healthz", &[], b"").status, 200);
    assert!(s.stop().success());

    let path = env.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "one line per /v1 request, none for /healthz:\n{text}"
    );
    let q = &lines[0];
    assert_eq!(q["principal"], "alice");
    assert_eq!(q["endpoint"], "/v1/query");
    assert_eq!(q["status"], 200);
    assert_eq!(q["provider"], "scripted");
    assert_eq!(q["locality"], "local");
    assert_eq!(q["prompt_tokens"], 10);
    assert!(q["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(!q["chunks"].as_array().unwrap().is_empty());
    assert!(q["docs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == "internal/travel-policy.pdf"));
    assert_eq!(q["query_sha256"].as_str().unwrap().len(), 64);
    assert!(q.get("query").is_none(), "question text only if configured");
    assert_eq!(lines[2]["principal"], "-");
    assert_eq!(lines[2]["status"], 401);
    assert_eq!(lines[2]["error"], "unauthorized");
    assert_eq!(
        lines[3]["endpoint"], "/v1/query",
        "streamed answers are audited too"
    );
    assert_eq!(lines[3]["provider"], "scripted", "{text}");
    // No secrets, no raw personal data.
    for needle in ["key-alice", "key-wrong", "DE89", "3704 0044"] {
        assert!(!text.contains(needle), "audit log contains {needle}");
    }

    let verify = || env.run(&["audit", "verify"]);
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 records, chain intact"));
    let orig: Vec<String> = text.lines().map(str::to_string).collect();
    let put = |l: &[String]| {
        std::fs::write(
            &path,
            l.iter().map(|x| format!("{x}\n")).collect::<String>(),
        )
        .unwrap()
    };
    let expect = |l: Vec<String>, what: &str| {
        put(&l);
        let out = verify();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}");
        assert!(stdout.contains(what), "expected {what:?} in:\n{stdout}");
    };
    let mut l = orig.clone();
    l[1] = l[1].replace("\"guest\"", "\"alice\"");
    expect(l, "line 3: the line before it (record 2) was edited");
    let mut l = orig.clone();
    l.remove(1);
    expect(l, "1 record(s) removed before it");
    let mut l = orig.clone();
    l.swap(1, 2);
    expect(l, "out of order");
    let mut l = orig.clone();
    l.pop();
    expect(l, "the last 1 record(s) were removed");
    put(&orig);
    assert!(verify().status.success());
}

#[test]
fn question_text_is_logged_masked_only_when_configured() {
    let llm = start_scripted_llm();
    let env = setup(&llm, "", "");
    // Turn on log_query_text.
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        cfg.replace(
            "fsync = \"always\"",
            "fsync = \"always\"\nlog_query_text = true",
        ),
    )
    .unwrap();
    let mut s = Server::start(&env);
    let r = post(
        &s,
        "/v1/search",
        "key-alice",
        r#"{"query": "Mail jane.doe@example.com about IBAN DE89 3704 0044 0532 0130 00"}"#,
    );
    assert_eq!(r.status, 200);
    assert!(s.stop().success());
    let text = std::fs::read_to_string(env.path().join("audit.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let q = line["query"].as_str().unwrap();
    assert!(q.starts_with("Mail [EMAIL_1] about IBAN [IBAN_1]"), "{q}");
    assert!(!text.contains("jane.doe") && !text.contains("DE89"));
}

#[test]
fn jwt_bearer_tokens_from_an_oidc_issuer() {
    use common::jwt::{b64url, Issuer};
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    let issuer = Issuer::new();
    let other = Issuer::new();
    let llm = start_scripted_llm();
    let env = setup(
        &llm,
        "",
        "[auth.jwt]\nissuer = \"https://idp.example\"\naudience = \"hort\"\njwks_file = \"jwks.json\"\nrequests_per_minute = 100\n",
    );
    std::fs::write(env.path().join("jwks.json"), issuer.jwks().to_string()).unwrap();
    let s = Server::start(&env);
    let now = common::jwt::now();
    let claims = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = serde_json::json!({
            "sub": "erin", "iss": "https://idp.example", "aud": "hort", "exp": now + 600,
            "teams": ["staff", "finance"], "clearance": "confidential",
        });
        f(&mut c);
        c
    };
    let sign = |i: &Issuer, c: &serde_json::Value| i.sign(c);
    let q = r#"{"query": "company bank accounts IBAN", "k": 5}"#;
    let sees_accounts = |token: &str| -> Option<bool> {
        let r = post(&s, "/v1/search", token, q);
        match r.status {
            200 => Some(
                r.json()["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|h| h["doc"] == "finance/bank-accounts.txt"),
            ),
            401 => None,
            other => panic!("status {other}"),
        }
    };
    // Teams and clearance come from the claims.
    assert_eq!(sees_accounts(&sign(&issuer, &claims(&|_| {}))), Some(true));
    let public = sign(&issuer, &claims(&|c| c["clearance"] = "public".into()));
    assert_eq!(sees_accounts(&public), Some(false));
    let no_team = sign(
        &issuer,
        &claims(&|c| c["teams"] = serde_json::json!(["staff"])),
    );
    assert_eq!(sees_accounts(&no_team), Some(false));
    // Everything else is the same 401.
    let expired = sign(&issuer, &claims(&|c| c["exp"] = (now - 600).into()));
    let wrong_iss = sign(
        &issuer,
        &claims(&|c| c["iss"] = "https://evil.example".into()),
    );
    let wrong_aud = sign(&issuer, &claims(&|c| c["aud"] = "other".into()));
    let no_exp = sign(
        &issuer,
        &claims(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
    );
    let other_signer = sign(&other, &claims(&|_| {}));
    // HMAC with the public key as the secret (the classic algorithm confusion).
    let hmac = encode(
        &Header::new(Algorithm::HS256),
        &claims(&|_| {}),
        &EncodingKey::from_secret(&issuer.public),
    )
    .unwrap();
    let good = sign(&issuer, &claims(&|_| {}));
    let parts: Vec<&str> = good.split('.').collect();
    let raised = b64url(
        claims(&|c| c["clearance"] = "restricted".into())
            .to_string()
            .as_bytes(),
    );
    let tampered = format!("{}.{raised}.{}", parts[0], parts[2]);
    let none = format!("{}.{}.", b64url(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    for (what, t) in [
        ("expired", &expired),
        ("wrong issuer", &wrong_iss),
        ("wrong audience", &wrong_aud),
        ("no expiry", &no_exp),
        ("another key", &other_signer),
        ("HS256", &hmac),
        ("tampered claims", &tampered),
        ("alg none", &none),
    ] {
        assert_eq!(sees_accounts(t), None, "{what} was accepted");
    }
    // Roles come from claims too: an admin token may upload.
    let admin = sign(
        &issuer,
        &claims(&|c| c["roles"] = serde_json::json!(["admin"])),
    );
    let doc =
        r#"{"path": "x.md", "content": "hello", "teams": ["staff"], "classification": "public"}"#;
    assert_eq!(post(&s, "/v1/documents", &good, doc).status, 403);
    assert_eq!(post(&s, "/v1/documents", &admin, doc).status, 201);
}

#[test]
fn official_openai_python_client_plain_and_streaming() {
    let py = repo().join("data/py");
    assert!(
        py.join(".stamp").is_file(),
        "the Python test clients are missing: run `make pydeps` (make test does it for you)"
    );
    let env = Env::new("minilm-l6");
    copy_tree(&repo().join("fixtures/corpus"), &env.path().join("corpus"));
    assert!(env.run(&["ingest", "--quiet", "corpus"]).status.success());
    let s = Server::start(&env);
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/python/openai_client.py"))
        .arg(format!("http://{}/v1", s.addr))
        .arg("key-alice")
        .arg("Who approves travel above 500 EUR?")
        .env("PYTHONPATH", &py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let content = v["content"].as_str().unwrap();
    assert!(content.contains("CFO"), "{v}");
    assert_eq!(v["finish_reason"], "stop");
    assert_eq!(
        v["citations"][0]["doc"], "internal/travel-policy.pdf",
        "{v}"
    );
    assert_eq!(v["citations"][0]["page"], 3);
    assert_eq!(
        v["streamed"], v["content"],
        "the stream carries the same verified answer"
    );
    assert!(v["stream_chunks"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["stream_final_citations"], v["citations"]);
    assert_eq!(v["wrong_key"], "AuthenticationError 401");
    assert_eq!(v["models"], serde_json::json!(["hort"]));
    assert!(v["usage"]["total_tokens"].is_number());
}
