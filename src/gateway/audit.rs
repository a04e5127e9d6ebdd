//! The audit log: one JSON line per request, append-only, hash-chained.
//!
//! Each line carries its sequence number and the SHA-256 of the line before
//! it (64 zeros for the first), so editing, removing or reordering any line
//! breaks the chain where it happened. A head file beside the log records the
//! last sequence number and hash, so cutting lines off the end is detected
//! too: the head is written before the first line and after every line, so a
//! log without its head, or one that ends before its head, has been cut.
//!
//! The writer checks the file against the head (and against what this
//! process itself wrote) under the lock before every append. If the log was
//! cut or its end edited, it refuses to chain onto it — continuing would make
//! the cut invisible to `hort audit verify` — and stays refusing (logged,
//! counted, and shown as `hort_audit_chain_broken 1`) until an operator has
//! looked: opening such a log fails with the way out (verify it, move it and
//! its head aside, start a new chain). Lines hold the principal, a hash of
//! the question (its text only if configured, with personal data masked),
//! the chunks and documents returned, the route, tokens, cost, flags and
//! status — never keys or raw personal data.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::FsyncPolicy;
pub use crate::text::sha256_hex;

/// The hash the first record names as its predecessor.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened in one request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    /// When the request finished (RFC 3339, UTC).
    pub time: String,
    /// The request id (also in the access log and the `x-request-id` header).
    pub request_id: String,
    /// Who asked (empty if unauthenticated).
    pub principal: String,
    /// The endpoint or front end (`/v1/query`, `mcp:search`, `cli:query`).
    pub endpoint: String,
    /// The HTTP status (or its equivalent for other front ends).
    pub status: u16,
    /// SHA-256 of the question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_sha256: Option<String>,
    /// The question with personal data masked (only with `log_query_text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Ids of the chunks returned or used.
    #[serde(default)]
    pub chunks: Vec<String>,
    /// Documents the chunks came from.
    #[serde(default)]
    pub docs: Vec<String>,
    /// The provider that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Where that provider runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Prompt tokens of the answer.
    #[serde(default)]
    pub prompt_tokens: u32,
    /// Completion tokens of the answer.
    #[serde(default)]
    pub completion_tokens: u32,
    /// What the answer cost in USD.
    #[serde(default)]
    pub cost_usd: f64,
    /// What the checks found (`injection_suspected`, `output_blocked:…`).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Provider failures in full (addresses, messages): callers only see
    /// their kind, the log keeps them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_errors: Vec<String>,
    /// The error's code and message, if the request failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Time to answer in milliseconds.
    pub latency_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    prev: String,
    #[serde(flatten)]
    record: AuditRecord,
}

/// One record as a line of the chain: its sequence number, the hash of the
/// line before it, and the record (the same text in a file and in a database).
pub fn render_line(seq: u64, prev: String, record: AuditRecord) -> String {
    // Serialising plain data cannot fail.
    serde_json::to_string(&Line { seq, prev, record }).unwrap_or_default()
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
    /// Why the log may not be continued, once found (sticky).
    broken: Option<String>,
}

/// The audit chain in a file (the embedded backend's; PostgreSQL keeps the
/// chain in the database: `gateway::pg`).
pub struct AuditLog {
    path: PathBuf,
    head_path: PathBuf,
    policy: FsyncPolicy,
    state: Mutex<State>,
}

/// Why an audit record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database's chain could not be read or written.
    #[error("shared audit log: {0}")]
    Db(#[source] crate::store::pg::PgError),
    /// The database's chain was cut or edited: nothing is chained onto it.
    #[error(
        "shared audit log: {0}; refusing to continue the chain (check it with `hort audit verify`)"
    )]
    SharedBroken(String),
    /// The log was cut or edited at its end: nothing is chained onto it.
    /// The log was cut or edited.
    #[error(
        "{path}: {reason}; refusing to continue this chain (check it with `hort audit verify`, \
         then move the log and its .head file aside to start a new one)"
    )]
    Broken {
        /// The log.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The log could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// Why.
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

/// The end of the chain in the file: the last record's sequence number, its
/// hash and the hash it names as its predecessor.
struct End {
    seq: u64,
    hash: String,
    prev: String,
}

/// The end of the chain in the file (the genesis for an empty log).
fn chain_end(f: &mut File) -> std::io::Result<End> {
    Ok(match last_line(f)? {
        None => End {
            seq: 0,
            hash: GENESIS.to_string(),
            prev: GENESIS.to_string(),
        },
        Some(l) => {
            let (seq, prev) = serde_json::from_str::<Line>(&l)
                .map(|x| (x.seq, x.prev))
                .unwrap_or((0, String::new()));
            End {
                seq,
                hash: sha256_hex(l.as_bytes()),
                prev,
            }
        }
    })
}

fn read_head(path: &Path) -> std::io::Result<Option<Result<Head, String>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(
            serde_json::from_slice::<Head>(&b).map_err(|e| e.to_string()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the file may be continued: its end must be the head's (or one
/// record past it, chained onto it: a crash between writing a line and its
/// head), and not before what this process wrote itself.
fn check_end(end: &End, head: Option<Result<Head, String>>, known: u64) -> Result<(), String> {
    let by_head = match head {
        None if end.seq == 0 => Ok(()),
        None => {
            Err("its head file is missing, so records cut off the end cannot be ruled out".into())
        }
        Some(Err(e)) => Err(format!("its head file is damaged ({e})")),
        Some(Ok(h)) if h.seq == end.seq && h.hash == end.hash => Ok(()),
        Some(Ok(h)) if end.seq == h.seq + 1 && end.prev == h.hash => Ok(()),
        Some(Ok(h)) if h.seq > end.seq => Err(format!(
            "the log ends at record {} but {} were written: the last {} record(s) were removed",
            end.seq,
            h.seq,
            h.seq - end.seq
        )),
        Some(Ok(h)) => Err(format!(
            "the log ends at record {} and does not match its head (record {}): its end was edited",
            end.seq, h.seq
        )),
    };
    by_head?;
    if end.seq < known {
        // Both the log and its head were rewritten behind this process's back.
        return Err(format!(
            "the log ends at record {} but this process wrote up to {known}: records were cut off the end",
            end.seq
        ));
    }
    Ok(())
}

/// Writes the head atomically (temp file, rename).
fn write_head(path: &Path, seq: u64, hash: &str) -> std::io::Result<()> {
    let head = serde_json::to_vec(&Head {
        seq,
        hash: hash.to_string(),
    })
    .map_err(std::io::Error::other)?;
    let tmp = path.with_extension("head.tmp");
    std::fs::write(&tmp, head)?;
    std::fs::rename(&tmp, path)
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
    /// Opens the log at `path` (created if missing) and checks its end against the head file; a log that was cut or edited is refused.
    pub fn open(path: &Path, policy: FsyncPolicy) -> Result<AuditLog, AuditError> {
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
        let hp = head_path(path);
        let (seq, prev) = {
            let _lock = FileLock::acquire(&file).map_err(io)?;
            let end = chain_end(&mut file).map_err(io)?;
            let head = read_head(&hp).map_err(io)?;
            let headless = head.is_none();
            if let Err(reason) = check_end(&end, head, 0) {
                return Err(AuditError::Broken {
                    path: path.to_path_buf(),
                    reason,
                });
            }
            if headless {
                // A new log: its head comes first, so that from now on a log
                // without one has been tampered with.
                write_head(&hp, 0, GENESIS).map_err(io)?;
            }
            (end.seq, end.hash)
        };
        Ok(AuditLog {
            path: path.to_path_buf(),
            head_path: hp,
            policy,
            state: Mutex::new(State {
                file,
                seq,
                prev,
                last_sync: Instant::now(),
                broken: None,
            }),
        })
    }

    /// Why appends are refused, if they are (the log was cut or edited).
    pub fn broken(&self) -> Option<String> {
        crate::sync::lock(&self.state).broken.clone()
    }

    /// Appends one record (and updates the head).
    pub fn append(&self, record: AuditRecord) -> Result<(), AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let mut st = crate::sync::lock(&self.state);
        let st = &mut *st;
        if let Some(reason) = &st.broken {
            return Err(AuditError::Broken {
                path: self.path.clone(),
                reason: reason.clone(),
            });
        }
        let _lock = FileLock::acquire(&st.file).map_err(io)?;
        // Another process may have appended since: continue from the real
        // end, but only if it is the end the head (and this process) knows.
        let end = chain_end(&mut st.file).map_err(io)?;
        let head = read_head(&self.head_path).map_err(io)?;
        if let Err(reason) = check_end(&end, head, st.seq) {
            tracing::error!(path = %self.path.display(), %reason, "audit log: refusing to continue the chain");
            st.broken = Some(reason.clone());
            return Err(AuditError::Broken {
                path: self.path.clone(),
                reason,
            });
        }
        if end.seq == 0 {
            // The head comes first: from now on a log without one was cut.
            write_head(&self.head_path, 0, GENESIS).map_err(io)?;
        }
        st.seq = end.seq;
        st.prev = end.hash;
        let text = render_line(st.seq + 1, st.prev.clone(), record);
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
        write_head(&self.head_path, st.seq, &st.prev).map_err(io)?;
        Ok(())
    }

    /// Writes buffered records to disk now.
    pub fn flush(&self) {
        if let Ok(st) = self.state.lock() {
            let _ = st.file.sync_data();
        }
    }
}

/// What `hort audit verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// Records checked.
    pub records: u64,
    /// What is wrong, one line each (empty: intact).
    pub problems: Vec<String>,
}

/// What walking a chain found.
pub struct Chain {
    /// Records read.
    pub records: u64,
    /// The sequence number the next record would have.
    pub expect_seq: u64,
    /// The hash of the last line.
    pub prev_hash: String,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

/// Walks a chain of lines: sequence numbers and each line's hash of the one
/// before.
pub fn check_chain(lines: impl Iterator<Item = Result<String, String>>) -> Chain {
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

/// The record of one line of the chain (`None`: not a record).
pub fn parse_record(line: &str) -> Option<AuditRecord> {
    serde_json::from_str::<Line>(line).ok().map(|l| l.record)
}

/// The newest `limit` records of the log at `path`, newest first, only
/// `principal`'s when given. Reads the file backwards in blocks and stops
/// after `limit` matches or 16 MiB, so a long log costs no more than its end.
pub fn recent(
    path: &Path,
    principal: Option<&str>,
    limit: usize,
) -> Result<Vec<AuditRecord>, AuditError> {
    const BLOCK: u64 = 64 * 1024;
    const MAX_SCAN: u64 = 16 * 1024 * 1024;
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let len = f.metadata().map_err(io)?.len();
    let mut out = Vec::new();
    let mut pos = len;
    // Bytes after `pos` that did not yet end at a line start.
    let mut rest: Vec<u8> = Vec::new();
    while pos > 0 && out.len() < limit && len - pos < MAX_SCAN {
        let n = BLOCK.min(pos);
        pos -= n;
        let mut buf = vec![0u8; n as usize];
        f.seek(SeekFrom::Start(pos)).map_err(io)?;
        std::io::Read::read_exact(&mut f, &mut buf).map_err(io)?;
        buf.extend_from_slice(&rest);
        // Every piece after the first newline is a whole line; the first
        // piece may continue in the block before (unless this is the start).
        let mut pieces: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
        let head = if pos > 0 {
            pieces.remove(0).to_vec()
        } else {
            Vec::new()
        };
        for line in pieces.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let Some(r) = std::str::from_utf8(line).ok().and_then(parse_record) else {
                continue;
            };
            if principal.is_none_or(|p| r.principal == p) {
                out.push(r);
            }
        }
        rest = head;
    }
    Ok(out)
}

/// Checks the chain of `path` and its head file. Without the head, cut-off
/// records cannot be detected: that is a problem unless `require_head` is
/// false (`hort audit verify --no-head`).
pub fn verify(path: &Path, require_head: bool) -> Result<Verification, AuditError> {
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
    let hp = head_path(path);
    match read_head(&hp).map_err(|source| AuditError::Io {
        path: hp.clone(),
        source,
    })? {
        Some(Ok(h)) if h.seq == expect_seq - 1 && h.hash == prev_hash => {}
        Some(Ok(h)) if h.seq > expect_seq - 1 => problems.push(format!(
            "the log ends at record {} but {} were written: the last {} record(s) were removed",
            expect_seq - 1,
            h.seq,
            h.seq - (expect_seq - 1)
        )),
        Some(Ok(_)) => problems.push(format!(
            "line {n}: the last record was edited (it does not match the head)"
        )),
        Some(Err(_)) => problems.push("the head file is damaged".into()),
        None if require_head && n > 0 => problems.push(format!(
            "no head file ({}): records cut off the end cannot be detected \
             (--no-head checks the chain alone)",
            hp.display()
        )),
        None => {}
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
        let log = AuditLog::open(&p, FsyncPolicy::Never).unwrap();
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
            let log = AuditLog::open(&p, FsyncPolicy::Always).unwrap();
            log.append(rec(9)).unwrap();
        }
        let v = verify(&p, true).unwrap();
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
        let v = verify(&p, true).unwrap();
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
        let v = verify(&p, true).unwrap();
        assert!(v.problems.iter().any(|x| x.contains("removed")), "{v:?}");
        // Swap lines 4 and 5.
        let mut l = orig.clone();
        l.swap(3, 4);
        put(&p, &l);
        let v = verify(&p, true).unwrap();
        assert!(
            v.problems.iter().any(|x| x.contains("out of order")),
            "{v:?}"
        );
        // Cut the last line.
        let mut l = orig.clone();
        l.pop();
        put(&p, &l);
        let v = verify(&p, true).unwrap();
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
        let v = verify(&p, true).unwrap();
        assert!(
            v.problems
                .iter()
                .any(|x| x.contains("last record was edited")),
            "{v:?}"
        );
        // Untouched: clean.
        put(&p, &orig);
        assert!(verify(&p, true).unwrap().problems.is_empty());
    }

    #[test]
    fn a_writer_refuses_to_chain_onto_a_cut_or_headless_log() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.jsonl");
        let log = AuditLog::open(&p, FsyncPolicy::Never).unwrap();
        // The head exists before the first line.
        assert!(head_path(&p).exists());
        for i in 0..4 {
            log.append(rec(i)).unwrap();
        }
        let mut l = lines(&p);
        l.truncate(2);
        put(&p, &l);
        let e = log.append(rec(9)).unwrap_err().to_string();
        assert!(e.contains("2 record(s) were removed"), "{e}");
        assert!(log.broken().is_some());
        assert_eq!(lines(&p).len(), 2, "nothing chained onto the cut log");
        // It stays refused, and a new writer does not open it.
        assert!(log.append(rec(10)).is_err());
        assert!(matches!(
            AuditLog::open(&p, FsyncPolicy::Never),
            Err(AuditError::Broken { .. })
        ));
        // Without a head: refused as well.
        std::fs::remove_file(head_path(&p)).unwrap();
        let e = AuditLog::open(&p, FsyncPolicy::Never)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("head file is missing"), "{e}");
        let v = verify(&p, true).unwrap();
        assert!(
            v.problems.iter().any(|x| x.contains("no head file")),
            "{v:?}"
        );
        assert!(verify(&p, false).unwrap().problems.is_empty());
    }

    #[test]
    fn a_crash_between_a_line_and_its_head_is_recovered() {
        let d = tempfile::tempdir().unwrap();
        let p = write_log(d.path(), 3);
        let head = std::fs::read(head_path(&p)).unwrap();
        {
            let log = AuditLog::open(&p, FsyncPolicy::Never).unwrap();
            log.append(rec(3)).unwrap();
        }
        // As if the process died after the line and before the head.
        std::fs::write(head_path(&p), head).unwrap();
        let log = AuditLog::open(&p, FsyncPolicy::Never).unwrap();
        log.append(rec(4)).unwrap();
        let v = verify(&p, true).unwrap();
        assert_eq!(v.records, 5);
        assert!(v.problems.is_empty(), "{v:?}");
    }

    #[test]
    fn recent_reads_the_newest_records_backwards_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        assert!(recent(&p, None, 5).unwrap().is_empty(), "no log: nothing");
        let log = AuditLog::open(&p, FsyncPolicy::Never).unwrap();
        // ~300 bytes a line: 1,000 lines span several 64 KiB blocks.
        for i in 0..1000u32 {
            let mut r = rec(i);
            r.principal = if i % 3 == 0 { "bob" } else { "alice" }.into();
            r.query = Some("x".repeat(200));
            log.append(r).unwrap();
        }
        log.flush();
        let all = recent(&p, None, 4).unwrap();
        let ids: Vec<&str> = all.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["r999", "r998", "r997", "r996"]);
        let bobs = recent(&p, Some("bob"), 400).unwrap();
        assert_eq!(bobs.len(), 334, "every one of bob's records, across blocks");
        assert_eq!(bobs[0].request_id, "r999");
        assert_eq!(bobs[333].request_id, "r0");
        assert!(bobs.iter().all(|r| r.principal == "bob"));
        assert!(recent(&p, Some("carol"), 5).unwrap().is_empty());
    }
}
