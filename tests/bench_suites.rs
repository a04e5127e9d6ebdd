//! The benchmark suites run end to end on small inputs: each writes its JSON
//! and Markdown, the numbers are sane (no errors, the keyword baseline
//! returns what hort returns), and `hort bench report` turns whatever exists
//! into the table, the plot and the README block. (The measurements themselves
//! come from `make bench`, never from tests.)

mod common;

use common::{repo, Env};

fn corpus(env: &Env, files: usize) -> std::path::PathBuf {
    // Text files with overlapping vocabulary, under one rule.
    let dir = env.path().join("c").join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    let words = [
        "harbour", "crane", "invoice", "customs", "pallet", "tariff", "vessel", "depot", "audit",
        "route", "budget", "driver",
    ];
    for i in 0..files {
        let text: Vec<&str> = (0..40)
            .map(|j| words[(i * 7 + j * 3 + j * j) % words.len()])
            .collect();
        std::fs::write(dir.join(format!("doc{i:03}.txt")), text.join(" ") + ".").unwrap();
    }
    std::fs::write(
        dir.join("_access.toml"),
        "teams = [\"all\"]\nclassification = \"public\"\n",
    )
    .unwrap();
    dir
}

fn read_json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

#[test]
fn keyword_embed_ingest_query_and_report_write_their_results() {
    let env = Env::new("minilm-l6");
    let c = corpus(&env, 40);
    let out = env.path().join("results");
    let work = env.path().join("work");
    let queries = env.path().join("q.jsonl");
    std::fs::write(
        &queries,
        "{\"query\": \"harbour crane\"}\n{\"query\": \"customs tariff-free invoice\"}\n",
    )
    .unwrap();
    let (c_s, out_s, work_s, q_s) = (
        c.to_str().unwrap(),
        out.to_str().unwrap(),
        work.to_str().unwrap(),
        queries.to_str().unwrap(),
    );
    let ok = |args: &[&str]| {
        let o = env.run(args);
        assert!(
            o.status.success(),
            "hort {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };

    ok(&[
        "bench",
        "keyword",
        "--corpus",
        c_s,
        "--queries",
        q_s,
        "--rounds",
        "1",
        "--work",
        work_s,
        "--out",
        out_s,
    ]);
    let k = read_json(&out.join("keyword-scifact.json"));
    assert_eq!(k["queries"], 2);
    assert_eq!(
        k["overlap_at_10"], 1.0,
        "bare tantivy must answer what hort answers: {k}"
    );
    assert!(k["hort"]["p50_ms"].as_f64().unwrap() > 0.0);
    let exported = std::fs::read_to_string(work.join("keyword-export/chunks.jsonl")).unwrap();
    assert_eq!(
        exported.lines().count(),
        40,
        "one chunk per small file, all exported"
    );

    ok(&[
        "bench", "embed", "--corpus", c_s, "--texts", "20", "--work", work_s, "--out", out_s,
    ]);
    let e = read_json(&out.join("embed.json"));
    assert_eq!(e["texts"], 20);
    assert!(e["threads_1"]["per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(
        std::fs::read_to_string(work.join("embed-inputs.jsonl"))
            .unwrap()
            .lines()
            .count(),
        20
    );

    let pdfs = repo().join("fixtures/corpus/internal");
    ok(&[
        "bench",
        "ingest",
        "--corpus",
        c_s,
        "--limit",
        "25",
        "--pdfs",
        pdfs.to_str().unwrap(),
        "--work",
        work_s,
        "--out",
        out_s,
    ]);
    let i = read_json(&out.join("ingest.json"));
    assert_eq!(i["end_to_end"]["files"], 25);
    assert_eq!(i["end_to_end"]["chunks"], i["embed_only"]["chunks"], "{i}");
    assert!(i["pdf"]["pages"].as_u64().unwrap() >= 4, "{i}");
    assert_eq!(i["pdf"]["failed"], 0);

    ok(&[
        "bench",
        "query",
        "--sizes",
        "300,1200",
        "--requests",
        "10",
        "--work",
        work_s,
        "--out",
        out_s,
    ]);
    let q = read_json(&out.join("query.json"));
    let sizes = q["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2);
    for s in sizes {
        assert_eq!(s["search"]["errors"], 0, "{s}");
        assert_eq!(s["query"]["errors"], 0, "{s}");
        assert!(s["search"]["p50_ms"].as_f64().unwrap() > 0.0);
    }

    let fixtures = repo().join("fixtures/corpus");
    let dev = repo().join("bench/cache/pairs-dev.tsv");
    let test = repo().join("bench/cache/pairs-test.tsv");
    ok(&[
        "bench",
        "cache",
        "--corpus",
        fixtures.to_str().unwrap(),
        "--dev",
        dev.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--models",
        "minilm-l6",
        "--provider-ms",
        "200",
        "--uncached",
        "4",
        "--cached",
        "20",
        "--seconds",
        "1",
        "--work",
        work_s,
        "--out",
        out_s,
    ]);
    let c = read_json(&out.join("cache.json"));
    let p50 = |k: &str| c[k]["p50_ms"].as_f64().unwrap();
    assert!(p50("uncached") >= 200.0, "{c}");
    assert!(p50("cached") < 100.0, "{c}");
    for t in c["throughput"].as_array().unwrap() {
        assert_eq!(t["errors"], 0, "{t}");
        assert!(t["requests"].as_u64().unwrap() > 0);
    }
    let sem = &c["semantic"][0];
    assert_eq!(sem["test"][0]["same_pairs"], 24);
    assert!(sem["threshold"].as_f64().unwrap() > 0.5);

    let readme = env.path().join("README.md");
    std::fs::write(&readme, "# hort\n\ntext\n").unwrap();
    ok(&[
        "bench",
        "report",
        "--out",
        out_s,
        "--readme",
        readme.to_str().unwrap(),
    ]);
    let r = std::fs::read_to_string(&readme).unwrap();
    assert!(
        r.starts_with("# hort\n\ntext\n"),
        "the hand-written part is kept"
    );
    assert!(
        r.contains("performance:begin")
            && r.contains("BM25: p50 latency")
            && r.contains("Gateway: `/v1/query` p50, cached vs uncached (provider: 200 ms"),
        "{r}"
    );
    assert!(
        r.contains("not measured"),
        "ANN was not run here, and the table says so"
    );
    assert!(out.join("query-latency.svg").is_file());
    assert!(out.join("summary.md").is_file());
}

#[test]
fn report_on_an_empty_results_folder_says_nothing_was_measured() {
    let env = Env::new("hash");
    let out = env.path().join("empty");
    std::fs::create_dir_all(&out).unwrap();
    let o = env.run(&[
        "bench",
        "report",
        "--out",
        out.to_str().unwrap(),
        "--no-readme",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("not measured"));
    assert!(
        !md.contains("| met |"),
        "nothing can be met without numbers: {md}"
    );
}

/// `hort bench space` writes a model's language means from the chunks of
/// the corpora it is given (here MiniLM over an English and a German
/// folder).
#[test]
fn bench_space_writes_language_means() {
    let env = Env::new("minilm-l6");
    let en = corpus(&env, 6);
    let de = env.path().join("d").join("corpus");
    std::fs::create_dir_all(&de).unwrap();
    std::fs::write(
        de.join("_access.toml"),
        "teams = [\"all\"]\nclassification = \"public\"\n",
    )
    .unwrap();
    for (i, t) in [
        "Die Kantine ist montags bis freitags von elf bis vierzehn Uhr geöffnet, und das Mittagessen kostet nicht viel.",
        "Reisen über fünfhundert Euro muss der Finanzvorstand genehmigen, bevor sie gebucht werden dürfen.",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(de.join(format!("seite{i}.md")), t).unwrap();
    }
    let out = env.path().join("space.json");
    let both = format!("{},{}", en.display(), de.display());
    let work = env.path().join("work");
    let o = env.run(&[
        "bench",
        "space",
        "--corpus",
        &both,
        "--work",
        work.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--tag",
        "test/1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: hort::embed::Space = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    s.check().unwrap();
    assert_eq!(s.model, "minilm-l6-int8/1");
    assert_eq!(s.tag, "test/1");
    assert_eq!(s.sources.len(), 2);
    let langs: Vec<&str> = s.means.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(langs, ["de", "en"]);
    assert!(s.counts.iter().all(|(_, n)| *n > 0), "{:?}", s.counts);
    assert!(s.means.iter().all(|m| m.1.len() == 384));
    assert_ne!(s.means[0].1, s.means[1].1);
    // No corpus: refused by the argument parser.
    assert!(!env.run(&["bench", "space"]).status.success());
}
