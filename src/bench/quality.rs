//! `hort bench quality`: retrieval quality on a judged query set (nDCG@10,
//! recall@10 and whether a relevant document is first or in the first
//! three, at document level), for keyword search alone, vector search alone
//! and the fused hybrid, per language pair where the set labels them and per
//! embedding model, so the defaults rest on numbers.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{write_results, Machine};
use crate::acl::{Classification, Principal};
use crate::config::Fusion;
use crate::embed::Embedder;
use crate::retrieve::{self, Request, SearchParams};
use crate::store::{IndexRead, Snapshot};

/// A query with graded relevance per document path.
#[derive(Debug, Clone, Deserialize)]
pub struct Judged {
    /// The query id.
    pub id: String,
    /// The question.
    pub query: String,
    /// The query's language, where the set says.
    #[serde(default)]
    pub lang: Option<String>,
    /// Relevant document ids with their grades.
    pub relevant: HashMap<String, u32>,
}

/// Reads a BEIR-style query file with judgements.
pub fn load_queries(path: &Path) -> Result<Vec<Judged>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// nDCG@k with gains 2^rel − 1 over a ranked list of document keys.
pub fn ndcg_at(ranked: &[String], rel: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| {
            let g = rel.get(d).copied().unwrap_or(0);
            (2f64.powi(g as i32) - 1.0) / ((i + 2) as f64).log2()
        })
        .sum();
    let mut ideal: Vec<u32> = rel.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| (2f64.powi(g as i32) - 1.0) / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

/// Share of the relevant documents among the first `k` of `ranked`.
pub fn recall_at(ranked: &[String], rel: &HashMap<String, u32>, k: usize) -> f64 {
    let total = rel.values().filter(|&&g| g > 0).count();
    if total == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| rel.get(*d).is_some_and(|&g| g > 0))
        .count();
    found as f64 / total as f64
}

/// 1 if a relevant document is among the first `k` of `ranked`, else 0.
pub fn hit_at(ranked: &[String], rel: &HashMap<String, u32>, k: usize) -> f64 {
    let hit = ranked
        .iter()
        .take(k)
        .any(|d| rel.get(d).is_some_and(|&g| g > 0));
    if hit {
        1.0
    } else {
        0.0
    }
}

/// Means over a group of queries (all of them, or one language pair).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scores {
    /// nDCG@10.
    pub ndcg_at_10: f64,
    /// Recall@10.
    pub recall_at_10: f64,
    /// Share of queries whose first document is relevant.
    pub hit_at_1: f64,
    /// Share of queries with a relevant document in the first three.
    pub hit_at_3: f64,
}

impl Scores {
    /// The row cells "nDCG@10 | recall@10 | hit@1 | hit@3".
    fn cells(&self) -> String {
        format!(
            "{:.3} | {:.3} | {:.2} | {:.2}",
            self.ndcg_at_10, self.recall_at_10, self.hit_at_1, self.hit_at_3
        )
    }

    fn of(per_query: &[[f64; 4]]) -> Scores {
        let n = per_query.len().max(1) as f64;
        let mean = |i: usize| per_query.iter().map(|q| q[i]).sum::<f64>() / n;
        Scores {
            ndcg_at_10: mean(0),
            recall_at_10: mean(1),
            hit_at_1: mean(2),
            hit_at_3: mean(3),
        }
    }
}

/// One retrieval configuration's quality.
#[derive(Debug, Clone, Serialize)]
pub struct QualityRow {
    /// The configuration's name.
    pub config: String,
    /// Over all queries.
    #[serde(flatten)]
    pub scores: Scores,
    /// Per query language or language pair (e.g. "de->en"), when the set
    /// labels them.
    pub by_lang: Vec<(String, Scores)>,
    /// Mean time of a search in this configuration once the question's
    /// vector is made ([`report`] embeds every question first, and the
    /// query cache keeps them, as it does for questions asked again), ms.
    pub ms_per_query: f64,
}

/// The configurations compared: keyword alone, vectors alone, and fusions,
/// each without translation and, where `base` has a dictionary, with it.
pub fn configs(base: SearchParams) -> Vec<(String, SearchParams)> {
    let mut out = configs_in_own_words(SearchParams {
        dictionary: None,
        ..base
    });
    if base.dictionary.is_some() && base.translation_weight > 0.0 {
        read_dictionary(&base);
        // Translation applies only where the language gate finds a
        // question asked across languages: fused, with the gate on.
        for (name, p) in configs_in_own_words(base) {
            if name.starts_with("hybrid") && !name.contains("no language gate") {
                out.push((
                    format!("{name}, translated"),
                    SearchParams {
                        translated_vectors: false,
                        ..p
                    },
                ));
                out.push((
                    format!("{name}, translated + vectors"),
                    SearchParams {
                        translated_vectors: true,
                        dictionary: p.dictionary.map(|d| d.with_glosses()),
                        ..p
                    },
                ));
            }
        }
    }
    out
}

/// Reads `p`'s dictionary (with and without glosses) before the first
/// question, as a serving node has: a search never waits for it to tell a
/// question's language ([`SearchParams::question_language`]).
fn read_dictionary(p: &SearchParams) {
    if let Some(d) = p.dictionary {
        d.get();
        d.with_glosses().get();
    }
}

/// The name [`configs`] gives to the configuration `base` itself.
pub fn default_config(base: &SearchParams) -> String {
    let mut name = match base.fusion {
        Fusion::Rrf => "hybrid, RRF",
        Fusion::Weighted => "hybrid, weighted",
    }
    .to_string();
    if base.language_gate == 0 {
        name.push_str(", no language gate");
    }
    if base.dictionary.is_some() && base.translation_weight > 0.0 {
        name.push_str(", translated");
        if base.translated_vectors {
            name.push_str(" + vectors");
        }
    }
    name
}

fn configs_in_own_words(base: SearchParams) -> Vec<(String, SearchParams)> {
    let doc_level = SearchParams {
        max_per_doc: 1,
        ..base
    };
    vec![
        (
            "BM25 only".into(),
            SearchParams {
                vector_weight: 0.0,
                keyword_weight: 1.0,
                ..doc_level
            },
        ),
        (
            "vectors only".into(),
            SearchParams {
                vector_weight: 1.0,
                keyword_weight: 0.0,
                ..doc_level
            },
        ),
        (
            "hybrid, RRF".into(),
            SearchParams {
                fusion: Fusion::Rrf,
                vector_weight: 1.0,
                keyword_weight: 1.0,
                ..doc_level
            },
        ),
        (
            "hybrid, weighted".into(),
            SearchParams {
                fusion: Fusion::Weighted,
                vector_weight: 1.0,
                keyword_weight: 1.0,
                ..doc_level
            },
        ),
        (
            "hybrid, weighted, no language gate".into(),
            SearchParams {
                fusion: Fusion::Weighted,
                vector_weight: 1.0,
                keyword_weight: 1.0,
                language_gate: 0,
                ..doc_level
            },
        ),
        (
            "hybrid, RRF, no language gate".into(),
            SearchParams {
                fusion: Fusion::Rrf,
                vector_weight: 1.0,
                keyword_weight: 1.0,
                language_gate: 0,
                ..doc_level
            },
        ),
    ]
}

/// Evaluates every configuration as `principal` (one who may see everything judged).
pub fn evaluate(
    view: &dyn IndexRead,
    embedder: &dyn Embedder,
    principal: &Principal,
    queries: &[Judged],
    configs: &[(String, SearchParams)],
) -> Result<Vec<QualityRow>, String> {
    let mut rows = Vec::new();
    for (name, params) in configs {
        let mut all: Vec<[f64; 4]> = Vec::new();
        let mut lang: HashMap<String, Vec<[f64; 4]>> = HashMap::new();
        let started = Instant::now();
        for q in queries {
            let req = Request {
                query: &q.query,
                k: 10,
                docs: None,
            };
            let r = retrieve::search(view, embedder, principal, &req, params)
                .map_err(|e| e.to_string())?;
            let mut ranked: Vec<String> = Vec::new();
            for h in r.hits {
                if !ranked.contains(&h.doc) {
                    ranked.push(h.doc);
                }
            }
            let scores = [
                ndcg_at(&ranked, &q.relevant, 10),
                recall_at(&ranked, &q.relevant, 10),
                hit_at(&ranked, &q.relevant, 1),
                hit_at(&ranked, &q.relevant, 3),
            ];
            all.push(scores);
            if let Some(l) = &q.lang {
                lang.entry(l.clone()).or_default().push(scores);
            }
        }
        let mut by_lang: Vec<(String, Scores)> =
            lang.into_iter().map(|(l, v)| (l, Scores::of(&v))).collect();
        by_lang.sort_by(|a, b| a.0.cmp(&b.0));
        let ms_per_query = started.elapsed().as_secs_f64() * 1000.0 / queries.len().max(1) as f64;
        rows.push(QualityRow {
            config: name.clone(),
            scores: Scores::of(&all),
            by_lang,
            ms_per_query,
        });
    }
    Ok(rows)
}

/// The principal judged sets are searched as: every team of the index,
/// cleared for everything.
pub fn evaluator(snap: &Snapshot) -> Principal {
    let teams: Vec<String> = (0..snap.teams.len() as u32)
        .filter_map(|b| snap.teams.name(b).map(str::to_string))
        .collect();
    Principal::new("evaluator", &teams, Classification::Restricted)
}

/// Writes each query's candidate lists as JSON lines to `path`: the
/// question, its language as the language gate reads it, and both
/// sides' candidates (document, the chunk's language, raw score) and, for
/// a question asked across languages, its translated keywords' ones, so that
/// fusion can be fitted on a training split without re-running the model
/// (`bench/fusion/fit.py`).
pub fn write_lists(
    view: &dyn IndexRead,
    embedder: &dyn Embedder,
    principal: &Principal,
    queries: &[Judged],
    base: SearchParams,
    path: &Path,
) -> Result<(), String> {
    use crate::store::keyword::TextLanguage;
    use std::io::Write;
    let lang = |t: &str| match TextLanguage::detect(t) {
        TextLanguage::English => "en",
        TextLanguage::German => "de",
        TextLanguage::Other => "other",
    };
    let params = SearchParams {
        fusion: Fusion::Weighted,
        vector_weight: 1.0,
        keyword_weight: 1.0,
        ..base
    };
    read_dictionary(&params);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    for q in queries {
        let req = Request {
            query: &q.query,
            k: 10,
            docs: None,
        };
        let r = retrieve::search(view, embedder, principal, &req, &params)
            .map_err(|e| e.to_string())?;
        // The translation as it would be searched whatever the vectors
        // show (the gate may have stayed shut), for fitting when to search it.
        let asked = params.question_language(&q.query);
        let always = match asked.and_then(|a| {
            params.translated_query(
                &q.query,
                &crate::store::keyword::KeywordQuery::of(&q.query),
                a,
            )
        }) {
            Some(tq) => view
                .keyword_search(principal, None, &tq, params.candidates.max(10))
                .map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let ids: Vec<u64> = r
            .vector
            .iter()
            .chain(&r.keyword)
            .chain(&r.translated)
            .chain(&r.translated_vector)
            .chain(&always)
            .map(|x| x.0)
            .collect();
        let chunks: HashMap<u64, (String, &'static str)> = view
            .chunks(principal, None, &ids)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|c| (c.id, (c.path, lang(&c.text))))
            .collect();
        let side = |list: &[(u64, f32)]| -> Vec<serde_json::Value> {
            list.iter()
                .filter_map(|(id, s)| {
                    chunks
                        .get(id)
                        .map(|(p, l)| serde_json::json!([format!("{id:x}"), p, l, s]))
                })
                .collect()
        };
        let line = serde_json::json!({
            "id": q.id,
            "query": q.query,
            "lang": q.lang,
            // As the language gate reads it (null: its words do not tell).
            "query_lang": asked.map(|l| l.code()),
            "relevant": q.relevant,
            "vector": side(&r.vector),
            "keyword": side(&r.keyword),
            // Asked across languages (the gate opened): the question's
            // keywords translated, searched as a list of their own.
            "cross_lingual": r.cross_lingual,
            "translated": side(&r.translated),
            // The translated keywords' candidates whether or not the gate
            // opened (questions whose language the gate can tell).
            "translated_always": side(&always),
            // The question put word by word into the other language and
            // its vector candidates (where its keywords were translated).
            "glossed": r.glossed,
            "translated_vector": side(&r.translated_vector),
        });
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// The retrieval-quality benchmark.
#[derive(Debug, Serialize)]
pub struct QualityReport {
    /// Where it ran.
    pub machine: Machine,
    /// The query set.
    pub set: String,
    /// Queries judged.
    pub queries: usize,
    /// The embedding model.
    pub embedder: String,
    /// One row per configuration.
    pub rows: Vec<QualityRow>,
    /// Whether fusion scored at least as well as the better single method.
    pub fused_at_least_best_single: bool,
    /// The default configuration's name.
    pub default_config: String,
    /// What embedding this corpus's chunks costs with the model.
    pub embedding: EmbedSpeed,
}

/// Embedding a sample of the corpus's chunks, as ingest does (its main
/// cost), and the set's questions, so that an operator weighs a model's
/// quality against its speed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EmbedSpeed {
    /// Chunks embedded (the first documents' chunks, up to [`SPEED_SAMPLE`]).
    pub chunks: usize,
    /// Milliseconds per chunk, in batches of 16.
    pub ms_per_chunk: f64,
    /// Milliseconds per question, each embedded once, on its own.
    pub ms_per_question: f64,
}

impl EmbedSpeed {
    /// "embedding 34.3 ms a chunk (64 chunks of this corpus, …), 9.1 ms a question".
    fn line(&self) -> String {
        format!(
            "embedding {:.1} ms a chunk ({} chunks of this corpus, batches of 16), {:.1} ms a question",
            self.ms_per_chunk, self.chunks, self.ms_per_question
        )
    }
}

/// Chunks embedded to measure a model's speed.
const SPEED_SAMPLE: usize = 64;

/// Times embedding the first [`SPEED_SAMPLE`] chunks of the index, and
/// each question (before any search, so none is remembered yet).
fn embed_speed(
    snap: &Snapshot,
    embedder: &dyn Embedder,
    queries: &[Judged],
) -> Result<EmbedSpeed, String> {
    let started = Instant::now();
    for q in queries {
        embedder.embed_query(&q.query).map_err(|e| e.to_string())?;
    }
    let ms_per_question = started.elapsed().as_secs_f64() * 1000.0 / queries.len().max(1) as f64;
    let mut texts: Vec<String> = Vec::new();
    let mut from = 0;
    while texts.len() < SPEED_SAMPLE {
        let docs = snap.export(from, 16).map_err(|e| e.to_string())?;
        let Some(last) = docs.last().map(|(id, _)| *id) else {
            break;
        };
        for (_, d) in &docs {
            texts.extend((0..d.chunks.len()).filter_map(|i| d.chunk_text(i).map(str::to_string)));
        }
        from = last + 1;
    }
    texts.truncate(SPEED_SAMPLE);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = Instant::now();
    for batch in refs.chunks(16) {
        embedder.embed_passages(batch).map_err(|e| e.to_string())?;
    }
    Ok(EmbedSpeed {
        chunks: refs.len(),
        ms_per_chunk: started.elapsed().as_secs_f64() * 1000.0 / refs.len().max(1) as f64,
        ms_per_question,
    })
}

/// Runs the comparison on an index (or the database it was copied to, `view`)
/// and writes `<out>/<name>.{json,md}`.
#[allow(clippy::too_many_arguments)]
pub fn report(
    snap: &Snapshot,
    view: &dyn IndexRead,
    on_postgres: bool,
    embedder: &dyn Embedder,
    queries: &[Judged],
    set: &str,
    name: &str,
    base: SearchParams,
    out: &Path,
) -> Result<QualityReport, String> {
    let embedding = embed_speed(snap, embedder, queries)?;
    let rows = evaluate(view, embedder, &evaluator(snap), queries, &configs(base))?;
    let best_single = rows[0].scores.ndcg_at_10.max(rows[1].scores.ndcg_at_10);
    let default_name = default_config(&base);
    let default_row = rows
        .iter()
        .find(|r| r.config == default_name)
        .unwrap_or(&rows[3]);
    let fused_ok = default_row.scores.ndcg_at_10 >= best_single - 1e-9;
    let default_name = default_row.config.clone();
    let default_ms = default_row.ms_per_query;
    let report = QualityReport {
        machine: Machine::detect(),
        set: set.to_string(),
        queries: queries.len(),
        embedder: embedder.id().to_string(),
        rows,
        fused_at_least_best_single: fused_ok,
        default_config: default_name.clone(),
        embedding,
    };
    let backend = if on_postgres {
        ", PostgreSQL backend (keyword side: BM25 over postings in the database)"
    } else {
        ""
    };
    let mut md = format!(
        "{set}: {} queries, document-level nDCG@10, recall@10 and hit@1/hit@3 (a relevant document first / in the first three), model {}{backend}.\n\n| retrieval | nDCG@10 | recall@10 | hit@1 | hit@3 |\n|---|---:|---:|---:|---:|\n",
        report.queries, report.embedder
    );
    for r in &report.rows {
        md.push_str(&format!("| {} | {} |\n", r.config, r.scores.cells()));
    }
    md.push_str(&per_language_table(&report.rows, None));
    md.push_str(&format!(
        "\nThe default ({default_name}) {} the better single retriever. Speed: {}; the default search {default_ms:.1} ms once the question's vector is made (mean of {}). Machine: {}.\n",
        if fused_ok {
            "is not worse than"
        } else {
            "is WORSE than"
        },
        report.embedding.line(),
        report.queries,
        report.machine.line()
    ));
    write_results(out, name, &report, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(report)
}

/// nDCG@10 · hit@1 · hit@3 per language pair, one row per configuration
/// (and model, when `models` names each row's model); empty when the set
/// labels no languages.
fn per_language_table(rows: &[QualityRow], models: Option<&[&str]>) -> String {
    let Some(first) = rows.first().filter(|r| !r.by_lang.is_empty()) else {
        return String::new();
    };
    let pairs: Vec<&str> = first.by_lang.iter().map(|(l, _)| l.as_str()).collect();
    let mut md =
        String::from("\nPer language pair (question -> document), nDCG@10 · hit@1 · hit@3:\n\n|");
    if models.is_some() {
        md.push_str(" model |");
    }
    md.push_str(" retrieval |");
    for p in &pairs {
        md.push_str(&format!(" {p} |"));
    }
    md.push_str("\n|");
    if models.is_some() {
        md.push_str("---|");
    }
    md.push_str("---|");
    for _ in &pairs {
        md.push_str("---:|");
    }
    md.push('\n');
    for (i, r) in rows.iter().enumerate() {
        md.push('|');
        if let Some(m) = models {
            md.push_str(&format!(" {} |", m.get(i).copied().unwrap_or("")));
        }
        md.push_str(&format!(" {} |", r.config));
        for p in &pairs {
            match r.by_lang.iter().find(|(l, _)| l == p) {
                Some((_, s)) => md.push_str(&format!(
                    " {:.3} · {:.2} · {:.2} |",
                    s.ndcg_at_10, s.hit_at_1, s.hit_at_3
                )),
                None => md.push_str(" – |"),
            }
        }
        md.push('\n');
    }
    md
}

/// Several models' reports on one set.
#[derive(Debug, Serialize)]
pub struct ModelsReport {
    /// Where it ran.
    pub machine: Machine,
    /// The query set.
    pub set: String,
    /// One report per model.
    pub models: Vec<QualityReport>,
}

/// Writes every model's rows as one table (model × retrieval, and per
/// language pair) to `<out>/<name>.{json,md}`, so an operator compares
/// models and fusion side by side.
pub fn models_table(
    set: &str,
    reports: Vec<QualityReport>,
    name: &str,
    out: &Path,
) -> Result<(), String> {
    let machine = Machine::detect();
    let mut md = format!(
        "{set}: every model and retrieval configuration, document-level nDCG@10, recall@10, hit@1 and hit@3.\n\n| model | retrieval | nDCG@10 | recall@10 | hit@1 | hit@3 |\n|---|---|---:|---:|---:|---:|\n"
    );
    let mut rows = Vec::new();
    let mut models = Vec::new();
    for rep in &reports {
        for r in &rep.rows {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                rep.embedder,
                r.config,
                r.scores.cells()
            ));
            rows.push(r.clone());
            models.push(rep.embedder.as_str());
        }
    }
    md.push_str(&per_language_table(&rows, Some(&models)));
    md.push_str(
        "\nQuality and speed of each model's default retrieval (a chunk: the corpus's first chunks embedded in batches of 16, what ingest spends most of its time on; a question: embedding it, then the search, means over the set):\n\n| model | default retrieval | nDCG@10 | hit@1 | embedding, ms a chunk | embedding, ms a question | search, ms |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for rep in &reports {
        if let Some(r) = rep.rows.iter().find(|r| r.config == rep.default_config) {
            md.push_str(&format!(
                "| {} | {} | {:.3} | {:.2} | {:.1} | {:.1} | {:.1} |\n",
                rep.embedder,
                r.config,
                r.scores.ndcg_at_10,
                r.scores.hit_at_1,
                rep.embedding.ms_per_chunk,
                rep.embedding.ms_per_question,
                r.ms_per_query
            ));
        }
    }
    md.push_str(&format!("\nMachine: {}.\n", machine.line()));
    let report = ModelsReport {
        machine,
        set: set.to_string(),
        models: reports,
    };
    write_results(out, name, &report, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_and_recall() {
        let rel: HashMap<String, u32> = [("a".to_string(), 2), ("b".to_string(), 1)].into();
        let perfect = vec!["a".to_string(), "b".to_string()];
        assert!((ndcg_at(&perfect, &rel, 10) - 1.0).abs() < 1e-12);
        let swapped = vec!["b".to_string(), "a".to_string()];
        let n = ndcg_at(&swapped, &rel, 10);
        assert!(n < 1.0 && n > 0.5);
        assert_eq!(
            recall_at(&["x".to_string(), "a".to_string()], &rel, 10),
            0.5
        );
        assert_eq!(ndcg_at(&["x".to_string()], &rel, 10), 0.0);
        let late = vec!["x".to_string(), "y".to_string(), "b".to_string()];
        assert_eq!(hit_at(&late, &rel, 1), 0.0);
        assert_eq!(hit_at(&late, &rel, 2), 0.0);
        assert_eq!(hit_at(&late, &rel, 3), 1.0);
        assert_eq!(hit_at(&[], &rel, 3), 0.0);
    }

    #[test]
    fn scores_are_means_per_group() {
        let s = Scores::of(&[[1.0, 1.0, 1.0, 1.0], [0.0, 0.5, 0.0, 1.0]]);
        assert_eq!(
            (s.ndcg_at_10, s.recall_at_10, s.hit_at_1, s.hit_at_3),
            (0.5, 0.75, 0.5, 1.0)
        );
        let same = |v: f64| Scores {
            ndcg_at_10: v,
            recall_at_10: v,
            hit_at_1: v,
            hit_at_3: v,
        };
        let row = |c: &str, v: f64| QualityRow {
            config: c.into(),
            scores: same(v),
            by_lang: vec![("de->en".into(), same(v))],
            ms_per_query: 1.0,
        };
        let t = per_language_table(&[row("a", 0.25), row("b", 0.5)], Some(&["m1", "m2"]));
        assert!(t.contains("| m1 | a | 0.250 · 0.25 · 0.25 |"), "{t}");
        assert!(t.contains("| m2 | b | 0.500 · 0.50 · 0.50 |"), "{t}");
    }
}
