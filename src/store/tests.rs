use super::docs::DocRecord;
use super::hnsw::GraphParams;
use super::segment::SegmentBuilder;
use super::*;
use crate::acl::{AccessRule, Classification, Principal};
use crate::embed::{Embedder, HashEmbedder};
use segment::ChunkRecord;

const G: GraphParams = GraphParams {
    m: 8,
    ef_construction: 32,
};

/// Writes one segment holding `docs` (path, text, rule) as one chunk each.
fn add_docs(w: &mut IndexWriter, docs: &[(&str, &str, Option<AccessRule>)]) -> Vec<u64> {
    let e = HashEmbedder::new(32);
    let mut b = SegmentBuilder::new(32);
    let mut recs = Vec::new();
    for (path, text, rule) in docs {
        let id = match w.docs().find("/root", path) {
            Some(d) => d.id,
            None => w.alloc_doc_id(),
        };
        let first = w.alloc_chunk_ids(1);
        let page = b.add_page(0, text);
        let v = e.embed_query(text).unwrap();
        b.add_chunk(
            first,
            ChunkRecord {
                doc_id: id,
                page_idx: page,
                page_no: 0,
                byte_start: 0,
                byte_end: text.len() as u32,
                char_start: 0,
                char_end: text.chars().count() as u32,
                hash: [0; 16],
            },
            &v,
        )
        .unwrap();
        recs.push((
            DocRecord {
                id,
                root: "/root".into(),
                path: path.to_string(),
                kind: "txt".into(),
                size: text.len() as u64,
                access: rule.clone(),
                first_chunk: first,
                n_chunks: 1,
                first_page: page,
                n_pages: 1,
                ..Default::default()
            },
            text.to_string(),
        ));
    }
    let name = w.write_segment(b).unwrap();
    recs.into_iter()
        .map(|(mut d, t)| {
            d.segment = name.clone();
            let id = d.id;
            w.put_doc(d, &[&t]).unwrap();
            id
        })
        .collect()
}

/// Chunk ids of `s`'s keyword hits for `q` that `p` may see, best first.
fn keyword_ids(s: &Snapshot, q: &str, p: &Principal, limit: usize) -> Vec<u64> {
    s.keyword_search_filtered(&keyword::KeywordQuery::of(q), &s.filter_for(p), None, limit)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn rule(teams: &[&str], c: Classification) -> Option<AccessRule> {
    Some(AccessRule::new(teams, c).unwrap())
}

fn open_writer(dir: &Path) -> IndexWriter {
    IndexWriter::open(dir, "hash-v1-32", 32, "test", G).unwrap()
}

#[test]
fn write_commit_read_and_filter() {
    let d = tempfile::tempdir().unwrap();
    let mut w = open_writer(d.path());
    add_docs(
        &mut w,
        &[
            (
                "pub.txt",
                "travel policy for everyone",
                rule(&["all"], Classification::Public),
            ),
            (
                "fin.txt",
                "travel budget of finance",
                rule(&["finance"], Classification::Confidential),
            ),
            ("none.txt", "travel notes without rule", None),
        ],
    );
    assert_eq!(w.commit().unwrap(), 1);
    drop(w);

    let r = IndexReader::open(d.path()).unwrap();
    let s = r.snapshot();
    assert_eq!(s.generation(), 1);
    assert_eq!(s.live_chunks(), 3);
    let everyone = Principal::new("e", &["all"], Classification::Public);
    let cfo = Principal::new("c", &["all", "finance"], Classification::Restricted);
    let intern = Principal::new("i", &["finance"], Classification::Internal);
    let kw = |p: &Principal| {
        let mut ids = keyword_ids(&s, "travel", p, 10);
        ids.sort();
        ids
    };
    assert_eq!(kw(&everyone), vec![0]);
    assert_eq!(kw(&cfo), vec![0, 1]);
    assert!(kw(&intern).is_empty(), "clearance below the classification");
    let root = Principal::new("r", &["nobody"], Classification::Restricted);
    assert!(kw(&root).is_empty(), "no rule: visible to nobody");
}

#[test]
fn access_change_remove_and_compact_keep_ids_and_text() {
    let d = tempfile::tempdir().unwrap();
    let mut w = open_writer(d.path());
    let ids = add_docs(
        &mut w,
        &[
            (
                "a.txt",
                "alpha report",
                rule(&["x"], Classification::Public),
            ),
            ("b.txt", "beta report", rule(&["x"], Classification::Public)),
            (
                "c.txt",
                "gamma report",
                rule(&["x"], Classification::Public),
            ),
            ("d.txt", "delta", rule(&["x"], Classification::Public)),
            ("e.txt", "epsilon", rule(&["x"], Classification::Public)),
        ],
    );
    w.commit().unwrap();
    w.set_access(ids[0], rule(&["y"], Classification::Public), None)
        .unwrap();
    w.remove_doc(ids[1]);
    w.remove_doc(ids[3]);
    w.commit().unwrap();
    assert_eq!(
        w.compact(false).unwrap().merged_segments,
        0,
        "3 of 5 live: no need yet"
    );
    w.remove_doc(ids[4]);
    let stats = w.compact(false).unwrap();
    assert_eq!(stats.dropped_chunks, 3, "{stats:?}");
    w.commit().unwrap();
    drop(w);
    let r = IndexReader::open(d.path()).unwrap();
    let s = r.snapshot();
    assert_eq!(s.segments.len(), 1);
    assert_eq!(
        s.segments[0].len(),
        2,
        "the removed chunk is gone after compaction"
    );
    let x = Principal::new("x", &["x"], Classification::Public);
    let y = Principal::new("y", &["y"], Classification::Public);
    let hits = |p: &Principal| keyword_ids(&s, "report", p, 10);
    assert_eq!(hits(&x), vec![2]);
    assert_eq!(hits(&y), vec![0]);
    let loc = s.locate(0).unwrap();
    assert_eq!(
        s.segments[loc.segment].chunk_text(loc.row).unwrap(),
        "alpha report"
    );
    // Only files of the current generation remain.
    let seg_files = std::fs::read_dir(d.path().join("segments"))
        .unwrap()
        .count();
    assert_eq!(seg_files, 1);
}

#[test]
fn a_second_writer_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let _w = open_writer(d.path());
    match IndexWriter::open(d.path(), "hash-v1-32", 32, "test", G) {
        Err(StoreError::Locked { .. }) => {}
        other => panic!("expected Locked, got {:?}", other.err()),
    }
}

#[test]
fn another_model_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut w = open_writer(d.path());
    add_docs(&mut w, &[("a.txt", "x", None)]);
    w.commit().unwrap();
    drop(w);
    let e = IndexWriter::open(d.path(), "other-model", 32, "test", G)
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::ModelMismatch { .. }), "{e}");
    assert!(e.to_string().contains("other-model"));
}

#[test]
fn reader_sees_old_generation_until_refresh_and_missing_index_is_clear() {
    let d = tempfile::tempdir().unwrap();
    assert!(matches!(
        IndexReader::open(d.path()),
        Err(StoreError::NotFound(_))
    ));
    let mut w = open_writer(d.path());
    add_docs(
        &mut w,
        &[("a.txt", "one", rule(&["x"], Classification::Public))],
    );
    w.commit().unwrap();
    let r = IndexReader::open(d.path()).unwrap();
    let old = r.snapshot();
    add_docs(
        &mut w,
        &[("b.txt", "two", rule(&["x"], Classification::Public))],
    );
    w.commit().unwrap();
    assert_eq!(old.live_chunks(), 1, "a snapshot never changes");
    assert!(r.refresh().unwrap());
    assert_eq!(r.snapshot().live_chunks(), 2);
    assert_eq!(old.live_chunks(), 1);
}

/// A keyword index that is lost or damaged (the meta file garbled, or a
/// file it names gone, as the merge race of 2026-12-07 left one) is
/// rebuilt from the segments when the index is next opened.
#[test]
fn damaged_keyword_index_is_rebuilt_from_segments() {
    for damage in ["lost", "garbled meta", "term files gone"] {
        let d = tempfile::tempdir().unwrap();
        let mut w = open_writer(d.path());
        add_docs(
            &mut w,
            &[(
                "a.txt",
                "kubernetes upgrade",
                rule(&["x"], Classification::Public),
            )],
        );
        w.commit().unwrap();
        drop(w);
        let kw = d.path().join("keyword");
        if damage == "lost" {
            std::fs::remove_dir_all(&kw).unwrap();
        } else if damage == "garbled meta" {
            std::fs::write(kw.join("meta.json"), b"{\"segments\": [").unwrap();
        } else {
            let mut gone = 0;
            for e in std::fs::read_dir(&kw).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "term") {
                    std::fs::remove_file(p).unwrap();
                    gone += 1;
                }
            }
            assert!(gone > 0, "no term file to remove");
        }
        // A reader cannot repair it, and says who can.
        let e = IndexReader::open(d.path())
            .err()
            .expect("a damaged index opened");
        assert!(
            matches!(&e, StoreError::KeywordDamaged(_)) && e.to_string().contains("hort compact"),
            "{damage}: {e}"
        );
        // Opening the store mends it, unless another writer holds the
        // index: then it is that writer's to mend, and the error says so.
        let spec = || embedded::EmbeddedSpec {
            dir: d.path().to_path_buf(),
            embedder: "hash-v1-32".into(),
            dim: 32,
            chunker: "test".into(),
            graph: G,
            segment_chunks: 1000,
        };
        let other = fsutil::DirLock::try_acquire(d.path()).unwrap().unwrap();
        let e = embedded::EmbeddedStore::open(spec(), false)
            .err()
            .expect("opened");
        assert!(matches!(e, StoreError::KeywordDamaged(_)), "{damage}: {e}");
        drop(other);
        let store = embedded::EmbeddedStore::open(spec(), false).unwrap();
        let p = Principal::new("x", &["x"], Classification::Public);
        assert_eq!(
            keyword_ids(&store.snapshot(), "kubernetes", &p, 5).len(),
            1,
            "{damage}: not rebuilt"
        );
    }
}

#[test]
fn keyword_access_bitsets_are_cached_per_filter_and_never_outlive_a_generation() {
    let d = tempfile::tempdir().unwrap();
    let mut w = open_writer(d.path());
    // Two segments, so the per-segment bitsets are exercised.
    add_docs(
        &mut w,
        &[
            (
                "a.txt",
                "harbour crane",
                rule(&["ops"], Classification::Internal),
            ),
            (
                "b.txt",
                "harbour fees",
                rule(&["finance"], Classification::Confidential),
            ),
        ],
    );
    w.commit().unwrap();
    add_docs(
        &mut w,
        &[
            (
                "c.txt",
                "harbour board",
                rule(&["board"], Classification::Restricted),
            ),
            ("d.txt", "harbour draft", None),
        ],
    );
    w.commit().unwrap();
    let r = IndexReader::open(d.path()).unwrap();
    let principals = [
        Principal::new("ops", &["ops"], Classification::Internal),
        Principal::new("fin", &["finance"], Classification::Confidential),
        Principal::new("fin-low", &["finance"], Classification::Internal),
        Principal::new("board", &["board", "ops"], Classification::Restricted),
        Principal::new("stranger", &["nobody"], Classification::Restricted),
    ];
    let paths = |s: &Snapshot, p: &Principal| -> Vec<String> {
        let mut out: Vec<String> = keyword_ids(s, "harbour", p, 10)
            .into_iter()
            .map(|id| {
                let loc = s.locate(id).unwrap();
                let doc = s.segments[loc.segment].chunk(loc.row).doc_id;
                s.docs.get(doc).unwrap().path.clone()
            })
            .collect();
        out.sort();
        out
    };
    let want: [&[&str]; 5] = [&["a.txt"], &["b.txt"], &[], &["a.txt", "c.txt"], &[]];
    let s = r.snapshot();
    // Interleaved and repeated: every answer after the first comes from the cache.
    for round in 0..3 {
        for (p, w) in principals.iter().zip(want) {
            assert_eq!(paths(&s, p), w, "{} in round {round}", p.name);
        }
    }
    // Tighten a rule: the next generation's snapshot must not reuse old bits.
    let a = w.docs().find("/root", "a.txt").unwrap().id;
    w.set_access(a, rule(&["ops"], Classification::Restricted), None)
        .unwrap();
    w.commit().unwrap();
    r.refresh().unwrap();
    let s2 = r.snapshot();
    assert!(
        paths(&s2, &principals[0]).is_empty(),
        "ops/internal lost a.txt"
    );
    assert_eq!(paths(&s2, &principals[3]), ["a.txt", "c.txt"]);
    // The old snapshot still answers as of its generation.
    assert_eq!(paths(&s, &principals[0]), ["a.txt"]);
}

#[test]
fn an_index_of_raw_vectors_stays_usable_once_its_model_has_a_space() {
    use super::embedder_compatible as ok;
    assert!(ok("m/1+c/1", "m/1+c/1"));
    assert!(ok("m/1", "m/1+c/1"), "written before the space: stays raw");
    assert!(ok("m/1", "m/1"));
    assert!(!ok("m/1+c/1", "m/1"), "centred vectors searched as raw");
    assert!(!ok("m/1+c/1", "m/1+c/2"), "other means");
    assert!(!ok("n/1", "m/1+c/1"));
    assert!(!ok("m/1+c/1", "m/1+c/1+x"));
}
