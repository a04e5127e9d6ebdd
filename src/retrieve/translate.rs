//! Query translation between German and English for the keyword side.
//!
//! Keyword search matches a question's own words, so a German question
//! finds German chunks and misses the English policy that answers it. The
//! embedding model bridges languages only roughly (multilingual-e5-small
//! puts the right English document first for a fifth of the German
//! questions of `bench/multilingual/`). A bilingual dictionary closes much
//! of that gap the way cross-language retrieval has long done it: each word
//! of the question is looked up, and its translations are searched in the
//! other language's field at a lower weight, each translation weighted by
//! how often the dictionary gives it for that word.
//!
//! The dictionary is Ding's German–English list (Debian's `trans-de-en`,
//! GPL-2+, ~200,000 entries; `make models` fetches it pinned and
//! checksummed). Its lines read
//! `Reise {f} | Reisen {pl} :: journey; trip | journeys; trips`: sub-entries
//! split by `|` correspond on both sides, synonyms by `;`, and
//! `{…}`, `[…]`, `(…)` are annotations. Both sides are analysed here with the
//! keyword index's own analysers, so that translations are terms the index
//! holds (stemmed English for English chunks, stemmed German and whole
//! lower-case words for German chunks and their compound parts).

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::store::keyword::{analyse, KeywordQuery, TermField, MIN_PART, PARTS_BOOST};
use crate::text::Language;

/// Why a dictionary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The file could not be read.
    #[error("dictionary {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file holds no entry in Ding's format.
    #[error("dictionary {0}: no entries in Ding's format (\"Wort :: word\") found")]
    Empty(PathBuf),
}

/// Translations kept per word: the dictionary's most frequent senses. A
/// common word has dozens ("Stelle": place, position, job, office, …); the
/// rare ones add noise more than recall.
const MAX_SENSES: usize = 8;
/// Words this long or longer that the dictionary lacks are split into two
/// words it has (German compounds: "Hotelobergrenze" → Hotel + Obergrenze).
const MIN_SPLIT: usize = 8;
/// Target phrases of more words than this are left out ("to be the best
/// hotel locally"): an idiom's words are not a translation of the word.
const MAX_PHRASE: usize = 2;

/// One target term: how it is searched.
#[derive(Clone, Debug)]
struct Target {
    /// The analysed term (the target language's stemmed field).
    term: Box<str>,
    /// For German targets, the lower-case word as a compound part
    /// (`TermField::GermanParts`), when long enough to be one.
    part: Option<Box<str>>,
}

/// The other-language words a question's words may be (see
/// [`Lexicon::senses`]).
#[derive(Clone, Debug)]
pub struct Senses {
    /// The field the targets are analysed for (the other language's).
    field: TermField,
    /// Question word (lower case) → what it may be in the other language.
    words: Vec<(String, Vec<Target>)>,
}

impl Senses {
    /// `words` (lower case) as the other language's analyser reads them,
    /// for [`Senses::matches`]: once per sentence, not once per question
    /// word.
    pub fn terms_of(&self, words: &[String]) -> Vec<Option<String>> {
        words.iter().map(|w| stem(self.field, w)).collect()
    }

    /// Whether a word of a sentence (`words`, lower case, and their
    /// [`Senses::terms_of`]) is a translation of `question_word`: the same
    /// term in the other language ("Feuerlöscher" for "extinguisher"), or,
    /// for a German target that can be a compound's part, a longer word
    /// ending in it ("Brandschutzordnung" for "order": "ordnung").
    pub fn matches(&self, question_word: &str, words: &[String], terms: &[Option<String>]) -> bool {
        let Some((_, targets)) = self.words.iter().find(|(w, _)| w == question_word) else {
            return false;
        };
        words.iter().zip(terms).any(|(w, term)| {
            targets.iter().any(|t| {
                term.as_deref() == Some(&*t.term)
                    || t.part
                        .as_deref()
                        .is_some_and(|p| w.len() > p.len() && w.ends_with(p))
            })
        })
    }

    /// Whether no word of the question has a translation.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// One direction of the dictionary: analysed source term → targets with
/// the share of the dictionary's senses that give them.
#[derive(Default)]
struct Table {
    keys: FxHashMap<Box<str>, (u32, u32)>,
    senses: Vec<(u32, f32)>,
    targets: Vec<Target>,
}

impl Table {
    fn get(&self, term: &str) -> &[(u32, f32)] {
        match self.keys.get(term) {
            Some(&(a, b)) => &self.senses[a as usize..b as usize],
            None => &[],
        }
    }

    fn has(&self, term: &str) -> bool {
        self.keys.contains_key(term)
    }
}

/// Counts while reading: source term → target id → times given.
#[derive(Default)]
struct Counts {
    by_source: FxHashMap<String, FxHashMap<u32, u32>>,
    target_ids: FxHashMap<String, u32>,
    targets: Vec<Target>,
}

impl Counts {
    /// Counts `source` → `target` (an analysed term, and the word it came
    /// from when that can be a compound part). Words with one stem are one
    /// target ("Reise", "Reisen"), with the first word seen as its part.
    fn add(&mut self, source: &str, target: (String, Option<String>)) {
        let next = self.targets.len() as u32;
        let id = match self.target_ids.get(&target.0) {
            Some(&id) => id,
            None => {
                self.target_ids.insert(target.0.clone(), next);
                self.targets.push(Target {
                    term: target.0.into(),
                    part: None,
                });
                next
            }
        };
        let t = &mut self.targets[id as usize];
        if t.part.is_none() {
            t.part = target.1.map(Into::into);
        }
        let given = match self.by_source.get_mut(source) {
            Some(g) => g,
            None => self.by_source.entry(source.to_string()).or_default(),
        };
        *given.entry(id).or_default() += 1;
    }

    fn finish(self) -> Table {
        let mut t = Table {
            targets: self.targets,
            ..Table::default()
        };
        let mut sources: Vec<_> = self.by_source.into_iter().collect();
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        for (source, given) in sources {
            let total: u32 = given.values().sum();
            let mut given: Vec<(u32, u32)> = given.into_iter().collect();
            given.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            given.truncate(MAX_SENSES);
            let start = t.senses.len() as u32;
            t.senses.extend(
                given
                    .into_iter()
                    .map(|(id, n)| (id, n as f32 / total as f32)),
            );
            t.keys
                .insert(source.into_boxed_str(), (start, t.senses.len() as u32));
        }
        t
    }
}

/// The key of an analysed English two-word phrase.
fn phrase_key(a: &str, b: &str) -> String {
    format!("{a} {b}")
}

/// A German–English dictionary, analysed for the keyword index.
pub struct Lexicon {
    de_en: Table,
    en_de: Table,
    /// English two-word phrases ("fuel card", keyed "fuel card" as
    /// analysed) → German terms. German writes most such phrases as one
    /// compound ("Tankkarte"), which the phrase's words one by one never
    /// reach: "fuel" gives Kraftstoff, Treibstoff, … and "card" Karte.
    en2_de: Table,
}

impl std::fmt::Debug for Lexicon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lexicon")
            .field("german_words", &self.de_en.keys.len())
            .field("english_words", &self.en_de.keys.len())
            .field("english_phrases", &self.en2_de.keys.len())
            .finish()
    }
}

/// Annotations dropped from an entry: `{f}`, `[econ.]`, `(kleines Hotel)`, `<…>`.
fn strip_notes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '{' | '[' | '(' | '<' => depth += 1,
            '}' | ']' | ')' | '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The words of `s`, lower-cased: what the plain analyser makes of it
/// (runs of letters and digits; words of 64 bytes or more dropped).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() < 64)
        .map(str::to_lowercase)
        .collect()
}

/// `field`'s analysis of one word (None for a stop word).
fn stem(field: TermField, word: &str) -> Option<String> {
    let mut out = None;
    analyse(field, word, |t| {
        if out.is_none() {
            out = Some(t.to_string());
        }
    });
    out
}

/// [`stem`] remembered: the dictionary repeats its words (inflected forms,
/// "to …"), and running the analyser is most of the time of reading it.
#[derive(Default)]
struct Stems {
    seen: [FxHashMap<String, Option<String>>; 4],
}

impl Stems {
    fn get(&mut self, field: TermField, word: &str) -> Option<String> {
        let seen = &mut self.seen[field as usize];
        if let Some(s) = seen.get(word) {
            return s.clone();
        }
        let s = stem(field, word);
        seen.insert(word.to_string(), s.clone());
        s
    }

    /// The analysed terms of a short phrase in `field`, if it has
    /// 1..=MAX_PHRASE content words ("to approve" → ["approv"]).
    fn phrase(&mut self, field: TermField, words: &[String]) -> Option<Vec<String>> {
        let mut w = words;
        if field == TermField::English && w.first().is_some_and(|x| x == "to") {
            w = &w[1..];
        }
        if w.is_empty()
            || w.len() > MAX_PHRASE + 1
            || w.iter().any(|x| x.chars().any(char::is_numeric))
        {
            return None;
        }
        let terms: Vec<String> = w.iter().filter_map(|x| self.get(field, x)).collect();
        (!terms.is_empty() && terms.len() <= MAX_PHRASE).then_some(terms)
    }
}

impl Lexicon {
    /// Reads a dictionary in Ding's format.
    pub fn load(path: &Path) -> Result<Lexicon, TranslateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TranslateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let lex = Lexicon::parse(&text);
        if lex.de_en.keys.is_empty() {
            return Err(TranslateError::Empty(path.to_path_buf()));
        }
        Ok(lex)
    }

    /// Parses Ding's format (lines that are not entries are skipped).
    pub fn parse(text: &str) -> Lexicon {
        let mut de_en = Counts::default();
        let mut en_de = Counts::default();
        let mut en2_de = Counts::default();
        let mut stems = Stems::default();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((de, en)) = line.split_once(" :: ") else {
                continue;
            };
            let (mut de_parts, mut en_parts): (Vec<&str>, Vec<&str>) =
                (de.split(" | ").collect(), en.split(" | ").collect());
            // Sub-entries correspond only when both sides have as many.
            if de_parts.len() != en_parts.len() {
                de_parts.truncate(1);
                en_parts.truncate(1);
            }
            for (d, e) in de_parts.iter().zip(&en_parts) {
                let e_terms: Vec<Vec<String>> = e
                    .split(';')
                    .filter_map(|s| stems.phrase(TermField::English, &words(&strip_notes(s))))
                    .collect();
                let d_terms: Vec<(Vec<String>, Vec<String>)> = d
                    .split(';')
                    .filter_map(|s| {
                        let w = words(&strip_notes(s));
                        stems.phrase(TermField::German, &w).map(|t| (t, w))
                    })
                    .collect();
                // German single words → English terms.
                for (terms, w) in &d_terms {
                    if w.len() != 1 || terms.len() != 1 {
                        continue;
                    }
                    for e in &e_terms {
                        for t in e {
                            de_en.add(&terms[0], (t.clone(), None));
                        }
                    }
                }
                // English single words and two-word phrases → German
                // terms (and the whole lower-case word, for compounds'
                // parts).
                for e in &e_terms {
                    let (table, source) = match e.as_slice() {
                        [one] => (&mut en_de, one.clone()),
                        [a, b] => (&mut en2_de, phrase_key(a, b)),
                        _ => continue,
                    };
                    for (terms, w) in &d_terms {
                        for (i, t) in terms.iter().enumerate() {
                            let part = (terms.len() == w.len())
                                .then(|| w[i].clone())
                                .filter(|p| p.chars().count() >= MIN_PART);
                            table.add(&source, (t.clone(), part));
                        }
                    }
                }
            }
        }
        Lexicon {
            de_en: de_en.finish(),
            en_de: en_de.finish(),
            en2_de: en2_de.finish(),
        }
    }

    /// German words with translations, English words with translations, and
    /// English two-word phrases with translations.
    pub fn size(&self) -> (usize, usize, usize) {
        (
            self.de_en.keys.len(),
            self.en_de.keys.len(),
            self.en2_de.keys.len(),
        )
    }

    /// Adds to `q` the translations of `query`'s words, asked in `asked`,
    /// at `weight` times the share of the dictionary's senses that give
    /// each: German words' into the English field, English words' into the
    /// German fields (whole words and compound parts).
    pub fn translate(&self, query: &str, asked: Language, weight: f32, q: &mut KeywordQuery) {
        if weight.is_nan() || weight <= 0.0 {
            return;
        }
        self.each_translation(query, asked, |_, field, t, share| {
            q.add(field, &t.term, weight * share);
            if let Some(p) = &t.part {
                q.add(TermField::GermanParts, p, weight * share * PARTS_BOOST);
            }
        });
    }

    /// What each word of `query` (asked in `asked`) may be in the other
    /// language, for reading sentences rather than searching an index: the
    /// offline answerer uses it to quote a German sentence to an English
    /// question.
    pub fn senses(&self, query: &str, asked: Language) -> Senses {
        let field = match asked {
            Language::German => TermField::English,
            Language::English => TermField::German,
        };
        let mut senses = Senses {
            field,
            words: Vec::new(),
        };
        self.each_translation(query, asked, |covered, _, t, _| {
            for w in covered {
                let at = match senses.words.iter().position(|(x, _)| x == w) {
                    Some(i) => i,
                    None => {
                        senses.words.push((w.to_string(), Vec::new()));
                        senses.words.len() - 1
                    }
                };
                let targets = &mut senses.words[at].1;
                if !targets.iter().any(|x| x.term == t.term) {
                    targets.push(t.clone());
                }
            }
        });
        senses
    }

    /// Calls `f` with each translation of `query`'s words asked in `asked`:
    /// the question words it translates (lower case; two for a phrase), the
    /// field it is in, the target, and the share of the senses that give it.
    fn each_translation(
        &self,
        query: &str,
        asked: Language,
        mut f: impl FnMut(&[&str], TermField, &Target, f32),
    ) {
        let raw: Vec<String> = words(query)
            .into_iter()
            .filter(|w| !w.chars().any(char::is_numeric))
            .collect();
        match asked {
            Language::German => {
                for w in &raw {
                    let Some(s) = stem(TermField::German, w) else {
                        continue;
                    };
                    let sources = if self.de_en.has(&s) {
                        vec![s]
                    } else {
                        self.split_compound(w)
                    };
                    for s in sources {
                        for &(id, share) in self.de_en.get(&s) {
                            let t = &self.de_en.targets[id as usize];
                            f(&[w.as_str()], TermField::English, t, share);
                        }
                    }
                }
            }
            Language::English => {
                // Stop words are None and break a phrase: "card of fuel"
                // is not "fuel card".
                let stems: Vec<Option<String>> =
                    raw.iter().map(|w| stem(TermField::English, w)).collect();
                let mut add = |table: &Table, source: &str, covered: &[&str]| {
                    for &(id, share) in table.get(source) {
                        f(
                            covered,
                            TermField::German,
                            &table.targets[id as usize],
                            share,
                        );
                    }
                };
                for (w, s) in raw.iter().zip(&stems) {
                    if let Some(s) = s {
                        add(&self.en_de, s, &[w.as_str()]);
                    }
                }
                for (i, pair) in stems.windows(2).enumerate() {
                    if let [Some(a), Some(b)] = pair {
                        let covered = [raw[i].as_str(), raw[i + 1].as_str()];
                        add(&self.en2_de, &phrase_key(a, b), &covered);
                    }
                }
            }
        }
    }

    /// A German compound the dictionary lacks, as words it has, each part
    /// with or without a linking "s" ("arbeits|zeit"): "reisekostenabrechnung"
    /// → reis + kost + abrechn. Found left to right over the word's
    /// prefixes (each prefix's split from a shorter one's, the longest known
    /// last part first), so a word of n letters costs at most n² lookups
    /// whatever it is made of.
    fn split_compound(&self, word: &str) -> Vec<String> {
        let chars: Vec<char> = word.chars().collect();
        let n = chars.len();
        if n < MIN_SPLIT {
            return Vec::new();
        }
        let known = |a: usize, b: usize| -> Option<String> {
            let part: String = chars[a..b].iter().collect();
            let bare = part.strip_suffix('s').filter(|_| b < n);
            let found = [Some(part.as_str()), bare]
                .into_iter()
                .flatten()
                .filter(|p| p.chars().count() >= MIN_PART)
                .find_map(|p| stem(TermField::German, p).filter(|t| self.de_en.has(t)));
            found
        };
        // parts[j]: the split of the first j letters, if there is one.
        let mut parts: Vec<Option<Vec<String>>> = vec![None; n + 1];
        for j in MIN_PART..=n {
            if j < n {
                if let Some(t) = known(0, j) {
                    parts[j] = Some(vec![t]);
                    continue;
                }
            }
            for i in MIN_PART..=j.saturating_sub(MIN_PART) {
                let Some(head) = &parts[i] else { continue };
                if let Some(t) = known(i, j) {
                    let mut p = head.clone();
                    p.push(t);
                    parts[j] = Some(p);
                    break;
                }
            }
        }
        parts[n].take().unwrap_or_default()
    }
}

/// Where a configuration's dictionary is: `[retrieve] dictionary`, else
/// Ding's list under the models directory.
pub fn dictionary_path(cfg: &crate::config::Config) -> (PathBuf, bool) {
    match &cfg.retrieve.dictionary {
        Some(p) => (cfg.resolve(p), true),
        None => (
            crate::embed::models_dir(&cfg.embed, |p| cfg.resolve(p)).join(DEFAULT_DICTIONARY),
            false,
        ),
    }
}

/// Ding's list as `make models` unpacks Debian's `trans-de-en`.
pub const DEFAULT_DICTIONARY: &str = "ding/usr/share/trans/de-en";

/// A dictionary file, read on first use (or ahead of it, by
/// [`Dictionary::prefetch`]) and then kept for the life of the process:
/// reading and analysing ~200,000 entries takes a second or more, which a
/// one-shot `hort query` in one language should not pay, and a server pays
/// in the background while it starts.
pub struct Dictionary {
    path: PathBuf,
    lexicon: OnceLock<Option<Lexicon>>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("path", &self.path)
            .field("loaded", &self.lexicon.get().is_some())
            .finish()
    }
}

impl Dictionary {
    /// The dictionary of `path`, one per process and path: it is immutable
    /// and tens of MB in memory, so every search of every service of the
    /// process shares it.
    pub fn shared(path: &Path) -> &'static Dictionary {
        static OPENED: OnceLock<Mutex<HashMap<PathBuf, &'static Dictionary>>> = OnceLock::new();
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut opened = OPENED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        opened.entry(key.clone()).or_insert_with(|| {
            Box::leak(Box::new(Dictionary {
                path: key,
                lexicon: OnceLock::new(),
            }))
        })
    }

    /// The lexicon, read now if it was not yet (callers at the same time
    /// wait for one read). None if it cannot be read: that is logged once,
    /// and questions are then searched in their own words.
    pub fn get(&self) -> Option<&Lexicon> {
        self.lexicon
            .get_or_init(|| {
                let t = std::time::Instant::now();
                match Lexicon::load(&self.path) {
                    Ok(lex) => {
                        let (de, en, phrases) = lex.size();
                        tracing::info!(
                            path = %self.path.display(),
                            german_words = de,
                            english_words = en,
                            english_phrases = phrases,
                            ms = t.elapsed().as_millis() as u64,
                            "German-English dictionary ready"
                        );
                        Some(lex)
                    }
                    Err(e) => {
                        tracing::warn!(
                            "{e}: keywords are searched in the question's language only"
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Whether the lexicon was read (or found unreadable): a search no
    /// longer waits for it.
    pub fn is_read(&self) -> bool {
        self.lexicon.get().is_some()
    }

    /// Reads the lexicon on another thread, so that the first question
    /// asked across languages does not wait for it.
    pub fn prefetch(&'static self) {
        if self.lexicon.get().is_none() {
            let spawned = std::thread::Builder::new()
                .name("hort-dictionary".into())
                .spawn(move || {
                    self.get();
                });
            if let Err(e) = spawned {
                tracing::warn!("dictionary read deferred to first use: {e}");
            }
        }
    }
}

/// The dictionary a configuration translates with. A dictionary named in
/// `[retrieve] dictionary` must be a readable file; the default one is used
/// if it is there, and its absence only warned about (searches then use
/// the question's own words). None when `translation_weight` is 0. The
/// file is read on first use ([`Dictionary::get`]).
pub fn from_config(
    cfg: &crate::config::Config,
) -> Result<Option<&'static Dictionary>, TranslateError> {
    if cfg.retrieve.translation_weight <= 0.0 {
        return Ok(None);
    }
    let (path, named) = dictionary_path(cfg);
    if !path.is_file() {
        if named {
            return Err(TranslateError::Read {
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a readable file"),
                path,
            });
        }
        tracing::warn!(
            path = %path.display(),
            "no German-English dictionary: keywords are searched in the question's language only (make models fetches it)"
        );
        return Ok(None);
    }
    Ok(Some(Dictionary::shared(&path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DING: &str = "\
# Version :: 1.9
Reise {f} | Reisen {pl} :: journey; trip | journeys; trips
Hotel {n} | Hotels {pl} | das erste Haus am Platz sein :: hotel | hotels | to be the best hotel locally
Obergrenze {f}; Höchstgrenze {f} [econ.] :: upper limit; ceiling
genehmigen {vt} | genehmigend | genehmigt :: to approve; to authorize | approving; authorizing | approved; authorized
Kosten {pl} :: costs; expenses
Abrechnung {f} :: settlement; accounting
Tankkarte {f} [auto] | Tankkarten {pl} :: fuel card | fuel cards
Kraftstoff {m}; Treibstoff {m} :: fuel
Karte {f} :: card
kein Eintrag hier
";

    fn terms(q: &KeywordQuery, field: TermField) -> Vec<(String, f32)> {
        q.terms()
            .iter()
            .filter(|t| t.field == field)
            .map(|t| (t.term.clone(), t.weight))
            .collect()
    }

    fn names(q: &KeywordQuery, field: TermField) -> Vec<String> {
        terms(q, field).into_iter().map(|t| t.0).collect()
    }

    /// The translations of `text` asked in `asked`, by the list above.
    fn translated(text: &str, asked: Language, weight: f32) -> KeywordQuery {
        let mut q = KeywordQuery::default();
        Lexicon::parse(DING).translate(text, asked, weight, &mut q);
        q
    }

    #[test]
    fn german_words_find_english_terms() {
        let q = translated("Wer genehmigt die Reise?", Language::German, 0.5);
        let en = terms(&q, TermField::English);
        let names = names(&q, TermField::English);
        for want in ["journey", "trip", "approv", "author"] {
            assert!(names.iter().any(|n| n == want), "{en:?}");
        }
        // Two senses of "Reise", each half of the weight.
        let trip = en.iter().find(|t| t.0 == "trip").map(|t| t.1);
        assert_eq!(trip, Some(0.25));
        // Nothing went the other way for a German question.
        assert!(terms(&q, TermField::German).is_empty());
    }

    #[test]
    fn idioms_and_notes_are_not_translations() {
        let q = translated("Hotel", Language::German, 1.0);
        assert_eq!(
            terms(&q, TermField::English),
            vec![("hotel".to_string(), 1.0)]
        );
        let names = names(
            &translated("Höchstgrenze", Language::German, 1.0),
            TermField::English,
        );
        assert!(names.contains(&"ceil".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("econ")), "{names:?}");
    }

    #[test]
    fn compounds_the_dictionary_lacks_are_split() {
        let en = |text| names(&translated(text, Language::German, 1.0), TermField::English);
        let names = en("Hotelobergrenze");
        assert!(names.contains(&"hotel".to_string()), "{names:?}");
        assert!(names.contains(&"ceil".to_string()), "{names:?}");
        let names = en("Reisekostenabrechnung");
        assert!(names.contains(&"settlement".to_string()), "{names:?}");
        assert!(names.contains(&"trip".to_string()), "{names:?}");
        assert!(names.contains(&"cost".to_string()), "{names:?}");
    }

    #[test]
    fn long_made_up_compounds_split_or_not_without_blowing_up() {
        let en = |text: &str| names(&translated(text, Language::German, 1.0), TermField::English);
        // Every 4-letter prefix is a word here, so a naive search over the
        // ways to split would be exponential; this one is n².
        let names = en(&"reise".repeat(12));
        assert!(names.contains(&"trip".to_string()), "{names:?}");
        assert!(translated(&"x".repeat(60), Language::German, 1.0).is_empty());
        // Linking "s" between parts.
        let names = en("Reiseskosten");
        assert!(names.contains(&"cost".to_string()), "{names:?}");
    }

    #[test]
    fn english_words_find_german_terms_and_compound_parts() {
        let q = translated("Who approves the trip?", Language::English, 1.0);
        let de = names(&q, TermField::German);
        assert!(de.contains(&"genehm".to_string()), "{de:?}");
        assert!(de.contains(&"reis".to_string()), "{de:?}");
        let parts = terms(&q, TermField::GermanParts);
        // "Reise" and "Reisen" are one target: the whole sense's weight.
        let reise = parts.iter().find(|t| t.0 == "reise");
        assert!(
            reise.is_some_and(|t| (t.1 - PARTS_BOOST).abs() < 1e-6),
            "{parts:?}"
        );
        assert!(!parts.iter().any(|t| t.0 == "reisen"), "{parts:?}");
        assert!(terms(&q, TermField::English).is_empty());
    }

    #[test]
    fn english_phrases_find_the_german_compound() {
        let lex = Lexicon::parse(DING);
        let tank = stem(TermField::German, "tankkarte").unwrap();
        let de = |text: &str| {
            let mut q = KeywordQuery::default();
            lex.translate(text, Language::English, 1.0, &mut q);
            (
                names(&q, TermField::German),
                names(&q, TermField::GermanParts),
            )
        };
        let (whole, parts) = de("What if I lose the fuel cards?");
        assert!(whole.contains(&tank), "{whole:?}");
        assert!(parts.contains(&"tankkarte".to_string()), "{parts:?}");
        // The words one by one still count.
        assert!(whole.contains(&stem(TermField::German, "kraftstoff").unwrap()));
        // Not a phrase: the words are apart, or in the other order.
        for text in ["a card of fuel", "card fuel", "fuel", "card"] {
            let (whole, _) = de(text);
            assert!(!whole.contains(&tank), "{text}: {whole:?}");
        }
    }

    #[test]
    fn senses_read_sentences_in_the_other_language() {
        let lex = Lexicon::parse(DING);
        let words = |t: &str| words(t);
        let check = |senses: &Senses, q: &str, sentence: &str| {
            let w = words(sentence);
            senses.matches(q, &w, &senses.terms_of(&w))
        };
        let en = lex.senses("Who approves the fuel cards?", Language::English);
        // A word, a compound reached by the phrase (both of its words), an
        // inflected form.
        assert!(check(&en, "approves", "Der Leiter genehmigt die Reise."));
        assert!(check(&en, "fuel", "Die Tankkarten liegen im Büro."));
        assert!(check(&en, "cards", "Die Tankkarten liegen im Büro."));
        // A compound ending in a translation ("karte" as a part).
        assert!(check(&en, "cards", "Die Kundenkarte gilt ein Jahr."));
        // Not a translation, not a question word, not the same language.
        assert!(!check(&en, "approves", "Die Kantine schließt um zwei."));
        assert!(!check(&en, "who", "Der Leiter genehmigt die Reise."));
        assert!(!check(&en, "approves", "The manager approves trips."));
        let de = lex.senses("Wer genehmigt die Reisekosten?", Language::German);
        assert!(check(
            &de,
            "reisekosten",
            "Travel costs are settled monthly."
        ));
        assert!(check(&de, "genehmigt", "The head of unit approves trips."));
        assert!(!check(&de, "genehmigt", "Der Leiter genehmigt die Reise."));
        assert!(lex.senses("Quux zzz", Language::German).is_empty());
    }

    #[test]
    fn nothing_happens_at_weight_zero_or_for_unknown_words() {
        assert!(translated("Reise", Language::German, 0.0).is_empty());
        assert!(translated("Quux 2024 zzz", Language::German, 1.0).is_empty());
        assert!(translated("Quux 2024 zzz", Language::English, 1.0).is_empty());
        assert!(Lexicon::parse("no entries\n").size() == (0, 0, 0));
    }

    #[test]
    fn a_translation_never_lowers_a_word_of_the_question() {
        let lex = Lexicon::parse(DING);
        let mut q = KeywordQuery::of("hotel");
        lex.translate("Hotel", Language::German, 0.3, &mut q);
        let en = terms(&q, TermField::English);
        assert_eq!(en, vec![("hotel".to_string(), 1.0)]);
    }
}
