//! `hort bench embed`: chunks per second through hort's embedder (tokenise,
//! ONNX Runtime, mean pooling, normalise) with 1 and 2 model threads, on
//! real chunk texts written to a file that `bench/peers/embed.py` reads too,
//! so onnxruntime's Python API runs the same model on the same inputs.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{write_results, Machine};
use crate::embed::{Embedder, ModelFiles, OnnxEmbedder};

/// One embedding pass.
#[derive(Debug, Serialize)]
pub struct Pass {
    /// Threads the model ran on.
    pub threads: usize,
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

fn pass(files: &ModelFiles, texts: &[&str], batch: usize, threads: usize) -> Result<Pass, String> {
    let e = OnnxEmbedder::load(files, threads).map_err(|e| e.to_string())?;
    // Warm-up: the first run allocates and plans.
    e.embed_passages(&texts[..batch.min(texts.len())])
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    for b in texts.chunks(batch) {
        std::hint::black_box(e.embed_passages(b).map_err(|e| e.to_string())?);
    }
    let seconds = t.elapsed().as_secs_f64();
    Ok(Pass {
        threads,
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
    let counter = OnnxEmbedder::load(files, 1).map_err(|e| e.to_string())?;
    let mean_tokens = refs
        .iter()
        .map(|t| counter.count_tokens(t).min(files.max_tokens) as f64)
        .sum::<f64>()
        / refs.len() as f64;
    drop(counter);
    let threads_1 = pass(files, &refs, batch, 1)?;
    let threads_2 = pass(files, &refs, batch, 2)?;
    let report = EmbedReport {
        machine: Machine::detect(),
        model: files.id.clone(),
        texts: texts.len(),
        batch_size: batch,
        max_tokens: files.max_tokens,
        mean_tokens,
        threads_1,
        threads_2,
    };
    let md = format!(
        "Embedding {n} chunk texts (mean {tok:.0} tokens, truncated at {max}), batch {batch}, {model}.\n\n\
         | model threads | seconds | chunks/s |\n|---:|---:|---:|\n\
         | 1 | {:.1} | {:.1} |\n| 2 | {:.1} | {:.1} |\n\nMachine: {}.\n",
        report.threads_1.seconds,
        report.threads_1.per_second,
        report.threads_2.seconds,
        report.threads_2.per_second,
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
