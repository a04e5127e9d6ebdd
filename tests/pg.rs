//! The PostgreSQL + pgvector backend against a real PostgreSQL 18 with
//! pgvector 0.8 (started by `make test` through `scripts/pg.sh`, which sets
//! `HORT_TEST_PG_URL` and `HORT_TEST_PG_REPLICA_URL`): the access property
//! over random corpora on both backends, row-level security on its own,
//! ingest straight into the database (atomic per folder, two folders at
//! once), migration both ways, the shared audit chain, a streaming replica,
//! and two `hort serve` nodes sharing documents, rate limits and budgets.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use proptest::prelude::*;

use common::acl_corpus::{self, doc, level, TEAMS, WORDS};
use common::pg::{db_name, fresh_db, pg_url, with_db};
use common::{copy_tree, repo, start_scripted_llm, Env, McpHttp, Server};
use hort::acl::{AccessRule, Classification, Principal};
use hort::embed::{Embedder, HashEmbedder};
use hort::gateway::audit::AuditRecord;
use hort::gateway::ledger::Ledger;
use hort::gateway::pg::PgLedger;
use hort::ingest::{ingest, ingest_into, IngestOptions};
use hort::retrieve::{self, SearchParams};
use hort::store::docfilter::DocFilter;
use hort::store::embedded::{EmbeddedSpec, EmbeddedStore};
use hort::store::migrate;
use hort::store::pg::{Meta, PgBackend, PgStore, PgWriter};
use hort::store::{
    IndexRead, IndexReader, IndexWrite, NewChunk, NewDocument, Pages, Store, VectorParams,
    VectorPlan,
};

fn opts() -> IngestOptions {
    common::index_opts(12, 3, 4)
}

/// The database at `url` as a store for vectors of `e` cut by [`opts`].
fn pg_for(url: &str, e: &dyn Embedder) -> Arc<PgStore> {
    let o = opts();
    Arc::new(
        PgStore::open(
            url,
            None,
            2,
            Meta {
                embedder: e.id().to_string(),
                dim: e.dim(),
                chunker: o.chunk.fingerprint(),
                m: o.graph.m,
                ef_construction: o.graph.ef_construction,
            },
        )
        .unwrap(),
    )
}

fn backend(pg: &Arc<PgStore>) -> PgBackend {
    PgBackend::new(pg.clone(), &opts().chunk.fingerprint())
}

fn meta(embedder: &str, dim: usize) -> Meta {
    Meta {
        embedder: embedder.into(),
        dim,
        chunker: "c".into(),
        ..Default::default()
    }
}

fn doc_ids(v: &[retrieve::Hit]) -> Vec<String> {
    v.iter().map(|h| h.doc.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The embedded backend's access property, on PostgreSQL: over random
    /// corpora, rules and principals, ingested straight into the database,
    /// no vector, keyword or fused hit is outside the principal's access
    /// (with and without a metadata filter), and the filtered vector search
    /// never starves (iterative scan).
    #[test]
    fn no_hit_outside_access_on_postgres(
        docs in proptest::collection::vec(doc(), 1..30),
        principals in proptest::collection::vec(
            (proptest::collection::vec(0..TEAMS.len() + 1, 0..3), 0u8..4), 1..5),
        k in 1usize..60,
        prefix in proptest::option::of(0usize..30),
        md_only in proptest::bool::ANY,
        compact in proptest::bool::ANY,
        recompact in proptest::bool::ANY,
        later in proptest::option::of((
            proptest::collection::vec(
                proptest::option::weighted(
                    0.85,
                    (proptest::collection::vec(0..TEAMS.len(), 1..3), 0u8..4),
                ),
                30,
            ),
            0usize..30,
        )),
    ) {
        thread_local! {
            static DB: String = fresh_db("acl");
        }
        let url = DB.with(|u| u.clone());
        let src = tempfile::tempdir().unwrap();
        let idx = tempfile::tempdir().unwrap();
        acl_corpus::write(src.path(), &docs);
        let e = HashEmbedder::new(32);
        let roots = [src.path().to_path_buf()];
        let pg = pg_for(&url, &e);
        // A fresh corpus each case (statistics included: they are kept by
        // the write path, which a TRUNCATE passes by).
        pg.execute_owner(
            "TRUNCATE documents CASCADE; TRUNCATE term_df, term_blocks, term_block_dead;
             UPDATE field_lengths SET chunks = 0, tokens = 0; UPDATE term_block_state SET upto = 0",
        )
        .unwrap();
        let r = ingest_into(&backend(&pg), &roots, &e, &opts()).unwrap();
        prop_assert_eq!(r.added, docs.len());
        // Keyword postings read from compacted blocks, from the rows alone,
        // or from blocks some of whose chunks were then deleted or moved to
        // another rule (their blocks name the old one).
        if compact {
            backend(&pg).writer().unwrap().compact(true).unwrap();
            // The node keeps the blocks it reads (`BlockCache`): read them
            // now, so that the searches below, after the changes, would
            // use them if it did not notice a newer compaction.
            let everyone = Principal::new("all", TEAMS, Classification::Restricted);
            pg.keyword_search(&everyone, None, &hort::store::keyword::KeywordQuery::of(&WORDS.join(" ")), 100)
                .unwrap();
        }
        if let Some((rules, keep)) = &later {
            let changed: Vec<acl_corpus::Doc> = docs
                .iter()
                .take(*keep)
                .zip(rules)
                .map(|(d, r)| acl_corpus::Doc { rule: r.clone(), words: d.words.clone() })
                .collect();
            std::fs::remove_dir_all(src.path()).unwrap();
            std::fs::create_dir_all(src.path()).unwrap();
            acl_corpus::write(src.path(), &changed);
            ingest_into(&backend(&pg), &roots, &e, &opts()).unwrap();
            // Blocks rebuilt after the changes (by another node's writer):
            // the kept ones are out of date.
            if recompact {
                backend(&pg_for(&url, &e)).writer().unwrap().compact(true).unwrap();
            }
        }
        // The embedded index of the same files is the reference for who
        // may see what.
        ingest(idx.path(), &roots, &e, &opts()).unwrap();
        let snap = IndexReader::open(idx.path()).unwrap().snapshot();
        prop_assert_eq!(pg.stats().unwrap().chunks, snap.stats().unwrap().chunks);
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
                let r = retrieve::search(pg.as_ref(), &e, &p, &req, &params).unwrap();
                for h in &r.hits {
                    prop_assert!(ok.contains(&h.doc), "hit in {} outside access or filter", h.doc);
                }
                // Every candidate either side belongs to a permitted document.
                let ids: Vec<u64> = r.vector.iter().chain(r.keyword.iter()).map(|x| x.0).collect();
                let god = Principal::new("god", TEAMS, Classification::Restricted);
                for row in pg.chunks(&god, None, &ids).unwrap() {
                    prop_assert!(ok.contains(&row.path), "candidate in {} outside access", row.path);
                }
                if docs_filter.is_none() {
                    prop_assert_eq!(r.vector.len(), k.min(visible_chunks), "vector side starved");
                    // And nothing visible is missing from the keyword side:
                    // it ranks as the embedded index does, whether postings
                    // come from blocks, rows, or both.
                    assert_keyword_alike(&snap, pg.as_ref(), &p, q);
                }
            }
        }
    }
}

type Rule = (&'static [&'static str], Classification);

/// A one-page, one-chunk document for the writer.
fn one_chunk_doc(root: &str, path: &str, access: Option<AccessRule>, v: Vec<f32>) -> NewDocument {
    let text = format!("text of {path}");
    NewDocument {
        root: root.into(),
        path: path.into(),
        kind: "md".into(),
        size: 1,
        mtime_ns: 0,
        sha256: path.into(),
        access,
        rule_source: None,
        paged: false,
        ingested_at: 0,
        checked_at_ns: 0,
        hygiene_removed: 0,
        chunks: vec![NewChunk {
            page_ord: 0,
            byte_start: 0,
            byte_end: text.len() as u32,
            char_start: 0,
            char_end: text.len() as u32,
            content_hash: [0; 16],
            injection: None,
            embedding: v,
        }],
        pages: vec![(1, text)],
        page_ocr: Vec::new(),
    }
}

/// Row-level security alone: a SELECT with no filter of hort's, run as the
/// principal's role, returns exactly the permitted rows of every table.
#[test]
fn row_level_security_filters_an_unfiltered_select() {
    let url = fresh_db("rls");
    let pg = Arc::new(PgStore::open(&url, None, 2, meta("test", 3)).unwrap());
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
    let mut w = PgWriter::open(pg.clone(), "c").unwrap();
    for (path, rule) in rules {
        let access = rule.map(|(t, c)| AccessRule::new(t, c).unwrap());
        w.put(one_chunk_doc("/r", path, access, vec![1.0, 0.0, 0.0]))
            .unwrap();
    }
    w.commit().unwrap();
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
    assert_eq!(
        pg.pages(&fin_internal, "conf.md", Some(1)).unwrap(),
        Pages::NotFound
    );
    assert_eq!(
        pg.pages(&fin_internal, "pub.md", Some(2)).unwrap(),
        Pages::OutOfRange(1)
    );
    match pg.pages(&fin_internal, "pub.md", Some(1)).unwrap() {
        Pages::Found { texts, .. } => assert_eq!(texts, vec!["text of pub.md".to_string()]),
        other => panic!("{other:?}"),
    }
    // All pages, and page 0 (there is none), read in the same round trip.
    match pg.pages(&fin_internal, "pub.md", None).unwrap() {
        Pages::Found { texts, n_pages, .. } => {
            assert_eq!((texts, n_pages), (vec!["text of pub.md".to_string()], 1))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        pg.pages(&fin_internal, "pub.md", Some(0)).unwrap(),
        Pages::OutOfRange(1)
    );
    assert_eq!(pg.pages(&nobody, "pub.md", None).unwrap(), Pages::NotFound);
    assert_eq!(
        pg.pages(&nobody, "pub.md", Some(1)).unwrap(),
        Pages::NotFound
    );
    // Listing: the same rows.
    let listed: Vec<String> = pg
        .documents(&fin_internal)
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(listed, vec!["both.md", "pub.md"]);
    // The reader role cannot write.
    assert!(pg
        .select_as(&top, "DELETE FROM chunks RETURNING id")
        .is_err());
    // Reads are pipelined (begin, access, statement, commit sent at once):
    // a statement that fails midway must leave no connection of the pool
    // (two here) inside an aborted or open transaction, so the reads after
    // it see exactly what they saw before.
    for _ in 0..4 {
        assert!(pg.select_as(&top, "SELECT 1 / 0").is_err());
    }
    for _ in 0..4 {
        assert_eq!(paths(&fin_internal, "chunks"), vec!["both.md", "pub.md"]);
        assert!(paths(&nobody, "chunks").is_empty());
    }
}

/// `hort ingest` on PostgreSQL writes straight into the database through the
/// write contract: the same documents, rules, chunks and hits as the
/// embedded index; a second run changes nothing; a changed file, a changed
/// rule and a deleted file are synced.
#[test]
fn ingest_writes_straight_into_postgres() {
    let url = fresh_db("ingest");
    let src = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/corpus"), src.path());
    let roots = [src.path().to_path_buf()];
    let e = HashEmbedder::new(48);
    let idx = tempfile::tempdir().unwrap();
    let reference = ingest(idx.path(), &roots, &e, &opts()).unwrap();
    let snap = IndexReader::open(idx.path()).unwrap().snapshot();
    let pg = pg_for(&url, &e);
    let store = backend(&pg);
    let r = ingest_into(&store, &roots, &e, &opts()).unwrap();
    assert_eq!(
        (r.added, r.chunks, r.no_access_rule.len()),
        (
            reference.added,
            reference.chunks,
            reference.no_access_rule.len()
        )
    );
    let (a, b) = (snap.stats().unwrap(), pg.stats().unwrap());
    assert_eq!(
        (a.documents, a.chunks, a.unruled, a.teams),
        (b.documents, b.chunks, b.unruled, b.teams)
    );
    let p = Principal::new("a", &["staff", "finance"], Classification::Confidential);
    let params = SearchParams::default();
    // The vectors are the same and both backends score them exactly at this
    // size; keyword scores differ by design (BM25 here, ts_rank there).
    let vectors_only = SearchParams {
        keyword_weight: 0.0,
        vector_weight: 1.0,
        ..params
    };
    for q in [
        "travel approval",
        "budget 2026",
        "vendor fuel cards",
        "holiday",
    ] {
        let req = retrieve::Request {
            query: q,
            k: 5,
            docs: None,
        };
        let h1 = retrieve::search(snap.as_ref(), &e, &p, &req, &vectors_only).unwrap();
        let h2 = retrieve::search(pg.as_ref(), &e, &p, &req, &vectors_only).unwrap();
        assert_eq!(doc_ids(&h1.hits), doc_ids(&h2.hits), "{q}");
        let docs = |v: Vec<hort::store::DocSummary>| -> Vec<(String, u32)> {
            v.into_iter().map(|d| (d.path, d.n_chunks)).collect()
        };
        assert_eq!(
            docs(snap.documents(&p).unwrap()),
            docs(pg.documents(&p).unwrap())
        );
    }
    // BM25 in the database ranks as the embedded index does, English and
    // German, narrow and broad principals.
    let mut compared = [0usize; 2];
    let all_teams = Principal::new(
        "x",
        &["engineering", "finance", "hr", "legal", "board", "staff"],
        Classification::Restricted,
    );
    for q in [
        "travel approval",
        "budget 2026",
        "Reisekosten Hotel Obergrenze",
        "Dienstwagen private Nutzung",
        "incident deploy rollback",
        "salary bands",
    ] {
        for (i, who) in [&p, &all_teams].into_iter().enumerate() {
            compared[i] += assert_keyword_alike(snap.as_ref(), pg.as_ref(), who, q);
        }
    }
    assert!(compared.iter().all(|n| *n >= 20), "{compared:?}");
    // So far every posting was read row by row (too few chunks for a
    // compaction); compacted into blocks, the ranks are the same.
    // Vectors stay in the row (migration 9), not in the TOAST table.
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_attribute
             WHERE attrelid = 'chunks'::regclass AND attname = 'embedding' AND attstorage = 'm'"
        ),
        1
    );
    let compacted = backend(&pg).writer().unwrap().compact(true).unwrap();
    assert_eq!(compacted.merged_segments, 1);
    assert_eq!(
        count(&url, "SELECT count(*) FROM term_block_state WHERE upto > 0"),
        1
    );
    assert!(count(&url, "SELECT count(*) FROM term_blocks") > 100);
    for q in [
        "travel approval",
        "Reisekosten Hotel Obergrenze",
        "Dienstwagen private Nutzung",
        "salary bands",
    ] {
        for who in [&p, &all_teams] {
            assert!(assert_keyword_alike(snap.as_ref(), pg.as_ref(), who, q) > 0);
        }
    }
    // The answer guard's look outside the asker's access (access sets
    // excluded) finds what the embedded index finds.
    let staff = Principal::new("s", &["staff"], Classification::Public);
    let (h1, h2) = (
        snap.hidden_texts(&staff, "salary bands", 3).unwrap(),
        pg.hidden_texts(&staff, "salary bands", 3).unwrap(),
    );
    assert!(
        !h2.is_empty() && h1.first() == h2.first(),
        "{h1:?} vs {h2:?}"
    );
    let again = ingest_into(&store, &roots, &e, &opts()).unwrap();
    assert_eq!(
        (again.added, again.updated, again.removed, again.embedded),
        (0, 0, 0, 0)
    );
    // A changed file, a stricter rule, a deleted file.
    let root = src.path();
    std::fs::write(
        root.join("public/zebra.md"),
        "The zebra census of 2026 counted forty-two zebras.",
    )
    .unwrap();
    let travel = std::fs::read_dir(root.join("internal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("travel"))
        .expect("a travel policy in the fixtures");
    std::fs::remove_file(&travel).unwrap();
    std::fs::write(
        root.join("hr/_access.toml"),
        "teams = [\"hr\"]\nclassification = \"restricted\"\n",
    )
    .unwrap();
    std::fs::write(root.join("public/broken.pdf"), b"%PDF-1.7 not really").unwrap();
    let r = ingest_into(&store, &roots, &e, &opts()).unwrap();
    assert_eq!((r.added, r.removed), (1, 1), "{r:?}");
    assert!(r.access_updated >= 1, "{r:?}");
    // What failed is kept with the documents, for every node to show …
    let failed = pg.failures().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].path, "public/broken.pdf");
    assert_eq!(failed[0].root, r_root(root));
    // … until the folder's next ingest no longer fails on it.
    std::fs::remove_file(root.join("public/broken.pdf")).unwrap();
    ingest_into(&store, &roots, &e, &opts()).unwrap();
    assert!(pg.failures().unwrap().is_empty());
    let staff = Principal::new("s", &["staff"], Classification::Public);
    let req = retrieve::Request {
        query: "zebra census",
        k: 3,
        docs: None,
    };
    let hits = retrieve::search(pg.as_ref(), &e, &staff, &req, &params).unwrap();
    assert_eq!(
        hits.hits.first().map(|h| h.doc.as_str()),
        Some("public/zebra.md")
    );
    let everyone = Principal::new("x", TEAMS, Classification::Restricted);
    let listed: Vec<String> = pg
        .documents(&everyone)
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert!(!listed.iter().any(|d| d.contains("travel")), "{listed:?}");
    let hr_confidential = Principal::new("h", &["hr"], Classification::Confidential);
    assert!(pg
        .documents(&hr_confidential)
        .unwrap()
        .iter()
        .all(|d| !d.path.starts_with("hr/")));
    // The postings followed the changes: statistics equal a recount, and
    // the stricter rule holds on the keyword side too.
    assert_postings_recount(&url);
    let hr_words = keyword_keyed(pg.as_ref(), &hr_confidential, "salary bands", 10);
    assert!(
        hr_words.iter().all(|(k, _)| !k.0.starts_with("hr/")),
        "{hr_words:?}"
    );
    let hr_restricted = Principal::new("h", &["hr"], Classification::Restricted);
    let hr_words = keyword_keyed(pg.as_ref(), &hr_restricted, "salary bands", 10);
    assert!(
        hr_words.iter().any(|(k, _)| k.0.starts_with("hr/")),
        "{hr_words:?}"
    );
    // Those changes came after the blocks were built: the deleted and the
    // moved chunks are retired from them (a moved chunk's block posting
    // still names its old access set, and must never count), and the next
    // compaction folds everything in with the same ranks.
    assert!(count(&url, "SELECT count(*) FROM term_block_dead") >= 1);
    let hr_before = keyword_keyed(pg.as_ref(), &hr_restricted, "salary bands zebra", 10);
    let confidential_before = keyword_keyed(pg.as_ref(), &hr_confidential, "salary bands", 10);
    backend(&pg).writer().unwrap().compact(true).unwrap();
    assert_eq!(count(&url, "SELECT count(*) FROM term_block_dead"), 0);
    assert_eq!(
        keyword_keyed(pg.as_ref(), &hr_restricted, "salary bands zebra", 10),
        hr_before
    );
    assert_eq!(
        keyword_keyed(pg.as_ref(), &hr_confidential, "salary bands", 10),
        confidential_before
    );
    // The node kept the blocks it had read before the compaction; having
    // searched again, it keeps the new ones (a search that finds its kept
    // blocks out of date reads them again and replaces them, rather than
    // reading twice from then on).
    assert_eq!(
        pg.kept_keyword_generation(),
        Some(count(&url, "SELECT generation FROM term_block_state"))
    );
    // A database from before the postings (or of another analysis) gets
    // them built when a node opens it: the same statistics, the same ranks.
    let before = keyword_keyed(pg.as_ref(), &hr_restricted, "salary bands zebra", 10);
    pg.execute_owner(
        "DELETE FROM hort_meta WHERE key = 'postings'; TRUNCATE chunk_terms, term_df;
         UPDATE field_lengths SET chunks = 0, tokens = 0;
         TRUNCATE term_blocks, term_block_dead; UPDATE term_block_state SET upto = 0;",
    )
    .unwrap();
    assert!(keyword_keyed(pg.as_ref(), &hr_restricted, "salary bands zebra", 10).is_empty());
    let reopened = pg_for(&url, &e);
    assert_postings_recount(&url);
    assert_eq!(
        keyword_keyed(reopened.as_ref(), &hr_restricted, "salary bands zebra", 10),
        before
    );
}

/// A chunk on either backend: document, page and offset.
type ChunkKey = (String, u32, u32);

/// Keyword candidates of `view` for `p`, keyed by position, best first.
fn keyword_keyed(view: &dyn IndexRead, p: &Principal, q: &str, k: usize) -> Vec<(ChunkKey, f32)> {
    let hits = view
        .keyword_search(p, None, &hort::store::keyword::KeywordQuery::of(q), k)
        .unwrap();
    let ids: Vec<u64> = hits.iter().map(|h| h.0).collect();
    let rows = view.chunks(p, None, &ids).unwrap();
    hits.iter()
        .map(|(id, score)| {
            let r = rows.iter().find(|r| r.id == *id).expect("a hit's chunk");
            ((r.path.clone(), r.page_no, r.char_start), *score)
        })
        .collect()
}

/// Both backends rank the keyword side alike (the same analysers, fields,
/// statistics and BM25): every chunk found by both has the same score, and
/// every chunk clearly inside one top-k is in the other.
fn assert_keyword_alike(a: &dyn IndexRead, b: &dyn IndexRead, p: &Principal, q: &str) -> usize {
    let k = 10;
    let (x, y) = (keyword_keyed(a, p, q, k), keyword_keyed(b, p, q, k));
    assert_eq!(x.len(), y.len(), "{q}: {x:?} vs {y:?}");
    for (key, s) in &x {
        if let Some((_, t)) = y.iter().find(|(k2, _)| k2 == key) {
            assert!(
                (s - t).abs() <= 1e-3 * s.abs().max(1.0),
                "{q}: {key:?} scored {s} and {t}"
            );
        }
    }
    for (one, other) in [(&x, &y), (&y, &x)] {
        let cut = one.last().map(|l| l.1).unwrap_or(0.0) * 1.01;
        for (key, s) in one.iter().filter(|(_, s)| *s > cut) {
            assert!(
                other.iter().any(|(k2, _)| k2 == key),
                "{q}: {key:?} ({s}) in one top {k} only: {x:?} vs {y:?}"
            );
        }
    }
    x.len()
}

/// The single number `sql` returns.
fn count(url: &str, sql: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one(sql, &[]).unwrap().get(0)
}

/// The postings' statistics equal a recount from the postings themselves.
fn assert_postings_recount(url: &str) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(
        "DO $$ BEGIN
           IF EXISTS (
             (SELECT field, term, count(*) FROM chunk_terms WHERE term <> '' GROUP BY 1, 2
              EXCEPT SELECT field, term, df FROM term_df)
             UNION ALL
             (SELECT field, term, df FROM term_df
              EXCEPT SELECT field, term, count(*) FROM chunk_terms WHERE term <> '' GROUP BY 1, 2))
           THEN RAISE EXCEPTION 'document frequencies differ from a recount'; END IF;
           IF EXISTS (
             SELECT 1 FROM field_lengths f LEFT JOIN (
               SELECT field, count(*) n, sum(tf) t FROM chunk_terms WHERE term = '' GROUP BY 1) c
               USING (field)
             WHERE f.chunks <> coalesce(c.n, 0) OR f.tokens <> coalesce(c.t, 0))
           THEN RAISE EXCEPTION 'field lengths differ from a recount'; END IF;
           IF (SELECT sum(chunks) FROM field_lengths WHERE field <> 2) <> (SELECT count(*) FROM chunks)
           THEN RAISE EXCEPTION 'not every chunk is counted once'; END IF;
         END $$",
    )
    .unwrap();
}

/// A folder as ingest records it (canonical).
fn r_root(p: &std::path::Path) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_string_lossy()
        .to_string()
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
    let pg = pg_for(&url, &e);
    let chunker = snap.manifest.chunker.clone();
    let r = migrate::copy(
        snap.as_ref(),
        &mut PgWriter::open(pg.clone(), &chunker).unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(r.added, snap.docs.len(), "{r:?}");
    assert!(r.chunks > 20);
    let again = migrate::copy(
        snap.as_ref(),
        &mut PgWriter::open(pg.clone(), &chunker).unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(
        (again.added, again.updated, again.unchanged),
        (0, 0, snap.docs.len())
    );

    let back = tempfile::tempdir().unwrap();
    let target = EmbeddedStore::open(
        EmbeddedSpec {
            dir: back.path().to_path_buf(),
            embedder: snap.manifest.embedder.clone(),
            dim: snap.manifest.dim as usize,
            chunker: chunker.clone(),
            graph: opts().graph,
            segment_chunks: 1000,
        },
        true,
    )
    .unwrap();
    let r = migrate::copy(pg.as_ref(), target.writer().unwrap().as_mut(), false).unwrap();
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
            assert_eq!(
                s1.page_ocr(c1.page_idx),
                s2.page_ocr(c2.page_idx),
                "OCR mark kept: {}",
                d.path
            );
        }
    }
    // The same search on both embedded indexes and on the database gives
    // the same documents.
    let p = Principal::new("a", &["staff", "finance"], Classification::Confidential);
    let params = SearchParams::default();
    let req = retrieve::Request {
        query: "travel approval",
        k: 5,
        docs: None,
    };
    let h1 = doc_ids(
        &retrieve::search(snap.as_ref(), &e, &p, &req, &params)
            .unwrap()
            .hits,
    );
    let h2 = doc_ids(
        &retrieve::search(snap2.as_ref(), &e, &p, &req, &params)
            .unwrap()
            .hits,
    );
    assert_eq!(h1, h2);
    assert!(!h1.is_empty());
    // The database's copy: the same vector hits (keyword scores differ by design).
    let vectors_only = SearchParams {
        keyword_weight: 0.0,
        vector_weight: 1.0,
        ..params
    };
    let v1 = doc_ids(
        &retrieve::search(snap.as_ref(), &e, &p, &req, &vectors_only)
            .unwrap()
            .hits,
    );
    let v3 = doc_ids(
        &retrieve::search(pg.as_ref(), &e, &p, &req, &vectors_only)
            .unwrap()
            .hits,
    );
    assert_eq!(v1, v3);

    // The scanned page's chunks say they were read by OCR, on both backends.
    let scan = retrieve::Request {
        query: "Feuerlöscher Halle Brandschutzbegehung",
        k: 10,
        docs: None,
    };
    for store in [
        snap.as_ref() as &dyn hort::store::IndexRead,
        pg.as_ref(),
        snap2.as_ref(),
    ] {
        let hits = retrieve::search(store, &e, &p, &scan, &params)
            .unwrap()
            .hits;
        let ocr: Vec<_> = hits
            .iter()
            .filter(|h| h.doc.ends_with("-scan.pdf"))
            .map(|h| h.ocr_confidence)
            .collect();
        assert!(!ocr.is_empty(), "{hits:?}");
        assert!(ocr.iter().all(|c| c.is_some_and(|c| c > 50.0)), "{ocr:?}");
        assert!(hits
            .iter()
            .filter(|h| !h.doc.ends_with("-scan.pdf"))
            .all(|h| h.ocr_confidence.is_none()));
    }

    // A different model is refused with the reason.
    let err = PgStore::open(&url, None, 1, meta("other-model", 48))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("other-model") && err.contains("re-ingest"),
        "{err}"
    );
    // Migrations are applied once: opening again is a no-op.
    pg_for(&url, &e);
}

/// The gateway's books of two nodes on the database at `url` (`pool`
/// connections each, no audit).
fn two_ledgers(url: &str, pool: usize) -> Vec<PgLedger> {
    (0..2)
        .map(|_| PgLedger::open(url, pool, false).unwrap())
        .collect()
}

/// Rate windows are calendar minutes: a test that counts requests in one
/// starts early in it (a boundary between two requests resets the count).
fn start_early_in_a_minute() {
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second > 40 {
        std::thread::sleep(Duration::from_secs(61 - second));
    }
}

/// Rate windows in the database, as several nodes share them: requests at
/// once from two nodes are admitted up to the limit and not one more, and a
/// refused request counts against none of its accounts (the team's window
/// is left as it was when the principal's refuses).
#[test]
fn shared_rate_limits_are_exact_and_refusals_count_nowhere() {
    use hort::gateway::Ledger;
    let url = fresh_db("rate");
    let ledgers = two_ledgers(&url, 4);
    start_early_in_a_minute();
    let limits = |p: u32, t: u32| vec![("principal:x".to_string(), p), ("team:t".to_string(), t)];
    let admitted = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|i| {
                let l = &ledgers[i % 2];
                let lim = limits(10, 100);
                s.spawn(move || l.take_rate(&lim).unwrap().is_ok())
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(admitted, 10, "16 at once from two nodes, 10 per minute");
    // The team has counted the 10 admitted requests only: with room for
    // one more it admits one more, then refuses.
    let refused = ledgers[0].take_rate(&limits(10, 100)).unwrap().unwrap_err();
    assert_eq!(refused.account, "principal:x");
    assert!(ledgers[1]
        .take_rate(&[("team:t".to_string(), 11)])
        .unwrap()
        .is_ok());
    let refused = ledgers[1]
        .take_rate(&[("team:t".to_string(), 11)])
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.account, "team:t");
    assert!(refused.retry_after >= Duration::from_secs(1));
}

/// The audit chain in the database: appends from several threads (as from
/// several nodes, each with its own ledger) form one intact chain; an
/// edited row is found; a cut end stops further appends.
#[test]
fn the_answer_cache_and_budget_alerts_are_shared_by_nodes() {
    use hort::gateway::cache::pg::PgCache;
    use hort::gateway::cache::{AnswerCache, CacheScope, Entry, SourcePart};
    use hort::gateway::AccountKind;
    let url = fresh_db("cache");
    // The gateway's migrations create the tables.
    let ledgers = two_ledgers(&url, 2);
    // Two nodes race for the same alert: exactly one raises it.
    let claims: Vec<bool> = std::thread::scope(|s| {
        let hs: Vec<_> = ledgers
            .iter()
            .map(|l| {
                s.spawn(move || {
                    l.claim_alert(AccountKind::Team, "finance", "2026-12", 800)
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(claims.iter().filter(|c| **c).count(), 1, "{claims:?}");
    assert!(!ledgers[0]
        .claim_alert(AccountKind::Team, "finance", "2026-12", 800)
        .unwrap());
    assert!(ledgers[1]
        .claim_alert(AccountKind::Team, "finance", "2026-12", 1000)
        .unwrap());

    let cfg = hort::config::CacheConfig {
        max_entries: 3,
        ..Default::default()
    };
    let node = |_: usize| AnswerCache::new(Arc::new(PgCache::open(&url, 1).unwrap()), &cfg);
    let (a, b) = (node(0), node(1));
    let ctx = |doc: &str, text: &str| {
        hort::gateway::cache::context(
            &[SourcePart {
                chunk_id: "1",
                label: doc,
                text,
                classification: "internal",
            }],
            "chain",
            "policy",
            "p",
        )
    };
    let entry = |doc: &str| Entry {
        v: 0,
        created: 0,
        context: String::new(),
        completion: format!("from {doc} [1]"),
        provider: "p".into(),
        sent: vec![1],
        masked: false,
        prompt_tokens: 100,
        completion_tokens: 10,
        cost_usd: 0.01,
        docs: vec![doc.to_string()],
        embedding: None,
        model: None,
        facets: vec![],
        scope: vec![],
    };
    let scope = CacheScope {
        enabled: true,
        ..Default::default()
    };
    let c1 = ctx("a.md", "x");
    assert_eq!(a.store("q?", &c1, &scope, entry("a.md")).status, "stored");
    // The other node serves it; a changed text is another context (a miss).
    let hit = b.lookup("Q", &c1, &scope).expect("shared hit");
    assert_eq!(hit.entry.completion, "from a.md [1]");
    assert!(b.lookup("q?", &ctx("a.md", "x2"), &scope).is_none());
    // The size bound holds across nodes; forgetting a document drops its entries.
    for (i, d) in ["b.md", "c.md", "d.md", "e.md"].iter().enumerate() {
        b.store(&format!("q{i}"), &ctx(d, "y"), &scope, entry(d));
    }
    assert!(a.len() <= 3, "{}", a.len());
    a.forget_docs(&["e.md".to_string()]);
    assert!(b.lookup("q3", &ctx("e.md", "y"), &scope).is_none());
}

#[test]
fn shared_audit_chain_is_serialised_and_tamper_evident() {
    let url = fresh_db("audit");
    let mut handles = Vec::new();
    for node in 0..3 {
        let ledger = PgLedger::open(&url, 2, true).unwrap();
        handles.push(std::thread::spawn(move || {
            for i in 0..20 {
                ledger
                    .audit(AuditRecord {
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
    let ledger = PgLedger::open(&url, 1, true).unwrap();
    let v = ledger.verify(true).unwrap().unwrap();
    assert_eq!((v.records, v.problems.len()), (60, 0), "{:?}", v.problems);
    // The newest records, newest first, all or one principal's.
    let recent = ledger.recent_audit(None, 5).unwrap();
    assert_eq!(recent.len(), 5);
    let node1 = ledger.recent_audit(Some("node1"), 100).unwrap();
    assert_eq!(node1.len(), 20);
    assert!(node1.iter().all(|r| r.principal == "node1"));
    assert_eq!(node1[0].endpoint, "/v1/search#19", "newest first");
    assert_eq!(node1[19].endpoint, "/v1/search#0");
    ledger
        .execute_owner(
            "UPDATE audit SET line = replace(line, 'node1', 'node9') WHERE seq = (SELECT min(seq) FROM audit WHERE line LIKE '%node1%')",
        )
        .unwrap();
    let v = ledger.verify(true).unwrap().unwrap();
    assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    assert!(v.problems[0].contains("edited"), "{:?}", v.problems);
    // Cutting the newest rows: the next append is refused (nothing is
    // chained onto the cut), and verify names the cut.
    ledger
        .execute_owner("DELETE FROM audit WHERE seq > 58")
        .unwrap();
    let other = PgLedger::open(&url, 1, true).unwrap();
    let e = other.audit(AuditRecord::default()).unwrap_err().to_string();
    assert!(e.contains("2 record(s) were removed"), "{e}");
    assert!(other.audit_broken().is_some());
    let v = ledger.verify(true).unwrap().unwrap();
    assert_eq!(v.records, 58);
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("2 record(s) were removed")),
        "{:?}",
        v.problems
    );
    // A ledger without an audit log configured appends nothing.
    let quiet = PgLedger::open(&url, 1, false).unwrap();
    quiet.audit(AuditRecord::default()).unwrap();
    assert_eq!(ledger.verify(true).unwrap().unwrap().records, 58);
}

/// The distribution column: every document, page and chunk carries its
/// access set (`acl`), equal to the set of its teams and classification.
/// A copy of `chunks` hash-partitioned by it (4 parts, with the same
/// indexes and row-level security) answers every principal's vector and
/// keyword searches exactly as the single table did, and a search that
/// names the principal's access sets reads only the parts holding them.
#[test]
fn a_corpus_partitioned_by_its_distribution_column_answers_alike() {
    let url = fresh_db("partitioned");
    let src = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/corpus"), src.path());
    let e = HashEmbedder::new(48);
    let pg = pg_for(&url, &e);
    ingest_into(&backend(&pg), &[src.path().to_path_buf()], &e, &opts()).unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // A database from before the column: migration 7 fills it in.
    c.batch_execute(
        "ALTER TABLE documents DROP COLUMN acl; ALTER TABLE pages DROP COLUMN acl;
         ALTER TABLE chunks DROP COLUMN acl; REVOKE SELECT ON access_sets FROM hort_reader;
         DELETE FROM hort_schema WHERE version = 7;",
    )
    .unwrap();
    let pg = pg_for(&url, &e);
    for table in ["documents", "pages", "chunks"] {
        let off: i64 = c
            .query_one(
                &format!(
                    "SELECT count(*) FROM {table} x JOIN access_sets s ON s.id = x.acl
                     WHERE (s.teams, s.classification) IS DISTINCT FROM
                           (ARRAY(SELECT DISTINCT t COLLATE \"C\" FROM unnest(x.teams) t ORDER BY 1),
                            x.classification)
                        OR x.acl IS NULL"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(off, 0, "{table}: rows whose acl is not their rule's set");
    }
    let teams: Vec<String> = c
        .query(
            "SELECT DISTINCT unnest(teams) FROM documents ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        teams.len() >= 3,
        "the sample corpus has several teams: {teams:?}"
    );
    let mut principals: Vec<Principal> = teams
        .iter()
        .flat_map(|t| {
            [Classification::Public, Classification::Restricted]
                .map(|c| Principal::new("p", &[t.as_str()], c))
        })
        .collect();
    let all: Vec<&str> = teams.iter().map(String::as_str).collect();
    principals.push(Principal::new("all", &all, Classification::Restricted));
    let questions = [
        "travel expenses approval",
        "Reisekosten",
        "salary bands",
        "incident",
    ];
    type Ranked = Vec<(u64, f32)>;
    let answers = |pg: &PgStore| -> Vec<(Ranked, Ranked)> {
        let mut out = Vec::new();
        for p in &principals {
            for q in questions {
                let qv = e.embed_query(q).unwrap();
                let (v, _) = pg
                    .vector_search(p, None, &qv, 10, SearchParams::default().vector())
                    .unwrap();
                let k = pg
                    .keyword_search(p, None, &hort::store::keyword::KeywordQuery::of(q), 10)
                    .unwrap();
                out.push((v, k));
            }
        }
        out
    };
    let flat = answers(&pg);
    assert!(
        flat.iter().any(|(v, _)| !v.is_empty()),
        "the searches find something"
    );
    c.batch_execute(
        "ALTER TABLE chunks RENAME TO chunks_flat;
         CREATE TABLE chunks (LIKE chunks_flat INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
             PARTITION BY HASH (acl);
         CREATE TABLE chunks_p0 PARTITION OF chunks FOR VALUES WITH (MODULUS 4, REMAINDER 0);
         CREATE TABLE chunks_p1 PARTITION OF chunks FOR VALUES WITH (MODULUS 4, REMAINDER 1);
         CREATE TABLE chunks_p2 PARTITION OF chunks FOR VALUES WITH (MODULUS 4, REMAINDER 2);
         CREATE TABLE chunks_p3 PARTITION OF chunks FOR VALUES WITH (MODULUS 4, REMAINDER 3);
         INSERT INTO chunks SELECT * FROM chunks_flat;
         CREATE INDEX ON chunks (id);
         CREATE INDEX ON chunks (doc_id);
         CREATE INDEX ON chunks USING gin (teams);
         CREATE INDEX ON chunks USING hnsw (embedding vector_cosine_ops);
         ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
         CREATE POLICY hort_acl ON chunks FOR SELECT TO hort_reader
             USING (teams && hort_teams() AND classification <= hort_clearance());
         GRANT SELECT ON chunks TO hort_reader;
         ANALYZE chunks;",
    )
    .unwrap();
    // A new store: no counts or statements cached from the single table.
    let parted = pg_for(&url, &e);
    assert_eq!(
        answers(&parted),
        flat,
        "the partitioned corpus answers alike"
    );
    // A search naming a principal's access sets plans only their parts.
    let parts_of = |c: &mut postgres::Client, sets: &[i32]| -> (usize, usize) {
        let holding: i64 = c
            .query_one(
                "SELECT count(DISTINCT tableoid) FROM chunks WHERE acl = ANY($1)",
                &[&sets],
            )
            .unwrap()
            .get(0);
        let plan: Vec<String> = c
            .query(
                &format!(
                    "EXPLAIN SELECT id FROM chunks WHERE acl = ANY('{{{}}}'::int[])
                     ORDER BY embedding <=> (SELECT embedding FROM chunks_flat LIMIT 1) LIMIT 10",
                    sets.iter()
                        .map(i32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let planned = (0..4)
            .filter(|i| plan.iter().any(|l| l.contains(&format!("chunks_p{i} "))))
            .count();
        (holding as usize, planned)
    };
    let mut narrow_pruned = false;
    for p in &principals {
        let sets: Vec<i32> = c
            .query_one(
                "SELECT ARRAY(SELECT id FROM access_sets WHERE teams && $1 AND classification <= $2)",
                &[&p.teams, &(p.clearance.level() as i32)],
            )
            .unwrap()
            .get(0);
        if sets.is_empty() {
            continue;
        }
        let (holding, planned) = parts_of(&mut c, &sets);
        assert_eq!(
            planned,
            holding.max(1),
            "{p:?}: parts planned vs parts holding its sets"
        );
        narrow_pruned |= planned < 4;
    }
    assert!(narrow_pruned, "some principal's search skips parts");
}

/// One integer from `sql`, through [`Pool::run`](hort::store::pg::Pool::run).
fn select_int(pool: &hort::store::pg::Pool, sql: &'static str) -> i32 {
    pool.run(move |c| {
        async move {
            let row = c
                .query_one(sql, &[])
                .await
                .map_err(|e| hort::store::pg::PgError::Mismatch(e.to_string()))?;
            hort::store::pg::col(&row, 0)
        }
        .boxed()
    })
    .unwrap()
}

/// A job that panics on a pooled connection fails alone: the pool keeps
/// its workers and the next job runs (on a fresh connection).
#[test]
fn a_panicking_database_job_leaves_the_pool_whole() {
    let pool = hort::store::pg::Pool::new(&pg_url("HORT_TEST_PG_URL"), 1).unwrap();
    for _ in 0..3 {
        let r: Result<(), _> = pool.run(|_| async { panic!("a bug in a query's code") }.boxed());
        assert!(
            matches!(r, Err(hort::store::pg::PgError::JobPanicked(_))),
            "{r:?}"
        );
        let one: i32 = select_int(&pool, "SELECT 1");
        assert_eq!(one, 1);
    }
    // A column of another type is an error, not a panic.
    let r = pool.run(|c| {
        async move {
            let row = c
                .query_one("SELECT 'text'::text", &[])
                .await
                .map_err(|e| hort::store::pg::PgError::Mismatch(e.to_string()))?;
            hort::store::pg::col::<i64>(&row, 0)
        }
        .boxed()
    });
    assert!(
        matches!(r, Err(hort::store::pg::PgError::Query { .. })),
        "{r:?}"
    );
}

/// Waiting for PostgreSQL from async code does not stall the runtime: on
/// a runtime with ONE worker thread, a ticker task keeps ticking while
/// another task waits half a second for `pg_sleep` (the rate-limit check of
/// every request and the answer path's budget check wait like this). A
/// plain blocking wait would freeze the only worker, and the ticker with it.
#[test]
fn a_slow_query_does_not_stall_the_async_runtime() {
    let pool = Arc::new(hort::store::pg::Pool::new(&pg_url("HORT_TEST_PG_URL"), 1).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let ticks = rt.block_on(async move {
        let ticker = tokio::spawn(async {
            let mut n = 0u32;
            let start = tokio::time::Instant::now();
            while start.elapsed() < Duration::from_millis(600) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                n += 1;
            }
            n
        });
        // Let the ticker start, then wait on the database from a task.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let waiter = tokio::spawn(async move {
            pool.run(|c| {
                async move {
                    c.execute("SELECT pg_sleep(0.5)", &[])
                        .await
                        .map_err(|e| hort::store::pg::PgError::Mismatch(e.to_string()))
                }
                .boxed()
            })
        });
        let slept = waiter.await.unwrap();
        assert!(slept.is_ok(), "{slept:?}");
        ticker.await.unwrap()
    });
    // 600 ms at 20 ms a tick: ~25 when nothing stalls; a frozen worker
    // would lose the 500 ms of the query (at most ~5 ticks).
    assert!(ticks >= 15, "the ticker ticked only {ticks} times");
}

/// A full pool makes a caller wait at most its timeout, then fail as busy
/// (mapped to 503), and the pool serves again once a connection is back.
#[test]
fn a_full_pool_refuses_after_its_timeout_and_recovers() {
    use hort::store::pg::{PgError, Pool, PoolOptions};
    let pool = Arc::new(
        Pool::new(
            &pg_url("HORT_TEST_PG_URL"),
            PoolOptions {
                size: 1,
                timeout: Duration::from_millis(300),
            },
        )
        .unwrap(),
    );
    let (held, release) = std::sync::mpsc::channel::<()>();
    let (taken, is_taken) = std::sync::mpsc::channel::<()>();
    let holder = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            pool.run(move |c| {
                async move {
                    c.execute("SELECT 1", &[]).await.ok();
                    taken.send(()).ok();
                    // Hold the only connection until told.
                    tokio::task::spawn_blocking(move || release.recv().ok())
                        .await
                        .ok();
                    Ok(())
                }
                .boxed()
            })
        })
    };
    is_taken.recv().unwrap();
    let start = std::time::Instant::now();
    let r = pool.run(|c| {
        async move {
            c.execute("SELECT 1", &[])
                .await
                .map(|_| ())
                .map_err(|e| PgError::Mismatch(e.to_string()))
        }
        .boxed()
    });
    let waited = start.elapsed();
    assert!(matches!(r, Err(PgError::Busy(_))), "{r:?}");
    assert!(
        waited >= Duration::from_millis(250),
        "gave up after {waited:?}"
    );
    assert!(
        matches!(
            hort::service::Error::from(PgError::Busy(String::new())),
            hort::service::Error::Unavailable(_)
        ),
        "busy is not 503"
    );
    held.send(()).unwrap();
    holder.join().unwrap().unwrap();
    let n: i32 = select_int(&pool, "SELECT 2");
    assert_eq!(n, 2);
}

/// Connections outlive the runtime of the code that first asked for them:
/// async code on a short-lived runtime (a test's, a CLI command's) takes a
/// connection, the runtime ends, and the pool still serves sync and async
/// callers (the connections are driven by the database runtime).
#[test]
fn pooled_connections_outlive_the_callers_runtime() {
    let pool = Arc::new(hort::store::pg::Pool::new(&pg_url("HORT_TEST_PG_URL"), 2).unwrap());
    for round in 0..2 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let p = pool.clone();
        let got: i32 = rt.block_on(async move {
            let c = p.get().await.unwrap();
            let row = c.query_one("SELECT 40 + $1", &[&round]).await.unwrap();
            row.get(0)
        });
        assert_eq!(got, 40 + round);
        drop(rt);
        let again: i32 = select_int(&pool, "SELECT 7");
        assert_eq!(again, 7);
    }
}

/// A fresh database with `folder` of the repository ingested on the
/// primary, and the URL of the same database on the streaming replica.
struct Replicated {
    url: String,
    replica: String,
    src: tempfile::TempDir,
    e: HashEmbedder,
    primary: Arc<PgStore>,
}

fn replicated(name: &str, folder: &str) -> Replicated {
    let url = fresh_db(name);
    let replica = with_db(&pg_url("HORT_TEST_PG_REPLICA_URL"), db_name(&url));
    let src = tempfile::tempdir().unwrap();
    copy_tree(&repo().join(folder), src.path());
    let e = HashEmbedder::new(48);
    let primary = pg_for(&url, &e);
    ingest_into(&backend(&primary), &[src.path().to_path_buf()], &e, &opts()).unwrap();
    Replicated {
        url,
        replica,
        src,
        e,
        primary,
    }
}

/// A streaming replica (`pg_basebackup -R`) answers searches: a document
/// written to the primary is found through a store that reads the replica.
#[test]
fn read_replica_answers_searches() {
    let Replicated {
        url,
        replica,
        src: _src,
        e,
        primary,
    } = replicated("replica", "fixtures/corpus");
    // Migrations and writes go to the primary; reads to the replica.
    let split = PgStore::open(&url, Some(&replica), 1, primary.meta().clone()).unwrap();
    let p = Principal::new("a", &["staff", "finance"], Classification::Confidential);
    let req = retrieve::Request {
        query: "travel approval",
        k: 3,
        docs: None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let hits = loop {
        let r = retrieve::search(&split, &e, &p, &req, &SearchParams::default());
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

/// A replica that accepts connections and never answers (a hung server,
/// a black-holing network) costs no search anything: the store opens within
/// moments, reads the primary, and reports nothing stale.
#[test]
fn a_silent_replica_costs_searches_nothing() {
    let url = fresh_db("silent");
    let e = HashEmbedder::new(48);
    let primary = pg_for(&url, &e);
    let src = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/corpus/finance"), src.path());
    ingest_into(&backend(&primary), &[src.path().to_path_buf()], &e, &opts()).unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let read_url = format!("postgres://hort@127.0.0.1:{port}/postgres?connect_timeout=30");
    let started = Instant::now();
    let store = PgStore::open(&url, Some(&read_url), 1, primary.meta().clone()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let p = Principal::new("a", &["finance"], Classification::Restricted);
    for _ in 0..3 {
        let asked = Instant::now();
        let req = retrieve::Request {
            query: "Rechnung",
            k: 3,
            docs: None,
        };
        let r = retrieve::search(&store, &e, &p, &req, &SearchParams::default()).unwrap();
        assert!(!r.hits.is_empty());
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        assert!(store.staleness().is_zero());
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// Resumes WAL replay on the replica when dropped (also when the test
/// fails), so a paused replica never outlives the test that paused it.
struct ReplayPaused(postgres::Client);

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        let _ = self.0.batch_execute("SELECT pg_wal_replay_resume()");
    }
}

/// Reads go to the replica only while it is within `[store]
/// max_staleness_s`: with replay paused on the replica and a new document
/// on the primary, a store that tolerates an hour of lag still reads the
/// replica (and reports how stale that is), one that tolerates half a
/// second reads the primary and finds the document; after replay resumes,
/// the replica has it too.
#[test]
fn a_lagging_replica_is_read_only_within_the_bound() {
    let Replicated {
        url,
        replica,
        src,
        e,
        primary,
    } = replicated("staleness", "fixtures/corpus/finance");
    let open = |bound: f64| {
        PgStore::open(&url, Some(&replica), 1, primary.meta().clone())
            .unwrap()
            .with_max_staleness(Duration::from_secs_f64(bound))
    };
    let p = Principal::new("a", &["finance"], Classification::Restricted);
    let finds = |store: &PgStore, word: &str| {
        let req = retrieve::Request {
            query: word,
            k: 3,
            docs: None,
        };
        retrieve::search(store, &e, &p, &req, &SearchParams::default())
            .unwrap()
            .hits
            .iter()
            .any(|h| h.text.contains(word))
    };
    // Caught up: the replica answers and nothing is stale.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(finds(&open(3600.0), "Rechnung") && open(3600.0).staleness().is_zero()) {
        assert!(Instant::now() < deadline, "the replica never caught up");
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut c = postgres::Client::connect(&replica, postgres::NoTls).unwrap();
    c.batch_execute("SELECT pg_wal_replay_pause()").unwrap();
    let _resume = ReplayPaused(c);
    std::fs::write(
        src.path().join("zaunkoenig.txt"),
        "Zaunkoenigprojekt: the new supplier contract starts in March.",
    )
    .unwrap();
    ingest_into(&backend(&primary), &[src.path().to_path_buf()], &e, &opts()).unwrap();
    std::thread::sleep(Duration::from_millis(1200));

    let lenient = open(3600.0);
    assert!(!finds(&lenient, "Zaunkoenigprojekt"), "replay is paused");
    let lag = lenient.staleness();
    assert!(lag >= Duration::from_secs(1), "reported staleness {lag:?}");
    let strict = open(0.5);
    assert!(
        finds(&strict, "Zaunkoenigprojekt"),
        "past the bound, the primary answers"
    );
    assert!(strict.staleness().is_zero());

    drop(_resume);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !finds(&open(3600.0), "Zaunkoenigprojekt") {
        assert!(
            Instant::now() < deadline,
            "the replica never caught up after resuming"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    node_reading(llm, url, None)
}

/// A node whose searches read `replica` while it has replayed everything
/// (`max_staleness_s = 0`: never older than the primary), the primary
/// otherwise.
fn node_reading(llm: &str, url: &str, replica: Option<&str>) -> Env {
    let read = replica
        .map(|r| format!("read_url = \"{r}\"\nmax_staleness_s = 0\n"))
        .unwrap_or_default();
    let principals = NODE_PRINCIPALS
        .replace("ADMIN_HASH", &common::sha256_hex("key-admin"))
        .replace("LIMITED_HASH", &common::sha256_hex("key-limited"))
        .replace("SPENDER_HASH", &common::sha256_hex("key-spender"));
    let extra = format!(
        r#"
[store]
backend = "postgres"
url = "{url}"
{read}
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
    // Each node reads at start what its first search would wait for (the
    // dictionary; the planner's chunk counts, read from the database
    // without a search), and says so on /readyz until then.
    for s in [&sa, &sb] {
        for r in s.wait_ready() {
            let waiting = r["waiting_for"].as_array().unwrap();
            assert!(
                waiting
                    .iter()
                    .all(|w| w == "dictionary" || w == "planner counts"),
                "{r}"
            );
        }
    }
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
    // The window is the calendar minute: start early in one, so that all
    // three requests fall into it (a boundary between any two of them
    // would reset the count).
    start_early_in_a_minute();
    let q = r#"{"query": "travel"}"#;
    let statuses = vec![
        post(&sa, "/v1/search", "key-limited", q).status,
        post(&sb, "/v1/search", "key-limited", q).status,
        post(&sb, "/v1/search", "key-limited", q).status,
    ];
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

/// A vector of the wrong dimension is refused with the reason, and nothing
/// of the writer's transaction remains.
#[test]
fn embedder_dimension_is_checked_on_write() {
    let url = fresh_db("dim");
    let pg = Arc::new(PgStore::open(&url, None, 1, meta("t", 4)).unwrap());
    let e = HashEmbedder::new(3);
    let v = e.embed_query("x").unwrap();
    let mut w = PgWriter::open(pg.clone(), "c").unwrap();
    w.put(one_chunk_doc("/r", "ok.md", None, vec![0.5; 4]))
        .unwrap();
    let err = w
        .put(one_chunk_doc("/r", "a.md", None, v))
        .and_then(|_| w.commit().map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("for a 4-dimensional database"), "{err}");
    drop(w);
    // Nothing of the failed transaction remains, not even the good document.
    assert_eq!(pg.stats().unwrap().documents, 0);
    let mut w = PgWriter::open(pg, "c").unwrap();
    assert!(w.stored("/r").unwrap().is_empty());
}

/// `hort ingest` on PostgreSQL, as operators run it: no staging index on
/// disk; a folder's sync is one transaction (an ingest killed before its
/// commit leaves nothing); two ingest processes of different folders run at
/// the same time; then two `hort serve` nodes, one reading the primary and one
/// a streaming replica, find both folders.
#[test]
fn two_ingests_at_once_straight_into_the_database_then_two_nodes_search() {
    let url = fresh_db("twoingest");
    let replica = with_db(&pg_url("HORT_TEST_PG_REPLICA_URL"), db_name(&url));
    let llm = start_scripted_llm();
    // Node a reads the primary, node b the streaming replica.
    let a = node(&llm, &url);
    let b = node_reading(&llm, &url, Some(&replica));
    copy_tree(&repo().join("fixtures/corpus"), &a.path().join("corpus"));
    let notes = b.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(
        notes.join("_access.toml"),
        "teams = [\"staff\"]\nclassification = \"internal\"\n",
    )
    .unwrap();
    for i in 0..40 {
        std::fs::write(
            notes.join(format!("note-{i:02}.md")),
            format!(
                "# Field note {i}\n\nThe okapi survey of station {i} counted {} okapis near the river.",
                i * 3 + 1
            ),
        )
        .unwrap();
    }
    let documents = |env: &Env| {
        env.json(&["status", "--json"])["documents"]
            .as_u64()
            .unwrap()
    };

    // Killed just before its commit: nothing of the folder is visible.
    let out = b
        .cmd()
        .args(["ingest", "--quiet", "notes"])
        .env("HORT_CRASHPOINT", "pg:before-commit")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the crashpoint was not reached");
    assert_eq!(documents(&a), 0);

    // Two processes, two folders, at once.
    let spawn = |env: &Env, dir: &str| {
        env.cmd()
            .args(["ingest", "--json", dir])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&a, "corpus"), spawn(&b, "notes"));
    let mut added = Vec::new();
    for p in [pa, pb] {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        added.push(report["added"].as_u64().unwrap());
    }
    assert!(added[0] > 20, "{added:?}");
    assert_eq!(added[1], 40);
    assert_eq!(documents(&b), added[0] + added[1]);
    // No staging copy anywhere: the database is the store.
    assert!(!a.index().exists() && !b.index().exists());
    // Both writers' BM25 statistics landed, neither lost the other's (the
    // killed run's never did).
    assert_postings_recount(&url);

    let sa = Server::start(&a);
    let sb = Server::start(&b);
    for s in [&sa, &sb] {
        for (q, want) in [
            ("okapi survey station 17", "note-17.md"),
            ("travel approval CFO", "travel-policy"),
        ] {
            let r = post(
                s,
                "/v1/search",
                "key-admin",
                &format!(r#"{{"query": "{q}", "k": 5}}"#),
            );
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            // Bound 0: whichever server answered, nothing was stale.
            assert!(r.json().get("staleness_ms").is_none());
            let docs: Vec<String> = r.json()["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["doc"].as_str().unwrap().to_string())
                .collect();
            assert!(docs.iter().any(|d| d.contains(want)), "{q}: {docs:?}");
        }
    }
}

/// Two runs over the same folders given in opposite orders, at once: each
/// takes the folders' locks in one order (no deadlock), the second waits for
/// the first, and both succeed; the database holds each document once.
#[test]
fn concurrent_ingests_of_shared_folders_do_not_deadlock() {
    let url = fresh_db("order");
    let e = HashEmbedder::new(32);
    let pg = pg_for(&url, &e);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for (i, d) in dirs.iter().enumerate() {
        std::fs::write(
            d.path().join("_access.toml"),
            "teams = [\"staff\"]\nclassification = \"internal\"\n",
        )
        .unwrap();
        for j in 0..30 {
            std::fs::write(
                d.path().join(format!("n{j}.md")),
                format!("Folder {i} note {j} about the quarterly census."),
            )
            .unwrap();
        }
    }
    let forward = [dirs[0].path().to_path_buf(), dirs[1].path().to_path_buf()];
    let backward = [forward[1].clone(), forward[0].clone()];
    let runs: Vec<_> = [forward, backward]
        .into_iter()
        .map(|roots| {
            let pg = pg.clone();
            std::thread::spawn(move || {
                ingest_into(&backend(&pg), &roots, &HashEmbedder::new(32), &opts())
                    .map(|r| r.added)
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let added: Vec<usize> = runs
        .into_iter()
        .map(|h| h.join().unwrap().expect("no deadlock, no error"))
        .collect();
    // Whichever ran first added all 60; the other found them unchanged.
    assert_eq!(added.iter().sum::<usize>(), 60, "{added:?}");
    assert_eq!(pg.stats().unwrap().documents, 60);
}

/// A node keeps access sets' vectors between searches (`[store]
/// vector_cache_mb`): every write that adds, removes, replaces or moves a
/// chunk must show in the next search, exactly as a node that keeps none
/// (scoring inside PostgreSQL) answers, for every principal.
#[test]
fn kept_vectors_follow_every_write() {
    let url = fresh_db("keptvec");
    let kept = Arc::new(PgStore::open(&url, None, 2, meta("test", 3)).unwrap());
    let none = Arc::new(
        PgStore::open(&url, None, 2, meta("test", 3))
            .unwrap()
            .with_vector_cache(0),
    );
    let eng = Principal::new("e", &["eng"], Classification::Internal);
    let hr = Principal::new("h", &["hr"], Classification::Restricted);
    let both = Principal::new("b", &["eng", "hr"], Classification::Restricted);
    let nobody = Principal::new("n", &[] as &[&str], Classification::Restricted);
    let rule = |t: &str, c| Some(AccessRule::new(&[t], c).unwrap());
    let params = VectorParams {
        ef_search: 64,
        exact_threshold: 1000,
    };
    let q = [1.0f32, 0.2, 0.0];
    // The documents each principal finds, nearest first, on both nodes
    // (which must agree on ids and, within rounding, scores).
    let found = |p: &Principal| -> Vec<String> {
        let (a, _) = kept.vector_search(p, None, &q, 10, params).unwrap();
        let (b, _) = none.vector_search(p, None, &q, 10, params).unwrap();
        assert_eq!(
            a.iter().map(|x| x.0).collect::<Vec<_>>(),
            b.iter().map(|x| x.0).collect::<Vec<_>>(),
            "kept vectors and PostgreSQL disagree for {}",
            p.name
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x.1 - y.1).abs() < 1e-5, "{x:?} against {y:?}");
        }
        let ids: Vec<String> = a.iter().map(|x| x.0.to_string()).collect();
        let paths = |id: &String| {
            kept.select_as(&both, &format!("SELECT doc_id FROM chunks WHERE id = {id}"))
                .unwrap()
        };
        ids.iter()
            .map(|id| {
                let doc = paths(id)[0];
                format!("d{doc}")
            })
            .collect()
    };
    let doc_id = |path: &str| -> u64 {
        kept.select_as(
            &both,
            &format!("SELECT id FROM documents WHERE path = '{path}'"),
        )
        .unwrap()[0] as u64
    };
    // Documents of one chunk at `internal`.
    let put = |w: &mut PgWriter, path: &str, team: &str, v: [f32; 3]| {
        let r = rule(team, Classification::Internal);
        w.put(one_chunk_doc("/r", path, r, v.to_vec())).unwrap()
    };
    let mut w = PgWriter::open(kept.clone(), "c").unwrap();
    put(&mut w, "a.md", "eng", [1.0, 0.0, 0.0]);
    put(&mut w, "b.md", "eng", [0.0, 1.0, 0.0]);
    put(&mut w, "c.md", "hr", [1.0, 0.1, 0.0]);
    w.commit().unwrap();
    let (a, b, c) = (doc_id("a.md"), doc_id("b.md"), doc_id("c.md"));
    let d = |id: u64| format!("d{id}");
    assert_eq!(found(&eng), vec![d(a), d(b)]);
    assert_eq!(found(&hr), vec![d(c)]);
    assert_eq!(found(&both), vec![d(c), d(a), d(b)]);
    assert!(found(&nobody).is_empty());

    // A new document in a kept set.
    put(&mut w, "e.md", "eng", [1.0, 0.3, 0.0]);
    w.commit().unwrap();
    let e = doc_id("e.md");
    assert_eq!(found(&eng), vec![d(e), d(a), d(b)]);

    // A rule change moves a out of eng's set into hr's.
    w.set_access(a, rule("hr", Classification::Confidential), None)
        .unwrap();
    w.commit().unwrap();
    assert_eq!(found(&eng), vec![d(e), d(b)]);
    assert_eq!(found(&hr), vec![d(c), d(a)]);

    // A document replaced by a new version (its vector changed), and one
    // removed.
    put(&mut w, "b.md", "eng", [1.0, 0.2, 0.0]);
    w.remove(e).unwrap();
    w.commit().unwrap();
    let b2 = doc_id("b.md");
    assert_ne!(b, b2);
    assert_eq!(found(&eng), vec![d(b2)]);
    assert_eq!(found(&both), vec![d(b2), d(c), d(a)]);

    // Written by another node's writer (another process in production):
    // this node has no part in it and still sees it.
    let other = Arc::new(PgStore::open(&url, None, 2, meta("test", 3)).unwrap());
    let mut w2 = PgWriter::open(other, "c").unwrap();
    w2.remove(b2).unwrap();
    w2.commit().unwrap();
    assert!(found(&eng).is_empty());
    assert_eq!(found(&hr), vec![d(c), d(a)]);

    // An access set with nothing left, then filled again.
    put(&mut w, "f.md", "eng", [0.0, 0.0, 1.0]);
    w.commit().unwrap();
    assert_eq!(found(&eng), vec![d(doc_id("f.md"))]);
}

/// A node keeps one graph over every chunk's vector when they fit `[store]
/// vector_cache_mb`, built in the background after the first search that
/// could walk it. A principal who sees many chunks is then answered by
/// walking it: sets written since the graph was built are scanned from
/// their current rows instead, so every write shows in the very next
/// search, and nothing the principal may not see is ever returned.
#[test]
fn the_kept_graph_answers_like_an_exact_scan_and_follows_every_write() {
    const DIM: usize = 8;
    const DOCS: usize = 6_000;
    let url = fresh_db("keptgraph");
    let store = Arc::new(PgStore::open(&url, None, 2, meta("test", DIM)).unwrap());
    let teams = ["a", "b", "c", "d"];
    let all = Principal::new("all", &teams, Classification::Restricted);
    // Sees three quarters of the chunks: walks the graph too.
    let abc = Principal::new("abc", &teams[..3], Classification::Restricted);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    };
    // The corpus as the test knows it: path -> (team, vector).
    let mut corpus: std::collections::BTreeMap<String, (&str, Vec<f32>)> = Default::default();
    let rule = |t: &str, i: usize| {
        let c = if i.is_multiple_of(2) {
            Classification::Internal
        } else {
            Classification::Confidential
        };
        Some(AccessRule::new(&[t], c).unwrap())
    };
    let mut w = PgWriter::open(store.clone(), "c").unwrap();
    for i in 0..DOCS {
        let v: Vec<f32> = (0..DIM).map(|_| next()).collect();
        let (path, team) = (format!("d{i}.md"), teams[i % 4]);
        w.put(one_chunk_doc("/r", &path, rule(team, i / 4), v.clone()))
            .unwrap();
        corpus.insert(path, (team, v));
    }
    w.commit().unwrap();
    let params = VectorParams {
        ef_search: 64,
        exact_threshold: 1000,
    };
    let paths_of = |ids: &[u64]| -> Vec<String> {
        let by_id: std::collections::HashMap<u64, String> = store
            .chunks(&all, None, ids)
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.path))
            .collect();
        ids.iter().map(|id| by_id[id].clone()).collect()
    };
    let cos = |a: &[f32], b: &[f32]| {
        let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        d / (n(a) * n(b))
    };
    // The 10 nearest documents `p` may see, by brute force over the corpus.
    let truth = |corpus: &std::collections::BTreeMap<String, (&str, Vec<f32>)>,
                 p: &Principal,
                 q: &[f32]| {
        let mut s: Vec<(f32, String)> = corpus
            .iter()
            .filter(|(_, (t, _))| p.teams.iter().any(|x| x == t))
            .map(|(path, (_, v))| (cos(q, v), path.clone()))
            .collect();
        s.sort_by(|a, b| b.0.total_cmp(&a.0));
        s.into_iter().take(10).map(|x| x.1).collect::<Vec<_>>()
    };
    let search = |p: &Principal, q: &[f32]| {
        let (hits, plans) = store.vector_search(p, None, q, 10, params).unwrap();
        let ids: Vec<u64> = hits.iter().map(|h| h.0).collect();
        let paths = paths_of(&ids);
        (paths, plans)
    };
    let queries: Vec<Vec<f32>> = (0..20)
        .map(|_| (0..DIM).map(|_| next()).collect())
        .collect();

    // The first search starts building the graph; wait for it.
    search(&all, &queries[0]);
    let t = Instant::now();
    while hort::store::pg::warming_jobs().1 > 0 {
        assert!(t.elapsed() < Duration::from_secs(300), "graph not built");
        std::thread::sleep(Duration::from_millis(50));
    }
    let recall = |corpus: &std::collections::BTreeMap<String, (&str, Vec<f32>)>, p: &Principal| {
        let mut found = 0;
        for q in &queries {
            let (paths, plans) = search(p, q);
            assert_eq!(
                plans,
                vec![VectorPlan::Graph],
                "{} walks the kept graph",
                p.name
            );
            for path in &paths {
                let team = corpus[path].0;
                assert!(
                    p.teams.iter().any(|t| t == team),
                    "{path} is not {}'s",
                    p.name
                );
            }
            let want = truth(corpus, p, q);
            found += paths.iter().filter(|x| want.contains(x)).count();
        }
        found as f64 / (10 * queries.len()) as f64
    };
    assert!(recall(&corpus, &all) >= 0.95);
    assert!(recall(&corpus, &abc) >= 0.95);

    // A new document right at a question: first in the next search.
    let q = queries[1].clone();
    w.put(one_chunk_doc("/r", "new.md", rule("a", 0), q.clone()))
        .unwrap();
    w.commit().unwrap();
    corpus.insert("new.md".into(), ("a", q.clone()));
    assert_eq!(search(&all, &q).0[0], "new.md");
    assert_eq!(search(&abc, &q).0[0], "new.md");
    // Moved to a team abc is not in: gone for abc at once, not for all.
    let new_id = store
        .select_as(&all, "SELECT id FROM documents WHERE path = 'new.md'")
        .unwrap()[0] as u64;
    w.set_access(new_id, rule("d", 0), None).unwrap();
    w.commit().unwrap();
    corpus.insert("new.md".into(), ("d", q.clone()));
    assert!(!search(&abc, &q).0.contains(&"new.md".to_string()));
    assert_eq!(search(&all, &q).0[0], "new.md");
    // Removed: gone for everyone; the old nearest are back.
    w.remove(new_id).unwrap();
    w.commit().unwrap();
    corpus.remove("new.md");
    for p in [&all, &abc] {
        let (paths, plans) = search(p, &q);
        assert_eq!(plans, vec![VectorPlan::Graph]);
        assert!(!paths.contains(&"new.md".to_string()));
    }
    // Written sets are scanned, the rest still walked: recall holds.
    assert!(recall(&corpus, &all) >= 0.95);
    assert!(recall(&corpus, &abc) >= 0.95);
}

/// A node reads the current compaction's largest keyword blocks ahead of
/// searches, and keeps the words the corpus lacks as empty blocks (so that
/// a question with such a word is answered from kept blocks too): neither
/// may hide a write. A node that keeps nothing must answer alike, score
/// for score, through every write.
#[test]
fn kept_keyword_blocks_are_read_ahead_and_follow_every_write() {
    let url = fresh_db("keptblocks");
    let kept = Arc::new(PgStore::open(&url, None, 2, meta("test", 3)).unwrap());
    let none = Arc::new(
        PgStore::open(&url, None, 2, meta("test", 3))
            .unwrap()
            .with_keyword_cache(0),
    );
    let eng = Principal::new("e", &["eng"], Classification::Internal);
    let hr = Principal::new("h", &["hr"], Classification::Restricted);
    let both = Principal::new("b", &["eng", "hr"], Classification::Restricted);
    let rule = |t: &str| Some(AccessRule::new(&[t], Classification::Internal).unwrap());
    let text_doc = |path: &str, team: &str, text: &str| {
        let mut d = one_chunk_doc("/r", path, rule(team), vec![1.0, 0.0, 0.0]);
        let n = text.len() as u32;
        d.pages = vec![(1, text.to_string())];
        d.chunks[0].byte_end = n;
        d.chunks[0].char_end = n;
        d
    };
    let found = |p: &Principal, q: &str| -> Vec<String> {
        let a = keyword_keyed(kept.as_ref(), p, q, 10);
        let b = keyword_keyed(none.as_ref(), p, q, 10);
        assert_eq!(
            a, b,
            "kept blocks and none disagree for {} on {q:?}",
            p.name
        );
        a.into_iter().map(|(k, _)| k.0).collect()
    };
    let doc_id = |path: &str| -> u64 {
        kept.select_as(
            &both,
            &format!("SELECT id FROM documents WHERE path = '{path}'"),
        )
        .unwrap()[0] as u64
    };
    let mut w = PgWriter::open(kept.clone(), "c").unwrap();
    for i in 0..40 {
        let (team, port) = if i % 2 == 0 {
            ("eng", "rotterdam")
        } else {
            ("hr", "hamburg")
        };
        let text = format!(
            "harbour freight invoice {i} pallet {port} {}",
            "crane ".repeat(i % 5)
        );
        w.put(text_doc(&format!("d{i}.md"), team, &text)).unwrap();
    }
    w.commit().unwrap();
    w.compact(true).unwrap();
    let generation = count(&url, "SELECT generation FROM term_block_state");
    let blocks = count(&url, "SELECT count(*) FROM term_blocks") as usize;
    assert!(blocks > 10, "{blocks} blocks");

    // The first keyword search starts the read-ahead: every block fits.
    let first = found(&eng, "harbour crane");
    assert_eq!(first.len(), 10);
    assert!(first.iter().all(|p| {
        let i: usize = p[1..p.len() - 3].parse().unwrap();
        i.is_multiple_of(2)
    }));
    let t = Instant::now();
    while hort::store::pg::warming_jobs().1 > 0 {
        assert!(t.elapsed() < Duration::from_secs(60), "blocks not read");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(kept.kept_keyword_generation(), Some(generation));
    assert!(
        kept.kept_keyword_blocks() >= blocks,
        "{} < {blocks}",
        kept.kept_keyword_blocks()
    );
    assert_eq!(found(&hr, "hamburg crane").len(), 10);

    // A word the corpus lacks is kept as such ...
    let held = kept.kept_keyword_blocks();
    assert!(found(&eng, "zeppelin").is_empty());
    assert!(kept.kept_keyword_blocks() > held, "the absent word is kept");
    // ... and written later, it is found by the very next search (from
    // the rows written since the compaction), by its own team only.
    w.put(text_doc("z.md", "eng", "zeppelin over the harbour"))
        .unwrap();
    w.commit().unwrap();
    assert_eq!(found(&eng, "zeppelin"), vec!["z.md".to_string()]);
    assert!(found(&hr, "zeppelin").is_empty());
    // A rule change moves it to the other team at once; a block posting
    // of a moved chunk never counts for its old team.
    w.set_access(doc_id("z.md"), rule("hr"), None).unwrap();
    w.set_access(doc_id("d0.md"), rule("hr"), None).unwrap();
    w.commit().unwrap();
    assert!(found(&eng, "zeppelin").is_empty());
    assert_eq!(found(&hr, "zeppelin"), vec!["z.md".to_string()]);
    assert!(!found(&eng, "harbour rotterdam").contains(&"d0.md".to_string()));
    assert!(found(&hr, "rotterdam").contains(&"d0.md".to_string()));
    // Removed, it is gone from both teams.
    w.remove(doc_id("d2.md")).unwrap();
    w.commit().unwrap();
    assert!(!found(&eng, "rotterdam").contains(&"d2.md".to_string()));

    // A compaction replaces every block: the node keeps the new ones, and
    // answers as before.
    let before = found(&hr, "zeppelin harbour crane");
    w.compact(true).unwrap();
    let generation2 = count(&url, "SELECT generation FROM term_block_state");
    assert_ne!(generation, generation2);
    assert_eq!(found(&hr, "zeppelin harbour crane"), before);
    assert_eq!(kept.kept_keyword_generation(), Some(generation2));
}

/// The vector planner's chunk counts: only a node's first search waits for
/// them; after this node writes they are read again in the background,
/// and a search meanwhile plans with the counts at hand (which only choose
/// a plan: every plan finds the same hits, see the kept-vector tests).
#[test]
fn planner_counts_follow_writes_without_a_search_waiting() {
    let url = fresh_db("counts");
    let pg = Arc::new(PgStore::open(&url, None, 2, meta("test", 3)).unwrap());
    let eng = Principal::new("e", &["eng"], Classification::Internal);
    let hr = Principal::new("h", &["hr"], Classification::Restricted);
    let both = Principal::new("b", &["eng", "hr"], Classification::Restricted);
    let rule = |t: &[&str], c| Some(AccessRule::new(t, c).unwrap());
    let mut w = PgWriter::open(pg.clone(), "c").unwrap();
    let put = |w: &mut PgWriter, path: &str, teams: &[&str], c| {
        w.put(one_chunk_doc(
            "/r",
            path,
            rule(teams, c),
            vec![1.0, 0.0, 0.0],
        ))
        .unwrap()
    };
    for i in 0..3 {
        put(
            &mut w,
            &format!("e{i}.md"),
            &["eng"],
            Classification::Internal,
        );
    }
    put(&mut w, "s.md", &["eng", "hr"], Classification::Confidential);
    put(&mut w, "h.md", &["hr"], Classification::Restricted);
    w.commit().unwrap();
    // Per team and level: eng internal 3, eng and hr confidential 1 each,
    // hr restricted 1; a chunk counts once per team.
    assert_eq!(pg.planner_estimate(&eng).unwrap(), (3, 6));
    assert_eq!(pg.planner_estimate(&hr).unwrap(), (2, 6));
    assert_eq!(pg.planner_estimate(&both).unwrap(), (6, 6));

    put(&mut w, "e3.md", &["eng"], Classification::Internal);
    put(&mut w, "e4.md", &["eng"], Classification::Internal);
    w.remove(
        pg.select_as(&both, "SELECT id FROM documents WHERE path = 'h.md'")
            .unwrap()[0] as u64,
    )
    .unwrap();
    w.commit().unwrap();
    // The first search after the write does not wait for the new counts.
    assert_eq!(pg.planner_estimate(&eng).unwrap(), (3, 6));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = (
            pg.planner_estimate(&eng).unwrap(),
            pg.planner_estimate(&hr).unwrap(),
        );
        if now == ((5, 7), (1, 7)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the counts were not read again: {now:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A node keeps the texts of the chunks it read (all of them, read ahead,
/// when they fit `[store] text_cache_mb`) and serves a search's hits from
/// them only under the access sets' versions that search's own vector side
/// read as its principal. Two nodes, one keeping texts and one not, must
/// return the same chunks, texts, rules and verdicts for every principal
/// through every kind of write; a chunk kept from one principal's read is
/// never served to a principal who may not see it.
#[test]
fn kept_texts_are_served_only_as_the_search_may_see_them() {
    use hort::store::{ChunkVerdict, Verdict};
    let url = fresh_db("kepttexts");
    let kept = Arc::new(PgStore::open(&url, None, 2, meta("test", 3)).unwrap());
    let none = Arc::new(
        PgStore::open(&url, None, 2, meta("test", 3))
            .unwrap()
            .with_text_cache(0),
    );
    let (kb, nb) = (backend(&kept), backend(&none));
    let eng = Principal::new("e", &["eng"], Classification::Internal);
    let hr = Principal::new("h", &["hr"], Classification::Restricted);
    let both = Principal::new("b", &["eng", "hr"], Classification::Restricted);
    let rule = |t: &str, c| Some(AccessRule::new(&[t], c).unwrap());
    let params = VectorParams {
        ef_search: 64,
        exact_threshold: 1000,
    };
    let q = [1.0f32, 0.2, 0.0];
    let all_ids = || -> Vec<u64> {
        kept.select_as(&both, "SELECT id FROM chunks ORDER BY id")
            .unwrap()
            .into_iter()
            .map(|i| i as u64)
            .collect()
    };
    // One search on each node as `p`: its vector side, then every chunk id
    // there is (others' too) asked for through the same view, as a search
    // reads its hits. Both nodes must return the same.
    let read = |p: &Principal| -> Vec<hort::store::ChunkHit> {
        let ids = all_ids();
        let view = kb.reader();
        view.vector_search(p, None, &q, 10, params).unwrap();
        let a = view.chunks(p, None, &ids).unwrap();
        let view = nb.reader();
        view.vector_search(p, None, &q, 10, params).unwrap();
        let b = view.chunks(p, None, &ids).unwrap();
        assert_eq!(a, b, "kept texts and PostgreSQL disagree for {}", p.name);
        a
    };
    let paths = |hits: &[hort::store::ChunkHit]| -> Vec<String> {
        hits.iter().map(|h| h.path.clone()).collect()
    };
    let settle = || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while hort::store::pg::warming_jobs().1 > 0 {
            assert!(Instant::now() < deadline, "the read-ahead does not end");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let put = |w: &mut PgWriter, path: &str, team: &str, v: [f32; 3]| {
        let r = rule(team, Classification::Internal);
        w.put(one_chunk_doc("/r", path, r, v.to_vec())).unwrap()
    };
    let doc_id = |path: &str| -> u64 {
        kept.select_as(
            &both,
            &format!("SELECT id FROM documents WHERE path = '{path}'"),
        )
        .unwrap()[0] as u64
    };
    let mut w = PgWriter::open(kept.clone(), "c").unwrap();
    put(&mut w, "a.md", "eng", [1.0, 0.0, 0.0]);
    put(&mut w, "b.md", "eng", [0.0, 1.0, 0.0]);
    put(&mut w, "c.md", "hr", [1.0, 0.1, 0.0]);
    w.put(one_chunk_doc("/r", "norule.md", None, vec![1.0, 0.0, 0.0]))
        .unwrap();
    w.commit().unwrap();

    // hr reads c first: kept, and never served to eng.
    assert_eq!(paths(&read(&hr)), vec!["c.md"]);
    settle();
    assert_eq!(
        kept.kept_texts(),
        3,
        "every chunk with a rule read ahead, the one without none"
    );
    assert_eq!(none.kept_texts(), 0);
    assert_eq!(paths(&read(&eng)), vec!["a.md", "b.md"]);
    assert_eq!(paths(&read(&both)), vec!["a.md", "b.md", "c.md"]);
    // Without a search of its own, a view has no versions to check against
    // and reads the database: nothing hr may not see, whatever is kept.
    let ids = all_ids();
    assert_eq!(
        paths(&kb.reader().chunks(&eng, None, &ids).unwrap()),
        vec!["a.md", "b.md"]
    );
    // A view of one principal's search serves nobody else from its versions.
    let view = kb.reader();
    view.vector_search(&hr, None, &q, 10, params).unwrap();
    assert_eq!(
        paths(&view.chunks(&eng, None, &ids).unwrap()),
        vec!["a.md", "b.md"]
    );

    // A rule change moves a from eng's set to hr's.
    let a = doc_id("a.md");
    w.set_access(a, rule("hr", Classification::Confidential), None)
        .unwrap();
    w.commit().unwrap();
    assert_eq!(paths(&read(&eng)), vec!["b.md"]);
    let h = read(&hr);
    assert_eq!(paths(&h), vec!["a.md", "c.md"]);
    assert_eq!(h[0].access.classification, Classification::Confidential);

    // A verdict set and another node's removal show in the next search.
    let b = doc_id("b.md");
    w.set_verdicts(
        b,
        vec![ChunkVerdict {
            ord: 0,
            chunk_id: 0,
            verdict: Verdict {
                score: 0.9,
                reasons: vec!["rules".into()],
            },
        }],
    )
    .unwrap();
    w.commit().unwrap();
    let e = read(&eng);
    assert_eq!(e[0].injection.as_ref().map(|v| v.score), Some(0.9));
    let other = Arc::new(PgStore::open(&url, None, 2, meta("test", 3)).unwrap());
    let mut w2 = PgWriter::open(other, "c").unwrap();
    w2.remove(b).unwrap();
    w2.commit().unwrap();
    assert!(read(&eng).is_empty());
    assert_eq!(paths(&read(&both)), vec!["a.md", "c.md"]);

    // Writes made by hand, outside hort's writer (migration 15's triggers
    // renew the sets' versions): a verdict, a document's rule changed
    // (its row, pages and chunks), a document deleted. Each read compares the keeping node with the
    // database; without the triggers the kept node serves what it kept.
    for p in [&eng, &hr, &both] {
        read(p);
    }
    let mut sql = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let (a, c) = (doc_id("a.md"), doc_id("c.md"));
    sql.execute(
        "UPDATE chunks SET injection_score = 0.7, injection_reasons = '{rules}' WHERE doc_id = $1",
        &[&(a as i64)],
    )
    .unwrap();
    let h = read(&hr);
    assert_eq!(h[0].injection.as_ref().map(|v| v.score), Some(0.7));
    for table in ["documents", "pages", "chunks"] {
        let key = if table == "documents" { "id" } else { "doc_id" };
        sql.execute(
            &format!(
                "UPDATE {table} k SET teams = s.teams, classification = s.classification, acl = s.id
                 FROM access_sets s WHERE s.teams = '{{eng}}' AND k.{key} = $1"
            ),
            &[&(c as i64)],
        )
        .unwrap();
    }
    assert_eq!(paths(&read(&hr)), vec!["a.md"]);
    assert_eq!(paths(&read(&eng)), vec!["c.md"]);
    sql.execute("DELETE FROM documents WHERE id = $1", &[&(a as i64)])
        .unwrap();
    assert!(read(&hr).is_empty());
    assert_eq!(paths(&read(&both)), vec!["c.md"]);
}

/// A corpus whose texts will not fit `[store] text_cache_mb` is not read
/// ahead up to the budget (for chunks picked by id, not by use): the
/// read-ahead reads its first batch (2,000 chunks), sees that the corpus at
/// that size would not fit, and stops; searches then keep what they read,
/// served exactly as the database serves them.
#[test]
fn a_corpus_larger_than_the_text_budget_is_not_read_ahead() {
    let url = fresh_db("keptbig");
    // 1 MB: the read-ahead may use 7/8 of it. 5,000 chunks of 50 bytes
    // (~340 bytes kept each with path, rule and bookkeeping): the first
    // 2,000 fit, all 5,000 would not.
    let kept = Arc::new(
        PgStore::open(&url, None, 2, meta("test", 3))
            .unwrap()
            .with_text_cache(1),
    );
    let none = Arc::new(
        PgStore::open(&url, None, 2, meta("test", 3))
            .unwrap()
            .with_text_cache(0),
    );
    let (kb, nb) = (backend(&kept), backend(&none));
    let n = 5_000usize;
    let mut doc = one_chunk_doc(
        "/r",
        "big.md",
        Some(AccessRule::new(&["eng"], Classification::Internal).unwrap()),
        vec![1.0, 0.0, 0.0],
    );
    let segment = |i: usize| format!("{i:>5} {}\n", "x".repeat(43));
    let text: String = (0..n).map(segment).collect();
    let template = doc.chunks[0].clone();
    doc.chunks = (0..n)
        .map(|i| {
            let start = (i * 50) as u32;
            let mut c = template.clone();
            (c.byte_start, c.byte_end, c.char_start, c.char_end) =
                (start, start + 50, start, start + 50);
            c.embedding = vec![1.0, i as f32 / n as f32, 0.0];
            c
        })
        .collect();
    doc.pages = vec![(1, text)];
    let mut w = PgWriter::open(kept.clone(), "c").unwrap();
    w.put(doc).unwrap();
    w.commit().unwrap();

    let eng = Principal::new("e", &["eng"], Classification::Internal);
    let params = VectorParams {
        ef_search: 64,
        exact_threshold: 100_000,
    };
    let ids: Vec<u64> = kept
        .select_as(&eng, "SELECT id FROM chunks ORDER BY id")
        .unwrap()
        .into_iter()
        .map(|i| i as u64)
        .collect();
    assert_eq!(ids.len(), n);
    // A search as a node answers one: its vector side, then its hits' texts.
    let read = |b: &PgBackend, some: &[u64]| -> Vec<hort::store::ChunkHit> {
        let view = b.reader();
        view.vector_search(&eng, None, &[1.0, 0.5, 0.0], 10, params)
            .unwrap();
        view.chunks(&eng, None, some).unwrap()
    };
    let first = read(&kb, &ids[..3]);
    assert_eq!(first, read(&nb, &ids[..3]));
    assert_eq!(first[0].text, segment(0));
    let deadline = Instant::now() + Duration::from_secs(60);
    while hort::store::pg::warming_jobs().1 > 0 {
        assert!(Instant::now() < deadline, "the read-ahead does not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        kept.kept_texts(),
        2_000,
        "the first batch kept, then given up (read up to the budget: ~2,700)"
    );
    // Chunks past the first batch: read from the database, then kept.
    let late = &ids[4_000..4_010];
    let a = read(&kb, late);
    assert_eq!(a, read(&nb, late));
    assert_eq!(a[9].text, segment(4_009));
    assert_eq!(kept.kept_texts(), 2_010);
    assert_eq!(read(&kb, late), a, "served from what the node keeps");
}
