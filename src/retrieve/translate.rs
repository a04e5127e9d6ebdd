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

use rustc_hash::{FxHashMap, FxHashSet};
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
    words: Vec<Sense>,
}

/// What one question word may be in the other language.
#[derive(Clone, Debug)]
struct Sense {
    /// The question word, lower case.
    word: String,
    /// Each term a sense of it holds ("managing director" gives "manag"
    /// and "director").
    targets: Vec<Target>,
    /// Whole translations, as runs of terms: an English two-word sense of
    /// a German word ("managing director" for "Geschäftsführerin"), or the
    /// German word for an English two-word phrase ("Tankkarte" for "fuel
    /// card").
    wholes: Vec<Box<[Box<str>]>>,
}

/// How a sentence holds a question word through the dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Not at all.
    No,
    /// A word of one of its senses: evidence, but a word may have many
    /// senses ("Geschäftsführerin": manager, director, exec, …), and one of
    /// them is often chance ("tell your manager").
    Sense,
    /// A whole translation: the two words of a two-word sense side by side
    /// ("managing director"), or an English phrase's German word.
    Whole,
}

impl Senses {
    /// `words` (lower case) as the other language's analyser reads them,
    /// for [`Senses::matches`]: once per sentence, not once per question
    /// word.
    pub fn terms_of(&self, words: &[String]) -> Vec<Option<String>> {
        words.iter().map(|w| stem(self.field, w)).collect()
    }

    /// How a sentence (`words`, lower case, and their [`Senses::terms_of`])
    /// holds `question_word` through a translation: a whole one (a run of
    /// terms, see [`Held::Whole`]), or a word of a sense — the same term in
    /// the other language ("Feuerlöscher" for "extinguisher"), or, for a
    /// German target that can be a compound's part, a longer word ending in
    /// it ("Brandschutzordnung" for "order": "ordnung").
    pub fn held(&self, question_word: &str, words: &[String], terms: &[Option<String>]) -> Held {
        let Some(sense) = self.words.iter().find(|s| s.word == question_word) else {
            return Held::No;
        };
        let whole = sense.wholes.iter().any(|run| {
            terms.windows(run.len()).any(|at| {
                at.iter()
                    .zip(run.iter())
                    .all(|(t, r)| t.as_deref() == Some(&**r))
            })
        });
        if whole {
            return Held::Whole;
        }
        let word = words.iter().zip(terms).any(|(w, term)| {
            sense.targets.iter().any(|t| {
                term.as_deref() == Some(&*t.term)
                    || t.part
                        .as_deref()
                        .is_some_and(|p| w.len() > p.len() && w.ends_with(p))
            })
        });
        if word {
            Held::Sense
        } else {
            Held::No
        }
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
    /// Source term → its senses (a range of `senses`) and its
    /// translations as written (a range of `glosses`).
    keys: FxHashMap<Box<str>, Key>,
    senses: Vec<(u32, f32)>,
    /// Translations as written ([`Lexicon::gloss`]; indexes into the
    /// lexicon's surfaces), each source's usual one first.
    glosses: Vec<u32>,
    targets: Vec<Target>,
    /// Two-word senses, as the targets of their two terms in order
    /// (German → English only: "managing director").
    pairs: Vec<[u32; 2]>,
}

/// Where a source term's entries are in its [`Table`].
#[derive(Clone, Copy, Debug)]
struct Key {
    /// Its senses: a range of [`Table::senses`].
    senses: (u32, u32),
    /// Its translations as written, the usual one first: a range of
    /// [`Table::glosses`] (empty if none: only a phrase of more words, or
    /// a German word that is not a single word).
    glosses: (u32, u32),
    /// Its two-word senses: a range of [`Table::pairs`].
    pairs: (u32, u32),
}

impl Table {
    fn get(&self, term: &str) -> &[(u32, f32)] {
        match self.keys.get(term) {
            Some(k) => &self.senses[k.senses.0 as usize..k.senses.1 as usize],
            None => &[],
        }
    }

    /// `term`'s translations as written, by number, the usual one first.
    fn glosses(&self, term: &str) -> &[u32] {
        match self.keys.get(term) {
            Some(k) => &self.glosses[k.glosses.0 as usize..k.glosses.1 as usize],
            None => &[],
        }
    }

    fn has(&self, term: &str) -> bool {
        self.keys.contains_key(term)
    }

    /// `term`'s two-word senses (see [`Table::pairs`]).
    fn pairs(&self, term: &str) -> &[[u32; 2]] {
        match self.keys.get(term) {
            Some(k) => &self.pairs[k.pairs.0 as usize..k.pairs.1 as usize],
            None => &[],
        }
    }
}

/// Counts while reading: source term → what it is given, and how often.
#[derive(Default)]
struct Counts {
    by_source: FxHashMap<String, Given>,
    target_ids: FxHashMap<String, u32>,
    targets: Vec<Target>,
}

/// What one source term is given: target id → times, and translation as
/// written ([`Surfaces`]) → times (a short list: most words have a few).
#[derive(Default)]
struct Given {
    targets: FxHashMap<u32, u32>,
    glosses: Vec<(u32, f32)>,
    pairs: Vec<[u32; 2]>,
}

impl Counts {
    fn given(&mut self, source: &str) -> &mut Given {
        if !self.by_source.contains_key(source) {
            self.by_source.insert(source.to_string(), Given::default());
        }
        self.by_source.get_mut(source).expect("inserted above")
    }

    /// Counts `source` → `target` (an analysed term, and the word it came
    /// from when that can be a compound part). Words with one stem are one
    /// target ("Reise", "Reisen"), with the first word seen as its part.
    fn add(&mut self, source: &str, target: (String, Option<String>)) -> u32 {
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
        *self.given(source).targets.entry(id).or_default() += 1;
        id
    }

    /// Records that `source` has a two-word sense whose terms are the
    /// targets `pair` (in order), the first [`MAX_SENSES`] of them.
    fn add_pair(&mut self, source: &str, pair: [u32; 2]) {
        let given = &mut self.given(source).pairs;
        if given.len() < MAX_SENSES && !given.contains(&pair) {
            given.push(pair);
        }
    }

    /// Counts `surface` (interned) as a translation of `source` as written,
    /// at `weight`.
    fn add_gloss(&mut self, source: &str, surface: u32, weight: f32) {
        let given = &mut self.given(source).glosses;
        match given.iter_mut().find(|g| g.0 == surface) {
            Some(g) => g.1 += weight,
            None => given.push((surface, weight)),
        }
    }

    /// The table, each source's senses weighted by their share and its
    /// translations as written ordered, the usual one first: the one the
    /// dictionary gives it most, each time by its place among the synonyms
    /// (Ding lists the usual translation first: "Dienstreise :: business
    /// trip; official journey"; first 1, second ½, third ⅓ …).
    fn finish(self, surfaces: &[Box<str>]) -> Table {
        let mut t = Table {
            targets: self.targets,
            ..Table::default()
        };
        let mut sources: Vec<_> = self.by_source.into_iter().collect();
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        for (
            source,
            Given {
                targets,
                glosses,
                pairs,
            },
        ) in sources
        {
            let total: u32 = targets.values().sum();
            let mut given: Vec<(u32, u32)> = targets.into_iter().collect();
            given.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            given.truncate(MAX_SENSES);
            let start = t.senses.len() as u32;
            t.senses.extend(
                given
                    .into_iter()
                    .map(|(id, n)| (id, n as f32 / total as f32)),
            );
            let weight = |&(_, w): &(u32, f32)| w;
            let mut glosses = glosses;
            glosses.sort_by(|a, b| {
                weight(b).total_cmp(&weight(a)).then_with(|| {
                    // Ties: the shorter, then the first in order.
                    let (x, y) = (&surfaces[a.0 as usize], &surfaces[b.0 as usize]);
                    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                })
            });
            glosses.truncate(MAX_SENSES);
            let first_gloss = t.glosses.len() as u32;
            t.glosses.extend(glosses.into_iter().map(|g| g.0));
            let first_pair = t.pairs.len() as u32;
            t.pairs.extend(pairs);
            t.keys.insert(
                source.into_boxed_str(),
                Key {
                    senses: (start, t.senses.len() as u32),
                    glosses: (first_gloss, t.glosses.len() as u32),
                    pairs: (first_pair, t.pairs.len() as u32),
                },
            );
        }
        t
    }
}

/// The key of an analysed English two-word phrase.
fn phrase_key(a: &str, b: &str) -> String {
    format!("{a} {b}")
}

/// Translations as written, interned while reading: a [`Table`] names
/// each source's usual one by its number here.
#[derive(Default)]
struct Surfaces {
    ids: FxHashMap<Box<str>, u32>,
}

impl Surfaces {
    fn intern(&mut self, surface: &str) -> u32 {
        if let Some(&id) = self.ids.get(surface) {
            return id;
        }
        let id = self.ids.len() as u32;
        self.ids.insert(surface.into(), id);
        id
    }

    /// The surfaces by number.
    fn into_list(self) -> Vec<Box<str>> {
        let mut list = vec![Box::<str>::default(); self.ids.len()];
        for (s, id) in self.ids {
            list[id as usize] = s;
        }
        list
    }
}

/// How one word of a question goes into its gloss ([`Lexicon::gloss_seen`]).
enum Put<'a> {
    /// As the question writes it (a name, or a word the other language's
    /// text uses too).
    Written,
    /// As this translation.
    As(&'a str),
    /// The dictionary has no translation of it.
    Unknown,
}

/// Text a search has already read in the other language than the
/// question's, for putting the question's words as that text has them
/// ([`Lexicon::gloss_seen`]). Only what the asker may read goes in: the
/// chunks fetched inside the access filter, so what a gloss becomes tells
/// nothing of documents the asker cannot see.
#[derive(Debug)]
pub struct Seen {
    /// The other language's analyser.
    field: TermField,
    /// Its words as written.
    written: FxHashSet<Box<str>>,
    /// Its terms as `field` analyses them.
    terms: FxHashSet<Box<str>>,
}

impl Seen {
    /// Nothing read yet, for a question asked in `asked`.
    pub fn new(asked: Language) -> Seen {
        Seen {
            field: match asked {
                Language::German => TermField::English,
                Language::English => TermField::German,
            },
            written: FxHashSet::default(),
            terms: FxHashSet::default(),
        }
    }

    /// Adds `text`, read in the other language.
    pub fn add(&mut self, text: &str) {
        for w in tokens(text) {
            if !self.written.contains(w) {
                self.written.insert(w.into());
            }
        }
        let terms = &mut self.terms;
        analyse(self.field, text, |t| {
            if !terms.contains(t) {
                terms.insert(t.into());
            }
        });
    }

    /// Whether the text holds every word of `phrase` (as the analyser
    /// reads it: "files" holds "file"); stop words do not count, and a
    /// phrase of stop words only is not held.
    fn holds(&self, phrase: &str) -> bool {
        let (mut any, mut all) = (false, true);
        analyse(self.field, phrase, |t| {
            any = true;
            all &= self.terms.contains(t);
        });
        any && all
    }
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
    /// Translations as written, for a question put into the other language
    /// as text ([`Lexicon::gloss`]; the tables name them by number).
    surfaces: Vec<Box<str>>,
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

/// The words of `s` as written: runs of letters and digits, words of 64
/// bytes or more dropped (what the plain analyser reads as words).
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() < 64)
}

/// The words of `s`, lower-cased: what the plain analyser makes of it
/// (runs of letters and digits; words of 64 bytes or more dropped).
fn words(s: &str) -> Vec<String> {
    tokens(s).map(str::to_lowercase).collect()
}

/// Ding's stand-ins for an object or a reflexive pronoun ("etw. auflisten
/// :: to list sth.", "jdm. etw. leihen", "sich beschweren", "sb.'s"), as
/// [`words`] leaves them. They are no words of the entry: left in, every
/// transitive or reflexive verb (about 14,000 lines on each side) reads as a
/// two-word phrase, so "auflisten" never reached "list", and "to list sth."
/// was filed as the phrase "list sth".
const PLACEHOLDERS: [&str; 9] = [
    "etw", "jd", "jdn", "jdm", "jds", "sich", "sth", "sb", "oneself",
];

/// The words of one synonym of an entry (its notes stripped): [`words`]
/// without Ding's [`PLACEHOLDERS`] (and the "s" of "sb.'s"), and the same
/// words as written (case kept, an English verb's "to" dropped), which is
/// what [`Lexicon::gloss`] writes.
fn entry_words(s: &str) -> (Vec<String>, String) {
    let mut lower = Vec::new();
    let mut surface: Vec<&str> = Vec::new();
    let mut after_placeholder = false;
    for w in tokens(s) {
        let l = w.to_lowercase();
        let placeholder = PLACEHOLDERS.contains(&l.as_str());
        let drop = placeholder || (after_placeholder && l == "s");
        after_placeholder = placeholder;
        if !drop {
            lower.push(l);
            surface.push(w);
        }
    }
    if surface.len() > 1 && surface[0] == "to" {
        surface.remove(0);
    }
    (lower, surface.join(" "))
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

    /// The synonyms (split by `;`) of one side of a sub-entry in `field`'s
    /// language that are short phrases ([`Stems::phrase`]). Notes are
    /// stripped first: they hold semicolons of their own ("to lend {lent;
    /// lent}", "(über; bei; dass)").
    fn synonyms(&mut self, field: TermField, side: &str) -> Vec<Synonym> {
        strip_notes(side)
            .split(';')
            .enumerate()
            .filter_map(|(i, s)| {
                let (words, surface) = entry_words(s);
                self.phrase(field, &words).map(|terms| Synonym {
                    terms,
                    words,
                    surface,
                    place: 1.0 / (i + 1) as f32,
                })
            })
            .collect()
    }
}

/// One synonym of a dictionary entry, as [`Stems::synonyms`] reads it.
struct Synonym {
    /// Its analysed terms.
    terms: Vec<String>,
    /// Its words, lower case ([`entry_words`]).
    words: Vec<String>,
    /// As written ([`entry_words`]).
    surface: String,
    /// 1 for the first synonym, ½ for the second, …: Ding lists the usual
    /// translation first.
    place: f32,
}

impl Lexicon {
    /// Reads a dictionary in Ding's format; with `glosses`, also each word's
    /// usual translation as written, for [`Lexicon::gloss`] (about 0.5 s
    /// and 65 MB more while reading the whole list).
    pub fn load(path: &Path, glosses: bool) -> Result<Lexicon, TranslateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TranslateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let lex = Lexicon::parse_with(&text, glosses);
        if lex.de_en.keys.is_empty() {
            return Err(TranslateError::Empty(path.to_path_buf()));
        }
        Ok(lex)
    }

    /// Parses Ding's format, with glosses ([`Lexicon::parse_with`]).
    pub fn parse(text: &str) -> Lexicon {
        Lexicon::parse_with(text, true)
    }

    /// Parses Ding's format (lines that are not entries are skipped);
    /// without `glosses`, [`Lexicon::gloss`] translates nothing.
    pub fn parse_with(text: &str, glosses: bool) -> Lexicon {
        let mut de_en = Counts::default();
        let mut en_de = Counts::default();
        let mut en2_de = Counts::default();
        let mut stems = Stems::default();
        let mut surfaces = Surfaces::default();
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
                let e_terms = stems.synonyms(TermField::English, e);
                let d_terms = stems.synonyms(TermField::German, d);
                // German single words → English terms.
                for de in &d_terms {
                    let [source] = de.terms.as_slice() else {
                        continue;
                    };
                    if de.words.len() != 1 {
                        continue;
                    }
                    for en in &e_terms {
                        let ids: Vec<u32> = en
                            .terms
                            .iter()
                            .map(|t| de_en.add(source, (t.clone(), None)))
                            .collect();
                        if let [a, b] = ids[..] {
                            de_en.add_pair(source, [a, b]);
                        }
                        if glosses {
                            let id = surfaces.intern(&en.surface);
                            de_en.add_gloss(source, id, en.place);
                        }
                    }
                }
                // English single words and two-word phrases → German
                // terms (and the whole lower-case word, for compounds'
                // parts).
                for en in &e_terms {
                    let (table, source) = match en.terms.as_slice() {
                        [one] => (&mut en_de, one.clone()),
                        [a, b] => (&mut en2_de, phrase_key(a, b)),
                        _ => continue,
                    };
                    for de in &d_terms {
                        for (i, t) in de.terms.iter().enumerate() {
                            let part = (de.terms.len() == de.words.len())
                                .then(|| de.words[i].clone())
                                .filter(|p| p.chars().count() >= MIN_PART);
                            table.add(&source, (t.clone(), part));
                        }
                        if glosses && de.words.len() == 1 {
                            let id = surfaces.intern(&de.surface);
                            table.add_gloss(&source, id, de.place);
                        }
                    }
                }
            }
        }
        let surfaces = surfaces.into_list();
        Lexicon {
            de_en: de_en.finish(&surfaces),
            en_de: en_de.finish(&surfaces),
            en2_de: en2_de.finish(&surfaces),
            surfaces,
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

    /// The language of a short text whose function words and letters do not
    /// tell it ([`Language::told`]), by its words the dictionary knows in
    /// one language only: "dump raw disk image" (dump, raw, disk: English
    /// only) is English, "alternativer Linux-Getty" German. One such word
    /// more than the other side has, and at least twice as many, unless
    /// the other side has none; a single word is a keyword search and is
    /// told nothing (as `told` does). Chosen on the training set of manual
    /// pages (39 of its 512 questions are told by neither function words
    /// nor trigrams), where two words more read a little lower.
    pub fn language_of(&self, text: &str) -> Option<Language> {
        let words: Vec<String> = words(text)
            .into_iter()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .collect();
        if words.len() < 2 {
            return None;
        }
        let (mut en, mut de) = (0usize, 0usize);
        for w in &words {
            let english = stem(TermField::English, w).is_some_and(|s| self.en_de.has(&s));
            let german = stem(TermField::German, w).is_some_and(|s| self.de_en.has(&s));
            match (english, german) {
                (true, false) => en += 1,
                (false, true) => de += 1,
                _ => {}
            }
        }
        let ahead = |a: usize, b: usize| a > b && (b == 0 || a >= 2 * b);
        if ahead(en, de) {
            Some(Language::English)
        } else if ahead(de, en) {
            Some(Language::German)
        } else {
            None
        }
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

    /// `query` (asked in `asked`) put word by word into the other language,
    /// as text for the embedding model: each word's usual translation
    /// (an English two-word phrase's as one), a German compound the
    /// dictionary lacks by its parts, stop words left out, and words it does
    /// not know (names, numbers, "VPN", "bzip2") as written. "Sektoren auf
    /// einem Gerät verwerfen" → "sector device fault". Rough, but a small
    /// multilingual model places a German question's English gloss nearer
    /// the English passage that answers than the question itself: its
    /// vectors lean to the language they read. None if nothing was
    /// translated.
    pub fn gloss(&self, query: &str, asked: Language) -> Option<String> {
        self.gloss_seen(query, asked, None)
    }

    /// [`Lexicon::gloss`], each word put as the text the asker can read in
    /// the other language has it (`seen`, the chunks a search has already
    /// fetched, inside the access filter): a word that text holds as
    /// written is a name and stays ("Nordwind" in the English pages of a
    /// German company, not "north wind"); else the first of its
    /// translations that text holds ("Datei" → "file" where the pages say
    /// "file", not the dictionary's first "computer file"; "Prozess" →
    /// "process", not "legal proceedings"); else the word itself where that
    /// text holds it in any case ("Kernel" → "kernel"); else the usual
    /// translation.
    pub fn gloss_seen(&self, query: &str, asked: Language, seen: Option<&Seen>) -> Option<String> {
        let raw: Vec<&str> = tokens(query).collect();
        // Function words ("wer", "who") are left out like stop words, and
        // break an English phrase like them.
        let content = |lower: &str, field: TermField| {
            (!asked.is_function_word(lower))
                .then(|| stem(field, lower))
                .flatten()
        };
        // A source term's translations as written: the first the seen text
        // holds, and the usual one.
        let held = |table: &Table, s: &str| {
            let seen = seen?;
            table
                .glosses(s)
                .iter()
                .map(|&g| &*self.surfaces[g as usize])
                .find(|g| seen.holds(g))
        };
        let usual = |table: &Table, s: &str| {
            table
                .glosses(s)
                .first()
                .map(|&g| &*self.surfaces[g as usize])
        };
        // A translation for a term that is not a whole word the seen text
        // could hold as written (a compound's part, an English phrase): the
        // held one, else the usual one.
        let chosen = |table: &Table, s: &str| held(table, s).or_else(|| usual(table, s));
        // How the word `w` (the source term `s`) goes in: as written where
        // the seen text holds it so (a name); else the translation that text
        // holds; else as written where the text holds it in another case;
        // else the usual translation.
        let put = |table: &Table, s: &str, w: &str| {
            let Some(seen) = seen else {
                return usual(table, s).map_or(Put::Unknown, Put::As);
            };
            if seen.written.contains(w) {
                return Put::Written;
            }
            match held(table, s) {
                Some(g) => Put::As(g),
                None if seen.holds(w) => Put::Written,
                None => usual(table, s).map_or(Put::Unknown, Put::As),
            }
        };
        let mut out: Vec<&str> = Vec::new();
        let mut translated = false;
        match asked {
            Language::German => {
                for w in &raw {
                    let lower = w.to_lowercase();
                    let Some(s) = content(&lower, TermField::German) else {
                        continue;
                    };
                    match put(&self.de_en, &s, w) {
                        Put::Written => out.push(w),
                        Put::As(g) => {
                            out.push(g);
                            translated = true;
                        }
                        Put::Unknown => {
                            let parts: Vec<&str> = self
                                .split_compound(&lower)
                                .iter()
                                .filter_map(|p| chosen(&self.de_en, p))
                                .collect();
                            if parts.is_empty() {
                                out.push(w);
                            } else {
                                out.extend(parts);
                                translated = true;
                            }
                        }
                    }
                }
            }
            Language::English => {
                let stems: Vec<Option<String>> = raw
                    .iter()
                    .map(|w| content(&w.to_lowercase(), TermField::English))
                    .collect();
                let mut i = 0;
                while i < raw.len() {
                    if let (Some(Some(a)), Some(Some(b))) = (stems.get(i), stems.get(i + 1)) {
                        let key = phrase_key(a, b);
                        if let Some(g) = chosen(&self.en2_de, &key) {
                            out.push(g);
                            translated = true;
                            i += 2;
                            continue;
                        }
                    }
                    if let Some(s) = &stems[i] {
                        match put(&self.en_de, s, raw[i]) {
                            Put::Written | Put::Unknown => out.push(raw[i]),
                            Put::As(g) => {
                                out.push(g);
                                translated = true;
                            }
                        }
                    }
                    i += 1;
                }
            }
        }
        translated.then(|| out.join(" "))
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
        fn sense<'a>(senses: &'a mut Senses, w: &str) -> &'a mut Sense {
            let at = match senses.words.iter().position(|s| s.word == w) {
                Some(i) => i,
                None => {
                    senses.words.push(Sense {
                        word: w.to_string(),
                        targets: Vec::new(),
                        wholes: Vec::new(),
                    });
                    senses.words.len() - 1
                }
            };
            &mut senses.words[at]
        }
        self.each_translation(query, asked, |covered, _, t, _| {
            for w in covered {
                let s = sense(&mut senses, w);
                if !s.targets.iter().any(|x| x.term == t.term) {
                    s.targets.push(t.clone());
                }
                // An English phrase's German word is a whole translation
                // of each of its two words.
                let is_this = |r: &[Box<str>]| matches!(r, [one] if *one == t.term);
                if covered.len() == 2 && !s.wholes.iter().any(|r| is_this(r)) {
                    s.wholes.push(Box::new([t.term.clone()]));
                }
            }
        });
        if asked == Language::German {
            for w in words(query) {
                let Some(s) = stem(TermField::German, &w) else {
                    continue;
                };
                for &[a, b] in self.de_en.pairs(&s) {
                    let run: Box<[Box<str>]> = Box::new([
                        self.de_en.targets[a as usize].term.clone(),
                        self.de_en.targets[b as usize].term.clone(),
                    ]);
                    let s = sense(&mut senses, &w);
                    if !s.wholes.contains(&run) {
                        s.wholes.push(run);
                    }
                }
            }
        }
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
    /// Read with glosses ([`Lexicon::load`]): `[retrieve] translated_vectors`.
    glosses: bool,
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
    /// `glosses`: read with each word's translation as written too
    /// (`[retrieve] translated_vectors`; a separate copy).
    pub fn shared(path: &Path, glosses: bool) -> &'static Dictionary {
        type Opened = HashMap<(PathBuf, bool), &'static Dictionary>;
        static OPENED: OnceLock<Mutex<Opened>> = OnceLock::new();
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut opened = crate::sync::lock(OPENED.get_or_init(Default::default));
        opened.entry((key.clone(), glosses)).or_insert_with(|| {
            Box::leak(Box::new(Dictionary {
                path: key,
                glosses,
                lexicon: OnceLock::new(),
            }))
        })
    }

    /// The same file read with glosses (for comparing configurations).
    pub fn with_glosses(&self) -> &'static Dictionary {
        Dictionary::shared(&self.path, true)
    }

    /// The lexicon, read now if it was not yet (callers at the same time
    /// wait for one read). None if it cannot be read: that is logged once,
    /// and questions are then searched in their own words.
    pub fn get(&self) -> Option<&Lexicon> {
        self.lexicon
            .get_or_init(|| {
                let t = std::time::Instant::now();
                match Lexicon::load(&self.path, self.glosses) {
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
    Ok(Some(Dictionary::shared(
        &path,
        cfg.retrieve.translated_vectors,
    )))
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
Geschäftsführerin {f} | Geschäftsführerinnen {pl} :: managing director; manager | managing directors; managers
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

    /// Ding's own lines (abridged): transitive and reflexive verbs carry
    /// "etw.", "jdm.", "sth.", "sb." and "sich", which are no words of the
    /// entry.
    #[test]
    fn placeholders_of_verbs_are_not_words() {
        let ding = "\
etw. aufzählen; auflisten; verzeichnen {vt} | aufzählend; auflistend :: to list sth. | listing
jdm. etw. leihen; jdm. etw. borgen {vt} | leihend :: to lend {lent; lent} sb. sth. | lending
sich beklagen; sich beschweren {vr} (über; bei; dass) | sich beklagend :: to complain (of; about; to; that) | complaining
";
        let lex = Lexicon::parse(ding);
        let of = |text: &str, asked: Language, field: TermField| {
            let mut q = KeywordQuery::default();
            lex.translate(text, asked, 1.0, &mut q);
            names(&q, field)
        };
        assert_eq!(
            of("auflisten", Language::German, TermField::English),
            ["list"]
        );
        assert_eq!(of("leihen", Language::German, TermField::English), ["lend"]);
        assert_eq!(
            of("beschweren", Language::German, TermField::English),
            ["complain"]
        );
        let german = |w: &str| stem(TermField::German, w).unwrap_or_default();
        let de = of("list the files", Language::English, TermField::German);
        assert!(de.contains(&german("auflisten")), "{de:?}");
        let de = of("Who complains?", Language::English, TermField::German);
        assert!(de.contains(&german("beschweren")), "{de:?}");
        // The note's "(über; bei; dass)" is no sense of "complain".
        assert_eq!(de.len(), 2, "{de:?}");
        // "list sth" is no phrase of the dictionary.
        assert!(of("list sth", Language::English, TermField::German)
            .iter()
            .all(|t| t != "etw"));
    }

    #[test]
    fn a_gloss_puts_the_question_into_the_other_language_as_written() {
        let lex = Lexicon::parse(DING);
        // Stop words left out, a compound by its parts, each word's usual
        // sense as written ("to approve" → "approve"), unknown words kept.
        let g = lex.gloss(
            "Wer genehmigt die Hotelobergrenze im VPN?",
            Language::German,
        );
        assert_eq!(g.as_deref(), Some("approved hotel upper limit VPN"));
        // An English two-word phrase as one German word, the way German
        // writes it; case kept.
        let g = lex.gloss("Who pays for the fuel card?", Language::English);
        assert_eq!(g.as_deref(), Some("pays Tankkarte"));
        // Nothing translated, no gloss.
        assert_eq!(lex.gloss("VPN Xyzzy", Language::German), None);
        assert_eq!(lex.gloss("", Language::English), None);
    }

    /// Of the senses the dictionary gives, the one it lists first where it
    /// gives them (Ding lists the usual translation first), however many
    /// other words a later one translates.
    #[test]
    fn a_gloss_takes_the_sense_listed_first() {
        let ding = "\
Dienstreise {f} | Dienstreisen {pl} :: business trip; official journey; mission | business trips; official journeys; missions
Auftrag {m} :: mission; order
Einsatz {m} :: mission; deployment
Mission {f} :: mission
";
        let lex = Lexicon::parse(ding);
        let g = lex.gloss("Dienstreise", Language::German);
        assert_eq!(g.as_deref(), Some("business trip"), "{g:?}");
        // The plural shares the stem, and so the gloss.
        let g = lex.gloss("Dienstreisen", Language::German);
        assert_eq!(g.as_deref(), Some("business trip"), "{g:?}");
        // English → German: of the German synonyms of one entry, the first.
        let lex = Lexicon::parse(DING);
        let g = lex.gloss("ceiling", Language::English);
        assert_eq!(g.as_deref(), Some("Obergrenze"), "{g:?}");
    }

    /// A short text without function words is told by the words the
    /// dictionary knows in one language only.
    #[test]
    fn a_text_without_function_words_is_told_by_its_dictionary_words() {
        let ding = "\
Speicherauszug {m} :: dump
roh {adj} :: raw
Festplatte {f} :: disk
Bild {n} :: image
alternativ {adj} :: alternative
";
        let lex = Lexicon::parse(ding);
        assert_eq!(
            lex.language_of("dump raw disk image"),
            Some(Language::English)
        );
        assert_eq!(
            lex.language_of("alternativer Linux-Getty"),
            Some(Language::German)
        );
        // Words it does not know, as many of each side, or one word only:
        // not told.
        assert_eq!(lex.language_of("VPN Zugang"), None);
        assert_eq!(lex.language_of("raw Bild"), None);
        assert_eq!(lex.language_of("disk"), None);
        assert_eq!(lex.language_of(""), None);
    }

    /// With text the asker can read in the other language, each word is put
    /// as that text has it: a name as written, the translation the text
    /// uses, the word itself where the text holds it in another case; with
    /// none of these, the usual translation as before.
    #[test]
    fn a_gloss_puts_each_word_as_the_text_in_the_other_language_has_it() {
        let ding = "\
Datei {f} [comp.] | Dateien {pl} :: computer file; file | computer files; files
Prozess {m} [jur.] :: legal proceedings; lawsuit; process
Nordwind {m} :: north wind
Kernel {m} :: nucleus
vergleichen {vt} :: to compare
";
        let lex = Lexicon::parse(ding);
        let q = "Nordwind Dateien Prozess Kernel vergleichen";
        // Nothing read: the dictionary's usual translations.
        let g = lex.gloss(q, Language::German);
        assert_eq!(
            g.as_deref(),
            Some("north wind computer file legal proceedings nucleus compare"),
            "{g:?}"
        );
        let mut seen = Seen::new(Language::German);
        seen.add("Nordwind Logistik compares the files of each process the kernel runs.");
        let g = lex.gloss_seen(q, Language::German, Some(&seen));
        assert_eq!(
            g.as_deref(),
            Some("Nordwind file process Kernel compare"),
            "{g:?}"
        );
        // A translation counts as held only if every word of it is: "north
        // wind" is not held by text that says "north" alone.
        let mut seen = Seen::new(Language::German);
        seen.add("The north gate opens at nine.");
        let g = lex.gloss_seen("Nordwind Dateien", Language::German, Some(&seen));
        assert_eq!(g.as_deref(), Some("north wind computer file"), "{g:?}");
        // The word in another case is kept too ("nordwind" as a host name).
        seen.add("nordwind is a host name.");
        let g = lex.gloss_seen("Nordwind", Language::German, Some(&seen));
        assert_eq!(g, None, "kept as written: nothing translated");
        // English to German: the German text's word for it.
        let mut seen = Seen::new(Language::English);
        seen.add("Die Dateien werden verglichen.");
        let g = lex.gloss_seen("compare files", Language::English, Some(&seen));
        assert_eq!(g.as_deref(), Some("vergleichen Datei"), "{g:?}");
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
        let held = |senses: &Senses, q: &str, sentence: &str| {
            let w = words(sentence);
            senses.held(q, &w, &senses.terms_of(&w))
        };
        let check =
            |senses: &Senses, q: &str, sentence: &str| held(senses, q, sentence) != Held::No;
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
        // A whole translation against one word of a sense: the two words
        // of "managing director" side by side, or a phrase's compound,
        // against "manager" alone or the two words apart.
        let boss = lex.senses("Wer ist Geschäftsführerin?", Language::German);
        let q = "geschäftsführerin";
        assert_eq!(
            held(&boss, q, "Our managing director is Dr. Sander."),
            Held::Whole
        );
        assert_eq!(held(&boss, q, "Please tell your manager."), Held::Sense);
        assert_eq!(
            held(&boss, q, "The director of sales is managing it."),
            Held::Sense
        );
        assert_eq!(held(&boss, q, "The canteen closes at two."), Held::No);
        assert_eq!(
            held(&en, "fuel", "Die Tankkarten liegen im Büro."),
            Held::Whole
        );
        assert_eq!(
            held(&en, "cards", "Die Kundenkarte gilt ein Jahr."),
            Held::Sense
        );
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
