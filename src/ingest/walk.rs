//! Walking an ingest folder: which files are documents, which access rule
//! governs each, and what is skipped (with the reason).
//!
//! Symbolic links are never followed (a link could point outside the folder,
//! at files nobody meant to publish), hidden entries are skipped, and only
//! regular files are opened (a FIFO would block the ingest forever).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::loader::FileKind;
use super::rules::{parse_rule, DIR_RULE, FILE_RULE_SUFFIX};
use crate::acl::AccessRule;
use crate::sanitize::hygiene::is_invisible_in_name;

/// The access rule that applies to a file.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleState {
    /// A rule file applies.
    Rule {
        /// Its rule.
        rule: AccessRule,
        /// The rule file, relative to the root.
        source: String,
    },
    /// No rule file applies: stored, visible to nobody.
    Missing,
    /// The governing rule file is invalid: treated as `Missing` (fail closed).
    Invalid {
        /// The invalid rule file.
        source: String,
    },
}

impl RuleState {
    /// The rule, if one applies.
    pub fn access(&self) -> Option<&AccessRule> {
        match self {
            RuleState::Rule { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// The rule file that governs the file, valid or not.
    pub fn source(&self) -> Option<&str> {
        match self {
            RuleState::Rule { source, .. } | RuleState::Invalid { source } => Some(source),
            RuleState::Missing => None,
        }
    }
}

/// A file found under a folder, with its rule.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Relative to the root, `/`-separated.
    pub rel: String,
    /// Its absolute path.
    pub abs: PathBuf,
    /// Its type.
    pub kind: FileKind,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time (ns since the epoch).
    pub mtime_ns: i64,
    /// The rule that applies to it.
    pub rule: RuleState,
}

/// A file left out, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Skipped {
    /// The file, relative to its folder.
    pub path: String,
    /// Why it was left out.
    pub reason: String,
}

/// A problem found while walking (unreadable directory, invalid rule file,
/// unusable name); reported in `failed`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WalkError {
    /// The path that could not be read.
    pub path: String,
    /// Why.
    pub error: String,
}

/// What a walk of one folder found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files to ingest.
    pub files: Vec<SourceFile>,
    /// Files left out.
    pub skipped: Vec<Skipped>,
    /// Paths that could not be read.
    pub errors: Vec<WalkError>,
    /// Relative paths that exist but could not be examined; documents indexed
    /// under them are kept rather than removed.
    pub unreadable: Vec<String>,
}

fn rel_join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

fn read_rule(path: &Path, rel: &str, scan: &mut Scan) -> RuleState {
    let text = match fs::read(path) {
        Ok(b) => match String::from_utf8(b) {
            Ok(s) => s,
            Err(_) => {
                scan.errors.push(WalkError {
                    path: rel.to_string(),
                    error: "invalid access rule: the file is not UTF-8".into(),
                });
                return RuleState::Invalid {
                    source: rel.to_string(),
                };
            }
        },
        Err(e) => {
            scan.errors.push(WalkError {
                path: rel.to_string(),
                error: format!("invalid access rule: cannot read: {e}"),
            });
            return RuleState::Invalid {
                source: rel.to_string(),
            };
        }
    };
    match parse_rule(&text) {
        Ok(rule) => RuleState::Rule {
            rule,
            source: rel.to_string(),
        },
        Err(e) => {
            scan.errors.push(WalkError {
                path: rel.to_string(),
                error: format!("invalid access rule: {e}"),
            });
            RuleState::Invalid {
                source: rel.to_string(),
            }
        }
    }
}

fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

/// Walks `root` (which must be a directory).
pub fn scan(root: &Path) -> std::io::Result<Scan> {
    let mut scan = Scan::default();
    // (directory, its relative path, the rule inherited from above)
    let mut stack: Vec<(PathBuf, String, RuleState)> =
        vec![(root.to_path_buf(), String::new(), RuleState::Missing)];
    let mut first = true;
    while let Some((dir, rel, inherited)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if first => return Err(e),
            Err(e) => {
                scan.errors.push(WalkError {
                    path: rel.clone(),
                    error: format!("cannot read directory: {e}"),
                });
                scan.unreadable.push(rel.clone());
                continue;
            }
        };
        first = false;
        // Sorted by name for a deterministic order.
        let mut names: BTreeMap<String, fs::DirEntry> = BTreeMap::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    scan.errors.push(WalkError {
                        path: rel.clone(),
                        error: format!("cannot list directory: {e}"),
                    });
                    scan.unreadable.push(rel.clone());
                    continue;
                }
            };
            match entry.file_name().into_string() {
                Ok(n) => {
                    names.insert(n, entry);
                }
                Err(raw) => scan.errors.push(WalkError {
                    path: rel_join(&rel, &raw.to_string_lossy()),
                    error: "file name is not valid UTF-8; rename it to ingest it".into(),
                }),
            }
        }
        let here = if names.contains_key(DIR_RULE) {
            read_rule(&dir.join(DIR_RULE), &rel_join(&rel, DIR_RULE), &mut scan)
        } else {
            inherited
        };
        let mut subdirs = Vec::new();
        for (name, entry) in &names {
            let path = rel_join(&rel, name);
            if name == DIR_RULE || name.ends_with(FILE_RULE_SUFFIX) {
                continue;
            }
            if let Some(c) = name.chars().find(|&c| is_invisible_in_name(c)) {
                scan.errors.push(WalkError {
                    path: path.escape_debug().to_string(),
                    error: format!(
                        "file name holds an invisible character (control, bidi or zero-width: U+{:04X}) that could make it pass for another; rename it to ingest it",
                        c as u32
                    ),
                });
                continue;
            }
            if name.starts_with('.') {
                scan.skipped.push(Skipped {
                    path,
                    reason: "hidden".into(),
                });
                continue;
            }
            let ft = match entry.file_type() {
                Ok(t) => t,
                Err(e) => {
                    scan.errors.push(WalkError {
                        path: path.clone(),
                        error: format!("cannot stat: {e}"),
                    });
                    scan.unreadable.push(path);
                    continue;
                }
            };
            if ft.is_symlink() {
                scan.skipped.push(Skipped {
                    path,
                    reason: "symbolic link (not followed)".into(),
                });
                continue;
            }
            if ft.is_dir() {
                subdirs.push((entry.path(), path));
                continue;
            }
            if !ft.is_file() {
                scan.skipped.push(Skipped {
                    path,
                    reason: "not a regular file".into(),
                });
                continue;
            }
            let ext = Path::new(name)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("");
            let Some(kind) = FileKind::from_extension(ext) else {
                scan.skipped.push(Skipped {
                    path,
                    reason: if ext.is_empty() {
                        "no file extension".into()
                    } else {
                        format!("unsupported file type .{ext}")
                    },
                });
                continue;
            };
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    scan.errors.push(WalkError {
                        path: path.clone(),
                        error: format!("cannot stat: {e}"),
                    });
                    scan.unreadable.push(path);
                    continue;
                }
            };
            let own_rule = format!("{name}{FILE_RULE_SUFFIX}");
            let rule = if names.contains_key(&own_rule) {
                read_rule(&dir.join(&own_rule), &rel_join(&rel, &own_rule), &mut scan)
            } else {
                here.clone()
            };
            scan.files.push(SourceFile {
                rel: path,
                abs: entry.path(),
                kind,
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                rule,
            });
        }
        for (abs, path) in subdirs.into_iter().rev() {
            stack.push((abs, path, here.clone()));
        }
    }
    scan.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Classification;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn nearest_rule_wins_and_file_rules_override() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(
            r,
            "_access.toml",
            "teams=[\"all\"]\nclassification=\"public\"",
        );
        write(r, "a.txt", "a");
        write(
            r,
            "fin/_access.toml",
            "teams=[\"finance\"]\nclassification=\"confidential\"",
        );
        write(r, "fin/b.md", "b");
        write(r, "fin/deep/c.html", "<p>c</p>");
        write(r, "fin/d.pdf", "%PDF");
        write(
            r,
            "fin/d.pdf.access.toml",
            "teams=[\"board\"]\nclassification=\"restricted\"",
        );
        write(
            r,
            "bad/_access.toml",
            "teams=[\"x\"]\nclassification=\"secret\"",
        );
        write(r, "bad/e.txt", "e");
        write(r, "video.mp4", "x");
        write(r, ".git/config", "x");
        std::os::unix::fs::symlink("/etc/passwd", r.join("passwd.txt")).unwrap();
        let s = scan(r).unwrap();
        let by: std::collections::HashMap<&str, &SourceFile> =
            s.files.iter().map(|f| (f.rel.as_str(), f)).collect();
        assert_eq!(by.len(), 5, "{:?}", s.files);
        assert_eq!(by["a.txt"].rule.access().unwrap().teams, vec!["all"]);
        assert_eq!(by["fin/b.md"].rule.access().unwrap().teams, vec!["finance"]);
        assert_eq!(
            by["fin/deep/c.html"].rule.access().unwrap().classification,
            Classification::Confidential
        );
        assert_eq!(by["fin/d.pdf"].rule.access().unwrap().teams, vec!["board"]);
        assert_eq!(by["fin/d.pdf"].rule.source(), Some("fin/d.pdf.access.toml"));
        assert!(matches!(by["bad/e.txt"].rule, RuleState::Invalid { .. }));
        assert_eq!(s.errors.len(), 1);
        assert!(
            s.errors[0].path == "bad/_access.toml" && s.errors[0].error.contains("classification")
        );
        let skipped: Vec<&str> = s.skipped.iter().map(|k| k.path.as_str()).collect();
        assert_eq!(skipped, vec![".git", "passwd.txt", "video.mp4"]);
    }

    /// A name that could pass for another in a citation is refused with a
    /// line saying so; its neighbours are read.
    #[test]
    fn names_with_invisible_characters_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(
            r,
            "_access.toml",
            "teams=[\"all\"]\nclassification=\"public\"",
        );
        write(r, "invoice\u{202E}fdp.txt", "x");
        write(r, "two\nlines.txt", "x");
        write(r, "zero\u{200B}width/inner.md", "x");
        write(r, "fine.txt", "x");
        let s = scan(r).unwrap();
        let files: Vec<&str> = s.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(files, vec!["fine.txt"]);
        let mut errors: Vec<&str> = s.errors.iter().map(|e| e.path.as_str()).collect();
        errors.sort();
        assert_eq!(
            errors,
            vec![
                "invoice\\u{202e}fdp.txt",
                "two\\nlines.txt",
                "zero\\u{200b}width"
            ]
        );
        assert!(s.errors.iter().all(|e| e.error.contains("rename it")));
    }

    #[test]
    fn no_rule_means_missing() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "x.txt", "x");
        let s = scan(d.path()).unwrap();
        assert_eq!(s.files[0].rule, RuleState::Missing);
    }
}
