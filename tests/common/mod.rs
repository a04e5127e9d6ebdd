//! Helpers shared by the integration tests: the real `hort` binary, the real
//! model (fetched by `make models`), temporary configurations, and a minimal
//! HTTP/1.1 client for talking to `hort serve` on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// PDFs parsed as the product parses them: worker processes of the real
/// binary, PDFium, OCR for pages without text (`make models ocr`).
pub fn pdf_workers() -> hort::ingest::loader::PdfIsolation {
    let models = repo().join("data/models");
    hort::ingest::loader::PdfIsolation::Subprocess {
        exe: hort(),
        timeout: Duration::from_secs(60),
        memory_mb: 4096,
        engines: hort::ingest::loader::Engines {
            pdfium: Some(models.join("pdfium/libpdfium.so")),
            pdfium_only: false,
            ocr: Some(hort::ingest::loader::OcrSetup {
                dir: models.join("tesseract"),
                languages: "deu+eng".into(),
                dpi: 300,
                budget: Duration::from_secs(30),
            }),
        },
    }
}

/// Ingest options for small test indexes (PDFs parsed as in production): chunks
/// of `max_tokens` with `overlap` tokens, graphs of degree `m`.
pub fn index_opts(max_tokens: usize, overlap: usize, m: usize) -> hort::ingest::IngestOptions {
    hort::ingest::IngestOptions {
        chunk: hort::ingest::chunk::ChunkParams {
            max_tokens,
            overlap_tokens: overlap,
            headings: true,
        },
        max_file_bytes: 1 << 22,
        pdf: pdf_workers(),
        parse_threads: 2,
        batch_size: 16,
        segment_chunks: 1000,
        graph: hort::store::hnsw::GraphParams {
            m,
            ef_construction: 4 * m,
        },
        progress: false,
    }
}

/// Serves `app` on a free loopback port from a thread of its own; the address.
pub fn serve_app(app: axum::Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap().to_string()).unwrap();
            let _ = axum::serve(l, app).await;
        });
    });
    rx.recv().unwrap()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn hort() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hort"))
}

/// Copies MiniLM's tokenizer files into `dir`: the tokenizer of the small
/// models the tests generate (a cross-encoder, a BERT to convert).
pub fn copy_minilm_tokenizer(dir: &Path) {
    let tok = models_dir().join("minilm-l6");
    for f in [
        "tokenizer.json",
        "config.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(tok.join(f), dir.join(f)).unwrap();
    }
}

/// Runs a Python script with the converters' pinned packages
/// (`data/py-convert`, installed by `make test`): the tests' generated models.
pub fn py_convert<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let py = repo().join("data/py-convert");
    assert!(
        py.is_dir(),
        "data/py-convert is missing: run `make test` (it installs the converter's packages)"
    );
    std::process::Command::new("python3")
        .args(args)
        .env("PYTHONPATH", py)
        .output()
        .unwrap()
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

/// A `[[principals]]` entry whose API key is `key-<name>`; `teams` is a TOML
/// array, `more` further lines (roles, limits).
/// An environment whose `corpus/` folder is readable by team `staff`
/// (dave is in it), public.
#[allow(dead_code)]
pub fn staff_corpus(model: &str, extra: &str) -> Env {
    let env = Env::with_extra(model, extra);
    let corpus = env.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(
        corpus.join("_access.toml"),
        "teams = [\"staff\"]\nclassification = \"public\"\n",
    )
    .unwrap();
    env
}

/// The `failed` lines of an ingest report: (path, reason).
#[allow(dead_code)]
pub fn failed(rep: &serde_json::Value) -> Vec<(String, String)> {
    rep["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["error"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts that a hit's text is exactly the characters `start..end` of
/// its stored page.
#[allow(dead_code)]
pub fn assert_exact_offsets(env: &Env, h: &serde_json::Value) {
    let reader = hort::store::IndexReader::open(&env.index()).unwrap();
    let snap = reader.snapshot();
    let id = u64::from_str_radix(h["chunk_id"].as_str().unwrap(), 16).unwrap();
    let loc = snap.locate(id).unwrap();
    let seg = &snap.segments[loc.segment];
    let page = seg.page_text(seg.chunk(loc.row).page_idx).unwrap();
    let (s, e) = (
        h["start"].as_u64().unwrap() as usize,
        h["end"].as_u64().unwrap() as usize,
    );
    let by_chars: String = page.chars().skip(s).take(e - s).collect();
    assert_eq!(by_chars, h["text"].as_str().unwrap());
}

pub fn principal(name: &str, teams: &str, clearance: &str, more: &str) -> String {
    format!(
        "# key: key-{name}\n[[principals]]\nname = \"{name}\"\napi_key_sha256 = \"{}\"\nteams = {teams}\nclearance = \"{clearance}\"\n{more}\n",
        sha256_hex(&format!("key-{name}"))
    )
}

/// The node's own state files, in its directory: audit log, usage journal,
/// approvals and the agents' stop file; `mcp` is added to `[mcp]`.
pub fn local_state(mcp: &str) -> String {
    format!(
        "[audit]\npath = \"audit.jsonl\"\nfsync = \"always\"\n\n[gateway]\nusage_path = \"usage.jsonl\"\n\n[mcp]\napprovals_dir = \"approvals\"\nstop_file = \"agents.stopped\"\n{mcp}\n"
    )
}

/// A `[[providers]]` entry for an OpenAI-compatible model at `addr` (a fake
/// one), priced in USD per 1,000 tokens, without retries.
pub fn priced_provider(name: &str, addr: &str, usd_in: f64, usd_out: f64) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
         model = \"m\"\nlocality = \"local\"\ntimeout_s = 30\nmax_retries = 0\n\
         usd_per_1k_input = {usd_in:?}\nusd_per_1k_output = {usd_out:?}\n"
    )
}

/// `[auth.jwt]` for the issuer at `addr` (its keys in `jwks.json` beside
/// the config) with the console's sign-in through it as `hort-console`.
pub fn sign_in_toml(addr: &str, label: Option<&str>) -> String {
    let label = label
        .map(|l| format!("label = \"{l}\"\n"))
        .unwrap_or_default();
    format!(
        "[auth.jwt]\nissuer = \"http://{addr}\"\njwks_file = \"jwks.json\"\n\n\
         [auth.jwt.sign_in]\nauthorization_endpoint = \"http://{addr}/authorize\"\n\
         token_endpoint = \"http://{addr}/token\"\nclient_id = \"hort-console\"\n{label}"
    )
}

impl Env {
    /// Copies the sample corpus to `corpus/`, plus `extra` files (path in
    /// the corpus, bytes).
    pub fn copy_fixtures_with(&self, extra: &[(&str, &[u8])]) {
        let corpus = self.path().join("corpus");
        copy_tree(&repo().join("fixtures/corpus"), &corpus);
        for (path, bytes) in extra {
            std::fs::write(corpus.join(path), bytes).unwrap();
        }
    }

    /// Copies the sample corpus to `corpus/` and ingests it (real model).
    pub fn ingest_fixtures(&self) {
        self.ingest_fixtures_with(&[]);
    }

    /// The sample corpus plus `extra` files (path in the corpus, bytes),
    /// ingested; the ingest must succeed (failed files are reported, not fatal).
    pub fn ingest_fixtures_with(&self, extra: &[(&str, &[u8])]) {
        self.copy_fixtures_with(extra);
        self.ingest("corpus");
    }

    /// `hort ingest --quiet <dir>`, which must succeed (its stderr shown if not).
    pub fn ingest(&self, dir: &str) {
        let out = self.run(&["ingest", "--quiet", dir]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
    /// Waits (up to 60 s) until `/readyz` says a question waits for nothing
    /// (the dictionary is read), as a load balancer would; returns the
    /// answers seen before (503 `starting`, naming what it waits for).
    #[allow(dead_code)]
    pub fn wait_ready(&self) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut before = Vec::new();
        loop {
            let r = self.request("GET", "/readyz", &[], b"");
            if r.status == 200 {
                assert_eq!(r.json()["status"], "ready");
                return before;
            }
            assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
            before.push(r.json());
            assert!(
                Instant::now() < deadline,
                "not ready after 60 s: {before:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

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
        if size == 0 || b.len() < nl + 2 + size + 2 {
            break; // the end, or a chunk not fully received yet
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
    let llm = FakeLlm::start(|req| {
        let user = req["messages"][1]["content"].as_str().unwrap_or("");
        Reply::text(user.chars().take(3000).collect::<String>())
    });
    EchoLlm {
        addr: llm.addr,
        received: llm.received,
    }
}

/// A fake OpenAI-compatible model on loopback whose behaviour is chosen by
/// markers in the prompt: `zzslow` waits 6 s, `zzpause` 1.5 s, `zzfail`
/// answers 400, `zzexpensive` reports 100 000 prompt tokens. Otherwise it
/// answers with a cited sentence.
pub fn start_scripted_llm() -> String {
    FakeLlm::start(|req| {
        let body = req.to_string();
        let mut r = Reply::text("The sources answer this [1].");
        if body.contains("zzslow") {
            r.delay = Duration::from_secs(6);
        }
        if body.contains("zzpause") {
            r.delay = Duration::from_millis(1500);
        }
        if body.contains("zzfail") {
            r.status = 400;
        }
        if body.contains("zzexpensive") {
            r.prompt_tokens = 100_000;
        }
        r.completion_tokens = 7;
        r
    })
    .addr
}

/// A fake OpenAI-compatible model on loopback that answers like a careful
/// one: it quotes the sentence of the sources sharing most words with the
/// question and cites that source, so citation checks pass for real.
pub fn start_quoting_llm() -> FakeLlm {
    FakeLlm::start(|req| {
        let user = req["messages"][1]["content"].as_str().unwrap_or("");
        let question = asked(req).to_lowercase();
        let words: Vec<&str> = question
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 4)
            .collect();
        let mut best = (0usize, String::new(), 0usize);
        for block in user.split("<<<SOURCE ").skip(1) {
            let n: usize = block
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            // The text: after the label line, before the closing marker.
            let body = block.split("<<<END SOURCE").next().unwrap_or("");
            let text = body.splitn(3, '\n').nth(2).unwrap_or("");
            for sentence in text.split_inclusive(['.', '!', '?']) {
                let s = sentence.trim();
                let lower = s.to_lowercase();
                let score = words.iter().filter(|w| lower.contains(*w)).count();
                if score > best.0 && s.len() > 20 {
                    best = (score, s.to_string(), n);
                }
            }
        }
        if best.0 == 0 {
            return Reply::text("The sources do not say.");
        }
        let mut r = Reply::text(format!("{} [{}]", best.1, best.2));
        r.prompt_tokens = 2_000;
        r.completion_tokens = 60;
        r
    })
}

/// A fake OpenID Connect issuer on loopback for the console's sign-in: its
/// authorization endpoint signs in `sub` at once (as an issuer with a
/// session would) and sends the browser back with a code; its token
/// endpoint redeems each code once, checks the redirect address, the client
/// and the PKCE verifier, and answers with an ID token signed by `issuer`
/// (the test's JWKS) and an opaque access token.
pub struct FakeIdp {
    pub addr: String,
    /// The issuer's JWKS document (for `[auth.jwt] jwks_file`).
    pub jwks: serde_json::Value,
    /// Token requests refused (a reused code, a wrong verifier …).
    pub refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

pub fn start_fake_idp(sub: &str, claims: serde_json::Value) -> FakeIdp {
    let issuer = jwt::Issuer::new();
    let jwks = issuer.jwks();
    let client_id = "hort-console";
    use axum::extract::{Form, Query, State};
    use axum::response::IntoResponse;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Idp {
        issuer: Arc<jwt::Issuer>,
        url: Arc<Mutex<String>>,
        client: String,
        sub: String,
        claims: serde_json::Value,
        codes: Arc<Mutex<HashMap<String, HashMap<String, String>>>>,
        refused: Arc<std::sync::atomic::AtomicUsize>,
    }
    async fn authorize(
        State(i): State<Idp>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::response::Response {
        let ok = q.get("response_type").map(String::as_str) == Some("code")
            && q.get("client_id") == Some(&i.client)
            && q.get("code_challenge_method").map(String::as_str) == Some("S256")
            && q.contains_key("state")
            && q.contains_key("nonce");
        if !ok {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                "bad authorization request",
            )
                .into_response();
        }
        let code = format!("code-{}", i.codes.lock().unwrap().len() + 1);
        let back = format!(
            "{}?code={code}&state={}&session_state=x",
            q["redirect_uri"], q["state"]
        );
        i.codes.lock().unwrap().insert(code, q);
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, back)],
        )
            .into_response()
    }
    async fn token(
        State(i): State<Idp>,
        Form(f): Form<HashMap<String, String>>,
    ) -> axum::response::Response {
        use base64::Engine;
        use sha2::Digest;
        let refuse = || {
            i.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (
                axum::http::StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "invalid_grant"})),
            )
                .into_response()
        };
        let Some(code) = f.get("code") else {
            return refuse();
        };
        let Some(auth) = i.codes.lock().unwrap().remove(code) else {
            return refuse();
        };
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
                f.get("code_verifier")
                    .cloned()
                    .unwrap_or_default()
                    .as_bytes(),
            ));
        if f.get("grant_type").map(String::as_str) != Some("authorization_code")
            || f.get("redirect_uri") != auth.get("redirect_uri")
            || f.get("client_id") != Some(&i.client)
            || auth.get("code_challenge") != Some(&challenge)
        {
            return refuse();
        }
        let mut claims = i.claims.clone();
        claims["iss"] = serde_json::json!(*i.url.lock().unwrap());
        claims["aud"] = serde_json::json!(i.client);
        claims["sub"] = serde_json::json!(i.sub);
        claims["exp"] = serde_json::json!(jwt::now() + 600);
        claims["nonce"] = serde_json::json!(auth["nonce"]);
        axum::Json(serde_json::json!({
            "id_token": i.issuer.sign(&claims),
            "access_token": "opaque-access-token",
            "token_type": "Bearer",
            "expires_in": 600,
        }))
        .into_response()
    }
    let url: Arc<Mutex<String>> = Arc::default();
    let refused: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
    let state = Idp {
        issuer: Arc::new(issuer),
        url: url.clone(),
        client: client_id.to_string(),
        sub: sub.to_string(),
        claims,
        codes: Arc::default(),
        refused: refused.clone(),
    };
    let app = axum::Router::new()
        .route("/authorize", axum::routing::get(authorize))
        .route("/token", axum::routing::post(token))
        .with_state(state);
    let addr = serve_app(app);
    *url.lock().unwrap() = format!("http://{addr}");
    FakeIdp {
        addr,
        jwks,
        refused,
    }
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

/// What a [`FakeLlm`] answers to one request: after `delay`, text pieces
/// (streamed one by one with `pause` between them when the client asks to
/// stream), or an HTTP error status; with the usage it reports.
pub struct Reply {
    pub pieces: Vec<String>,
    pub delay: Duration,
    pub pause: Duration,
    pub status: u16,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Reply {
    pub fn text(t: impl Into<String>) -> Reply {
        Reply::pieces(vec![t.into()], Duration::ZERO)
    }

    pub fn pieces(pieces: Vec<String>, pause: Duration) -> Reply {
        Reply {
            pieces,
            delay: Duration::ZERO,
            pause,
            status: 200,
            prompt_tokens: 10,
            completion_tokens: 10,
        }
    }
}

/// A fake OpenAI-compatible model on loopback whose answer a test decides
/// from the request body (the chat request as JSON); it records every body.
pub struct FakeLlm {
    pub addr: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeLlm {
    pub fn start(answer: impl Fn(&serde_json::Value) -> Reply + Send + Sync + 'static) -> FakeLlm {
        use std::sync::{Arc, Mutex};
        let answer = Arc::new(answer);
        let received: Arc<Mutex<Vec<String>>> = Arc::default();
        let rec = received.clone();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |body: String| {
                let answer = answer.clone();
                let rec = rec.clone();
                async move {
                    use axum::response::IntoResponse;
                    rec.lock().unwrap().push(body.clone());
                    let v: serde_json::Value =
                        serde_json::from_str(&body).unwrap_or_default();
                    let r = answer(&v);
                    tokio::time::sleep(r.delay).await;
                    if r.status != 200 {
                        return (
                            axum::http::StatusCode::from_u16(r.status).unwrap(),
                            axum::Json(serde_json::json!({"error": {"message": "fake failure"}})),
                        )
                            .into_response();
                    }
                    if v["stream"] == true {
                        let (stx, srx) = tokio::sync::mpsc::unbounded_channel::<
                            Result<String, std::convert::Infallible>,
                        >();
                        tokio::spawn(async move {
                            for p in r.pieces {
                                let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": p}}]});
                                if stx.send(Ok(format!("data: {chunk}\n\n"))).is_err() {
                                    return;
                                }
                                tokio::time::sleep(r.pause).await;
                            }
                            let usage = serde_json::json!({"choices": [], "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens}});
                            let _ = stx.send(Ok(format!("data: {usage}\n\ndata: [DONE]\n\n")));
                        });
                        let stream = futures_util::stream::unfold(srx, |mut rx| async move {
                            rx.recv().await.map(|x| (x, rx))
                        });
                        return (
                            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                            axum::body::Body::from_stream(stream),
                        )
                            .into_response();
                    }
                    tokio::time::sleep(r.pause * r.pieces.len() as u32).await;
                    axum::Json(serde_json::json!({
                        "choices": [{"message": {"role": "assistant", "content": r.pieces.concat()}}],
                        "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens}
                    }))
                    .into_response()
                }
            }),
        );
        let addr = serve_app(app);
        FakeLlm { addr, received }
    }
}

/// The question of a chat request hort sent (after `Question:` in the user message).
pub fn asked(req: &serde_json::Value) -> String {
    let user = req["messages"][1]["content"].as_str().unwrap_or("");
    user.rsplit("Question:")
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Standard base64 with padding.
pub fn base64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// JSON Web Tokens from a test identity provider: an ES256 key pair, its
/// JWKS document, and signed tokens.
pub mod jwt {
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    pub fn b64url(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    pub fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    pub struct Issuer {
        /// PKCS#8 of the private key.
        pub private: Vec<u8>,
        /// The uncompressed public point (0x04 || x || y).
        pub public: Vec<u8>,
    }

    impl Issuer {
        pub fn new() -> Issuer {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let kp =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Issuer {
                private: pkcs8.as_ref().to_vec(),
                public: kp.public_key().as_ref().to_vec(),
            }
        }

        /// The JWKS document with this key as `k1`.
        pub fn jwks(&self) -> serde_json::Value {
            serde_json::json!({"keys": [{
                "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
                "x": b64url(&self.public[1..33]), "y": b64url(&self.public[33..65]),
            }]})
        }

        pub fn sign(&self, claims: &serde_json::Value) -> String {
            use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
            let mut h = Header::new(Algorithm::ES256);
            h.kid = Some("k1".into());
            encode(&h, claims, &EncodingKey::from_ec_der(&self.private)).unwrap()
        }
    }
}

/// `hort mcp --as NAME` with raw JSON-RPC lines.
pub struct StdioClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl StdioClient {
    pub fn start(env: &Env, principal: &str) -> StdioClient {
        let mut child = env
            .cmd()
            .args(["mcp", "--as", principal])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        StdioClient {
            child,
            stdin,
            stdout,
        }
    }

    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn recv(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    pub fn call(&mut self, id: u64, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.send(
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
                .to_string(),
        );
        let r = self.recv();
        assert_eq!(r["id"], id, "{r}");
        r
    }
}

impl Drop for StdioClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// MCP over streamable HTTP (`POST /mcp`) for one principal, one session.
pub struct McpHttp<'a> {
    pub server: &'a Server,
    pub key: String,
    pub session: String,
}

impl<'a> McpHttp<'a> {
    /// Opens a session (initialize + initialized).
    pub fn open(server: &'a Server, key: &str) -> McpHttp<'a> {
        let r = server.post_json(
            "/mcp",
            Some(key),
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}"#,
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let session = r.header("mcp-session-id").expect("session id").to_string();
        let m = McpHttp {
            server,
            key: key.to_string(),
            session,
        };
        m.notify("notifications/initialized");
        m
    }

    fn post(&self, body: &serde_json::Value) -> Response {
        let auth = bearer(&self.key);
        self.server.request(
            "POST",
            "/mcp",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
                ("Authorization", &auth),
                ("Mcp-Session-Id", &self.session),
            ],
            body.to_string().as_bytes(),
        )
    }

    pub fn notify(&self, method: &str) {
        let r = self.post(&serde_json::json!({"jsonrpc": "2.0", "method": method}));
        assert_eq!(r.status, 202);
    }

    /// One request; the JSON-RPC reply.
    pub fn call(&self, id: u64, method: &str, params: serde_json::Value) -> serde_json::Value {
        let r = self.post(
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }
}

/// One Server-Sent Event and when it arrived.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub at: Duration,
    pub event: String,
    pub data: String,
}

/// A streaming POST: the status and every event until the stream ends or
/// `limit` passes (whichever is first).
pub fn sse(addr: &str, path: &str, key: &str, body: &str, limit: Duration) -> (u16, Vec<SseEvent>) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut status = 0;
    let mut consumed = 0; // bytes of the (de-chunked) body already parsed into events
    let mut buf = [0u8; 8192];
    loop {
        if started.elapsed() > limit {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => break,
        }
        let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        if status == 0 {
            status = String::from_utf8_lossy(&raw[..split])
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
        }
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(&raw[split + 4..])
        } else {
            raw[split + 4..].to_vec()
        };
        let text = String::from_utf8_lossy(&body).to_string();
        while let Some(end) = text[consumed..].find("\n\n") {
            let block = &text[consumed..consumed + end];
            consumed += end + 2;
            let mut ev = SseEvent {
                at: started.elapsed(),
                event: "message".into(),
                data: String::new(),
            };
            let mut any = false;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    ev.event = e.trim().to_string();
                    any = true;
                } else if let Some(d) = line.strip_prefix("data:") {
                    ev.data.push_str(d.trim_start());
                    any = true;
                }
            }
            if any {
                events.push(ev);
            }
        }
    }
    (status, events)
}

/// Databases on the PostgreSQL that `make test` starts (`scripts/pg.sh`).
pub mod pg {
    pub fn pg_url(var: &str) -> String {
        std::env::var(var).unwrap_or_else(|_| {
            panic!(
                "{var} is not set: run `make test` (it starts PostgreSQL), or \
                 `source $(scripts/pg.sh start)` before cargo test"
            )
        })
    }

    /// A new, empty database on the test server (and so on its replica).
    pub fn fresh_db(tag: &str) -> String {
        let base = pg_url("HORT_TEST_PG_URL");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("t_{tag}_{}_{nanos}", std::process::id());
        let mut c = postgres::Client::connect(&base, postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        with_db(&base, &name)
    }

    pub fn with_db(url: &str, db: &str) -> String {
        let (head, _) = url.rsplit_once('/').unwrap();
        format!("{head}/{db}")
    }

    pub fn db_name(url: &str) -> &str {
        url.rsplit_once('/').unwrap().1
    }
}

/// The sample corpus's travel policy and its German summary are the first
/// two of `hits`, in either order: an English question about travel
/// approval finds the summary too, through its translated keywords.
#[allow(dead_code)]
pub fn assert_travel_policy_first(hits: &[serde_json::Value], context: &serde_json::Value) {
    let first_two: Vec<&str> = hits
        .iter()
        .take(2)
        .filter_map(|h| h["doc"].as_str())
        .collect();
    assert!(
        first_two.contains(&"internal/travel-policy.pdf")
            && first_two.contains(&"internal/reisekostenrichtlinie.md"),
        "{context}"
    );
}
