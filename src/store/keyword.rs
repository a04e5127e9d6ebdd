//! The keyword side: a tantivy index of chunk text with the access fields
//! (teams as a multi-valued keyword, classification level as a number), so
//! the access filter is a query clause evaluated inside the search. The
//! clause is a bitset per segment, computed once per snapshot and filter
//! ([`AccessBits`]) and intersected with every query of that principal.
//!
//! Its commits carry the index generation as payload; see `store::commit`.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentId;
use tantivy::query::{
    BitSetDocSet, BooleanQuery, ConstScoreQuery, ConstScorer, EmptyScorer, EnableScoring,
    Explanation, Occur, Query, RangeQuery, Scorer, TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STRING,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{
    BitSet, DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Score, Searcher,
    SegmentReader, TantivyDocument, Term, TERMINATED,
};

use super::docfilter::CompiledDocFilter;
use super::docs::DocRecord;
use super::StoreError;
use crate::acl::{Filter, INVISIBLE};

/// Bump when fields or analysis change: the writer then rebuilds the keyword
/// index from the segments (no re-embedding).
pub const SCHEMA_VERSION: u32 = 4;
/// The analyzer's name in the tantivy index (public so that the benchmark
/// can open the same index with bare tantivy).
pub const TOKENIZER: &str = "hort_en";
/// German: German stop words and the German Snowball stemmer.
pub const TOKENIZER_DE: &str = "hort_de";
/// Parts of German compounds, and text in other languages: lower case only.
pub const TOKENIZER_PLAIN: &str = "hort_plain";

/// How much a match on a part of a German compound counts against a match
/// on a whole word (parts are weaker evidence: "rechnung" in
/// "Reisekostenabrechnung").
pub(crate) const PARTS_BOOST: f32 = 0.4;
/// The shortest compound part indexed, and the shortest word split.
pub(crate) const MIN_PART: usize = 4;
const MIN_COMPOUND: usize = 9;

/// The language a chunk is analysed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextLanguage {
    /// English (stemmed).
    English,
    /// German (stemmed, compounds split).
    German,
    /// Other languages (lower-cased words only).
    Other,
}

impl TextLanguage {
    /// Detects the language of `text` (whatlang, trigram statistics); text
    /// that is too short or mixed to tell counts as English, the corpus
    /// language hort was first built for, since its analyser only stems.
    pub fn detect(text: &str) -> TextLanguage {
        match whatlang::detect(text) {
            Some(i)
                if i.lang() == whatlang::Lang::Deu && (i.is_reliable() || i.confidence() > 0.5) =>
            {
                TextLanguage::German
            }
            Some(i) if i.lang() == whatlang::Lang::Eng || !i.is_reliable() => TextLanguage::English,
            Some(_) => TextLanguage::Other,
            None => TextLanguage::English,
        }
    }

    /// The language's code (`None`: neither German nor English).
    pub fn code(self) -> Option<&'static str> {
        match self {
            TextLanguage::English => Some("en"),
            TextLanguage::German => Some("de"),
            TextLanguage::Other => None,
        }
    }
}

/// Parts of the long words of German `text`: every prefix and suffix of at
/// least `MIN_PART` letters of words of at least `MIN_COMPOUND` letters,
/// so that "Obergrenze" and "Hotel" find "Hotelobergrenze" (tantivy has no
/// German decompounder; a dictionary-free split over-generates, which is why
/// parts live in a field of their own and count for less).
pub fn compound_parts(text: &str) -> String {
    let mut out = String::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<char> = w.chars().flat_map(char::to_lowercase).collect();
        let n = chars.len();
        if n < MIN_COMPOUND || chars.iter().any(|c| c.is_numeric()) {
            continue;
        }
        for k in MIN_PART..=(n - MIN_PART) {
            out.extend(&chars[..k]);
            out.push(' ');
            out.extend(&chars[k..]);
            out.push(' ');
        }
    }
    out
}

/// The keyword index's fields.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// The chunk's id.
    pub chunk_id: Field,
    /// The document's id.
    pub doc_id: Field,
    /// English (and undetected) text.
    pub text: Field,
    /// German text.
    pub text_de: Field,
    /// German text with compounds split.
    pub text_de_parts: Field,
    /// Text of other languages.
    pub text_other: Field,
    /// The document's teams (for the access filter).
    pub teams: Field,
    /// The document's classification level.
    pub level: Field,
    /// The document's path (for metadata filters).
    pub path: Field,
    /// The file type.
    pub kind: Field,
    /// Modification time.
    pub mtime: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id_opts = NumericOptions::default().set_indexed().set_fast();
    let chunk_id = b.add_u64_field("chunk_id", id_opts);
    let doc_id = b.add_u64_field("doc_id", NumericOptions::default().set_indexed());
    let analysed = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let text = b.add_text_field("text", analysed(TOKENIZER));
    let text_de = b.add_text_field("text_de", analysed(TOKENIZER_DE));
    let text_de_parts = b.add_text_field("text_de_parts", analysed(TOKENIZER_PLAIN));
    let text_other = b.add_text_field("text_other", analysed(TOKENIZER_PLAIN));
    let teams = b.add_text_field("teams", STRING);
    // Indexed, not fast: range queries then run on the term dictionary (four
    // values), which also avoids tantivy 0.27's fast-field range docset, whose
    // backward seeks under MustNot overflow a u32 subtraction.
    let level = b.add_u64_field("level", NumericOptions::default().set_indexed());
    let path = b.add_text_field("path", STRING);
    let kind = b.add_text_field("kind", STRING);
    let mtime = b.add_i64_field("mtime", NumericOptions::default().set_indexed());
    (
        b.build(),
        Fields {
            chunk_id,
            doc_id,
            text,
            text_de,
            text_de_parts,
            text_other,
            teams,
            level,
            path,
            kind,
            mtime,
        },
    )
}

/// The English analyzer (lower case, stemming).
pub fn analyzer() -> TextAnalyzer {
    let b = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop) => b
            .filter(stop)
            .filter(Stemmer::new(Language::English))
            .build(),
        None => b.filter(Stemmer::new(Language::English)).build(),
    }
}

/// The German analyzer (lower case, umlauts folded, stemming).
pub fn analyzer_de() -> TextAnalyzer {
    let b = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::German) {
        Some(stop) => b
            .filter(stop)
            .filter(Stemmer::new(Language::German))
            .build(),
        None => b.filter(Stemmer::new(Language::German)).build(),
    }
}

/// The analyzer of other languages (lower case only).
pub fn analyzer_plain() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .build()
}

/// Registers hort's analysers on an index opened elsewhere (the benchmark's
/// bare tantivy reads the same files).
pub fn register_analyzers(index: &Index) {
    index.tokenizers().register(TOKENIZER, analyzer());
    index.tokenizers().register(TOKENIZER_DE, analyzer_de());
    index
        .tokenizers()
        .register(TOKENIZER_PLAIN, analyzer_plain());
}

/// The fields of this schema version.
pub fn fields() -> Fields {
    schema().1
}

fn kw_err(e: tantivy::TantivyError) -> StoreError {
    StoreError::Keyword(e.to_string())
}

/// An error opening the keyword index, told apart by what the writer may do
/// about it: an index that is lost, damaged or of another schema (its meta
/// file unreadable, a file it names gone, fields that differ) is
/// `KeywordDamaged`, and the writer rebuilds it from the segments, which
/// hold every chunk's text; anything else (permissions, too many open
/// files, a full disk) is `Keyword` and is reported as it is, since wiping
/// an index that is only unreachable for a moment would make it empty under
/// running readers.
fn open_err(e: tantivy::TantivyError) -> StoreError {
    use tantivy::directory::error::{OpenDirectoryError, OpenReadError};
    use tantivy::TantivyError as T;
    let damaged = matches!(
        e,
        T::DataCorruption(_)
            | T::SchemaError(_)
            | T::IncompatibleIndex(_)
            | T::DeserializeError(_)
            | T::FieldNotFound(_)
            | T::OpenReadError(OpenReadError::FileDoesNotExist(_))
            | T::OpenReadError(OpenReadError::IncompatibleIndex(_))
            | T::OpenDirectoryError(OpenDirectoryError::DoesNotExist(_))
    );
    if damaged {
        StoreError::KeywordDamaged(e.to_string())
    } else {
        kw_err(e)
    }
}

/// The keyword side of the embedded index (tantivy).
pub struct KeywordIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl KeywordIndex {
    /// Opens the keyword index in `dir`, creating it if absent (the writer's
    /// way in). A damaged index, or one whose schema differs from this
    /// version's, is `StoreError::KeywordDamaged`, which the writer answers
    /// with a rebuild; other errors are the caller's to report.
    pub fn open_or_create(dir: &Path) -> Result<KeywordIndex, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let (schema, _) = schema();
        let mdir = MmapDirectory::open(dir).map_err(|e| StoreError::Keyword(e.to_string()))?;
        Self::wrap(Index::open_or_create(mdir, schema).map_err(open_err)?)
    }

    /// Opens an existing keyword index (a reader's way in). A reader never
    /// creates one: in a directory a writer is committing to, an index made
    /// by a reader would be a second, empty truth.
    pub fn open(dir: &Path) -> Result<KeywordIndex, StoreError> {
        let mdir = MmapDirectory::open(dir).map_err(|e| open_err(e.into()))?;
        Self::wrap(Index::open(mdir).map_err(open_err)?)
    }

    fn wrap(index: Index) -> Result<KeywordIndex, StoreError> {
        let (_, fields) = schema();
        index.tokenizers().register(TOKENIZER, analyzer());
        index.tokenizers().register(TOKENIZER_DE, analyzer_de());
        index
            .tokenizers()
            .register(TOKENIZER_PLAIN, analyzer_plain());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(open_err)?;
        Ok(KeywordIndex {
            index,
            reader,
            fields,
        })
    }

    /// The index's fields.
    pub fn fields(&self) -> Fields {
        self.fields
    }

    /// The generation of the last commit (0 for a new index).
    pub fn committed_generation(&self) -> Result<u64, StoreError> {
        let metas = self.index.load_metas().map_err(kw_err)?;
        Ok(parse_payload(metas.payload.as_deref()))
    }

    /// A searcher and the generation it shows. The meta file is read before
    /// and after the reload; if they agree, the searcher is that commit.
    ///
    /// A read that races a commit can fail for a moment (tantivy's meta file
    /// was seen missing under load in CI): that is reported as `None`, like a
    /// commit in progress, and the caller's bounded retry reads again.
    pub fn searcher(&self) -> Result<Option<(Searcher, u64)>, StoreError> {
        let Ok(before) = self.committed_generation() else {
            return Ok(None);
        };
        if self.reader.reload().is_err() {
            return Ok(None);
        }
        let searcher = self.reader.searcher();
        let Ok(after) = self.committed_generation() else {
            return Ok(None);
        };
        Ok((before == after).then_some((searcher, after)))
    }

    /// A writer (tantivy's, with hort's memory budget).
    pub fn writer(&self) -> Result<KeywordWriter, StoreError> {
        let w = self
            .index
            .writer_with_num_threads(1, 64 * 1024 * 1024)
            .map_err(kw_err)?;
        Ok(KeywordWriter {
            w: Some(w),
            fields: self.fields,
        })
    }

    /// The chunks `filter` lets through, per segment of `searcher`: the team
    /// and level clauses evaluated once, so that each query of the principal
    /// intersects with a ready bitset instead of re-running them.
    pub fn access_bits(
        &self,
        searcher: &Searcher,
        filter: &Filter,
    ) -> Result<AccessBits, StoreError> {
        let clauses: Vec<(Occur, Box<dyn Query>)> = access_clauses(self.fields, filter)
            .into_iter()
            .map(|c| (Occur::Must, c))
            .collect();
        let q = BooleanQuery::new(clauses);
        let weight = q
            .weight(EnableScoring::disabled_from_searcher(searcher))
            .map_err(kw_err)?;
        let mut segments = Vec::with_capacity(searcher.segment_readers().len());
        for reader in searcher.segment_readers() {
            let mut bits = BitSet::with_max_value(reader.max_doc());
            let mut scorer = weight.scorer(reader, 1.0).map_err(kw_err)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                bits.insert(doc);
                doc = scorer.advance();
            }
            segments.push((reader.segment_id(), bits));
        }
        Ok(AccessBits {
            segments: Arc::new(segments),
        })
    }

    /// BM25 search restricted to `access` (from [`Self::access_bits`]) and to
    /// `docs`, if given, as query clauses. Returns (chunk id, score), best first.
    pub fn search(
        &self,
        searcher: &Searcher,
        query: &KeywordQuery,
        access: &AccessBits,
        docs: Option<&CompiledDocFilter>,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let f = self.fields;
        let Some(text_q) = self.text_query(query)? else {
            return Ok(Vec::new());
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, text_q),
            (Occur::Must, Box::new(access.clone())),
        ];
        if let Some(d) = docs {
            for c in doc_filter_clauses(f, d) {
                clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(c, 0.0))));
            }
        }
        self.collect(searcher, BooleanQuery::new(clauses), limit)
    }

    /// Chunks *outside* `filter` that match `query` (the output check for
    /// text of documents the asker may not see). Never used to answer.
    pub fn search_invisible(
        &self,
        searcher: &Searcher,
        query: &KeywordQuery,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>, StoreError> {
        let Some(text_q) = self.text_query(query)? else {
            return Ok(Vec::new());
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_q)];
        if !filter.is_empty() {
            let visible: Vec<(Occur, Box<dyn Query>)> = access_clauses(self.fields, filter)
                .into_iter()
                .map(|c| (Occur::Must, c))
                .collect();
            clauses.push((Occur::MustNot, Box::new(BooleanQuery::new(visible))));
        }
        self.collect(searcher, BooleanQuery::new(clauses), limit)
    }

    fn text_query(&self, query: &KeywordQuery) -> Result<Option<Box<dyn Query>>, StoreError> {
        Ok(text_query(self.fields, query))
    }

    fn collect(
        &self,
        searcher: &Searcher,
        q: BooleanQuery,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>, StoreError> {
        let top = searcher
            .search(&q, &TopDocs::with_limit(limit).order_by_score())
            .map_err(kw_err)?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let col = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .u64("chunk_id")
                .map_err(kw_err)?;
            if let Some(id) = col.first(addr.doc_id) {
                out.push((id, score));
            }
        }
        Ok(out)
    }
}

/// A keyword field as both backends name it: the embedded index's text
/// fields, and the `field` column of PostgreSQL's postings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TermField {
    /// English (and undetected) text, stemmed.
    English = 0,
    /// German text, stemmed.
    German = 1,
    /// Parts of German compounds.
    GermanParts = 2,
    /// Text of other languages, lower case only.
    Other = 3,
}

impl TermField {
    /// Every field, in code order.
    pub const ALL: [TermField; 4] = [
        TermField::English,
        TermField::German,
        TermField::GermanParts,
        TermField::Other,
    ];

    /// The number the database stores.
    pub fn code(self) -> i16 {
        self as i16
    }

    /// How much a match in this field counts (parts of compounds are weaker
    /// evidence than whole words).
    pub fn boost(self) -> f32 {
        match self {
            TermField::GermanParts => PARTS_BOOST,
            _ => 1.0,
        }
    }

    /// The embedded index's field.
    pub fn of(self, f: Fields) -> Field {
        match self {
            TermField::English => f.text,
            TermField::German => f.text_de,
            TermField::GermanParts => f.text_de_parts,
            TermField::Other => f.text_other,
        }
    }

    fn analyzer(self) -> TextAnalyzer {
        match self {
            TermField::English => analyzer(),
            TermField::German => analyzer_de(),
            TermField::GermanParts | TermField::Other => analyzer_plain(),
        }
    }
}

thread_local! {
    /// Built once per thread: the stop-word sets are not free to build, and
    /// ingest analyses every chunk.
    static ANALYZERS: std::cell::RefCell<Vec<TextAnalyzer>> =
        std::cell::RefCell::new(TermField::ALL.iter().map(|f| f.analyzer()).collect());
}

/// Runs `field`'s analyser over `text`, calling `each` per token.
pub(crate) fn analyse(field: TermField, text: &str, mut each: impl FnMut(&str)) {
    ANALYZERS.with(|a| {
        let mut a = a.borrow_mut();
        let mut stream = a[field as usize].token_stream(text);
        while stream.advance() {
            each(&stream.token().text);
        }
    })
}

/// One field's terms of a chunk: what an inverted index stores.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldTerms {
    /// The field.
    pub field: TermField,
    /// Tokens in the field (BM25's document length).
    pub len: u32,
    /// Distinct terms with their frequency, sorted by term.
    pub terms: Vec<(String, u32)>,
}

/// A chunk's keyword terms as the embedded index analyses them: the field
/// of the chunk's language, and for German also the compound parts. The
/// PostgreSQL backend stores these as its postings, so that both backends
/// rank with the same terms.
pub fn chunk_terms(text: &str) -> Vec<FieldTerms> {
    let one = |field: TermField, text: &str| {
        let mut tf: std::collections::BTreeMap<String, u32> = Default::default();
        let mut len = 0u32;
        analyse(field, text, |t| {
            len += 1;
            *tf.entry(t.to_string()).or_default() += 1;
        });
        FieldTerms {
            field,
            len,
            terms: tf.into_iter().collect(),
        }
    };
    match TextLanguage::detect(text) {
        TextLanguage::English => vec![one(TermField::English, text)],
        TextLanguage::German => vec![
            one(TermField::German, text),
            one(TermField::GermanParts, &compound_parts(text)),
        ],
        TextLanguage::Other => vec![one(TermField::Other, text)],
    }
}

/// One term of a keyword question: the field it is looked up in, and how
/// much a match counts (BM25 times `weight`).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryTerm {
    /// The field.
    pub field: TermField,
    /// The analysed term.
    pub term: String,
    /// The factor on its BM25 contribution.
    pub weight: f32,
}

/// A keyword question as both backends search it: analysed terms with
/// weights. The question's own words come first ([`KeywordQuery::of`]);
/// retrieval may add translations of them at a lower weight
/// (`retrieve::translate`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeywordQuery {
    /// Distinct (field, term) pairs, in the order they were added.
    terms: Vec<QueryTerm>,
    /// Where each (field, term) is in `terms`, and terms per field.
    at: std::collections::HashMap<(TermField, String), usize>,
    per_field: [usize; 4],
}

/// At most this many distinct terms per field in a question.
const MAX_QUERY_TERMS: usize = 256;

impl KeywordQuery {
    /// The question's terms, analysed as each language's text is, per field
    /// (a question may be German or English whatever the documents are; each
    /// field matches only the chunks of its language), weighted by the
    /// field's boost. At most 256 distinct terms per field; parts shorter
    /// than a compound part are left out.
    pub fn of(query: &str) -> KeywordQuery {
        let mut q = KeywordQuery::default();
        // Every field, whatever the question's language: restricting German
        // questions to German chunks was measured worse (bench/multilingual:
        // words such as "VPN", "GDPR" or "500 Euro" match across languages).
        for field in TermField::ALL {
            analyse(field, query, |t| {
                if field == TermField::GermanParts && t.chars().count() < MIN_PART {
                    return;
                }
                q.add(field, t, field.boost());
            });
        }
        q
    }

    /// Adds `term` in `field` at `weight`; a term already there keeps the
    /// larger weight. Beyond 256 terms in a field, new ones are dropped.
    pub fn add(&mut self, field: TermField, term: &str, weight: f32) {
        if weight.is_nan() || weight <= 0.0 || term.is_empty() {
            return;
        }
        let key = (field, term.to_string());
        if let Some(&i) = self.at.get(&key) {
            let t = &mut self.terms[i];
            t.weight = t.weight.max(weight);
            return;
        }
        if self.per_field[field as usize] >= MAX_QUERY_TERMS {
            return;
        }
        self.per_field[field as usize] += 1;
        self.at.insert(key, self.terms.len());
        self.terms.push(QueryTerm {
            field,
            term: term.to_string(),
            weight,
        });
    }

    /// Nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, in the order they were added.
    pub fn terms(&self) -> &[QueryTerm] {
        &self.terms
    }
}

/// The question's terms ([`KeywordQuery`]) as one BM25 disjunction over the
/// language fields, each term's score times its weight.
pub fn text_query(f: Fields, query: &KeywordQuery) -> Option<Box<dyn Query>> {
    if query.is_empty() {
        return None;
    }
    let clauses: Vec<(Occur, Box<dyn Query>)> = query
        .terms()
        .iter()
        .map(|t| {
            let q: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_text(t.field.of(f), &t.term),
                IndexRecordOption::WithFreqs,
            ));
            let q: Box<dyn Query> = if t.weight == 1.0 {
                q
            } else {
                Box::new(tantivy::query::BoostQuery::new(q, t.weight))
            };
            (Occur::Should, q)
        })
        .collect();
    Some(Box::new(BooleanQuery::new(clauses)))
}

/// The access rule as tantivy queries (both must match): a shared team,
/// and a level at most the clearance.
fn access_clauses(f: Fields, filter: &Filter) -> Vec<Box<dyn Query>> {
    let teams_q = TermSetQuery::new(
        filter
            .team_names()
            .iter()
            .map(|t| Term::from_field_text(f.teams, t)),
    );
    let level_q = RangeQuery::new(
        Bound::Included(Term::from_field_u64(f.level, 0)),
        Bound::Included(Term::from_field_u64(f.level, filter.max_level() as u64)),
    );
    vec![Box::new(teams_q), Box::new(level_q)]
}

/// The metadata filter as tantivy queries (all must match).
fn doc_filter_clauses(f: Fields, d: &CompiledDocFilter) -> Vec<Box<dyn Query>> {
    let mut out: Vec<Box<dyn Query>> = Vec::new();
    if let Some(p) = &d.path_prefix {
        // `p` itself, or anything in [p/, p0): '0' is the byte after '/'.
        let exact: Box<dyn Query> = Box::new(TermQuery::new(
            Term::from_field_text(f.path, p),
            IndexRecordOption::Basic,
        ));
        let below: Box<dyn Query> = Box::new(RangeQuery::new(
            Bound::Included(Term::from_field_text(f.path, &format!("{p}/"))),
            Bound::Excluded(Term::from_field_text(f.path, &format!("{p}0"))),
        ));
        out.push(Box::new(BooleanQuery::new(vec![
            (Occur::Should, exact),
            (Occur::Should, below),
        ])));
    }
    if let Some(kinds) = &d.kinds {
        out.push(Box::new(TermSetQuery::new(
            kinds.iter().map(|k| Term::from_field_text(f.kind, k)),
        )));
    }
    if d.after_ns.is_some() || d.before_ns.is_some() {
        let lo = d
            .after_ns
            .map(|a| Bound::Included(Term::from_field_i64(f.mtime, a)))
            .unwrap_or(Bound::Unbounded);
        let hi = d
            .before_ns
            .map(|b| Bound::Excluded(Term::from_field_i64(f.mtime, b)))
            .unwrap_or(Bound::Unbounded);
        out.push(Box::new(RangeQuery::new(lo, hi)));
    }
    out
}

/// The documents an access filter admits, per segment of one searcher, as a
/// tantivy query that scores 0 (so BM25 scores are those of the text alone).
/// Built only by [`KeywordIndex::access_bits`]; a segment it does not know
/// matches nothing (fail closed).
#[derive(Clone, Debug)]
pub struct AccessBits {
    segments: Arc<Vec<(SegmentId, BitSet)>>,
}

impl AccessBits {
    fn of(&self, reader: &SegmentReader) -> Option<&BitSet> {
        let id = reader.segment_id();
        self.segments.iter().find(|(s, _)| *s == id).map(|(_, b)| b)
    }
}

impl Query for AccessBits {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for AccessBits {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.of(reader) {
            Some(bits) => Box::new(ConstScorer::new(BitSetDocSet::from(bits.clone()), 0.0)),
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        match self.of(reader) {
            Some(bits) if bits.contains(doc) => Ok(Explanation::new("access filter", 0.0)),
            _ => Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is not visible to this filter"
            ))),
        }
    }
}

fn parse_payload(p: Option<&str>) -> u64 {
    p.and_then(|s| s.strip_prefix("generation="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Adds and deletes chunks in the keyword index; committed with the manifest.
///
/// It waits for its background merges when dropped. tantivy's own writer,
/// dropped with a merge about to end, lets that merge's last step run on
/// without saving the meta file but still collecting garbage: the merged-away
/// segments' files go while the meta file still names them, and the next
/// writer (or reader) finds a file missing. Waiting costs an ingest the
/// merge it started, which is work the index needed anyway.
pub struct KeywordWriter {
    /// `None` only once dropped.
    w: Option<IndexWriter<TantivyDocument>>,
    fields: Fields,
}

impl Drop for KeywordWriter {
    fn drop(&mut self) {
        if let Some(w) = self.w.take() {
            if let Err(e) = w.wait_merging_threads() {
                tracing::warn!("keyword index: a background merge failed ({e})");
            }
        }
    }
}

impl KeywordWriter {
    fn inner(&self) -> &IndexWriter<TantivyDocument> {
        self.w
            .as_ref()
            .expect("the writer is taken only when dropped")
    }

    fn inner_mut(&mut self) -> &mut IndexWriter<TantivyDocument> {
        self.w
            .as_mut()
            .expect("the writer is taken only when dropped")
    }

    /// Adds one chunk of `doc`, with the document's access and metadata fields.
    pub fn add(&self, chunk_id: u64, doc: &DocRecord, text: &str) -> Result<(), StoreError> {
        let f = self.fields;
        let mut d = TantivyDocument::new();
        d.add_u64(f.chunk_id, chunk_id);
        d.add_u64(f.doc_id, doc.id);
        match TextLanguage::detect(text) {
            TextLanguage::English => d.add_text(f.text, text),
            TextLanguage::German => {
                d.add_text(f.text_de, text);
                d.add_text(f.text_de_parts, compound_parts(text));
            }
            TextLanguage::Other => d.add_text(f.text_other, text),
        }
        // No rule: no team and a level above every clearance, so no clause matches.
        match &doc.access {
            Some(a) => {
                for t in &a.teams {
                    d.add_text(f.teams, t);
                }
                d.add_u64(f.level, a.classification.level() as u64);
            }
            None => d.add_u64(f.level, INVISIBLE as u64),
        }
        d.add_text(f.path, &doc.path);
        d.add_text(f.kind, &doc.kind);
        d.add_i64(f.mtime, doc.mtime_ns);
        self.inner().add_document(d).map_err(kw_err)?;
        Ok(())
    }

    /// Removes every chunk of a document (applies to documents added before).
    pub fn delete_doc(&self, doc_id: u64) {
        self.inner()
            .delete_term(Term::from_field_u64(self.fields.doc_id, doc_id));
    }

    /// Removes every chunk (the index is rebuilt).
    pub fn delete_all(&mut self) -> Result<(), StoreError> {
        self.inner_mut().delete_all_documents().map_err(kw_err)?;
        Ok(())
    }

    /// Commits with the index generation as payload.
    pub fn commit(&mut self, generation: u64) -> Result<(), StoreError> {
        let mut p = self.inner_mut().prepare_commit().map_err(kw_err)?;
        p.set_payload(&format!("generation={generation}"));
        p.commit().map_err(kw_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AccessRule, Classification, Principal, TeamTable};

    /// Only damage makes the writer rebuild: an index that cannot be
    /// reached for a moment is reported, never wiped.
    #[test]
    fn only_damage_counts_as_damage() {
        use tantivy::directory::error::OpenReadError;
        use tantivy::TantivyError as T;
        let gone = T::OpenReadError(OpenReadError::FileDoesNotExist("x.term".into()));
        let garbled = T::DataCorruption(tantivy::error::DataCorruption::comment_only("meta.json"));
        let schema = T::SchemaError("the schema does not match".into());
        for e in [gone, garbled, schema] {
            assert!(matches!(open_err(e), StoreError::KeywordDamaged(_)));
        }
        let files = std::io::Error::from_raw_os_error(24); // EMFILE
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        for e in [files, denied] {
            let e = T::IoError(std::sync::Arc::new(e));
            assert!(matches!(open_err(e), StoreError::Keyword(_)));
        }
        let read = T::OpenReadError(OpenReadError::IoError {
            io_error: std::sync::Arc::new(std::io::Error::from_raw_os_error(24)),
            filepath: "x.idx".into(),
        });
        assert!(matches!(open_err(read), StoreError::Keyword(_)));
    }

    /// A one-chunk document visible to team "staff".
    fn doc(id: u64) -> DocRecord {
        DocRecord {
            id,
            root: "/r".into(),
            path: format!("d{id}.md"),
            kind: "md".into(),
            access: Some(AccessRule::new(&["staff"], Classification::Public).unwrap()),
            first_chunk: id,
            n_chunks: 1,
            n_pages: 1,
            ..Default::default()
        }
    }

    #[test]
    fn languages_are_told_apart() {
        assert_eq!(
            TextLanguage::detect(
                "Die Hotelobergrenze liegt bei 140 Euro pro Nacht, in München bei 190 Euro."
            ),
            TextLanguage::German
        );
        assert_eq!(
            TextLanguage::detect(
                "Hotels are booked through the travel portal and the limit is 140 euros."
            ),
            TextLanguage::English
        );
        assert_eq!(TextLanguage::detect("42"), TextLanguage::English);
    }

    #[test]
    fn compounds_yield_their_parts() {
        let p = compound_parts("Die Reisekostenabrechnung und die Hotelobergrenze; kurz.");
        for part in ["reisekosten", "abrechnung", "hotel", "obergrenze"] {
            assert!(p.split(' ').any(|w| w == part), "{part} missing in {p}");
        }
        assert!(!p.contains("kurz"), "short words are not split");
        assert!(compound_parts("2026-11-25 Kalenderwoche48").is_empty());
    }

    /// German text is found by its stems and by the parts of its compounds,
    /// English text by English stems, both through one query.
    #[test]
    fn german_and_english_chunks_are_analysed_in_their_language() {
        let dir = tempfile::tempdir().unwrap();
        let k = KeywordIndex::open_or_create(dir.path()).unwrap();
        let mut w = k.writer().unwrap();
        w.add(
            1,
            &doc(1),
            "Die Hotelobergrenze liegt in München bei 190 Euro pro Nacht, sonst bei 140 Euro.",
        )
        .unwrap();
        w.add(
            2,
            &doc(2),
            "Travel above 500 euros needs the approval of the chief financial officer.",
        )
        .unwrap();
        w.add(
            3,
            &doc(3),
            "Die Kantine im dritten Stock ist montags bis freitags geöffnet.",
        )
        .unwrap();
        w.commit(1).unwrap();
        let (searcher, _) = k.searcher().unwrap().unwrap();
        let mut teams = TeamTable::new();
        teams.intern("staff");
        let p = Principal::new("p", &["staff"], Classification::Public);
        let filter = Filter::new(&p, &teams);
        let access = k.access_bits(&searcher, &filter).unwrap();
        let top = |q: &str| -> Vec<u64> {
            k.search(&searcher, &KeywordQuery::of(q), &access, None, 10)
                .unwrap()
                .into_iter()
                .map(|x| x.0)
                .collect()
        };
        assert_eq!(
            top("Obergrenze für Hotels").first(),
            Some(&1),
            "compound part"
        );
        assert_eq!(top("Hotelobergrenzen").first(), Some(&1), "German stem");
        assert_eq!(top("Kantinen").first(), Some(&3));
        assert_eq!(
            top("approvals for travelling").first(),
            Some(&2),
            "English stem"
        );
    }

    /// A dropped writer leaves nothing running behind it: the merge its last
    /// commit started has ended (and been saved) by the time the drop returns,
    /// so the directory no longer changes and every file the meta file names
    /// is there for the next writer. (tantivy's writer, dropped as it was,
    /// let such a merge finish afterwards and delete files the meta file
    /// still named: a later ingest failed on a missing `.term` file.)
    #[test]
    fn a_dropped_writer_leaves_no_merge_running() {
        let dir = tempfile::tempdir().unwrap();
        let listing = || -> std::collections::BTreeSet<String> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        };
        let mut next_id = 0;
        for round in 0..3u64 {
            let k = KeywordIndex::open_or_create(dir.path()).unwrap();
            let mut w = k.writer().unwrap();
            // Eight commits of one segment each: the merge policy merges them.
            for c in 1..=8u64 {
                w.delete_doc(next_id / 2);
                for _ in 0..300 {
                    next_id += 1;
                    w.add(
                        next_id,
                        &doc(next_id),
                        &format!("text {next_id} {}", "of some length ".repeat(20)),
                    )
                    .unwrap();
                }
                w.commit(round * 8 + c).unwrap();
            }
            drop(w);
            drop(k);
            let after_drop = listing();
            std::thread::sleep(std::time::Duration::from_millis(300));
            assert_eq!(
                listing(),
                after_drop,
                "round {round}: files changed after the drop"
            );
            let k = KeywordIndex::open(dir.path()).unwrap();
            assert_eq!(k.committed_generation().unwrap(), round * 8 + 8);
            let metas = k.index.load_metas().unwrap();
            for seg in &metas.segments {
                let mut files = vec![seg.relative_path(tantivy::index::SegmentComponent::Terms)];
                if seg.has_deletes() {
                    files.push(seg.relative_path(tantivy::index::SegmentComponent::Delete));
                }
                for f in files {
                    assert!(
                        dir.path().join(&f).exists(),
                        "round {round}: {f:?} named by the meta file is missing"
                    );
                }
            }
        }
    }
}
