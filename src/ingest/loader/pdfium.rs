//! PDFium (the PDF engine of Chromium) bound at run time, for the few calls
//! hort needs: open a document from memory, read each page's text, and
//! render a page to grey pixels for OCR.
//!
//! The library is the `libpdfium.so` of a pinned wheel (`make models`), loaded
//! with `dlopen` like the ONNX runtime; hort links nothing at build time. A
//! dozen C functions do not justify a wrapper crate and its dependency tree.
//! Only ever called inside the PDF worker process: PDFium is C++ and a bad
//! file may crash it, which the process boundary turns into one `failed` line.

use std::ffi::{c_char, c_float, c_int, c_uint, c_ulong, c_void};
use std::path::Path;

type Doc = *mut c_void;
type PageH = *mut c_void;
type TextPage = *mut c_void;
type Bitmap = *mut c_void;

/// PDFium's error codes (`FPDF_GetLastError`).
const ERR_FILE: c_ulong = 2;
const ERR_FORMAT: c_ulong = 3;
const ERR_PASSWORD: c_ulong = 4;
const ERR_SECURITY: c_ulong = 5;

/// Why a document could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// A user password is needed.
    Encrypted,
    /// PDFium could not read the file (its error, in words).
    Unreadable(&'static str),
}

struct Api {
    init: unsafe extern "C" fn(),
    last_error: unsafe extern "C" fn() -> c_ulong,
    load_mem: unsafe extern "C" fn(*const c_void, usize, *const c_char) -> Doc,
    close_doc: unsafe extern "C" fn(Doc),
    page_count: unsafe extern "C" fn(Doc) -> c_int,
    load_page: unsafe extern "C" fn(Doc, c_int) -> PageH,
    close_page: unsafe extern "C" fn(PageH),
    text_load: unsafe extern "C" fn(PageH) -> TextPage,
    text_close: unsafe extern "C" fn(TextPage),
    text_count: unsafe extern "C" fn(TextPage) -> c_int,
    text_unicode: unsafe extern "C" fn(TextPage, c_int) -> c_uint,
    text_box:
        unsafe extern "C" fn(TextPage, c_int, *mut f64, *mut f64, *mut f64, *mut f64) -> c_int,
    text_generated: unsafe extern "C" fn(TextPage, c_int) -> c_int,
    page_width: unsafe extern "C" fn(PageH) -> c_float,
    page_height: unsafe extern "C" fn(PageH) -> c_float,
    bitmap_create: unsafe extern "C" fn(c_int, c_int, c_int) -> Bitmap,
    bitmap_fill: unsafe extern "C" fn(Bitmap, c_int, c_int, c_int, c_int, c_ulong) -> c_int,
    bitmap_buffer: unsafe extern "C" fn(Bitmap) -> *mut c_void,
    bitmap_stride: unsafe extern "C" fn(Bitmap) -> c_int,
    bitmap_destroy: unsafe extern "C" fn(Bitmap),
    render: unsafe extern "C" fn(Bitmap, PageH, c_int, c_int, c_int, c_int, c_int, c_int),
}

/// The loaded library, initialised once per (worker) process.
pub struct Pdfium {
    api: Api,
    // Keeps the symbols above valid; never unloaded before them.
    _lib: libloading::Library,
}

impl Pdfium {
    /// Loads and initialises the library at `path`.
    pub fn load(path: &Path) -> Result<Pdfium, String> {
        // SAFETY: loading a shared library runs its initialisers; this is the
        // pinned PDFium build (checked by hash when fetched), whose
        // initialisers only set up its own state.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("cannot load PDFium from {}: {e}", path.display()))?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the signatures match PDFium's public C headers
                // (fpdfview.h, fpdf_text.h), stable across its releases.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("PDFium at {} lacks {}: {e}", path.display(), $name))?
            };
        }
        let api = Api {
            init: sym!("FPDF_InitLibrary"),
            last_error: sym!("FPDF_GetLastError"),
            load_mem: sym!("FPDF_LoadMemDocument64"),
            close_doc: sym!("FPDF_CloseDocument"),
            page_count: sym!("FPDF_GetPageCount"),
            load_page: sym!("FPDF_LoadPage"),
            close_page: sym!("FPDF_ClosePage"),
            text_load: sym!("FPDFText_LoadPage"),
            text_close: sym!("FPDFText_ClosePage"),
            text_count: sym!("FPDFText_CountChars"),
            text_unicode: sym!("FPDFText_GetUnicode"),
            text_box: sym!("FPDFText_GetCharBox"),
            text_generated: sym!("FPDFText_IsGenerated"),
            page_width: sym!("FPDF_GetPageWidthF"),
            page_height: sym!("FPDF_GetPageHeightF"),
            bitmap_create: sym!("FPDFBitmap_Create"),
            bitmap_fill: sym!("FPDFBitmap_FillRect"),
            bitmap_buffer: sym!("FPDFBitmap_GetBuffer"),
            bitmap_stride: sym!("FPDFBitmap_GetStride"),
            bitmap_destroy: sym!("FPDFBitmap_Destroy"),
            render: sym!("FPDF_RenderPageBitmap"),
        };
        // SAFETY: called once, before any other PDFium call.
        unsafe { (api.init)() };
        Ok(Pdfium { api, _lib: lib })
    }

    /// Opens a document held in memory (which must outlive it).
    pub fn open<'a>(&'a self, bytes: &'a [u8]) -> Result<Document<'a>, OpenError> {
        // SAFETY: `bytes` outlives the document (lifetime 'a); the empty
        // password is a valid C string.
        let doc = unsafe { (self.api.load_mem)(bytes.as_ptr().cast(), bytes.len(), c"".as_ptr()) };
        if doc.is_null() {
            // SAFETY: plain query of the thread's last error.
            let code = unsafe { (self.api.last_error)() };
            return Err(match code {
                ERR_PASSWORD | ERR_SECURITY => OpenError::Encrypted,
                ERR_FORMAT => OpenError::Unreadable("not a PDF or damaged beyond repair"),
                ERR_FILE => OpenError::Unreadable("cannot read the file"),
                _ => OpenError::Unreadable("unknown error"),
            });
        }
        Ok(Document { pdfium: self, doc })
    }
}

/// An open document.
pub struct Document<'a> {
    pdfium: &'a Pdfium,
    doc: Doc,
}

impl Document<'_> {
    /// Number of pages.
    pub fn pages(&self) -> usize {
        // SAFETY: `doc` is open.
        unsafe { (self.pdfium.api.page_count)(self.doc) }.max(0) as usize
    }

    fn page(&self, i: usize) -> Option<PageGuard<'_>> {
        let index = c_int::try_from(i).ok()?;
        // SAFETY: `doc` is open; an index out of range gives null.
        let p = unsafe { (self.pdfium.api.load_page)(self.doc, index) };
        (!p.is_null()).then_some(PageGuard {
            api: &self.pdfium.api,
            page: p,
        })
    }

    /// The text of page `i` (from 0) in PDFium's reading order, one line
    /// per line of the page and a blank line where the gap to the next
    /// line is wider than a line (a paragraph break: the chunker cuts
    /// there first); `None` if the page cannot be loaded.
    pub fn text(&self, i: usize) -> Option<String> {
        let page = self.page(i)?;
        let api = &self.pdfium.api;
        // SAFETY: `page.page` is loaded.
        let tp = unsafe { (api.text_load)(page.page) };
        if tp.is_null() {
            return None;
        }
        let mut lines: Vec<Line> = vec![Line::default()];
        // SAFETY: `tp` is a loaded text page, indices within its count,
        // the box pointers point at locals; closed once after the loop.
        unsafe {
            let n = (api.text_count)(tp).max(0);
            for k in 0..n {
                let u = (api.text_unicode)(tp, k);
                let Some(c) = char::from_u32(u) else { continue };
                let line = lines.last_mut().expect("never empty");
                match c {
                    '\r' => continue,
                    '\n' => {
                        lines.push(Line::default());
                        continue;
                    }
                    _ => line.text.push(c),
                }
                if (api.text_generated)(tp, k) == 1 || c.is_whitespace() {
                    continue;
                }
                let (mut l, mut r, mut b, mut t) = (0.0, 0.0, 0.0, 0.0);
                if (api.text_box)(tp, k, &mut l, &mut r, &mut b, &mut t) != 0 && t > b {
                    line.bottom = line.bottom.min(b);
                    line.top = line.top.max(t);
                }
            }
            (api.text_close)(tp);
        }
        Some(clean(&join_lines(&lines)))
    }

    /// Page `i` rendered at `dpi` as 8-bit grey pixels (width, height,
    /// rows top to bottom), for OCR; `None` if it cannot be rendered or
    /// would exceed `max_pixels`.
    pub fn render_grey(
        &self,
        i: usize,
        dpi: f32,
        max_pixels: usize,
    ) -> Option<(usize, usize, Vec<u8>)> {
        let page = self.page(i)?;
        let api = &self.pdfium.api;
        // SAFETY: `page.page` is loaded.
        let (w_pt, h_pt) = unsafe { ((api.page_width)(page.page), (api.page_height)(page.page)) };
        if !(w_pt.is_finite() && h_pt.is_finite()) || w_pt <= 0.0 || h_pt <= 0.0 {
            return None;
        }
        let mut scale = dpi / 72.0;
        let area = (w_pt * scale) as f64 * (h_pt * scale) as f64;
        if area > max_pixels as f64 {
            scale *= (max_pixels as f64 / area).sqrt() as f32;
        }
        let (w, h) = (
            (w_pt * scale).round() as c_int,
            (h_pt * scale).round() as c_int,
        );
        if w <= 0 || h <= 0 {
            return None;
        }
        // SAFETY: a 4-byte BGRx bitmap of w × h, filled white, rendered
        // into, read within its stride, and destroyed.
        unsafe {
            let bm = (api.bitmap_create)(w, h, 0);
            if bm.is_null() {
                return None;
            }
            (api.bitmap_fill)(bm, 0, 0, w, h, 0xFFFF_FFFF);
            // Flags: FPDF_ANNOT (0x01) | FPDF_GRAYSCALE (0x08) | FPDF_PRINTING (0x800).
            (api.render)(bm, page.page, 0, 0, w, h, 0, 0x01 | 0x08 | 0x800);
            let stride = (api.bitmap_stride)(bm).max(0) as usize;
            let buf = (api.bitmap_buffer)(bm) as *const u8;
            let (wu, hu) = (w as usize, h as usize);
            if buf.is_null() || stride < wu * 4 {
                (api.bitmap_destroy)(bm);
                return None;
            }
            let data = std::slice::from_raw_parts(buf, stride * hu);
            let mut grey = Vec::with_capacity(wu * hu);
            for row in data.chunks_exact(stride) {
                for px in row[..wu * 4].chunks_exact(4) {
                    // BGRx to luma (ITU-R BT.601 weights, integer).
                    let l = (px[2] as u32 * 299 + px[1] as u32 * 587 + px[0] as u32 * 114) / 1000;
                    grey.push(l as u8);
                }
            }
            (api.bitmap_destroy)(bm);
            Some((wu, hu, grey))
        }
    }
}

impl Drop for Document<'_> {
    fn drop(&mut self) {
        // SAFETY: closed once; every page guard borrowed `self` and is gone.
        unsafe { (self.pdfium.api.close_doc)(self.doc) }
    }
}

/// One line of a page's text and the vertical extent of its glyphs (PDF
/// units, y upwards; empty if it has none).
struct Line {
    text: String,
    bottom: f64,
    top: f64,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            text: String::new(),
            bottom: f64::INFINITY,
            top: f64::NEG_INFINITY,
        }
    }
}

impl Line {
    fn height(&self) -> Option<f64> {
        (self.top > self.bottom).then_some(self.top - self.bottom)
    }
}

/// Lines joined with `\n`, and with a blank line where the next line
/// starts lower than a line height below this one (a paragraph gap) or
/// higher than this one (a new column or block).
fn join_lines(lines: &[Line]) -> String {
    let mut heights: Vec<f64> = lines.iter().filter_map(Line::height).collect();
    heights.sort_by(f64::total_cmp);
    let typical = heights.get(heights.len() / 2).copied().unwrap_or(0.0);
    let mut out = String::new();
    for (k, line) in lines.iter().enumerate() {
        if k > 0 {
            let prev = &lines[k - 1];
            let gap = match (prev.height(), line.height()) {
                (Some(_), Some(_)) => Some(prev.bottom - line.top),
                _ => None,
            };
            let paragraph = gap.is_some_and(|g| g > 0.8 * typical || line.top > prev.top + typical);
            out.push_str(if paragraph { "\n\n" } else { "\n" });
        }
        out.push_str(line.text.trim_end());
    }
    out
}

struct PageGuard<'a> {
    api: &'a Api,
    page: PageH,
}

impl Drop for PageGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: closed once, after its text page (closed in `text`).
        unsafe { (self.api.close_page)(self.page) }
    }
}

/// PDFium's text as hort stores it: `\r\n` line ends become `\n`, its
/// marker for a hyphen at a line break (U+0002) becomes `-`, and other
/// control characters (U+FFFE, NUL) are dropped.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\u{2}' => out.push('-'),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{clean, join_lines, Line};

    fn line(text: &str, bottom: f64, top: f64) -> Line {
        Line {
            text: text.into(),
            bottom,
            top,
        }
    }

    #[test]
    fn a_wide_gap_or_a_jump_up_is_a_paragraph() {
        let lines = [
            line("Title", 700.0, 712.0),
            line("first line", 686.0, 698.0),
            line("second line", 672.0, 684.0),
            line("after a gap", 640.0, 652.0),
            line("next column", 700.0, 712.0),
            line("", f64::INFINITY, f64::NEG_INFINITY),
            line("tail", 600.0, 612.0),
        ];
        assert_eq!(
            join_lines(&lines),
            "Title\nfirst line\nsecond line\n\nafter a gap\n\nnext column\n\ntail"
        );
    }

    #[test]
    fn line_ends_and_markers_are_normalised() {
        assert_eq!(clean("a\r\nb\rc\u{2}\r\nd\u{0}\u{FFFE}e"), "a\nb\nc-\nde");
    }
}
