//! `hort bench embed`: chunks per second through hort's embedder (tokenise,
//! ONNX Runtime, mean pooling, normalise) with one session on 1 and 2
//! threads (as the peer runs), and with one single-threaded session per
//! core working at once (how ingest and serve run by default), on
//! real chunk texts written to a file that `bench/peers/embed.py` reads too,
//! so onnxruntime's Python API runs the same model on the same inputs.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{write_results, Machine};
use crate::embed::{Embedder, Layout, ModelFiles, OnnxEmbedder};

/// One embedding pass.
#[derive(Debug, Serialize)]
pub struct Pass {
    /// Threads the model ran on.
    pub threads: usize,
    /// Sessions working at once.
    #[serde(default)]
    pub sessions: usize,
    /// Wall time.
    pub seconds: f64,
    /// Texts embedded per second.
    pub per_second: f64,
}

/// The embedding benchmark: hort's model runner on one and two threads.
#[derive(Debug, Serialize)]
pub struct EmbedReport {
    /// Where it ran.
    pub machine: Machine,
    /// The model.
    pub model: String,
    /// Texts embedded.
    pub texts: usize,
    /// Texts per batch.
    pub batch_size: usize,
    /// The model's window in tokens.
    pub max_tokens: usize,
    /// Mean tokens per text.
    pub mean_tokens: f64,
    /// The pass on one thread.
    pub threads_1: Pass,
    /// The pass on two threads.
    pub threads_2: Pass,
    /// One single-threaded session per core, each taking batches in turn.
    pub sessions: Pass,
}

/// Writes `texts` as `{"text"}` lines.
pub fn write_inputs(texts: &[String], path: &Path) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    for t in texts {
        writeln!(f, "{}", serde_json::json!({ "text": t })).map_err(|e| e.to_string())?;
    }
    f.flush().map_err(|e| e.to_string())
}

/// Embeds `texts` in batches of `batch`, in order, with `layout`; the
/// sessions take batches in turn (the same batches in every pass, so the
/// layouts compare on equal work).
fn pass(files: &ModelFiles, texts: &[&str], batch: usize, layout: Layout) -> Result<Pass, String> {
    let e = OnnxEmbedder::load(files, layout).map_err(|e| e.to_string())?;
    let batches: Vec<&[&str]> = texts.chunks(batch).collect();
    let n = layout.sessions;
    // Warm-up: the first run of each session allocates and plans.
    std::thread::scope(|s| {
        for _ in 0..n {
            s.spawn(|| e.embed_passages(batches[0]));
        }
    });
    let t = Instant::now();
    let failed = std::thread::scope(|s| {
        let workers: Vec<_> = (0..n)
            .map(|i| {
                let (e, batches) = (&e, &batches);
                s.spawn(move || {
                    for b in batches.iter().skip(i).step_by(n) {
                        std::hint::black_box(e.embed_passages(b).map_err(|e| e.to_string())?);
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .find_map(Result::err)
    });
    if let Some(err) = failed {
        return Err(err);
    }
    let seconds = t.elapsed().as_secs_f64();
    Ok(Pass {
        threads: layout.threads(),
        sessions: n,
        seconds,
        per_second: texts.len() as f64 / seconds,
    })
}

/// Embeds `texts` of the corpus on one and two threads; writes the inputs for the peer.
pub fn run(
    files: &ModelFiles,
    texts: &[String],
    batch: usize,
    out: &Path,
    name: &str,
) -> Result<EmbedReport, String> {
    if texts.is_empty() {
        return Err("no texts to embed".into());
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let one = Layout::sessions(1);
    let counter = OnnxEmbedder::load(files, one).map_err(|e| e.to_string())?;
    let mean_tokens = refs
        .iter()
        .map(|t| counter.count_tokens(t).min(files.max_tokens) as f64)
        .sum::<f64>()
        / refs.len() as f64;
    drop(counter);
    let threads_1 = pass(files, &refs, batch, one)?;
    let threads_2 = pass(
        files,
        &refs,
        batch,
        Layout {
            sessions: 1,
            intra_threads: 2,
            question_threads: 0,
        },
    )?;
    let cores = crate::embed::cores().max(2);
    let sessions = pass(
        files,
        &refs,
        batch,
        Layout {
            sessions: cores,
            intra_threads: 1,
            question_threads: 0,
        },
    )?;
    let report = EmbedReport {
        machine: Machine::detect(),
        model: files.id.clone(),
        texts: texts.len(),
        batch_size: batch,
        max_tokens: files.max_tokens,
        mean_tokens,
        threads_1,
        threads_2,
        sessions,
    };
    let md = format!(
        "Embedding {n} chunk texts (mean {tok:.0} tokens, truncated at {max}), batch {batch}, {model}.\n\n\
         | sessions × threads each | seconds | chunks/s |\n|---|---:|---:|\n\
         | 1 × 1 | {:.1} | {:.1} |\n| 1 × 2 | {:.1} | {:.1} |\n| {} × 1 | {:.1} | {:.1} |\n\n\
         One session per core ÷ one session with two threads: {:.2}×.\n\nMachine: {}.\n",
        report.threads_1.seconds,
        report.threads_1.per_second,
        report.threads_2.seconds,
        report.threads_2.per_second,
        report.sessions.sessions,
        report.sessions.seconds,
        report.sessions.per_second,
        report.sessions.per_second / report.threads_2.per_second.max(1e-9),
        report.machine.line(),
        n = report.texts,
        tok = mean_tokens,
        max = report.max_tokens,
        model = report.model,
    );
    print!("{md}");
    write_results(out, name, &report, &md).map_err(|e| e.to_string())?;
    Ok(report)
}
