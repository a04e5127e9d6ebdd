//! Crash safety: an ingest killed at any point (abort at each step of the
//! commit protocol, or `kill -9` at random moments) leaves an index that opens
//! and answers at the previous or the new state, never a mix; the next ingest
//! completes.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{copy_tree, Env};
use hort::store::IndexReader;
use hort::{Classification, Principal};

const WORDS: &[&str] = &[
    "freight",
    "harbour",
    "invoice",
    "pallet",
    "driver",
    "route",
    "customs",
    "warehouse",
    "contract",
    "delivery",
    "schedule",
    "container",
    "budget",
    "tariff",
    "shipment",
    "crane",
    "vessel",
    "rail",
    "truck",
    "depot",
    "forklift",
    "order",
    "claim",
    "audit",
    "policy",
];

/// A document of ~150 words (one chunk) with a unique marker word.
fn doc(i: usize, version: usize) -> String {
    let mut s = (i as u64 + 1) * 2654435761 + version as u64 * 97;
    let mut out = format!("Document marker{i}v{version}. ");
    for w in 0..150 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push_str(WORDS[(s >> 33) as usize % WORDS.len()]);
        out.push(if w % 12 == 11 { '.' } else { ' ' });
    }
    out
}

fn write_corpus(dir: &Path, ids: impl Iterator<Item = usize>, version_of: impl Fn(usize) -> usize) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("_access.toml"),
        "teams = [\"staff\"]\nclassification = \"public\"\n",
    )
    .unwrap();
    for i in ids {
        std::fs::write(dir.join(format!("doc{i:03}.txt")), doc(i, version_of(i))).unwrap();
    }
}

fn status(env: &Env, index: &Path) -> (u64, u64) {
    let v = env.json(&["status", "--json", "--index", index.to_str().unwrap()]);
    (
        v["documents"].as_u64().unwrap(),
        v["chunks"].as_u64().unwrap(),
    )
}

/// Opens the index as a reader would and looks for a marker word.
fn has(index: &Path, marker: &str) -> bool {
    let reader = IndexReader::open(index).unwrap();
    let snap = reader.snapshot();
    let p = Principal::new("guest", &["staff"], Classification::Public);
    !snap
        .keyword_search_filtered(
            &hort::store::keyword::KeywordQuery::of(marker),
            &snap.filter_for(&p),
            None,
            1,
        )
        .unwrap()
        .is_empty()
}

fn counts(index: &Path) -> (u64, u64) {
    let reader = IndexReader::open(index).unwrap();
    let snap = reader.snapshot();
    (snap.docs.len() as u64, snap.live_chunks() as u64)
}

fn ingest(
    env: &Env,
    index: &Path,
    corpus: &Path,
    crashpoint: Option<&str>,
) -> std::process::Output {
    let mut c = env.cmd();
    c.args(["ingest", "--json", "--index"])
        .arg(index)
        .arg(corpus);
    if let Some(p) = crashpoint {
        c.env("HORT_CRASHPOINT", p);
    }
    c.output().unwrap()
}

/// Whether the index shows the new corpus (false: the old one); panics if
/// it is a mix of the two.
fn classify(index: &Path, old: (u64, u64), new: (u64, u64)) -> bool {
    let s = counts(index);
    // marker5 is a changed document, marker70 a new one, marker0 a removed one.
    let changed = has(index, "marker5v2");
    let added = has(index, "marker70v1");
    let removed_gone = !has(index, "marker0v1");
    if s == old {
        assert!(
            !changed && !added && !removed_gone,
            "old counts, new content: a mix"
        );
        false
    } else if s == new {
        assert!(
            changed && added && removed_gone,
            "new counts, old content: a mix"
        );
        true
    } else {
        panic!("index at {s:?}, neither old {old:?} nor new {new:?}");
    }
}

// The crash points exist in debug builds only (never in a release binary).
#[cfg(debug_assertions)]
#[test]
fn crash_at_every_commit_step_and_kill_9_anywhere() {
    let env = Env::new("minilm-l6");
    let base = env.path().join("base-index");
    // One folder, first at version 1, then changed to version 2 in place.
    let v1 = env.path().join("corpus");
    let v2 = v1.clone();
    write_corpus(&v1, 0..60, |_| 1);
    let out = ingest(&env, &base, &v1, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let old = counts(&base);
    assert_eq!(old.0, 60);
    // v2: 0..10 removed except 5, which changes with 10..20; 60..80 added.
    write_corpus(&v2, (10..80).chain(5..6), |i| {
        if (10..20).contains(&i) || i == 5 {
            2
        } else {
            1
        }
    });

    // The reference new state, reached without any crash.
    let reference = env.path().join("reference");
    copy_tree(&base, &reference);
    assert!(ingest(&env, &reference, &v2, None).status.success());
    let new = counts(&reference);
    assert_eq!(new.0, 71);
    assert_eq!(status(&env, &reference), new, "the CLI agrees");
    assert!(classify(&reference, old, new));

    let steps = [
        ("commit:segments-written", false),
        ("commit:pending-written", false),
        ("commit:keyword-committed", true),
        ("commit:manifest-renamed", true),
    ];
    for (point, expect_new) in steps {
        let idx = env
            .path()
            .join(format!("crash-{}", point.replace(':', "-")));
        copy_tree(&base, &idx);
        let out = ingest(&env, &idx, &v2, Some(point));
        assert!(
            !out.status.success(),
            "{point}: the crash hook did not fire"
        );
        // A reader opens the crashed index without any repair step.
        assert_eq!(classify(&idx, old, new), expect_new, "{point}");
        assert_eq!(status(&env, &idx).0, if expect_new { new.0 } else { old.0 });
        // The next ingest completes and ends at the new state.
        let out = ingest(&env, &idx, &v2, None);
        assert!(
            out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if expect_new {
            assert_eq!(
                rep["embedded"], 0,
                "{point}: rolled forward, nothing to redo"
            );
        }
        assert!(classify(&idx, old, new), "{point}");
    }

    // kill -9 at spread-out moments of a real ingest.
    let idx = env.path().join("killed");
    copy_tree(&base, &idx);
    let timing = env.path().join("timing");
    copy_tree(&base, &timing);
    let start = Instant::now();
    assert!(ingest(&env, &timing, &v2, None).status.success());
    let full = start.elapsed();
    let mut saw_old = false;
    for frac in [0.05, 0.2, 0.4, 0.6, 0.8, 0.95] {
        let mut child = env
            .cmd()
            .args(["ingest", "--quiet", "--index"])
            .arg(&idx)
            .arg(&v2)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(full.as_secs_f64() * frac));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !classify(&idx, old, new) {
            saw_old = true;
        } else {
            // Reached the new state already: start over from the old one.
            std::fs::remove_dir_all(&idx).unwrap();
            copy_tree(&base, &idx);
        }
    }
    assert!(
        saw_old,
        "no kill landed before the commit; the test proved nothing"
    );
    assert!(ingest(&env, &idx, &v2, None).status.success());
    assert!(classify(&idx, old, new));
}

/// The keyword index is derived from the segments: damaged on disk (a file
/// its meta file names gone, or the meta file garbled), the next command
/// mends it instead of failing, and nothing is embedded again.
#[test]
fn a_damaged_keyword_index_is_mended_by_the_next_command() {
    let env = Env::new("minilm-l6");
    let corpus = env.path().join("corpus");
    write_corpus(&corpus, 0..5, |_| 1);
    for (damage, command) in [("term files gone", "ingest"), ("garbled meta", "status")] {
        let index = env.path().join(format!("index-{command}"));
        let out = ingest(&env, &index, &corpus, None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kw = index.join("keyword");
        if damage == "garbled meta" {
            std::fs::write(kw.join("meta.json"), "{\"segments\": [").unwrap();
        } else {
            for e in std::fs::read_dir(&kw).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "term") {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        let out = match command {
            "ingest" => ingest(&env, &index, &corpus, None),
            _ => env.run(&["status", "--json", "--index", index.to_str().unwrap()]),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{damage}, {command}: {stderr}");
        assert!(
            stderr.contains("rebuilding it from the segments"),
            "{stderr}"
        );
        if command == "ingest" {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["unchanged"].as_u64(), Some(5), "{v}");
            assert_eq!(v["embedded"].as_u64(), Some(0), "re-embedded: {v}");
        }
        assert!(has(&index, "marker3v1"), "{damage}: keyword search lost");
        assert_eq!(counts(&index), (5, 5));
    }
}
