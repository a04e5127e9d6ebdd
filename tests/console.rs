//! The console's server side over real loopback HTTP: the page and its
//! assets under a strict Content-Security-Policy, and the endpoints it reads
//! (`/v1/me`, `/v1/documents`, `/v1/documents/page`) with the API's access
//! rules — a document the caller may not see is neither listed nor readable,
//! also by typing its path. (Browser tests of the page itself: issue 22.)

mod common;

use std::sync::Arc;

use hort::config::Config;
use hort::embed::{Embedder, HashEmbedder};
use hort::ingest::ingest;
use hort::service::Service;

fn get(addr: &str, path: &str, key: Option<&str>) -> common::Response {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h = Vec::new();
    if let Some(a) = &auth {
        h.push(("Authorization", a.as_str()));
    }
    common::http(addr, "GET", path, &h, b"")
}

#[test]
fn the_console_is_served_strictly_and_reads_only_what_the_caller_may_see() {
    let src = tempfile::tempdir().unwrap();
    let idx = tempfile::tempdir().unwrap();
    common::copy_tree(&common::repo().join("fixtures/corpus"), src.path());
    std::fs::write(src.path().join("legal/broken.pdf"), b"%PDF-1.7 not really").unwrap();
    let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(32));
    let opts = common::index_opts(120, 20, 8);
    ingest(
        idx.path(),
        &[src.path().to_path_buf()],
        embedder.as_ref(),
        &opts,
    )
    .unwrap();
    let toml = format!(
        "[[principals]]\nname = \"guest\"\napi_key_sha256 = \"{}\"\nteams = [\"staff\"]\nclearance = \"public\"\n\n\
         [[principals]]\nname = \"dave\"\napi_key_sha256 = \"{}\"\nteams = [\"staff\", \"legal\", \"board\", \"finance\"]\nclearance = \"restricted\"\nroles = [\"admin\"]\n",
        common::sha256_hex("key-guest"),
        common::sha256_hex("key-dave")
    );
    let cfg = Config::parse(
        &toml,
        std::path::Path::new("c.toml"),
        idx.path().to_path_buf(),
    )
    .unwrap();
    let svc = Arc::new(
        Service::open(&cfg, embedder, idx.path(), false)
            .unwrap()
            .with_ingest_options(opts),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let state = Arc::new(hort::server::AppState::new(svc).unwrap());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    rt.spawn(async move {
        let _ = axum::serve(listener, hort::server::router(state)).await;
    });

    for (path, kind) in [
        ("/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let r = get(&addr, path, None);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    // The endpoints need a key, like every other.
    assert_eq!(get(&addr, "/v1/me", None).status, 401);
    let me = get(&addr, "/v1/me", Some("key-guest")).json();
    assert_eq!(
        (me["name"].as_str(), me["clearance"].as_str()),
        (Some("guest"), Some("public"))
    );

    let listed = |key| -> Vec<String> {
        get(&addr, "/v1/documents", Some(key)).json()["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap().to_string())
            .collect()
    };
    // Admins also see what the ingest could not read; nobody else does.
    let failed = get(&addr, "/v1/documents", Some("key-dave")).json()["failed"].clone();
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{failed}");
    assert_eq!(failed[0]["path"], "legal/broken.pdf");
    assert!(failed[0]["error"].as_str().unwrap().len() > 5, "{failed}");
    assert!(get(&addr, "/v1/documents", Some("key-guest"))
        .json()
        .get("failed")
        .is_none());
    let (guest, dave) = (listed("key-guest"), listed("key-dave"));
    assert!(dave.len() > guest.len(), "{guest:?} vs {dave:?}");
    let hidden = dave.iter().find(|d| !guest.contains(d)).unwrap().clone();
    // A page of a visible document, windowed as a citation asks for it.
    let visible = &guest[0];
    let p = get(
        &addr,
        &format!("/v1/documents/page?doc={visible}&start=0&end=40"),
        Some("key-guest"),
    );
    assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    assert!(p.json()["text"].as_str().unwrap().chars().count() <= 40);
    // Typing the path of a document one may not see: the same 404 as for none.
    let no = get(
        &addr,
        &format!("/v1/documents/page?doc={hidden}"),
        Some("key-guest"),
    );
    let none = get(
        &addr,
        "/v1/documents/page?doc=no/such.md",
        Some("key-guest"),
    );
    assert_eq!((no.status, none.status), (404, 404));
    let body = |r: &common::Response| String::from_utf8_lossy(&r.body).to_string();
    assert_eq!(
        body(&no).replace(hidden.as_str(), "X"),
        body(&none).replace("no/such.md", "X")
    );
    assert_eq!(
        get(
            &addr,
            &format!("/v1/documents/page?doc={hidden}"),
            Some("key-dave")
        )
        .status,
        200
    );
}

/// `GET /v1/audit`: a reader sees its own newest records (without document
/// names or provider details), never another's; an admin sees everyone's
/// and can have the chain verified. `explain` on `/v1/search` names both
/// scores, the plan and the caller's own access filter.
#[test]
fn audit_trail_and_search_explain_over_http() {
    let extra = format!(
        "{}\n{}",
        common::local_state(""),
        common::principal("boss", r#"["staff"]"#, "internal", r#"roles = ["admin"]"#)
    );
    let env = common::Env::with_extra("minilm-l6", &extra);
    env.ingest_fixtures();
    let s = common::Server::start(&env);
    let search = s.post_json(
        "/v1/search",
        Some("key-alice"),
        r#"{"query": "travel expenses approval", "k": 3, "explain": true}"#,
    );
    assert_eq!(search.status, 200);
    let v = search.json();
    let (hits, ex) = (v["hits"].as_array().unwrap(), &v["explain"]);
    assert_eq!(ex["hits"].as_array().unwrap().len(), hits.len());
    for (h, e) in hits.iter().zip(ex["hits"].as_array().unwrap()) {
        assert_eq!(h["chunk_id"], e["chunk_id"]);
        assert!(
            e["vector"]["rank"].is_u64() || e["keyword"]["rank"].is_u64(),
            "{e}"
        );
    }
    assert_eq!(
        ex["filter"]["teams"],
        serde_json::json!(["finance", "staff"])
    );
    assert_eq!(ex["filter"]["clearance"], "confidential");
    assert!(
        ex["plans"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>()
            >= 1
    );
    // Without explain, the response is as before.
    let plain = s.post_json(
        "/v1/search",
        Some("key-alice"),
        r#"{"query": "travel", "k": 1}"#,
    );
    assert!(plain.json().get("explain").is_none());

    s.post_json(
        "/v1/search",
        Some("key-guest"),
        r#"{"query": "canteen", "k": 1}"#,
    );
    let audit = |key: &str, q: &str| get(&s.addr, &format!("/v1/audit{q}"), Some(key));
    let own = audit("key-alice", "").json();
    let recent = own["recent"].as_array().unwrap();
    assert!(recent.len() >= 2, "{own}");
    assert!(recent.iter().all(|r| r["principal"] == "alice"), "{own}");
    assert!(
        recent.iter().all(|r| r["docs"] == serde_json::json!([])),
        "{own}"
    );
    let times: Vec<&str> = recent.iter().map(|r| r["time"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {own}"
    );
    assert!(own.get("verified").is_none(), "only admins verify");
    assert_eq!(audit("key-alice", "?principal=guest").status, 403);
    assert_eq!(audit("key-alice", "?limit=0").status, 400);
    assert_eq!(audit("key-alice", "?limit=501").status, 400);
    assert_eq!(audit("key-alice", "?nope=1").status, 400);
    let all = audit("key-boss", "?verify=true&limit=500").json();
    let names: std::collections::BTreeSet<&str> = all["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["principal"].as_str().unwrap())
        .collect();
    assert!(
        names.contains("alice") && names.contains("guest"),
        "{names:?}"
    );
    assert!(
        all["recent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["docs"].as_array().is_some_and(|d| !d.is_empty())),
        "admins see the documents"
    );
    assert_eq!(all["verified"]["intact"], true, "{all}");
    assert!(all["refusing"].is_null());
    let guest_only = audit("key-boss", "?principal=guest").json();
    assert!(guest_only["recent"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["principal"] == "guest"));
    // Static files of the console leave no audit line.
    get(&s.addr, "/console/app.js", None);
    let after = audit("key-boss", "?limit=500").json();
    assert!(
        after["recent"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["endpoint"] != "/console/app.js" && r["endpoint"] != "other"),
        "{after}"
    );
}

/// The console's sign-in through an issuer, over plain HTTP (the browser
/// test walks it in Chromium): the code flow ends with a token that
/// authenticates; a replayed code, a state that is not the cookie's, a
/// missing cookie and the issuer's refusal sign nobody in.
#[test]
fn issuer_sign_in_code_flow_and_its_refusals() {
    let idp = common::start_fake_idp(
        "erika",
        serde_json::json!({"teams": ["staff"], "clearance": "internal"}),
    );
    let env = common::Env::with_extra("minilm-l6", &common::sign_in_toml(&idp.addr, None));
    std::fs::write(env.path().join("jwks.json"), idp.jwks.to_string()).unwrap();
    env.ingest_fixtures();
    let s = common::Server::start(&env);
    let cfg = get(&s.addr, "/console/oidc/config", None).json();
    assert_eq!(
        cfg,
        serde_json::json!({"enabled": true, "label": "Single sign-on"})
    );

    let start = get(&s.addr, "/console/oidc/login", None);
    assert_eq!(start.status, 303);
    let to_idp = start.header("location").unwrap().to_string();
    assert!(to_idp.contains("code_challenge_method=S256") && to_idp.contains("nonce="));
    let set = start.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let path = to_idp.split_once(&idp.addr).unwrap().1;
    let back = common::http(&idp.addr, "GET", path, &[], b"");
    assert_eq!(back.status, 302);
    let callback = back.header("location").unwrap();
    let callback = callback.split_once(&s.addr).unwrap().1.to_string();
    let done = common::http(&s.addr, "GET", &callback, &[("Cookie", &cookie)], b"");
    assert_eq!(done.status, 200);
    assert_eq!(done.header("cache-control"), Some("no-store"));
    let page = String::from_utf8_lossy(&done.body).to_string();
    let token = page
        .split("<meta name=\"hort-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a token in the page")
        .to_string();
    let me = get(&s.addr, "/v1/me", Some(&token)).json();
    assert_eq!(me["name"], "jwt:erika");
    assert!(done.header("set-cookie").unwrap().contains("Max-Age=0"));

    // The same code again: the issuer refuses it, nobody is signed in.
    let again = common::http(&s.addr, "GET", &callback, &[("Cookie", &cookie)], b"");
    assert_eq!(again.status, 502);
    assert!(!String::from_utf8_lossy(&again.body).contains("hort-token"));
    assert_eq!(idp.refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    // A state that is not the cookie's (a crafted link), or no cookie at all.
    let forged = callback.replace("state=", "state=x");
    for (path, headers) in [
        (forged.as_str(), vec![("Cookie", cookie.as_str())]),
        (callback.as_str(), vec![]),
    ] {
        let r = common::http(&s.addr, "GET", path, &headers, b"");
        assert_eq!(r.status, 400, "{path}");
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert!(body.contains("hort-signin-error") && !body.contains("hort-token"));
    }
    // The issuer's own refusal.
    let r = common::http(
        &s.addr,
        "GET",
        "/console/oidc/callback?error=access_denied&state=y",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(r.status, 401);
}
