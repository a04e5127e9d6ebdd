//! The MCP server: protocol conformance over stdio (raw JSON-RPC lines),
//! and the official MCP Python SDK (pinned, `make pydeps`) over stdio and
//! over streamable HTTP — tools per principal, citations, approvals decided
//! by a person through the CLI and the API, and the kill switch stopping a
//! loop of calls mid-way. The audit log, written by several processes,
//! still verifies at the end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{hort, local_state, principal, repo, Env, Server, StdioClient};
use serde_json::{json, Value};

fn setup(mcp: &str) -> Env {
    let extra = format!(
        r#"
{}
[[mcp.grants]]
role = "agent-writer"
tools = ["search", "ingest_document"]

{}
{}"#,
        local_state(mcp),
        principal(
            "writer",
            r#"["staff"]"#,
            "internal",
            r#"roles = ["agent-writer"]"#
        ),
        principal(
            "boss",
            r#"["staff"]"#,
            "internal",
            r#"roles = ["approver", "admin"]"#
        ),
    );
    let env = Env::with_extra("minilm-l6", &extra);
    env.ingest_fixtures();
    env
}

#[test]
fn stdio_speaks_json_rpc_and_the_mcp_lifecycle() {
    let env = setup("max_tool_calls = 6");
    let mut s = StdioClient::start(&env, "alice");
    // Version negotiation: a known revision is echoed, an unknown one gets ours.
    let r = s.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}),
    );
    assert_eq!(r["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(r["result"]["serverInfo"]["name"], "hort");
    assert!(r["result"]["capabilities"]["tools"].is_object());
    let r = s.call(
        2,
        "initialize",
        json!({"protocolVersion": "1999-01-01", "capabilities": {}}),
    );
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");
    // A notification gets no reply: the next line answers the ping.
    s.send(r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#);
    let r = s.call(3, "ping", json!({}));
    assert_eq!(r["result"], json!({}));
    // Errors.
    s.send("{not json");
    assert_eq!(s.recv()["error"]["code"], -32700);
    s.send(r#"[{"jsonrpc": "2.0", "id": 9, "method": "ping"}]"#);
    assert_eq!(s.recv()["error"]["code"], -32600, "batches are refused");
    assert_eq!(s.call(4, "no/such", json!({}))["error"]["code"], -32601);
    assert_eq!(
        s.call(5, "resources/read", json!({}))["error"]["code"],
        -32602
    );
    // Least privilege: alice has no grant, so the read tools only.
    let tools = s.call(6, "tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ask", "get_document", "search"]);
    for t in tools["result"]["tools"].as_array().unwrap() {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    // A write tool is neither listed nor callable, and looks like no tool at all.
    let w = s.call(
        7,
        "tools/call",
        json!({"name": "delete_document", "arguments": {"path": "a.md"}}),
    );
    let n = s.call(
        8,
        "tools/call",
        json!({"name": "format_disk", "arguments": {}}),
    );
    assert_eq!(w["error"]["code"], -32602);
    assert_eq!(
        w["error"]["message"]
            .as_str()
            .unwrap()
            .replace("delete_document", "X"),
        n["error"]["message"]
            .as_str()
            .unwrap()
            .replace("format_disk", "X")
    );
    // Bad arguments are a tool error the agent can read.
    let r = s.call(
        10,
        "tools/call",
        json!({"name": "search", "arguments": {"qery": "x"}}),
    );
    assert_eq!(r["result"]["isError"], true);
    assert!(r["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("qery"));
    // A real search, with sources.
    let r = s.call(
        11,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "travel approval CFO", "k": 2}}),
    );
    let hits = r["result"]["structuredContent"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(hits
        .iter()
        .all(|h| h["doc"].is_string() && h["start"].is_number()));
    // Resources: only what alice may see (no legal/ or board/ documents, no rule-less draft).
    let res = s.call(12, "resources/list", json!({}));
    let uris: Vec<&str> = res["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(uris.iter().any(|u| u.contains("finance/")), "{uris:?}");
    assert!(
        !uris
            .iter()
            .any(|u| u.contains("legal/") || u.contains("board/")),
        "{uris:?}"
    );
    let hidden = s.call(
        13,
        "resources/read",
        json!({"uri": "hort://documents/legal/litigation-hold.pdf"}),
    );
    assert_eq!(
        hidden["error"]["code"], -32002,
        "invisible looks like absent"
    );
    // The limit (6 calls: the failed-argument one and the two resource
    // calls count like tools): the next calls are refused with the
    // kill-switch code.
    s.call(
        14,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "budget"}}),
    );
    s.call(
        15,
        "tools/call",
        json!({"name": "ask", "arguments": {"question": "budget?"}}),
    );
    let r = s.call(
        16,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "budget"}}),
    );
    assert_eq!(r["error"]["code"], -32000, "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("6 tool calls"));
}

#[test]
fn get_document_returns_exact_passages_only_of_visible_documents() {
    let env = setup("");
    let mut s = StdioClient::start(&env, "guest");
    s.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    );
    let r = s.call(
        2,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "code of conduct", "k": 1}}),
    );
    let h = &r["result"]["structuredContent"]["hits"][0];
    let args = json!({"doc": h["doc"], "page": h["page"], "start": h["start"], "end": h["end"]});
    let p = s.call(
        3,
        "tools/call",
        json!({"name": "get_document", "arguments": args}),
    );
    assert_eq!(p["result"]["isError"], false, "{p}");
    assert_eq!(
        p["result"]["structuredContent"]["text"], h["text"],
        "same offsets, same text"
    );
    // Guest (public) cannot read a confidential document by naming it.
    let p = s.call(
        4,
        "tools/call",
        json!({"name": "get_document", "arguments": {"doc": "finance/budget-2026.pdf"}}),
    );
    assert_eq!(p["result"]["isError"], true);
    assert!(p["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("no document"));
    let p = s.call(
        5,
        "tools/call",
        json!({"name": "get_document", "arguments": {"doc": h["doc"], "page": 999}}),
    );
    assert_eq!(p["result"]["isError"], true);
}

fn python(args: &[&str]) -> Child {
    std::process::Command::new("python3")
        .arg(repo().join("tests/python/mcp_client.py"))
        .args(args)
        .env("PYTHONPATH", repo().join("data/py"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3")
}

fn finish(child: Child) -> Value {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn wait_for(path: &Path, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal_dir(env: &Env, name: &str) -> PathBuf {
    let d = env.path().join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn official_python_sdk_over_stdio_reads_with_citations_and_cannot_write() {
    let env = setup("");
    let sig = signal_dir(&env, "sig");
    let out = finish(python(&[
        "stdio",
        hort().to_str().unwrap(),
        env.config().to_str().unwrap(),
        "alice",
        "read",
        sig.to_str().unwrap(),
    ]));
    assert_eq!(out["tools"], json!(["ask", "get_document", "search"]));
    let hits = out["search"]["structured"]["hits"].as_array().unwrap();
    // The policy and its German summary, in either order (the summary is
    // found through the question's translated keywords).
    common::assert_travel_policy_first(hits, &out);
    assert!(
        out["ask"]["text"].as_str().unwrap().contains("CFO"),
        "{out}"
    );
    assert!(out["ask"]["text"].as_str().unwrap().contains("Sources:"));
    let cites = out["ask"]["structured"]["citations"].as_array().unwrap();
    assert!(!cites.is_empty() && cites[0]["quote"].is_string());
    assert_eq!(out["passage"]["structured"]["text"], hits[0]["text"]);
    assert!(out["read_chars"].as_u64().unwrap() > 0);
    assert!(
        out["write"].as_str().unwrap().starts_with("-32602"),
        "{out}"
    );
}

#[test]
fn official_python_sdk_over_http_approval_and_kill_switch() {
    let env = setup("");
    let server = Server::start(&env);
    let url = format!("http://{}/mcp", server.addr);

    // Read as alice over HTTP, and no session without a key.
    let sig = signal_dir(&env, "read");
    let out = finish(python(&[
        "http",
        &url,
        "key-alice",
        "read",
        sig.to_str().unwrap(),
    ]));
    assert_eq!(out["tools"], json!(["ask", "get_document", "search"]));
    assert!(!out["search"]["structured"]["hits"]
        .as_array()
        .unwrap()
        .is_empty());
    let anon = server.post_json("/mcp", None, r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}"#);
    assert_eq!(anon.status, 401);

    // Approval: the writer's call waits; the writer cannot approve itself; a
    // person with the approver role approves through the CLI; the call then
    // runs exactly once.
    let sig = signal_dir(&env, "approval");
    let agent = python(&[
        "http",
        &url,
        "key-writer",
        "approval",
        sig.to_str().unwrap(),
    ]);
    let id = wait_for(&sig.join("approval"), 120);
    let listed = env.run(&["approvals", "list", "--status", "pending", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["tool"], "ingest_document");
    let selfish = env.run(&["approvals", "approve", &id, "--as", "writer"]);
    assert!(!selfish.status.success(), "no approver role");
    let not_approver = server.post_json(
        &format!("/v1/approvals/{id}"),
        Some("key-writer"),
        r#"{"decision": "approve"}"#,
    );
    assert_eq!(not_approver.status, 403);
    std::thread::sleep(Duration::from_millis(800)); // the agent polls while pending
    let ok = env.run(&[
        "approvals",
        "approve",
        &id,
        "--as",
        "boss",
        "--reason",
        "fine",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = finish(agent);
    assert_eq!(out["first"]["structured"]["status"], "pending_approval");
    assert!(out["polls"].as_u64().unwrap() >= 2, "{out}");
    assert_eq!(out["after"]["is_error"], false, "{out}");
    assert!(
        out["after"]["text"]
            .as_str()
            .unwrap()
            .contains("Stored agent/notes.md"),
        "{out}"
    );
    assert!(
        out["found"]["text"].as_str().unwrap().contains("zeppelin"),
        "the approved write happened"
    );
    assert_eq!(
        out["again"]["status"], "pending_approval",
        "an approval is spent after one run"
    );
    let again_id = out["again"]["approval_id"].as_str().unwrap().to_string();
    // Rejecting over the API.
    let r = server.post_json(
        &format!("/v1/approvals/{again_id}"),
        Some("key-boss"),
        r#"{"decision": "reject", "reason": "no twice"}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "rejected");

    // Kill switch: a loop of calls is stopped mid-way by an admin.
    let sig = signal_dir(&env, "loop");
    let agent = python(&["http", &url, "key-alice", "loop", sig.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while wait_for(&sig.join("count"), 120)
        .trim()
        .parse::<u64>()
        .unwrap_or(0)
        < 5
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = server.post_json("/v1/agents/stop", Some("key-alice"), "");
    assert_eq!(refused.status, 403, "only admins stop agents");
    let stop = server.post_json("/v1/agents/stop", Some("key-boss"), "");
    assert_eq!(stop.status, 200);
    let out = finish(agent);
    let calls = out["calls"].as_u64().unwrap();
    assert!((5..100_000).contains(&calls), "{out}");
    assert_eq!(out["error"]["code"], -32000, "{out}");
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stopped"));
    assert_eq!(out["after"], -32000, "every further call is refused");
    // The stop holds for other processes too (stdio), until resumed.
    let mut s = StdioClient::start(&env, "alice");
    s.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    );
    let r = s.call(
        2,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "x"}}),
    );
    assert_eq!(r["error"]["code"], -32000);
    assert!(env.run(&["agents", "resume"]).status.success());
    let r = s.call(
        3,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "travel"}}),
    );
    assert!(r["result"].is_object(), "{r}");
    drop(s);
    let metrics =
        String::from_utf8_lossy(&server.request("GET", "/metrics", &[], b"").body).to_string();
    assert!(
        metrics.contains("hort_mcp_tool_calls_total{tool=\"search\",outcome=\"refused\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("hort_approvals_total{decision=\"rejected\"} 1"));
    drop(server);
    // Server, stdio sessions and CLI all appended to one audit chain.
    let v = env.run(&["audit", "verify", "audit.jsonl"]);
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    let log = std::fs::read_to_string(env.path().join("audit.jsonl")).unwrap();
    assert!(log.contains(&format!("approval_requested:{id}")));
    assert!(log.contains(&format!("approval_approved:{id}")));
    assert!(log.contains(&format!("approval_executed:{id}")));
    assert!(log.contains("cli:agents/resume") && log.contains("agents_stopped"));
}
