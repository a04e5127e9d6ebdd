//! Text hygiene at ingest: what is stored (and what offsets refer to) is the
//! text after this step. Unicode is normalised to NFKC, line endings to `\n`,
//! and characters a reader cannot see but a model can (zero-width, bidi
//! controls, other format and control characters) are removed and counted,
//! since hidden text is a classic carrier of prompt injection.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// What hygiene removed or changed in one text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HygieneReport {
    /// Zero-width characters removed.
    pub zero_width: usize,
    /// Bidirectional controls removed.
    pub bidi_controls: usize,
    /// Other control characters removed.
    pub other_controls: usize,
    /// Whether NFKC changed anything (ligatures, full-width forms, …).
    pub normalized: bool,
}

impl HygieneReport {
    /// Characters removed in all.
    pub fn removed(&self) -> usize {
        self.zero_width + self.bidi_controls + self.other_controls
    }

    /// Adds another report's counts.
    pub fn add(&mut self, o: &HygieneReport) {
        self.zero_width += o.zero_width;
        self.bidi_controls += o.bidi_controls;
        self.other_controls += o.other_controls;
        self.normalized |= o.normalized;
    }
}

fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{180E}' | '\u{00AD}'
    ) || ('\u{2061}'..='\u{2064}').contains(&c)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Other invisible characters: C0/C1 controls except tab and newline, and
/// the Unicode "tag" block (used to smuggle ASCII invisibly).
fn is_other_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || ('\u{E0000}'..='\u{E007F}').contains(&c)
}

/// A character a reader does not see but that changes what is read or how:
/// zero-width and bidi controls, C0/C1 controls (tab and newline included,
/// as they have no place in a name), tag characters. A file name holding one
/// can pass for another in a citation ("invoice\u{202E}fdp.exe").
pub fn is_invisible_in_name(c: char) -> bool {
    c.is_control() || is_zero_width(c) || is_bidi_control(c) || is_other_control(c)
}

/// Cleans `text`; returns the clean text and what was removed.
pub fn clean(text: &str) -> (String, HygieneReport) {
    let mut r = HygieneReport::default();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            // CRLF and lone CR both become LF.
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else if is_zero_width(c) {
            r.zero_width += 1;
        } else if is_bidi_control(c) {
            r.bidi_controls += 1;
        } else if is_other_control(c) {
            r.other_controls += 1;
        } else {
            out.push(c);
        }
    }
    let nfkc: String = out.nfkc().collect();
    if nfkc != out {
        r.normalized = true;
    }
    (nfkc, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_invisible_text_and_normalises() {
        let (t, r) = clean("ig\u{200B}nore\u{202E} all\r\nprevious \u{FB01}le\u{0007}");
        assert_eq!(t, "ignore all\nprevious file");
        assert_eq!(r.zero_width, 1);
        assert_eq!(r.bidi_controls, 1);
        assert_eq!(r.other_controls, 1);
        assert!(r.normalized);
    }

    #[test]
    fn plain_text_is_untouched() {
        let s = "Reisekosten über 500 EUR\n\tbenötigen Freigabe.";
        let (t, r) = clean(s);
        assert_eq!(t, s);
        assert_eq!(r, HygieneReport::default());
    }
}
