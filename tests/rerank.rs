//! The reranker seam with a tiny cross-encoder the test generates
//! (scripts/make_tiny_reranker.py: its score counts one marker token), on
//! its own and inside `hort serve`.

mod common;

use std::path::Path;

use common::{copy_tree, models_dir, repo, Env, Server};
use hort::retrieve::rerank::{CrossEncoder, Reranker};

/// A model directory: the generated ONNX and MiniLM's tokenizer files.
fn tiny_reranker(dir: &Path, marker: &str) {
    common::copy_minilm_tokenizer(dir);
    let tok = models_dir().join("minilm-l6");
    let out = common::py_convert([
        repo()
            .join("scripts/make_tiny_reranker.py")
            .into_os_string(),
        tok.join("tokenizer.json").into_os_string(),
        marker.into(),
        dir.join("model.onnx").into_os_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cross_encoder_scores_pairs() {
    let d = tempfile::tempdir().unwrap();
    tiny_reranker(d.path(), "approval");
    let runtime = hort::embed::runtime_path(
        &hort::config::EmbedConfig {
            models_dir: Some(models_dir()),
            ..Default::default()
        },
        |p| p.to_path_buf(),
    );
    let r = CrossEncoder::load(d.path(), &runtime, 128, 1).unwrap();
    let s = r
        .score(
            "who gives approval?",
            &["nothing here", "approval, approval", "one approval"],
        )
        .unwrap();
    // The question's own "approval" counts in every pair.
    assert_eq!(s, vec![1.0, 3.0, 2.0]);
    assert!(r.score("q", &[]).unwrap().is_empty());
    // A directory without a model is an error naming the file.
    let empty = tempfile::tempdir().unwrap();
    let err = CrossEncoder::load(empty.path(), &runtime, 128, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn serve_reorders_hits_with_the_reranker() {
    let d = tempfile::tempdir().unwrap();
    tiny_reranker(d.path(), "approval");
    let env = Env::with_extra(
        "minilm-l6",
        &format!(
            "[retrieve]\nreranker = \"{}\"\nrerank_candidates = 10\n",
            d.path().display()
        ),
    );
    copy_tree(&repo().join("fixtures/corpus"), &env.path().join("corpus"));
    assert!(env.run(&["ingest", "--quiet", "corpus"]).status.success());
    let s = Server::start(&env);
    let r = s.post_json(
        "/v1/search",
        Some("key-alice"),
        r#"{"query": "travel expenses", "k": 4}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let hits = v["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 4);
    // Scores are the cross-encoder's: the marker's count, best first.
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let top = hits[0]["text"].as_str().unwrap().to_lowercase();
    assert!(top.contains("approv"), "{top}");
    assert!(scores[0] >= 1.0);
}
