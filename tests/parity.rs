//! One question, every front end, both backends: the CLI, the native HTTP
//! API, the OpenAI-compatible endpoint and MCP (stdio and HTTP) are adapters
//! over one service layer, so the same principal asking the same question
//! gets the same hits and the same cited answer everywhere — and the CLI's
//! answers are booked and audited like the server's.

mod common;

use serde_json::{json, Value};

use common::{local_state, principal, Env, McpHttp, Server, StdioClient};

const QUESTION: &str = "Who must approve travel expenses above the limit?";

/// `[[providers]]` with a price, so that spending shows up in money too.
fn config(llm: &str, store: &str) -> String {
    format!(
        r#"
{store}

{provider}
[routing]
chain = ["scripted"]
extractive_fallback = false

# Each front end must reach the provider and book the answer: the cache would
# answer the repeated question (tests/gateway.rs and tests/cache.rs test it).
[cache]
enabled = false

{state}
{carol}"#,
        provider = common::priced_provider("scripted", llm, 0.5, 1.0),
        state = local_state(""),
        carol = principal("carol", r#"["staff", "finance"]"#, "confidential", ""),
    )
}

/// Chunk ids of a list of hits, in order.
fn ids(hits: &Value) -> Vec<String> {
    hits.as_array()
        .unwrap_or_else(|| panic!("no hits in {hits}"))
        .iter()
        .map(|h| h["chunk_id"].as_str().unwrap().to_string())
        .collect()
}

/// What an answer cites: (source number, chunk id), in order.
fn cited(citations: &Value) -> Vec<(u64, String)> {
    citations
        .as_array()
        .unwrap_or_else(|| panic!("no citations in {citations}"))
        .iter()
        .map(|c| {
            (
                c["n"].as_u64().unwrap(),
                c["chunk_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn carol_spend(rows: &Value) -> (u64, f64) {
    let row = rows["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "principal" && r["name"] == "carol")
        .unwrap_or_else(|| panic!("no spending of carol in {rows}"));
    (
        row["spend"]["requests"].as_u64().unwrap(),
        row["spend"]["cost_usd"].as_f64().unwrap(),
    )
}

/// The audit chain's lines: the file, or the database's table.
fn audit_lines(env: &Env, db: Option<&str>) -> Vec<String> {
    match db {
        None => std::fs::read_to_string(env.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
        Some(url) => postgres::Client::connect(url, postgres::NoTls)
            .unwrap()
            .query("SELECT line FROM audit ORDER BY seq", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect(),
    }
}

fn parity(store: &str, db: Option<&str>) {
    let llm = common::FakeLlm::start(|_| {
        let mut r = common::Reply::text(
            "Travel above the limit needs the approval named in the policy [1].",
        );
        r.prompt_tokens = 400;
        r.completion_tokens = 20;
        r
    });
    let env = Env::with_extra("minilm-l6", &config(&llm.addr, store));
    env.ingest_fixtures();

    // The CLI, before any server runs.
    let cli_search = env.json(&[
        "query",
        "--as",
        "carol",
        "--no-generate",
        "--json",
        QUESTION,
    ]);
    let cli_answer = env.json(&["query", "--as", "carol", "--json", QUESTION]);
    let hits = ids(&cli_search["hits"]);
    assert!(hits.len() >= 3, "{cli_search}");
    assert_eq!(ids(&cli_answer["hits"]), hits, "CLI answer vs CLI search");
    let citations = cited(&cli_answer["citations"]);
    assert_eq!(
        citations.first().map(|c| c.1.as_str()),
        Some(hits[0].as_str())
    );

    // The CLI's answers were audited like requests to the server.
    let audit = audit_lines(&env, db);
    assert_eq!(
        audit
            .iter()
            .filter(|l| l.contains("cli:query") && l.contains("carol"))
            .count(),
        2,
        "{audit:?}"
    );

    let server = Server::start(&env);
    let (requests, cost) = carol_spend(
        &server
            .request(
                "GET",
                "/v1/usage",
                &[("Authorization", "Bearer key-carol")],
                b"",
            )
            .json(),
    );
    assert_eq!(requests, 1, "the CLI's answer is booked");
    assert!((cost - (0.4 * 0.5 + 0.02 * 1.0)).abs() < 1e-9, "{cost}");

    // HTTP.
    let post = |path: &str, body: Value| {
        let r = server.post_json(path, Some("key-carol"), &body.to_string());
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    };
    let http_search = post("/v1/search", json!({ "query": QUESTION }));
    assert_eq!(ids(&http_search["hits"]), hits, "HTTP search");
    let http_answer = post("/v1/query", json!({ "query": QUESTION }));
    assert_eq!(ids(&http_answer["hits"]), hits, "HTTP query");
    assert_eq!(cited(&http_answer["citations"]), citations, "HTTP query");
    assert_eq!(http_answer["answer"], cli_answer["answer"]);

    // The OpenAI-compatible endpoint: the same answer and citations.
    let chat = post(
        "/v1/chat/completions",
        json!({ "model": "hort", "messages": [{ "role": "user", "content": QUESTION }] }),
    );
    assert_eq!(cited(&chat["citations"]), citations, "OpenAI endpoint");
    assert_eq!(
        chat["choices"][0]["message"]["content"],
        cli_answer["answer"]
    );

    // MCP over HTTP.
    let mcp = McpHttp::open(&server, "key-carol");
    let r = mcp.call(
        1,
        "tools/call",
        json!({ "name": "search", "arguments": { "query": QUESTION } }),
    );
    assert_eq!(
        ids(&r["result"]["structuredContent"]["hits"]),
        hits,
        "MCP search"
    );
    let r = mcp.call(
        2,
        "tools/call",
        json!({ "name": "ask", "arguments": { "question": QUESTION } }),
    );
    let a = &r["result"]["structuredContent"];
    assert_eq!(ids(&a["hits"]), hits, "MCP ask");
    assert_eq!(cited(&a["citations"]), citations, "MCP ask");

    // Every answer so far was booked: the CLI's, /v1/query, chat, MCP ask.
    let usage = server
        .request(
            "GET",
            "/v1/usage",
            &[("Authorization", "Bearer key-carol")],
            b"",
        )
        .json();
    assert_eq!(carol_spend(&usage).0, 4, "{usage}");
    drop(mcp);
    drop(server);

    // MCP over stdio (`hort mcp --as`).
    let mut stdio = StdioClient::start(&env, "carol");
    stdio.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    );
    let r = stdio.call(
        2,
        "tools/call",
        json!({ "name": "search", "arguments": { "query": QUESTION } }),
    );
    assert_eq!(
        ids(&r["result"]["structuredContent"]["hits"]),
        hits,
        "MCP stdio"
    );
}

#[test]
fn every_front_end_gives_the_same_hits_on_the_embedded_index() {
    parity("", None);
}

#[test]
fn every_front_end_gives_the_same_hits_on_postgres() {
    let url = common::pg::fresh_db("parity");
    parity(
        &format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n"),
        Some(&url),
    );
}
