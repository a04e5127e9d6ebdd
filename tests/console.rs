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
