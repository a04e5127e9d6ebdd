//! Property test of sensitivity routing: whatever the context's
//! classifications, the chain's providers (cloud or local, working or
//! failing) and the threshold, no cloud provider is ever *called* when the
//! context is at or above `local_only_from`, and the answer, if any, comes
//! from a local provider.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use hort::acl::{Classification, Principal};
use hort::config::{Config, Locality};
use hort::embed::HashEmbedder;
use hort::gateway::Gateway;
use hort::generate::provider::{ChatRequest, Completion, Provider, ProviderError};
use hort::generate::router::Policy;
use hort::generate::Generator;
use hort::ingest::chunk::ChunkParams;
use hort::ingest::loader::PdfIsolation;
use hort::ingest::{ingest, IngestOptions};
use hort::retrieve::Hit;
use hort::store::hnsw::GraphParams;
use hort::store::IndexReader;

struct Fake {
    name: String,
    locality: Locality,
    fails: bool,
    calls: Arc<AtomicUsize>,
    saw_levels: Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait]
impl Provider for Fake {
    fn name(&self) -> &str {
        &self.name
    }
    fn locality(&self) -> Locality {
        self.locality
    }
    async fn complete(
        &self,
        req: &ChatRequest,
        _d: Option<&UnboundedSender<String>>,
    ) -> Result<Completion, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.saw_levels.lock().unwrap().push(req.user.clone());
        if self.fails {
            return Err(ProviderError::Http {
                status: 503,
                retry_after: None,
                message: "down".into(),
            });
        }
        Ok(Completion {
            text: "An answer [1].".into(),
            ..Completion::default()
        })
    }
}

fn level(i: u8) -> Classification {
    Classification::from_level(i).unwrap()
}

fn hit(i: usize, c: Classification) -> Hit {
    Hit {
        chunk_id: format!("{i:016x}"),
        doc: format!("d{i}.txt"),
        page: None,
        start: 0,
        end: 20,
        score: 1.0,
        text: format!("secret marker {i} of level {c}"),
        classification: c,
        teams: vec!["t".into()],
        injection: None,
        ocr_confidence: None,
        id: i as u64,
        doc_id: i as u64,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_cloud_call_at_or_above_the_threshold(
        levels in proptest::collection::vec(0u8..4, 0..6),
        chain in proptest::collection::vec((proptest::bool::ANY, proptest::bool::ANY), 1..5),
        threshold in 1u8..4,
        fallback in proptest::bool::ANY,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // A tiny index, only for the answer check's keyword search.
        let src = tempfile::tempdir().unwrap();
        let idx = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("_access.toml"), "teams=[\"t\"]\nclassification=\"public\"\n").unwrap();
        std::fs::write(src.path().join("a.txt"), "placeholder text").unwrap();
        let opts = IngestOptions {
            chunk: ChunkParams { max_tokens: 50, overlap_tokens: 5, headings: true },
            max_file_bytes: 1 << 20,
            pdf: PdfIsolation::InProcess { timeout: Duration::from_secs(5) },
            parse_threads: 1, batch_size: 4, segment_chunks: 1000,
            graph: GraphParams { m: 4, ef_construction: 8 },
            progress: false,
        };
        ingest(idx.path(), &[src.path().to_path_buf()], &HashEmbedder::new(16), &opts).unwrap();
        let snap = IndexReader::open(idx.path()).unwrap().snapshot();

        let cfg = Config::parse(
            &format!("[routing]\nlocal_only_from = \"{}\"\nextractive_fallback = {fallback}\n", level(threshold)),
            std::path::Path::new("t.toml"),
            std::path::PathBuf::from("."),
        ).unwrap();
        let mut fakes = Vec::new();
        let mut providers: Vec<(Arc<dyn Provider>, Policy)> = Vec::new();
        for (i, (cloud, fails)) in chain.iter().enumerate() {
            let calls = Arc::new(AtomicUsize::new(0));
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let f = Fake {
                name: format!("p{i}"),
                locality: if *cloud { Locality::Cloud } else { Locality::Local },
                fails: *fails,
                calls: calls.clone(),
                saw_levels: seen.clone(),
            };
            fakes.push((*cloud, calls, seen));
            let mut pol = Policy::local_default();
            pol.max_retries = 1;
            providers.push((Arc::new(f), pol));
        }
        let g = Generator::with_providers(&cfg, Arc::new(Gateway::new(&cfg)), providers).unwrap();
        let hits: Vec<Hit> = levels.iter().enumerate().map(|(i, l)| hit(i, level(*l))).collect();
        let sensitivity = levels.iter().copied().max().map(level).unwrap_or(Classification::Public);
        let p = Principal::new("p", &["t"], Classification::Restricted);
        let r = rt.block_on(g.answer(&(snap.clone() as std::sync::Arc<dyn hort::store::IndexRead>), &p, "what is the marker", hits, None));
        let must_stay_local = sensitivity >= level(threshold);
        if must_stay_local {
            for (cloud, calls, _) in &fakes {
                if *cloud {
                    prop_assert_eq!(calls.load(Ordering::SeqCst), 0, "a cloud provider was called with {} context", sensitivity);
                }
            }
            if let Ok(a) = &r {
                prop_assert_eq!(a.route.locality, Locality::Local);
            }
        } else if let Ok(a) = &r {
            prop_assert!(a.route.sensitivity == sensitivity);
        }
        // Whoever was called never saw more than it was allowed.
        for (cloud, _, seen) in &fakes {
            if *cloud {
                for u in seen.lock().unwrap().iter() {
                    for l in Classification::ALL {
                        if l >= level(threshold) {
                            let needle = format!("of level {l}");
                            prop_assert!(!u.contains(&needle), "cloud saw {} text", l);
                        }
                    }
                }
            }
        }
    }
}
