//! Text segmentation shared by the answerer, the citation checker and the
//! injection redactor.

/// Sentences of `text` as byte ranges (trimmed). Single line breaks are
/// read as spaces first (PDF text wraps lines mid-sentence); blank lines
/// still end a sentence. The ranges index `text` itself.
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    use unicode_segmentation::UnicodeSegmentation;
    let b = text.as_bytes();
    let joined: String = text
        .char_indices()
        .map(|(i, c)| {
            let lone = c == '\n'
                && (i == 0 || b[i - 1] != b'\n')
                && b.get(i + 1).is_none_or(|&n| n != b'\n');
            if lone {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = Vec::new();
    for (off, s) in joined.split_sentence_bound_indices() {
        let lead = s.len() - s.trim_start().len();
        let t = s.trim();
        if !t.is_empty() {
            out.push((off + lead, off + lead + t.len()));
        }
    }
    out
}

/// SHA-256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fills `buf` from the system's randomness (`/dev/urandom`), or says why
/// it could not. Callers decide what missing randomness means: refuse (keys,
/// sign-in secrets) or fall back (markers that only need to be unguessable
/// to documents).
pub fn system_random(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
