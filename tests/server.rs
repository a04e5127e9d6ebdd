//! `hort serve` over a real loopback socket: authentication, access per
//! principal, and the error statuses of the interface.

mod common;

use common::{copy_tree, repo, Env, Server};

fn setup() -> (Env, Server) {
    let env = Env::new("minilm-l6");
    copy_tree(&repo().join("fixtures/corpus"), &env.path().join("corpus"));
    let out = env.run(&["ingest", "--quiet", "corpus"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start(&env);
    (env, server)
}

#[test]
fn authenticated_filtered_search_and_error_statuses() {
    let (_env, s) = setup();

    let h = s.request("GET", "/healthz", &[], b"");
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["documents"], 29);

    // Alice (finance, confidential) finds the bank accounts; guest does not.
    let q = r#"{"query": "company bank accounts IBAN", "k": 5}"#;
    let a = s.post_json("/v1/search", Some("key-alice"), q);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["hits"][0]["doc"], "finance/bank-accounts.txt");
    let g = s.post_json("/v1/search", Some("key-guest"), q);
    assert_eq!(g.status, 200);
    for hit in g.json()["hits"].as_array().unwrap() {
        assert_eq!(hit["classification"], "public", "{hit}");
    }

    // Missing and wrong keys get the same 401: nothing reveals whether a principal exists.
    let none = s.post_json("/v1/search", None, q);
    let wrong = s.post_json("/v1/search", Some("key-alicf"), q);
    let basic = s.request(
        "POST",
        "/v1/search",
        &[
            ("Authorization", "Basic YWxpY2U6eA=="),
            ("Content-Type", "application/json"),
        ],
        q.as_bytes(),
    );
    for r in [&none, &wrong, &basic] {
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["code"], "unauthorized");
    }
    assert_eq!(none.body, wrong.body);

    // Bad requests: malformed JSON, unknown field, bad k, empty query.
    for body in [
        r#"{"query": "x""#,
        r#"{"query": "x", "kk": 3}"#,
        r#"{"query": "x", "k": 0}"#,
        r#"{"query": "x", "k": 100000}"#,
        r#"{"query": "   "}"#,
        r#"{"k": 3}"#,
    ] {
        let r = s.post_json("/v1/search", Some("key-alice"), body);
        assert_eq!(
            r.status,
            400,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["error"]["code"], "bad_request");
    }
    // A metadata filter narrows the results; a bad one is a 400 that names the field.
    let f = s.post_json(
        "/v1/search",
        Some("key-alice"),
        r#"{"query": "approval", "k": 10, "filter": {"path_prefix": "finance", "file_types": ["txt"]}}"#,
    );
    assert_eq!(f.status, 200);
    let hits = f.json()["hits"].as_array().unwrap().clone();
    assert!(!hits.is_empty());
    for h in &hits {
        let d = h["doc"].as_str().unwrap();
        assert!(d.starts_with("finance/") && d.ends_with(".txt"), "{d}");
    }
    for (body, field) in [
        (
            r#"{"query": "x", "filter": {"file_types": ["docx"]}}"#,
            "filter.file_types",
        ),
        (
            r#"{"query": "x", "filter": {"modified_after": "last week"}}"#,
            "filter.modified_after",
        ),
        (r#"{"query": "x", "filter": {"owner": "me"}}"#, "owner"),
    ] {
        let r = s.post_json("/v1/search", Some("key-alice"), body);
        assert_eq!(r.status, 400, "{body}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{body}"
        );
    }
    // Invalid UTF-8 is a 400, not a crash.
    let r = s.request(
        "POST",
        "/v1/search",
        &[
            ("Authorization", "Bearer key-alice"),
            ("Content-Type", "application/json"),
        ],
        b"{\"query\": \"\xff\xfe\"}",
    );
    assert_eq!(r.status, 400);
    // An oversized body is a 413.
    let big = format!(r#"{{"query": "{}"}}"#, "a".repeat(2 * 1024 * 1024));
    let r = s.post_json("/v1/search", Some("key-alice"), &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    // The server is still healthy after all that.
    assert_eq!(s.request("GET", "/healthz", &[], b"").status, 200);
}
