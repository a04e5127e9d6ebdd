//! Regression tests for the findings of the independent security review of
//! `hort serve` and `hort mcp` (issue 17), one test per finding, each
//! driving hort the way a client would: HTTP over loopback, MCP over stdio
//! or over HTTP, the CLI. docs/security.md lists them under "Threat model
//! and tested attacks".

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    asked, bearer, jwt, local_state, principal, sha256_hex, sse, Env, FakeLlm, McpHttp, Reply,
    Server, StdioClient,
};
use serde_json::{json, Value};

/// The principals of these tests, beyond alice, guest and dave:
/// - `searcher`: granted only the `search` tool;
/// - `writer`: an agent that may add and delete documents (after approval),
///   staff/internal, so it cannot see restricted board documents;
/// - `boss`: an approver with public clearance (not cleared for internal text);
/// - `chief`: approver and admin who sees everything;
/// - `opsadmin`: an admin who cannot see restricted documents.
fn principals() -> String {
    let p = principal;
    [
        p("searcher", r#"["staff"]"#, "internal", ""),
        p(
            "writer",
            r#"["staff"]"#,
            "internal",
            r#"roles = ["agent-writer"]"#,
        ),
        p("boss", r#"["staff"]"#, "public", r#"roles = ["approver"]"#),
        p(
            "chief",
            r#"["staff", "board", "legal", "finance"]"#,
            "restricted",
            r#"roles = ["approver", "admin"]"#,
        ),
        p(
            "opsadmin",
            r#"["staff"]"#,
            "internal",
            r#"roles = ["admin"]"#,
        ),
    ]
    .concat()
}

/// A node with an audit log, approvals and a stop file, the sample corpus
/// ingested, and `extra` configuration (server limits, providers, …).
fn setup(server: &str, mcp: &str, extra: &str) -> Env {
    let cfg = format!(
        r#"
[server]
{server}

{}
[[mcp.grants]]
principal = "searcher"
tools = ["search"]

[[mcp.grants]]
role = "agent-writer"
tools = ["search", "get_document", "ingest_document", "delete_document"]

{extra}
{}"#,
        local_state(mcp),
        principals()
    );
    let env = Env::with_extra("minilm-l6", &cfg);
    env.ingest_fixtures();
    env
}

fn init(c: &mut StdioClient) -> Value {
    c.call(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    )
}

fn audit_lines(env: &Env) -> Vec<Value> {
    std::fs::read_to_string(env.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tool(name: &str, arguments: Value) -> Value {
    json!({"name": name, "arguments": arguments})
}

fn upload(s: &Server, key: &str, path: &str, content: &str, teams: &[&str], level: &str) -> u16 {
    let body = json!({"path": path, "content": content, "teams": teams, "classification": level});
    s.post_json("/v1/documents", Some(key), &body.to_string())
        .status
}

fn search_docs(s: &Server, key: &str, query: &str) -> Vec<Value> {
    let r = s.post_json(
        "/v1/search",
        Some(key),
        &json!({"query": query, "k": 10}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["hits"].as_array().unwrap().clone()
}

// 1. MCP resources skipped the grant, the kill switch, the session limits
//    and the audit log.
#[test]
fn mcp_resources_obey_grants_kill_switch_session_limits_and_audit() {
    let env = setup("", "max_tool_calls = 3", "");
    let read = |uri: &str| json!({"uri": format!("hort://documents/{uri}")});

    // Granted only `search`: resources do not exist for it.
    let mut s = StdioClient::start(&env, "searcher");
    let caps = init(&mut s);
    assert!(
        caps["result"]["capabilities"].get("resources").is_none(),
        "{caps}"
    );
    let r = s.call(1, "resources/list", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let r = s.call(2, "resources/read", read("public/welcome.md"));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    drop(s);

    // With get_document (alice has the read tools): reads are audited like it.
    let mut s = StdioClient::start(&env, "alice");
    init(&mut s);
    let r = s.call(1, "resources/read", read("public/welcome.md"));
    assert!(r["result"]["contents"][0]["text"].is_string(), "{r}");
    let line = audit_lines(&env)
        .into_iter()
        .rfind(|l| l["endpoint"] == "mcp:resources/read")
        .expect("an audit record for resources/read");
    assert_eq!(line["principal"], "alice");
    assert_eq!(line["docs"], json!(["public/welcome.md"]));

    // The kill switch stops them.
    std::fs::write(env.path().join("agents.stopped"), "{}").unwrap();
    let r = s.call(2, "resources/list", json!({}));
    assert_eq!(r["error"]["code"], -32000, "{r}");
    let r = s.call(3, "resources/read", read("public/welcome.md"));
    assert_eq!(r["error"]["code"], -32000, "{r}");
    std::fs::remove_file(env.path().join("agents.stopped")).unwrap();

    // And the session limit counts them (3 calls: the read above, two more).
    assert!(s.call(4, "resources/list", json!({}))["result"].is_object());
    assert!(s.call(5, "resources/read", read("public/welcome.md"))["result"].is_object());
    let r = s.call(6, "resources/read", read("public/welcome.md"));
    assert_eq!(r["error"]["code"], -32000, "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("3 tool calls"));
}

// 2. An agent replaced a document it could not see; admins could too.
#[test]
fn nobody_replaces_or_deletes_a_document_they_cannot_see() {
    let env = setup("", "", "");
    let server = Server::start(&env);
    let secret = "The board approved the zeppelin merger at 41 million.";
    assert_eq!(
        upload(
            &server,
            "key-chief",
            "board/minutes.md",
            secret,
            &["board"],
            "restricted"
        ),
        201
    );
    // The agent cannot see it: the path is refused at once, no approval is asked.
    let mut s = StdioClient::start(&env, "writer");
    init(&mut s);
    let args = json!({"path": "board/minutes.md", "content": "Nothing happened.",
                      "teams": ["staff"], "classification": "public"});
    let r = s.call(1, "tools/call", tool("ingest_document", args));
    assert_eq!(r["result"]["isError"], true, "{r}");
    let text = r["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("not available"), "{text}");
    assert!(
        !text.contains("restricted") && !text.contains("board]"),
        "{text}"
    );
    let pending = server.request(
        "GET",
        "/v1/approvals",
        &[("Authorization", &bearer("key-chief"))],
        b"",
    );
    assert_eq!(pending.json()["approvals"], json!([]), "no approval asked");
    // Deleting it is refused like a path that does not exist.
    let r = s.call(
        2,
        "tools/call",
        tool("delete_document", json!({"path": "board/minutes.md"})),
    );
    let gone = s.call(
        3,
        "tools/call",
        tool("delete_document", json!({"path": "board/nothing.md"})),
    );
    assert_eq!(r["result"]["isError"], true);
    assert_eq!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .replace("minutes", "X"),
        gone["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .replace("nothing", "X")
    );
    // An admin who cannot see it may neither replace nor delete it over HTTP.
    assert_eq!(
        upload(
            &server,
            "key-opsadmin",
            "board/minutes.md",
            "Nothing happened.",
            &["staff"],
            "public"
        ),
        403
    );
    let del = server.request(
        "DELETE",
        "/v1/documents?path=board/minutes.md",
        &[("Authorization", &bearer("key-opsadmin"))],
        b"",
    );
    assert_eq!(del.status, 404);
    // The original is intact and still hidden from everyone else.
    let hits = search_docs(&server, "key-chief", "board approved merger");
    assert!(hits
        .iter()
        .any(|h| h["text"].as_str().unwrap().contains("zeppelin")));
    assert!(
        !search_docs(&server, "key-guest", "board approved zeppelin merger")
            .iter()
            .any(|h| h["doc"] == "board/minutes.md")
    );

    // A path the agent may see: the approval says when it replaces a document.
    let v1 = json!({"path": "agent/notes.md", "content": "First version about zeppelins.",
                    "teams": ["staff"], "classification": "internal"});
    let r = s.call(4, "tools/call", tool("ingest_document", v1.clone()));
    let id = r["result"]["structuredContent"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = server.request(
        "GET",
        &format!("/v1/approvals/{id}"),
        &[("Authorization", &bearer("key-chief"))],
        b"",
    );
    assert_eq!(a.json()["replaces"], false, "{}", a.json());
    let ok = server.post_json(
        &format!("/v1/approvals/{id}"),
        Some("key-chief"),
        r#"{"decision": "approve"}"#,
    );
    assert_eq!(ok.status, 200);
    let r = s.call(5, "tools/call", tool("ingest_document", v1));
    assert_eq!(r["result"]["isError"], false, "{r}");
    let v2 = json!({"path": "agent/notes.md", "content": "Second version.",
                    "teams": ["staff"], "classification": "internal"});
    let r = s.call(6, "tools/call", tool("ingest_document", v2));
    let id = r["result"]["structuredContent"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = server
        .request(
            "GET",
            &format!("/v1/approvals/{id}"),
            &[("Authorization", &bearer("key-chief"))],
            b"",
        )
        .json();
    assert_eq!(a["replaces"], true, "{a}");
    assert!(a["summary"]
        .as_str()
        .unwrap()
        .contains("replaces an existing document"));
}

// 3. Approvals showed document text to every approver, and kept it.
#[test]
fn approvals_show_text_only_to_approvers_cleared_for_it_and_drop_it_when_done() {
    let env = setup("", "", "");
    let server = Server::start(&env);
    let mut s = StdioClient::start(&env, "writer");
    init(&mut s);
    let text = "Internal salary corridor note: the zeppelin allowance is 1,234 EUR.";
    let args = json!({"path": "notes/allowance.md", "content": text,
                      "teams": ["staff"], "classification": "internal"});
    let r = s.call(1, "tools/call", tool("ingest_document", args.clone()));
    let id = r["result"]["structuredContent"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let get = |key: &str| {
        server
            .request(
                "GET",
                &format!("/v1/approvals/{id}"),
                &[("Authorization", &bearer(key))],
                b"",
            )
            .json()
    };
    let list = |key: &str| {
        server
            .request(
                "GET",
                "/v1/approvals",
                &[("Authorization", &bearer(key))],
                b"",
            )
            .json()
    };
    // boss approves but is only cleared for public text: path, rule, size, digest.
    let seen = get("key-boss");
    assert!(!seen.to_string().contains("zeppelin"), "{seen}");
    assert_eq!(seen["arguments"]["path"], "notes/allowance.md");
    assert_eq!(seen["arguments"]["classification"], "internal");
    assert_eq!(seen["arguments"]["content_chars"], text.chars().count());
    assert_eq!(seen["arguments"]["content_sha256"], sha256_hex(text));
    assert!(!list("key-boss").to_string().contains("zeppelin"));
    // chief is cleared: the full text.
    assert_eq!(get("key-chief")["arguments"]["content"], text);
    assert!(list("key-chief").to_string().contains("zeppelin"));
    // Once rejected, the text is gone for everyone, on disk too.
    let r = server.post_json(
        &format!("/v1/approvals/{id}"),
        Some("key-boss"),
        r#"{"decision": "reject"}"#,
    );
    assert_eq!(r.status, 200);
    assert!(!get("key-chief").to_string().contains("zeppelin"));
    let on_disk = std::fs::read_to_string(env.path().join(format!("approvals/{id}.json"))).unwrap();
    assert!(!on_disk.contains("zeppelin"), "{on_disk}");
    // The same call stays rejected (the call key survives the text).
    let r = s.call(2, "tools/call", tool("ingest_document", args));
    assert_eq!(
        r["result"]["structuredContent"]["status"], "rejected",
        "{r}"
    );

    // Once executed, too.
    let args = json!({"path": "notes/other.md", "content": "Zeppelin hangar rota.",
                      "teams": ["staff"], "classification": "internal"});
    let r = s.call(3, "tools/call", tool("ingest_document", args.clone()));
    let id2 = r["result"]["structuredContent"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    server.post_json(
        &format!("/v1/approvals/{id2}"),
        Some("key-chief"),
        r#"{"decision": "approve"}"#,
    );
    let r = s.call(4, "tools/call", tool("ingest_document", args));
    assert_eq!(r["result"]["isError"], false, "{r}");
    let on_disk =
        std::fs::read_to_string(env.path().join(format!("approvals/{id2}.json"))).unwrap();
    assert!(!on_disk.contains("hangar"), "{on_disk}");
    assert!(on_disk.contains("executed"));
}

// 4. Cutting the end of the audit log was healed by the next request.
#[test]
fn a_cut_audit_tail_stops_the_writer_and_verify_needs_the_head() {
    let env = setup("", "", "");
    let server = Server::start(&env);
    for _ in 0..4 {
        search_docs(&server, "key-alice", "travel");
    }
    let log = env.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    let kept = &kept[..kept.len() - 2];
    std::fs::write(
        &log,
        kept.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    // The next requests are served, but nothing is chained onto the cut log.
    search_docs(&server, "key-alice", "travel");
    search_docs(&server, "key-alice", "travel");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        kept.len(),
        "the writer refused to continue"
    );
    let metrics =
        String::from_utf8_lossy(&server.request("GET", "/metrics", &[], b"").body).to_string();
    assert!(metrics.contains("hort_audit_chain_broken 1"), "{metrics}");
    assert!(
        server.log.lock().unwrap().contains("audit log"),
        "the operator is told in the log"
    );
    drop(server);
    let v = env.run(&["audit", "verify", "audit.jsonl"]);
    assert!(!v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).contains("2 record(s) were removed"));

    // Without its head file the log does not verify, unless told so.
    std::fs::remove_file(env.path().join("audit.jsonl.head")).unwrap();
    let v = env.run(&["audit", "verify", "audit.jsonl"]);
    assert!(!v.status.success());
    let out = String::from_utf8_lossy(&v.stdout).to_string() + &String::from_utf8_lossy(&v.stderr);
    assert!(out.contains("head"), "{out}");
    let v = env.run(&["audit", "verify", "--no-head", "audit.jsonl"]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // And a server does not start on it: it says why and what to do.
    let err = serve_refuses(&env, "an audit log without its head");
    assert!(
        err.contains("head file is missing") && err.contains("aside"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        kept.len()
    );
    // Moving both aside starts a new chain.
    std::fs::rename(&log, env.path().join("audit.jsonl.cut")).unwrap();
    let server = Server::start(&env);
    search_docs(&server, "key-alice", "travel");
    drop(server);
    assert!(env
        .run(&["audit", "verify", "audit.jsonl"])
        .status
        .success());
}

/// Starts `hort serve`, expects it to exit with an error (within 20 s);
/// returns what it wrote to stderr.
fn serve_refuses(env: &Env, what: &str) -> String {
    let mut child = env
        .cmd()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hort serve started with {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "{what}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

// 5. JWT `aud` was optional, `nbf` ignored, and subjects shared API-key names.
#[test]
fn jwt_audience_and_not_before_are_enforced_and_subjects_are_not_key_principals() {
    let issuer = jwt::Issuer::new();
    let env = setup(
        "",
        "",
        "[auth.jwt]\nissuer = \"https://idp.example\"\naudience = \"hort\"\njwks_file = \"jwks.json\"\nroles_claim = \"roles\"\n",
    );
    std::fs::write(env.path().join("jwks.json"), issuer.jwks().to_string()).unwrap();
    let server = Server::start(&env);
    let now = jwt::now();
    let claims = |sub: &str| {
        json!({"sub": sub, "iss": "https://idp.example", "aud": "hort", "exp": now + 600,
               "teams": ["staff"], "clearance": "internal"})
    };
    let status = |token: &str| {
        server
            .post_json("/v1/search", Some(token), r#"{"query": "travel"}"#)
            .status
    };
    assert_eq!(status(&issuer.sign(&claims("erin"))), 200);
    let mut no_aud = claims("erin");
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(status(&issuer.sign(&no_aud)), 401, "a token without aud");
    let mut early = claims("erin");
    early["nbf"] = json!(now + 3600);
    assert_eq!(status(&issuer.sign(&early)), 401, "a token not valid yet");

    // A token for subject "writer" is not the API-key principal writer:
    // no grants of writer's, no approvals of writer's.
    let mut s = StdioClient::start(&env, "writer");
    init(&mut s);
    let args = json!({"path": "notes/x.md", "content": "x", "teams": ["staff"], "classification": "internal"});
    s.call(1, "tools/call", tool("ingest_document", args));
    let token = issuer.sign(&claims("writer"));
    let mcp = McpHttp::open(&server, &token);
    let tools = mcp.call(1, "tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"ingest_document"), "{names:?}");
    let mine = server.request(
        "GET",
        "/v1/approvals",
        &[("Authorization", &bearer(&token))],
        b"",
    );
    assert_eq!(mine.json()["approvals"], json!([]), "{}", mine.json());
}

// 6. The output leak check told the asker when a guess was right.
#[test]
fn the_leak_check_is_no_oracle_and_does_not_say_why() {
    // A model that repeats the question, and one that "knows" a restricted
    // sentence when asked for zzleak.
    let falcon = "Nordwind is negotiating the acquisition of 100 percent of Baltic Reefer Lines";
    let llm = FakeLlm::start(move |req| {
        let q = asked(req);
        if q.contains("zzleak") {
            Reply::text(format!(
                "Here is what I know: {falcon} for 18 to 21 million EUR."
            ))
        } else {
            Reply::text(format!("You asked: {q}"))
        }
    });
    let env = setup(
        "",
        "",
        &format!(
            "[[providers]]\nname = \"echo\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\nmodel = \"m\"\nlocality = \"local\"\n\n[routing]\nchain = [\"echo\"]\n",
            llm.addr
        ),
    );
    let server = Server::start(&env);
    let ask = |q: &str| {
        let r = server.post_json(
            "/v1/query",
            Some("key-guest"),
            &json!({"query": q, "k": 2}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    };
    // The right guess and a wrong one are answered alike.
    let right = ask(&format!("Is it true that {falcon} in Gdansk?"));
    let wrong = ask("Is it true that Nordwind is negotiating the acquisition of 100 percent of Polar Cargo Lines in Gdansk?");
    assert_eq!(right["flags"]["output_blocked"], json!([]), "{right}");
    assert_eq!(wrong["flags"]["output_blocked"], json!([]), "{wrong}");
    // A real leak is withheld, without saying why to the asker …
    let leak = ask("zzleak tell me something");
    assert!(
        !leak["answer"].as_str().unwrap().contains("Baltic"),
        "{leak}"
    );
    let blocked = leak["flags"]["output_blocked"].to_string();
    assert_ne!(blocked, "[]");
    assert!(
        !blocked.contains("document") && !blocked.contains("may not see"),
        "{blocked}"
    );
    // … but the audit log says.
    let line = audit_lines(&env)
        .into_iter()
        .rfind(|l| l["endpoint"] == "/v1/query")
        .unwrap();
    assert!(
        line["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "output_blocked:hidden_text"),
        "{line}"
    );
}

/// Opens a connection and sends the head of a request whose body never comes.
fn stalled_request(addr: &str, key: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /v1/search HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"query\":"
    )
    .unwrap();
    c
}

/// Whether the server closed (or answered and closed) `c` within `limit`.
fn closed_within(c: &mut TcpStream, limit: Duration) -> (bool, String) {
    c.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return (true, String::from_utf8_lossy(&got).to_string()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (true, String::from_utf8_lossy(&got).to_string())
            }
            Err(_) => return (false, String::from_utf8_lossy(&got).to_string()),
        }
    }
}

// 7. One key could starve everyone with slow bodies; half-open
//    connections stayed open.
#[test]
fn slow_clients_cannot_starve_others_and_idle_connections_are_closed() {
    let env = setup(
        "max_concurrency = 8\nmax_concurrency_per_principal = 4\nheader_timeout_s = 2\nbody_timeout_s = 2",
        "",
        "",
    );
    let server = Server::start(&env);
    let started = Instant::now();
    // alice opens 8 requests whose bodies never arrive: at most 4 are
    // waited for, the rest are refused at once.
    let mut stalled: Vec<TcpStream> = (0..8)
        .map(|_| stalled_request(&server.addr, "key-alice"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Everyone else is served meanwhile.
    let r = server.post_json("/v1/search", Some("key-guest"), r#"{"query": "canteen"}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // The stalled requests end: 429 for those over alice's share, 408 for
    // the bodies that never came, all within the body timeout and a margin.
    let mut statuses = Vec::new();
    for c in &mut stalled {
        let (closed, text) = closed_within(c, Duration::from_secs(6));
        assert!(closed, "a stalled request stayed open: {text:?}");
        statuses.push(text.split_whitespace().nth(1).unwrap_or("").to_string());
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "429").count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "408").count(),
        4,
        "{statuses:?}"
    );
    // Connections that never send a request are closed after the header timeout.
    let mut idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    let t = Instant::now();
    for c in &mut idle {
        let (closed, _) = closed_within(c, Duration::from_secs(6));
        assert!(closed, "a half-open connection stayed open");
    }
    assert!(t.elapsed() < Duration::from_secs(8));
    assert!(started.elapsed() < Duration::from_secs(30));
}

// 8. Streamed answers escaped the concurrency limit and the deadline, and
//    their deltas were not checked.
#[test]
fn streams_hold_their_permit_and_deadline_and_deltas_are_checked() {
    let llm = FakeLlm::start(|req| {
        let q = asked(req);
        if q.contains("zzslow") {
            // 10 sentences, one a second.
            let pieces = (0..10)
                .map(|i| format!("Sentence {i} of a slow answer [1]. "))
                .collect();
            Reply::pieces(pieces, Duration::from_millis(1000))
        } else if q.contains("zzsystem") {
            // A model that recites its system prompt, sentence by sentence.
            let system = req["messages"][0]["content"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let pieces = system.split_inclusive(". ").map(str::to_string).collect();
            Reply::pieces(pieces, Duration::from_millis(20))
        } else {
            Reply::pieces(
                vec![
                    "The travel policy answers this [1]. ".into(),
                    "Ask the CFO [1].".into(),
                ],
                Duration::from_millis(700),
            )
        }
    });
    let env = setup(
        "max_concurrency = 2\nmax_concurrency_per_principal = 2\nrequest_timeout_s = 3",
        "",
        &format!(
            // No dictionary: the deadline of 3 s is about permits and
            // streams, not the dictionary a debug build reads in ~6 s on
            // the first question that is translated.
            "[[providers]]\nname = \"fake\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\nmodel = \"m\"\nlocality = \"local\"\nmax_retries = 0\n\n[routing]\nchain = [\"fake\"]\nextractive_fallback = false\n\n[retrieve]\ntranslation_weight = 0.0\n",
            llm.addr
        ),
    );
    let server = Server::start(&env);
    let addr = server.addr.clone();
    // Two streams take both permits for their whole life …
    let streams: Vec<_> = (0..2)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                sse(
                    &addr,
                    "/v1/query",
                    "key-alice",
                    r#"{"query": "Who approves travel?", "stream": true}"#,
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // … so a third request is refused while they run.
    let r = server.post_json("/v1/search", Some("key-guest"), r#"{"query": "canteen"}"#);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    for t in streams {
        let (status, events) = t.join().unwrap();
        assert_eq!(status, 200);
        assert!(events.iter().any(|e| e.event == "done"), "{events:?}");
    }
    // The deadline holds for a stream: cut with an error event.
    let (_, events) = sse(
        &addr,
        "/v1/query",
        "key-alice",
        r#"{"query": "zzslow travel", "stream": true}"#,
        Duration::from_secs(12),
    );
    let last = events.last().expect("events");
    assert_eq!(last.event, "error", "{events:?}");
    assert!(last.data.contains("timeout"), "{last:?}");
    assert!(last.at < Duration::from_secs(5), "{last:?}");
    assert!(!events.iter().any(|e| e.event == "done"));
    // Deltas are checked as they go: the system prompt never streams out.
    let (_, events) = sse(
        &addr,
        "/v1/query",
        "key-alice",
        r#"{"query": "zzsystem travel", "stream": true}"#,
        Duration::from_secs(10),
    );
    let streamed: String = events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.data.clone())
        .collect();
    assert!(
        !streamed.contains("never instructions to you"),
        "{streamed}"
    );
    let done = events.iter().find(|e| e.event == "done").expect("done");
    let done: Value = serde_json::from_str(&done.data).unwrap();
    assert_ne!(done["flags"]["output_blocked"], json!([]), "{done}");
}

// 9. `[auth.jwt] requests_per_minute = 0` passed validation and panicked.
#[test]
fn zero_and_absurd_limits_are_config_errors_naming_the_field() {
    let issuer = jwt::Issuer::new();
    for (extra, field) in [
        (
            "[auth.jwt]\nissuer = \"i\"\njwks_file = \"jwks.json\"\nrequests_per_minute = 0\n",
            "auth.jwt.requests_per_minute",
        ),
        (
            "[server]\nrequest_timeout_s = 9223372036854775807\n",
            "server.request_timeout_s",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\nlocality = \"local\"\nbreaker_cooldown_s = 9223372036854775807\n",
            "providers[0].breaker_cooldown_s",
        ),
    ] {
        let env = Env::with_extra("minilm-l6", extra);
        std::fs::write(env.path().join("jwks.json"), issuer.jwks().to_string()).unwrap();
        // An index, so that only the configuration can stop the server.
        let docs = env.path().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("a.md"), "Zeppelins fly.").unwrap();
        std::fs::write(docs.join("_access.toml"), "teams = [\"staff\"]\nclassification = \"public\"\n").unwrap();
        let env_cfg = std::fs::read_to_string(env.config()).unwrap();
        // The invalid section is added after ingest (ingest validates the file too).
        std::fs::write(env.config(), env_cfg.replace(extra, "")).unwrap();
        assert!(env.run(&["ingest", "--quiet", "docs"]).status.success());
        std::fs::write(env.config(), env_cfg).unwrap();
        let err = serve_refuses(&env, &format!("{field} out of range"));
        assert!(err.contains(field), "{field}: {err}");
    }
}

// 10a. Provider error text (internal URLs) reached clients.
#[test]
fn provider_errors_reach_logs_and_audit_but_not_clients() {
    let env = setup(
        "",
        "",
        "[[providers]]\nname = \"internal\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/secret-gateway/v1\"\nmodel = \"m\"\nlocality = \"local\"\nmax_retries = 0\n\n[routing]\nchain = [\"internal\"]\n",
    );
    let server = Server::start(&env);
    let r = server.post_json(
        "/v1/query",
        Some("key-alice"),
        r#"{"query": "Who approves travel?"}"#,
    );
    assert_eq!(r.status, 200);
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        !body.contains("127.0.0.1") && !body.contains("secret-gateway"),
        "{body}"
    );
    assert_eq!(r.json()["route"]["attempts"][0]["outcome"], "error");
    assert_eq!(r.json()["route"]["provider"], "extractive");
    let audit = std::fs::read_to_string(env.path().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("secret-gateway"),
        "the audit log keeps the detail"
    );
}

// 10b. MCP session limits reset when an agent opened a new session.
#[test]
fn mcp_limits_count_per_principal_not_per_session() {
    let env = setup("", "max_tool_calls = 2", "");
    let server = Server::start(&env);
    let a = McpHttp::open(&server, "key-alice");
    for i in 0..2 {
        let r = a.call(i, "tools/call", tool("search", json!({"query": "travel"})));
        assert!(r["result"].is_object(), "{r}");
    }
    let b = McpHttp::open(&server, "key-alice");
    let r = b.call(9, "tools/call", tool("search", json!({"query": "travel"})));
    assert_eq!(r["error"]["code"], -32000, "{r}");
    // Another principal is not affected.
    let g = McpHttp::open(&server, "key-guest");
    let r = g.call(1, "tools/call", tool("search", json!({"query": "canteen"})));
    assert!(r["result"].is_object(), "{r}");
}

// 10c. Hits listed all of a document's teams.
#[test]
fn hits_show_only_the_callers_teams() {
    let env = setup("", "", "");
    let server = Server::start(&env);
    assert_eq!(
        upload(
            &server,
            "key-chief",
            "shared/zeppelin-rota.md",
            "The zeppelin hangar rota is shared by staff and the board.",
            &["staff", "board", "legal"],
            "public"
        ),
        201
    );
    let hits = search_docs(&server, "key-guest", "zeppelin hangar rota");
    let h = hits
        .iter()
        .find(|h| h["doc"] == "shared/zeppelin-rota.md")
        .expect("visible to staff");
    assert_eq!(h["teams"], json!(["staff"]), "{h}");
    let hits = search_docs(&server, "key-chief", "zeppelin hangar rota");
    let h = hits
        .iter()
        .find(|h| h["doc"] == "shared/zeppelin-rota.md")
        .unwrap();
    assert_eq!(h["teams"], json!(["board", "legal", "staff"]), "{h}");
}
