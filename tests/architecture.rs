//! The architecture, as a table, checked against the code.
//!
//! [`ALLOWED`] says what each top-level module of the library may import
//! from the others; the test reads every `crate::` path (and every `super::`
//! that climbs out of its module) in `src/` outside test code and fails on
//! any import the table does not allow, on a module the table does not
//! know, and on an entry nothing uses any more (so the table stays the
//! truth). Changing the architecture means changing this table, in review.
//!
//! Read it bottom-up: each module uses only modules listed before it, and
//! the front ends (`mcp`, `server`) use the service layer plus the record
//! types its use cases return — never the retrieval, ingest or store
//! functions themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module → what it may import: a module (`store`) or one item or
/// sub-module of it (`store::docfilter`).
const ALLOWED: &[(&str, &[&str])] = &[
    // Vocabulary: no dependencies.
    ("text", &[]),
    ("acl", &[]),
    // The lock that outlives a panic.
    ("sync", &[]),
    // Text checks (injection, personal data, spotlighting, hygiene).
    ("sanitize", &[]),
    // The configuration names classifications and personal-data kinds.
    ("config", &["acl", "sanitize::pii"]),
    ("embed", &["config"]),
    ("auth", &["acl", "config"]),
    // The storage contract and its two backends.
    ("store", &["acl", "config", "sync"]),
    // Writing: parse, chunk, embed, put through the contract.
    (
        "ingest",
        &["acl", "config", "embed", "sanitize", "store", "text"],
    ),
    // Reading: hybrid search through the contract.
    (
        "retrieve",
        &["acl", "config", "embed", "store", "sync", "text"],
    ),
    // The books (usage, limits, audit); on PostgreSQL on the store's pool.
    (
        "gateway",
        &["acl", "config", "sanitize", "store::pg", "sync", "text"],
    ),
    // Answers from hits; reads the store only for the output checks.
    (
        "generate",
        &[
            "acl",
            "config",
            "gateway",
            "retrieve::Hit",
            // The search's translation of the question, which the offline
            // answerer reads other-language sources with.
            "retrieve::translate::Held",
            "retrieve::translate::Senses",
            "sanitize",
            "store::IndexRead",
            "sync",
            "text",
        ],
    ),
    // The use cases, written once.
    (
        "service",
        &[
            "acl", "config", "embed", "gateway", "generate", "ingest", "retrieve", "sanitize",
            "store", "sync", "text",
        ],
    ),
    // Front ends: the service, and the records its use cases take and return.
    ("mcp", &["acl", "config", "service"]),
    (
        "server",
        &[
            "auth",
            "config",
            "embed::Embedder",
            "gateway::BudgetStatus",
            "gateway::SpendRow",
            "gateway::metrics",
            "generate::Answer",
            "generate::StreamEvent",
            "mcp",
            "retrieve::Hit",
            "service",
            "store::docfilter",
            "sync",
            "text",
        ],
    ),
    // Benchmarks measure every layer, the server included.
    (
        "bench",
        &[
            "acl", "config", "embed", "gateway", "ingest", "retrieve", "sanitize", "server",
            "service", "store", "sync", "text",
        ],
    ),
];

/// Every path a piece of Rust names after `crate::` (groups expanded:
/// `crate::store::{docfilter::DocFilter, IndexRead}` gives both).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let boundary = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = &rest[i + "crate::".len()..];
        if boundary {
            expand("", after, &mut out);
        }
        rest = after;
    }
    out
}

/// Expands the path that starts `text` (after `prefix`) into `out`.
fn expand(prefix: &str, text: &str, out: &mut Vec<String>) {
    let text = text.trim_start();
    if let Some(inner) = text.strip_prefix('{') {
        for part in split_group(inner) {
            expand(prefix, part, out);
        }
        return;
    }
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() || ident == "self" {
        if !prefix.is_empty() {
            out.push(prefix.to_string());
        }
        return;
    }
    let path = if prefix.is_empty() {
        ident.clone()
    } else {
        format!("{prefix}::{ident}")
    };
    match text[ident.len()..].strip_prefix("::") {
        Some(more) => expand(&path, more, out),
        None => out.push(path),
    }
}

/// The top-level parts of a `{…}` group (up to its closing brace).
fn split_group(inner: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0usize, 0usize, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                parts.push(&inner[start..i]);
                return parts;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
}

/// The module path of a file under `src/` (`store/pg/read.rs` →
/// `[store, pg, read]`; `store/mod.rs` → `[store]`).
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Paths reached through `super::` that climb to the crate root (a module
/// reaching a sibling of its top-level module).
fn escaping_super_paths(module: &[String], code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("super::") {
        let boundary = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
        let mut after = &rest[i..];
        if boundary {
            let mut level = module.len();
            while let Some(more) = after.strip_prefix("super::") {
                level = level.saturating_sub(1);
                after = more;
            }
            if level == 0 {
                expand("", after, &mut out);
            }
        } else {
            after = &rest[i + "super::".len()..];
        }
        rest = after;
    }
    out
}

/// Source without comments and without its test module (`#[cfg(test)]` at
/// the top level starts the tests, by convention at the end of a file).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let code = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Whether `path` (e.g. `store::docfilter::DocFilter`) is covered by `allowed`.
fn covered(path: &str, allowed: &str) -> bool {
    path == allowed || path.starts_with(&format!("{allowed}::"))
}

/// Every import in `files` (path under `src/`, text) that `table` does not
/// allow, every module it does not know, and every entry nothing uses.
fn violations(files: &[(String, String)], table: &[(&str, &[&str])]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = table.iter().copied().collect();
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let mut problems = Vec::new();
    for (rel, text) in files {
        let module = module_of(rel);
        let Some(top) = module.first().cloned() else {
            continue;
        };
        if top == "lib" || top == "bin" || module.iter().any(|m| m == "tests") {
            continue;
        }
        let Some(rules) = allowed.get(top.as_str()) else {
            problems.push(format!(
                "src/{rel}: module `{top}` is not in the architecture table"
            ));
            continue;
        };
        let code = code_of(text);
        let mut paths = crate_paths(&code);
        paths.extend(escaping_super_paths(&module, &code));
        for path in paths {
            let target = path.split("::").next().unwrap_or_default();
            if target == top {
                continue;
            }
            match rules.iter().find(|a| covered(&path, a)) {
                Some(a) => {
                    used.insert((top.clone(), a.to_string()));
                }
                None => problems.push(format!(
                    "src/{rel}: `{top}` may not use `crate::{path}` (allowed: {})",
                    if rules.is_empty() {
                        "nothing".to_string()
                    } else {
                        rules.join(", ")
                    }
                )),
            }
        }
    }
    let seen: BTreeSet<String> = files
        .iter()
        .filter_map(|(rel, _)| module_of(rel).first().cloned())
        .collect();
    for (module, rules) in table {
        if !seen.contains(*module) {
            continue;
        }
        for a in rules.iter() {
            if !used.contains(&(module.to_string(), a.to_string())) {
                problems.push(format!(
                    "the table lets `{module}` use `{a}`, which it no longer does: remove the entry"
                ));
            }
        }
    }
    problems
}

fn read_tree(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            read_tree(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

#[test]
fn every_import_follows_the_architecture_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&src, &src, &mut files);
    assert!(files.len() > 50, "read {} files", files.len());
    let problems = violations(&files, ALLOWED);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    // The library declares exactly the modules of the table.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let table: BTreeSet<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    assert_eq!(declared, table);
}

fn file(rel: &str, text: &str) -> (String, String) {
    (rel.to_string(), text.to_string())
}

/// The check itself fails where it must: an upward import (plain, grouped,
/// in an expression, through `super::`), an unknown module, a stale entry.
#[test]
fn an_upward_import_is_caught() {
    let table: &[(&str, &[&str])] = &[
        ("store", &["acl"]),
        ("acl", &[]),
        ("service", &["store", "acl"]),
        ("server", &["service", "store::docfilter"]),
    ];
    let ok = vec![
        file("acl/mod.rs", "pub struct Principal;"),
        file("store/mod.rs", "use crate::acl::Principal;\nmod pg;"),
        file(
            "store/pg/read.rs",
            "use super::super::Thing; use crate::store::X;",
        ),
        file(
            "service/mod.rs",
            "use crate::{acl::Principal, store::{docfilter::DocFilter, IndexRead}};",
        ),
        file(
            "server/mod.rs",
            "use crate::service::Service;\nuse crate::store::docfilter::DocFilter;\n\
             // a comment naming crate::store::IndexRead is no import\n\
             #[cfg(test)]\nmod tests { use crate::store::IndexRead; }",
        ),
    ];
    assert_eq!(violations(&ok, table), Vec::<String>::new());

    let upward = [
        ("store/writer.rs", "use crate::service::Service;"),
        (
            "store/writer.rs",
            "use crate::{acl::Principal, service::Error};",
        ),
        ("store/writer.rs", "fn f() { crate::service::open(); }"),
        (
            "store/pg/write.rs",
            "use super::super::super::service::Service;",
        ),
        ("server/api.rs", "use crate::store::IndexRead;"),
        ("acl/rules.rs", "use crate::store::Store;"),
    ];
    for (rel, text) in upward {
        let mut files = ok.clone();
        files.push(file(rel, text));
        let v = violations(&files, table);
        assert_eq!(v.len(), 1, "{rel}: {text}: {v:?}");
        assert!(v[0].contains("may not use"), "{v:?}");
    }

    let mut unknown = ok.clone();
    unknown.push(file("cache/mod.rs", "pub struct Cache;"));
    assert!(violations(&unknown, table)[0].contains("not in the architecture table"));

    let stale: &[(&str, &[&str])] = &[
        ("store", &["acl"]),
        ("acl", &[]),
        ("service", &["store", "acl", "server"]),
        ("server", &["service", "store::docfilter"]),
    ];
    let v = violations(&ok, stale);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("no longer does"), "{v:?}");
}
