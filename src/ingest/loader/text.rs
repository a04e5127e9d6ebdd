//! Plain text and Markdown. Markdown is kept as written: citations point
//! into the file a person would open.

use super::{LoadError, LoadedDoc, Loader, Page};

/// Plain text and Markdown: UTF-8 (or Latin-1), one page.
pub struct TextLoader;

/// Decodes bytes: a BOM wins (UTF-8/UTF-16), then UTF-8, then Windows-1252,
/// the encoding of most legacy German and English office text.
/// Returns the text and a note when the encoding was guessed. Bytes that are
/// no text in any encoding are refused rather than indexed as mojibake: NUL
/// bytes (1 % of the file, as UTF-16 without a BOM or any binary format has),
/// or control characters text does not use (5 %; random or compressed bytes
/// have about 10 %, text none, except for the backspaces, escapes and form
/// feeds of terminal and printer output, which are not counted).
pub fn decode_text(bytes: &[u8]) -> Result<(String, Option<String>), LoadError> {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _, had_errors) = enc.decode(&bytes[bom..]);
        let note = had_errors.then(|| format!("invalid {} sequences replaced", enc.name()));
        return Ok((text.into_owned(), note));
    }
    let (mut nul, mut control) = (0usize, 0usize);
    for &b in bytes {
        nul += usize::from(b == 0);
        control += usize::from(matches!(b, 0..=7 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F | 0x7F));
    }
    if (nul > 0 && nul * 100 >= bytes.len()) || control * 20 >= bytes.len() {
        return Err(LoadError::Binary);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((s.to_string(), None)),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            Ok((
                text.into_owned(),
                Some("not valid UTF-8; decoded as Windows-1252".into()),
            ))
        }
    }
}

impl Loader for TextLoader {
    fn load(&self, bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Empty);
        }
        let (text, note) = decode_text(bytes)?;
        Ok(LoadedDoc {
            pages: vec![Page::new(None, text)],
            warnings: note.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(decode_text("grüße".as_bytes()).unwrap().0, "grüße");
        let latin1 = b"Gr\xfc\xdfe";
        let (t, note) = decode_text(latin1).unwrap();
        assert_eq!(t, "Grüße");
        assert!(note.is_some());
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("hi".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(decode_text(&utf16).unwrap().0, "hi");
        assert!(matches!(
            decode_text(b"\0\0\0\0abc"),
            Err(LoadError::Binary)
        ));
        assert!(matches!(TextLoader.load(b""), Err(LoadError::Empty)));
        // Compressed or random bytes: few NULs, many control characters.
        let mut x = 0x2545_f491_u32;
        let random: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .filter(|&b| b != 0)
            .collect();
        assert!(matches!(decode_text(&random), Err(LoadError::Binary)));
        // Terminal and printer output is text: colours, overstrike, pages.
        let man = "N\x08NA\x08AM\x08ME\x08E\n\x1b[1mls\x1b[0m \u{c}list files\n";
        assert_eq!(decode_text(man.as_bytes()).unwrap().0, man);
    }
}
