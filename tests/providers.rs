//! The generation chain against local HTTP servers that speak the OpenAI and
//! Anthropic wire formats (JSON and SSE): fallback order, retries,
//! Retry-After, timeouts, the circuit breaker, malformed responses, the
//! sensitivity routing matrix (what the fake cloud received), PII masking,
//! and citation checking of model answers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use hort::acl::{Classification, Principal};
use hort::config::Config;
use hort::embed::HashEmbedder;
use hort::gateway::Gateway;
use hort::generate::{Answer, GenerateError, Generator, StreamEvent};
use hort::ingest::chunk::ChunkParams;
use hort::ingest::loader::PdfIsolation;
use hort::ingest::{ingest, IngestOptions};
use hort::retrieve::{self, Request, SearchParams};
use hort::store::hnsw::GraphParams;
use hort::store::{IndexReader, Snapshot};

#[derive(Clone, Debug)]
enum Step {
    Answer(&'static str),
    Status(u16, Option<&'static str>),
    Sleep(u64),
    Malformed,
}

#[derive(Clone, Copy, PartialEq)]
enum Wire {
    OpenAi,
    Anthropic,
}

#[derive(Clone)]
struct Mock {
    wire: Wire,
    script: Arc<Mutex<VecDeque<Step>>>,
    /// Steps used when the script is empty.
    default: Step,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Mock {
    fn calls(&self) -> usize {
        self.received.lock().unwrap().len()
    }
    fn bodies(&self) -> String {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn sse(events: Vec<(Option<&str>, Value)>) -> String {
    let mut out = String::new();
    for (ev, data) in events {
        if let Some(e) = ev {
            out.push_str(&format!("event: {e}\n"));
        }
        out.push_str(&format!("data: {data}\n\n"));
    }
    out
}

async fn handle(State(m): State<Mock>, headers: HeaderMap, body: String) -> Response {
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    m.received.lock().unwrap().push(v.clone());
    let _ = headers;
    let step = m
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(m.default.clone());
    let stream = v["stream"].as_bool().unwrap_or(false);
    match step {
        Step::Status(code, retry) => {
            let mut r = (
                StatusCode::from_u16(code).unwrap(),
                r#"{"error":{"message":"scripted"}}"#,
            )
                .into_response();
            if let Some(s) = retry {
                r.headers_mut().insert("retry-after", s.parse().unwrap());
            }
            r
        }
        Step::Sleep(secs) => {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            (StatusCode::OK, "{}").into_response()
        }
        Step::Malformed => (StatusCode::OK, "{\"choices\": [").into_response(),
        Step::Answer(text) => {
            let words: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
            match (m.wire, stream) {
                (Wire::OpenAi, false) => axum::Json(json!({
                    "choices": [{"message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20}
                }))
                .into_response(),
                (Wire::OpenAi, true) => {
                    let mut evs: Vec<(Option<&str>, Value)> = words
                        .iter()
                        .map(|w| (None, json!({"choices": [{"delta": {"content": w}}]})))
                        .collect();
                    evs.push((None, json!({"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 20}})));
                    let mut body = sse(evs);
                    body.push_str("data: [DONE]\n\n");
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from(body))
                        .unwrap()
                }
                (Wire::Anthropic, false) => axum::Json(json!({
                    "content": [{"type": "text", "text": text}],
                    "usage": {"input_tokens": 90, "output_tokens": 15}
                }))
                .into_response(),
                (Wire::Anthropic, true) => {
                    let mut evs = vec![(
                        Some("message_start"),
                        json!({"type": "message_start", "message": {"usage": {"input_tokens": 90}}}),
                    )];
                    for w in &words {
                        evs.push((
                            Some("content_block_delta"),
                            json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": w}}),
                        ));
                    }
                    evs.push((
                        Some("message_delta"),
                        json!({"type": "message_delta", "usage": {"output_tokens": 15}}),
                    ));
                    evs.push((Some("message_stop"), json!({"type": "message_stop"})));
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from(sse(evs)))
                        .unwrap()
                }
            }
        }
    }
}

async fn start(wire: Wire, default: Step, script: Vec<Step>) -> (Mock, String) {
    let mock = Mock {
        wire,
        script: Arc::new(Mutex::new(script.into())),
        default,
        received: Arc::new(Mutex::new(Vec::new())),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(handle))
        .route("/v1/messages", post(handle))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (mock, format!("http://{addr}"))
}

/// A small index: a public policy with personal data, and a confidential memo.
fn corpus() -> (tempfile::TempDir, tempfile::TempDir) {
    let src = tempfile::tempdir().unwrap();
    let idx = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = src.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "public/_access.toml",
        "teams = [\"staff\"]\nclassification = \"public\"\n",
    );
    w(
        "public/travel.txt",
        "Travel above 500 EUR needs approval by the CFO. Questions go to travel@nordwind.example or IBAN DE89 3704 0044 0532 0130 00 for refunds.",
    );
    w(
        "conf/_access.toml",
        "teams = [\"finance\"]\nclassification = \"confidential\"\n",
    );
    w(
        "conf/memo.txt",
        "Confidential memo: the travel budget for 2026 is 410,000 EUR, approved by the CFO.",
    );
    w(
        "restr/_access.toml",
        "teams = [\"board\"]\nclassification = \"restricted\"\n",
    );
    w("restr/falcon.txt", "Project Falcon: acquisition of Baltic Reefer Lines for 18 to 21 million EUR. Travel approvals unchanged.");
    let opts = IngestOptions {
        chunk: ChunkParams {
            max_tokens: 200,
            overlap_tokens: 20,
            headings: true,
        },
        max_file_bytes: 1 << 20,
        pdf: PdfIsolation::InProcess {
            timeout: Duration::from_secs(5),
        },
        parse_threads: 1,
        batch_size: 8,
        segment_chunks: 1000,
        graph: GraphParams {
            m: 8,
            ef_construction: 32,
        },
        progress: false,
    };
    ingest(
        idx.path(),
        &[src.path().to_path_buf()],
        &HashEmbedder::new(64),
        &opts,
    )
    .unwrap();
    (src, idx)
}

fn config(toml: &str) -> Config {
    Config::parse(
        toml,
        std::path::Path::new("test.toml"),
        std::path::PathBuf::from("."),
    )
    .unwrap()
}

fn provider(name: &str, kind: &str, url: &str, locality: &str, extra: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{url}/v1\"\nmodel = \"m\"\nlocality = \"{locality}\"\nusd_per_1k_input = 0.5\nusd_per_1k_output = 1.5\nbackoff_ms = 10\n{extra}\n"
    )
}

struct Ask {
    snap: Arc<Snapshot>,
}

impl Ask {
    fn new(idx: &std::path::Path) -> Ask {
        Ask {
            snap: IndexReader::open(idx).unwrap().snapshot(),
        }
    }

    async fn ask(
        &self,
        g: &Generator,
        p: &Principal,
        q: &str,
        stream: bool,
    ) -> (Result<Answer, GenerateError>, Vec<StreamEvent>) {
        let req = Request {
            query: q,
            k: 5,
            docs: None,
        };
        let hits = retrieve::search(
            &self.snap,
            &HashEmbedder::new(64),
            p,
            &req,
            &SearchParams::default(),
        )
        .unwrap()
        .hits;
        if !stream {
            return (
                g.answer(
                    &(self.snap.clone() as Arc<dyn hort::store::IndexRead>),
                    p,
                    q,
                    hits,
                    None,
                )
                .await,
                Vec::new(),
            );
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let r = g
            .answer(
                &(self.snap.clone() as Arc<dyn hort::store::IndexRead>),
                p,
                q,
                hits,
                Some(tx),
            )
            .await;
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        (r, events)
    }
}

fn staff() -> Principal {
    Principal::new("alice", &["staff"], Classification::Public)
}

fn finance() -> Principal {
    Principal::new("fiona", &["staff", "finance"], Classification::Confidential)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_order_retries_and_no_retry_on_4xx() {
    let (_s, idx) = corpus();
    let ask = Ask::new(idx.path());
    let (a, a_url) = start(Wire::OpenAi, Step::Status(500, None), vec![]).await;
    let (b, b_url) = start(Wire::OpenAi, Step::Status(401, None), vec![]).await;
    let (c, c_url) = start(
        Wire::Anthropic,
        Step::Answer("Travel above 500 EUR needs approval by the CFO [1]."),
        vec![],
    )
    .await;
    let toml = format!(
        "{}{}{}[routing]\nchain = [\"a\", \"b\", \"c\"]\n",
        provider("a", "openai", &a_url, "cloud", "max_retries = 2"),
        provider("b", "openai", &b_url, "cloud", "max_retries = 2"),
        provider("c", "anthropic", &c_url, "cloud", ""),
    );
    let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
    let (r, _) = ask
        .ask(&g, &staff(), "Who approves travel above 500 EUR?", false)
        .await;
    let ans = r.unwrap();
    assert_eq!(ans.route.provider, "c");
    assert_eq!(a.calls(), 3, "500 is retried: 1 + 2 retries");
    assert_eq!(b.calls(), 1, "401 is not retried");
    assert_eq!(c.calls(), 1);
    let outcomes: Vec<(String, String)> = ans
        .route
        .attempts
        .iter()
        .map(|x| (x.provider.clone(), x.outcome.clone()))
        .collect();
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
    assert_eq!(
        outcomes.last().unwrap(),
        &("c".to_string(), "ok".to_string())
    );
    assert_eq!(ans.citations.len(), 1);
    assert_eq!(
        (ans.usage.prompt_tokens, ans.usage.completion_tokens),
        (90, 15)
    );
    assert!((ans.usage.cost_usd - (0.09 * 0.5 + 0.015 * 1.5)).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_timeouts_malformed_and_the_breaker() {
    let (_s, idx) = corpus();
    let ask = Ask::new(idx.path());
    // 429 with Retry-After: 1, then an answer.
    let (a, a_url) = start(
        Wire::OpenAi,
        Step::Answer("Travel above 500 EUR needs approval by the CFO [1]."),
        vec![Step::Status(429, Some("1"))],
    )
    .await;
    let toml = format!(
        "{}[routing]\nchain = [\"a\"]\n",
        provider("a", "openai", &a_url, "cloud", "max_retries = 1")
    );
    let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
    let t = Instant::now();
    let ans = ask
        .ask(&g, &staff(), "Who approves travel?", false)
        .await
        .0
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert_eq!(a.calls(), 2);
    assert_eq!(ans.route.provider, "a");

    // A slow provider times out (and is retried), a malformed one is not retried;
    // the extractive fallback answers.
    let (slow, slow_url) = start(Wire::OpenAi, Step::Sleep(5), vec![]).await;
    let (bad, bad_url) = start(Wire::OpenAi, Step::Malformed, vec![]).await;
    let toml = format!(
        "{}{}[routing]\nchain = [\"slow\", \"bad\"]\n",
        provider(
            "slow",
            "openai",
            &slow_url,
            "cloud",
            "timeout_s = 1\nmax_retries = 1"
        ),
        provider("bad", "openai", &bad_url, "cloud", "max_retries = 3"),
    );
    let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
    let t = Instant::now();
    let ans = ask
        .ask(&g, &staff(), "Who approves travel?", false)
        .await
        .0
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "timeouts bound the wait"
    );
    assert_eq!(slow.calls(), 2);
    assert_eq!(bad.calls(), 1, "malformed JSON is not retried");
    assert_eq!(ans.route.provider, "extractive");
    assert!(ans.route.attempts.iter().any(|x| x
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("no answer within"))));

    // The breaker opens after 2 failed calls and then skips the provider.
    let (down, down_url) = start(Wire::OpenAi, Step::Status(503, None), vec![]).await;
    let toml = format!(
        "{}[routing]\nchain = [\"down\"]\n",
        provider(
            "down",
            "openai",
            &down_url,
            "cloud",
            "max_retries = 0\nbreaker_failures = 2\nbreaker_cooldown_s = 60"
        ),
    );
    let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
    for _ in 0..2 {
        ask.ask(&g, &staff(), "Who approves travel?", false)
            .await
            .0
            .unwrap();
    }
    assert_eq!(down.calls(), 2);
    let ans = ask
        .ask(&g, &staff(), "Who approves travel?", false)
        .await
        .0
        .unwrap();
    assert_eq!(down.calls(), 2, "an open breaker sends nothing");
    assert!(ans.route.attempts[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("circuit breaker"));
    assert_eq!(ans.route.provider, "extractive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_both_wire_formats() {
    let (_s, idx) = corpus();
    let ask = Ask::new(idx.path());
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        let (m, url) = start(
            wire,
            Step::Answer("Travel above 500 EUR needs approval by the CFO [1]. Write to [EMAIL_1]."),
            vec![],
        )
        .await;
        let kind = if wire == Wire::OpenAi {
            "openai"
        } else {
            "anthropic"
        };
        let toml = format!(
            "{}[routing]\nchain = [\"m\"]\n",
            provider("m", kind, &url, "cloud", "")
        );
        let g =
            Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
        let (r, events) = ask
            .ask(&g, &staff(), "Who approves travel above 500 EUR?", true)
            .await;
        let ans = r.unwrap();
        assert_eq!(m.calls(), 1);
        assert_eq!(m.received.lock().unwrap()[0]["stream"], true);
        let streamed: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Delta(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert!(streamed.contains("needs approval by the CFO"), "{streamed}");
        // Placeholders are restored for the user, in the stream and in the answer.
        assert!(streamed.contains("travel@nordwind.example"), "{streamed}");
        assert!(ans.answer.contains("travel@nordwind.example"));
        assert!(matches!(events.last(), Some(StreamEvent::Done(_))));
        assert!(ans.usage.prompt_tokens > 0 && ans.usage.completion_tokens > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_context_never_reaches_the_cloud() {
    let (_s, idx) = corpus();
    let ask = Ask::new(idx.path());
    let board = Principal::new(
        "bert",
        &["staff", "finance", "board"],
        Classification::Restricted,
    );
    // Every path: cloud first, cloud fallback, streaming, a failing local provider.
    for stream in [false, true] {
        for local_fails in [false, true] {
            let (cloud, cloud_url) =
                start(Wire::OpenAi, Step::Answer("cloud answer [1]."), vec![]).await;
            let (cloud2, cloud2_url) =
                start(Wire::Anthropic, Step::Answer("cloud answer [1]."), vec![]).await;
            let local_step = if local_fails {
                Step::Status(500, None)
            } else {
                Step::Answer("The travel budget for 2026 is 410,000 EUR [1].")
            };
            let (local, local_url) = start(Wire::OpenAi, local_step, vec![]).await;
            let toml = format!(
                "{}{}{}[routing]\nchain = [\"cloud\", \"cloud2\", \"local\"]\nlocal_only_from = \"confidential\"\n",
                provider("cloud", "openai", &cloud_url, "cloud", ""),
                provider("cloud2", "anthropic", &cloud2_url, "cloud", ""),
                provider("local", "openai", &local_url, "local", "max_retries = 0"),
            );
            let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml))))
                .unwrap();
            for p in [finance(), board.clone()] {
                let (r, _) = ask
                    .ask(&g, &p, "travel budget 2026 Falcon acquisition", stream)
                    .await;
                let ans = r.unwrap();
                assert!(
                    ans.route.sensitivity >= Classification::Confidential,
                    "the test asks for sensitive context"
                );
                let expected = if local_fails { "extractive" } else { "local" };
                assert_eq!(ans.route.provider, expected);
                assert!(ans
                    .route
                    .attempts
                    .iter()
                    .any(|a| a.provider == "cloud" && a.outcome == "skipped"));
            }
            assert_eq!(
                cloud.calls(),
                0,
                "stream={stream} local_fails={local_fails}: {}",
                cloud.bodies()
            );
            assert_eq!(cloud2.calls(), 0);
            assert!(local.calls() >= 2);
        }
    }
    // Without a fallback the request fails closed.
    let (cloud, cloud_url) = start(Wire::OpenAi, Step::Answer("x [1]."), vec![]).await;
    let toml = format!(
        "{}[routing]\nchain = [\"cloud\"]\nextractive_fallback = false\n",
        provider("cloud", "openai", &cloud_url, "cloud", ""),
    );
    let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
    let (r, _) = ask.ask(&g, &finance(), "travel budget 2026", false).await;
    assert!(
        matches!(r, Err(GenerateError::NoLocalProvider(_))),
        "{:?}",
        r.err()
    );
    assert_eq!(cloud.calls(), 0);
    // A sensitive question alone (a rule on the question) also stays local.
    let toml = format!(
        "{}[routing]\nchain = [\"cloud\"]\nquery_rules = [{{ pattern = \"salar(y|ies)|gehalt\", level = \"confidential\" }}]\n",
        provider("cloud", "openai", &cloud_url, "cloud", ""),
    );
    let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
    let ans = ask
        .ask(&g, &staff(), "What are the salary rules for travel?", false)
        .await
        .0
        .unwrap();
    assert_eq!(ans.route.provider, "extractive");
    assert_eq!(cloud.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_context_goes_to_the_cloud_with_personal_data_masked() {
    let (_s, idx) = corpus();
    let ask = Ask::new(idx.path());
    let (cloud, url) = start(
        Wire::OpenAi,
        Step::Answer("Refunds go to [IBAN_1] [1]."),
        vec![],
    )
    .await;
    let toml = format!(
        "{}[routing]\nchain = [\"cloud\"]\n",
        provider("cloud", "openai", &url, "cloud", "")
    );
    let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
    let ans = ask
        .ask(&g, &staff(), "Where do refunds go?", false)
        .await
        .0
        .unwrap();
    assert_eq!(ans.route.provider, "cloud");
    let sent = cloud.bodies();
    assert!(
        !sent.contains("DE89 3704") && !sent.contains("travel@nordwind.example"),
        "{sent}"
    );
    assert!(sent.contains("[IBAN_1]") && sent.contains("[EMAIL_1]"));
    assert!(
        ans.answer.contains("DE89 3704 0044 0532 0130 00"),
        "restored for the user: {}",
        ans.answer
    );
    assert!(ans.flags.pii_masked >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_citations_are_checked() {
    let (_s, idx) = corpus();
    let ask = Ask::new(idx.path());
    let (_m, url) = start(
        Wire::OpenAi,
        Step::Answer(
            "Travel above 500 EUR needs approval by the CFO [1][9]. The policy says \"travel above 50 EUR needs a form\" [1]. Penguins run the canteen [1].",
        ),
        vec![],
    )
    .await;
    let toml = format!(
        "{}[routing]\nchain = [\"m\"]\n",
        provider("m", "openai", &url, "cloud", "")
    );
    let g = Generator::from_config(&config(&toml), Arc::new(Gateway::new(&config(&toml)))).unwrap();
    let ans = ask
        .ask(&g, &staff(), "Who approves travel above 500 EUR?", false)
        .await
        .0
        .unwrap();
    assert_eq!(ans.flags.citations_removed, 1, "[9] was never sent");
    assert!(!ans.answer.contains("[9]"));
    assert_eq!(
        ans.flags.unsupported_quotes,
        vec!["travel above 50 EUR needs a form"]
    );
    assert!(ans
        .flags
        .unsupported_sentences
        .iter()
        .any(|s| s.contains("Penguins")));
    let c = &ans.citations[0];
    assert_eq!(c.doc, "public/travel.txt");
    assert_eq!(c.quote, "Travel above 500 EUR needs approval by the CFO.");
}
