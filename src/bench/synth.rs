//! Synthetic indexes for scale measurements: realistic sizes (chunk text of
//! ~60 words, 384-dimensional unit vectors, several teams and levels) without
//! hours of embedding. Vectors are random; use them for memory and latency,
//! never for retrieval quality.

use std::path::Path;

use crate::acl::{AccessRule, Classification};
use crate::embed::normalize;
use crate::store::docs::DocRecord;
use crate::store::hnsw::GraphParams;
use crate::store::segment::{ChunkRecord, SegmentBuilder};
use crate::store::{IndexWriter, StoreError};

/// The id recorded in synthetic indexes (no real model made the vectors).
pub const EMBEDDER_ID: &str = "synthetic-384";
/// The teams synthetic documents are spread over.
pub const TEAMS: [&str; 10] = [
    "finance", "hr", "legal", "eng", "sales", "ops", "it", "board", "audit", "staff",
];

const WORDS: &[&str] = &[
    "freight",
    "harbour",
    "invoice",
    "pallet",
    "driver",
    "route",
    "customs",
    "warehouse",
    "contract",
    "delivery",
    "schedule",
    "container",
    "budget",
    "tariff",
    "shipment",
    "crane",
    "vessel",
    "rail",
    "truck",
    "depot",
    "forklift",
    "order",
    "claim",
    "audit",
    "policy",
    "salary",
    "approval",
    "travel",
    "expense",
    "server",
    "deploy",
    "incident",
    "backup",
    "customer",
    "supplier",
    "quarter",
    "revenue",
    "margin",
    "risk",
    "safety",
];

/// A small deterministic generator (xorshift), so runs are comparable.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (the same seed, the same sequence).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// A number in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// A random vector of length 1.
pub fn random_unit_vector(rng: &mut Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.unit()).collect();
    normalize(&mut v);
    v
}

/// A vocabulary with a natural-language-like (Zipf) frequency profile: the
/// real words above are the most frequent, followed by ~27k pseudo-words, so
/// posting lists are as skewed as in real text (a uniform 40-word vocabulary
/// would put every word in every chunk and make BM25 look far slower).
pub struct Vocabulary {
    words: Vec<String>,
    /// Cumulative weights 1/rank^1.07, scaled to u64.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    /// The vocabulary: common English words, then made-up ones.
    pub fn new() -> Vocabulary {
        const SYL: [&str; 30] = [
            "ka", "lo", "mi", "ner", "so", "tu", "vak", "ri", "pe", "dan", "gol", "fi", "ha", "jo",
            "bu", "cer", "wen", "tra", "sto", "ple", "mar", "ist", "ung", "ber", "ox", "eil",
            "qua", "zen", "rak", "pol",
        ];
        let mut words: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
        for a in SYL {
            for b in SYL {
                for c in SYL {
                    words.push(format!("{a}{b}{c}"));
                }
            }
        }
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|r| {
                total += 1.0 / ((r + 1) as f64).powf(1.07);
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    /// A word drawn by its Zipf weight.
    pub fn word(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cumulative.partition_point(|&c| c < u);
        &self.words[i.min(self.words.len() - 1)]
    }

    /// `words` words drawn by weight, as a sentence.
    pub fn sentence(&self, rng: &mut Rng, words: usize) -> String {
        let mut s = String::new();
        for i in 0..words {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.word(rng));
        }
        s.push('.');
        s
    }
}

impl Default for Vocabulary {
    fn default() -> Self {
        Vocabulary::new()
    }
}

/// The access rule of synthetic document `i`: one or two of ten teams, and a
/// level; roughly a tenth of the chunks per team.
pub fn rule_for(rng: &mut Rng) -> AccessRule {
    let a = TEAMS[rng.below(TEAMS.len())];
    let mut teams = vec![a];
    if rng.below(4) == 0 {
        teams.push(TEAMS[rng.below(TEAMS.len())]);
    }
    let level = Classification::from_level(rng.below(4) as u8).unwrap_or(Classification::Public);
    AccessRule::new(&teams, level).unwrap_or_else(|_| AccessRule {
        teams: vec!["staff".into()],
        classification: Classification::Public,
    })
}

/// Teams that see exactly one document in a hundred ([`RARE_TEAMS`]`[0]`)
/// and one in a thousand (`[1]`), by document id, so that benchmarks can
/// measure filters at 1 % and 0.1 % selectivity.
pub const RARE_TEAMS: [&str; 2] = ["project-x", "project-y"];

/// `rule` with the rare teams added to every 100th and 1000th document
/// (ids, not random draws: the rest of the synthetic corpus is unchanged).
fn with_rare_teams(rule: AccessRule, id: u64) -> AccessRule {
    let mut teams: Vec<&str> = rule.teams.iter().map(String::as_str).collect();
    for (every, team) in [(100, RARE_TEAMS[0]), (1000, RARE_TEAMS[1])] {
        if id.is_multiple_of(every) {
            teams.push(team);
        }
    }
    AccessRule::new(&teams, rule.classification).unwrap_or(rule)
}

/// Vectors with structure like a real embedding space: unit vectors around
/// `n` random centroids (cosine ≈ 0.8 to their centroid, ≈ 0.65 between
/// neighbours), so that nearest neighbours are meaningful and recall@10 of
/// an approximate search says something (uniform random vectors in 384
/// dimensions are all nearly equidistant).
pub struct Clusters {
    centroids: Vec<Vec<f32>>,
}

impl Clusters {
    /// `n` cluster centres in `dim` dimensions.
    pub fn new(seed: u64, dim: usize, n: usize) -> Clusters {
        let mut rng = Rng::new(seed);
        Clusters {
            centroids: (0..n.max(1))
                .map(|_| random_unit_vector(&mut rng, dim))
                .collect(),
        }
    }

    /// A vector near a random centre.
    pub fn sample(&self, rng: &mut Rng) -> Vec<f32> {
        let c = &self.centroids[rng.below(self.centroids.len())];
        // Uniform noise of unit variance per vector, scaled to 0.75 of the centroid.
        let scale = 0.75 * (12.0f32 / c.len() as f32).sqrt();
        let mut v: Vec<f32> = c.iter().map(|x| x + scale * rng.unit()).collect();
        normalize(&mut v);
        v
    }
}

/// Builds an index of `n_chunks` chunks (10 per document) in `dir`, recorded
/// as embedded by `embedder_id` (random vectors of its dimension).
pub fn build_index(
    dir: &Path,
    embedder_id: &str,
    n_chunks: usize,
    dim: usize,
    graph: GraphParams,
    seed: u64,
    progress: impl FnMut(usize),
) -> Result<(), StoreError> {
    build_index_with(
        dir,
        embedder_id,
        n_chunks,
        dim,
        graph,
        seed,
        progress,
        random_unit_vector,
    )
}

/// [`build_index`] with vectors from `vector`.
#[allow(clippy::too_many_arguments)]
pub fn build_index_with(
    dir: &Path,
    embedder_id: &str,
    n_chunks: usize,
    dim: usize,
    graph: GraphParams,
    seed: u64,
    mut progress: impl FnMut(usize),
    mut vector: impl FnMut(&mut Rng, usize) -> Vec<f32>,
) -> Result<(), StoreError> {
    let mut w = IndexWriter::open(dir, embedder_id, dim, "synthetic", graph)?;
    let mut rng = Rng::new(seed);
    let vocab = Vocabulary::new();
    let per_doc = 10;
    let per_segment = 200_000;
    let mut done = 0;
    while done < n_chunks {
        let in_seg = per_segment.min(n_chunks - done);
        let mut b = SegmentBuilder::new(dim);
        let mut staged = Vec::new();
        let mut made = 0;
        while made < in_seg {
            let n = per_doc.min(in_seg - made);
            let id = w.alloc_doc_id();
            let first = w.alloc_chunk_ids(n);
            let mut texts = Vec::with_capacity(n);
            let first_page = b.page_count() as u32;
            for c in 0..n {
                let text = format!(
                    "{} {} {}",
                    vocab.sentence(&mut rng, 20),
                    vocab.sentence(&mut rng, 20),
                    vocab.sentence(&mut rng, 20)
                );
                let page = b.add_page(c as u32 + 1, &text);
                let rec = ChunkRecord {
                    doc_id: id,
                    page_idx: page,
                    page_no: c as u32 + 1,
                    byte_start: 0,
                    byte_end: text.len() as u32,
                    char_start: 0,
                    char_end: text.chars().count() as u32,
                    hash: [0; 16],
                };
                b.add_chunk(first + c as u64, rec, &vector(&mut rng, dim))?;
                texts.push(text);
            }
            staged.push((
                DocRecord {
                    id,
                    root: "synthetic".into(),
                    path: format!("doc{id:07}.pdf"),
                    kind: "pdf".into(),
                    access: Some(with_rare_teams(rule_for(&mut rng), id)),
                    first_chunk: first,
                    n_chunks: n as u32,
                    first_page,
                    n_pages: n as u32,
                    paged: true,
                    ..Default::default()
                },
                texts,
            ));
            made += n;
        }
        let name = w.write_segment(b)?;
        for (mut d, texts) in staged {
            d.segment = name.clone();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            w.put_doc(d, &refs)?;
        }
        w.commit()?;
        done += in_seg;
        progress(done);
    }
    Ok(())
}
