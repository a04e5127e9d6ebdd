//! The answer cache as a security boundary: over random corpora, random
//! principals and random sequences of equal and similar questions, nobody
//! receives an answer or a citation built from context they may not see,
//! nor one built from an older version of a document; a document change
//! makes exactly the entries that used it miss, and the others still hit.
//!
//! The provider is a fake OpenAI-compatible model on loopback that answers
//! by naming each source it was sent (`label:first-word`), so an answer
//! shows exactly which context it was made from.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use proptest::prelude::*;

use common::acl_corpus::{self, doc, level, TEAMS, WORDS};
use common::{FakeLlm, Reply};
use hort::acl::{AccessRule, Principal};
use hort::config::Config;
use hort::embed::{Embedder, HashEmbedder};
use hort::ingest::{ingest, IngestOptions};
use hort::service::{Call, Query, Service};

fn opts() -> IngestOptions {
    common::index_opts(12, 3, 4)
}

/// What the fake model says of a source text: its first word and length.
fn sign(text: &str) -> String {
    let first = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('.');
    format!("{first}/{}", text.chars().count())
}

/// A model that names every source it was sent by label and text.
fn labeller() -> String {
    let re =
        regex::Regex::new(r"<<<SOURCE \d+ [0-9a-f]+>>>\n\[([^\]]*)\]\n([^\n]*)\n<<<END").unwrap();
    FakeLlm::start(move |req| {
        let user = req["messages"][1]["content"].as_str().unwrap_or("");
        let seen: Vec<String> = re
            .captures_iter(user)
            .map(|c| format!("{}:{}", &c[1], sign(&c[2])))
            .collect();
        let mut r = Reply::text(format!("Seen {} [1].", seen.join(" ")));
        r.prompt_tokens = 200;
        r.completion_tokens = 20;
        r
    })
    .addr
}

fn config(llm: &str, dir: &std::path::Path) -> Config {
    let toml = format!(
        r#"
[[providers]]
name = "fake"
kind = "openai"
base_url = "http://{llm}/v1"
model = "m"
locality = "local"
max_retries = 0
usd_per_1k_input = 0.5

[routing]
chain = ["fake"]
extractive_fallback = false

[cache]
semantic_similarity = 0.8

[[teams]]
name = "finance"
semantic_cache = true

[[teams]]
name = "hr"
semantic_cache = true

[[teams]]
name = "legal"
answer_cache = false
"#
    );
    Config::parse(&toml, std::path::Path::new("cache.toml"), dir.to_path_buf()).unwrap()
}

/// Questions that are equal, equal after normalisation, or similar.
fn question(i: usize, form: u8) -> String {
    let a = WORDS[i % WORDS.len()];
    let b = WORDS[(i / WORDS.len()) % WORDS.len()];
    match form % 4 {
        0 => format!("What about {a} and {b}?"),
        1 => format!("  what ABOUT {a}   and {b}"),
        2 => format!("What about {b} and {a}?"),
        _ => format!("Tell me about {a} and {b}"),
    }
}

struct Asked {
    docs: BTreeSet<String>,
    /// The hits' chunk ids in order (the context's identity).
    ids: Vec<String>,
    status: String,
}

/// Asks and checks the answer: every hit, citation and named source is
/// visible to `p` and is the current text of a hit of this very answer.
fn ask_checked(
    rt: &tokio::runtime::Runtime,
    svc: &Arc<Service>,
    p: &Principal,
    q: &str,
    rules: &HashMap<String, Option<AccessRule>>,
) -> Asked {
    let call = Call::new("t", "test");
    let a = rt
        .block_on(svc.ask(
            &call,
            p,
            Query {
                text: q,
                k: Some(6),
                filter: None,
            },
            None,
        ))
        .unwrap();
    let visible = |doc: &str| {
        let folder = doc.split('/').next().unwrap_or("");
        rules.get(folder).is_some_and(|r| p.can_see(r.as_ref()))
    };
    for h in &a.hits {
        assert!(
            visible(&h.doc),
            "{} got hit {} it may not see",
            p.name,
            h.doc
        );
    }
    for c in &a.citations {
        assert!(
            visible(&c.doc),
            "{} got citation {} it may not see",
            p.name,
            c.doc
        );
    }
    // The answer names exactly sources of this answer's own context.
    let named = a
        .answer
        .trim_start_matches("Seen ")
        .trim_end_matches(" [1].")
        .split_whitespace()
        .filter(|s| s.contains(':'));
    for s in named {
        let (label, word) = s.split_once(':').unwrap();
        assert!(
            visible(label),
            "{} was answered from {label}, which it may not see",
            p.name
        );
        assert!(
            a.hits
                .iter()
                .any(|h| h.doc == label && sign(&h.text) == word),
            "{}: the answer names {s}, which is not the current text of one of its hits ({:?})",
            p.name,
            a.hits.iter().map(|h| (&h.doc, &h.text)).collect::<Vec<_>>()
        );
    }
    Asked {
        docs: a.hits.iter().map(|h| h.doc.clone()).collect(),
        ids: a.hits.iter().map(|h| h.chunk_id.clone()).collect(),
        status: a.cache.map(|c| c.status.to_string()).unwrap_or_default(),
    }
}

fn principal() -> impl Strategy<Value = (Vec<usize>, u8)> {
    (proptest::collection::vec(0..TEAMS.len(), 1..3), 0u8..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_answer_from_context_the_asker_may_not_see(
        docs in proptest::collection::vec(doc(), 2..10),
        principals in proptest::collection::vec(principal(), 2..5),
        asks in proptest::collection::vec((0usize..5, 0usize..12, 0u8..4), 4..16),
        changed in 0usize..10,
        new_words in proptest::collection::vec(0..WORDS.len(), 3..20),
    ) {
        let llm = labeller();
        let src = tempfile::tempdir().unwrap();
        let idx = tempfile::tempdir().unwrap();
        acl_corpus::write(src.path(), &docs);
        let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(32));
        ingest(idx.path(), &[src.path().to_path_buf()], embedder.as_ref(), &opts()).unwrap();
        let cfg = config(&llm, idx.path());
        let svc = Arc::new(
            Service::open(&cfg, embedder.clone(), idx.path(), false).unwrap().with_ingest_options(opts()),
        );
        let rules: HashMap<String, Option<AccessRule>> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let rule = d.rule.as_ref().map(|(t, l)| {
                    let names: Vec<&str> = t.iter().map(|&t| TEAMS[t]).collect();
                    AccessRule::new(&names, level(*l)).unwrap()
                });
                (format!("d{i}"), rule)
            })
            .collect();
        let people: Vec<Principal> = principals
            .iter()
            .enumerate()
            .map(|(i, (t, l))| {
                let names: Vec<&str> = t.iter().map(|&t| TEAMS[t]).collect();
                Principal::new(&format!("p{i}"), &names, level(*l))
            })
            .collect();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut before: Vec<(usize, String, Asked)> = Vec::new();
        for (pi, qi, form) in &asks {
            let p = &people[pi % people.len()];
            let q = question(*qi, *form);
            let first = ask_checked(&rt, &svc, p, &q, &rules);
            // The same question again, at once: a hit for anyone whose teams
            // did not opt out (the context cannot have changed).
            let again = ask_checked(&rt, &svc, p, &q, &rules);
            let opted_out = p.teams.iter().any(|t| t == "legal");
            prop_assert_eq!(&again.ids, &first.ids);
            if opted_out {
                prop_assert_eq!(again.status.as_str(), "bypass");
            } else {
                prop_assert_eq!(again.status.as_str(), "hit", "{} asked {:?} twice", p.name, q);
            }
            before.push((pi % people.len(), q, first));
        }
        // A document changes: its entries must miss, the others still hit.
        let j = changed % docs.len();
        let dir = src.path().join(format!("d{j}"));
        let file = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "md" || e == "txt")).unwrap();
        let text: Vec<&str> = new_words.iter().map(|&w| WORDS[w]).collect();
        std::fs::write(&file, format!("changed {}.", text.join(" "))).unwrap();
        ingest(idx.path(), &[src.path().to_path_buf()], embedder.as_ref(), &opts()).unwrap();
        svc.refresh().unwrap();
        let touched = format!("d{j}/");
        let mut seen = BTreeSet::new();
        for (pi, q, old) in &before {
            if !seen.insert((*pi, q.clone())) {
                continue;
            }
            let p = &people[*pi];
            let now = ask_checked(&rt, &svc, p, q, &rules);
            let used = old.docs.iter().any(|d| d.starts_with(&touched))
                || now.docs.iter().any(|d| d.starts_with(&touched));
            if !used && now.ids == old.ids && old.status != "bypass" {
                prop_assert_eq!(now.status.as_str(), "hit", "an entry of unchanged documents was lost");
            }
        }
    }
}
