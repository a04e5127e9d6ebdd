//! OCR for pages without text (scans, faxes, photographed contracts):
//! Tesseract's C API bound at run time, fed with pixels PDFium rendered, in
//! the parse worker process only.
//!
//! The library and its English and German models come from Debian's archive,
//! pinned (`make ocr`, into `<models_dir>/tesseract`). The worker is started
//! with that folder on its library path, so the library finds its own
//! dependencies there. One engine per worker, one thread (the worker runs
//! beside one per core already).

use std::ffi::{c_char, c_int, c_uchar, c_void, CStr, CString};
use std::path::{Path, PathBuf};

/// Where Tesseract is and what it reads.
#[derive(Clone, Debug)]
pub struct OcrSetup {
    /// The unpacked packages (`<models_dir>/tesseract`).
    pub dir: PathBuf,
    /// Tesseract languages, `+`-joined (`deu+eng`).
    pub languages: String,
    /// Rendering resolution for PDF pages.
    pub dpi: u32,
    /// Time after which a worker starts no more OCR in a file (half the
    /// file's time limit, so that what was read is kept).
    pub budget: std::time::Duration,
}

impl OcrSetup {
    /// The folder with the shared libraries (put on the worker's library path).
    pub fn lib_dir(&self) -> PathBuf {
        self.dir.join("usr/lib/x86_64-linux-gnu")
    }

    fn tessdata(&self) -> PathBuf {
        self.dir.join("usr/share/tesseract-ocr/5/tessdata")
    }

    /// Whether every file OCR needs is there (its libraries, a model for
    /// each language): checked without loading anything, so `hort status`
    /// can say it too.
    pub fn installed(&self) -> bool {
        [LEPTONICA, TESSERACT]
            .iter()
            .all(|lib| self.lib_dir().join(lib).is_file())
            && self.missing_language().is_none()
    }

    /// The first language without a model, as the message to show.
    fn missing_language(&self) -> Option<String> {
        self.languages.split('+').find_map(|l| {
            (!self.tessdata().join(format!("{l}.traineddata")).is_file()).then(|| {
                format!(
                    "OCR unavailable: no model for language {l:?} in {} (run `make ocr`)",
                    self.tessdata().display()
                )
            })
        })
    }
}

/// The libraries OCR loads, in the order it loads them.
const LEPTONICA: &str = "liblept.so.5";
const TESSERACT: &str = "libtesseract.so.5";

/// Text recognised on one page, with Tesseract's mean word confidence (0–100).
#[derive(Debug, Clone, PartialEq)]
pub struct Recognised {
    /// The text.
    pub text: String,
    /// Mean confidence of its words, 0–100.
    pub confidence: f32,
}

type Handle = *mut c_void;
/// Leptonica's image (`PIX *`).
type Pix = *mut c_void;

struct Api {
    create: unsafe extern "C" fn() -> Handle,
    init3: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    set_image: unsafe extern "C" fn(Handle, *const c_uchar, c_int, c_int, c_int, c_int),
    set_resolution: unsafe extern "C" fn(Handle, c_int),
    utf8_text: unsafe extern "C" fn(Handle) -> *mut c_char,
    mean_conf: unsafe extern "C" fn(Handle) -> c_int,
    delete_text: unsafe extern "C" fn(*const c_char),
    clear: unsafe extern "C" fn(Handle),
    end: unsafe extern "C" fn(Handle),
    delete: unsafe extern "C" fn(Handle),
    set_image2: unsafe extern "C" fn(Handle, Pix),
    read_mem: unsafe extern "C" fn(*const c_uchar, usize) -> Pix,
    read_mem_tiff: unsafe extern "C" fn(*const c_uchar, usize, c_int) -> Pix,
    width: unsafe extern "C" fn(Pix) -> c_int,
    height: unsafe extern "C" fn(Pix) -> c_int,
    x_res: unsafe extern "C" fn(Pix) -> c_int,
    scale: unsafe extern "C" fn(Pix, f32, f32) -> Pix,
    destroy: unsafe extern "C" fn(*mut Pix),
}

/// A decoded picture, freed when dropped.
pub struct Picture<'a> {
    pix: Pix,
    api: &'a Api,
}

impl Drop for Picture<'_> {
    fn drop(&mut self) {
        // SAFETY: a PIX this module created and owns; destroyed once.
        unsafe { (self.api.destroy)(&mut self.pix) }
    }
}

/// The most pages read from one TIFF (a fax is a few; a TIFF claiming
/// thousands is more likely hostile than a document).
const MAX_TIFF_PAGES: c_int = 2_000;

/// An initialised Tesseract engine.
pub struct Ocr {
    api: Api,
    handle: Handle,
    _tess: libloading::Library,
    _lept: libloading::Library,
}

impl Ocr {
    /// Loads the library and the languages of `setup`.
    pub fn load(setup: &OcrSetup) -> Result<Ocr, String> {
        let lib = setup.lib_dir();
        let open = |name: &str| {
            let p = lib.join(name);
            // SAFETY: the pinned Debian build of the library; its
            // initialisers set up only its own state.
            unsafe { libloading::Library::new(&p) }.map_err(|e| {
                format!(
                    "OCR unavailable: cannot load {}: {e} (run `make ocr`)",
                    p.display()
                )
            })
        };
        // Leptonica first, so that a missing piece is named as such.
        let lept = open(LEPTONICA)?;
        let tess = open(TESSERACT)?;
        macro_rules! sym {
            ($lib:expr, $name:literal) => {
                // SAFETY: the signatures match Tesseract's capi.h and
                // Leptonica's allheaders.h.
                *unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("OCR unavailable: {} missing: {e}", $name))?
            };
        }
        let api = Api {
            create: sym!(tess, "TessBaseAPICreate"),
            init3: sym!(tess, "TessBaseAPIInit3"),
            set_image: sym!(tess, "TessBaseAPISetImage"),
            set_resolution: sym!(tess, "TessBaseAPISetSourceResolution"),
            utf8_text: sym!(tess, "TessBaseAPIGetUTF8Text"),
            mean_conf: sym!(tess, "TessBaseAPIMeanTextConf"),
            delete_text: sym!(tess, "TessDeleteText"),
            clear: sym!(tess, "TessBaseAPIClear"),
            end: sym!(tess, "TessBaseAPIEnd"),
            delete: sym!(tess, "TessBaseAPIDelete"),
            set_image2: sym!(tess, "TessBaseAPISetImage2"),
            read_mem: sym!(lept, "pixReadMem"),
            read_mem_tiff: sym!(lept, "pixReadMemTiff"),
            width: sym!(lept, "pixGetWidth"),
            height: sym!(lept, "pixGetHeight"),
            x_res: sym!(lept, "pixGetXRes"),
            scale: sym!(lept, "pixScale"),
            destroy: sym!(lept, "pixDestroy"),
        };
        let data = cstr(&setup.tessdata())?;
        let langs = CString::new(setup.languages.as_str())
            .map_err(|_| "OCR languages contain a NUL byte".to_string())?;
        if let Some(why) = setup.missing_language() {
            return Err(why);
        }
        // SAFETY: a fresh handle, initialised once with valid C strings;
        // deleted in Drop (or here on failure).
        let handle = unsafe {
            let h = (api.create)();
            if h.is_null() {
                return Err("OCR unavailable: Tesseract could not start".into());
            }
            if (api.init3)(h, data.as_ptr(), langs.as_ptr()) != 0 {
                (api.delete)(h);
                return Err(format!(
                    "OCR unavailable: Tesseract could not load {:?}",
                    setup.languages
                ));
            }
            h
        };
        Ok(Ocr {
            api,
            handle,
            _tess: tess,
            _lept: lept,
        })
    }

    /// Recognises 8-bit grey pixels (rows top to bottom) scanned at `dpi`.
    pub fn grey(&self, width: usize, height: usize, pixels: &[u8], dpi: u32) -> Option<Recognised> {
        let (w, h) = (c_int::try_from(width).ok()?, c_int::try_from(height).ok()?);
        if pixels.len() != width.checked_mul(height)? || w == 0 || h == 0 {
            return None;
        }
        // SAFETY: the buffer holds w × h bytes, one per pixel, rows of
        // `w` bytes; Tesseract reads it during recognition, within this call.
        unsafe {
            (self.api.set_image)(self.handle, pixels.as_ptr(), w, h, 1, w);
            (self.api.set_resolution)(self.handle, dpi as c_int);
        }
        self.recognise()
    }

    /// Decodes a PNG, JPEG or TIFF (every page of a TIFF) with Leptonica.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<Picture<'_>>, String> {
        let tiff = bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*");
        let mut out = Vec::new();
        // SAFETY: Leptonica reads `bytes.len()` bytes from the slice and
        // returns a new PIX or NULL; each PIX is owned by a Picture.
        unsafe {
            if tiff {
                for n in 0..MAX_TIFF_PAGES {
                    let p = (self.api.read_mem_tiff)(bytes.as_ptr(), bytes.len(), n);
                    if p.is_null() {
                        break;
                    }
                    out.push(Picture {
                        pix: p,
                        api: &self.api,
                    });
                }
            } else {
                let p = (self.api.read_mem)(bytes.as_ptr(), bytes.len());
                if !p.is_null() {
                    out.push(Picture {
                        pix: p,
                        api: &self.api,
                    });
                }
            }
        }
        if out.is_empty() {
            return Err("the image cannot be decoded (damaged, or not PNG, JPEG or TIFF)".into());
        }
        Ok(out)
    }

    /// Recognises a decoded picture, scaled down to at most `max_pixels`.
    pub fn picture(&self, pic: Picture<'_>, max_pixels: usize) -> Option<Recognised> {
        // SAFETY: `pic` holds a valid PIX; a scaled copy is owned by a new
        // Picture; Tesseract reads the image within this call.
        unsafe {
            let (w, h) = ((self.api.width)(pic.pix), (self.api.height)(pic.pix));
            if w <= 0 || h <= 0 {
                return None;
            }
            let px = w as f64 * h as f64;
            let mut res = (self.api.x_res)(pic.pix);
            let pic = if px > max_pixels as f64 {
                let f = (max_pixels as f64 / px).sqrt() as f32;
                let p = (self.api.scale)(pic.pix, f, f);
                if p.is_null() {
                    return None;
                }
                res = (res as f32 * f) as c_int;
                Picture {
                    pix: p,
                    api: &self.api,
                }
            } else {
                pic
            };
            (self.api.set_image2)(self.handle, pic.pix);
            // Files without a resolution: assume a 300 dpi scan.
            (self.api.set_resolution)(self.handle, if res >= 70 { res } else { 300 });
            self.recognise()
        }
    }

    fn recognise(&self) -> Option<Recognised> {
        // SAFETY: an image is set; the returned text is freed with
        // TessDeleteText, and the engine is cleared for the next image.
        unsafe {
            let t = (self.api.utf8_text)(self.handle);
            let conf = (self.api.mean_conf)(self.handle);
            let text = if t.is_null() {
                String::new()
            } else {
                let s = CStr::from_ptr(t).to_string_lossy().into_owned();
                (self.api.delete_text)(t);
                s
            };
            (self.api.clear)(self.handle);
            Some(Recognised {
                text: tidy(&text),
                confidence: conf.clamp(0, 100) as f32,
            })
        }
    }
}

impl Drop for Ocr {
    fn drop(&mut self) {
        // SAFETY: ended and deleted once.
        unsafe {
            (self.api.end)(self.handle);
            (self.api.delete)(self.handle);
        }
    }
}

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{} contains a NUL byte", p.display()))
}

/// Tesseract's text as hort stores it: form feeds gone, lines trimmed, at
/// most one blank line between paragraphs.
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    super::tidy(&s.replace('\u{c}', ""), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn paragraphs_survive_and_noise_goes() {
        assert_eq!(
            tidy("Title  \n\n\n\nFirst line\nsecond\n\u{c}"),
            "Title\n\nFirst line\nsecond"
        );
    }
}
