//! PDFs through the real binary and its worker processes: PDFium reads
//! what pdf-extract cannot, keeps pages, paragraphs and exact offsets;
//! hostile files are one line in `failed` each; the engine setting is
//! honoured, and a broken PDFium library falls back instead of losing files.

mod common;

use std::path::Path;
use std::process::Command;

use common::{failed, repo, staff_corpus, Env};
use serde_json::Value;

/// Runs `script` (in `scripts/`) on `pages` (joined by form feeds) to
/// write `dir/name`; its bytes.
fn generate(script: &str, dir: &Path, name: &str, pages: &[&str]) -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    let input = src.path().join("in.txt");
    std::fs::write(&input, pages.join("\u{c}")).unwrap();
    let out = dir.join(name);
    let st = Command::new("python3")
        .arg(repo().join("scripts").join(script))
        .arg(&input)
        .arg(&out)
        .env("PYTHONPATH", repo().join("data/py"))
        .status()
        .expect("python3");
    assert!(st.success(), "{script} failed (run `make pydeps ocr`)");
    std::fs::read(&out).unwrap()
}

/// A PDF with a text layer, by the script that builds the sample corpus's PDFs.
fn make_pdf(dir: &Path, name: &str, pages: &[&str]) -> Vec<u8> {
    generate("make_pdf.py", dir, name, pages)
}

/// A generated scan: pixels only, no text layer.
fn make_scan(dir: &Path, name: &str, pages: &[&str]) -> Vec<u8> {
    generate("make_scan.py", dir, name, pages)
}

const PAGE1: &str = "Reisekosten und Spesen\n\nDie Erstattung erfolgt binnen 30 Tagen. \
                     Übernachtungen werden bis 120 EUR erstattet.";
const PAGE2: &str = "Trips abroad need the approval of the team lead before booking.";

fn env(extra: &str) -> Env {
    staff_corpus("hash", extra)
}

/// Hits for `q` as dave (team staff), the top `k`.
fn search(env: &Env, k: usize, q: &str) -> Value {
    env.json(&["query", "--json", "--as", "dave", "-k", &k.to_string(), q])
}

fn ingest(env: &Env) -> Value {
    env.json(&["ingest", "--json", "--quiet", "corpus"])
}

/// A valid PDF with its cross-reference table cut off: PDFium rebuilds it
/// by scanning the file, pdf-extract gives up.
fn without_xref(pdf: &[u8]) -> Vec<u8> {
    let at = pdf
        .windows(4)
        .rposition(|w| w == b"xref")
        .expect("a classic xref table");
    let mut v = pdf[..at].to_vec();
    v.extend_from_slice(b"%%EOF\n");
    v
}

#[test]
fn pdfium_keeps_pages_paragraphs_and_exact_offsets() {
    let env = env("");
    let corpus = env.path().join("corpus");
    make_pdf(&corpus, "reise.pdf", &[PAGE1, PAGE2]);
    let rep = ingest(&env);
    assert_eq!(rep["added"], 1, "{rep}");
    assert_eq!(rep["pages"], 2, "{rep}");
    assert!(failed(&rep).is_empty(), "{rep}");

    let q = search(&env, 5, "Übernachtungen erstattet");
    let hits = q["hits"].as_array().unwrap();
    let h = hits
        .iter()
        .find(|h| h["page"] == 1)
        .unwrap_or_else(|| panic!("no hit on page 1: {q}"));
    let text = h["text"].as_str().unwrap();
    // The heading is its own paragraph (PDFium's line gaps), the umlaut survives.
    assert!(
        text.starts_with("Reisekosten und Spesen\n\nDie Erstattung"),
        "{text:?}"
    );
    assert!(
        text.contains("Übernachtungen werden bis 120 EUR"),
        "{text:?}"
    );

    // The offsets span exactly the quoted text.
    let (s, e) = (
        h["start"].as_u64().unwrap() as usize,
        h["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(e - s, text.chars().count());
    let p2 = hits.iter().find(|h| h["page"] == 2);
    if let Some(p2) = p2 {
        assert!(p2["text"].as_str().unwrap().contains("team lead"), "{p2}");
    }
}

#[test]
fn hostile_pdfs_are_one_failed_line_each_and_pdfium_rescues_a_damaged_one() {
    let env = env("");
    let corpus = env.path().join("corpus");
    let tmp = tempfile::tempdir().unwrap();
    let good = make_pdf(tmp.path(), "good.pdf", &[PAGE1, PAGE2]);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("no-xref.pdf", without_xref(&good)),
        ("truncated.pdf", good[..good.len() / 2].to_vec()),
        ("junk.pdf", {
            let mut v = b"%PDF-1.7\n".to_vec();
            v.extend((0..=255u8).cycle().take(20_000));
            v
        }),
        ("nested.pdf", {
            let mut v = b"%PDF-1.4\n1 0 obj\n".to_vec();
            v.extend(std::iter::repeat_n(b'[', 200_000));
            v.extend_from_slice(b"\nendobj\ntrailer<</Root 1 0 R>>\n%%EOF");
            v
        }),
        (
            "pages-loop.pdf",
            b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
              2 0 obj<</Type/Pages/Kids[2 0 R]/Count 1>>endobj\n\
              trailer<</Root 1 0 R>>\n%%EOF"
                .to_vec(),
        ),
        ("not-a-pdf.pdf", b"hello, I am text".to_vec()),
    ];
    for (name, bytes) in &files {
        std::fs::write(corpus.join(name), bytes).unwrap();
    }
    let rep = ingest(&env);
    let f = failed(&rep);
    let names: Vec<&str> = f.iter().map(|(p, _)| p.as_str()).collect();
    // The damaged-but-whole file is read; every other one is one line.
    assert_eq!(rep["added"], 1, "{rep}");
    assert!(!names.contains(&"no-xref.pdf"), "{rep}");
    for n in [
        "truncated.pdf",
        "junk.pdf",
        "nested.pdf",
        "pages-loop.pdf",
        "not-a-pdf.pdf",
    ] {
        let (_, why) = f
            .iter()
            .find(|(p, _)| p == n)
            .unwrap_or_else(|| panic!("{n} missing from failed: {rep}"));
        assert!(!why.is_empty() && !why.contains('\n'), "{n}: {why:?}");
        assert!(!why.contains("panicked"), "{n}: {why:?}");
    }
    let q = env.json(&["query", "--json", "--as", "dave", "team lead approval"]);
    assert_eq!(q["hits"][0]["doc"], "no-xref.pdf", "{q}");

    // pdf-extract alone cannot read it: the rescue is PDFium's.
    let env2 = self::env("[ingest]\npdf_engine = \"pdf-extract\"\n");
    std::fs::write(env2.path().join("corpus/no-xref.pdf"), without_xref(&good)).unwrap();
    let rep2 = ingest(&env2);
    assert_eq!(failed(&rep2).len(), 1, "{rep2}");
}

#[test]
fn the_engine_setting_is_honoured_and_a_broken_library_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = make_pdf(tmp.path(), "a.pdf", &[PAGE1]);

    // Required PDFium that is not there: each PDF fails, saying why.
    let env1 = env("[ingest]\npdf_engine = \"pdfium\"\npdfium = \"missing/libpdfium.so\"\n");
    std::fs::write(env1.path().join("corpus/a.pdf"), &pdf).unwrap();
    let rep = ingest(&env1);
    let f = failed(&rep);
    assert_eq!(f.len(), 1, "{rep}");
    assert!(f[0].1.contains("cannot load PDFium"), "{:?}", f[0]);

    // A file that is not a library, with the automatic choice: read by
    // pdf-extract, with a warning naming the reason.
    let env2 = env("[ingest]\npdfium = \"not-a-library.so\"\n");
    std::fs::write(env2.path().join("not-a-library.so"), b"nope").unwrap();
    std::fs::write(env2.path().join("corpus/a.pdf"), &pdf).unwrap();
    let rep = ingest(&env2);
    assert_eq!(rep["added"], 1, "{rep}");
    let w = rep["warnings"].to_string();
    assert!(
        w.contains("cannot load PDFium") && w.contains("pdf-extract"),
        "{rep}"
    );

    // An unknown engine is a configuration error naming the key.
    let env3 = env("[ingest]\npdf_engine = \"acrobat\"\n");
    let out = env3.run(&["ingest", "--quiet", "corpus"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pdf_engine"), "{err}");
}

const SCAN_DE: &str = "Lieferantenvertrag Nummer 2026-118\n\n\
Der Auftragnehmer liefert die Paletten frei Haus an das Zentrallager in Würzburg. \
Bei Verzögerungen von mehr als drei Werktagen wird eine Vertragsstrafe von 0,5 % \
des Auftragswerts je Tag fällig, höchstens jedoch 5 %. Mängel sind innerhalb von \
zehn Tagen schriftlich anzuzeigen. Gerichtsstand ist Nürnberg; es gilt deutsches Recht.";

const SCAN_EN: &str = "Customs clearance checklist\n\n\
Every export shipment above 1,000 EUR needs a commercial invoice, a packing list and \
the exporter's EORI number. Dangerous goods are declared on a separate form before \
the truck leaves the yard. Keep copies of all documents for six years and send the \
originals to the freight forwarder by courier within two working days.";

/// Character error rate: edit distance over the reference's length, with
/// runs of white space counted as one space (line breaks are layout).
fn cer(reference: &str, got: &str) -> f64 {
    let norm = |s: &str| -> Vec<char> {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .collect()
    };
    let (a, b) = (norm(reference), norm(got));
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] as f64 / a.len().max(1) as f64
}

#[test]
fn scanned_pages_are_read_by_ocr_in_german_and_english() {
    let env = env("");
    let corpus = env.path().join("corpus");
    make_scan(&corpus, "vertrag-scan.pdf", &[SCAN_DE, SCAN_EN]);
    let rep = ingest(&env);
    assert_eq!(rep["added"], 1, "{rep}");
    assert_eq!(rep["pages"], 2, "{rep}");
    let w = rep["warnings"].to_string();
    assert!(w.contains("pages 1, 2 read by OCR"), "{rep}");

    // Exact enough to quote: character error rate on clean scans ≤ 2 %,
    // in each language (umlauts and ß included in the German one).
    let q = search(&env, 8, "Vertragsstrafe Verzögerungen Würzburg");
    let hits = q["hits"].as_array().unwrap();
    let de: String = hits
        .iter()
        .filter(|h| h["page"] == 1)
        .map(|h| h["text"].as_str().unwrap().to_string())
        .next()
        .unwrap_or_else(|| panic!("no hit on the German page: {q}"));
    let q = search(&env, 8, "customs EORI packing list");
    let en: String = q["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["page"] == 2)
        .map(|h| h["text"].as_str().unwrap().to_string())
        .next()
        .unwrap_or_else(|| panic!("no hit on the English page: {q}"));
    let (cer_de, cer_en) = (cer(SCAN_DE, &de), cer(SCAN_EN, &en));
    eprintln!("OCR character error rate: German {cer_de:.4}, English {cer_en:.4}");
    assert!(cer_de <= 0.02, "German CER {cer_de}: {de:?}");
    assert!(cer_en <= 0.02, "English CER {cer_en}: {en:?}");
    assert!(de.contains("Würzburg") && de.contains("fällig"), "{de:?}");
    // Hits and citations say the text was read by OCR, with its confidence.
    let hits = search(&env, 8, "Vertragsstrafe Verzögerungen Würzburg");
    assert!(
        hits["hits"][0]["ocr_confidence"].as_f64().unwrap() > 50.0,
        "{hits}"
    );
    let out = env.run(&[
        "query",
        "--as",
        "dave",
        "Wann ist die Vertragsstrafe fällig?",
    ]);
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("read by OCR (confidence"), "{out}");

    // OCR off: the same file is one failed line saying so.
    let why = scan_fails_with("[ingest]\nocr = false\n");
    assert!(
        why.contains("no extractable text") && why.contains("OCR is off"),
        "{why}"
    );
    // Tesseract missing: the reason names the fix.
    let why = scan_fails_with("[ingest]\ntesseract = \"nowhere\"\n");
    assert!(why.contains("make ocr"), "{why}");
}

/// Ingests a German scan under `config` and returns the one failure's reason.
fn scan_fails_with(config: &str) -> String {
    let env = env(config);
    make_scan(&env.path().join("corpus"), "vertrag-scan.pdf", &[SCAN_DE]);
    let rep = ingest(&env);
    let f = failed(&rep);
    assert_eq!(f.len(), 1, "{rep}");
    f[0].1.clone()
}

#[test]
fn ocr_language_settings_are_checked() {
    let env = env("[ingest]\nocr_languages = \"deu eng\"\n");
    let out = env.run(&["ingest", "--quiet", "corpus"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ingest.ocr_languages"), "{err}");
}

#[test]
fn a_long_scan_keeps_what_ocr_read_within_the_time_limit() {
    // Half of the 6 s limit goes to OCR; 16 pages take several times that.
    let env = env("[ingest]\npdf_timeout_s = 6\n");
    let pages: Vec<&str> = std::iter::repeat_n(SCAN_EN, 16).collect();
    make_scan(&env.path().join("corpus"), "long-scan.pdf", &pages);
    let rep = ingest(&env);
    assert_eq!(rep["added"], 1, "{rep}");
    let w = rep["warnings"].to_string();
    assert!(w.contains("OCR stopped at page"), "{rep}");
    assert!(w.contains("ingest.pdf_timeout_s"), "{rep}");
    let q = env.json(&["query", "--json", "--as", "dave", "EORI number export"]);
    assert_eq!(q["hits"][0]["page"], 1, "{q}");
}

#[test]
fn pictures_are_read_by_ocr_and_pictures_without_text_are_skipped() {
    let env = env("");
    let corpus = env.path().join("corpus");
    make_scan(&corpus, "whiteboard.png", &[SCAN_DE]);
    make_scan(&corpus, "fax.tif", &[SCAN_EN, SCAN_DE]);
    make_scan(&corpus, "photo.jpg", &[SCAN_EN]);
    // A logo: no text to find.
    std::fs::copy(
        repo().join("fixtures/corpus/public/logo.png"),
        corpus.join("logo.png"),
    )
    .unwrap();
    std::fs::write(corpus.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let rep = ingest(&env);
    assert_eq!(rep["added"], 3, "{rep}");
    // The TIFF's two pages are two pages.
    assert_eq!(rep["pages"], 4, "{rep}");
    assert!(rep["warnings"].to_string().contains("read by OCR"), "{rep}");
    let skipped = rep["skipped"].to_string();
    assert!(
        skipped.contains("logo.png") && skipped.contains("no text"),
        "{rep}"
    );
    let f = failed(&rep);
    assert_eq!(f.len(), 1, "{rep}");
    assert_eq!(f[0].0, "broken.png");
    assert!(f[0].1.contains("cannot be decoded"), "{rep}");

    let q = search(&env, 8, "customs EORI packing list");
    let hits = q["hits"].as_array().unwrap();
    let fax = hits
        .iter()
        .find(|h| h["doc"] == "fax.tif")
        .unwrap_or_else(|| panic!("{q}"));
    assert_eq!(fax["page"], 1, "{q}");
    let cer_en = cer(SCAN_EN, fax["text"].as_str().unwrap());
    assert!(cer_en <= 0.02, "{cer_en}: {fax}");
    let q = search(&env, 8, "Vertragsstrafe Verzögerungen Würzburg");
    let docs: Vec<(&str, &Value)> = q["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["doc"].as_str().unwrap(), &h["page"]))
        .collect();
    assert!(docs.contains(&("whiteboard.png", &Value::from(1))), "{q}");
    assert!(docs.contains(&("fax.tif", &Value::from(2))), "{q}");

    // OCR off: pictures are left out, saying why.
    let env = self::env("[ingest]\nocr = false\n");
    make_scan(&env.path().join("corpus"), "whiteboard.png", &[SCAN_DE]);
    let rep = ingest(&env);
    assert_eq!(rep["added"], 0, "{rep}");
    assert!(
        rep["skipped"].to_string().contains("ingest.ocr is off"),
        "{rep}"
    );
}

#[test]
fn running_heads_and_feet_stay_out_of_chunks() {
    let env = env("");
    let corpus = env.path().join("corpus");
    let bodies = [
        "Reisekosten werden binnen 30 Tagen erstattet.",
        "Übernachtungen werden bis 120 EUR erstattet.",
        "Trips abroad need the approval of the team lead.",
        "Mileage is paid at 30 cents per kilometre.",
    ];
    let pages: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "Nordwind Logistik GmbH - Interne Richtlinie\n\n{b}\n\nSeite {} von 4",
                i + 1
            )
        })
        .collect();
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    make_pdf(&corpus, "richtlinie.pdf", &refs);
    let rep = ingest(&env);
    assert_eq!(rep["added"], 1, "{rep}");
    let q = search(&env, 8, "Nordwind Logistik Richtlinie Trips abroad Mileage");
    let hits = q["hits"].as_array().unwrap();
    for h in hits {
        let (page, text) = (h["page"].as_u64().unwrap(), h["text"].as_str().unwrap());
        if page > 1 {
            assert!(!text.contains("Nordwind Logistik GmbH"), "{h}");
            assert!(!text.contains("von 4"), "{h}");
        }
    }
    assert!(hits.iter().any(|h| h["page"] == 3), "{q}");
    // The title stays findable where it first appears.
    let q = search(&env, 3, "Nordwind Logistik GmbH Interne Richtlinie");
    assert_eq!(q["hits"][0]["page"], 1, "{q}");
}

/// `hort status` says what PDFs and scans are read with, and what is
/// missing and how to get it.
#[test]
fn status_names_the_pdf_engine_and_ocr() {
    let line = |extra: &str| -> String {
        let env = env(extra);
        ingest(&env);
        env.json(&["status", "--json"])["pdf_readers"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let full = line("");
    assert!(
        full.starts_with("PDFium (")
            && full.contains("pdf-extract where it cannot open")
            && full.ends_with("OCR deu+eng at 300 dpi"),
        "{full}"
    );
    assert_eq!(
        line("[ingest]\nocr = false\npdf_engine = \"pdf-extract\"\n"),
        "pdf-extract (no PDFium; no OCR of scans); OCR off"
    );
    let missing = line("[ingest]\ntesseract = \"nowhere\"\n");
    assert!(
        missing.contains("OCR missing") && missing.contains("make ocr"),
        "{missing}"
    );
}
