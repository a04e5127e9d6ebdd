//! The embedded index's record of files that failed to ingest:
//! `failures.json` beside the manifest, versioned, replaced atomically.
//! Only the ingest writer (which holds the index lock) rewrites it; readers
//! read it when asked, so it needs no generation of its own.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fsutil::atomic_write;
use super::{FailedFile, StoreError};

const FILE: &str = "failures.json";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    files: Vec<FailedFile>,
}

/// Every recorded failure, by folder and path.
pub(super) fn read(dir: &Path) -> Result<Vec<FailedFile>, StoreError> {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let d: OnDisk = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
    if d.version != VERSION {
        return Err(StoreError::Corrupt(format!(
            "{}: version {} (this hort reads {VERSION})",
            path.display(),
            d.version
        )));
    }
    Ok(d.files)
}

/// Replaces the failures of each folder in `roots` (an empty list clears it).
pub(super) fn replace(
    dir: &Path,
    roots: BTreeMap<String, Vec<FailedFile>>,
) -> Result<(), StoreError> {
    let before = read(dir).unwrap_or_default(); // a damaged record is rebuilt from this ingest
    let mut files: Vec<FailedFile> = before
        .iter()
        .filter(|f| !roots.contains_key(&f.root))
        .cloned()
        .collect();
    files.extend(roots.into_values().flatten());
    files.sort_by(|a, b| (&a.root, &a.path).cmp(&(&b.root, &b.path)));
    let same = |a: &[FailedFile], b: &[FailedFile]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (&x.root, &x.path, &x.error) == (&y.root, &y.path, &y.error))
    };
    if same(&files, &before) && (dir.join(FILE).exists() || files.is_empty()) {
        return Ok(()); // nothing new: no write
    }
    let bytes = serde_json::to_vec_pretty(&OnDisk {
        version: VERSION,
        files,
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let path = dir.join(FILE);
    atomic_write(&path, &bytes).map_err(|e| StoreError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(root: &str, path: &str) -> FailedFile {
        FailedFile {
            root: root.into(),
            path: path.into(),
            error: "broken".into(),
            at: 1,
        }
    }

    #[test]
    fn each_folder_is_replaced_alone() {
        let d = tempfile::tempdir().unwrap();
        assert!(read(d.path()).unwrap().is_empty());
        replace(
            d.path(),
            BTreeMap::from([
                ("/a".to_string(), vec![f("/a", "x.pdf"), f("/a", "y.pdf")]),
                ("/b".to_string(), vec![f("/b", "z.pdf")]),
            ]),
        )
        .unwrap();
        assert_eq!(read(d.path()).unwrap().len(), 3);
        // The next ingest of /a fixed y.pdf; /b is untouched.
        replace(
            d.path(),
            BTreeMap::from([("/a".to_string(), vec![f("/a", "x.pdf")])]),
        )
        .unwrap();
        assert_eq!(
            read(d.path()).unwrap(),
            vec![f("/a", "x.pdf"), f("/b", "z.pdf")]
        );
        replace(d.path(), BTreeMap::from([("/b".to_string(), vec![])])).unwrap();
        assert_eq!(read(d.path()).unwrap(), vec![f("/a", "x.pdf")]);
        // A record of another version is refused, not misread.
        std::fs::write(d.path().join(FILE), r#"{"version": 9, "files": []}"#).unwrap();
        assert!(matches!(read(d.path()), Err(StoreError::Corrupt(_))));
    }
}
