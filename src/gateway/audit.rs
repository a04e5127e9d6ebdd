//! The audit log: one JSON line per request, append-only, hash-chained.
//!
//! Each line carries its sequence number and the SHA-256 of the line before
//! it (64 zeros for the first), so editing, removing or reordering any line
//! breaks the chain where it happened. A head file beside the log records the
//! last sequence number and hash, so cutting lines off the end is detected
//! too. Lines hold the principal, a hash of the question (its text only if
//! configured, with personal data masked), the chunks and documents returned,
//! the route, tokens, cost, flags and status — never keys or raw personal data.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::FsyncPolicy;
use crate::sanitize::pii::{Masker, PiiKind};
use crate::store::pg::{PgError, PgStore};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What happened in one request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub time: String,
    pub request_id: String,
    pub principal: String,
    pub endpoint: String,
    pub status: u16,
    /// SHA-256 of the question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_sha256: Option<String>,
    /// The question with personal data masked (only with `log_query_text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default)]
    pub chunks: Vec<String>,
    #[serde(default)]
    pub docs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    prev: String,
    #[serde(flatten)]
    record: AuditRecord,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Head {
    seq: u64,
    hash: String,
}

struct State {
    file: File,
    seq: u64,
    prev: String,
    last_sync: Instant,
}

pub struct AuditLog {
    path: PathBuf,
    head_path: PathBuf,
    policy: FsyncPolicy,
    log_query_text: bool,
    state: Mutex<State>,
    /// On the PostgreSQL backend the chain lives in the database, one chain
    /// for every node; the file is then not written.
    shared: Option<Arc<PgStore>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("shared audit log: {0}")]
    Shared(PgError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn head_path(path: &Path) -> PathBuf {
    let mut n = path.file_name().unwrap_or_default().to_os_string();
    n.push(".head");
    path.with_file_name(n)
}

/// The last line of a file (reading backwards, so large logs open fast).
fn last_line(f: &mut File) -> std::io::Result<Option<String>> {
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let step = pos.min(chunk.len() as u64);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        std::io::Read::read_exact(f, &mut chunk[..step as usize])?;
        let mut new = chunk[..step as usize].to_vec();
        new.extend_from_slice(&buf);
        buf = new;
        let trimmed = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if let Some(i) = trimmed.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(
                String::from_utf8_lossy(&trimmed[i + 1..]).into_owned(),
            ));
        }
        if pos == 0 {
            return Ok(Some(String::from_utf8_lossy(trimmed).into_owned()));
        }
    }
}

/// Sequence number and hash of the last line (the genesis for an empty log).
fn chain_end(f: &mut File) -> std::io::Result<(u64, String)> {
    Ok(match last_line(f)? {
        None => (0, GENESIS.to_string()),
        Some(l) => {
            let seq = serde_json::from_str::<Line>(&l).map(|x| x.seq).unwrap_or(0);
            (seq, sha256_hex(l.as_bytes()))
        }
    })
}

/// An exclusive advisory lock on the log file for one append, so that
/// several processes (`hort serve`, `hort mcp`, `hort approvals`) can share
/// one chain: each re-reads the end of the chain under the lock.
struct FileLock(std::os::fd::RawFd);

impl FileLock {
    fn acquire(f: &File) -> std::io::Result<FileLock> {
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd();
        // SAFETY: flock on a file descriptor this process owns and keeps open.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(FileLock(fd))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: the descriptor is still open (the lock lives shorter than the file).
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

impl AuditLog {
    pub fn open(
        path: &Path,
        policy: FsyncPolicy,
        log_query_text: bool,
    ) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let (seq, prev) = chain_end(&mut file).map_err(io)?;
        let hp = head_path(path);
        if let Ok(h) = std::fs::read(&hp).map(|b| serde_json::from_slice::<Head>(&b)) {
            match h {
                Ok(h) if h.seq == seq && h.hash == prev => {}
                _ => {
                    tracing::warn!(path = %path.display(), "audit log and its head differ; run `hort audit verify`")
                }
            }
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            head_path: hp,
            policy,
            log_query_text,
            state: Mutex::new(State {
                file,
                seq,
                prev,
                last_sync: Instant::now(),
            }),
            shared: None,
        })
    }

    /// Appends to the database's chain instead of the file.
    pub fn shared(mut self, pg: Arc<PgStore>) -> AuditLog {
        self.shared = Some(pg);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The question as the log keeps it: always its hash, its text only if
    /// configured, and then with personal data masked.
    pub fn question(&self, q: &str, record: &mut AuditRecord) {
        record.query_sha256 = Some(sha256_hex(q.as_bytes()));
        if self.log_query_text {
            record.query = Some(Masker::new().mask(q, &PiiKind::ALL).0);
        }
    }

    /// Appends one record (and updates the head).
    pub fn append(&self, record: AuditRecord) -> Result<(), AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(pg) = &self.shared {
            return pg
                .audit_append(move |seq, prev| {
                    serde_json::to_string(&Line { seq, prev, record })
                        .map_err(|e| PgError::Mismatch(e.to_string()))
                })
                .map(|_| ())
                .map_err(AuditError::Shared);
        }
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let st = &mut *st;
        let _lock = FileLock::acquire(&st.file).map_err(io)?;
        // Another process may have appended since: continue from the real end.
        let (seq, prev) = chain_end(&mut st.file).map_err(io)?;
        st.seq = seq;
        st.prev = prev;
        let line = Line {
            seq: st.seq + 1,
            prev: st.prev.clone(),
            record,
        };
        let text = serde_json::to_string(&line).map_err(|e| io(std::io::Error::other(e)))?;
        st.file
            .write_all(format!("{text}\n").as_bytes())
            .map_err(io)?;
        st.seq += 1;
        st.prev = sha256_hex(text.as_bytes());
        let sync = match self.policy {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval => st.last_sync.elapsed() >= Duration::from_secs(1),
            FsyncPolicy::Never => false,
        };
        if sync {
            st.file.sync_data().map_err(io)?;
            st.last_sync = Instant::now();
        }
        let head = serde_json::to_vec(&Head {
            seq: st.seq,
            hash: st.prev.clone(),
        })
        .unwrap_or_default();
        let tmp = self.head_path.with_extension("head.tmp");
        std::fs::write(&tmp, head).map_err(io)?;
        std::fs::rename(&tmp, &self.head_path).map_err(io)?;
        Ok(())
    }

    pub fn flush(&self) {
        if let Ok(st) = self.state.lock() {
            let _ = st.file.sync_data();
        }
    }
}

/// What `hort audit verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub records: u64,
    pub problems: Vec<String>,
}

struct Chain {
    records: u64,
    expect_seq: u64,
    prev_hash: String,
    problems: Vec<String>,
}

/// Walks a chain of lines: sequence numbers and each line's hash of the one
/// before.
fn check_chain(lines: impl Iterator<Item = Result<String, String>>) -> Chain {
    let mut problems = Vec::new();
    let mut prev_hash = GENESIS.to_string();
    let mut expect_seq = 1u64;
    let mut n = 0u64;
    for (i, line) in lines.enumerate() {
        let lineno = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("line {lineno}: unreadable ({e})"));
                continue;
            }
        };
        n += 1;
        match serde_json::from_str::<Line>(&line) {
            Err(e) => problems.push(format!("line {lineno}: not a valid record ({e})")),
            Ok(l) => {
                if l.seq != expect_seq {
                    if l.seq > expect_seq {
                        problems.push(format!(
                            "line {lineno}: record {} follows record {}: {} record(s) removed before it",
                            l.seq,
                            expect_seq - 1,
                            l.seq - expect_seq
                        ));
                    } else {
                        problems.push(format!(
                            "line {lineno}: record {} is out of order (expected {expect_seq})",
                            l.seq
                        ));
                    }
                } else if l.prev != prev_hash {
                    problems.push(format!(
                        "line {lineno}: the line before it (record {}) was edited or replaced",
                        l.seq.saturating_sub(1)
                    ));
                }
                expect_seq = l.seq + 1;
            }
        }
        prev_hash = sha256_hex(line.as_bytes());
    }
    Chain {
        records: n,
        expect_seq,
        prev_hash,
        problems,
    }
}

/// Checks the chain kept in PostgreSQL (`line` numbers are sequence order).
pub fn verify_shared(pg: &PgStore) -> Result<Verification, AuditError> {
    let lines = pg.audit_lines().map_err(AuditError::Shared)?;
    let c = check_chain(lines.into_iter().map(Ok));
    Ok(Verification {
        records: c.records,
        problems: c.problems,
    })
}

/// Checks the chain of `path` (and its head file, if present).
pub fn verify(path: &Path) -> Result<Verification, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(io)?;
    let lines = BufReader::new(f)
        .lines()
        .map(|l| l.map_err(|e| e.to_string()));
    let Chain {
        records: n,
        expect_seq,
        prev_hash,
        mut problems,
    } = check_chain(lines);
    if let Ok(b) = std::fs::read(head_path(path)) {
        match serde_json::from_slice::<Head>(&b) {
            Ok(h) if h.seq == expect_seq - 1 && h.hash == prev_hash => {}
            Ok(h) if h.seq > expect_seq - 1 => problems.push(format!(
                "the log ends at record {} but {} were written: the last {} record(s) were removed",
                expect_seq - 1,
                h.seq,
                h.seq - (expect_seq - 1)
            )),
            Ok(_) => problems.push(format!(
                "line {n}: the last record was edited (it does not match the head)"
            )),
            Err(_) => problems.push("the head file is damaged".into()),
        }
    }
    Ok(Verification {
        records: n,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u32) -> AuditRecord {
        AuditRecord {
            time: "2026-11-25T00:00:00.000Z".into(),
            request_id: format!("r{i}"),
            principal: "alice".into(),
            endpoint: "/v1/query".into(),
            status: 200,
            prompt_tokens: i,
            ..AuditRecord::default()
        }
    }

    fn write_log(dir: &Path, n: u32) -> PathBuf {
        let p = dir.join("audit.jsonl");
        let log = AuditLog::open(&p, FsyncPolicy::Never, false).unwrap();
        for i in 0..n {
            log.append(rec(i)).unwrap();
        }
        p
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn put(p: &Path, l: &[String]) {
        std::fs::write(p, l.iter().map(|x| format!("{x}\n")).collect::<String>()).unwrap();
    }

    #[test]
    fn intact_log_verifies_and_reopening_continues_the_chain() {
        let d = tempfile::tempdir().unwrap();
        let p = write_log(d.path(), 5);
        {
            let log = AuditLog::open(&p, FsyncPolicy::Always, false).unwrap();
            log.append(rec(9)).unwrap();
        }
        let v = verify(&p).unwrap();
        assert_eq!(v.records, 6);
        assert!(v.problems.is_empty(), "{v:?}");
    }

    #[test]
    fn edits_removals_swaps_and_truncation_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = write_log(d.path(), 6);
        let orig = lines(&p);
        // Edit record 3 (line 3).
        let mut l = orig.clone();
        l[2] = l[2].replace("\"prompt_tokens\":2", "\"prompt_tokens\":999");
        put(&p, &l);
        let v = verify(&p).unwrap();
        assert!(
            v.problems.iter().any(|x| x.starts_with("line 4:")
                && x.contains("record 3")
                && x.contains("edited")),
            "{v:?}"
        );
        // Remove line 2.
        let mut l = orig.clone();
        l.remove(1);
        put(&p, &l);
        let v = verify(&p).unwrap();
        assert!(v.problems.iter().any(|x| x.contains("removed")), "{v:?}");
        // Swap lines 4 and 5.
        let mut l = orig.clone();
        l.swap(3, 4);
        put(&p, &l);
        let v = verify(&p).unwrap();
        assert!(
            v.problems.iter().any(|x| x.contains("out of order")),
            "{v:?}"
        );
        // Cut the last line.
        let mut l = orig.clone();
        l.pop();
        put(&p, &l);
        let v = verify(&p).unwrap();
        assert!(
            v.problems
                .iter()
                .any(|x| x.contains("last 1 record(s) were removed")),
            "{v:?}"
        );
        // Edit the last line.
        let mut l = orig.clone();
        let last = l.len() - 1;
        l[last] = l[last].replace("alice", "mallory");
        put(&p, &l);
        let v = verify(&p).unwrap();
        assert!(
            v.problems
                .iter()
                .any(|x| x.contains("last record was edited")),
            "{v:?}"
        );
        // Untouched: clean.
        put(&p, &orig);
        assert!(verify(&p).unwrap().problems.is_empty());
    }

    #[test]
    fn question_text_is_hashed_and_masked() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&d.path().join("a.jsonl"), FsyncPolicy::Never, true).unwrap();
        let mut r = AuditRecord::default();
        log.question("Refund to DE89 3704 0044 0532 0130 00 please", &mut r);
        assert_eq!(r.query.as_deref(), Some("Refund to [IBAN_1] please"));
        assert_eq!(r.query_sha256.unwrap().len(), 64);
    }
}
