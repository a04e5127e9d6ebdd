//! Property test of the security boundary: over random corpora, random access
//! rules and random principals, no vector, keyword or fused hit is ever
//! outside the principal's access, whichever plan (exact scan or graph) the
//! search takes, and restrictive filters still return every visible chunk
//! when k exceeds their number.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;

mod common;
use common::acl_corpus::{self, doc, level, TEAMS, WORDS};

use hort::acl::Principal;
use hort::embed::{Embedder, HashEmbedder};
use hort::ingest::chunk::ChunkParams;
use hort::ingest::loader::PdfIsolation;
use hort::ingest::{ingest, IngestOptions};
use hort::retrieve::{self, SearchParams};
use hort::store::docfilter::DocFilter;
use hort::store::hnsw::GraphParams;
use hort::store::IndexReader;

fn principal() -> impl Strategy<Value = (Vec<usize>, u8)> {
    (proptest::collection::vec(0..TEAMS.len() + 1, 0..3), 0u8..4)
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
        acl_corpus::write(src.path(), &docs);
        let e = HashEmbedder::new(32);
        let opts = IngestOptions {
            chunk: ChunkParams { max_tokens: 12, overlap_tokens: 3, headings: true },
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
            for id in r.hits.iter().map(|h| h.id).chain(r.vector.iter().map(|x| x.0)).chain(r.keyword.iter().map(|x| x.0)).chain(r.translated.iter().map(|x| x.0)) {
                prop_assert!(allowed.contains(&id), "hit {id} outside access or metadata filter");
            }
            let (v, _) = hort::store::plan::vector_search(&snap, &filter, Some(&mask), &e.embed_query(WORDS[1]).unwrap(), k, params.vector());
            prop_assert_eq!(v.len(), k.min(allowed.len()));
            for exact_threshold in [0usize, 1_000_000] {
                let params = SearchParams { k, candidates: k, ef_search: 8, exact_threshold, ..SearchParams::default() };
                let q = WORDS[k % WORDS.len()];
                let r = retrieve::search(&snap, &e, &p, &retrieve::Request { query: q, k, docs: None }, &params).unwrap();
                for h in &r.hits {
                    prop_assert!(visible.contains(&h.id), "fused hit {} not visible", h.id);
                }
                for (id, _) in r.vector.iter().chain(r.keyword.iter()).chain(r.translated.iter()) {
                    prop_assert!(visible.contains(id), "candidate {id} not visible");
                }
                // The vector side never starves: it returns min(k, visible) chunks.
                let (v, _) = hort::store::plan::vector_search(&snap, &filter, None, &e.embed_query(q).unwrap(), k, params.vector());
                prop_assert_eq!(v.len(), k.min(visible.len()));
                let kw = snap.keyword_search_filtered(&hort::store::keyword::KeywordQuery::of(q), &filter, None, 1000).unwrap();
                for (id, _) in &kw {
                    prop_assert!(visible.contains(id));
                }
            }
        }
    }
}
