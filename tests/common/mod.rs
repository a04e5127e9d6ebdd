//! Helpers shared by the integration tests: the real `hort` binary, the real
//! model (fetched by `make models`), temporary configurations, and a minimal
//! HTTP/1.1 client for talking to `hort serve` on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn hort() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hort"))
}

pub fn models_dir() -> PathBuf {
    let d = repo().join("data/models");
    assert!(
        d.join("minilm-l6/model.onnx").is_file(),
        "the model files are missing: run `make models` (make test does it for you)"
    );
    d
}

/// A scratch directory with a `hort.toml` using the real model.
pub struct Env {
    pub dir: tempfile::TempDir,
}

pub const PRINCIPALS: &str = r#"
# key: key-alice
[[principals]]
name = "alice"
api_key_sha256 = "ALICE_HASH"
teams = ["staff", "finance"]
clearance = "confidential"

# key: key-guest
[[principals]]
name = "guest"
api_key_sha256 = "GUEST_HASH"
teams = ["staff"]
clearance = "public"

[[principals]]
name = "dave"
teams = ["staff", "legal", "board", "finance"]
clearance = "restricted"
"#;

pub fn sha256_hex(s: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

impl Env {
    pub fn new(model: &str) -> Env {
        Env::with_extra(model, "")
    }

    pub fn with_extra(model: &str, extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let principals = PRINCIPALS
            .replace("ALICE_HASH", &sha256_hex("key-alice"))
            .replace("GUEST_HASH", &sha256_hex("key-guest"));
        let cfg = format!(
            "[index]\npath = \"index\"\n\n[embed]\nmodel = \"{model}\"\nmodels_dir = \"{}\"\n\n{extra}\n{principals}",
            models_dir().display()
        );
        std::fs::write(dir.path().join("hort.toml"), cfg).unwrap();
        Env { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("hort.toml")
    }

    pub fn index(&self) -> PathBuf {
        self.dir.path().join("index")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(hort());
        c.arg("--config")
            .arg(self.config())
            .current_dir(self.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run hort")
    }

    /// Runs and expects success; returns stdout parsed as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hort {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// A running `hort serve` on a free loopback port.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Everything the server wrote to stderr (its log).
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn start(env: &Env) -> Server {
        let child = env
            .cmd()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // From here on, Drop kills and reaps the child on every path.
        let mut server = Server {
            child,
            addr: String::new(),
            log: Default::default(),
        };
        let mut err = BufReader::new(server.child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut line = String::new();
        loop {
            line.clear();
            let n = err.read_line(&mut line).unwrap_or(0);
            assert!(n > 0 && Instant::now() < deadline, "server did not start");
            if let Some(rest) = line.trim().split("on http://").nth(1) {
                server.addr = rest.to_string();
                // Keep draining stderr so the server never blocks on a full pipe.
                let log = server.log.clone();
                std::thread::spawn(move || {
                    let mut line = String::new();
                    while err.read_line(&mut line).unwrap_or(0) > 0 {
                        log.lock().unwrap().push_str(&line);
                        line.clear();
                    }
                });
                return server;
            }
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http(&self.addr, method, path, headers, body)
    }

    pub fn post_json(&self, path: &str, key: Option<&str>, body: &str) -> Response {
        let auth = key.map(|k| format!("Bearer {k}"));
        let mut h = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            h.push(("Authorization", a.as_str()));
        }
        self.request("POST", path, &h, body.as_bytes())
    }
}

impl Server {
    /// SIGTERM, then waits (up to 30 s) for a graceful exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
    out
}

/// A fake OpenAI-compatible model on loopback that answers with the start of
/// whatever user message it received (a model that does whatever it reads),
/// and records every request body.
pub struct EchoLlm {
    pub addr: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

pub fn start_echo_llm() -> EchoLlm {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let rec = received.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/chat/completions",
                axum::routing::post(move |body: String| {
                    let rec = rec.clone();
                    async move {
                        rec.lock().unwrap().push(body.clone());
                        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                        let user = v["messages"][1]["content"]
                            .as_str()
                            .unwrap_or("")
                            .to_string();
                        let answer: String = user.chars().take(3000).collect();
                        axum::Json(serde_json::json!({
                            "choices": [{"message": {"role": "assistant", "content": answer}}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 10}
                        }))
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            let _ = axum::serve(listener, app).await;
        });
    });
    let addr = rx.recv().unwrap();
    EchoLlm { addr, received }
}

/// A fake OpenAI-compatible model on loopback whose behaviour is chosen by
/// markers in the prompt: `zzslow` waits 6 s, `zzpause` 1.5 s, `zzfail`
/// answers 400, `zzexpensive` reports 100 000 prompt tokens. Otherwise it
/// answers with a cited sentence.
pub fn start_scripted_llm() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/chat/completions",
                axum::routing::post(|body: String| async move {
                    use axum::response::IntoResponse;
                    if body.contains("zzslow") {
                        tokio::time::sleep(Duration::from_secs(6)).await;
                    }
                    if body.contains("zzpause") {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    if body.contains("zzfail") {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            axum::Json(serde_json::json!({"error": {"message": "scripted failure"}})),
                        )
                            .into_response();
                    }
                    let prompt = if body.contains("zzexpensive") { 100_000 } else { 10 };
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if v["stream"] == true {
                        let sse = format!(
                            "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
                            serde_json::json!({"choices": [{"index": 0, "delta": {"content": "The sources answer this [1]."}}]}),
                            serde_json::json!({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": 7}}),
                        );
                        return ([(axum::http::header::CONTENT_TYPE, "text/event-stream")], sse)
                            .into_response();
                    }
                    axum::Json(serde_json::json!({
                        "choices": [{"message": {"role": "assistant",
                            "content": "The sources answer this [1]."}}],
                        "usage": {"prompt_tokens": prompt, "completion_tokens": 7}
                    }))
                    .into_response()
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            let _ = axum::serve(listener, app).await;
        });
    });
    rx.recv().unwrap()
}

/// `Authorization` and JSON content-type headers for a key.
pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// Random corpora for the access property tests (embedded and PostgreSQL):
/// one document per folder `d<i>`, words from a small vocabulary, an
/// optional rule (teams, level).
pub mod acl_corpus {
    use hort::acl::Classification;
    use proptest::prelude::*;

    pub const TEAMS: &[&str] = &["finance", "hr", "legal", "eng", "sales"];
    pub const WORDS: &[&str] = &[
        "budget", "salary", "contract", "server", "invoice", "travel", "policy",
    ];

    #[derive(Debug, Clone)]
    pub struct Doc {
        pub rule: Option<(Vec<usize>, u8)>,
        pub words: Vec<usize>,
    }

    pub fn doc() -> impl Strategy<Value = Doc> {
        (
            proptest::option::weighted(
                0.85,
                (proptest::collection::vec(0..TEAMS.len(), 1..3), 0u8..4),
            ),
            proptest::collection::vec(0..WORDS.len(), 3..40),
        )
            .prop_map(|(rule, words)| Doc { rule, words })
    }

    pub fn level(l: u8) -> Classification {
        Classification::from_level(l).unwrap()
    }

    /// Writes the documents (and their `_access.toml`) below `src`.
    pub fn write(src: &std::path::Path, docs: &[Doc]) {
        for (i, d) in docs.iter().enumerate() {
            let dir = src.join(format!("d{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let text: Vec<&str> = d.words.iter().map(|&w| WORDS[w]).collect();
            let name = if d.words[0] % 2 == 0 {
                "doc.md"
            } else {
                "doc.txt"
            };
            std::fs::write(dir.join(name), format!("{}.", text.join(" "))).unwrap();
            if let Some((teams, l)) = &d.rule {
                let teams: Vec<String> =
                    teams.iter().map(|&t| format!("\"{}\"", TEAMS[t])).collect();
                std::fs::write(
                    dir.join("_access.toml"),
                    format!(
                        "teams = [{}]\nclassification = \"{}\"\n",
                        teams.join(","),
                        level(*l)
                    ),
                )
                .unwrap();
            }
        }
    }
}
