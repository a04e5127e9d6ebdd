//! Chunking: paragraph- and sentence-aware windows sized in model tokens.
//!
//! A page is cut into units (sentences within paragraphs; a sentence longer
//! than a chunk is cut at word boundaries, a word longer than a chunk at
//! character boundaries). Units are packed greedily up to `max_tokens`,
//! preferring to end at a paragraph; the next chunk repeats up to
//! `overlap_tokens` of trailing units. A chunk is always one contiguous range
//! of its page, so `page_text[start..end]` *is* the chunk text, and chunks
//! never cross pages. Nor is a chunk longer than [`BYTES_PER_TOKEN`] bytes a
//! token: a tokenizer may count a long run without breaks as one unknown
//! token (WordPiece does so for any word over 100 characters), which would
//! otherwise let one chunk hold a whole file of it.

use unicode_segmentation::UnicodeSegmentation;

/// How pages are cut into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkParams {
    /// The longest chunk in model tokens.
    pub max_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub overlap_tokens: usize,
    /// Whether chunks are embedded under their headings
    /// (`ingest::outline`); the stored text is the same either way.
    pub headings: bool,
}

impl ChunkParams {
    /// These settings for a model that reads at most `model_max` tokens
    /// (two of them its own markers): chunks never longer than it reads,
    /// overlap at most half a chunk. Ingest, the query-time screen and the
    /// injection bench cut text alike through this.
    pub fn within(self, model_max: usize) -> ChunkParams {
        let max = self.max_tokens.min(model_max.saturating_sub(2)).max(1);
        ChunkParams {
            max_tokens: max,
            overlap_tokens: self.overlap_tokens.min(max / 2),
            headings: self.headings,
        }
    }

    /// Identifies the chunking, so that an index chunked differently is
    /// redone (v2: the model reads what `headings` says).
    pub fn fingerprint(&self) -> String {
        format!(
            "v2;max={};overlap={};headings={}",
            self.max_tokens, self.overlap_tokens, self.headings
        )
    }
}

/// The most bytes a chunk holds per token it may have: about four times what
/// text in any script takes (English about 4 bytes a token, CJK about 3), so
/// only runs a tokenizer cannot read are cut by it.
pub const BYTES_PER_TOKEN: usize = 16;

/// A chunk of one page: byte and char (Unicode scalar) offsets, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Start of the chunk in bytes into the page.
    pub byte_start: usize,
    /// End in bytes.
    pub byte_end: usize,
    /// Start in characters (Unicode scalar values).
    pub char_start: usize,
    /// End in characters.
    pub char_end: usize,
    /// Model tokens in the chunk.
    pub tokens: usize,
}

#[derive(Clone, Copy, Debug)]
struct Unit {
    start: usize,
    end: usize,
    tokens: usize,
    para_start: bool,
}

/// Byte ranges of paragraphs (separated by lines that are blank).
fn paragraphs(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        match (blank, start) {
            (false, None) => start = Some(pos),
            (true, Some(s)) => {
                out.push((s, pos));
                start = None;
            }
            _ => {}
        }
        pos += line.len();
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// Trims whitespace from a byte range of `text`.
fn trim_range(text: &str, start: usize, end: usize) -> (usize, usize) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    (start + lead, end - trail.min(s.len() - lead))
}

#[allow(clippy::too_many_arguments)]
fn split_long(
    text: &str,
    start: usize,
    end: usize,
    max: usize,
    max_bytes: usize,
    count: &dyn Fn(&str) -> usize,
    out: &mut Vec<Unit>,
    para_start: bool,
) {
    // Words (with their trailing whitespace) as pieces.
    let mut pieces: Vec<(usize, usize, usize)> = Vec::new();
    for (off, word) in text[start..end].split_word_bound_indices() {
        let s = start + off;
        let e = s + word.len();
        if word.trim().is_empty() {
            if let Some(last) = pieces.last_mut() {
                last.1 = e;
            }
            continue;
        }
        let t = count(word);
        if t <= max && word.len() <= max_bytes {
            pieces.push((s, e, t));
            continue;
        }
        // A "word" longer than a chunk (base64, a URL, a table row without
        // spaces): cut at char boundaries in blocks counted separately.
        let mut bs = s;
        let mut bt = 0;
        let mut be = s;
        for (i, c) in word.char_indices() {
            let ce = s + i + c.len_utf8();
            if (ce - s).is_multiple_of(8) || ce == e {
                let block_tokens = count(&text[be..ce]).max(1);
                if (bt + block_tokens > max || ce - bs > max_bytes) && be > bs {
                    pieces.push((bs, be, bt));
                    bs = be;
                    bt = 0;
                }
                bt += block_tokens;
                be = ce;
            }
        }
        if be > bs {
            pieces.push((bs, be, bt));
        }
    }
    // Pack pieces into units of at most `max` tokens.
    let mut first = para_start;
    let mut i = 0;
    while i < pieces.len() {
        let (s, mut e, mut t) = pieces[i];
        let mut j = i + 1;
        while j < pieces.len() && t + pieces[j].2 <= max && pieces[j].1 - s <= max_bytes {
            t += pieces[j].2;
            e = pieces[j].1;
            j += 1;
        }
        let (s, e) = trim_range(text, s, e);
        if e > s {
            out.push(Unit {
                start: s,
                end: e,
                tokens: t,
                para_start: first,
            });
            first = false;
        }
        i = j;
    }
}

fn units(text: &str, max: usize, max_bytes: usize, count: &dyn Fn(&str) -> usize) -> Vec<Unit> {
    let mut out = Vec::new();
    for (ps, pe) in paragraphs(text) {
        let mut first = true;
        for (off, sentence) in text[ps..pe].split_sentence_bound_indices() {
            let (s, e) = trim_range(text, ps + off, ps + off + sentence.len());
            if e <= s {
                continue;
            }
            let t = count(&text[s..e]);
            if t <= max && e - s <= max_bytes {
                out.push(Unit {
                    start: s,
                    end: e,
                    tokens: t,
                    para_start: first,
                });
            } else {
                split_long(text, s, e, max, max_bytes, count, &mut out, first);
            }
            first = false;
        }
    }
    out
}

/// Cuts one page into chunks. `count` gives the model's token count of a text.
pub fn chunk_page(text: &str, p: ChunkParams, count: &dyn Fn(&str) -> usize) -> Vec<ChunkSpan> {
    let max = p.max_tokens.max(1);
    let overlap = p.overlap_tokens.min(max / 2);
    let max_bytes = max.saturating_mul(BYTES_PER_TOKEN);
    let units = units(text, max, max_bytes, count);
    let mut spans: Vec<(usize, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut j = i;
        let mut tokens = 0;
        while j < units.len()
            && (j == i
                || (tokens + units[j].tokens <= max && units[j].end - units[i].start <= max_bytes))
        {
            // End at a paragraph break once the chunk is reasonably full.
            if j > i && units[j].para_start && tokens * 4 >= max * 3 {
                break;
            }
            tokens += units[j].tokens;
            j += 1;
        }
        spans.push((units[i].start, units[j - 1].end, tokens));
        if j >= units.len() {
            break;
        }
        if units[j].para_start {
            // A paragraph is a natural boundary: start it fresh, no overlap.
            i = j;
            continue;
        }
        let mut k = j;
        let mut ov = 0;
        while k > i + 1 && ov + units[k - 1].tokens <= overlap {
            k -= 1;
            ov += units[k].tokens;
        }
        i = k;
    }
    with_char_offsets(text, spans)
}

/// Adds char offsets to byte ranges in one pass over the text.
fn with_char_offsets(text: &str, spans: Vec<(usize, usize, usize)>) -> Vec<ChunkSpan> {
    let mut marks: Vec<usize> = spans.iter().flat_map(|s| [s.0, s.1]).collect();
    marks.sort_unstable();
    marks.dedup();
    let mut map = std::collections::HashMap::with_capacity(marks.len());
    let mut next = 0usize;
    let ends = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()));
    for (chars, b) in ends.enumerate() {
        while next < marks.len() && marks[next] == b {
            map.insert(b, chars);
            next += 1;
        }
        if next >= marks.len() {
            break;
        }
    }
    spans
        .into_iter()
        .map(|(s, e, t)| ChunkSpan {
            byte_start: s,
            byte_end: e,
            char_start: map.get(&s).copied().unwrap_or(0),
            char_end: map.get(&e).copied().unwrap_or(0),
            tokens: t,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn check(text: &str, p: ChunkParams) -> Vec<ChunkSpan> {
        let spans = chunk_page(text, p, &words);
        for c in &spans {
            let by_bytes = &text[c.byte_start..c.byte_end];
            let by_chars: String = text
                .chars()
                .skip(c.char_start)
                .take(c.char_end - c.char_start)
                .collect();
            assert_eq!(by_bytes, by_chars, "byte and char offsets agree");
            assert!(!by_bytes.trim().is_empty());
            assert_eq!(by_bytes, by_bytes.trim(), "chunks are trimmed");
            assert!(c.tokens <= p.max_tokens, "{} > {}", c.tokens, p.max_tokens);
            assert!(by_bytes.len() <= p.max_tokens * BYTES_PER_TOKEN);
        }
        // Every non-whitespace character is in some chunk.
        let mut covered = vec![false; text.len()];
        for c in &spans {
            covered[c.byte_start..c.byte_end]
                .iter_mut()
                .for_each(|x| *x = true);
        }
        for (i, ch) in text.char_indices() {
            assert!(ch.is_whitespace() || covered[i], "char {i} {ch:?} lost");
        }
        spans
    }

    #[test]
    fn packs_sentences_with_overlap() {
        let text =
            "One two three. Four five six. Seven eight nine.\n\nTen eleven twelve. Thirteen.";
        let p = ChunkParams {
            max_tokens: 6,
            overlap_tokens: 3,
            headings: true,
        };
        let spans = check(text, p);
        let texts: Vec<&str> = spans
            .iter()
            .map(|c| &text[c.byte_start..c.byte_end])
            .collect();
        assert_eq!(
            texts,
            vec![
                "One two three. Four five six.",
                "Four five six. Seven eight nine.",
                "Ten eleven twelve. Thirteen."
            ]
        );
    }

    #[test]
    fn long_words_and_sentences_are_split() {
        let text = format!("{} end. {}", "word ".repeat(50), "x".repeat(5000));
        let spans = check(
            &text,
            ChunkParams {
                max_tokens: 10,
                overlap_tokens: 2,
                headings: true,
            },
        );
        assert!(spans.len() > 5);
    }

    /// A tokenizer that counts a long run as one unknown token (WordPiece
    /// over 100 characters) does not make the run one chunk.
    #[test]
    fn runs_a_tokenizer_counts_as_one_token_are_cut_by_bytes() {
        let text = format!("Intro words here.\n\n{}\n\nOutro.", "x".repeat(300_000));
        let one = |_: &str| 1;
        let p = ChunkParams {
            max_tokens: 100,
            overlap_tokens: 10,
            headings: true,
        };
        let spans = chunk_page(&text, p, &one);
        assert!(spans.len() >= 300_000 / 1_600, "{} chunks", spans.len());
        for c in &spans {
            assert!(c.byte_end - c.byte_start <= 1_600, "{c:?}");
        }
        let covered: usize = spans.iter().map(|c| c.byte_end - c.byte_start).sum();
        assert!(covered >= 300_000, "nothing lost");
        assert_eq!(
            &text[spans[0].byte_start..spans[0].byte_end],
            "Intro words here."
        );
    }

    #[test]
    fn multibyte_offsets() {
        let text = "Grüße aus Köln. Straße ist lang.\n\n東京は大きい。Ünïcödé!";
        check(
            text,
            ChunkParams {
                max_tokens: 3,
                overlap_tokens: 1,
                headings: true,
            },
        );
    }

    proptest! {
        #[test]
        fn offsets_are_exact(text in "[a-zäöü ßé.,!?\n東]{0,400}", max in 2usize..30, ov in 0usize..10) {
            check(&text, ChunkParams { max_tokens: max, overlap_tokens: ov.min(max / 2), headings: true });
        }
    }
}
