//! Fuzzing the request parsers in process (so a panic anywhere fails the
//! test): malformed, truncated and mutated JSON, random bytes, invalid
//! UTF-8, deep nesting, huge bodies, odd headers, on every endpoint. The
//! answer is always a JSON error with a 4xx status (or a 2xx for the rare
//! valid request), never a 5xx, never a panic.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use tower::ServiceExt;

use hort::config::Config;
use hort::embed::{Embedder, HashEmbedder};
use hort::ingest::{ingest, IngestOptions};
use hort::server::{key_hash_hex, router, AppState};
use hort::service::Service;

struct Fixture {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    app: axum::Router,
    rt: tokio::runtime::Runtime,
}

fn opts() -> IngestOptions {
    common::index_opts(32, 8, 8)
}

fn fixture() -> Fixture {
    let src = tempfile::tempdir().unwrap();
    let idx = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("_access.toml"),
        "teams = [\"staff\"]\nclassification = \"internal\"\n",
    )
    .unwrap();
    for i in 0..5 {
        std::fs::write(
            src.path().join(format!("d{i}.md")),
            format!("# Doc {i}\n\nTravel above {i}00 EUR needs approval by the CFO."),
        )
        .unwrap();
    }
    let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(32));
    ingest(
        idx.path(),
        &[src.path().to_path_buf()],
        embedder.as_ref(),
        &opts(),
    )
    .unwrap();
    let toml = format!(
        "[server]\nmax_body_kb = 16\nmax_upload_mb = 1\n\n\
         [[principals]]\nname = \"alice\"\napi_key_sha256 = \"{}\"\nteams = [\"staff\"]\nclearance = \"internal\"\n\n\
         [[principals]]\nname = \"root\"\napi_key_sha256 = \"{}\"\nteams = [\"staff\"]\nclearance = \"restricted\"\nroles = [\"admin\"]\n",
        key_hash_hex("key-alice"),
        key_hash_hex("key-root")
    );
    let cfg = Config::parse(
        &toml,
        std::path::Path::new("fuzz.toml"),
        idx.path().to_path_buf(),
    )
    .unwrap();
    let svc = Service::open(&cfg, embedder, idx.path(), false)
        .unwrap()
        .with_ingest_options(opts());
    let state = AppState::new(Arc::new(svc)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Fixture {
        _dirs: (src, idx),
        app: router(Arc::new(state)),
        rt,
    }
}

const VALID: [&str; 6] = [
    r#"{"query": "travel approval", "k": 3}"#,
    r#"{"query": "who approves", "stream": true, "filter": {"path_prefix": "d1"}}"#,
    r#"{"model": "x", "messages": [{"role": "user", "content": "travel?"}], "stream": false}"#,
    r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}"#,
    r#"{"path": "up/a.md", "content": "hello world", "teams": ["staff"], "classification": "public"}"#,
    r#"{"path": "up/b.pdf", "content_base64": "JVBERi0xLjQK", "teams": ["x"], "classification": "internal"}"#,
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Random bytes, including invalid UTF-8.
        proptest::collection::vec(any::<u8>(), 0..600),
        // A valid body, truncated.
        (0..VALID.len(), any::<prop::sample::Index>()).prop_map(|(i, cut)| {
            let b = VALID[i].as_bytes();
            b[..cut.index(b.len() + 1)].to_vec()
        }),
        // A valid body with a few bytes overwritten or inserted.
        (0..VALID.len(), proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..6)).prop_map(|(i, edits)| {
            let mut b = VALID[i].as_bytes().to_vec();
            for (at, byte, insert) in edits {
                let p = at.index(b.len() + 1);
                if insert || p == b.len() {
                    b.insert(p, byte);
                } else {
                    b[p] = byte;
                }
            }
            b
        }),
        // Valid shapes with hostile values.
        prop_oneof![
            Just("{\"query\": \"\\u0000\\ud800\"}".to_string()),
            Just(format!("{{\"query\": \"{}\"}}", "ä".repeat(3000))),
            Just(format!("{}{}", "[".repeat(5000), "]".repeat(5000))),
            Just(format!("{{\"query\": \"x\", \"k\": {}}}", u64::MAX)),
            Just("{\"query\": \"x\", \"k\": -1}".to_string()),
            Just("{\"query\": \"x\", \"k\": 1.5}".to_string()),
            Just("{\"messages\": []}".to_string()),
            Just("{\"messages\": [{\"role\": \"user\"}]}".to_string()),
            Just("{\"messages\": [{\"role\": \"user\", \"content\": null}], \"n\": 3}".to_string()),
            Just("{\"path\": \"/etc/passwd\", \"content\": \"x\", \"teams\": [\"a\"], \"classification\": \"public\"}".to_string()),
            Just("{\"path\": \"a.md\", \"content\": \"x\", \"teams\": [\"\"], \"classification\": \"public\"}".to_string()),
            Just("{\"query\": \"x\", \"filter\": {\"modified_after\": \"9999-99-99\"}}".to_string()),
            "\\PC{0,200}".prop_map(|s| format!("{{\"query\": {}}}", serde_json::Value::String(s))),
        ]
        .prop_map(String::into_bytes),
    ]
}

fn target() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        Just(("POST", "/v1/search".to_string())),
        Just(("POST", "/v1/query".to_string())),
        Just(("POST", "/v1/chat/completions".to_string())),
        Just(("POST", "/v1/documents".to_string())),
        Just(("DELETE", "/v1/documents?path=up/a.md".to_string())),
        Just(("GET", "/v1/models".to_string())),
        "[a-z/?=&%.]{0,40}".prop_map(|p| ("POST", format!("/{p}"))),
        "[a-zA-Z0-9%._-]{0,40}".prop_map(|p| ("DELETE", format!("/v1/documents?path={p}"))),
    ]
}

fn auth() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(Some("Bearer key-alice".to_string())),
        Just(Some("Bearer key-root".to_string())),
        Just(None),
        Just(Some("Bearer a.b.c".to_string())),
        "\\PC{0,80}".prop_map(Some),
    ]
}

fn check(f: &Fixture, method: &str, path: &str, auth: Option<&str>, ctype: bool, body: Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        if let Ok(v) = axum::http::HeaderValue::from_str(a) {
            req = req.header("authorization", v);
        }
    }
    if ctype {
        req = req.header("content-type", "application/json");
    }
    let Ok(req) = req.body(Body::from(body)) else {
        return; // not a request a client could send
    };
    let resp = f.rt.block_on(f.app.clone().oneshot(req)).unwrap();
    let status = resp.status().as_u16();
    let bytes =
        f.rt.block_on(axum::body::to_bytes(resp.into_body(), 1 << 24))
            .unwrap();
    assert!(
        status < 500,
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    if status >= 400 {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{status} without a JSON body"));
        assert!(v["error"]["code"].is_string(), "{v}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn malformed_requests_are_4xx_never_5xx_or_panics(
        (method, path) in target(),
        auth in auth(),
        ctype in prop::bool::weighted(0.9),
        body in body(),
    ) {
        thread_local! {
            static F: Fixture = fixture();
        }
        F.with(|f| check(f, method, &path, auth.as_deref(), ctype, body));
    }
}

#[test]
fn huge_bodies_are_413() {
    let f = fixture();
    for (path, size) in [
        ("/v1/search", 17 * 1024),
        ("/v1/search", 8 << 20),
        ("/v1/documents", 2 << 20),
    ] {
        let body = format!("{{\"query\": \"{}\"}}", "a".repeat(size));
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("authorization", "Bearer key-root")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let resp = f.rt.block_on(f.app.clone().oneshot(req)).unwrap();
        assert_eq!(resp.status().as_u16(), 413, "{path} {size}");
    }
}
