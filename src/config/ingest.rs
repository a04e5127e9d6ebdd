//! `[ingest]`: chunking, file limits, PDF isolation, segment size.

use serde::Deserialize;

use super::{Check, ConfigError};

/// `[ingest]`: chunking, file limits, PDF isolation, segment size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Target chunk size in model tokens.
    #[serde(default = "default_chunk_tokens")]
    pub chunk_tokens: usize,
    /// Tokens repeated from the end of one chunk at the start of the next.
    #[serde(default = "default_overlap_tokens")]
    pub overlap_tokens: usize,
    /// Whether the model reads each chunk under its headings ("Travel
    /// policy > Hotels", from Word styles, HTML and Markdown headings, a
    /// text's title line, a mail's subject): a chunk from the middle of a
    /// section then still says what it is about. The stored text and its
    /// citations are the same either way; changing it re-embeds the index.
    #[serde(default = "yes")]
    pub heading_context: bool,
    /// Files larger than this are reported as failed, not read.
    #[serde(default = "default_max_file_mb")]
    pub max_file_mb: u64,
    /// Wall-clock limit for parsing one PDF in its isolated worker.
    #[serde(default = "default_pdf_timeout")]
    pub pdf_timeout_s: u64,
    /// Address-space limit of the PDF worker process.
    #[serde(default = "default_pdf_memory")]
    pub pdf_memory_mb: u64,
    /// Which PDF engine reads PDFs: `auto` (PDFium when its library is
    /// there, pdf-extract otherwise and where PDFium cannot read a file),
    /// `pdfium` (required: ingest refuses to start without the library), or
    /// `pdf-extract` (pure Rust, slower, no OCR).
    #[serde(default)]
    pub pdf_engine: PdfEngine,
    /// The PDFium library; default `<models_dir>/pdfium/libpdfium.so`
    /// (fetched, pinned, by `make models`).
    #[serde(default)]
    pub pdfium: Option<std::path::PathBuf>,
    /// OCR for PDF pages without text (scans): rendered by PDFium, read by
    /// Tesseract (`make ocr`).
    #[serde(default = "yes")]
    pub ocr: bool,
    /// Tesseract languages, `+`-joined, most likely first.
    #[serde(default = "default_ocr_languages")]
    pub ocr_languages: String,
    /// Resolution pages are rendered at for OCR.
    #[serde(default = "default_ocr_dpi")]
    pub ocr_dpi: u32,
    /// Tesseract and its models; default `<models_dir>/tesseract`.
    #[serde(default)]
    pub tesseract: Option<std::path::PathBuf>,
    /// Parser threads; 0 = one per core.
    #[serde(default)]
    pub parse_threads: usize,
    /// Chunks per segment before the writer cuts a new one (and commits).
    #[serde(default = "default_segment_chunks")]
    pub segment_chunks: usize,
}

/// `[ingest] pdf_engine`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdfEngine {
    /// PDFium when its library is present, pdf-extract otherwise.
    #[default]
    Auto,
    /// PDFium, required.
    Pdfium,
    /// pdf-extract only.
    PdfExtract,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            chunk_tokens: default_chunk_tokens(),
            overlap_tokens: default_overlap_tokens(),
            heading_context: true,
            max_file_mb: default_max_file_mb(),
            pdf_timeout_s: default_pdf_timeout(),
            pdf_memory_mb: default_pdf_memory(),
            pdf_engine: PdfEngine::Auto,
            pdfium: None,
            ocr: true,
            ocr_languages: default_ocr_languages(),
            ocr_dpi: default_ocr_dpi(),
            tesseract: None,
            parse_threads: 0,
            segment_chunks: default_segment_chunks(),
        }
    }
}

fn default_chunk_tokens() -> usize {
    200
}
fn default_overlap_tokens() -> usize {
    40
}
fn default_max_file_mb() -> u64 {
    100
}
fn yes() -> bool {
    true
}
fn default_ocr_languages() -> String {
    "deu+eng".into()
}
fn default_ocr_dpi() -> u32 {
    300
}
fn default_pdf_timeout() -> u64 {
    60
}
fn default_pdf_memory() -> u64 {
    4096
}
fn default_segment_chunks() -> usize {
    200_000
}

impl IngestConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        c.range("ingest.chunk_tokens", self.chunk_tokens, 16, 4096)?;
        if self.overlap_tokens * 2 > self.chunk_tokens {
            return Err(c.invalid(
                "ingest.overlap_tokens",
                "must be at most half of ingest.chunk_tokens",
            ));
        }
        c.range("ingest.pdf_timeout_s", self.pdf_timeout_s, 1, 3600)?;
        c.range("ingest.pdf_memory_mb", self.pdf_memory_mb, 64, 1 << 20)?;
        c.range("ingest.max_file_mb", self.max_file_mb, 1, 1 << 20)?;
        c.range("ingest.parse_threads", self.parse_threads, 0, 4096)?;
        c.range("ingest.ocr_dpi", self.ocr_dpi, 70, 600)?;
        let langs_ok = !self.ocr_languages.is_empty()
            && self.ocr_languages.split('+').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            });
        if !langs_ok {
            return Err(c.invalid(
                "ingest.ocr_languages",
                "must be Tesseract language codes joined by '+', e.g. \"deu+eng\"",
            ));
        }
        if self.segment_chunks < 1000 {
            return Err(c.invalid("ingest.segment_chunks", "must be at least 1000"));
        }
        Ok(())
    }
}
