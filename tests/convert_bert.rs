//! scripts/convert_bert.py: a BERT model's safetensors weights, converted to
//! the ONNX graph hort reads, embed as BERT defines it. A tiny random model
//! (tests/python/tiny_bert.py) is converted, embedded by hort through ONNX
//! Runtime, and compared with an independent numpy forward pass.

mod common;

use std::path::Path;
use std::process::Output;

use common::{models_dir, repo};
use hort::config::EmbedConfig;

fn python(args: &[&Path]) -> Output {
    common::py_convert(args)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_converted_bert_embeds_as_bert_defines_it() {
    let d = tempfile::tempdir().unwrap();
    let (src, model) = (d.path().join("src"), d.path().join("model"));
    let tiny = repo().join("tests/python/tiny_bert.py");
    ok(python(&[&tiny, Path::new("make"), &src]));
    std::fs::create_dir_all(&model).unwrap();
    ok(python(&[
        &repo().join("scripts/convert_bert.py"),
        &src,
        &model.join("model.onnx"),
    ]));
    common::copy_minilm_tokenizer(&model);
    let tok = models_dir().join("minilm-l6");
    std::fs::write(
        model.join("hort-model.toml"),
        "id = \"tiny-bert/1\"\ndim = 32\nmax_tokens = 128\npooling = \"mean\"\n",
    )
    .unwrap();
    let cfg = EmbedConfig {
        model: model.display().to_string(),
        models_dir: Some(models_dir()),
        threads: 1,
        query_cache: 0,
        ..Default::default()
    };
    let embedder = hort::embed::from_config(&cfg, |p| p.to_path_buf()).unwrap();
    let tokenizer = tokenizers::Tokenizer::from_file(tok.join("tokenizer.json")).unwrap();
    let texts = [
        "a cat sits on the mat",
        "Travel above 500 EUR needs approval by the CFO.",
    ];
    // Both at once: the shorter one padded in the batch.
    let got = embedder.embed_passages(&texts).unwrap();
    for (text, got) in texts.iter().zip(&got) {
        // MiniLM's tokenizer file pads to a fixed length: the tokens are
        // those its attention mask keeps.
        let enc = tokenizer.encode(*text, true).unwrap();
        let ids: Vec<String> = enc
            .get_ids()
            .iter()
            .zip(enc.get_attention_mask())
            .filter(|(_, &m)| m == 1)
            .map(|(i, _)| i.to_string())
            .collect();
        let mut args: Vec<&Path> = vec![&tiny, Path::new("embed"), &src];
        args.extend(ids.iter().map(Path::new));
        let want: Vec<f32> = serde_json::from_str(&ok(python(&args))).unwrap();
        assert_eq!(got.len(), 32);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{text:?}: differs by {worst} from numpy");
    }
    // Two different sentences: not the same vector (a graph ignoring its
    // input would pass the comparison above only by accident).
    assert!(got[0]
        .iter()
        .zip(&got[1])
        .any(|(a, b)| (a - b).abs() > 1e-2));
}

#[test]
fn a_model_that_is_not_bert_is_refused_with_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    ok(python(&[
        &repo().join("tests/python/tiny_bert.py"),
        Path::new("make"),
        &src,
    ]));
    let cfg = std::fs::read_to_string(src.join("config.json")).unwrap();
    std::fs::write(
        src.join("config.json"),
        cfg.replace("\"bert\"", "\"xlm-roberta\""),
    )
    .unwrap();
    let out = python(&[
        &repo().join("scripts/convert_bert.py"),
        &src,
        &d.path().join("model.onnx"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("xlm-roberta"), "{err}");
    assert!(!d.path().join("model.onnx").exists());
}
