//! Loaders turn file bytes into page texts. One trait at the seam; PDFs and
//! images are read in an isolated worker process (C and C++ parsers, OCR),
//! Office files and mail in process by bounded, streaming readers.

mod html;
mod mail;
mod msg;
mod ocr;
mod office;
pub mod pdf;
mod pdfium;
mod running;
mod table;
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
    /// Word (`.docx`).
    Docx,
    /// PowerPoint (`.pptx`).
    Pptx,
    /// Excel (`.xlsx`).
    Xlsx,
    /// OpenDocument text (`.odt`).
    Odt,
    /// OpenDocument presentation (`.odp`).
    Odp,
    /// OpenDocument spreadsheet (`.ods`).
    Ods,
    /// E-mail (`.eml`).
    Eml,
    /// Outlook mail (`.msg`).
    Msg,
    /// A picture or scan (`.png`, `.jpg`, `.tiff`), read by OCR.
    Image,
}

impl FileKind {
    /// By file extension (case-insensitive).
    pub fn from_extension(ext: &str) -> Option<FileKind> {
        match ext.to_ascii_lowercase().as_str() {
            "txt" | "text" => Some(FileKind::Text),
            "md" | "markdown" => Some(FileKind::Markdown),
            "html" | "htm" => Some(FileKind::Html),
            "pdf" => Some(FileKind::Pdf),
            "docx" => Some(FileKind::Docx),
            "pptx" => Some(FileKind::Pptx),
            "xlsx" => Some(FileKind::Xlsx),
            "odt" => Some(FileKind::Odt),
            "odp" => Some(FileKind::Odp),
            "ods" => Some(FileKind::Ods),
            "eml" => Some(FileKind::Eml),
            "msg" => Some(FileKind::Msg),
            "png" | "jpg" | "jpeg" | "tif" | "tiff" => Some(FileKind::Image),
            _ => None,
        }
    }

    /// Every kind, for lists in messages and tests.
    pub const ALL: [FileKind; 13] = [
        FileKind::Text,
        FileKind::Markdown,
        FileKind::Html,
        FileKind::Pdf,
        FileKind::Docx,
        FileKind::Pptx,
        FileKind::Xlsx,
        FileKind::Odt,
        FileKind::Odp,
        FileKind::Ods,
        FileKind::Eml,
        FileKind::Msg,
        FileKind::Image,
    ];

    /// The kind's name in reports and type filters (`md`, `pdf`, `image`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Text => "txt",
            FileKind::Markdown => "md",
            FileKind::Html => "html",
            FileKind::Pdf => "pdf",
            FileKind::Docx => "docx",
            FileKind::Pptx => "pptx",
            FileKind::Xlsx => "xlsx",
            FileKind::Odt => "odt",
            FileKind::Odp => "odp",
            FileKind::Ods => "ods",
            FileKind::Eml => "eml",
            FileKind::Msg => "msg",
            FileKind::Image => "image",
        }
    }

    /// Whether the format has pages: PDF pages, slides, sheets, a mail's
    /// attachments, a TIFF's pages.
    pub fn paged(self) -> bool {
        !matches!(
            self,
            FileKind::Text | FileKind::Markdown | FileKind::Html | FileKind::Docx | FileKind::Odt
        )
    }

    /// The file extensions hort reads, for messages (`.txt, .md, …`).
    pub fn extensions() -> &'static str {
        ".txt, .md, .html, .pdf, .docx, .pptx, .xlsx, .odt, .odp, .ods, .eml, .msg, .png, .jpg, .tiff"
    }
}

/// One page of text (formats without pages have one page, `number: None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The page number (formats with pages).
    pub number: Option<u32>,
    /// The page's text.
    pub text: String,
    /// OCR's mean confidence (0–100) if the text was read from the page's
    /// image: quotes from it may differ from the original.
    pub ocr: Option<f32>,
    /// The headings the format marks on this page, in reading order (Word
    /// heading styles, HTML `h1`–`h6`, ODF `text:h`, a mail's subject).
    /// Plain text and Markdown mark none here: their headings are read
    /// from the text itself (`ingest::outline`).
    pub headings: Vec<Heading>,
}

impl Page {
    /// A page of text the file carries (not read by OCR).
    pub fn new(number: Option<u32>, text: String) -> Page {
        Page {
            number,
            text,
            ocr: None,
            headings: Vec::new(),
        }
    }

    /// This page with the headings the format marked on it.
    pub fn with_headings(mut self, headings: Vec<Heading>) -> Page {
        self.headings = headings;
        self
    }
}

/// A heading as the document marks it: the chunks after it, up to the next
/// heading of its level or above, are embedded with it as their context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heading {
    /// 0 for the document's title, 1–9 for section levels.
    pub level: u8,
    /// The heading's text, whitespace collapsed.
    pub text: String,
}

impl Heading {
    /// A heading of `text` (whitespace collapsed); `None` if it is blank.
    pub fn new(level: u8, text: &str) -> Option<Heading> {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        (!text.is_empty()).then_some(Heading {
            level: level.min(9),
            text,
        })
    }
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
    #[error("binary content in a text file (NUL or control bytes); is the extension wrong?")]
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

/// Every format's reader, chosen by file kind.
pub struct Loaders {
    pdf: PdfLoader,
}

impl Loaders {
    /// Readers whose PDFs and images are parsed as `isolation` says.
    pub fn new(isolation: PdfIsolation) -> Loaders {
        Loaders {
            pdf: PdfLoader { isolation },
        }
    }

    /// Parses a file of `kind`.
    pub fn load(&self, kind: FileKind, bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
        self.load_at(kind, bytes, 0)
    }

    /// Parses a file of `kind` found `depth` mails deep.
    fn load_at(&self, kind: FileKind, bytes: &[u8], depth: usize) -> Result<LoadedDoc, LoadError> {
        match kind {
            FileKind::Text | FileKind::Markdown => TextLoader.load(bytes),
            FileKind::Html => HtmlLoader.load(bytes),
            FileKind::Pdf => self.pdf.load(bytes),
            FileKind::Image => self.pdf.load_image(bytes),
            FileKind::Docx => guarded(|| office::load_docx(bytes)),
            FileKind::Pptx => guarded(|| office::load_pptx(bytes)),
            FileKind::Xlsx => guarded(|| office::load_xlsx(bytes)),
            FileKind::Odt => guarded(|| office::load_odt(bytes)),
            FileKind::Odp => guarded(|| office::load_odp(bytes)),
            FileKind::Ods => guarded(|| office::load_ods(bytes)),
            FileKind::Eml => guarded(|| mail::load_eml(bytes, self, depth)),
            FileKind::Msg => guarded(|| msg::load_msg(bytes, self, depth)),
        }
    }
}

/// Runs an in-process reader so that a bug in it costs the file, not the
/// ingest.
fn guarded(f: impl FnOnce() -> Result<LoadedDoc, LoadError>) -> Result<LoadedDoc, LoadError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(LoadError::Panicked(pdf::panic_message(&*p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_type_filters_accept() {
        for k in FileKind::ALL {
            assert!(
                crate::store::docfilter::KINDS.contains(&k.as_str()),
                "{k:?}"
            );
            let ext = FileKind::extensions();
            assert!(
                k == FileKind::Markdown
                    || ext.contains(&format!(".{}", k.as_str()))
                    || k == FileKind::Image
                    || k == FileKind::Text,
                "{k:?} missing from {ext}"
            );
        }
        assert_eq!(FileKind::ALL.len(), crate::store::docfilter::KINDS.len());
    }
}
