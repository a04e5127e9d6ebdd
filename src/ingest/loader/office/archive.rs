//! The zip container of OOXML and OpenDocument files, read with limits.
//!
//! A zip bomb is a small file whose parts inflate to gigabytes; a
//! non-recursive bomb points many entries at the same compressed bytes.
//! Each part is read through a cap and all parts of one file share a
//! budget, so either kind fails the file with a reason instead of taking the
//! ingest's memory.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use zip::result::ZipError;
use zip::ZipArchive;

use super::super::LoadError;

/// The most one XML part may inflate to (a 500-page report's
/// `document.xml` is around 10 MiB).
const PART_LIMIT: u64 = 64 << 20;
/// The most all parts of one file may inflate to together.
const FILE_LIMIT: u64 = 256 << 20;

/// An opened Office container.
pub struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    kind: &'static str,
    /// Bytes still allowed to inflate.
    budget: u64,
}

impl<'a> Archive<'a> {
    /// Opens `bytes` as the zip container of a `kind` file.
    pub fn open(bytes: &'a [u8], kind: &'static str) -> Result<Archive<'a>, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Empty);
        }
        // Password-protected OOXML files and the old binary formats are OLE
        // compound files, not zips.
        if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
            return Err(LoadError::Corrupt {
                kind,
                message: "an OLE compound file, not a zip: the document is password-protected \
                          or in the old binary format (.doc/.xls/.ppt); save it again as "
                    .to_string()
                    + kind
                    + " without a password",
            });
        }
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt(kind, e))?;
        Ok(Archive {
            zip,
            kind,
            budget: FILE_LIMIT,
        })
    }

    /// Whether the archive has a part of this name.
    pub fn has(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some()
    }

    /// The names of all parts.
    pub fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .filter_map(|n| n.ok().map(Cow::into_owned))
            .collect()
    }

    /// A part's text (`None` if the part does not exist); XML parts are
    /// UTF-8 or carry a BOM.
    pub fn text(&mut self, name: &str) -> Result<Option<String>, LoadError> {
        let Some(bytes) = self.bytes(name)? else {
            return Ok(None);
        };
        Ok(Some(match encoding_rs::Encoding::for_bom(&bytes) {
            Some((enc, bom)) => enc.decode(&bytes[bom..]).0.into_owned(),
            None => match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            },
        }))
    }

    /// A part's bytes (`None` if the part does not exist), within the caps.
    pub fn bytes(&mut self, name: &str) -> Result<Option<Vec<u8>>, LoadError> {
        let kind = self.kind;
        let mut f = match self.zip.by_name(name) {
            Ok(f) => f,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(corrupt(kind, e)),
        };
        if f.encrypted() {
            return Err(LoadError::Corrupt {
                kind,
                message: format!("part {name} is encrypted"),
            });
        }
        let cap = PART_LIMIT.min(self.budget);
        let mut out = Vec::with_capacity(f.size().min(cap) as usize);
        (&mut f)
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| LoadError::Corrupt {
                kind,
                message: format!("part {name}: {e}"),
            })?;
        if out.len() as u64 > cap {
            return Err(LoadError::Corrupt {
                kind,
                message: if cap < PART_LIMIT {
                    format!(
                        "its parts inflate to more than {} MiB together (a zip bomb?)",
                        FILE_LIMIT >> 20
                    )
                } else {
                    format!(
                        "part {name} inflates to more than {} MiB (a zip bomb?)",
                        PART_LIMIT >> 20
                    )
                },
            });
        }
        self.budget -= out.len() as u64;
        Ok(Some(out))
    }
}

fn corrupt(kind: &'static str, e: ZipError) -> LoadError {
    LoadError::Corrupt {
        kind,
        message: match e {
            ZipError::InvalidArchive(_) => format!("not a readable zip container ({e})"),
            other => other.to_string(),
        },
    }
}
