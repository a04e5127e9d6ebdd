//! Copying documents between stores with their vectors (nothing is embedded
//! again): `hort migrate`, in either direction, through the storage
//! contract. A copy compares each document's content hash, access rule and
//! injection verdicts with what the target holds and writes only what
//! differs; documents of the copied folders that the source no longer has
//! are removed from the target (uploads, which other nodes may have made,
//! are never removed).

use std::collections::{HashMap, HashSet};

use super::contract::{IndexRead, IndexWrite};
use super::record::{StoredDoc, UPLOAD_ROOT};
use super::{NewDocument, StoreError};

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CopyReport {
    /// Documents the target did not have.
    pub added: usize,
    /// Documents the target had in another version.
    pub updated: usize,
    /// Documents of the copied folders the source no longer has.
    pub removed: usize,
    /// Documents already the same.
    pub unchanged: usize,
    /// Chunks written.
    pub chunks: usize,
}

/// Documents read from the source at a time.
const BATCH: usize = 64;

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Whether the target's copy of `d` is already the same version.
fn same(stored: &StoredDoc, d: &NewDocument) -> bool {
    let rule = |a: &Option<crate::acl::AccessRule>| {
        a.as_ref().map(|r| (sorted(&r.teams), r.classification))
    };
    stored.sha256 == d.sha256
        && rule(&stored.access) == rule(&d.access)
        && stored.flagged.len() == d.chunks.iter().filter(|c| c.injection.is_some()).count()
}

/// Makes `dst` hold every document of `src`, then commits.
pub fn copy(
    src: &dyn IndexRead,
    dst: &mut dyn IndexWrite,
    progress: bool,
) -> Result<CopyReport, StoreError> {
    let total = src.stats()?.documents;
    dst.expect(total)?;
    let mut report = CopyReport::default();
    // The target's documents, per folder, loaded when the folder first appears.
    let mut stored: HashMap<String, HashMap<String, StoredDoc>> = HashMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut from = 0u64;
    let mut done = 0usize;
    loop {
        let batch = src.export(from, BATCH)?;
        let Some(last) = batch.last() else { break };
        from = last.0 + 1;
        for (_, d) in batch {
            if !stored.contains_key(&d.root) {
                let docs = dst
                    .stored(&d.root)?
                    .into_iter()
                    .map(|s| (s.path.clone(), s))
                    .collect();
                stored.insert(d.root.clone(), docs);
            }
            seen.insert((d.root.clone(), d.path.clone()));
            match stored.get(&d.root).and_then(|m| m.get(&d.path)) {
                Some(s) if same(s, &d) => report.unchanged += 1,
                existing => {
                    if existing.is_some() {
                        report.updated += 1;
                    } else {
                        report.added += 1;
                    }
                    report.chunks += d.chunks.len();
                    dst.put(d)?;
                }
            }
            done += 1;
        }
        if progress {
            eprint!("\rmigrate: {done} of {total} documents read");
        }
    }
    if progress && done > 0 {
        eprintln!();
    }
    for (root, docs) in &stored {
        if root == UPLOAD_ROOT {
            continue;
        }
        for (path, s) in docs {
            if !seen.contains(&(root.clone(), path.clone())) {
                report.removed += dst.remove(s.id)? as usize;
            }
        }
    }
    if progress {
        eprintln!("migrate: committing");
    }
    dst.commit()?;
    Ok(report)
}
