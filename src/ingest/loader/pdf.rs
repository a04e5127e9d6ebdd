//! PDF text, page by page, via PDFium (pdf-extract where PDFium cannot read
//! a file or its library is absent), isolated.
//!
//! PDFium reads more files than pdf-extract and about seven times faster
//! (`hort bench pdf`); pdf-extract is pure Rust and stays as the fallback. PDF parsers panic, crash, recurse without bound, or loop
//! forever on some files.
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

use super::ocr::{Ocr, OcrSetup};
use super::pdfium::{OpenError, Pdfium};
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
        /// The engines the worker reads with.
        engines: Engines,
    },
    /// Parse on a helper thread under `catch_unwind` with a time limit (a
    /// thread that hangs is abandoned). For library use without the binary;
    /// it cannot survive a stack overflow or abort, so it uses pdf-extract
    /// only (PDFium is C++: a crash there would take the host down).
    InProcess {
        /// Time allowed per file.
        timeout: Duration,
    },
}

/// What the PDF worker reads with.
#[derive(Clone, Debug, Default)]
pub struct Engines {
    /// The PDFium library (`None`: pdf-extract alone).
    pub pdfium: Option<PathBuf>,
    /// PDFium or nothing: no pdf-extract where it fails
    /// (`pdf_engine = "pdfium"`).
    pub pdfium_only: bool,
    /// OCR for pages without text (needs PDFium to render them).
    pub ocr: Option<OcrSetup>,
}

impl Engines {
    /// What PDFs and pictures are read with, for `hort status`: the engine,
    /// the fallback, and OCR (with what is missing and how to get it).
    pub fn describe(&self) -> String {
        let pdf = match (&self.pdfium, self.pdfium_only) {
            (Some(p), _) if !p.is_file() => {
                format!("PDFium missing at {} (`make models`)", p.display())
            }
            (Some(p), true) => format!("PDFium ({})", p.display()),
            (Some(p), false) => format!(
                "PDFium ({}), pdf-extract where it cannot open a file",
                p.display()
            ),
            (None, _) => "pdf-extract (no PDFium; no OCR of scans)".into(),
        };
        let ocr = match &self.ocr {
            None => "OCR off".to_string(),
            Some(o) if !o.installed() => {
                format!("OCR missing at {} (`make ocr`)", o.dir.display())
            }
            Some(o) => format!("OCR {} at {} dpi", o.languages, o.dpi),
        };
        format!("{pdf}; {ocr}")
    }

    /// The worker's arguments after `__pdf-worker`.
    pub fn args(&self) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = Vec::new();
        if let Some(p) = &self.pdfium {
            a.extend(["--pdfium".into(), p.clone().into_os_string()]);
            if self.pdfium_only {
                a.push("--pdfium-only".into());
            }
        }
        if let Some(o) = &self.ocr {
            a.extend([
                "--ocr".into(),
                o.dir.clone().into_os_string(),
                "--ocr-budget-ms".into(),
                o.budget.as_millis().to_string().into(),
                "--ocr-languages".into(),
                o.languages.clone().into(),
                "--ocr-dpi".into(),
                o.dpi.to_string().into(),
            ]);
        }
        a
    }
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
        #[serde(default)]
        warnings: Vec<String>,
        /// Pages read by OCR: (page number, mean confidence 0–100).
        #[serde(default)]
        ocr: Vec<(u32, f32)>,
    },
    Encrypted,
    Corrupt(String),
    Empty,
}

pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Parses a PDF in this process with PDFium if given, falling back to
/// pdf-extract where PDFium cannot open the file (unless `only`). Only
/// call from an isolated context.
fn parse(bytes: &[u8], engines: &Engines) -> WorkerReply {
    if bytes.is_empty() {
        return WorkerReply::Empty;
    }
    let mut note = None;
    let only = engines.pdfium_only;
    // PDFium does not try an empty owner password on AES-256 (R5/R6)
    // files; pdf-extract does, and reads those that were only protected
    // against editing.
    let mut locked = false;
    if let Some(path) = &engines.pdfium {
        match Pdfium::load(path) {
            Ok(lib) => match parse_pdfium(&lib, bytes, engines.ocr.as_ref()) {
                Ok(WorkerReply::Encrypted) if !only => {
                    locked = true;
                    note = Some("PDFium: the PDF is encrypted".to_string());
                }
                Ok(reply) => return reply,
                Err(why) => note = Some(format!("PDFium: {why}")),
            },
            Err(e) => note = Some(e),
        }
    }
    if let (true, Some(n)) = (only, &note) {
        return WorkerReply::Corrupt(n.clone());
    }
    let extracted = parse_extract(bytes);
    if locked && !matches!(extracted, WorkerReply::Ok { .. }) {
        return WorkerReply::Encrypted;
    }
    match (extracted, note) {
        (
            WorkerReply::Ok {
                pages,
                page_errors,
                mut warnings,
                ocr,
            },
            Some(n),
        ) => {
            warnings.push(format!("{n}; read with pdf-extract instead"));
            WorkerReply::Ok {
                pages,
                page_errors,
                warnings,
                ocr,
            }
        }
        (WorkerReply::Corrupt(m), Some(n)) => {
            WorkerReply::Corrupt(format!("{n}; pdf-extract: {m}"))
        }
        (reply, _) => reply,
    }
}

/// Pages with fewer letters than this are read again by OCR when it is on
/// (a scan often carries a stray text layer: a page number, a stamp).
const OCR_BELOW_LETTERS: usize = 16;

/// Every page's text through PDFium, pages without text through OCR when
/// `ocr` is given; `Err(why)` if PDFium cannot open the file for a reason
/// other than a password.
fn parse_pdfium(
    lib: &Pdfium,
    bytes: &[u8],
    ocr: Option<&OcrSetup>,
) -> Result<WorkerReply, &'static str> {
    let doc = match lib.open(bytes) {
        Ok(d) => d,
        Err(OpenError::Encrypted) => return Ok(WorkerReply::Encrypted),
        Err(OpenError::Unreadable(why)) => return Err(why),
    };
    let n = doc.pages();
    if n == 0 {
        return Ok(WorkerReply::Empty);
    }
    let mut pages = Vec::with_capacity(n);
    let mut page_errors = Vec::new();
    let mut warnings = Vec::new();
    let mut read_by_ocr = Vec::new();
    // Loaded on the first page that needs it; a failure is said once.
    let mut engine: Option<Result<Ocr, String>> = None;
    let (started, mut stopped) = (Instant::now(), false);
    let budget = ocr.map_or(Duration::ZERO, |o| o.budget);
    for i in 0..n {
        let mut text = match doc.text(i) {
            Some(t) => t,
            None => {
                pages.push(String::new());
                page_errors.push((i as u32 + 1, "PDFium cannot load the page".into()));
                continue;
            }
        };
        let letters = letters(&text);
        if let (Some(setup), true) = (ocr, letters < OCR_BELOW_LETTERS) {
            // A long scan must not cost the whole file at the time limit:
            // past half of it, the remaining pages go without OCR, said.
            if started.elapsed() >= budget {
                if !stopped {
                    stopped = true;
                    warnings.push(format!(
                        "OCR stopped at page {} of {n}: half of the time limit spent \
                         (raise ingest.pdf_timeout_s for long scans)",
                        i + 1
                    ));
                }
                pages.push(text);
                continue;
            }
            let e = engine.get_or_insert_with(|| Ocr::load(setup));
            match e {
                Ok(o) => {
                    let r = doc
                        .render_grey(i, setup.dpi as f32, OCR_MAX_PIXELS)
                        .and_then(|(w, h, px)| o.grey(w, h, &px, setup.dpi));
                    match r {
                        Some(r) if self::letters(&r.text) > letters => {
                            read_by_ocr.push((i as u32 + 1, r.confidence));
                            text = r.text;
                        }
                        Some(_) => {}
                        None => warnings.push(format!("page {}: cannot render it for OCR", i + 1)),
                    }
                }
                Err(why) => {
                    if !warnings.contains(why) {
                        warnings.push(why.clone());
                    }
                }
            }
        }
        pages.push(text);
    }
    Ok(WorkerReply::Ok {
        pages,
        page_errors,
        warnings,
        ocr: read_by_ocr,
    })
}

/// The pages of a picture (one, or each page of a TIFF) read by OCR.
fn parse_image(bytes: &[u8], ocr: Option<&OcrSetup>) -> WorkerReply {
    if bytes.is_empty() {
        return WorkerReply::Empty;
    }
    let Some(setup) = ocr else {
        return WorkerReply::Ok {
            pages: vec![String::new()],
            page_errors: Vec::new(),
            warnings: vec!["OCR unavailable: ingest.ocr is off".into()],
            ocr: Vec::new(),
        };
    };
    let engine = match Ocr::load(setup) {
        Ok(o) => o,
        Err(why) => {
            return WorkerReply::Ok {
                pages: vec![String::new()],
                page_errors: Vec::new(),
                warnings: vec![why],
                ocr: Vec::new(),
            }
        }
    };
    let images = match engine.decode(bytes) {
        Ok(i) => i,
        Err(why) => return WorkerReply::Corrupt(why),
    };
    let started = Instant::now();
    let (mut pages, mut warnings, mut read) = (Vec::new(), Vec::new(), Vec::new());
    let n = images.len();
    for (i, img) in images.into_iter().enumerate() {
        if started.elapsed() >= setup.budget {
            warnings.push(format!(
                "OCR stopped at page {} of {n}: half of the time limit spent \
                 (raise ingest.pdf_timeout_s for long scans)",
                i + 1
            ));
            break;
        }
        match engine.picture(img, OCR_MAX_PIXELS) {
            // A logo or a photo gives OCR a few letters of noise ("O" for
            // a ring); that is not text worth citing.
            Some(r) if letters(&r.text) >= PICTURE_MIN_LETTERS && r.confidence >= 40.0 => {
                read.push((i as u32 + 1, r.confidence));
                pages.push(r.text);
            }
            Some(_) => pages.push(String::new()),
            None => {
                pages.push(String::new());
                warnings.push(format!("page {}: OCR could not read the image", i + 1));
            }
        }
    }
    WorkerReply::Ok {
        pages,
        page_errors: Vec::new(),
        warnings,
        ocr: read,
    }
}

/// Letters and digits a picture must show to count as text.
const PICTURE_MIN_LETTERS: usize = 8;

/// Letters and digits in `s` (how much text a page has).
fn letters(s: &str) -> usize {
    s.chars().filter(|c| c.is_alphanumeric()).count()
}

/// The largest page image OCR is given (pixels): A4 at 300 dpi is 8.7
/// million; a poster-sized page is scaled down to this.
const OCR_MAX_PIXELS: usize = 36_000_000;

/// Every page's text through pdf-extract, each page under `catch_unwind`.
fn parse_extract(bytes: &[u8]) -> WorkerReply {
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
    WorkerReply::Ok {
        pages,
        page_errors,
        warnings: Vec::new(),
        ocr: Vec::new(),
    }
}

/// The worker's reply as a document; `ocr_on` says whether pages without
/// text were given to OCR (for the reason a textless file fails).
fn into_doc(reply: WorkerReply, ocr_on: bool, image: bool) -> Result<LoadedDoc, LoadError> {
    let kind = if image { "image" } else { "PDF" };
    match reply {
        // Empty input never reaches the worker: this is a file without pages.
        WorkerReply::Empty => Err(LoadError::NoText(format!(" (the {kind} has no pages)"))),
        WorkerReply::Encrypted => Err(LoadError::Encrypted),
        WorkerReply::Corrupt(m) => Err(LoadError::Corrupt { kind, message: m }),
        WorkerReply::Ok {
            pages,
            page_errors,
            warnings: notes,
            ocr,
        } => {
            let failed_all = !page_errors.is_empty() && page_errors.len() == pages.len();
            if pages.iter().all(|p| p.trim().is_empty()) {
                return Err(if image {
                    match notes.iter().find(|n| n.starts_with("OCR unavailable")) {
                        Some(why) => LoadError::NoText(format!(" ({why})")),
                        None => LoadError::NoText(" (OCR found no text in the image)".into()),
                    }
                } else if failed_all {
                    LoadError::Corrupt {
                        kind,
                        message: format!("no page could be read (page 1: {})", page_errors[0].1),
                    }
                } else if let Some(why) = notes.iter().find(|n| n.starts_with("OCR unavailable")) {
                    LoadError::NoText(format!(" (scanned pages? {why})"))
                } else if ocr_on {
                    LoadError::NoText(" (OCR found no text on any page either)".into())
                } else {
                    LoadError::NoText(" (scanned pages? OCR is off or needs PDFium)".into())
                });
            }
            // Running heads and feet would land in every chunk.
            let mut pages = pages;
            super::running::strip(&mut pages);
            let warnings = page_errors
                .iter()
                .map(|(n, e)| format!("page {n} unreadable: {e}"))
                .chain(notes)
                .chain(ocr_note(&ocr))
                .collect();
            Ok(LoadedDoc {
                pages: pages
                    .into_iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let n = i as u32 + 1;
                        Page {
                            number: Some(n),
                            text,
                            ocr: ocr.iter().find(|o| o.0 == n).map(|o| o.1),
                            headings: Vec::new(),
                        }
                    })
                    .collect(),
                warnings,
            })
        }
    }
}

/// One line saying which pages OCR read and how sure it was.
fn ocr_note(ocr: &[(u32, f32)]) -> Option<String> {
    if ocr.is_empty() {
        return None;
    }
    let pages: Vec<String> = ocr.iter().map(|o| o.0.to_string()).collect();
    let (lo, hi) = ocr
        .iter()
        .fold((f32::MAX, f32::MIN), |a, o| (a.0.min(o.1), a.1.max(o.1)));
    let conf = if lo == hi {
        format!("{lo:.0} %")
    } else {
        format!("{lo:.0}–{hi:.0} %")
    };
    Some(format!(
        "page{} {} read by OCR (confidence {conf}): check quotes against the original",
        if pages.len() == 1 { "" } else { "s" },
        pages.join(", ")
    ))
}

/// Entry point of `hort __pdf-worker` (arguments: [`Engines::args`], and
/// `--image` for a picture): PDF or image bytes on stdin, a JSON reply on
/// stdout.
pub fn worker_main(engines: &Engines, image: bool) -> i32 {
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
    let reply = if image {
        parse_image(&bytes, engines.ocr.as_ref())
    } else {
        parse(&bytes, engines)
    };
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
    /// Parses in a worker process (a PDF, or a picture with `image`).
    fn run_subprocess(&self, bytes: &[u8], image: bool) -> Result<LoadedDoc, LoadError> {
        let PdfIsolation::Subprocess {
            exe,
            timeout,
            memory_mb,
            engines,
        } = &self.isolation
        else {
            return Err(LoadError::NoText(
                " (images are read by OCR, which runs in the worker process only)".into(),
            ));
        };
        let (timeout, memory_mb) = (*timeout, *memory_mb);
        let mut cmd = Command::new(exe);
        cmd.arg("__pdf-worker").args(engines.args());
        if image {
            cmd.arg("--image");
        }
        if let Some(o) = &engines.ocr {
            // Tesseract finds its own dependencies beside it; one OCR
            // thread per worker (there is a worker per core already).
            let mut path = o.lib_dir().into_os_string();
            if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
                path.push(":");
                path.push(old);
            }
            cmd.env("LD_LIBRARY_PATH", path)
                .env("OMP_THREAD_LIMIT", "1");
        }
        cmd.stdin(Stdio::piped())
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
            let ocr_on = engines.ocr.is_some() && (image || engines.pdfium.is_some());
            return into_doc(reply, ocr_on, image);
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

impl PdfLoader {
    /// Reads a picture (PNG, JPEG, TIFF with its pages) by OCR in the
    /// worker process; in-process parsing has no OCR.
    pub fn load_image(&self, bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Empty);
        }
        self.run_subprocess(bytes, true)
    }
}

impl Loader for PdfLoader {
    fn load(&self, bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Empty);
        }
        match &self.isolation {
            PdfIsolation::Subprocess { .. } => self.run_subprocess(bytes, false),
            PdfIsolation::InProcess { timeout } => {
                let (tx, rx) = mpsc::channel();
                let input = bytes.to_vec();
                std::thread::Builder::new()
                    .stack_size(64 * 1024 * 1024)
                    .spawn(move || {
                        let r =
                            catch_unwind(AssertUnwindSafe(|| parse(&input, &Engines::default())));
                        let _ = tx.send(r.map_err(|p| panic_message(&*p)));
                    })
                    .map_err(|e| LoadError::Crashed(e.to_string()))?;
                match rx.recv_timeout(*timeout) {
                    Ok(Ok(reply)) => into_doc(reply, false, false),
                    Ok(Err(msg)) => Err(LoadError::Panicked(msg)),
                    Err(_) => Err(LoadError::TimedOut(timeout.as_secs())),
                }
            }
        }
    }
}
