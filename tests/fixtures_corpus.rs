//! The sample corpus through the real binary and the real model: ingest,
//! access per principal, exact offsets, incremental re-ingest, CLI errors.

mod common;

use common::{assert_exact_offsets, copy_tree, repo, Env};
use hort::store::IndexReader;

fn hits(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["hits"].as_array().cloned().unwrap_or_default()
}

/// Hits for `q` as `who`, the top `k`.
fn search(env: &Env, who: &str, k: usize, q: &str) -> serde_json::Value {
    env.json(&["query", "--json", "--as", who, "-k", &k.to_string(), q])
}

fn docs(v: &serde_json::Value) -> Vec<String> {
    hits(v)
        .iter()
        .map(|h| h["doc"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sample_corpus_end_to_end() {
    let env = Env::new("minilm-l6");
    let corpus = env.path().join("corpus");
    copy_tree(&repo().join("fixtures/corpus"), &corpus);
    let rep = env.json(&["ingest", "--json", "corpus"]);
    assert_eq!(rep["added"], 31, "{rep}");
    assert_eq!(rep["failed"].as_array().unwrap().len(), 0, "{rep}");
    assert_eq!(
        rep["no_access_rule"],
        serde_json::json!(["drafts/todo-reorg.md"])
    );
    // The logo is a picture: read by OCR, nothing found, left out (not failed).
    assert_eq!(rep["skipped"][0]["path"], "public/logo.png");
    assert!(
        rep["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no text"),
        "{rep}"
    );
    let chunks = rep["chunks"].as_u64().unwrap();
    assert!(chunks >= 29, "{rep}");

    // The CFO rule is on page 3 of the travel policy PDF. The policy also
    // exists as a German summary, which the question (English, with the
    // German summary among its nearest chunks) also finds through its
    // translated keywords: the first two hits are the two versions.
    let q = search(&env, "alice", 3, "Who approves travel above 500 EUR?");
    let found = hits(&q);
    common::assert_travel_policy_first(&found, &q);
    let top = found
        .iter()
        .find(|h| h["doc"] == "internal/travel-policy.pdf")
        .unwrap();
    assert_eq!(top["page"], 3);
    assert!(top["text"]
        .as_str()
        .unwrap()
        .contains("Travel above 500 EUR needs approval by the\nCFO"));

    // Offsets are exact: the hit text is page_text[start..end] (in chars).
    for h in hits(&q) {
        assert_exact_offsets(&env, &h);
    }

    // Access: guest sees public only; confidential finance is alice's; legal is dave's.
    let g = search(&env, "guest", 10, "travel budget approval salary merger");
    for h in hits(&g) {
        assert_eq!(h["classification"], "public", "{h}");
    }
    let a = search(&env, "alice", 5, "company bank accounts IBAN");
    assert_eq!(docs(&a)[0], "finance/bank-accounts.txt");
    assert!(docs(&a)
        .iter()
        .all(|d| !d.starts_with("legal/") && !d.starts_with("hr/")));
    // The budget PDF is restricted by its own rule file: alice (confidential) cannot see it.
    let b = search(
        &env,
        "alice",
        10,
        "capital expenditure LNG trucks budget 2026",
    );
    assert!(
        !docs(&b).contains(&"finance/budget-2026.pdf".to_string()),
        "{b}"
    );
    let d = search(
        &env,
        "dave",
        3,
        "capital expenditure LNG trucks budget 2026",
    );
    assert_eq!(docs(&d)[0], "finance/budget-2026.pdf");
    let f = search(&env, "dave", 3, "acquisition of Baltic Reefer Lines");
    assert_eq!(docs(&f)[0], "legal/project-falcon.md");
    // The draft without a rule is invisible even to the most privileged principal.
    let t = env.json(&[
        "query",
        "--json",
        "--team",
        "staff,legal,board,finance,hr,engineering,drafts",
        "--clearance",
        "restricted",
        "-k",
        "50",
        "merging the Bremen and Hamburg dispatch teams",
    ]);
    assert!(!docs(&t).iter().any(|d| d.starts_with("drafts/")), "{t}");
    // German query, German document.
    let de = search(&env, "guest", 3, "Wie viele Tage Homeoffice pro Woche?");
    assert_eq!(docs(&de)[0], "public/homeoffice-faq.html", "{de}");

    // The scanned inspection report is read by OCR, said in the report, and
    // cited like any PDF page.
    let ocr_note = rep["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["path"] == "internal/brandschutzbegehung-scan.pdf")
        .unwrap_or_else(|| panic!("no OCR note: {rep}"));
    assert!(
        ocr_note["warning"]
            .as_str()
            .unwrap()
            .contains("page 1 read by OCR"),
        "{ocr_note}"
    );
    let scan = search(
        &env,
        "alice",
        3,
        "Bis wann müssen die Feuerlöscher in Halle 2 ausgetauscht werden?",
    );
    let top = &hits(&scan)[0];
    assert_eq!(
        top["doc"], "internal/brandschutzbegehung-scan.pdf",
        "{scan}"
    );
    assert_eq!(top["page"], 1);
    assert!(
        top["text"].as_str().unwrap().contains("30. November 2026"),
        "{top}"
    );
    // Marked as read by OCR, with the confidence; text pages are not.
    assert!(top["ocr_confidence"].as_f64().unwrap() > 50.0, "{top}");

    // The Word document (made by LibreOffice): a row of its table, with
    // the column names carried into the chunk.
    let car = search(
        &env,
        "alice",
        3,
        "Welches Leasingbudget hat die Abteilungsleitung für den Dienstwagen?",
    );
    let top = &hits(&car)[0];
    assert_eq!(top["doc"], "internal/dienstwagenregelung.docx", "{car}");
    assert!(top.get("ocr_confidence").is_none(), "{top}");
    assert!(top["page"].is_null(), "{top}");
    assert!(
        top["text"]
            .as_str()
            .unwrap()
            .contains("Funktion: Abteilungsleitung; Fahrzeugklasse: Mittelklasse (z. B. Kombi); Leasingbudget pro Monat: 650 EUR"),
        "{top}"
    );

    // Unchanged re-ingest embeds nothing.
    let again = env.json(&["ingest", "--json", "corpus"]);
    assert_eq!(again["embedded"], 0, "{again}");
    assert_eq!(again["unchanged"], 31);
    assert_eq!(again["chunks"].as_u64().unwrap(), chunks);

    // One changed file is re-embedded alone; a deleted one disappears from both indexes.
    std::fs::write(
        corpus.join("public/welcome.md"),
        "# Welcome\n\nOur new office in Leipzig opens in March 2027.",
    )
    .unwrap();
    std::fs::remove_file(corpus.join("internal/vendor-list.html")).unwrap();
    let third = env.json(&["ingest", "--json", "corpus"]);
    assert_eq!(third["updated"], 1, "{third}");
    assert_eq!(third["removed"], 1);
    assert_eq!(third["embedded"], 1);
    let l = search(&env, "guest", 1, "new office Leipzig");
    assert_eq!(docs(&l)[0], "public/welcome.md");
    let v = search(&env, "alice", 20, "Hanse Diesel fuel cards vendor");
    assert!(!docs(&v).contains(&"internal/vendor-list.html".to_string()));
    let reader = IndexReader::open(&env.index()).unwrap();
    let snap = reader.snapshot();
    let p = hort::Principal::new("x", &["staff"], hort::Classification::Internal);
    let kw = snap
        .keyword_search_filtered(
            &hort::store::keyword::KeywordQuery::of("CleanPort"),
            &snap.filter_for(&p),
            None,
            10,
        )
        .unwrap();
    assert!(kw.is_empty(), "the keyword index forgot the deleted file");
}

#[test]
fn cli_errors_are_one_clear_line_with_exit_codes() {
    let env = Env::new("minilm-l6");
    // Usage error: exit 2.
    let out = env.run(&["query"]);
    assert_eq!(out.status.code(), Some(2));
    // No index yet: exit 1, one line naming the index and what to do.
    let out = env.run(&["query", "--as", "alice", "anything"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("hort ingest"), "{err}");
    // Unknown principal, unknown clearance, missing folder.
    let out = env.run(&["query", "--as", "mallory", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("mallory"));
    let out = env.run(&["query", "--team", "a", "--clearance", "secret", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("secret"));
    let out = env.run(&["ingest", "no-such-folder"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-folder"));
    // ... and leaves no index behind (a mistyped path creates nothing).
    assert!(
        !env.index().exists(),
        "an index was created for a missing folder"
    );
    // A bad configuration names the file and the field.
    std::fs::write(env.config(), "[ingest]\nchunk_tokenz = 5\n").unwrap();
    let out = env.run(&["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hort.toml") && err.contains("chunk_tokenz"),
        "{err}"
    );
}

/// The judged queries over the sample corpus: the default fusion is not
/// worse than the better of keyword and vector search alone.
#[test]
fn default_fusion_is_not_worse_than_either_retriever() {
    use hort::bench::quality::{configs, evaluate, load_queries};
    let env = Env::new("minilm-l6");
    copy_tree(&repo().join("fixtures/corpus"), &env.path().join("corpus"));
    let out = env.run(&["ingest", "--quiet", "corpus"]);
    assert!(out.status.success());
    let queries = load_queries(&repo().join("bench/quality/nordwind.jsonl")).unwrap();
    assert!(queries.len() >= 40);
    let embedder = hort::embed::from_config(
        &hort::config::EmbedConfig {
            models_dir: Some(common::models_dir()),
            ..Default::default()
        },
        |p| p.to_path_buf(),
    )
    .unwrap();
    let reader = IndexReader::open(&env.index()).unwrap();
    let snap = reader.snapshot();
    let everyone = hort::Principal::new(
        "all",
        &["staff", "finance", "hr", "legal", "board", "engineering"],
        hort::Classification::Restricted,
    );
    let base = hort::retrieve::SearchParams::default();
    let rows = evaluate(
        snap.as_ref(),
        embedder.as_ref(),
        &everyone,
        &queries,
        &configs(base),
    )
    .unwrap();
    let (bm25, vectors, weighted) = (&rows[0], &rows[1], &rows[3]);
    assert_eq!(
        base.fusion,
        hort::config::Fusion::Weighted,
        "the default is what we measure"
    );
    assert!(
        weighted.scores.ndcg_at_10 >= bm25.scores.ndcg_at_10.max(vectors.scores.ndcg_at_10),
        "{rows:?}"
    );
    assert!(
        weighted.scores.ndcg_at_10 > 0.8,
        "{rows:?} ({})",
        embedder.id()
    );
}
