//! The answer cache: what a provider answered to a question over one exact
//! context, reused for any caller who would send the provider that same
//! context.
//!
//! Why it is safe to share: the key is made of the normalised question and
//! the *context* — the ordered ids and content versions of the chunks the
//! caller's own access-filtered retrieval produced, the provider chain and
//! its models, the prompt and the policies in force. Retrieval always runs;
//! only the provider call is skipped. Two callers meet on one entry only if
//! the provider would have seen exactly the same thing from both, so no
//! entry can carry what a caller may not see, and a changed document
//! changes its chunks' versions and so every key that used it. The stored
//! completion is kept with personal data masked (placeholders of this
//! context) and unmasked per request; the output checks and the citation
//! check run again for each caller.
//!
//! The semantic cache (teams opt in) reuses an entry for a question that
//! means the same — embedding similarity at or above the configured level,
//! the *same context*, the same [`facets`] (numbers, negation, direction,
//! currencies, acronyms), and a writer who shares an opted-in team.
//!
//! Entries live behind [`CacheStore`]: a `redb` file in the index directory
//! ([`embedded::RedbCache`]) or a table every node shares on PostgreSQL
//! ([`pg::PgCache`]).

pub mod embedded;
pub mod facets;
pub mod pg;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The version of the entries' layout (a change makes old entries misses).
pub const FORMAT: u32 = 1;

/// A 32-byte digest (a key or a context).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    fn of(parts: &[&[u8]]) -> Digest {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        for p in parts {
            // Length-prefixed: no two part lists hash alike.
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Digest(h.finalize().into())
    }

    /// Hex, for logs and the audit line.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// From 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Digest> {
        <[u8; 32]>::try_from(b).ok().map(Digest)
    }
}

/// One source as the provider would see it, for the context digest.
pub struct SourcePart<'a> {
    /// The chunk's id.
    pub chunk_id: &'a str,
    /// The label the prompt shows (document, page).
    pub label: &'a str,
    /// The text that would be sent (after quarantine redaction).
    pub text: &'a str,
    /// The document's classification (routing depends on it).
    pub classification: &'a str,
}

/// The context of one answer: everything but the question that decides
/// what the provider is sent and how its answer is treated.
pub fn context(
    sources: &[SourcePart<'_>],
    chain: &str,
    policy: &str,
    prompt_version: &str,
) -> Digest {
    let mut parts: Vec<&[u8]> = vec![
        b"hort-answer-cache",
        chain.as_bytes(),
        policy.as_bytes(),
        prompt_version.as_bytes(),
    ];
    let versions: Vec<Digest> = sources
        .iter()
        .map(|s| {
            Digest::of(&[
                s.chunk_id.as_bytes(),
                s.label.as_bytes(),
                s.text.as_bytes(),
                s.classification.as_bytes(),
            ])
        })
        .collect();
    for v in &versions {
        parts.push(&v.0);
    }
    Digest::of(&parts)
}

/// The question as the key sees it: Unicode-normalised (NFKC), lower case,
/// white space collapsed, closing punctuation dropped.
pub fn normalise(question: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let s: String = question.nfkc().collect::<String>().to_lowercase();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.trim_end_matches(['?', '!', '.', '。', '？', '！', ' '])
        .to_string()
}

/// The exact key: the normalised question over a context.
pub fn key(question: &str, context: &Digest) -> Digest {
    Digest::of(&[normalise(question).as_bytes(), &context.0])
}

/// A kept answer: the provider's completion (personal data masked) and
/// what is needed to treat it as if the provider had just sent it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// [`FORMAT`].
    pub v: u32,
    /// When it was kept (seconds since 1970).
    pub created: u64,
    /// The context digest (hex).
    pub context: String,
    /// The completion, personal data as placeholders.
    pub completion: String,
    /// The provider that answered.
    pub provider: String,
    /// Numbers of the sources that were in its prompt.
    pub sent: Vec<usize>,
    /// Whether it was sent the masked prompt.
    pub masked: bool,
    /// Tokens and cost it took (what a hit saves).
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// Cost in USD.
    pub cost_usd: f64,
    /// The documents of the context (to forget entries of a changed document).
    pub docs: Vec<String>,
    /// The question's embedding (only when its writer shares semantically).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// The embedding model of `embedding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The question's [`facets::facets`].
    #[serde(default)]
    pub facets: Vec<String>,
    /// The opted-in teams of its writer (whose members may match it semantically).
    #[serde(default)]
    pub scope: Vec<String>,
}

/// Why the cache could not be read or written (the request goes on as a miss).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The embedded store failed.
    #[error("answer cache: {0}")]
    Embedded(String),
    /// The database failed.
    #[error("answer cache: {0}")]
    Db(#[from] crate::store::pg::PgError),
    /// An entry could not be decoded.
    #[error("answer cache: bad entry: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Where entries are kept.
pub trait CacheStore: Send + Sync {
    /// The entry under `key`.
    fn get(&self, key: &Digest) -> Result<Option<Entry>, CacheError>;
    /// Every entry over `context` (the semantic cache's candidates: few,
    /// since the context must be identical).
    fn by_context(&self, context: &Digest) -> Result<Vec<(Digest, Entry)>, CacheError>;
    /// Keeps `entry` under `key`; then, past `max_entries`, drops the least
    /// recently used. Returns how many were dropped.
    fn put(&self, key: &Digest, entry: &Entry, max_entries: u64) -> Result<u64, CacheError>;
    /// Notes a use (for the least-recently-used order; may be batched).
    fn touch(&self, key: &Digest, now: u64);
    /// Drops one entry (expired).
    fn remove(&self, key: &Digest) -> Result<(), CacheError>;
    /// Drops every entry whose context used one of `docs`.
    fn forget_docs(&self, docs: &[String]) -> Result<u64, CacheError>;
    /// How many entries there are.
    fn len(&self) -> Result<u64, CacheError>;
    /// Whether there are none.
    fn is_empty(&self) -> Result<bool, CacheError> {
        Ok(self.len()? == 0)
    }
    /// Makes pending writes durable.
    fn flush(&self);
}

/// Uses of entries not written yet (key → time): hits only read, and the
/// next write records them, so the least-recently-used order costs a hit
/// no disk write.
#[derive(Default)]
pub struct Touched(std::sync::Mutex<std::collections::HashMap<Digest, u64>>);

impl Touched {
    /// Notes a use.
    pub fn note(&self, key: &Digest, now: u64) {
        crate::sync::lock(&self.0).insert(*key, now);
    }

    /// The uses noted since the last call.
    pub fn take(&self) -> std::collections::HashMap<Digest, u64> {
        std::mem::take(&mut *crate::sync::lock(&self.0))
    }
}

/// Counters of the cache (exported as `hort_cache_*`).
#[derive(Default)]
pub struct CacheStats {
    /// Exact hits.
    pub hits_exact: AtomicU64,
    /// Semantic hits.
    pub hits_semantic: AtomicU64,
    /// Lookups without a usable entry.
    pub misses: AtomicU64,
    /// Callers who were not served from the cache (opted out, disabled).
    pub bypassed: AtomicU64,
    /// Entries kept.
    pub stored: AtomicU64,
    /// Entries dropped for the size bound, age or a changed document.
    pub evictions: AtomicU64,
    /// Tokens not spent thanks to hits.
    pub saved_tokens: AtomicU64,
    /// Money not spent thanks to hits, in micro-USD.
    pub saved_micro_usd: AtomicU64,
    /// Failures of the store (each one a miss).
    pub errors: AtomicU64,
}

/// What the cache did for one request (the response's `cache` field, the
/// `Cache-Status` header and the audit line).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CacheOutcome {
    /// `hit`, `miss`, `stored` or `bypass`.
    pub status: &'static str,
    /// `exact` or `semantic` (hits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Age of the entry in seconds (hits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_s: Option<u64>,
    /// Similarity of the questions (semantic hits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    /// The first 16 hex digits of the key (to find the entry in the audit log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl CacheOutcome {
    /// A request the cache did not serve and will not keep.
    pub fn bypass() -> CacheOutcome {
        CacheOutcome {
            status: "bypass",
            kind: None,
            age_s: None,
            similarity: None,
            key: None,
        }
    }

    /// The `Cache-Status` header value (RFC 9211).
    pub fn header(&self) -> String {
        match self.status {
            "hit" => format!(
                "hort; hit; detail={}{}",
                self.kind.unwrap_or("exact"),
                self.age_s
                    .map(|a| format!("; ttl-age={a}"))
                    .unwrap_or_default()
            ),
            "stored" => "hort; fwd=miss; stored".to_string(),
            "miss" => "hort; fwd=miss".to_string(),
            _ => "hort; fwd=bypass".to_string(),
        }
    }

    /// The audit flag.
    pub fn flag(&self) -> String {
        match (self.status, self.kind) {
            ("hit", Some(k)) => format!("cache:hit:{k}"),
            (s, _) => format!("cache:{s}"),
        }
    }
}

/// Who asks, as the cache sees it.
#[derive(Clone, Debug, Default)]
pub struct CacheScope {
    /// Whether the caller may use the cache at all (no team opted out).
    pub enabled: bool,
    /// The caller's teams that share semantically (empty: exact only).
    pub semantic_teams: Vec<String>,
    /// The question's embedding, when semantic sharing applies.
    pub embedding: Option<Vec<f32>>,
    /// The model of `embedding`.
    pub model: Option<String>,
}

/// An entry found for a request.
pub struct Found {
    /// Its key.
    pub key: Digest,
    /// The entry.
    pub entry: Entry,
    /// How it was found.
    pub outcome: CacheOutcome,
}

/// The cache of one node: its store, its settings, its counters.
pub struct AnswerCache {
    store: Arc<dyn CacheStore>,
    ttl_s: u64,
    max_entries: u64,
    similarity: f32,
    /// Counters.
    pub stats: CacheStats,
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Cosine similarity of two question embeddings (−1 when they cannot be
/// compared), as the semantic cache compares them.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return -1.0;
    }
    let (mut d, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return -1.0;
    }
    d / (na.sqrt() * nb.sqrt())
}

/// Whether `question` (with `embedding`) may reuse an entry written for
/// another question: similar enough and the same facets. The bench measures
/// this decision on paraphrase and near-miss pairs.
pub fn same_meaning(
    similarity: f32,
    threshold: f32,
    facets_a: &[String],
    facets_b: &[String],
) -> bool {
    similarity >= threshold && facets_a == facets_b
}

impl AnswerCache {
    /// A cache over `store` with `[cache]`'s settings (the similarity
    /// threshold for the default model; see [`AnswerCache::for_model`]).
    pub fn new(store: Arc<dyn CacheStore>, cfg: &crate::config::CacheConfig) -> AnswerCache {
        AnswerCache {
            store,
            ttl_s: cfg.ttl_s,
            max_entries: cfg.max_entries,
            similarity: cfg.similarity_for("minilm"),
            stats: CacheStats::default(),
        }
    }

    /// The semantic threshold for the embedding model `model` (its id).
    pub fn for_model(mut self, cfg: &crate::config::CacheConfig, model: &str) -> AnswerCache {
        self.similarity = cfg.similarity_for(model);
        self
    }

    fn failed(&self, e: CacheError) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("{e}");
    }

    fn fresh(&self, key: &Digest, e: &Entry, now: u64) -> bool {
        if e.v == FORMAT && now.saturating_sub(e.created) < self.ttl_s {
            return true;
        }
        if let Err(err) = self.store.remove(key) {
            self.failed(err);
        } else {
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
        }
        false
    }

    /// Looks `question` up over `context` for a caller of `scope`. A miss
    /// (or any failure of the store) returns `None` and counts.
    pub fn lookup(&self, question: &str, context: &Digest, scope: &CacheScope) -> Option<Found> {
        let now = now_s();
        let key = key(question, context);
        let hit = |entry: Entry, key: Digest, kind, similarity| {
            self.store.touch(&key, now);
            let s = &self.stats;
            match kind {
                "exact" => s.hits_exact.fetch_add(1, Ordering::Relaxed),
                _ => s.hits_semantic.fetch_add(1, Ordering::Relaxed),
            };
            s.saved_tokens.fetch_add(
                entry.prompt_tokens as u64 + entry.completion_tokens as u64,
                Ordering::Relaxed,
            );
            s.saved_micro_usd
                .fetch_add((entry.cost_usd * 1e6).round() as u64, Ordering::Relaxed);
            let outcome = CacheOutcome {
                status: "hit",
                kind: Some(kind),
                age_s: Some(now.saturating_sub(entry.created)),
                similarity,
                key: Some(key.hex()[..16].to_string()),
            };
            Some(Found {
                key,
                entry,
                outcome,
            })
        };
        match self.store.get(&key) {
            Ok(Some(e)) if self.fresh(&key, &e, now) => return hit(e, key, "exact", None),
            Ok(_) => {}
            Err(e) => self.failed(e),
        }
        if let (false, Some(emb)) = (scope.semantic_teams.is_empty(), &scope.embedding) {
            let mine = facets::facets(question);
            let candidates = self.store.by_context(context).unwrap_or_else(|e| {
                self.failed(e);
                Vec::new()
            });
            let best = candidates
                .into_iter()
                .filter(|(_, e)| {
                    e.scope.iter().any(|t| scope.semantic_teams.contains(t))
                        && e.model == scope.model
                })
                .filter_map(|(k, e)| {
                    let sim = cosine(emb, e.embedding.as_deref()?);
                    same_meaning(sim, self.similarity, &mine, &e.facets).then_some((k, e, sim))
                })
                .max_by(|a, b| a.2.total_cmp(&b.2));
            if let Some((k, e, sim)) = best {
                if self.fresh(&k, &e, now) {
                    return hit(e, k, "semantic", Some(sim));
                }
            }
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Keeps an answer under `question` over `context`.
    pub fn store(
        &self,
        question: &str,
        context: &Digest,
        scope: &CacheScope,
        mut entry: Entry,
    ) -> CacheOutcome {
        let key = key(question, context);
        entry.v = FORMAT;
        entry.created = now_s();
        entry.context = context.hex();
        entry.facets = facets::facets(question);
        if !scope.semantic_teams.is_empty() {
            entry.embedding = scope.embedding.clone();
            entry.model = scope.model.clone();
            entry.scope = scope.semantic_teams.clone();
        }
        match self.store.put(&key, &entry, self.max_entries) {
            Ok(evicted) => {
                self.stats.stored.fetch_add(1, Ordering::Relaxed);
                self.stats.evictions.fetch_add(evicted, Ordering::Relaxed);
                CacheOutcome {
                    status: "stored",
                    kind: None,
                    age_s: None,
                    similarity: None,
                    key: Some(key.hex()[..16].to_string()),
                }
            }
            Err(e) => {
                self.failed(e);
                CacheOutcome {
                    status: "miss",
                    kind: None,
                    age_s: None,
                    similarity: None,
                    key: None,
                }
            }
        }
    }

    /// Forgets every answer whose context used one of `docs` (after an
    /// upload or deletion; other changes are caught by the keys).
    pub fn forget_docs(&self, docs: &[String]) {
        match self.store.forget_docs(docs) {
            Ok(n) => {
                self.stats.evictions.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => self.failed(e),
        }
    }

    /// Entries kept now.
    pub fn len(&self) -> u64 {
        self.store.len().unwrap_or(0)
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes pending writes durable.
    pub fn flush(&self) {
        self.store.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src<'a>(id: &'a str, text: &'a str) -> SourcePart<'a> {
        SourcePart {
            chunk_id: id,
            label: "a.md",
            text,
            classification: "internal",
        }
    }

    #[test]
    fn keys_follow_question_context_order_and_versions() {
        let c = context(&[src("1", "x"), src("2", "y")], "chain", "pol", "p1");
        assert_eq!(key("What is X?", &c), key("  what   is x ", &c));
        assert_ne!(key("What is Y?", &c), key("What is X?", &c));
        // Order, content, chain, policy and prompt all count.
        for other in [
            context(&[src("2", "y"), src("1", "x")], "chain", "pol", "p1"),
            context(&[src("1", "x"), src("2", "y2")], "chain", "pol", "p1"),
            context(&[src("1", "x")], "chain", "pol", "p1"),
            context(&[src("1", "x"), src("2", "y")], "chain2", "pol", "p1"),
            context(&[src("1", "x"), src("2", "y")], "chain", "pol2", "p1"),
            context(&[src("1", "x"), src("2", "y")], "chain", "pol", "p2"),
        ] {
            assert_ne!(other, c);
        }
        // Parts cannot run into each other.
        assert_ne!(
            context(&[src("1", "xy")], "c", "p", "v"),
            context(&[src("1x", "y")], "c", "p", "v")
        );
    }

    fn entry() -> Entry {
        Entry {
            v: FORMAT,
            created: 0,
            context: String::new(),
            completion: "The CFO approves [1].".into(),
            provider: "p".into(),
            sent: vec![1],
            masked: false,
            prompt_tokens: 100,
            completion_tokens: 10,
            cost_usd: 0.5,
            docs: vec!["a.md".into()],
            embedding: None,
            model: None,
            facets: vec![],
            scope: vec![],
        }
    }

    #[test]
    fn semantic_hits_need_team_context_facets_and_similarity() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(embedded::RedbCache::open(dir.path()).unwrap());
        let cfg = crate::config::CacheConfig {
            semantic_similarity: Some(0.9),
            ..Default::default()
        };
        let cache = AnswerCache::new(store, &cfg);
        let ctx = context(&[src("1", "x")], "c", "p", "v");
        let scope = |teams: &[&str], e: Vec<f32>| CacheScope {
            enabled: true,
            semantic_teams: teams.iter().map(|t| t.to_string()).collect(),
            embedding: Some(e),
            model: Some("m".into()),
        };
        let writer = scope(&["finance"], vec![1.0, 0.0, 0.0]);
        cache.store("Who approves travel over 500 EUR?", &ctx, &writer, entry());
        let near = vec![0.99, 0.1, 0.0];
        // Same team, same context, close embedding, same facets: a hit.
        let hit = cache
            .lookup(
                "Who signs off trips above 500 euros",
                &ctx,
                &scope(&["finance"], near.clone()),
            )
            .expect("semantic hit");
        assert_eq!(hit.outcome.kind, Some("semantic"));
        assert!(hit.outcome.similarity.unwrap() > 0.9);
        // Another amount, another team, another context, a far embedding, or
        // a caller without semantic sharing: misses.
        let misses = [
            cache.lookup(
                "Who approves travel over 5,000 EUR?",
                &ctx,
                &scope(&["finance"], near.clone()),
            ),
            cache.lookup(
                "Who signs off trips above 500 euros",
                &ctx,
                &scope(&["hr"], near.clone()),
            ),
            cache.lookup(
                "Who signs off trips above 500 euros",
                &context(&[src("1", "x2")], "c", "p", "v"),
                &scope(&["finance"], near.clone()),
            ),
            cache.lookup(
                "Who signs off trips above 500 euros",
                &ctx,
                &scope(&["finance"], vec![0.0, 1.0, 0.0]),
            ),
            cache.lookup(
                "Who signs off trips above 500 euros",
                &ctx,
                &CacheScope {
                    enabled: true,
                    ..Default::default()
                },
            ),
        ];
        assert!(misses.iter().all(Option::is_none));
        let s = &cache.stats;
        assert_eq!(s.hits_semantic.load(Ordering::Relaxed), 1);
        assert_eq!(s.misses.load(Ordering::Relaxed), 5);
        assert_eq!(s.saved_micro_usd.load(Ordering::Relaxed), 500_000);
    }

    #[test]
    fn expired_entries_are_dropped_on_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(embedded::RedbCache::open(dir.path()).unwrap());
        let cache = AnswerCache::new(store.clone(), &crate::config::CacheConfig::default());
        let ctx = context(&[src("1", "x")], "c", "p", "v");
        let exact = CacheScope {
            enabled: true,
            ..Default::default()
        };
        cache.store("q", &ctx, &exact, entry());
        // Age the entry past the TTL by rewriting its creation time.
        let k = key("q", &ctx);
        let mut e = store.get(&k).unwrap().unwrap();
        e.created -= 86_401;
        store.put(&k, &e, 10).unwrap();
        assert!(cache.lookup("q", &ctx, &exact).is_none());
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.stats.evictions.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn outcome_renders_a_cache_status_header() {
        let mut o = CacheOutcome::bypass();
        assert_eq!(o.header(), "hort; fwd=bypass");
        o.status = "hit";
        o.kind = Some("semantic");
        o.age_s = Some(3);
        assert_eq!(o.header(), "hort; hit; detail=semantic; ttl-age=3");
        assert_eq!(o.flag(), "cache:hit:semantic");
    }
}
