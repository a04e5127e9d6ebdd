//! A document's outline: which headings each chunk sits under.
//!
//! A chunk cut from the middle of a section often does not say what the
//! section is about ("The limit is 190 euros a night." — for what?). The
//! model therefore reads each chunk under its heading path ("Travel policy >
//! Hotels"); the stored text, its offsets and its citations stay the page's
//! own. Headings come from the format where it marks them (Word styles,
//! HTML `h1`–`h6`, ODF headings, a mail's subject; see
//! [`super::loader::Page::headings`]) and from the text itself for Markdown
//! and plain text. PDFs mark none.

use super::chunk::ChunkSpan;
use super::loader::{FileKind, Heading};

/// The longest title a plain text's first line can be, in characters.
const TITLE_CHARS: usize = 200;

/// The most headings a chunk is read under (the nearest ones are kept).
pub const MAX_DEPTH: usize = 4;

/// A heading found in a page's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Index of the page in the document.
    pub page: usize,
    /// Byte offset in the page's text.
    pub offset: usize,
    /// 0 for the title, 1–9 for section levels.
    pub level: u8,
    /// The heading's text.
    pub text: String,
}

/// The headings a text of `kind` carries in its own characters: Markdown's
/// `#` lines and underlined lines; a plain text's title.
pub fn from_text(kind: FileKind, text: &str) -> Vec<Heading> {
    match kind {
        FileKind::Markdown => markdown(text),
        FileKind::Text => plain_title(text).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Markdown headings: ATX (`## Hotels`, closing `#`s dropped) and setext (a
/// line underlined with `=` or `-`), outside fenced code blocks.
pub fn markdown(text: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    let mut prev: Option<&str> = None;
    let mut lines = text.lines().peekable();
    // YAML front matter (`---` … `---` at the very start) is metadata, and
    // its last line would read as an underlined heading.
    if lines.peek().is_some_and(|l| l.trim_end() == "---") {
        lines.next();
        for l in lines.by_ref() {
            if matches!(l.trim_end(), "---" | "...") {
                break;
            }
        }
    }
    for line in lines {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if indent <= 3 && (t.starts_with("```") || t.starts_with("~~~")) {
            let mark = &t[..3];
            fence = match fence {
                Some(m) if m == mark => None,
                None => Some(mark),
                open => open,
            };
            prev = None;
            continue;
        }
        if fence.is_some() {
            continue;
        }
        if indent <= 3 {
            let hashes = t.bytes().take_while(|&b| b == b'#').count();
            let rest = &t[hashes..];
            if (1..=6).contains(&hashes) && (rest.is_empty() || rest.starts_with([' ', '\t'])) {
                let body = rest.trim().trim_end_matches('#').trim_end();
                out.extend(Heading::new(hashes as u8, body));
                prev = None;
                continue;
            }
            let under = t.trim_end();
            if let Some(p) = prev {
                let level = if !under.is_empty() && under.bytes().all(|b| b == b'=') {
                    Some(1)
                } else if under.len() >= 2 && under.bytes().all(|b| b == b'-') {
                    Some(2)
                } else {
                    None
                };
                if let Some(l) = level {
                    out.extend(Heading::new(l, p));
                    prev = None;
                    continue;
                }
            }
        }
        let blank = t.trim().is_empty();
        // Only a paragraph's single line can be underlined into a heading
        // (a list item or quote underlined with dashes is a rule).
        prev = (!blank && indent <= 3 && !t.starts_with(['-', '*', '+', '>', '|'])).then_some(t);
    }
    out
}

/// A plain text's title: its first paragraph when that is one short line
/// and more text follows (a heading line, as in a report or an abstract).
pub fn plain_title(text: &str) -> Option<Heading> {
    let text = text.trim_start();
    let (first, rest) = split_paragraph(text);
    let line = first.trim();
    if line.contains('\n') || line.chars().count() > TITLE_CHARS || rest.trim().is_empty() {
        return None;
    }
    Heading::new(0, line)
}

/// The first paragraph of `text` and the rest (after the blank line).
fn split_paragraph(text: &str) -> (&str, &str) {
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() && pos > 0 {
            return (&text[..pos], &text[pos..]);
        }
        pos += line.len();
    }
    (text, "")
}

/// Finds `headings` in `text` (the page after cleaning), in order; one not
/// found (cleaning changed it) is left out.
pub fn locate(page: usize, text: &str, headings: &[Heading], out: &mut Vec<Placed>) {
    let mut from = 0;
    for h in headings {
        if let Some(at) = find_words(text, from, &h.text) {
            out.push(Placed {
                page,
                offset: at,
                level: h.level,
                text: h.text.clone(),
            });
            from = at + 1;
        }
    }
}

/// Where the words of `needle` occur in `hay` at or after byte `from`,
/// separated by any whitespace.
fn find_words(hay: &str, from: usize, needle: &str) -> Option<usize> {
    let words: Vec<&str> = needle.split_whitespace().collect();
    let first = *words.first()?;
    let mut start = from;
    while let Some(i) = hay.get(start..)?.find(first) {
        let at = start + i;
        let mut pos = at + first.len();
        let ok = words[1..].iter().all(|w| {
            let rest = &hay[pos..];
            let trimmed = rest.trim_start();
            let gap = rest.len() - trimmed.len();
            if gap > 0 && trimmed.starts_with(w) {
                pos += gap + w.len();
                true
            } else {
                false
            }
        });
        if ok {
            return Some(at);
        }
        start = at + first.len();
    }
    None
}

/// The heading path each chunk is read under: for each span (in page and
/// offset order), the nearest heading of each level that starts before it,
/// outermost first (at most [`MAX_DEPTH`], the nearest kept); empty where
/// none does. A heading that repeats the one above it (an HTML title and
/// its `h1`) counts once.
pub fn contexts<'a>(placed: &'a [Placed], spans: &[(usize, ChunkSpan)]) -> Vec<Vec<&'a str>> {
    let mut stack: Vec<(u8, &str)> = Vec::new();
    let mut next = 0;
    spans
        .iter()
        .map(|(page, s)| {
            while let Some(h) = placed.get(next) {
                if (h.page, h.offset) >= (*page, s.byte_start) {
                    break;
                }
                stack.retain(|&(l, _)| l < h.level);
                if stack
                    .last()
                    .is_none_or(|&(_, t)| !t.eq_ignore_ascii_case(&h.text))
                {
                    stack.push((h.level, &h.text));
                }
                next += 1;
            }
            let from = stack.len().saturating_sub(MAX_DEPTH);
            stack[from..].iter().map(|&(_, t)| t).collect()
        })
        .collect()
}

/// What the model reads for a chunk under `context`: the headings, a blank
/// line, the chunk; and where the chunk starts in it.
pub fn embedding_input(context: &str, chunk: &str) -> (String, usize) {
    if context.is_empty() {
        return (chunk.to_string(), 0);
    }
    let text = format!("{context}\n\n{chunk}");
    let body = text.len() - chunk.len();
    (text, body)
}

/// The heading `path` as the model reads it ("Policy > Hotels"), cut from
/// the outside in (the title first) until `count` says it fits in `room`
/// tokens; empty if not even the nearest heading does.
pub fn fit(path: &[&str], room: usize, count: &dyn Fn(&str) -> usize) -> String {
    for from in 0..path.len() {
        let c = path[from..].join(" > ");
        if count(&c) + 2 <= room {
            return c;
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(level: u8, text: &str) -> Heading {
        Heading::new(level, text).unwrap()
    }

    fn span(byte_start: usize) -> ChunkSpan {
        ChunkSpan {
            byte_start,
            byte_end: byte_start + 1,
            char_start: byte_start,
            char_end: byte_start + 1,
            tokens: 1,
        }
    }

    #[test]
    fn markdown_headings_outside_code() {
        let t = "# Reisen\n\nText.\n\n## Hotels ##\n\n```\n# not a heading\n```\n\nUnter\n=====\n\nZweite\n---\n\n- item\n---\n#hashtag\n";
        assert_eq!(
            markdown(t),
            vec![
                h(1, "Reisen"),
                h(2, "Hotels"),
                h(1, "Unter"),
                h(2, "Zweite")
            ]
        );
    }

    #[test]
    fn front_matter_is_not_a_heading() {
        let t = "---\ntitle: Reisen\ntags: [a]\n---\n\n# Reisen\n\nText\n\n---\n";
        assert_eq!(markdown(t), vec![h(1, "Reisen")]);
    }

    #[test]
    fn plain_text_title_only_when_it_looks_like_one() {
        assert_eq!(
            plain_title("\nA study of X\n\nWe measured X in 40 patients."),
            Some(h(0, "A study of X"))
        );
        // One paragraph only, or a first paragraph of several lines: no title.
        assert_eq!(plain_title("Just one line."), None);
        assert_eq!(plain_title("Dear Anna,\nthanks.\n\nBest"), None);
        assert_eq!(plain_title(&format!("{}\n\nrest", "x".repeat(300))), None);
    }

    #[test]
    fn headings_are_found_after_cleaning_changed_their_spacing() {
        let text = "Title\n\nReise   kosten\nbody text\n\nHotels";
        let mut out = Vec::new();
        locate(
            0,
            text,
            &[
                h(0, "Title"),
                h(1, "Reise kosten"),
                h(2, "Missing"),
                h(2, "Hotels"),
            ],
            &mut out,
        );
        let got: Vec<(usize, &str)> = out.iter().map(|p| (p.offset, p.text.as_str())).collect();
        assert_eq!(got, vec![(0, "Title"), (7, "Reise kosten"), (33, "Hotels")]);
    }

    #[test]
    fn each_chunk_gets_the_headings_before_it() {
        let placed = |page, offset, level, text: &str| Placed {
            page,
            offset,
            level,
            text: text.into(),
        };
        let p = vec![
            placed(0, 0, 0, "Policy"),
            placed(0, 10, 1, "Policy"),
            placed(0, 50, 1, "Travel"),
            placed(0, 80, 2, "Hotels"),
            placed(1, 0, 1, "IT"),
        ];
        let spans = vec![
            (0, span(0)),
            (0, span(20)),
            (0, span(80)),
            (0, span(90)),
            (1, span(5)),
        ];
        let joined: Vec<String> = contexts(&p, &spans)
            .iter()
            .map(|path| path.join(" > "))
            .collect();
        assert_eq!(
            joined,
            vec![
                "",
                // The title and an h1 repeating it count once.
                "Policy",
                // A chunk that starts with a heading is read under its parents.
                "Policy > Travel",
                "Policy > Travel > Hotels",
                // A new section at its level closes the one before.
                "Policy > IT",
            ]
        );
    }

    #[test]
    fn context_is_cut_from_the_title_down_to_fit() {
        let words = |s: &str| s.split_whitespace().count();
        let path = ["A b", "C d", "E"];
        assert_eq!(fit(&path, 10, &words), "A b > C d > E");
        assert_eq!(fit(&path, 6, &words), "C d > E");
        assert_eq!(fit(&path, 2, &words), "");
        assert_eq!(fit(&[], 10, &words), "");
        // A heading's own " > " stays within it.
        assert_eq!(fit(&["x > y", "z"], 3, &words), "z");
        let (text, body) = embedding_input("A > B", "chunk");
        assert_eq!(&text[body..], "chunk");
        assert_eq!(embedding_input("", "chunk"), ("chunk".to_string(), 0));
    }
}
