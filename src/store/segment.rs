//! Segments: immutable files holding one batch of chunks: their ids, records,
//! page texts, vectors and HNSW graph. Written once (temp file, fsync,
//! rename), then only ever memory-mapped, so opening an index reads headers,
//! not vectors.
//!
//! Layout: a 256-byte header (magic, version, dimension, counts, a table of
//! sections with offset, length and CRC-32, and a CRC of the header itself),
//! then the sections, each 64-byte aligned. Small sections are checked on
//! open; the large ones (text, vectors, graph) by [`Segment::verify`].

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::hnsw::{self, Graph, GraphLayout, GraphParams, Vectors};
use super::StoreError;

const MAGIC: &[u8; 8] = b"HORTSEG1";
const VERSION: u32 = 1;

/// A page record's last field: 0 for text the file carried (and in every
/// segment written before OCR existed, where the field was reserved and
/// zero), else 1 + OCR's mean confidence in percent. Adding it kept the
/// format's meaning for old files, so the version stayed.
fn ocr_mark(ocr: Option<f32>) -> u32 {
    ocr.map_or(0, |c| c.clamp(0.0, 100.0).round() as u32 + 1)
}

fn ocr_of_mark(m: u32) -> Option<f32> {
    (1..=101).contains(&m).then(|| (m - 1) as f32)
}
const HEADER_LEN: usize = 256;
const TABLE_AT: usize = 40;
const ENTRY_LEN: usize = 24;
const MAX_SECTIONS: usize = 8;
const HEADER_CRC_AT: usize = TABLE_AT + MAX_SECTIONS * ENTRY_LEN;
const CHUNK_REC: usize = 48;
const PAGE_REC: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Kind {
    Ids = 1,
    Chunks = 2,
    Pages = 3,
    Text = 4,
    Vectors = 5,
    Graph = 6,
}

const KINDS: [Kind; 6] = [
    Kind::Ids,
    Kind::Chunks,
    Kind::Pages,
    Kind::Text,
    Kind::Vectors,
    Kind::Graph,
];

/// One chunk as stored: where its text is (a byte range of a page) and whose it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRecord {
    /// The chunk's document.
    pub doc_id: u64,
    /// Index into the segment's page table.
    pub page_idx: u32,
    /// 1-based page number, 0 for formats without pages.
    pub page_no: u32,
    /// Start in bytes into the page.
    pub byte_start: u32,
    /// End in bytes.
    pub byte_end: u32,
    /// Offsets in Unicode scalar values (what `start`/`end` mean in the API).
    pub char_start: u32,
    /// End in characters.
    pub char_end: u32,
    /// First 16 bytes of the SHA-256 of the chunk text.
    pub hash: [u8; 16],
}

/// Accumulates a segment in memory, then writes it in one go.
pub struct SegmentBuilder {
    dim: usize,
    ids: Vec<u64>,
    chunks: Vec<ChunkRecord>,
    /// (text offset, text length, page number, OCR mark)
    pages: Vec<(u64, u64, u32, u32)>,
    text: Vec<u8>,
    vectors: Vec<f32>,
}

impl SegmentBuilder {
    /// A builder of segments with `dim`-dimensional vectors.
    pub fn new(dim: usize) -> SegmentBuilder {
        SegmentBuilder {
            dim,
            ids: Vec::new(),
            chunks: Vec::new(),
            pages: Vec::new(),
            text: Vec::new(),
            vectors: Vec::new(),
        }
    }

    /// Chunks added.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Pages added.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Adds a page's text; returns its index in this segment.
    pub fn add_page(&mut self, page_no: u32, text: &str) -> u32 {
        self.add_page_ocr(page_no, text, None)
    }

    /// Adds a page's text, with OCR's confidence (0–100) if OCR read it.
    pub fn add_page_ocr(&mut self, page_no: u32, text: &str, ocr: Option<f32>) -> u32 {
        let off = self.text.len() as u64;
        self.text.extend_from_slice(text.as_bytes());
        self.pages
            .push((off, text.len() as u64, page_no, ocr_mark(ocr)));
        (self.pages.len() - 1) as u32
    }

    /// Adds a chunk. Ids must increase (segments are searched by binary search).
    pub fn add_chunk(
        &mut self,
        id: u64,
        rec: ChunkRecord,
        vector: &[f32],
    ) -> Result<(), StoreError> {
        if vector.len() != self.dim {
            return Err(StoreError::Corrupt(format!(
                "vector of {} dimensions in a {}-dimensional segment",
                vector.len(),
                self.dim
            )));
        }
        if self.ids.last().is_some_and(|&last| id <= last) {
            return Err(StoreError::Corrupt(
                "chunk ids must increase within a segment".into(),
            ));
        }
        if rec.page_idx as usize >= self.pages.len() {
            return Err(StoreError::Corrupt(
                "chunk refers to a page not in the segment".into(),
            ));
        }
        self.ids.push(id);
        self.chunks.push(rec);
        self.vectors.extend_from_slice(vector);
        Ok(())
    }

    /// Builds the graph and writes `dir/name` durably. Returns the file size.
    pub fn write(self, dir: &Path, name: &str, graph: GraphParams) -> Result<u64, StoreError> {
        let graph = hnsw::build(&self.vectors, self.dim, graph);
        let mut sections: Vec<(Kind, Vec<u8>)> = Vec::with_capacity(6);
        sections.push((
            Kind::Ids,
            self.ids.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
        let mut chunks = Vec::with_capacity(self.chunks.len() * CHUNK_REC);
        for c in &self.chunks {
            chunks.extend_from_slice(&c.doc_id.to_le_bytes());
            for v in [
                c.page_idx,
                c.page_no,
                c.byte_start,
                c.byte_end,
                c.char_start,
                c.char_end,
            ] {
                chunks.extend_from_slice(&v.to_le_bytes());
            }
            chunks.extend_from_slice(&c.hash);
        }
        sections.push((Kind::Chunks, chunks));
        let mut pages = Vec::with_capacity(self.pages.len() * PAGE_REC);
        for (off, len, no, ocr) in &self.pages {
            pages.extend_from_slice(&off.to_le_bytes());
            pages.extend_from_slice(&len.to_le_bytes());
            pages.extend_from_slice(&no.to_le_bytes());
            pages.extend_from_slice(&ocr.to_le_bytes());
        }
        sections.push((Kind::Pages, pages));
        sections.push((Kind::Text, self.text));
        sections.push((
            Kind::Vectors,
            self.vectors.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
        sections.push((
            Kind::Graph,
            graph.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));

        let mut header = vec![0u8; HEADER_LEN];
        header[0..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(self.dim as u32).to_le_bytes());
        header[16..24].copy_from_slice(&(self.ids.len() as u64).to_le_bytes());
        header[24..32].copy_from_slice(&(self.pages.len() as u64).to_le_bytes());
        header[32..36].copy_from_slice(&(sections.len() as u32).to_le_bytes());
        let mut off = HEADER_LEN as u64;
        for (i, (kind, bytes)) in sections.iter().enumerate() {
            off = off.div_ceil(64) * 64;
            let e = TABLE_AT + i * ENTRY_LEN;
            header[e..e + 4].copy_from_slice(&(*kind as u32).to_le_bytes());
            header[e + 4..e + 8].copy_from_slice(&crc32fast::hash(bytes).to_le_bytes());
            header[e + 8..e + 16].copy_from_slice(&off.to_le_bytes());
            header[e + 16..e + 24].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            off += bytes.len() as u64;
        }
        let crc = crc32fast::hash(&header[..HEADER_CRC_AT]);
        header[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());

        let path = dir.join(name);
        let tmp = super::fsutil::tmp_path(&path);
        let io = |e: std::io::Error| StoreError::io(&path, e);
        {
            let mut f = std::io::BufWriter::new(File::create(&tmp).map_err(io)?);
            f.write_all(&header).map_err(io)?;
            let mut pos = HEADER_LEN as u64;
            for (_, bytes) in &sections {
                let aligned = pos.div_ceil(64) * 64;
                f.write_all(&vec![0u8; (aligned - pos) as usize])
                    .map_err(io)?;
                f.write_all(bytes).map_err(io)?;
                pos = aligned + bytes.len() as u64;
            }
            let f = f.into_inner().map_err(|e| io(e.into_error()))?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        super::fsutil::fsync_dir(dir).map_err(io)?;
        Ok(off)
    }
}

#[derive(Clone, Copy, Debug)]
struct Section {
    crc: u32,
    off: usize,
    len: usize,
}

/// A mapped segment file.
pub struct Segment {
    name: String,
    path: PathBuf,
    mmap: Mmap,
    dim: usize,
    n: usize,
    n_pages: usize,
    sections: [Section; 6],
    graph: GraphLayout,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("chunks", &self.n)
            .finish()
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(not(target_endian = "little"))]
compile_error!("hort's segment files are little-endian and mapped directly");

impl Segment {
    /// Maps the segment `name` under `dir` and checks its checksum.
    pub fn open(dir: &Path, name: &str) -> Result<Segment, StoreError> {
        let path = dir.join(name);
        let corrupt = |m: String| StoreError::Corrupt(format!("{}: {m}", path.display()));
        let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
        // SAFETY: segment files are immutable once renamed into place; hort
        // never writes to a published segment, it only unlinks whole files.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| StoreError::io(&path, e))?;
        let b = &mmap[..];
        if b.len() < HEADER_LEN || &b[0..8] != MAGIC {
            return Err(corrupt("not a hort segment".into()));
        }
        if u32_at(b, HEADER_CRC_AT) != crc32fast::hash(&b[..HEADER_CRC_AT]) {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(corrupt(format!(
                "segment format {version}, this hort reads {VERSION}"
            )));
        }
        let dim = u32_at(b, 12) as usize;
        let n = u64_at(b, 16) as usize;
        let n_pages = u64_at(b, 24) as usize;
        let mut sections = [Section {
            crc: 0,
            off: 0,
            len: 0,
        }; 6];
        for (i, kind) in KINDS.iter().enumerate() {
            let e = TABLE_AT + i * ENTRY_LEN;
            if u32_at(b, e) != *kind as u32 {
                return Err(corrupt("section table out of order".into()));
            }
            let off = u64_at(b, e + 8) as usize;
            let len = u64_at(b, e + 16) as usize;
            if !off.is_multiple_of(64) || off.checked_add(len).is_none_or(|end| end > b.len()) {
                return Err(corrupt("section out of bounds".into()));
            }
            sections[i] = Section {
                crc: u32_at(b, e + 4),
                off,
                len,
            };
        }
        let want = [
            (Kind::Ids, n.checked_mul(8)),
            (Kind::Chunks, n.checked_mul(CHUNK_REC)),
            (Kind::Pages, n_pages.checked_mul(PAGE_REC)),
            (
                Kind::Vectors,
                n.checked_mul(dim).and_then(|x| x.checked_mul(4)),
            ),
        ];
        for (kind, len) in want {
            if Some(sections[kind as usize - 1].len) != len {
                return Err(corrupt(format!("{kind:?} section has the wrong size")));
            }
        }
        let mut seg = Segment {
            name: name.to_string(),
            path: path.clone(),
            mmap,
            dim,
            n,
            n_pages,
            sections,
            graph: GraphLayout::empty(),
        };
        for kind in [Kind::Ids, Kind::Chunks, Kind::Pages] {
            seg.check(kind)?;
        }
        if !seg.sections[Kind::Graph as usize - 1].len.is_multiple_of(4) {
            return Err(corrupt("graph section has the wrong size".into()));
        }
        seg.graph = GraphLayout::parse(seg.graph_words()).map_err(corrupt)?;
        if seg.graph.n != n {
            return Err(corrupt("graph and chunk counts differ".into()));
        }
        for w in seg.ids().windows(2) {
            if w[0] >= w[1] {
                return Err(corrupt("chunk ids are not increasing".into()));
            }
        }
        for p in 0..n_pages {
            let (off, len, _) = seg.page_entry(p);
            if off
                .checked_add(len)
                .is_none_or(|e| e > seg.section(Kind::Text).len())
            {
                return Err(corrupt("page outside the text section".into()));
            }
        }
        Ok(seg)
    }

    fn section(&self, kind: Kind) -> &[u8] {
        let s = self.sections[kind as usize - 1];
        &self.mmap[s.off..s.off + s.len]
    }

    fn check(&self, kind: Kind) -> Result<(), StoreError> {
        let s = self.sections[kind as usize - 1];
        if crc32fast::hash(self.section(kind)) != s.crc {
            return Err(StoreError::Corrupt(format!(
                "{}: {kind:?} section checksum mismatch",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Checks every section's checksum (reads the whole file).
    pub fn verify(&self) -> Result<(), StoreError> {
        for kind in KINDS {
            self.check(kind)?;
        }
        for i in 0..self.n {
            let c = self.chunk(i);
            self.chunk_text_checked(&c)?;
        }
        Ok(())
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Chunks in it.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Vector dimensions.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Pages in it.
    pub fn page_count(&self) -> usize {
        self.n_pages
    }

    /// Bytes of the data file.
    pub fn file_len(&self) -> usize {
        self.mmap.len()
    }

    /// Chunk ids, in row order.
    pub fn ids(&self) -> &[u64] {
        let s = self.section(Kind::Ids);
        // SAFETY: offset is 64-byte aligned in a page-aligned map, length is n*8.
        unsafe { std::slice::from_raw_parts(s.as_ptr() as *const u64, self.n) }
    }

    /// Position of a chunk id in this segment.
    pub fn local(&self, id: u64) -> Option<usize> {
        self.ids().binary_search(&id).ok()
    }

    /// The chunk at row `i`.
    pub fn chunk(&self, i: usize) -> ChunkRecord {
        let b = &self.section(Kind::Chunks)[i * CHUNK_REC..(i + 1) * CHUNK_REC];
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&b[32..48]);
        ChunkRecord {
            doc_id: u64_at(b, 0),
            page_idx: u32_at(b, 8),
            page_no: u32_at(b, 12),
            byte_start: u32_at(b, 16),
            byte_end: u32_at(b, 20),
            char_start: u32_at(b, 24),
            char_end: u32_at(b, 28),
            hash,
        }
    }

    fn page_entry(&self, p: usize) -> (usize, usize, u32) {
        let b = &self.section(Kind::Pages)[p * PAGE_REC..(p + 1) * PAGE_REC];
        (u64_at(b, 0) as usize, u64_at(b, 8) as usize, u32_at(b, 16))
    }

    /// The full text of a page (as stored after extraction and hygiene).
    pub fn page_text(&self, page_idx: u32) -> Result<&str, StoreError> {
        let p = page_idx as usize;
        if p >= self.n_pages {
            return Err(StoreError::Corrupt(format!(
                "{}: page {p} out of range",
                self.path.display()
            )));
        }
        let (off, len, _) = self.page_entry(p);
        std::str::from_utf8(&self.section(Kind::Text)[off..off + len]).map_err(|_| {
            StoreError::Corrupt(format!("{}: page {p} is not UTF-8", self.path.display()))
        })
    }

    /// OCR's confidence (0–100) if OCR read page record `page_idx`.
    pub fn page_ocr(&self, page_idx: u32) -> Option<f32> {
        if (page_idx as usize) >= self.n_pages {
            return None;
        }
        let b = &self.section(Kind::Pages)
            [page_idx as usize * PAGE_REC..(page_idx as usize + 1) * PAGE_REC];
        ocr_of_mark(u32_at(b, 20))
    }

    /// The page number of page record `page_idx`.
    pub fn page_no(&self, page_idx: u32) -> u32 {
        if (page_idx as usize) < self.n_pages {
            self.page_entry(page_idx as usize).2
        } else {
            0
        }
    }

    fn chunk_text_checked(&self, c: &ChunkRecord) -> Result<&str, StoreError> {
        let page = self.page_text(c.page_idx)?;
        page.get(c.byte_start as usize..c.byte_end as usize)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{}: chunk range outside its page",
                    self.path.display()
                ))
            })
    }

    /// The text of chunk `i`: exactly `page_text[start..end]`.
    pub fn chunk_text(&self, i: usize) -> Result<&str, StoreError> {
        self.chunk_text_checked(&self.chunk(i))
    }

    /// The vectors, row after row.
    pub fn vectors(&self) -> Vectors<'_> {
        let s = self.section(Kind::Vectors);
        // SAFETY: 64-byte aligned offset, length checked to be n*dim*4 at open.
        let data =
            unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, self.n * self.dim) };
        Vectors {
            data,
            dim: self.dim,
        }
    }

    fn graph_words(&self) -> &[u32] {
        let s = self.section(Kind::Graph);
        // SAFETY: 64-byte aligned offset, length checked to be a multiple of 4.
        unsafe { std::slice::from_raw_parts(s.as_ptr() as *const u32, s.len() / 4) }
    }

    /// The HNSW graph.
    pub fn graph(&self) -> Graph<'_> {
        Graph {
            data: self.graph_words(),
            layout: &self.graph,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(doc: u64, page_idx: u32, s: u32, e: u32) -> ChunkRecord {
        ChunkRecord {
            doc_id: doc,
            page_idx,
            page_no: page_idx + 1,
            byte_start: s,
            byte_end: e,
            char_start: s,
            char_end: e,
            hash: [7; 16],
        }
    }

    #[test]
    fn roundtrip_and_corruption_detection() {
        let d = tempfile::tempdir().unwrap();
        let mut b = SegmentBuilder::new(4);
        let p0 = b.add_page(1, "hello world");
        let p1 = b.add_page_ocr(2, "second page", Some(93.6));
        b.add_chunk(10, rec(1, p0, 0, 5), &[1.0, 0.0, 0.0, 0.0])
            .unwrap();
        b.add_chunk(11, rec(1, p1, 7, 11), &[0.0, 1.0, 0.0, 0.0])
            .unwrap();
        assert!(b.add_chunk(11, rec(1, p1, 0, 1), &[0.0; 4]).is_err());
        assert!(b.add_chunk(12, rec(1, p1, 0, 1), &[0.0; 3]).is_err());
        let params = GraphParams {
            m: 4,
            ef_construction: 8,
        };
        b.write(d.path(), "s.hseg", params).unwrap();
        let s = Segment::open(d.path(), "s.hseg").unwrap();
        assert_eq!(s.ids(), &[10, 11]);
        assert_eq!(s.local(11), Some(1));
        assert_eq!(s.chunk_text(0).unwrap(), "hello");
        assert_eq!(s.chunk_text(1).unwrap(), "page");
        assert_eq!(s.vectors().get(1), &[0.0, 1.0, 0.0, 0.0]);
        assert_eq!(s.page_no(p1), 2);
        assert_eq!((s.page_ocr(p0), s.page_ocr(p1)), (None, Some(94.0)));
        s.verify().unwrap();
        drop(s);

        // Flip one byte in the text section: open still works (lazy), verify catches it.
        let path = d.path().join("s.hseg");
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff; // last byte belongs to the graph section
        std::fs::write(&path, &bytes).unwrap();
        match Segment::open(d.path(), "s.hseg") {
            Ok(s) => assert!(s.verify().is_err()),
            Err(e) => assert!(e.to_string().contains("s.hseg")),
        }
        // Truncation is caught at open.
        std::fs::write(&path, &bytes[..300]).unwrap();
        assert!(Segment::open(d.path(), "s.hseg").is_err());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(Segment::open(d.path(), "s.hseg").is_err());
    }
}
