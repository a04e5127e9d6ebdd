//! Loaders turn file bytes into page texts. One trait at the seam; the PDF
//! loader runs its parser in an isolated worker process.

mod html;
mod ocr;
pub mod pdf;
mod pdfium;
mod text;

pub use html::HtmlLoader;
pub use ocr::OcrSetup;
pub use pdf::{Engines, PdfIsolation, PdfLoader};
pub use text::{decode_text, TextLoader};

use serde::Serialize;

/// Document formats hort reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum FileKind {
    /// Plain text (`.txt`).
    Text,
    /// Markdown (`.md`).
    Markdown,
    /// HTML (`.html`, `.htm`).
    Html,
    /// PDF.
    Pdf,
}

impl FileKind {
    /// By file extension (case-insensitive).
    pub fn from_extension(ext: &str) -> Option<FileKind> {
        match ext.to_ascii_lowercase().as_str() {
            "txt" | "text" => Some(FileKind::Text),
            "md" | "markdown" => Some(FileKind::Markdown),
            "html" | "htm" => Some(FileKind::Html),
            "pdf" => Some(FileKind::Pdf),
            _ => None,
        }
    }

    /// The kind's name in reports (`md`, `pdf`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Text => "txt",
            FileKind::Markdown => "md",
            FileKind::Html => "html",
            FileKind::Pdf => "pdf",
        }
    }

    /// Whether the format has pages.
    pub fn paged(self) -> bool {
        self == FileKind::Pdf
    }
}

/// One page of text (formats without pages have one page, `number: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The page number (formats with pages).
    pub number: Option<u32>,
    /// The page's text.
    pub text: String,
}

/// A parsed document: its pages in order.
#[derive(Clone, Debug, Default)]
pub struct LoadedDoc {
    /// The pages (one for formats without pages).
    pub pages: Vec<Page>,
    /// Things the user should know that did not stop the load
    /// (a page that failed, a guessed encoding).
    pub warnings: Vec<String>,
}

/// Why a file could not be read; the message is what `failed` shows.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file has no text at all.
    #[error("empty file")]
    Empty,
    /// The format holds no extractable text (a scanned PDF, say).
    #[error("no extractable text{0}")]
    NoText(String),
    /// The PDF is encrypted.
    #[error("the PDF is encrypted with a password")]
    Encrypted,
    /// The file is damaged or not what its extension says.
    #[error("not a valid {kind} file: {message}")]
    Corrupt {
        /// The format.
        kind: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A text file that is binary.
    #[error("binary content in a text file (NUL bytes); is the extension wrong?")]
    Binary,
    /// The parser panicked (the file is skipped, nothing else is affected).
    #[error("parser panicked: {0}")]
    Panicked(String),
    /// The parser took longer than the limit (seconds).
    #[error("parser did not finish within {0} s (file skipped)")]
    TimedOut(u64),
    /// The parser process died (memory limit, signal).
    #[error("parser crashed: {0}")]
    Crashed(String),
    /// The file is larger than `max_file_mb`.
    #[error("file is {size} bytes, above the limit of {limit} bytes (ingest.max_file_mb)")]
    TooLarge {
        /// The file's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends `raw` to `out` with each line trimmed and at most one blank
/// line between paragraphs (HTML's text nodes, OCR's output).
fn tidy(raw: &str, out: &mut String) {
    let mut blank = 0;
    for line in raw.lines() {
        let l = line.trim();
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(l);
    }
}

/// Reads one format.
pub trait Loader: Send + Sync {
    /// Parses the file's bytes into pages of text.
    fn load(&self, bytes: &[u8]) -> Result<LoadedDoc, LoadError>;
}
