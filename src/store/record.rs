//! The records that cross the storage contract, the same for every backend:
//! what is written ([`NewDocument`]), what a sync knows of a stored document
//! ([`StoredDoc`]), what a search returns ([`ChunkHit`]), what a principal
//! may list ([`DocSummary`]) and read ([`Pages`]).

use serde::Serialize;

/// The root of documents added through the API (not from a folder): they
/// never collide with a folder's documents, and a folder's sync never
/// removes them.
pub const UPLOAD_ROOT: &str = "upload:";

use crate::acl::{AccessRule, Classification};

/// A chunk id as the API shows it (16 hex digits).
pub fn chunk_id_string(id: u64) -> String {
    format!("{id:016x}")
}

/// An injection detector's verdict on a chunk: score and reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The detector's score (0–1).
    pub score: f32,
    /// The rule families that matched.
    pub reasons: Vec<String>,
}

/// One chunk of a document to store, with its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    /// Index into [`NewDocument::pages`].
    pub page_ord: u32,
    /// Byte offsets into that page's text.
    pub byte_start: u32,
    /// End in bytes.
    pub byte_end: u32,
    /// The same span in Unicode scalar values (what the API shows).
    pub char_start: u32,
    /// End in characters.
    pub char_end: u32,
    /// First 16 bytes of the SHA-256 of the chunk's text.
    pub content_hash: [u8; 16],
    /// The detector's verdict, if the chunk looks like an injection.
    pub injection: Option<Verdict>,
    /// The chunk's vector.
    pub embedding: Vec<f32>,
}

/// A document to add or replace, identified by `(root, path)`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    /// The ingested folder (absolute), or the root of uploads.
    pub root: String,
    /// Path relative to `root`, `/`-separated: the `doc` of the API.
    pub path: String,
    /// File type: `txt`, `md`, `html`, `pdf`.
    pub kind: String,
    /// File size in bytes.
    pub size: u64,
    /// Modification time (ns since the epoch).
    pub mtime_ns: i64,
    /// SHA-256 of the file bytes (hex).
    pub sha256: String,
    /// `None`: no rule applies, nobody may see the document.
    pub access: Option<AccessRule>,
    /// The rule file that gave `access`, relative to `root`.
    pub rule_source: Option<String>,
    /// Whether the format has pages (PDF) or one text (the rest).
    pub paged: bool,
    /// Unix seconds of the ingest that made the chunks.
    pub ingested_at: i64,
    /// When the content hash was last compared with the file (ns).
    pub checked_at_ns: i64,
    /// Invisible characters removed at ingest.
    pub hygiene_removed: usize,
    /// (page number, text), in order; one entry for formats without pages.
    pub pages: Vec<(u32, String)>,
    /// OCR's confidence (0–100) for each page OCR read, by page position;
    /// empty when no page was (a page past its end was not either).
    pub page_ocr: Vec<Option<f32>>,
    /// The chunks, in order.
    pub chunks: Vec<NewChunk>,
}

impl NewDocument {
    /// OCR's confidence if OCR read page `ord`.
    pub fn ocr_of(&self, ord: usize) -> Option<f32> {
        self.page_ocr.get(ord).copied().flatten()
    }

    /// The text of chunk `i` (a slice of its page).
    pub fn chunk_text(&self, i: usize) -> Option<&str> {
        let c = self.chunks.get(i)?;
        self.pages
            .get(c.page_ord as usize)?
            .1
            .get(c.byte_start as usize..c.byte_end as usize)
    }
}

/// An injection verdict on one stored chunk, by the chunk's position in its
/// document.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkVerdict {
    /// Position of the chunk in its document (0-based).
    pub ord: u32,
    /// The chunk's id where the store knows it (0 in what is written).
    pub chunk_id: u64,
    /// The verdict.
    pub verdict: Verdict,
}

/// What a sync needs to know about a stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    /// The backend's id of the document (stable until it is replaced).
    pub id: u64,
    /// The folder (or the uploads' root).
    pub root: String,
    /// Path relative to `root`.
    pub path: String,
    /// File size in bytes when stored.
    pub size: u64,
    /// Modification time when stored (ns).
    pub mtime_ns: i64,
    /// When the content hash was last compared (ns).
    pub checked_at_ns: i64,
    /// SHA-256 of the file (hex).
    pub sha256: String,
    /// Who may see it.
    pub access: Option<AccessRule>,
    /// The rule file that gave `access`.
    pub rule_source: Option<String>,
    /// Chunks stored.
    pub n_chunks: u32,
    /// Chunks with a stored injection verdict.
    pub flagged: Vec<ChunkVerdict>,
}

/// One chunk as a search returns it: where it is, what it says, who may
/// see it. Backends return only chunks the asker may see.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkHit {
    /// The chunk's id.
    pub id: u64,
    /// Its document's id.
    pub doc_id: u64,
    /// The document's path.
    pub path: String,
    /// Whether the document has pages.
    pub paged: bool,
    /// 1-based page (meaningful when `paged`).
    pub page_no: u32,
    /// Start in characters into the page.
    pub char_start: u32,
    /// End in characters.
    pub char_end: u32,
    /// The chunk's text.
    pub text: String,
    /// Who may see it.
    pub access: AccessRule,
    /// The detector's verdict, if it looks like an injection.
    pub injection: Option<Verdict>,
    /// OCR's confidence (0–100) if the chunk's page was read by OCR.
    pub ocr: Option<f32>,
}

/// A document as a principal may list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocSummary {
    /// The document's id.
    pub id: u64,
    /// Its path.
    pub path: String,
    /// Its file type.
    pub kind: String,
    /// Its classification.
    pub classification: Classification,
    /// Whether it has pages.
    pub paged: bool,
    /// Pages.
    pub n_pages: u32,
    /// Chunks.
    pub n_chunks: u32,
    /// Added through the API (only such documents can be deleted there;
    /// folder documents go with their files).
    pub uploaded: bool,
}

/// The text of a document a principal asked for: one page or all.
#[derive(Debug, Clone, PartialEq)]
pub enum Pages {
    /// The document was found.
    Found {
        /// Whether it has pages.
        paged: bool,
        /// Pages of the whole document.
        n_pages: u32,
        /// Its classification.
        classification: Classification,
        /// The page asked for, or all of them in order.
        texts: Vec<String>,
    },
    /// No document at the path that the principal may see.
    NotFound,
    /// That many visible documents have the path (in different folders).
    Ambiguous(usize),
    /// The page is outside the document, which has this many.
    OutOfRange(u32),
}

/// A document at a path with its rule, whoever may see it (for the checks
/// that keep a writer from replacing what it may not see).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleAt {
    /// The folder of the document.
    pub root: String,
    /// Who may see it.
    pub access: Option<AccessRule>,
}

/// A file an ingest of its folder could not read: kept (with the store,
/// so every node and the console see it) until that folder's next ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FailedFile {
    /// The folder that was ingested.
    pub root: String,
    /// The file, relative to it.
    pub path: String,
    /// Why it failed.
    pub error: String,
    /// When (Unix seconds).
    pub at: u64,
}

/// How the vector side of a search was answered (per segment on the
/// embedded index, once on PostgreSQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum VectorPlan {
    /// Nothing to search (no visible chunk).
    Skipped,
    /// Every visible chunk scored exactly.
    Exact,
    /// The HNSW graph searched with the filter.
    Graph,
    /// The graph delivered too few: an exact scan finished.
    GraphThenExact,
}

/// The vector planner's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VectorParams {
    /// Beam width of a graph search (widened for narrow filters).
    pub ef_search: usize,
    /// Up to this many visible chunks are scored exactly instead.
    pub exact_threshold: usize,
}

/// What a store holds, for status pages and metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreStats {
    /// Commit generation (0 where the backend has none).
    pub generation: u64,
    /// Documents stored.
    pub documents: usize,
    /// Documents without an access rule (visible to nobody).
    pub unruled: usize,
    /// Chunks stored.
    pub chunks: usize,
    /// Distinct teams named by the documents' rules.
    pub teams: usize,
    /// Segments (embedded index).
    pub segments: usize,
    /// Bytes on disk (embedded index).
    pub bytes: u64,
}
