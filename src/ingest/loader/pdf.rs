//! PDF text, page by page, via `pdf-extract`, isolated.
//!
//! PDF parsers panic, recurse without bound, or loop forever on some files.
//! By default each PDF is parsed in a worker process (`hort __pdf-worker`)
//! with a wall-clock limit, an address-space limit and no core dumps, so a
//! bad file becomes one entry in `failed` and never takes the ingest down.
//! Inside the worker, each page is parsed under `catch_unwind`, so one bad
//! page costs that page, not the document.

use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{LoadError, LoadedDoc, Loader, Page};

/// How PDF parsing is kept away from the ingest process.
#[derive(Clone, Debug)]
pub enum PdfIsolation {
    /// Parse in a child process running `exe __pdf-worker` (the hort binary).
    Subprocess {
        /// The hort binary.
        exe: PathBuf,
        /// Time allowed per file.
        timeout: Duration,
        /// Address-space limit of the child in MiB.
        memory_mb: u64,
    },
    /// Parse on a helper thread under `catch_unwind` with a time limit (a
    /// thread that hangs is abandoned). For library use without the binary;
    /// it cannot survive a stack overflow or abort.
    InProcess {
        /// Time allowed per file.
        timeout: Duration,
    },
}

/// Text of PDFs, page by page, parsed away from the ingest process.
pub struct PdfLoader {
    /// How the parser is isolated.
    pub isolation: PdfIsolation,
}

/// What a worker sends back.
#[derive(Serialize, Deserialize)]
enum WorkerReply {
    Ok {
        pages: Vec<String>,
        page_errors: Vec<(u32, String)>,
    },
    Encrypted,
    Corrupt(String),
    Empty,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Parses a PDF in this process. Only call from an isolated context.
fn parse(bytes: &[u8]) -> WorkerReply {
    if bytes.is_empty() {
        return WorkerReply::Empty;
    }
    let mut doc = match catch_unwind(|| pdf_extract::Document::load_mem(bytes)) {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return WorkerReply::Corrupt(e.to_string()),
        Err(p) => return WorkerReply::Corrupt(format!("parser panicked: {}", panic_message(&*p))),
    };
    if doc.is_encrypted() {
        // Many PDFs are "encrypted" with an empty user password (print/copy
        // restrictions only); those can be read.
        if doc.decrypt("").is_err() {
            return WorkerReply::Encrypted;
        }
    }
    let numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    if numbers.is_empty() {
        return WorkerReply::Empty;
    }
    let mut pages = Vec::with_capacity(numbers.len());
    let mut page_errors = Vec::new();
    for n in numbers {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut s = String::new();
            {
                let mut out = pdf_extract::PlainTextOutput::new(&mut s);
                pdf_extract::output_doc_page(&doc, &mut out, n).map(|_| ())?;
            }
            Ok::<String, pdf_extract::OutputError>(s)
        }));
        match r {
            Ok(Ok(s)) => pages.push(s),
            Ok(Err(e)) => {
                pages.push(String::new());
                page_errors.push((n, e.to_string()));
            }
            Err(p) => {
                pages.push(String::new());
                page_errors.push((n, format!("parser panicked: {}", panic_message(&*p))));
            }
        }
    }
    WorkerReply::Ok { pages, page_errors }
}

fn into_doc(reply: WorkerReply) -> Result<LoadedDoc, LoadError> {
    match reply {
        WorkerReply::Empty => Err(LoadError::Empty),
        WorkerReply::Encrypted => Err(LoadError::Encrypted),
        WorkerReply::Corrupt(m) => Err(LoadError::Corrupt {
            kind: "PDF",
            message: m,
        }),
        WorkerReply::Ok { pages, page_errors } => {
            let failed_all = !page_errors.is_empty() && page_errors.len() == pages.len();
            if pages.iter().all(|p| p.trim().is_empty()) {
                return Err(if failed_all {
                    LoadError::Corrupt {
                        kind: "PDF",
                        message: format!("no page could be read (page 1: {})", page_errors[0].1),
                    }
                } else {
                    LoadError::NoText(" (only images or drawings? hort does no OCR)")
                });
            }
            let warnings = page_errors
                .iter()
                .map(|(n, e)| format!("page {n} unreadable: {e}"))
                .collect();
            Ok(LoadedDoc {
                pages: pages
                    .into_iter()
                    .enumerate()
                    .map(|(i, text)| Page {
                        number: Some(i as u32 + 1),
                        text,
                    })
                    .collect(),
                warnings,
            })
        }
    }
}

/// Entry point of `hort __pdf-worker`: PDF bytes on stdin, a JSON reply on stdout.
pub fn worker_main() -> i32 {
    // Panics are caught and reported in the reply; keep stderr quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let mut bytes = Vec::new();
    if std::io::stdin().read_to_end(&mut bytes).is_err() {
        return 3;
    }
    // Parsers print stray debug output to stdout; keep the real stdout for
    // the reply and send everything else to stderr.
    // SAFETY: plain descriptor duplication; the File takes ownership of `fd`.
    let mut reply_out = unsafe {
        use std::os::unix::io::FromRawFd;
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return 3;
        }
        std::fs::File::from_raw_fd(fd)
    };
    let reply = parse(&bytes);
    let out = serde_json::to_vec(&reply).unwrap_or_default();
    if reply_out
        .write_all(&out)
        .and_then(|_| reply_out.flush())
        .is_err()
    {
        return 3;
    }
    0
}

impl PdfLoader {
    fn run_subprocess(
        &self,
        exe: &PathBuf,
        timeout: Duration,
        memory_mb: u64,
        bytes: &[u8],
    ) -> Result<LoadedDoc, LoadError> {
        let mut cmd = Command::new(exe);
        cmd.arg("__pdf-worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let limit = memory_mb.saturating_mul(1024 * 1024);
        // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                let as_limit = libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: limit as libc::rlim_t,
                };
                let no_core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_AS, &as_limit);
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            LoadError::Crashed(format!(
                "cannot start the PDF worker {}: {e}",
                exe.display()
            ))
        })?;
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let input = bytes.to_vec();
        let writer = std::thread::spawn(move || {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&input);
            }
            drop(stdin);
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut out);
            }
            let _ = tx.send(out);
        });
        let err_reader = std::thread::spawn(move || {
            let mut e = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(64 * 1024).read_to_end(&mut e);
            }
            e
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {
                    if start.elapsed() >= timeout {
                        let _ = child.kill();
                        let _ = child.wait();
                        let _ = writer.join();
                        return Err(LoadError::TimedOut(timeout.as_secs()));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    return Err(LoadError::Crashed(format!(
                        "waiting for the PDF worker: {e}"
                    )))
                }
            }
        };
        let _ = writer.join();
        let out = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if let Ok(reply) = serde_json::from_slice::<WorkerReply>(&out) {
            return into_doc(reply);
        }
        use std::os::unix::process::ExitStatusExt;
        let tail = String::from_utf8_lossy(&err);
        let tail = tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let what = match status.signal() {
            Some(libc::SIGSEGV) => "segmentation fault (stack overflow?)".to_string(),
            Some(libc::SIGABRT) => "aborted (out of memory?)".to_string(),
            Some(libc::SIGKILL) => "killed".to_string(),
            Some(s) => format!("terminated by signal {s}"),
            None => format!("exited with status {}", status.code().unwrap_or(-1)),
        };
        Err(LoadError::Crashed(if tail.is_empty() {
            what
        } else {
            format!("{what}: {tail}")
        }))
    }
}

impl Loader for PdfLoader {
    fn load(&self, bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Empty);
        }
        match &self.isolation {
            PdfIsolation::Subprocess {
                exe,
                timeout,
                memory_mb,
            } => self.run_subprocess(exe, *timeout, *memory_mb, bytes),
            PdfIsolation::InProcess { timeout } => {
                let (tx, rx) = mpsc::channel();
                let input = bytes.to_vec();
                std::thread::Builder::new()
                    .stack_size(64 * 1024 * 1024)
                    .spawn(move || {
                        let r = catch_unwind(AssertUnwindSafe(|| parse(&input)));
                        let _ = tx.send(r.map_err(|p| panic_message(&*p)));
                    })
                    .map_err(|e| LoadError::Crashed(e.to_string()))?;
                match rx.recv_timeout(*timeout) {
                    Ok(Ok(reply)) => into_doc(reply),
                    Ok(Err(msg)) => Err(LoadError::Panicked(msg)),
                    Err(_) => Err(LoadError::TimedOut(timeout.as_secs())),
                }
            }
        }
    }
}
