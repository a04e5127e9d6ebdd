//! Retrieval: hybrid search over any store. Both searches run in the store
//! with the access filter (and any metadata filter) applied *inside* them
//! (see `store::contract`); here the two candidate lists are fused, the
//! injection policy applied, overlapping and over-represented hits thinned,
//! and the hits made from chunks the store returns only if the asker may
//! see them (a second, independent check).

pub mod rerank;
pub mod translate;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::acl::{Classification, Principal};
use crate::config::{Config, Fusion, InjectionAction, SanitizeConfig};
use crate::embed::{EmbedError, Embedder};
use crate::store::docfilter::CompiledDocFilter;
use crate::store::keyword::{KeywordQuery, TermField};
pub use crate::store::VectorPlan;
use crate::store::{ChunkHit, IndexRead, StoreError, VectorParams};
use crate::text::Language;

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// The question could not be embedded.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a search runs (from `[retrieve]`, `[hnsw]` and `[sanitize]`).
#[derive(Clone, Copy, Debug)]
pub struct SearchParams {
    /// Hits returned.
    pub k: usize,
    /// Candidates taken from each side before fusion.
    pub candidates: usize,
    /// How vector and keyword results are combined.
    pub fusion: Fusion,
    /// The constant of reciprocal-rank fusion.
    pub rrf_k: f32,
    /// Weight of the vector side in weighted fusion.
    pub vector_weight: f32,
    /// Weight of the keyword side in weighted fusion.
    pub keyword_weight: f32,
    /// Beam width of graph searches.
    pub ef_search: usize,
    /// Up to this many visible chunks are scored exactly.
    pub exact_threshold: usize,
    /// Keyword evidence counts only if this many nearest chunks by meaning
    /// are in the question's language (0: always; `[retrieve] language_gate`).
    pub language_gate: usize,
    /// The dictionary a question's keywords are translated with (None:
    /// searched in their own words only; loaded by [`translate::from_config`]).
    pub dictionary: Option<&'static translate::Dictionary>,
    /// Weight of a translated keyword against a word of the question.
    pub translation_weight: f32,
    /// Embed and search the question's word-by-word translation too
    /// (`[retrieve] translated_vectors`).
    pub translated_vectors: bool,
    /// Hits per document at most (0: no limit).
    pub max_per_doc: usize,
    /// Drop hits that overlap a better hit of the same document.
    pub dedupe_overlaps: bool,
    /// What happens to hits that look like prompt injection.
    pub injection: InjectionPolicy,
    /// Search the keyword side beside embedding and the vector side (on a
    /// machine with more than one core).
    pub parallel: bool,
}

/// How chunks suspected of prompt injection are treated in results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InjectionPolicy {
    /// Score from which a chunk is suspected.
    pub threshold: f32,
    /// Score from which a chunk is a likely injection.
    pub high: f32,
    /// Action on suspected chunks.
    pub on_suspected: InjectionAction,
    /// Action on likely injections.
    pub on_high: InjectionAction,
    /// Score factor of downranked chunks.
    pub downrank_factor: f32,
}

impl InjectionPolicy {
    /// The policy of `[sanitize]`.
    pub fn from_config(s: &SanitizeConfig) -> InjectionPolicy {
        InjectionPolicy {
            threshold: s.injection_threshold,
            high: s.injection_high,
            on_suspected: s.on_suspected,
            on_high: s.on_high,
            downrank_factor: s.downrank_factor,
        }
    }

    /// The action for a chunk with detector score `score`, if any.
    pub fn action(&self, score: f32) -> Option<InjectionAction> {
        if score >= self.high {
            Some(self.on_high)
        } else if score >= self.threshold {
            Some(self.on_suspected)
        } else {
            None
        }
    }
}

/// Scores go out with four decimals: more is noise.
fn round4<S: serde::Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((*x as f64 * 10_000.0).round() / 10_000.0)
}

/// A hit's injection verdict, and what was done about it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HitInjection {
    /// The detector's score.
    #[serde(serialize_with = "round4")]
    pub score: f32,
    /// The rule families that matched.
    pub reasons: Vec<String>,
    /// What was done with the hit.
    pub action: InjectionAction,
}

impl SearchParams {
    /// The settings of a configuration, without a dictionary (no file is
    /// looked at; [`SearchParams::open`] adds the configured one).
    pub fn from_config(cfg: &Config) -> SearchParams {
        let r = &cfg.retrieve;
        SearchParams {
            k: r.k,
            candidates: r.candidates,
            fusion: r.fusion,
            rrf_k: r.rrf_k,
            vector_weight: r.vector_weight,
            keyword_weight: r.keyword_weight,
            ef_search: cfg.hnsw.ef_search,
            exact_threshold: r.exact_threshold,
            language_gate: r.language_gate,
            dictionary: None,
            translation_weight: r.translation_weight,
            translated_vectors: r.translated_vectors,
            max_per_doc: r.max_per_doc,
            dedupe_overlaps: r.dedupe_overlaps,
            injection: InjectionPolicy::from_config(&cfg.sanitize),
            parallel: crate::embed::cores() > 1,
        }
    }
}

impl SearchParams {
    /// The settings of a configuration with its dictionary (read on first
    /// use; a dictionary the configuration names must exist).
    pub fn open(cfg: &Config) -> Result<SearchParams, translate::TranslateError> {
        Ok(SearchParams {
            dictionary: translate::from_config(cfg)?,
            ..SearchParams::from_config(cfg)
        })
    }

    /// The keyword question of `query` (whose own terms are `own`) asked
    /// in `asked` over chunks in the other language: the translations of
    /// its words (where a dictionary is loaded) at `translation_weight`,
    /// beside its own words as that language's analyser reads them (names,
    /// numbers and loanwords such as "VPN" match across languages). None
    /// without a dictionary.
    pub fn translated_query(
        &self,
        query: &str,
        own: &KeywordQuery,
        asked: Language,
    ) -> Option<KeywordQuery> {
        if self.translation_weight <= 0.0 {
            return None;
        }
        let lex = self.dictionary?.get()?;
        let mut q = KeywordQuery::default();
        let target = match asked {
            Language::German => TermField::English,
            Language::English => TermField::German,
        };
        for t in own.terms() {
            if t.field == target {
                q.add(t.field, &t.term, t.weight);
            }
        }
        lex.translate(query, asked, self.translation_weight, &mut q);
        Some(q)
    }

    /// The language `query` is asked in, as the language gate reads it:
    /// told by its function words or letters ([`Language::told`]); else,
    /// once the dictionary is read, by which language's words it uses
    /// ([`translate::Lexicon::language_of`]: "dump raw disk image" has no
    /// function word and too few letters for trigrams). No question waits
    /// for the dictionary to be read for this: a server reads it while it
    /// starts (and is not ready before), a one-shot `hort query` reads it
    /// only for a question it translates.
    pub fn question_language(&self, query: &str) -> Option<Language> {
        Language::told(query).or_else(|| {
            self.dictionary
                .filter(|d| d.is_read())?
                .get()?
                .language_of(query)
        })
    }

    /// `query` (asked in `asked`) put word by word into the other language
    /// for the vector side, each word as `seen` (text the asker can read in
    /// that language) writes it ([`translate::Lexicon::gloss_seen`]), where
    /// that is configured and a dictionary is loaded.
    pub fn gloss(
        &self,
        query: &str,
        asked: Language,
        seen: Option<&translate::Seen>,
    ) -> Option<String> {
        if !self.translated_vectors || self.translation_weight <= 0.0 || self.vector_weight <= 0.0 {
            return None;
        }
        self.dictionary?.get()?.gloss_seen(query, asked, seen)
    }

    /// The vector planner's part.
    pub fn vector(&self) -> VectorParams {
        VectorParams {
            ef_search: self.ef_search,
            exact_threshold: self.exact_threshold,
        }
    }
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams::from_config(&Config::default())
    }
}

/// One retrieved chunk, as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Hit {
    /// The chunk's id (16 hex digits).
    pub chunk_id: String,
    /// The document, relative to its folder.
    pub doc: String,
    /// 1-based page, or `None` for formats without pages.
    pub page: Option<u32>,
    /// Offsets in Unicode scalar values into the page text.
    pub start: u32,
    /// End of the chunk (characters into the page).
    pub end: u32,
    /// The fused score (higher is better).
    #[serde(serialize_with = "round4")]
    pub score: f32,
    /// The chunk's text.
    pub text: String,
    /// The document's classification.
    pub classification: Classification,
    /// The document's teams that the asker shares (never the others).
    pub teams: Vec<String>,
    /// Present when the chunk looks like a prompt injection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<HitInjection>,
    /// Present when the chunk's page was read by OCR: its mean confidence
    /// (0–100). The text may differ from the original; quote with care.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr_confidence: Option<f32>,
    /// The chunk's internal id.
    #[serde(skip)]
    pub id: u64,
    /// The document's internal id.
    #[serde(skip)]
    pub doc_id: u64,
}

/// Hits with the candidates and plans they came from (for benchmarks and tests).
#[derive(Clone, Debug)]
pub struct SearchResult {
    /// The fused, checked hits.
    pub hits: Vec<Hit>,
    /// Vector candidates (chunk id, cosine similarity), best first.
    pub vector: Vec<(u64, f32)>,
    /// Keyword candidates (chunk id, BM25), best first.
    pub keyword: Vec<(u64, f32)>,
    /// Keyword candidates of the question's words translated into the
    /// other language (asked across languages, with a dictionary), best
    /// first; fused as a list of their own, so that BM25 in one language
    /// is not weighed against BM25 in the other.
    pub translated: Vec<(u64, f32)>,
    /// The question put word by word into the other language (asked across
    /// languages, with a dictionary; [`SearchParams::gloss`]), and its
    /// vector candidates, best first. Fusion takes each chunk's better
    /// similarity of the two vector lists.
    pub glossed: Option<String>,
    /// Vector candidates of [`SearchResult::glossed`].
    pub translated_vector: Vec<(u64, f32)>,
    /// How the vector side was planned (per segment on the embedded index).
    pub plans: Vec<VectorPlan>,
    /// Where the time went.
    pub stages: Stages,
    /// The question was asked across languages (its nearest chunks are in
    /// another): its own keywords counted less ([`SearchResult::own_words`]).
    pub cross_lingual: bool,
    /// The factor fusion put on the keyword weight of the translated list
    /// (see [`across_languages`]; 0 without a translation).
    pub translated_factor: f32,
    /// The question's language when its words were translated and searched
    /// in the other one (the dictionary is then loaded): the offline
    /// answerer reads the sources with the same translation.
    pub translated_from: Option<Language>,
    /// The factor fusion put on the keyword weight of the question's own
    /// words (1 unless it was asked across languages).
    own_factor: f32,
}

impl Default for SearchResult {
    fn default() -> Self {
        SearchResult {
            hits: Vec::new(),
            vector: Vec::new(),
            keyword: Vec::new(),
            translated: Vec::new(),
            glossed: None,
            translated_vector: Vec::new(),
            plans: Vec::new(),
            stages: Stages::default(),
            cross_lingual: false,
            translated_factor: 0.0,
            translated_from: None,
            own_factor: 1.0,
        }
    }
}

impl SearchResult {
    /// The factor fusion put on the keyword weight of the question's own
    /// words.
    pub fn own_words(&self) -> f32 {
        self.own_factor
    }
}

/// Where a question's nearest chunks by meaning turned to the other of
/// German and English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Across {
    /// Among the `language_gate` nearest: the answer is likely in the other
    /// language.
    Near,
    /// Further down, within [`LANGUAGE_WINDOW`]: it may be in either.
    Far,
    /// Only below [`LANGUAGE_WINDOW`], among the vector candidates: the
    /// index holds the other language, the vectors do not lead there.
    Beyond,
}

/// The factors on the keyword weight of a question's own words and of their
/// translation (`translated`: one was searched and found candidates), as
/// `fusion` blends them: (1, 0) unless it is asked across languages
/// (`across`), where its own words lead to documents in its language rather
/// than to the one that answers. Without a translation they then count not
/// at all when a chunk in the other language is among the nearest, and
/// whole when the first such chunk is further down (the window only adds a
/// translation). With one, weighted fusion counts them [`OWN_WORDS_ACROSS`]
/// and the translation [`TRANSLATION`];
/// where the other language shows only below the window
/// ([`Across::Beyond`]), the question's words count whole and the
/// translation [`TRANSLATION`] beside them; RRF, which counts places rather
/// than scores, counts both a quarter near and far ([`RRF_ACROSS`]).
fn across_languages(fusion: Fusion, across: Option<Across>, translated: bool) -> (f32, f32) {
    match (across, translated, fusion) {
        (None, ..) | (Some(Across::Far | Across::Beyond), false, _) => (1.0, 0.0),
        (Some(Across::Near), false, _) => (0.0, 0.0),
        (Some(Across::Near | Across::Far), true, Fusion::Weighted) => {
            (OWN_WORDS_ACROSS, TRANSLATION)
        }
        (Some(Across::Beyond), true, Fusion::Weighted) => (1.0, TRANSLATION),
        (Some(Across::Near | Across::Far), true, Fusion::Rrf) => (RRF_ACROSS, RRF_ACROSS),
        // Not measured with RRF: the translation is not searched.
        (Some(Across::Beyond), true, Fusion::Rrf) => (1.0, 0.0),
    }
}

/// Why the hits ranked as they did, for tuning (`"explain": true` on
/// `/v1/search`, the console's search testing page): each hit's place and
/// raw score on both sides, how fusion weighed them, and how the vector
/// side was planned. Built from the lists the search already has.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Explain {
    /// How the two lists were combined.
    pub fusion: Fusion,
    /// Weight of the vector side.
    pub vector_weight: f32,
    /// Weight of the keyword side for the question's own words (less when
    /// it was asked across languages: half beside a translation, else 0).
    pub keyword_weight: f32,
    /// Weight of the keywords translated into the other language (0 when
    /// none were searched).
    pub translated_weight: f32,
    /// The question's nearest chunks are in another language than it, so
    /// its own keywords counted less (`[retrieve] language_gate`).
    pub cross_lingual: bool,
    /// Candidates the vector side delivered (after the access filter).
    pub vector_candidates: usize,
    /// Candidates the keyword side delivered (after the access filter).
    pub keyword_candidates: usize,
    /// Candidates of the translated keywords (after the access filter).
    pub translated_candidates: usize,
    /// The question put word by word into the other language, embedded and
    /// searched by meaning too (asked across languages, with a dictionary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translated_question: Option<String>,
    /// How many segments were searched exactly, through the graph, through
    /// the graph then exactly, or skipped (nothing visible).
    pub plans: std::collections::BTreeMap<&'static str, usize>,
    /// Whether a cross-encoder reordered the fused hits.
    pub reranked: bool,
    /// One entry per hit, in hit order.
    pub hits: Vec<HitExplain>,
}

/// One hit's evidence from each side.
#[derive(Clone, Debug, Serialize)]
pub struct HitExplain {
    /// The hit's chunk id.
    pub chunk_id: String,
    /// Its place among the vector candidates and its cosine similarity.
    pub vector: Option<Evidence>,
    /// Its place among the keyword candidates and its BM25 score.
    pub keyword: Option<Evidence>,
    /// Its place among the translated keywords' candidates and its BM25
    /// score (asked across languages, with a dictionary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translated: Option<Evidence>,
    /// Its place among the vector candidates of the translated question and
    /// its cosine similarity there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translated_vector: Option<Evidence>,
}

/// A candidate's 1-based rank and raw score on one side.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Evidence {
    /// 1 is the best.
    pub rank: usize,
    /// The side's own score.
    #[serde(serialize_with = "round4")]
    pub score: f32,
}

impl Explain {
    /// The explanation of `hits` (final order) found from `r`'s lists.
    pub fn of(r: &SearchResult, hits: &[Hit], p: &SearchParams, reranked: bool) -> Explain {
        let index = |list: &[(u64, f32)]| -> HashMap<u64, Evidence> {
            list.iter()
                .enumerate()
                .map(|(i, (id, s))| {
                    (
                        *id,
                        Evidence {
                            rank: i + 1,
                            score: *s,
                        },
                    )
                })
                .collect()
        };
        let (v, k, t) = (index(&r.vector), index(&r.keyword), index(&r.translated));
        let tv = index(&r.translated_vector);
        let mut plans = std::collections::BTreeMap::new();
        for plan in &r.plans {
            let name = match plan {
                VectorPlan::Skipped => "skipped",
                VectorPlan::Exact => "exact",
                VectorPlan::Graph => "graph",
                VectorPlan::GraphThenExact => "graph_then_exact",
            };
            *plans.entry(name).or_default() += 1;
        }
        Explain {
            fusion: p.fusion,
            vector_weight: p.vector_weight,
            keyword_weight: p.keyword_weight * r.own_words(),
            translated_weight: if r.translated.is_empty() {
                0.0
            } else {
                p.keyword_weight * r.translated_factor
            },
            cross_lingual: r.cross_lingual,
            vector_candidates: r.vector.len(),
            keyword_candidates: r.keyword.len(),
            translated_candidates: r.translated.len(),
            translated_question: r.glossed.clone(),
            plans,
            reranked,
            hits: hits
                .iter()
                .map(|h| HitExplain {
                    chunk_id: h.chunk_id.clone(),
                    vector: v.get(&h.id).copied(),
                    keyword: k.get(&h.id).copied(),
                    translated: t.get(&h.id).copied(),
                    translated_vector: tv.get(&h.id).copied(),
                })
                .collect(),
        }
    }
}

/// Milliseconds per stage of one search (reported in the `Server-Timing`
/// header and by `hort bench query`, so latency can be taken apart).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stages {
    /// Embedding the question (0 when it came from the cache).
    pub embed_ms: f64,
    /// The access-filtered vector search.
    pub vector_ms: f64,
    /// The access-filtered keyword search (beside embedding and vector search).
    pub keyword_ms: f64,
    /// Fusing the lists and reading the winners' text and positions.
    pub fetch_ms: f64,
}

impl Stages {
    /// The `Server-Timing` header value (RFC-style `name;dur=ms` entries).
    pub fn server_timing(&self, total_ms: f64) -> String {
        format!(
            "embed;dur={:.3}, vector;dur={:.3}, keyword;dur={:.3}, fetch;dur={:.3}, search;dur={:.3}",
            self.embed_ms, self.vector_ms, self.keyword_ms, self.fetch_ms, total_ms
        )
    }
}

fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// What to search for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The question.
    pub query: &'a str,
    /// Hits wanted.
    pub k: usize,
    /// A metadata filter, applied inside both searches.
    pub docs: Option<&'a CompiledDocFilter>,
}

pub use crate::store::chunk_id_string;

/// Parses an API chunk id.
pub fn parse_chunk_id(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

/// Reciprocal rank fusion: Σ w / (k + rank) over the lists a chunk is in.
pub fn rrf(lists: &[(&[(u64, f32)], f32)], k: f32, limit: usize) -> Vec<(u64, f32)> {
    let mut score: HashMap<u64, f32> = HashMap::new();
    for (list, w) in lists {
        for (rank, (id, _)) in list.iter().enumerate() {
            *score.entry(*id).or_default() += w / (k + rank as f32 + 1.0);
        }
    }
    sorted(score, limit)
}

/// Weighted score fusion: each list's scores min-max normalised to [0, 1],
/// then Σ w · score (a chunk missing from a list scores 0 there).
pub fn weighted(lists: &[(&[(u64, f32)], f32)], limit: usize) -> Vec<(u64, f32)> {
    let mut score: HashMap<u64, f32> = HashMap::new();
    for (list, w) in lists {
        let (lo, hi) = list
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x.1), hi.max(x.1))
            });
        for (id, s) in list.iter() {
            let norm = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
            *score.entry(*id).or_default() += w * norm;
        }
    }
    sorted(score, limit)
}

fn sorted(score: HashMap<u64, f32>, limit: usize) -> Vec<(u64, f32)> {
    let mut out: Vec<(u64, f32)> = score.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(limit);
    out
}

/// The hit of a chunk the store returned (the store checked once more that
/// the asker may see it).
fn to_hit(c: &ChunkHit, score: f32) -> Hit {
    Hit {
        chunk_id: chunk_id_string(c.id),
        doc: c.path.clone(),
        page: c.paged.then_some(c.page_no),
        start: c.char_start,
        end: c.char_end,
        score,
        text: c.text.clone(),
        classification: c.access.classification,
        teams: c.access.teams.clone(),
        injection: c.injection.as_ref().map(|v| HitInjection {
            score: v.score,
            reasons: v.reasons.clone(),
            // Filled in by the policy; annotate until then.
            action: InjectionAction::Annotate,
        }),
        ocr_confidence: c.ocr,
        id: c.id,
        doc_id: c.doc_id,
    }
}

/// How many of the fused candidates the first read fetches for `k` hits:
/// enough that de-duplication, the per-document limit and down-ranking
/// rarely need a second read.
fn first_read(k: usize) -> usize {
    2 * k + 8
}

/// [`select`] over `fused`, reading the candidates' chunks (into `chunks`)
/// only as far down the list as the result can reach.
///
/// Why: every candidate's chunk was read, 100 for 10 hits by default, and on
/// PostgreSQL that read cost 2.2 ms of a 5.8 ms search at 100,000 chunks
/// (`hort bench backends`). The result is the same as selecting from all:
/// fused scores are sorted, the policy only lowers a score (a down-rank
/// factor is at most 1) and ties keep the fused order, so once `k` hits are
/// chosen from a prefix and the last of them scores at least the first
/// unread candidate's fused score, no unread candidate can enter or
/// displace one. Otherwise the prefix doubles and the next part is read.
fn select_reading(
    fused: &[(u64, f32)],
    k: usize,
    p: &SearchParams,
    chunks: &mut HashMap<u64, ChunkHit>,
    mut read: impl FnMut(&[u64]) -> Result<Vec<ChunkHit>, StoreError>,
) -> Result<Vec<Hit>, RetrieveError> {
    let mut upto = first_read(k).min(fused.len());
    // Candidates before this were asked for (a chunk that could not be
    // read is not asked for again).
    let mut asked = 0;
    loop {
        let missing: Vec<u64> = fused[asked..upto]
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !chunks.contains_key(id))
            .collect();
        if !missing.is_empty() {
            chunks.extend(read(&missing)?.into_iter().map(|c| (c.id, c)));
        }
        asked = upto;
        let hits = select(&fused[..upto], k, p, |id, score| {
            chunks.get(&id).map(|c| to_hit(c, score))
        });
        let settled = match (hits.last(), fused.get(upto)) {
            (_, None) => true,
            (Some(last), Some(&(_, next))) => {
                hits.len() >= k && last.score >= next * p.injection.downrank_factor.max(1.0)
            }
            (None, Some(_)) => false,
        };
        if settled {
            return Ok(hits);
        }
        upto = (upto * 2).max(1).min(fused.len());
    }
}

/// Picks the final hits from the fused list: drops a hit whose text overlaps
/// a better hit of the same page, and keeps at most `max_per_doc` per document.
fn select(
    fused: &[(u64, f32)],
    k: usize,
    p: &SearchParams,
    mut make: impl FnMut(u64, f32) -> Option<Hit>,
) -> Vec<Hit> {
    // Apply the injection policy first: down-ranking can reorder.
    let mut cands: Vec<Hit> = Vec::with_capacity(fused.len());
    for &(id, score) in fused {
        let Some(mut h) = make(id, score) else {
            continue;
        };
        if let Some(inj) = h.injection.as_mut() {
            match p.injection.action(inj.score) {
                None => h.injection = None,
                Some(action) => {
                    inj.action = action;
                    if action == InjectionAction::Downrank {
                        h.score *= p.injection.downrank_factor;
                    }
                }
            }
        }
        cands.push(h);
    }
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out: Vec<Hit> = Vec::with_capacity(k);
    let mut per_doc: HashMap<u64, usize> = HashMap::new();
    for h in cands {
        if out.len() >= k {
            break;
        }
        if p.dedupe_overlaps
            && out.iter().any(|o| {
                o.doc_id == h.doc_id && o.page == h.page && o.start < h.end && h.start < o.end
            })
        {
            continue;
        }
        let n = per_doc.entry(h.doc_id).or_default();
        if p.max_per_doc > 0 && *n >= p.max_per_doc {
            continue;
        }
        *n += 1;
        out.push(h);
    }
    out
}

/// How much the question's own keywords count in weighted fusion when it is
/// asked across languages and its translation was searched (see
/// [`across_languages`]); the translation counts [`TRANSLATION`].
///
/// Why: with e5-small's vectors bridging the languages, a question's own
/// words mostly add documents in its language that share a word with it
/// (the English "company" finds every English page; the German "Firma"
/// every German one), and the translated list carries the words that cross
/// (names, numbers, "VPN") anyway, as the other language's analyser reads
/// them. Chosen on the training split of the German/English set
/// (`bench/multilingual-train/`, by replaying fusion on `hort bench quality
/// --lists`, 2026-12-05): own words 0.25 and the translation 0.5 read
/// nDCG@10 0.930 against 0.904 for the earlier 0.5 with the translation at
/// 1 near and 0.5 far. Own words 0 near read 0.943 and 0 everywhere 0.956
/// there, but not elsewhere: with vectors that say little about the
/// answer's language (the English-only MiniLM; the hash embedder of the
/// tests) the question's own words are what finds an answer in its
/// language — MiniLM lost 0.03 of English-over-English nDCG on the manual
/// pages with 0 near, and an English question of `tests/workflows.rs` lost
/// the English travel policy to the German summary. A large corpus in one
/// language with a few pages in the other is also where a gate is a false
/// alarm.
pub const OWN_WORDS_ACROSS: f32 = 0.25;

/// The factor on the keyword weight of the translated list in weighted
/// fusion whenever one was searched (chosen with [`OWN_WORDS_ACROSS`]; 1 near
/// and 0.5 far before 2026-12-05 evening).
///
/// Since 2026-12-06 it is also searched where the other language shows only
/// below [`LANGUAGE_WINDOW`] ([`Across::Beyond`]), beside the question's own
/// words at full weight. Chosen on two training splits and two models
/// together (`bench/multilingual-train/`, and Debian's manual pages of
/// util-linux, systemd, grep & co., none of which is in the held-out
/// manual-page set of `bench/multilingual-man/`), by replaying weighted
/// fusion on `hort bench quality --lists` (`bench/fusion/fit_translation.py`):
/// e5-small 0.930 → 0.934 and 0.754 → 0.764, MiniLM 0.644 → 0.682 and
/// 0.699 → 0.705, no same-language pair worse. A heavier translation near
/// (0.75) read 0.006 better with e5-small on the manual pages but cost
/// MiniLM's English-over-English questions 0.04 there (its vectors put
/// German chunks among an English question's nearest by chance), 0.75
/// far cost German-over-German pages 0.09 on hort's split, and the
/// translation at full weight beyond the window read better on average
/// (MiniLM 0.682 → 0.752 on hort's split) but cost German-over-German
/// pages there 0.024 (e5-small) and 0.07 (MiniLM).
pub const TRANSLATION: f32 = 0.5;

/// What a question's own words and their translation count in RRF when it
/// is asked across languages and the translation was searched.
///
/// Why: since e5-small's stored vectors are centred per language
/// (`embed::space`), a chunk in the other language is among nearly every
/// question's five nearest in a German and English corpus, so this applies
/// to same-language questions too; the factors used before (own words half,
/// the translation whole near and half far, chosen with raw vectors) put
/// translated hits above the question's own-language answer: German over
/// German pages read nDCG@10 0.25–0.50 on the training splits. Replayed
/// over `hort bench quality --lists` of both training splits and both
/// models (2026-12-06, 25 settings of 0–1 each), mean nDCG@10: a quarter
/// each reads e5-small 0.814 and MiniLM 0.621 (its best), the old factors
/// 0.620 and 0.556; dropping the keywords altogether read best for e5-small
/// (0.866) but leaves MiniLM, whose vectors do not cross languages, without
/// the words that do (0.589).
pub const RRF_ACROSS: f32 = 0.25;

/// How far down the nearest chunks by meaning a question's language is
/// compared with theirs, and what its translation then counts.
///
/// Why: e5-small's vectors lean to the question's language, so for about a
/// quarter of the questions asked across languages of the training split
/// (`bench/multilingual-train/`: 13 of 48 German questions over English
/// documents) all five nearest chunks were in the question's language, the
/// translation was never searched, and 12 of them were answered from the
/// wrong document. Looking further down, to the first chunk in the other
/// language among the nearest 20, and searching the translation at half
/// weight when it is not among the first `language_gate`, lifted the
/// training split from nDCG@10 0.870 to 0.901 with no language pair worse
/// (chosen there by replaying fusion on its candidate lists: half weight
/// against 0.3–0.7, windows of 10, 20 and all candidates; the test split,
/// run after, read 0.813 → 0.912, DE→EN first place 0.57 → 0.80). A corpus
/// in one language never finds a chunk in the other, so it is unchanged.
/// Since 2026-12-06 the rest of the vector candidates are looked at too
/// ([`Across::Beyond`]): a question whose language can be told reads all
/// its vector candidates' texts (50 by default, instead of 20) in the read
/// that fetches its hits, and tells their language from their opening's
/// function words (3.4 µs each).
pub const LANGUAGE_WINDOW: usize = 20;

/// The candidate lists fused as configured (the question's own keywords
/// at `own`, their translation beside them at `translated_factor`); more
/// than k are kept so that de-duplication and diversity can skip some.
fn fuse(
    vector: &[(u64, f32)],
    keyword: &[(u64, f32)],
    own: f32,
    translated: &[(u64, f32)],
    translated_factor: f32,
    p: &SearchParams,
    want: usize,
) -> Vec<(u64, f32)> {
    let lists = [
        (vector, p.vector_weight),
        (keyword, p.keyword_weight * own),
        (translated, p.keyword_weight * translated_factor),
    ];
    match p.fusion {
        Fusion::Rrf => rrf(&lists, p.rrf_k, want * 2),
        Fusion::Weighted => weighted(&lists, want * 2),
    }
}

/// Hybrid search for `principal` over `view`: both searches filtered in
/// the store, fused, top `k`. The question is embedded only if the vector
/// side counts.
pub fn search(
    view: &dyn IndexRead,
    embedder: &dyn Embedder,
    principal: &Principal,
    req: &Request<'_>,
    p: &SearchParams,
) -> Result<SearchResult, RetrieveError> {
    if principal.teams.is_empty() || req.k == 0 || req.query.trim().is_empty() {
        return Ok(SearchResult::default());
    }
    let docs = req.docs.filter(|d| !d.is_empty());
    let want = p.candidates.max(req.k);
    let mut stages = Stages::default();
    // The keyword side does not need the question's vector: it runs beside
    // embedding and the vector search, on another core when one is free.
    let vector_side = || -> Result<_, RetrieveError> {
        if p.vector_weight <= 0.0 {
            return Ok((Vec::new(), Vec::new(), 0.0, 0.0));
        }
        let t = Instant::now();
        let qv = embedder.embed_query(req.query)?;
        let embed_ms = ms_since(t);
        let t = Instant::now();
        let (v, plans) = view.vector_search(principal, docs, &qv, want, p.vector())?;
        Ok((v, plans, embed_ms, ms_since(t)))
    };
    // The question's own keywords, analysed once: searched here, and
    // reused if it turns out to be asked across languages.
    let own_query = (p.keyword_weight > 0.0).then(|| KeywordQuery::of(req.query));
    let keyword_side = || -> Result<_, RetrieveError> {
        let Some(q) = &own_query else {
            return Ok((Vec::new(), 0.0));
        };
        let t = Instant::now();
        let k = view.keyword_search(principal, docs, q, want)?;
        Ok((k, ms_since(t)))
    };
    let (v, k) = if p.vector_weight > 0.0 && p.keyword_weight > 0.0 && p.parallel {
        rayon::join(vector_side, keyword_side)
    } else {
        (vector_side(), keyword_side())
    };
    let (vector, plans, embed_ms, vector_ms) = v?;
    let (keyword, mut keyword_ms) = k?;
    stages.embed_ms = embed_ms;
    stages.vector_ms = vector_ms;
    let t = Instant::now();
    // One read for the chunks the language gate looks at and the hits as
    // fused with the question's own words, which stand unless the gate
    // fires: a second read (one round trip on PostgreSQL) only for
    // questions asked across languages.
    let gate = gate_applies(req.query, &vector, p);
    let mut fused = fuse(&vector, &keyword, 1.0, &[], 0.0, p, want);
    let mut ids: Vec<u64> = fused
        .iter()
        .take(first_read(req.k))
        .map(|(id, _)| *id)
        .collect();
    if gate.is_some() {
        let seen: HashSet<u64> = ids.iter().copied().collect();
        ids.extend(nearest(&vector).filter(|id| !seen.contains(id)));
    }
    let mut chunks: HashMap<u64, ChunkHit> = view
        .chunks(principal, docs, &ids)?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    // The question's language, and what its translation counts, if it is
    // asked across languages.
    let across = gate
        .and_then(|asked| asked_across_languages(asked, &vector, p, &chunks).map(|at| (asked, at)));
    // Asked across languages: the question's own words lead to documents in
    // its language, not to the one that answers. With a dictionary the
    // keyword side searches again with the words' translations; without
    // one it does not count where a chunk among the `language_gate`
    // nearest is in the other language, and counts whole where the first
    // such chunk is further down (the window only adds a translation).
    let mut translated = Vec::new();
    let mut translated_ms = 0.0;
    let mut translated_from = None;
    // Searched only where fusion would count it.
    let across_counted =
        across.filter(|(_, at)| across_languages(p.fusion, Some(*at), true).1 > 0.0);
    let translation = across_counted.zip(own_query.as_ref());
    if let Some((q, asked)) = translation.and_then(|((asked, _), own)| {
        p.translated_query(req.query, own, asked)
            .map(|q| (q, asked))
    }) {
        translated_from = Some(asked);
        let t = Instant::now();
        translated = view.keyword_search(principal, docs, &q, want)?;
        translated_ms = ms_since(t);
        keyword_ms += translated_ms;
    }
    stages.keyword_ms = keyword_ms;
    // Where its keywords were translated, the question is also put into the
    // other language word by word and searched by meaning: a small
    // multilingual model's vectors lean to the language they read, and the
    // gloss lands nearer the passage in the other language that answers.
    // Each word as the chunks already read in the other language have it
    // (names as written, the translation they use).
    let glossed = translated_from.and_then(|asked| {
        let seen = seen_across(asked, &vector, &chunks);
        p.gloss(req.query, asked, Some(&seen))
    });
    let mut translated_vector = Vec::new();
    if let Some(g) = &glossed {
        let t = Instant::now();
        let gv = embedder.embed_query(g)?;
        let embed_ms = ms_since(t);
        let t = Instant::now();
        translated_vector = view
            .vector_search(principal, docs, &gv, want, p.vector())?
            .0;
        let search_ms = ms_since(t);
        stages.embed_ms += embed_ms;
        stages.vector_ms += search_ms;
        // Embedding and search time, not fetching.
        translated_ms += embed_ms + search_ms;
    }
    let (own, translated_factor) =
        across_languages(p.fusion, across.map(|a| a.1), !translated.is_empty());
    let cross_lingual = own < 1.0;
    if cross_lingual || translated_factor > 0.0 || !translated_vector.is_empty() {
        fused = fuse(
            &better_of(&vector, &translated_vector, want),
            &keyword,
            own,
            &translated,
            translated_factor,
            p,
            want,
        );
    }
    let mut hits = select_reading(&fused, req.k, p, &mut chunks, |ids| {
        view.chunks(principal, docs, ids)
    })?;
    for h in &mut hits {
        own_teams_only(h, principal);
    }
    // The translated search is keyword time, not fetching.
    stages.fetch_ms = ms_since(t) - translated_ms;
    Ok(SearchResult {
        hits,
        vector,
        keyword,
        translated,
        glossed,
        translated_vector,
        plans,
        stages,
        cross_lingual,
        translated_factor,
        translated_from,
        own_factor: own,
    })
}

/// Two vector lists of one search as one: each chunk at the better of its
/// similarities, best first, the first `limit` (`b` empty: `a` as it is).
/// Measured on the training splits against fusing the translation's
/// vector list as a list of its own (min-max normalised, weighted): at any
/// weight that lifted questions across languages, it cost same-language
/// ones more; cosine similarities of one model are on one scale, so the
/// better of the two needs no weight.
fn better_of(a: &[(u64, f32)], b: &[(u64, f32)], limit: usize) -> Vec<(u64, f32)> {
    if b.is_empty() {
        return a.to_vec();
    }
    let mut best: HashMap<u64, f32> = a.iter().copied().collect();
    for &(id, s) in b {
        let e = best.entry(id).or_insert(s);
        *e = e.max(s);
    }
    sorted(best, limit)
}

/// The question's language if the language gate applies to it: the gate
/// is on, keywords count, there are nearest chunks to look at, and the
/// question's language can be told ([`SearchParams::question_language`]).
fn gate_applies(query: &str, vector: &[(u64, f32)], p: &SearchParams) -> Option<Language> {
    if p.language_gate == 0 || p.keyword_weight <= 0.0 || vector.is_empty() {
        return None;
    }
    p.question_language(query)
}

/// The ids of the nearest chunks the language gate looks at: the
/// `language_gate` nearest, down to [`LANGUAGE_WINDOW`], and the rest of the
/// vector candidates ([`Across::Beyond`]): read in the same round trip as
/// the hits, their language told from their opening's function words.
fn nearest(vector: &[(u64, f32)]) -> impl Iterator<Item = u64> + '_ {
    vector.iter().map(|x| x.0)
}

/// Whether a question in language `asked` is asked across languages:
/// [`Across::Near`] if one of its `language_gate` nearest chunks (read into
/// `read`, with the same access check as every hit) is in the other of
/// German and English, [`Across::Far`] if the first such chunk is further
/// down within [`LANGUAGE_WINDOW`], [`Across::Beyond`] if it is below that
/// among the vector candidates, `None` if there is none. Keyword search can only match the question's own words,
/// which then lead to documents in its language, not to the one that
/// answers; measured on the training split of the German/English set,
/// counting them less there (and their translation beside them) lifts
/// cross-language nDCG@10 while a corpus in one language is untouched.
fn asked_across_languages(
    asked: Language,
    vector: &[(u64, f32)],
    p: &SearchParams,
    read: &HashMap<u64, ChunkHit>,
) -> Option<Across> {
    use crate::store::keyword::TextLanguage;
    let other = match asked {
        Language::German => Language::English,
        Language::English => Language::German,
    };
    let first = nearest(vector).enumerate().position(|(i, id)| {
        read.get(&id).is_some_and(|c| {
            if i < p.language_gate {
                matches!(
                    (asked, TextLanguage::detect(&c.text)),
                    (Language::German, TextLanguage::English)
                        | (Language::English, TextLanguage::German)
                )
            } else {
                // Below the gate, the function words of the chunk's opening
                // tell German from English (3.4 µs): trigram detection takes
                // 85 µs a chunk (62 µs on 200 characters), so 15 more chunks
                // would add ~1 ms to every question in a corpus of one
                // language, which finds none (`cargo bench -- language`).
                Language::of_question(opening(&c.text)) == Some(other)
            }
        })
    })?;
    Some(if first < p.language_gate {
        Across::Near
    } else if first < LANGUAGE_WINDOW {
        Across::Far
    } else {
        Across::Beyond
    })
}

/// The [`LANGUAGE_WINDOW`] chunks nearest by meaning that are in the other
/// language than `asked` (told as below the language gate, by their
/// opening's function words), as [`translate::Seen`] for the gloss. All
/// the chunks read (a hundred or more) were measured too: as good on the
/// training splits (manual pages 0.876 against 0.871, hort's own 0.959
/// against 0.962) for 1 ms a question instead of 0.3.
fn seen_across(
    asked: Language,
    vector: &[(u64, f32)],
    read: &HashMap<u64, ChunkHit>,
) -> translate::Seen {
    let mut seen = translate::Seen::new(asked);
    for c in nearest(vector)
        .take(LANGUAGE_WINDOW)
        .filter_map(|id| read.get(&id))
    {
        if Language::of_question(opening(&c.text)).is_some_and(|l| l != asked) {
            seen.add(&c.text);
        }
    }
    seen
}

/// The first [`OPENING_CHARS`] characters of `text`.
fn opening(text: &str) -> &str {
    match text.char_indices().nth(OPENING_CHARS) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Characters of a chunk read to tell its language below the gate.
const OPENING_CHARS: usize = 300;

/// A hit names only the teams of the document that the asker belongs to:
/// which other teams share a document is not the asker's business. (At
/// least one is always left: the asker sees the hit through it.)
pub fn own_teams_only(h: &mut Hit, principal: &Principal) {
    h.teams.retain(|t| principal.teams.contains(t));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn better_of_takes_each_chunks_higher_similarity() {
        let a = [(1, 0.9), (2, 0.5), (3, 0.4)];
        let b = [(3, 0.8), (4, 0.6), (1, 0.2)];
        assert_eq!(
            better_of(&a, &b, 10),
            vec![(1, 0.9), (3, 0.8), (4, 0.6), (2, 0.5)]
        );
        assert_eq!(better_of(&a, &b, 2), vec![(1, 0.9), (3, 0.8)]);
        // Nothing to merge: the list as it was.
        assert_eq!(better_of(&a, &[], 2), a.to_vec());
    }

    #[test]
    fn rrf_rewards_agreement() {
        let a = [(1, 0.9), (2, 0.8), (3, 0.7)];
        let b = [(3, 10.0), (4, 9.0), (1, 8.0)];
        let f = rrf(&[(&a, 1.0), (&b, 1.0)], 60.0, 10);
        assert_eq!(f[0].0, 1);
        assert_eq!(f[1].0, 3);
        assert_eq!(f.len(), 4);
        assert_eq!(rrf(&[(&a, 1.0), (&b, 1.0)], 60.0, 2).len(), 2);
        // A zero weight silences a list.
        let only_b = rrf(&[(&a, 0.0), (&b, 1.0)], 60.0, 1);
        assert_eq!(only_b[0].0, 3);
    }

    #[test]
    fn only_a_question_asked_across_languages_reweighs_its_keywords() {
        for fusion in [Fusion::Weighted, Fusion::Rrf] {
            // One language, or the other language only far down with no
            // translation to add: the question's words count whole.
            for translated in [false, true] {
                assert_eq!(across_languages(fusion, None, translated), (1.0, 0.0));
            }
            for across in [Across::Far, Across::Beyond] {
                assert_eq!(across_languages(fusion, Some(across), false), (1.0, 0.0));
            }
            // The other language among the nearest and nothing translated:
            // its own words would only find pages in its language.
            assert_eq!(
                across_languages(fusion, Some(Across::Near), false),
                (0.0, 0.0)
            );
            for across in [Across::Near, Across::Far] {
                let (own, tr) = across_languages(fusion, Some(across), true);
                assert!(own < 1.0 && tr > 0.0, "{fusion:?} {across:?}");
            }
        }
        // Beside a translation the question's own words keep some weight:
        // with weak vectors they are what finds an answer in its language.
        for across in [Across::Near, Across::Far] {
            let (own, _) = across_languages(Fusion::Weighted, Some(across), true);
            assert!(own > 0.0, "{across:?}");
        }
        // The translation never counts more the further down the other
        // language shows; below the window the question's own words count
        // whole beside it (weighted fusion; RRF does not search it there).
        let tr = |at| across_languages(Fusion::Weighted, Some(at), true).1;
        assert!(tr(Across::Near) >= tr(Across::Far) && tr(Across::Far) >= tr(Across::Beyond));
        assert_eq!(
            across_languages(Fusion::Weighted, Some(Across::Beyond), true),
            (1.0, TRANSLATION)
        );
        assert_eq!(
            across_languages(Fusion::Rrf, Some(Across::Beyond), true),
            (1.0, 0.0)
        );
    }

    #[test]
    fn weighted_normalises_each_list() {
        let a = [(1, 0.95), (2, 0.90)];
        let b = [(2, 30.0), (3, 10.0)];
        let f = weighted(&[(&a, 1.0), (&b, 1.0)], 10);
        // 2: 0 + 1; 1: 1 + 0; 3: 0 + 0 -> 1 and 2 tie at 1.0, id order breaks it.
        assert_eq!(f.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        let f = weighted(&[(&a, 1.0), (&b, 2.0)], 10);
        assert_eq!(f[0].0, 2);
    }

    fn chunk(id: u64, doc: u64, start: u32, injection: Option<f32>) -> ChunkHit {
        ChunkHit {
            id,
            doc_id: doc,
            path: format!("d{doc}"),
            paged: true,
            page_no: 1,
            char_start: start,
            char_end: start + 10,
            text: String::new(),
            access: crate::acl::AccessRule::new(&["t"], Classification::Internal).unwrap(),
            injection: injection.map(|score| crate::store::Verdict {
                score,
                reasons: Vec::new(),
            }),
            ocr: None,
        }
    }

    proptest::proptest! {
        /// Reading the candidates' chunks only as far as the result can
        /// reach selects exactly what reading them all does, whatever
        /// down-ranking, the per-document limit, overlaps and chunks that
        /// cannot be read (gone, or not visible) do.
        #[test]
        fn reading_part_of_the_candidates_selects_what_reading_all_does(
            rows in proptest::collection::vec(
                (0.0f32..1.0, 0u64..6, 0u32..4, proptest::option::of(0.0f32..1.0), proptest::bool::weighted(0.1)),
                0..80,
            ),
            k in 1usize..12,
            max_per_doc in 0usize..3,
            factor in 0.0f32..=1.0,
        ) {
            let mut p = SearchParams::from_config(&Config::default());
            p.max_per_doc = max_per_doc;
            p.injection.downrank_factor = factor;
            let mut fused: Vec<(u64, f32)> = rows.iter().enumerate().map(|(i, r)| (i as u64, r.0)).collect();
            fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let store: HashMap<u64, ChunkHit> = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.4)
                .map(|(i, r)| (i as u64, chunk(i as u64, r.1, r.2 * 6, r.3)))
                .collect();
            let all = select(&fused, k, &p, |id, score| store.get(&id).map(|c| to_hit(c, score)));
            let mut kept = HashMap::new();
            let mut read = 0;
            let part = select_reading(&fused, k, &p, &mut kept, |ids| {
                read += ids.len();
                Ok(ids.iter().filter_map(|id| store.get(id).cloned()).collect())
            })
            .unwrap();
            let ids = |h: &[Hit]| h.iter().map(|h| (h.id, h.score)).collect::<Vec<_>>();
            proptest::prop_assert_eq!(ids(&part), ids(&all));
            proptest::prop_assert!(read <= fused.len());
        }
    }

    #[test]
    fn the_first_read_is_enough_for_an_ordinary_list() {
        let p = SearchParams::from_config(&Config::default());
        let fused: Vec<(u64, f32)> = (0..100).map(|i| (i, 1.0 - i as f32 / 100.0)).collect();
        let mut kept = HashMap::new();
        let mut reads = Vec::new();
        let hits = select_reading(&fused, 10, &p, &mut kept, |ids| {
            reads.push(ids.len());
            Ok(ids.iter().map(|&id| chunk(id, id, 0, None)).collect())
        })
        .unwrap();
        assert_eq!(hits.len(), 10);
        assert_eq!(reads, vec![first_read(10)]);
    }
}
