//! Retrieval behaviour beyond access: metadata filters inside both searches,
//! de-duplication and per-document diversity, the planner's choices, and
//! consistent snapshots while a writer commits.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hort::acl::{Classification, Principal};
use hort::embed::{Embedder, HashEmbedder};
use hort::ingest::{ingest, IngestOptions};
use hort::retrieve::{self, Request, SearchParams, VectorPlan};
use hort::store::docfilter::DocFilter;
use hort::store::IndexReader;

fn opts(max_tokens: usize) -> IngestOptions {
    common::index_opts(max_tokens, max_tokens / 4, 8)
}

fn write(root: &Path, rel: &str, text: &str, days_ago: u64) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    let t = SystemTime::now() - Duration::from_secs(days_ago * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn rule(root: &Path, dir: &str, teams: &str) {
    std::fs::create_dir_all(root.join(dir)).unwrap();
    std::fs::write(
        root.join(dir).join("_access.toml"),
        format!("teams = [{teams}]\nclassification = \"public\"\n"),
    )
    .unwrap();
}

fn days_ago(d: u64) -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - d * 86_400;
    let days = secs / 86_400;
    // civil from days (Hinnant)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

#[test]
fn metadata_filters_apply_inside_both_searches() {
    let src = tempfile::tempdir().unwrap();
    let idx = tempfile::tempdir().unwrap();
    let r = src.path();
    rule(r, "", "\"staff\"");
    write(
        r,
        "finance/budget.txt",
        "travel budget approval for finance",
        1,
    );
    write(
        r,
        "finance/old-budget.md",
        "travel budget approval from last decade",
        400,
    );
    write(
        r,
        "finance-old/archive.txt",
        "travel budget approval archive",
        1,
    );
    write(
        r,
        "eng/runbook.html",
        "<p>travel budget approval for engineers</p>",
        1,
    );
    let e = HashEmbedder::new(64);
    ingest(idx.path(), &[r.to_path_buf()], &e, &opts(40)).unwrap();
    let reader = IndexReader::open(idx.path()).unwrap();
    let snap = reader.snapshot();
    let p = Principal::new("s", &["staff"], Classification::Public);
    let params = SearchParams {
        exact_threshold: 0, // exercise the graph path with the mask
        ..SearchParams::default()
    };
    let run = |f: DocFilter| -> (Vec<String>, Vec<String>) {
        let c = f.compile().unwrap();
        let req = Request {
            query: "travel budget approval",
            k: 10,
            docs: Some(&c),
        };
        let res = retrieve::search(&snap, &e, &p, &req, &params).unwrap();
        let docs_of = |ids: &[(u64, f32)]| -> Vec<String> {
            let mut v: Vec<String> = ids
                .iter()
                .map(|(id, _)| {
                    let loc = snap.locate(*id).unwrap();
                    let d = snap.segments[loc.segment].chunk(loc.row).doc_id;
                    snap.docs.get(d).unwrap().path.clone()
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let hits: Vec<String> = res.hits.iter().map(|h| h.doc.clone()).collect();
        let mut both = docs_of(&res.vector);
        both.extend(docs_of(&res.keyword));
        both.sort();
        both.dedup();
        let mut hits = hits;
        hits.sort();
        hits.dedup();
        (hits, both)
    };
    let (hits, cand) = run(DocFilter {
        path_prefix: Some("finance".into()),
        ..Default::default()
    });
    assert_eq!(hits, vec!["finance/budget.txt", "finance/old-budget.md"]);
    assert_eq!(cand, hits, "no candidate outside the prefix on either side");
    let (hits, cand) = run(DocFilter {
        file_types: Some(vec!["html".into(), "md".into()]),
        ..Default::default()
    });
    assert_eq!(hits, vec!["eng/runbook.html", "finance/old-budget.md"]);
    assert_eq!(cand, hits);
    let (hits, cand) = run(DocFilter {
        modified_before: Some(days_ago(30)),
        ..Default::default()
    });
    assert_eq!(hits, vec!["finance/old-budget.md"]);
    assert_eq!(cand, hits);
    let (hits, _) = run(DocFilter {
        modified_after: Some(days_ago(30)),
        path_prefix: Some("finance/".into()),
        ..Default::default()
    });
    assert_eq!(hits, vec!["finance/budget.txt"]);
}

#[test]
fn overlapping_chunks_and_per_document_limits() {
    let src = tempfile::tempdir().unwrap();
    let idx = tempfile::tempdir().unwrap();
    rule(src.path(), "", "\"staff\"");
    let long: String = (0..40)
        .map(|i| format!("Sentence {i} about the harbour crane maintenance schedule. "))
        .collect();
    write(src.path(), "crane.txt", &long, 1);
    write(
        src.path(),
        "other.txt",
        "The harbour crane was repaired.",
        1,
    );
    let e = HashEmbedder::new(64);
    // 40-token chunks of 9-token sentences with 10 tokens of overlap: one
    // sentence is shared by neighbouring chunks.
    ingest(idx.path(), &[src.path().to_path_buf()], &e, &opts(40)).unwrap();
    let reader = IndexReader::open(idx.path()).unwrap();
    let snap = reader.snapshot();
    let p = Principal::new("s", &["staff"], Classification::Public);
    let req = Request {
        query: "harbour crane maintenance",
        k: 20,
        docs: None,
    };
    let hits = retrieve::search(&snap, &e, &p, &req, &SearchParams::default())
        .unwrap()
        .hits;
    for (i, a) in hits.iter().enumerate() {
        for b in &hits[i + 1..] {
            let overlap = a.doc == b.doc && a.page == b.page && a.start < b.end && b.start < a.end;
            assert!(
                !overlap,
                "{}..{} overlaps {}..{}",
                a.start, a.end, b.start, b.end
            );
        }
    }
    let without = SearchParams {
        dedupe_overlaps: false,
        ..SearchParams::default()
    };
    let raw = retrieve::search(&snap, &e, &p, &req, &without)
        .unwrap()
        .hits;
    let overlapping = raw.iter().enumerate().any(|(i, a)| {
        raw[i + 1..]
            .iter()
            .any(|b| a.doc == b.doc && a.start < b.end && b.start < a.end)
    });
    assert!(overlapping, "there were overlaps to remove");
    let one = SearchParams {
        max_per_doc: 1,
        ..SearchParams::default()
    };
    let diverse = retrieve::search(&snap, &e, &p, &req, &one).unwrap().hits;
    let docs: Vec<&str> = diverse.iter().map(|h| h.doc.as_str()).collect();
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert_ne!(docs[0], docs[1]);
}

#[test]
fn planner_picks_exact_graph_and_falls_back() {
    let src = tempfile::tempdir().unwrap();
    let idx = tempfile::tempdir().unwrap();
    let r = src.path();
    rule(r, "many", "\"staff\"");
    for i in 0..300 {
        write(
            r,
            &format!("many/d{i}.txt"),
            &format!("note {i} about topic {}", i % 17),
            1,
        );
    }
    // Five documents in two teams: the per-team counts double-count them.
    rule(r, "pair", "\"a\", \"b\"");
    for i in 0..5 {
        write(r, &format!("pair/p{i}.txt"), &format!("pair note {i}"), 1);
    }
    let e = HashEmbedder::new(32);
    ingest(idx.path(), &[r.to_path_buf()], &e, &opts(40)).unwrap();
    let reader = IndexReader::open(idx.path()).unwrap();
    let snap = reader.snapshot();
    let q = e.embed_query("topic 3").unwrap();
    let staff = snap.filter_for(&Principal::new("s", &["staff"], Classification::Public));
    let ab = snap.filter_for(&Principal::new("ab", &["a", "b"], Classification::Public));
    assert_eq!(snap.estimate_visible(0, &ab), 10, "an upper bound");
    let plan = |f, threshold, k| {
        let p = SearchParams {
            exact_threshold: threshold,
            ..SearchParams::default()
        };
        hort::store::plan::vector_search(&snap, f, None, &q, k, p.vector())
    };
    assert_eq!(plan(&staff, 1000, 5).1, vec![VectorPlan::Exact]);
    assert_eq!(plan(&staff, 10, 5).1, vec![VectorPlan::Graph]);
    // Estimated 10, really 5: the graph cannot deliver 8, the exact scan takes over.
    let (hits, plans) = plan(&ab, 0, 8);
    assert_eq!(plans, vec![VectorPlan::GraphThenExact]);
    assert_eq!(hits.len(), 5);
}

#[test]
fn readers_see_whole_generations_while_a_writer_commits() {
    let src = tempfile::tempdir().unwrap();
    let idx = tempfile::tempdir().unwrap();
    let root = src.path().to_path_buf();
    rule(&root, "", "\"staff\"");
    write(&root, "seed.txt", "marker seed document", 1);
    let e = Arc::new(HashEmbedder::new(32));
    ingest(
        idx.path(),
        std::slice::from_ref(&root),
        e.as_ref(),
        &opts(40),
    )
    .unwrap();
    let reader = Arc::new(IndexReader::open(idx.path()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (reader, stop, e) = (reader.clone(), stop.clone(), e.clone());
        readers.push(std::thread::spawn(move || {
            let p = Principal::new("s", &["staff"], Classification::Public);
            let mut last_gen = 0;
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                reader.refresh().unwrap();
                let snap = reader.snapshot();
                assert!(snap.generation() >= last_gen, "generations never go back");
                last_gen = snap.generation();
                // Every document of a snapshot is complete and searchable in it.
                let f = snap.filter_for(&p);
                let kw = snap
                    .keyword_search_filtered(
                        &hort::store::keyword::KeywordQuery::of("marker"),
                        &f,
                        None,
                        1000,
                    )
                    .unwrap();
                assert_eq!(
                    kw.len(),
                    snap.docs.len(),
                    "keyword side matches the document table"
                );
                for (id, _) in &kw {
                    assert!(
                        snap.locate(*id).is_some(),
                        "keyword hit {id} not in this snapshot's segments"
                    );
                }
                let req = Request {
                    query: "marker",
                    k: 1000,
                    docs: None,
                };
                let r = retrieve::search(&snap, e.as_ref(), &p, &req, &SearchParams::default())
                    .unwrap();
                assert_eq!(r.vector.len(), snap.live_chunks());
                seen += 1;
            }
            (last_gen, seen)
        }));
    }
    for i in 0..12 {
        write(
            &root,
            &format!("doc{i}.txt"),
            &format!("marker document number {i}"),
            1,
        );
        ingest(
            idx.path(),
            std::slice::from_ref(&root),
            e.as_ref(),
            &opts(40),
        )
        .unwrap();
    }
    let final_gen = IndexReader::open(idx.path())
        .unwrap()
        .snapshot()
        .generation();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let (last, seen) = r.join().unwrap();
        assert!(seen > 5, "readers ran");
        assert_eq!(last, final_gen, "readers reached the last generation");
    }
}
