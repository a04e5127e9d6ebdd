//! The PostgreSQL + pgvector backend against a real PostgreSQL 18 with
//! pgvector 0.8 (started by `make test` through `scripts/pg.sh`, which sets
//! `HORT_TEST_PG_URL` and `HORT_TEST_PG_REPLICA_URL`): the access property
//! over random corpora on both backends, row-level security on its own,
//! migration both ways, the shared audit chain, a streaming replica, and two
//! `hort serve` nodes sharing documents, rate limits and budgets.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use common::acl_corpus::{self, doc, level, TEAMS, WORDS};
use common::{copy_tree, repo, start_scripted_llm, Env, McpHttp, Server};
use hort::acl::{AccessRule, Classification, Principal};
use hort::embed::{Embedder, HashEmbedder};
use hort::ingest::chunk::ChunkParams;
use hort::ingest::loader::PdfIsolation;
use hort::ingest::{ingest, IngestOptions};
use hort::retrieve::{self, SearchParams};
use hort::store::docfilter::DocFilter;
use hort::store::hnsw::GraphParams;
use hort::store::migrate::{self, Scope};
use hort::store::pg::{Meta, PgDoc, PgStore};
use hort::store::IndexReader;

fn pg_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `make test` (it starts PostgreSQL), or \
             `source $(scripts/pg.sh start)` before cargo test"
        )
    })
}

/// A new, empty database on the test server (and so on its replica).
fn fresh_db(tag: &str) -> String {
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

fn with_db(url: &str, db: &str) -> String {
    let (head, _) = url.rsplit_once('/').unwrap();
    format!("{head}/{db}")
}

fn db_name(url: &str) -> &str {
    url.rsplit_once('/').unwrap().1
}

fn opts() -> IngestOptions {
    IngestOptions {
        chunk: ChunkParams {
            max_tokens: 12,
            overlap_tokens: 3,
        },
        max_file_bytes: 1 << 20,
        pdf: PdfIsolation::InProcess {
            timeout: Duration::from_secs(5),
        },
        parse_threads: 2,
        batch_size: 16,
        segment_chunks: 1000,
        graph: GraphParams {
            m: 4,
            ef_construction: 16,
        },
        progress: false,
    }
}

fn store_for(url: &str, snap: &hort::store::Snapshot) -> PgStore {
    PgStore::open(
        url,
        None,
        2,
        Meta {
            embedder: snap.manifest.embedder.clone(),
            dim: snap.manifest.dim as usize,
            chunker: snap.manifest.chunker.clone(),
            ..Default::default()
        },
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The embedded backend's access property, on PostgreSQL: over random
    /// corpora, rules and principals, no vector, keyword or fused hit is
    /// outside the principal's access (with and without a metadata filter),
    /// and the filtered vector search never starves (iterative scan).
    #[test]
    fn no_hit_outside_access_on_postgres(
        docs in proptest::collection::vec(doc(), 1..30),
        principals in proptest::collection::vec(
            (proptest::collection::vec(0..TEAMS.len() + 1, 0..3), 0u8..4), 1..5),
        k in 1usize..60,
        prefix in proptest::option::of(0usize..30),
        md_only in proptest::bool::ANY,
    ) {
        thread_local! {
            static DB: String = fresh_db("acl");
        }
        let url = DB.with(|u| u.clone());
        let src = tempfile::tempdir().unwrap();
        let idx = tempfile::tempdir().unwrap();
        acl_corpus::write(src.path(), &docs);
        let e = HashEmbedder::new(32);
        ingest(idx.path(), &[src.path().to_path_buf()], &e, &opts()).unwrap();
        let snap = IndexReader::open(idx.path()).unwrap().snapshot();
        let pg = store_for(&url, &snap);
        pg.execute_owner("TRUNCATE documents CASCADE").unwrap();
        let r = migrate::to_postgres(&snap, &pg, &Scope::Folders, false).unwrap();
        prop_assert_eq!(r.added, snap.docs.len());
        for (teams, l) in &principals {
            let names: Vec<String> = teams
                .iter()
                .map(|&t| TEAMS.get(t).map(|s| s.to_string()).unwrap_or_else(|| "ghost".into()))
                .collect();
            let p = Principal::new("p", &names, level(*l));
            // Documents are one per folder: their path identifies them on both backends.
            let visible: HashSet<String> = snap.docs.iter()
                .filter(|d| p.can_see(d.access.as_ref()))
                .map(|d| d.path.clone())
                .collect();
            let visible_chunks: usize = snap.docs.iter()
                .filter(|d| p.can_see(d.access.as_ref()))
                .map(|d| d.n_chunks as usize)
                .sum();
            let meta = DocFilter {
                path_prefix: prefix.map(|j| format!("d{j}")),
                file_types: md_only.then(|| vec!["md".to_string()]),
                ..DocFilter::default()
            }
            .compile()
            .unwrap();
            let allowed: HashSet<String> = snap.docs.iter()
                .filter(|d| p.can_see(d.access.as_ref()) && meta.matches(d))
                .map(|d| d.path.clone())
                .collect();
            let params = SearchParams { k, candidates: k, ef_search: 8, ..SearchParams::default() };
            for (q, docs_filter, ok) in [
                (WORDS[0], Some(&meta), &allowed),
                (WORDS[k % WORDS.len()], None, &visible),
            ] {
                let req = retrieve::Request { query: q, k, docs: docs_filter };
                let r = retrieve::search_pg(&pg, &e, &p, &req, &params).unwrap();
                for h in &r.hits {
                    prop_assert!(ok.contains(&h.doc), "hit in {} outside access or filter", h.doc);
                }
                // Every candidate either side belongs to a permitted document.
                let ids: Vec<u64> = r.vector.iter().chain(r.keyword.iter()).map(|x| x.0).collect();
                let owner = store_for(&url, &snap);
                let god = Principal::new("god", TEAMS, Classification::Restricted);
                for row in owner.chunks(&god, ids).unwrap() {
                    prop_assert!(ok.contains(&row.path), "candidate in {} outside access", row.path);
                }
                if docs_filter.is_none() {
                    prop_assert_eq!(r.vector.len(), k.min(visible_chunks), "vector side starved");
                }
            }
        }
    }
}

type Rule = (&'static [&'static str], Classification);

/// Row-level security alone: a SELECT with no filter of hort's, run as the
/// principal's role, returns exactly the permitted rows of every table.
#[test]
fn row_level_security_filters_an_unfiltered_select() {
    let url = fresh_db("rls");
    let pg = PgStore::open(
        &url,
        None,
        2,
        Meta {
            embedder: "test".into(),
            dim: 3,
            chunker: "c".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let mut docs = Vec::new();
    let rules: [(&str, Option<Rule>); 5] = [
        ("pub.md", Some((&["finance"], Classification::Public))),
        (
            "conf.md",
            Some((&["finance"], Classification::Confidential)),
        ),
        ("hr.md", Some((&["hr"], Classification::Public))),
        (
            "both.md",
            Some((&["hr", "finance"], Classification::Internal)),
        ),
        ("norule.md", None),
    ];
    for (path, rule) in rules {
        let text = format!("text of {path}");
        docs.push(PgDoc {
            root: "/r".into(),
            path: path.into(),
            kind: "md".into(),
            size: 1,
            mtime_ns: 0,
            sha256: path.into(),
            access: rule.map(|(t, c)| AccessRule::new(t, c).unwrap()),
            rule_source: None,
            paged: false,
            ingested_at: 0,
            hygiene_removed: 0,
            pages: vec![(1, text.clone())],
            chunks: vec![hort::store::pg::PgChunk {
                page_ord: 0,
                byte_start: 0,
                byte_end: text.len() as u32,
                char_start: 0,
                char_end: text.len() as u32,
                content_hash: [0; 16],
                injection: None,
                embedding: vec![1.0, 0.0, 0.0],
            }],
        });
    }
    pg.put_docs(docs).unwrap();
    let paths = |p: &Principal, table: &str| -> Vec<String> {
        let ids = pg
            .select_as(p, &format!("SELECT doc_id FROM {table}"))
            .unwrap();
        // Documents were inserted in order into a new database: ids 1..=5.
        let mut all: Vec<String> = Vec::new();
        for id in ids {
            all.push(
                rules
                    .iter()
                    .map(|r| r.0.to_string())
                    .nth((id - 1) as usize)
                    .unwrap(),
            );
        }
        all.sort();
        all
    };
    let fin_internal = Principal::new("a", &["finance"], Classification::Internal);
    assert_eq!(paths(&fin_internal, "chunks"), vec!["both.md", "pub.md"]);
    assert_eq!(paths(&fin_internal, "pages"), vec!["both.md", "pub.md"]);
    let all_docs = pg
        .select_as(&fin_internal, "SELECT id FROM documents")
        .unwrap();
    assert_eq!(all_docs.len(), 2);
    let hr_restricted = Principal::new("b", &["hr"], Classification::Restricted);
    assert_eq!(paths(&hr_restricted, "chunks"), vec!["both.md", "hr.md"]);
    // No teams, or a team nobody has: nothing, whatever the clearance.
    let nobody = Principal::new("c", &[] as &[&str], Classification::Restricted);
    assert!(paths(&nobody, "chunks").is_empty());
    let ghost = Principal::new("d", &["ghost"], Classification::Restricted);
    assert!(paths(&ghost, "chunks").is_empty());
    // A team name crafted to break out of the array literal stays one name.
    let crafted = Principal::new(
        "e",
        &["x\",\"finance", "\"}{finance"],
        Classification::Restricted,
    );
    assert!(paths(&crafted, "chunks").is_empty());
    // The document without a rule is visible to nobody, even all teams at the top.
    let top = Principal::new("f", &["finance", "hr", "legal"], Classification::Restricted);
    assert_eq!(
        paths(&top, "chunks"),
        vec!["both.md", "conf.md", "hr.md", "pub.md"]
    );
    // One page of a document, as the MCP get_document tool reads it: only
    // what the principal may see, under row-level security.
    use hort::store::pg::PageLookup;
    assert_eq!(
        pg.doc_page(&fin_internal, "conf.md", 1).unwrap(),
        PageLookup::NotFound
    );
    assert_eq!(
        pg.doc_page(&fin_internal, "pub.md", 2).unwrap(),
        PageLookup::OutOfRange(1)
    );
    match pg.doc_page(&fin_internal, "pub.md", 1).unwrap() {
        PageLookup::Found { text, .. } => assert_eq!(text, "text of pub.md"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        pg.doc_page(&nobody, "pub.md", 1).unwrap(),
        PageLookup::NotFound
    );
    // The reader role cannot write.
    assert!(pg
        .select_as(&top, "DELETE FROM chunks RETURNING id")
        .is_err());
}

/// `hort migrate`: embedded → PostgreSQL → embedded keeps every document,
/// its access rule, text positions, injection flags and vectors; a second
/// run writes nothing; a mismatched model is refused.
#[test]
fn migrate_round_trip_and_model_check() {
    let url = fresh_db("mig");
    let src = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/corpus"), src.path());
    let idx = tempfile::tempdir().unwrap();
    let e = HashEmbedder::new(48);
    ingest(idx.path(), &[src.path().to_path_buf()], &e, &opts()).unwrap();
    let snap = IndexReader::open(idx.path()).unwrap().snapshot();
    let pg = store_for(&url, &snap);
    let r = migrate::to_postgres(&snap, &pg, &Scope::Folders, false).unwrap();
    assert_eq!(r.added, snap.docs.len());
    assert!(r.chunks > 20);
    let again = migrate::to_postgres(&snap, &pg, &Scope::Folders, false).unwrap();
    assert_eq!(
        (again.added, again.updated, again.unchanged),
        (0, 0, snap.docs.len())
    );

    let back = tempfile::tempdir().unwrap();
    let r = migrate::to_embedded(&pg, back.path(), opts().graph, 1000, false).unwrap();
    assert_eq!(r.added, snap.docs.len());
    let snap2 = IndexReader::open(back.path()).unwrap().snapshot();
    assert_eq!(snap2.manifest.embedder, snap.manifest.embedder);
    for d in snap.docs.iter() {
        let d2 = snap2.docs.find(&d.root, &d.path).expect("document copied");
        assert_eq!(
            (&d2.access, &d2.sha256, d2.n_chunks, d2.paged),
            (&d.access, &d.sha256, d.n_chunks, d.paged)
        );
        assert_eq!(d2.injection.len(), d.injection.len(), "{}", d.path);
        let a = snap.doc_chunks(d).unwrap();
        let b = snap2.doc_chunks(d2).unwrap();
        assert_eq!(
            a.iter().map(|x| x.1).collect::<Vec<_>>(),
            b.iter().map(|x| x.1).collect::<Vec<_>>()
        );
        let (s1, s2) = (snap.segment_of(d).unwrap(), snap2.segment_of(d2).unwrap());
        for ((id1, _), (id2, _)) in a.iter().zip(&b) {
            let (r1, r2) = (s1.local(*id1).unwrap(), s2.local(*id2).unwrap());
            assert_eq!(s1.vectors().get(r1), s2.vectors().get(r2), "vectors kept");
            let (c1, c2) = (s1.chunk(r1), s2.chunk(r2));
            assert_eq!(
                (c1.page_no, c1.char_start, c1.char_end),
                (c2.page_no, c2.char_start, c2.char_end)
            );
        }
    }
    // The same search on both embedded indexes gives the same documents.
    let p = Principal::new("a", &["staff", "finance"], Classification::Confidential);
    let params = SearchParams::default();
    let req = retrieve::Request {
        query: "travel approval",
        k: 5,
        docs: None,
    };
    let h1: Vec<String> = retrieve::search(&snap, &e, &p, &req, &params)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.doc)
        .collect();
    let h2: Vec<String> = retrieve::search(&snap2, &e, &p, &req, &params)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.doc)
        .collect();
    assert_eq!(h1, h2);
    assert!(!h1.is_empty());

    // A different model is refused with the reason.
    let err = PgStore::open(
        &url,
        None,
        1,
        Meta {
            embedder: "other-model".into(),
            dim: 48,
            chunker: "c".into(),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("other-model") && err.contains("re-ingest"),
        "{err}"
    );
    // Migrations are applied once: opening again is a no-op.
    store_for(&url, &snap);
}

/// The audit chain in the database: appends from several threads (as from
/// several nodes) form one intact chain; an edited row is found.
#[test]
fn shared_audit_chain_is_serialised_and_tamper_evident() {
    let url = fresh_db("audit");
    let meta = Meta {
        embedder: "t".into(),
        dim: 3,
        chunker: "c".into(),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut handles = Vec::new();
    for node in 0..3 {
        let pg = Arc::new(PgStore::open(&url, None, 2, meta.clone()).unwrap());
        let log = hort::gateway::audit::AuditLog::open(
            &dir.path().join(format!("unused-{node}.jsonl")),
            hort::config::FsyncPolicy::Never,
            false,
        )
        .unwrap()
        .shared(pg);
        handles.push(std::thread::spawn(move || {
            for i in 0..20 {
                log.append(hort::gateway::audit::AuditRecord {
                    principal: format!("node{node}"),
                    endpoint: format!("/v1/search#{i}"),
                    status: 200,
                    ..Default::default()
                })
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let pg = PgStore::open(&url, None, 1, meta).unwrap();
    let v = hort::gateway::audit::verify_shared(&pg).unwrap();
    assert_eq!((v.records, v.problems.len()), (60, 0), "{:?}", v.problems);
    pg.execute_owner(
        "UPDATE audit SET line = replace(line, 'node1', 'node9') WHERE seq = (SELECT min(seq) FROM audit WHERE line LIKE '%node1%')",
    )
    .unwrap();
    let v = hort::gateway::audit::verify_shared(&pg).unwrap();
    assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    assert!(v.problems[0].contains("edited"), "{:?}", v.problems);
    // Cutting the newest rows: the next append is refused (nothing is
    // chained onto the cut), and verify names the cut.
    pg.execute_owner("DELETE FROM audit WHERE seq > 58")
        .unwrap();
    let pg = Arc::new(pg);
    let log = hort::gateway::audit::AuditLog::open(
        &dir.path().join("unused-x.jsonl"),
        hort::config::FsyncPolicy::Never,
        false,
    )
    .unwrap()
    .shared(pg.clone());
    let e = log
        .append(hort::gateway::audit::AuditRecord::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 record(s) were removed"), "{e}");
    assert!(log.broken().is_some());
    let v = hort::gateway::audit::verify_shared(&pg).unwrap();
    assert_eq!(v.records, 58);
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("2 record(s) were removed")),
        "{:?}",
        v.problems
    );
}

/// A job that panics on a pooled connection fails alone: the pool keeps
/// its workers and the next job runs (on a fresh connection).
#[test]
fn a_panicking_database_job_leaves_the_pool_whole() {
    let pool = hort::store::pg::Pool::new(&pg_url("HORT_TEST_PG_URL"), 1).unwrap();
    for _ in 0..3 {
        let r: Result<(), _> = pool.run(|_| panic!("a bug in a query's code"));
        assert!(
            matches!(r, Err(hort::store::pg::PgError::JobPanicked(_))),
            "{r:?}"
        );
        let one: i32 = pool
            .run(|c| {
                let row = c
                    .query_one("SELECT 1", &[])
                    .map_err(|e| hort::store::pg::PgError::Mismatch(e.to_string()))?;
                hort::store::pg::col(&row, 0)
            })
            .unwrap();
        assert_eq!(one, 1);
    }
    // A column of another type is an error, not a panic.
    let r = pool.run(|c| {
        let row = c
            .query_one("SELECT 'text'::text", &[])
            .map_err(|e| hort::store::pg::PgError::Mismatch(e.to_string()))?;
        hort::store::pg::col::<i64>(&row, 0)
    });
    assert!(
        matches!(r, Err(hort::store::pg::PgError::Query { .. })),
        "{r:?}"
    );
}

/// A streaming replica (`pg_basebackup -R`) answers searches: a document
/// written to the primary is found through a store that reads the replica.
#[test]
fn read_replica_answers_searches() {
    let url = fresh_db("replica");
    let replica = with_db(&pg_url("HORT_TEST_PG_REPLICA_URL"), db_name(&url));
    let src = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/corpus"), src.path());
    let idx = tempfile::tempdir().unwrap();
    let e = HashEmbedder::new(48);
    ingest(idx.path(), &[src.path().to_path_buf()], &e, &opts()).unwrap();
    let snap = IndexReader::open(idx.path()).unwrap().snapshot();
    let meta = Meta {
        embedder: snap.manifest.embedder.clone(),
        dim: snap.manifest.dim as usize,
        chunker: snap.manifest.chunker.clone(),
        ..Default::default()
    };
    let primary = PgStore::open(&url, None, 1, meta.clone()).unwrap();
    migrate::to_postgres(&snap, &primary, &Scope::Folders, false).unwrap();
    // Migrations and writes go to the primary; reads to the replica.
    let split = PgStore::open(&url, Some(&replica), 1, meta).unwrap();
    let p = Principal::new("a", &["staff", "finance"], Classification::Confidential);
    let req = retrieve::Request {
        query: "travel approval",
        k: 3,
        docs: None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let hits = loop {
        let r = retrieve::search_pg(&split, &e, &p, &req, &SearchParams::default());
        if let Ok(r) = r {
            if !r.hits.is_empty() {
                break r.hits;
            }
        }
        assert!(Instant::now() < deadline, "the replica never caught up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(hits.iter().all(|h| p.can_see(Some(&AccessRule {
        teams: h.teams.clone(),
        classification: h.classification
    }))));
    // The replica really is one: it refuses writes.
    let mut c = postgres::Client::connect(&replica, postgres::NoTls).unwrap();
    let in_recovery: bool = c
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(in_recovery);
    assert!(c.batch_execute("DELETE FROM documents").is_err());
}

const NODE_PRINCIPALS: &str = r#"
[[principals]]
name = "admin"
api_key_sha256 = "ADMIN_HASH"
teams = ["staff"]
clearance = "restricted"
roles = ["admin"]

[[principals]]
name = "limited"
api_key_sha256 = "LIMITED_HASH"
teams = ["staff"]
clearance = "public"
requests_per_minute = 2

[[principals]]
name = "spender"
api_key_sha256 = "SPENDER_HASH"
teams = ["staff"]
clearance = "internal"
monthly_budget_usd = 1.0
"#;

fn node(llm: &str, url: &str) -> Env {
    let principals = NODE_PRINCIPALS
        .replace("ADMIN_HASH", &common::sha256_hex("key-admin"))
        .replace("LIMITED_HASH", &common::sha256_hex("key-limited"))
        .replace("SPENDER_HASH", &common::sha256_hex("key-spender"));
    let extra = format!(
        r#"
[store]
backend = "postgres"
url = "{url}"

[audit]
path = "audit.jsonl"

[[providers]]
name = "scripted"
kind = "openai"
base_url = "http://{llm}/v1"
model = "m"
locality = "local"
timeout_s = 30
max_retries = 0
usd_per_1k_input = 0.1

[routing]
chain = ["scripted"]
extractive_fallback = false
{principals}"#
    );
    Env::with_extra("minilm-l6", &extra)
}

fn post(s: &Server, path: &str, key: &str, body: &str) -> common::Response {
    s.post_json(path, Some(key), body)
}

/// Two `hort serve` nodes on one database: a folder ingested by one node's
/// CLI and a document uploaded through one node are found through the
/// other; a rate limit and a budget spent through one hold on the other;
/// both nodes append to one audit chain.
#[test]
fn two_nodes_share_documents_limits_budgets_and_audit() {
    let url = fresh_db("nodes");
    let llm = start_scripted_llm();
    let a = node(&llm, &url);
    let b = node(&llm, &url);
    a.ingest_fixtures();
    let sa = Server::start(&a);
    let sb = Server::start(&b);
    let search = |s: &Server, key: &str, q: &str| -> Vec<String> {
        let r = post(
            s,
            "/v1/search",
            key,
            &format!(r#"{{"query": "{q}", "k": 5}}"#),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["doc"].as_str().unwrap().to_string())
            .collect()
    };
    // Node B never ingested anything, yet finds the corpus.
    let docs = search(&sb, "key-admin", "travel approval CFO");
    assert!(docs.iter().any(|d| d.contains("travel-policy")), "{docs:?}");

    // Upload through A, find through B; delete through B, gone from A.
    let body = r#"{"path": "memos/zebra.md", "content": "The quarterly zebra census counts forty-two zebras.", "teams": ["staff"], "classification": "internal"}"#;
    let r = post(&sa, "/v1/documents", "key-admin", body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        search(&sb, "key-admin", "zebra census")
            .first()
            .map(String::as_str),
        Some("memos/zebra.md")
    );
    let r = sb.request(
        "DELETE",
        "/v1/documents?path=memos/zebra.md",
        &[("Authorization", "Bearer key-admin")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(!search(&sa, "key-admin", "zebra census")
        .iter()
        .any(|d| d == "memos/zebra.md"));

    // MCP resources read the database under row-level security, not the
    // node's staging copy: what B restricts or deletes is gone from A at once.
    let okapi = r#"{"path": "memos/okapi.md", "content": "The okapi enclosure opens at nine.", "teams": ["staff"], "classification": "internal"}"#;
    assert_eq!(post(&sa, "/v1/documents", "key-admin", okapi).status, 201);
    let read = |s: &Server, key: &str| {
        McpHttp::open(s, key).call(
            1,
            "resources/read",
            serde_json::json!({"uri": "hort://documents/memos/okapi.md"}),
        )
    };
    let r = read(&sa, "key-spender");
    assert!(
        r["result"]["contents"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("okapi")),
        "{r}"
    );
    let stricter = okapi.replace("internal", "restricted");
    assert_eq!(
        post(&sb, "/v1/documents", "key-admin", &stricter).status,
        201
    );
    assert_eq!(read(&sa, "key-spender")["error"]["code"], -32002);
    assert!(read(&sa, "key-admin")["result"].is_object());
    let r = sb.request(
        "DELETE",
        "/v1/documents?path=memos/okapi.md",
        &[("Authorization", "Bearer key-admin")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(read(&sa, "key-admin")["error"]["code"], -32002);
    // An admin who may not see a document cannot replace it on any node.
    let hidden = okapi.replace("[\"staff\"]", "[\"board\"]");
    assert_eq!(post(&sb, "/v1/documents", "key-admin", &hidden).status, 201);
    let takeover = okapi.replace("okapi enclosure", "nothing");
    assert_eq!(
        post(&sa, "/v1/documents", "key-admin", &takeover).status,
        403
    );

    // Rate limit: 2 per minute for "limited", counted across both nodes.
    let q = r#"{"query": "travel"}"#;
    let mut statuses = vec![
        post(&sa, "/v1/search", "key-limited", q).status,
        post(&sb, "/v1/search", "key-limited", q).status,
        post(&sb, "/v1/search", "key-limited", q).status,
    ];
    if statuses[..2] != [200, 200] {
        // The two requests straddled a minute boundary: try once more.
        std::thread::sleep(Duration::from_secs(2));
        statuses = vec![
            post(&sa, "/v1/search", "key-limited", q).status,
            post(&sb, "/v1/search", "key-limited", q).status,
            post(&sb, "/v1/search", "key-limited", q).status,
        ];
    }
    assert_eq!(statuses, vec![200, 200, 429]);

    // Budget: one expensive answer on A (10 USD of 1 USD) stops spender on B.
    let r = post(
        &sa,
        "/v1/query",
        "key-spender",
        r#"{"query": "zzexpensive travel approval"}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = post(&sb, "/v1/query", "key-spender", r#"{"query": "travel"}"#);
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"].as_str(), Some("budget_exceeded"));

    // Both nodes wrote one audit chain in the database, and it verifies.
    drop(sa);
    drop(sb);
    let out = a.run(&["audit", "verify", "--json"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["records"].as_u64().unwrap() >= 10, "{v}");
    assert!(
        !a.path().join("audit.jsonl").exists() || {
            std::fs::read_to_string(a.path().join("audit.jsonl"))
                .unwrap()
                .is_empty()
        }
    );
}

#[test]
fn embedder_dimension_is_checked_on_write() {
    let url = fresh_db("dim");
    let pg = PgStore::open(
        &url,
        None,
        1,
        Meta {
            embedder: "t".into(),
            dim: 4,
            chunker: "c".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let e = HashEmbedder::new(3);
    let v = e.embed_query("x").unwrap();
    let err = pg
        .put_docs(vec![PgDoc {
            root: "/r".into(),
            path: "a.md".into(),
            kind: "md".into(),
            size: 1,
            mtime_ns: 0,
            sha256: "s".into(),
            access: None,
            rule_source: None,
            paged: false,
            ingested_at: 0,
            hygiene_removed: 0,
            pages: vec![(1, "abc".into())],
            chunks: vec![hort::store::pg::PgChunk {
                page_ord: 0,
                byte_start: 0,
                byte_end: 3,
                char_start: 0,
                char_end: 3,
                content_hash: [0; 16],
                injection: None,
                embedding: v,
            }],
        }])
        .unwrap_err()
        .to_string();
    assert!(err.contains("for a 4-dimensional database"), "{err}");
    // Nothing of the failed transaction remains.
    assert!(pg.versions().unwrap().is_empty());
}
