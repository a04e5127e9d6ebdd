//! The AI gateway at volume, over real loopback sockets: the answer cache
//! (status header, audit line, metrics, team opt-out), the content policy
//! (questions refused, answers withheld, streamed or not), load balancing
//! over deployments of one model (a failing one drained) and budget alerts
//! to a webhook (each threshold once, retried when the receiver fails).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{sse, Env, FakeLlm, Reply, Server};

const Q: &str = r#"{"query": "Who approves travel above 500 EUR?", "k": 4}"#;

fn provider(name: &str, llm: &str, more: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"http://{llm}/v1\"\nmodel = \"m\"\nlocality = \"local\"\nmax_retries = 0\n{more}\n\n"
    )
}

fn env(extra: &str) -> Env {
    let p = common::principal;
    let more = [
        common::local_state(""),
        extra.to_string(),
        p("lawyer", r#"["staff", "legal"]"#, "confidential", ""),
        p(
            "spender",
            r#"["staff"]"#,
            "internal",
            "monthly_budget_usd = 1.0",
        ),
    ]
    .concat();
    let env = Env::with_extra("minilm-l6", &more);
    env.ingest_fixtures();
    env
}

fn audit(env: &Env) -> String {
    std::fs::read_to_string(env.path().join("audit.jsonl")).unwrap_or_default()
}

#[test]
fn answers_are_shared_by_context_with_status_audit_metrics_and_opt_out() {
    let llm = FakeLlm::start(|_| {
        let mut r = Reply::text("Travel above 500 EUR needs approval by the CFO [1].");
        r.delay = Duration::from_millis(300);
        r.prompt_tokens = 1000;
        r
    });
    let env = env(&format!(
        "{}[routing]\nchain = [\"fake\"]\nextractive_fallback = false\n\n[[teams]]\nname = \"legal\"\nanswer_cache = false\n\n",
        provider("fake", &llm.addr, "usd_per_1k_input = 0.2")
    ));
    let s = Server::start(&env);
    let calls = || llm.received.lock().unwrap().len();

    let first = s.post_json("/v1/query", Some("key-alice"), Q);
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(first.header("cache-status"), Some("hort; fwd=miss; stored"));
    let a = first.json();
    assert_eq!(a["cache"]["status"], "stored");
    assert!(a["usage"]["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(calls(), 1);

    // The same question again: served without a provider call (the
    // provider's counter says so; a time limit here failed on a loaded
    // machine and proved nothing the counter does not).
    let again = s.post_json("/v1/query", Some("key-alice"), Q);
    assert_eq!(again.status, 200);
    assert!(again
        .header("cache-status")
        .is_some_and(|v| v.starts_with("hort; hit; detail=exact")));
    let b = again.json();
    assert_eq!(calls(), 1, "the provider was called for a cached answer");
    assert_eq!(b["answer"], a["answer"]);
    assert_eq!(b["citations"], a["citations"]);
    assert_eq!(b["usage"]["cost_usd"], 0.0);

    // guest sees less: it shares the entry only if its context is the same.
    let g = s.post_json("/v1/query", Some("key-guest"), Q).json();
    if g["hits"] != a["hits"] {
        assert_ne!(
            g["cache"]["status"], "hit",
            "guest was served alice's context"
        );
    }
    // A team that opted out: never served from, never stored to the cache.
    let before = calls();
    for _ in 0..2 {
        let l = s.post_json("/v1/query", Some("key-lawyer"), Q);
        assert_eq!(l.header("cache-status"), Some("hort; fwd=bypass"));
    }
    assert_eq!(calls(), before + 2);

    let m = s.request("GET", "/metrics", &[], b"");
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(
        text.contains("hort_cache_requests_total{result=\"hit\",kind=\"exact\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("hort_cache_saved_tokens_total 1010"),
        "{text}"
    );
    let log = audit(&env);
    assert_eq!(log.matches("cache:hit:exact").count(), 1);
    assert!(log.contains("cache:stored") && log.contains("cache:bypass"));
}

#[test]
fn the_content_policy_refuses_questions_and_withholds_answers() {
    let llm = FakeLlm::start(|req| {
        if common::asked(req).contains("card") {
            Reply::pieces(
                vec![
                    "The travel policy applies [1]. ".into(),
                    "Pay with card 4111 1111 1111 1111 [1].".into(),
                ],
                Duration::from_millis(50),
            )
        } else {
            Reply::text("The CFO approves it [1].")
        }
    });
    let env = env(&format!(
        "{}[routing]\nchain = [\"fake\"]\nextractive_fallback = false\n\n\
         [[content_policy]]\nname = \"salaries\"\nkeywords = [\"salary\", \"Gehalt\"]\napplies_to = [\"question\"]\nmessage = \"Questions about salaries are not answered here.\"\n\n\
         [[content_policy]]\nname = \"cards\"\npatterns = ['\\b(?:\\d{{4}} ){{3}}\\d{{4}}\\b']\napplies_to = [\"answer\"]\n\n",
        provider("fake", &llm.addr, "")
    ));
    let s = Server::start(&env);
    let r = s.post_json(
        "/v1/query",
        Some("key-alice"),
        r#"{"query": "What is the SALARY of the CFO?"}"#,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "query_refused");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("salaries"));
    assert!(
        llm.received.lock().unwrap().is_empty(),
        "a refused question reached the provider"
    );

    let body = r#"{"query": "Which card pays for travel?", "k": 3}"#;
    let a = s.post_json("/v1/query", Some("key-alice"), body).json();
    assert!(!a["answer"].as_str().unwrap().contains("4111"), "{a}");
    assert!(a["answer"].as_str().unwrap().contains("cards"), "{a}");
    assert!(!a["flags"]["output_blocked"].as_array().unwrap().is_empty());
    // Streamed: no sentence with the number ever leaves the server.
    let (status, events) = sse(
        &s.addr,
        "/v1/query",
        "key-alice",
        r#"{"query": "Which card pays for hotels?", "k": 3, "stream": true}"#,
        Duration::from_secs(30),
    );
    assert_eq!(status, 200);
    let deltas: Vec<&common::SseEvent> = events.iter().filter(|e| e.event == "delta").collect();
    assert!(
        deltas.iter().all(|e| !e.data.contains("4111")),
        "{events:?}"
    );
    let done = events
        .iter()
        .find(|e| e.event == "done")
        .expect("a done event");
    let done: serde_json::Value = serde_json::from_str(&done.data).unwrap();
    assert!(!done["answer"].as_str().unwrap().contains("4111"));
    assert!(done["answer"].as_str().unwrap().contains("cards"));
    let log = audit(&env);
    assert!(log.contains("content_policy:question:salaries"));
    assert!(log.contains("content_policy:answer:cards"));
    assert!(log.contains("output_blocked:content_policy"));
}

/// A webhook receiver on loopback that refuses its first delivery.
fn webhook() -> (String, Arc<Mutex<Vec<serde_json::Value>>>, Arc<AtomicUsize>) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let posts = Arc::new(AtomicUsize::new(0));
    let (g, p) = (got.clone(), posts.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (g, p) = (g.clone(), p.clone());
            async move {
                if p.fetch_add(1, Ordering::SeqCst) == 0 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                g.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                axum::http::StatusCode::OK
            }
        }),
    );
    (common::serve_app(app), got, posts)
}

#[test]
fn a_group_drains_a_failing_deployment_and_budget_alerts_fire_once() {
    // Each answer reports 400,000 prompt tokens: 0.40 USD at 0.001 USD/1k.
    let ok = |_: &serde_json::Value| {
        let mut r = Reply::text("The CFO approves it [1].");
        r.prompt_tokens = 400_000;
        r
    };
    let a = FakeLlm::start(ok);
    let b = FakeLlm::start(ok);
    let bad = FakeLlm::start(|_| {
        let mut r = Reply::text("");
        r.status = 500;
        r
    });
    let (hook, got, posts) = webhook();
    let breaker = "breaker_failures = 1\nbreaker_cooldown_s = 600\nusd_per_1k_input = 0.001";
    let env = env(&format!(
        "{}{}{}[routing]\nchain = [\"gpt\"]\nextractive_fallback = false\n\n\
         [[routing.groups]]\nname = \"gpt\"\nproviders = [\"bad\", \"a\", \"b\"]\nstrategy = \"weighted\"\n\n\
         [cache]\nenabled = false\n\n\
         [alerts]\nwebhook_url = \"http://{hook}/hook\"\nthresholds = [0.5, 0.8, 1.0]\nbackoff_ms = 50\n\n",
        provider("bad", &bad.addr, &format!("{breaker}\nweight = 5")),
        provider("a", &a.addr, &format!("{breaker}\nweight = 3")),
        provider("b", &b.addr, &format!("{breaker}\nweight = 1")),
    ));
    let s = Server::start(&env);
    // Balancing: every request is answered; the failing deployment got one
    // call (its breaker opened), the others share the rest 3:1.
    for i in 0..12 {
        let r = s.post_json(
            "/v1/query",
            Some("key-alice"),
            &format!(r#"{{"query": "Who approves travel above {i}00 EUR?", "k": 3}}"#),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let n = |l: &FakeLlm| l.received.lock().unwrap().len();
    assert_eq!(n(&bad), 1, "an open breaker still got traffic");
    assert_eq!(n(&a) + n(&b), 12);
    // Weights 3:1 (the exact sequence is the unit tests' business: here the
    // first call went to `a` as the fallback of the failed deployment).
    assert!(
        n(&a) >= 2 * n(&b) && n(&b) >= 2,
        "weights 3:1: {} vs {}",
        n(&a),
        n(&b)
    );

    // Alerts: 0.40 USD a call against a budget of 1.00 USD: 40 %, 80 %, 120 %,
    // then refused.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = s.post_json(
            "/v1/query",
            Some("key-spender"),
            &format!(r#"{{"query": "Who approves travel? {i}", "k": 3}}"#),
        );
        statuses.push((r.status, String::from_utf8_lossy(&r.body).to_string()));
    }
    let codes: Vec<u16> = statuses.iter().map(|s| s.0).collect();
    assert_eq!(
        codes,
        vec![200, 200, 200, 429],
        "the fourth call is over budget: {statuses:?}"
    );
    assert!(statuses[3].1.contains("budget_exceeded"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let alerts = got.lock().unwrap().clone();
    let mut thresholds: Vec<f64> = alerts
        .iter()
        .map(|a| a["threshold"].as_f64().unwrap())
        .collect();
    thresholds.sort_by(f64::total_cmp);
    assert_eq!(thresholds, vec![0.5, 0.8, 1.0], "{alerts:?}");
    assert!(alerts
        .iter()
        .all(|a| a["account"] == "spender"
            && a["text"].as_str().unwrap().contains("principal spender")));
    assert_eq!(
        posts.load(Ordering::SeqCst),
        4,
        "one retry after the refused delivery"
    );
    let log = audit(&env);
    for pct in ["50%", "80%", "100%"] {
        assert_eq!(
            log.matches(&format!("budget_alert:{pct}")).count(),
            1,
            "{pct}"
        );
    }
    // /v1/usage: spend against budget, the caller's own only.
    let u = s.request(
        "GET",
        "/v1/usage",
        &[("Authorization", "Bearer key-spender")],
        b"",
    );
    let budgets = u.json()["budgets"].as_array().unwrap().clone();
    assert_eq!(budgets.len(), 1, "{budgets:?}");
    assert_eq!(budgets[0]["name"], "spender");
    assert!(budgets[0]["share"].as_f64().unwrap() >= 1.0);
}
