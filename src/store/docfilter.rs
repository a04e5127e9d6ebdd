//! Metadata filters on documents (path prefix, file type, modification
//! time), applied like the access filter: inside both searches, as a
//! per-chunk mask on the vector side and as query clauses on the keyword side.

use serde::{Deserialize, Serialize};

use super::docs::DocRecord;

/// A predicate on documents; an empty filter matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocFilter {
    /// A folder or file path relative to the ingested folder: `finance`
    /// matches `finance/…` and `finance` itself, never `finance-old/…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// File types (`txt`, `md`, `html`, `pdf`); any of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_types: Option<Vec<String>>,
    /// Modified at or after this time (RFC 3339 date or date-time, UTC if no offset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_after: Option<String>,
    /// Modified before this time (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_before: Option<String>,
}

/// A [`DocFilter`] checked and converted for evaluation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompiledDocFilter {
    /// Normalised: no leading or trailing `/`.
    pub path_prefix: Option<String>,
    /// File types admitted.
    pub kinds: Option<Vec<String>>,
    /// Nanoseconds since the epoch, inclusive lower and exclusive upper bound.
    pub after_ns: Option<i64>,
    /// Modified before (exclusive).
    pub before_ns: Option<i64>,
}

/// A metadata filter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter.{field}: {message}")]
pub struct DocFilterError {
    /// The filter's field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// The type names documents carry (`FileKind::as_str` in the ingest).
pub const KINDS: [&str; 13] = [
    "txt", "md", "html", "pdf", "docx", "pptx", "xlsx", "odt", "odp", "ods", "eml", "msg", "image",
];

impl DocFilter {
    /// Whether the filter admits everything.
    pub fn is_empty(&self) -> bool {
        self.path_prefix
            .as_deref()
            .is_none_or(|p| p.trim_matches('/').is_empty())
            && self.file_types.is_none()
            && self.modified_after.is_none()
            && self.modified_before.is_none()
    }

    /// Checks the filter and converts it for evaluation.
    pub fn compile(&self) -> Result<CompiledDocFilter, DocFilterError> {
        let path_prefix = self
            .path_prefix
            .as_deref()
            .map(|p| p.trim().trim_matches('/').to_string())
            .filter(|p| !p.is_empty());
        let kinds = match &self.file_types {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for t in list {
                    let t = t.trim().trim_start_matches('.').to_ascii_lowercase();
                    let t = match t.as_str() {
                        "htm" => "html".to_string(),
                        "markdown" => "md".to_string(),
                        "text" => "txt".to_string(),
                        "png" | "jpg" | "jpeg" | "tif" | "tiff" => "image".to_string(),
                        _ => t,
                    };
                    if !KINDS.contains(&t.as_str()) {
                        return Err(DocFilterError {
                            field: "file_types",
                            message: format!(
                                "unknown type {t:?} (expected one of {})",
                                KINDS.join(", ")
                            ),
                        });
                    }
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
                if out.is_empty() {
                    return Err(DocFilterError {
                        field: "file_types",
                        message: "an empty list matches nothing; leave it out instead".into(),
                    });
                }
                Some(out)
            }
        };
        let after_ns = self
            .modified_after
            .as_deref()
            .map(|s| {
                parse_time(s).map_err(|m| DocFilterError {
                    field: "modified_after",
                    message: m,
                })
            })
            .transpose()?;
        let before_ns = self
            .modified_before
            .as_deref()
            .map(|s| {
                parse_time(s).map_err(|m| DocFilterError {
                    field: "modified_before",
                    message: m,
                })
            })
            .transpose()?;
        if let (Some(a), Some(b)) = (after_ns, before_ns) {
            if a >= b {
                return Err(DocFilterError {
                    field: "modified_before",
                    message: "must be later than modified_after".into(),
                });
            }
        }
        Ok(CompiledDocFilter {
            path_prefix,
            kinds,
            after_ns,
            before_ns,
        })
    }
}

impl CompiledDocFilter {
    /// Whether the filter admits everything.
    pub fn is_empty(&self) -> bool {
        self == &CompiledDocFilter::default()
    }

    /// Whether the filter admits the document.
    pub fn matches(&self, d: &DocRecord) -> bool {
        if let Some(p) = &self.path_prefix {
            let ok = d.path == *p
                || (d.path.len() > p.len()
                    && d.path.starts_with(p.as_str())
                    && d.path.as_bytes()[p.len()] == b'/');
            if !ok {
                return false;
            }
        }
        if let Some(k) = &self.kinds {
            if !k.contains(&d.kind) {
                return false;
            }
        }
        if self.after_ns.is_some_and(|a| d.mtime_ns < a) {
            return false;
        }
        if self.before_ns.is_some_and(|b| d.mtime_ns >= b) {
            return false;
        }
        true
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS][.frac][Z|±HH:MM]` to ns since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a date (YYYY-MM-DD) or RFC 3339 date-time");
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let mdays = [
        31,
        if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
            29
        } else {
            28
        },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut nanos = 0i64;
    if b.len() > 10 {
        if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') || b.len() < 16 || b[13] != b':' {
            return Err(bad());
        }
        let (h, mi) = (num(11..13)?, num(14..16)?);
        let mut i = 16;
        let mut sec = 0;
        if b.len() > i && b[i] == b':' {
            sec = num(i + 1..i + 3)?;
            i += 3;
            if b.len() > i && b[i] == b'.' {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                let frac = &s[start..end];
                if frac.is_empty() {
                    return Err(bad());
                }
                let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
                nanos = digits.parse().map_err(|_| bad())?;
                i = end;
            }
        }
        if h > 23 || mi > 59 || sec > 60 {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + sec;
        match &s[i..] {
            "" | "Z" | "z" => {}
            off if off.len() == 6
                && (off.starts_with('+') || off.starts_with('-'))
                && off.as_bytes()[3] == b':' =>
            {
                let oh = num(i + 1..i + 3)?;
                let om = num(i + 4..i + 6)?;
                let o = oh * 3600 + om * 60;
                secs -= if off.starts_with('+') { o } else { -o };
            }
            _ => return Err(bad()),
        }
    }
    secs.checked_mul(1_000_000_000)
        .and_then(|x| x.checked_add(nanos))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01").unwrap(), 0);
        assert_eq!(
            parse_time("2026-11-25").unwrap(),
            1_795_564_800 * 1_000_000_000
        );
        assert_eq!(
            parse_time("2026-11-25T01:00:00+01:00").unwrap(),
            1_795_564_800 * 1_000_000_000
        );
        assert_eq!(
            parse_time("2026-11-25T00:00:00.5Z").unwrap(),
            1_795_564_800 * 1_000_000_000 + 500_000_000
        );
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "yesterday",
            "2026-11-25T25:00",
            "2026-11-25T10:00+1",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefix_is_by_path_component() {
        let f = DocFilter {
            path_prefix: Some("finance/".into()),
            ..Default::default()
        }
        .compile()
        .unwrap();
        let doc = |p: &str| DocRecord {
            path: p.into(),
            kind: "txt".into(),
            n_chunks: 1,
            n_pages: 1,
            ..Default::default()
        };
        assert!(f.matches(&doc("finance/a.txt")));
        assert!(f.matches(&doc("finance")));
        assert!(!f.matches(&doc("finance-old/a.txt")));
        assert!(!f.matches(&doc("x/finance/a.txt")));
    }

    #[test]
    fn bad_filters_name_the_field() {
        let e = DocFilter {
            file_types: Some(vec!["xls".into()]),
            ..Default::default()
        }
        .compile()
        .unwrap_err();
        assert_eq!(e.field, "file_types");
        let e = DocFilter {
            modified_after: Some("2026-02-01".into()),
            modified_before: Some("2026-01-01".into()),
            ..Default::default()
        }
        .compile()
        .unwrap_err();
        assert_eq!(e.field, "modified_before");
    }
}
