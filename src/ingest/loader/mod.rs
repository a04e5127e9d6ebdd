//! Loaders turn file bytes into page texts. One trait at the seam; the PDF
//! loader runs its parser in an isolated worker process.

mod html;
pub mod pdf;
mod text;

pub use html::HtmlLoader;
pub use pdf::{PdfIsolation, PdfLoader};
pub use text::{decode_text, TextLoader};

use serde::Serialize;

/// Document formats hort reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum FileKind {
    Text,
    Markdown,
    Html,
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

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Text => "txt",
            FileKind::Markdown => "md",
            FileKind::Html => "html",
            FileKind::Pdf => "pdf",
        }
    }

    pub fn paged(self) -> bool {
        self == FileKind::Pdf
    }
}

/// One page of text (formats without pages have one page, `number: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub number: Option<u32>,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct LoadedDoc {
    pub pages: Vec<Page>,
    /// Things the user should know that did not stop the load
    /// (a page that failed, a guessed encoding).
    pub warnings: Vec<String>,
}

/// Why a file could not be read; the message is what `failed` shows.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("empty file")]
    Empty,
    #[error("no extractable text{0}")]
    NoText(&'static str),
    #[error("the PDF is encrypted with a password")]
    Encrypted,
    #[error("not a valid {kind} file: {message}")]
    Corrupt { kind: &'static str, message: String },
    #[error("binary content in a text file (NUL bytes); is the extension wrong?")]
    Binary,
    #[error("parser panicked: {0}")]
    Panicked(String),
    #[error("parser did not finish within {0} s (file skipped)")]
    TimedOut(u64),
    #[error("parser crashed: {0}")]
    Crashed(String),
    #[error("file is {size} bytes, above the limit of {limit} bytes (ingest.max_file_mb)")]
    TooLarge { size: u64, limit: u64 },
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one format.
pub trait Loader: Send + Sync {
    fn load(&self, bytes: &[u8]) -> Result<LoadedDoc, LoadError>;
}
