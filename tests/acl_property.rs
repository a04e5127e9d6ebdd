//! Property test of the security boundary: over random corpora, random access
//! rules and random principals, no vector, keyword or fused hit is ever
//! outside the principal's access, whichever plan (exact scan or graph) the
//! search takes, and restrictive filters still return every visible chunk
//! when k exceeds their number.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;

use hort::acl::{Classification, Principal};
use hort::embed::{Embedder, HashEmbedder};
use hort::ingest::chunk::ChunkParams;
use hort::ingest::loader::PdfIsolation;
use hort::ingest::{ingest, IngestOptions};
use hort::retrieve::{self, SearchParams};
use hort::store::docfilter::DocFilter;
use hort::store::hnsw::GraphParams;
use hort::store::IndexReader;

const TEAMS: &[&str] = &["finance", "hr", "legal", "eng", "sales"];
const WORDS: &[&str] = &[
    "budget", "salary", "contract", "server", "invoice", "travel", "policy",
];

#[derive(Debug, Clone)]
struct Doc {
    rule: Option<(Vec<usize>, u8)>,
    words: Vec<usize>,
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        proptest::option::weighted(
            0.85,
            (proptest::collection::vec(0..TEAMS.len(), 1..3), 0u8..4),
        ),
        proptest::collection::vec(0..WORDS.len(), 3..40),
    )
        .prop_map(|(rule, words)| Doc { rule, words })
}

fn principal() -> impl Strategy<Value = (Vec<usize>, u8)> {
    (proptest::collection::vec(0..TEAMS.len() + 1, 0..3), 0u8..4)
}

fn level(l: u8) -> Classification {
    Classification::from_level(l).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_hit_outside_access(
        docs in proptest::collection::vec(doc(), 1..40),
        principals in proptest::collection::vec(principal(), 1..5),
        k in 1usize..60,
        prefix in proptest::option::of(0usize..40),
        md_only in proptest::bool::ANY,
    ) {
        let src = tempfile::tempdir().unwrap();
        let idx = tempfile::tempdir().unwrap();
        for (i, d) in docs.iter().enumerate() {
            let dir = src.path().join(format!("d{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let text: Vec<&str> = d.words.iter().map(|&w| WORDS[w]).collect();
            let name = if d.words[0] % 2 == 0 { "doc.md" } else { "doc.txt" };
            std::fs::write(dir.join(name), format!("{}.", text.join(" "))).unwrap();
            if let Some((teams, l)) = &d.rule {
                let teams: Vec<String> = teams.iter().map(|&t| format!("\"{}\"", TEAMS[t])).collect();
                std::fs::write(
                    dir.join("_access.toml"),
                    format!("teams = [{}]\nclassification = \"{}\"\n", teams.join(","), level(*l)),
                ).unwrap();
            }
        }
        let e = HashEmbedder::new(32);
        let opts = IngestOptions {
            chunk: ChunkParams { max_tokens: 12, overlap_tokens: 3 },
            max_file_bytes: 1 << 20,
            pdf: PdfIsolation::InProcess { timeout: Duration::from_secs(5) },
            parse_threads: 2,
            batch_size: 16,
            segment_chunks: 1000,
            graph: GraphParams { m: 4, ef_construction: 16 },
            progress: false,
        };
        ingest(idx.path(), &[src.path().to_path_buf()], &e, &opts).unwrap();
        let reader = IndexReader::open(idx.path()).unwrap();
        let snap = reader.snapshot();
        for (teams, l) in &principals {
            // Team index TEAMS.len() stands for a team the index has never seen.
            let names: Vec<String> = teams
                .iter()
                .map(|&t| TEAMS.get(t).map(|s| s.to_string()).unwrap_or_else(|| "ghost".into()))
                .collect();
            let p = Principal::new("p", &names, level(*l));
            let visible: HashSet<u64> = snap
                .docs
                .iter()
                .filter(|d| p.can_see(d.access.as_ref()))
                .flat_map(|d| d.chunk_ids())
                .collect();
            let filter = snap.filter_for(&p);
            // The same checks with a metadata filter: hits must be visible *and* match it.
            let meta = DocFilter {
                path_prefix: prefix.map(|j| format!("d{j}")),
                file_types: md_only.then(|| vec!["md".to_string()]),
                ..DocFilter::default()
            }
            .compile()
            .unwrap();
            let allowed: HashSet<u64> = snap
                .docs
                .iter()
                .filter(|d| p.can_see(d.access.as_ref()) && meta.matches(d))
                .flat_map(|d| d.chunk_ids())
                .collect();
            let mask = snap.doc_mask(&meta);
            let params = SearchParams { k, candidates: k, ef_search: 8, exact_threshold: 0, ..SearchParams::default() };
            let r = retrieve::search(&snap, &e, &p, &retrieve::Request { query: WORDS[0], k, docs: Some(&meta) }, &params).unwrap();
            for id in r.hits.iter().map(|h| h.id).chain(r.vector.iter().map(|x| x.0)).chain(r.keyword.iter().map(|x| x.0)) {
                prop_assert!(allowed.contains(&id), "hit {id} outside access or metadata filter");
            }
            let (v, _) = retrieve::vector_search(&snap, &filter, Some(&mask), &e.embed_query(WORDS[1]).unwrap(), k, &params);
            prop_assert_eq!(v.len(), k.min(allowed.len()));
            for exact_threshold in [0usize, 1_000_000] {
                let params = SearchParams { k, candidates: k, ef_search: 8, exact_threshold, ..SearchParams::default() };
                let q = WORDS[k % WORDS.len()];
                let r = retrieve::search(&snap, &e, &p, &retrieve::Request { query: q, k, docs: None }, &params).unwrap();
                for h in &r.hits {
                    prop_assert!(visible.contains(&h.id), "fused hit {} not visible", h.id);
                }
                for (id, _) in r.vector.iter().chain(r.keyword.iter()) {
                    prop_assert!(visible.contains(id), "candidate {id} not visible");
                }
                // The vector side never starves: it returns min(k, visible) chunks.
                let (v, _) = retrieve::vector_search(&snap, &filter, None, &e.embed_query(q).unwrap(), k, &params);
                prop_assert_eq!(v.len(), k.min(visible.len()));
                let kw = snap.keyword_search(q, &filter, None, 1000).unwrap();
                for (id, _) in &kw {
                    prop_assert!(visible.contains(id));
                }
            }
        }
    }
}
