//! Citation checking. The model is asked to cite `[n]`; afterwards every
//! `[n]` must name a source that was sent (and that the asker may see),
//! quoted text must occur in the cited source, and each sentence should be
//! supported by what it cites. Citations that fail are removed and counted;
//! unsupported sentences and quotes are reported. Each citation in the
//! response points to the exact sentence of the source (document, page,
//! character offsets).

use std::sync::LazyLock;

use super::extractive::same_word;
use super::prompt::{content_words, sentence_spans};
use regex::Regex;
use serde::Serialize;

/// How much of `claim_words` a source sentence contains (for picking the quote).
fn sentence_support_score(claim_words: &[String], sentence: &str) -> f32 {
    let words = content_words(sentence);
    let hit = claim_words
        .iter()
        .filter(|c| words.iter().any(|w| same_word(w, c)))
        .count();
    hit as f32 / (1.0 + words.len() as f32 / 40.0)
}
use crate::retrieve::Hit;

/// A source as it was sent: its number, the hit it came from, and the text
/// the model saw (the hit's text, or less of it if injected sentences were cut).
#[derive(Clone, Debug)]
pub struct Sent {
    /// The source's number in the prompt (`[n]`).
    pub n: usize,
    /// The hit it came from.
    pub hit: Hit,
    /// The text the model saw.
    pub text: String,
}

impl Sent {
    /// A source sent with the whole text of its hit.
    pub fn new(n: usize, hit: Hit) -> Sent {
        let text = hit.text.clone();
        Sent { n, hit, text }
    }
}

/// A verified citation: the source and the sentence of it that supports the answer.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Citation {
    /// The source's number in the answer.
    pub n: usize,
    /// The cited document.
    pub doc: String,
    /// The page, for formats with pages.
    pub page: Option<u32>,
    /// Character offsets of the supporting sentence in the page text.
    pub start: u32,
    /// End of the supporting sentence (characters into the page).
    pub end: u32,
    /// The cited chunk.
    pub chunk_id: String,
    /// The supporting sentence.
    pub quote: String,
    /// OCR's confidence (0–100) when the cited page was read by OCR: the
    /// quote is what OCR read, to be checked against the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr_confidence: Option<f32>,
}

/// A citation taken out of the answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Removed {
    /// The number the answer cited.
    pub n: usize,
    /// Why it was removed (no such source was sent, or the asker may not see it).
    pub reason: String,
}

/// An answer after its citations were checked.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Verified {
    /// The answer, with bad citations removed.
    pub answer: String,
    /// The citations that hold.
    pub citations: Vec<Citation>,
    /// The citations removed, with reasons.
    pub removed: Vec<Removed>,
    /// Sentences with no citation, or whose citations do not support them.
    pub unsupported: Vec<String>,
    /// Quoted text not found in the cited sources.
    pub bad_quotes: Vec<String>,
}

static CITE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]").unwrap_or_else(|e| panic!("{e}"))
});
static QUOTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""([^"\n]{12,400})"|“([^”\n]{12,400})”|„([^“”\n]{12,400})[“”]"#)
        .unwrap_or_else(|e| panic!("{e}"))
});

fn squash(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Share of `sentence`'s content words found in `source`.
fn support(sentence: &str, source: &str) -> f32 {
    let words = content_words(sentence);
    if words.is_empty() {
        return 1.0;
    }
    let src = content_words(source);
    let found = words
        .iter()
        .filter(|w| src.iter().any(|s| same_word(s, w)))
        .count();
    found as f32 / words.len() as f32
}

/// Below this share of supported words a cited sentence is reported.
pub const MIN_SUPPORT: f32 = 0.3;

/// Checks `answer` against the sources sent.
pub fn verify(answer: &str, sent: &[Sent], visible: impl Fn(&Hit) -> bool) -> Verified {
    let mut v = Verified::default();
    let source = |n: usize| sent.iter().find(|s| s.n == n);
    // 1. Remove citations of sources that were not sent or may not be seen.
    let cleaned = CITE.replace_all(answer, |caps: &regex::Captures<'_>| {
        let mut keep = Vec::new();
        for part in caps[1].split(',') {
            let Ok(n) = part.trim().parse::<usize>() else {
                continue;
            };
            match source(n) {
                None => v.removed.push(Removed {
                    n,
                    reason: format!("no source [{n}] was sent"),
                }),
                Some(s) if !visible(&s.hit) => v.removed.push(Removed {
                    n,
                    reason: "the asker may not see this source".into(),
                }),
                Some(_) => keep.push(n),
            }
        }
        keep.iter().map(|n| format!("[{n}]")).collect::<String>()
    });
    let answer = cleaned
        .replace(" .", ".")
        .replace("  ", " ")
        .trim()
        .to_string();
    // 2. Sentence support and quotes. A citation standing after the full
    // stop ("… CFO. [1]") belongs to the sentence before it.
    let mut sentences: Vec<String> = Vec::new();
    for (a, b) in sentence_spans(&answer) {
        let mut s = &answer[a..b];
        // Leading citations ("[1] Next sentence") close the previous sentence.
        while let Some(m) = CITE.find(s).filter(|m| m.start() == 0) {
            if let Some(prev) = sentences.last_mut() {
                prev.push(' ');
                prev.push_str(m.as_str());
            }
            s = s[m.end()..].trim_start();
        }
        if s.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
            .is_empty()
        {
            continue;
        }
        sentences.push(s.to_string());
    }
    let mut used: Vec<(usize, String)> = Vec::new();
    for s in &sentences {
        let s = s.as_str();
        let ns: Vec<usize> = CITE
            .captures_iter(s)
            .flat_map(|c| {
                c[1].split(',')
                    .filter_map(|p| p.trim().parse().ok())
                    .collect::<Vec<usize>>()
            })
            .collect();
        let plain = CITE.replace_all(s, "").trim().to_string();
        if content_words(&plain).len() >= 2 {
            if ns.is_empty() {
                v.unsupported.push(plain.clone());
            } else {
                let best = ns
                    .iter()
                    .filter_map(|&n| source(n))
                    .map(|src| support(&plain, &src.text))
                    .fold(0.0f32, f32::max);
                if best < MIN_SUPPORT {
                    v.unsupported.push(plain.clone());
                }
            }
        }
        for q in QUOTE.captures_iter(s) {
            let quoted = q
                .get(1)
                .or(q.get(2))
                .or(q.get(3))
                .map(|m| m.as_str())
                .unwrap_or("");
            if quoted.split_whitespace().count() < 3 {
                continue;
            }
            let target = squash(quoted);
            let pool: Vec<&Sent> = if ns.is_empty() {
                sent.iter().collect()
            } else {
                ns.iter().filter_map(|&n| source(n)).collect()
            };
            if !pool
                .iter()
                .any(|src| squash(&src.hit.text).contains(&target))
            {
                v.bad_quotes.push(quoted.to_string());
            }
        }
        for n in ns {
            used.push((n, plain.clone()));
        }
    }
    // 3. A citation per claim and source, pointing at the source sentence that
    // supports the claim (the same sentence cited twice is listed once).
    for (n, claim) in &used {
        let Some(src) = source(*n) else { continue };
        let c = locate_support(src, claim);
        if !v.citations.iter().any(|x| x.n == c.n && x.start == c.start) {
            v.citations.push(c);
        }
    }
    v.answer = answer;
    v
}

/// The sentence of the source that best supports `claim`, with offsets.
fn locate_support(src: &Sent, claim: &str) -> Citation {
    let h = &src.hit;
    let q = content_words(claim);
    // Pick among what the model saw; place it in the original chunk text,
    // whose offsets in the page are known.
    let mut best: Option<(f32, &str)> = None;
    for (a, b) in sentence_spans(&src.text) {
        let score = sentence_support_score(&q, &src.text[a..b]);
        if best.is_none_or(|x| score > x.0) {
            best = Some((score, &src.text[a..b]));
        }
    }
    let located = best.and_then(|(_, quote)| h.text.find(quote).map(|at| (at, quote)));
    let (start, quote) = match located {
        Some((at, quote)) => (
            h.start + h.text[..at].chars().count() as u32,
            quote.to_string(),
        ),
        None => (h.start, h.text.clone()),
    };
    Citation {
        n: src.n,
        doc: h.doc.clone(),
        page: h.page,
        start,
        end: start + quote.chars().count() as u32,
        chunk_id: h.chunk_id.clone(),
        quote,
        ocr_confidence: h.ocr_confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Classification;

    fn hit(n: u64, text: &str) -> Hit {
        Hit {
            chunk_id: format!("{n:016x}"),
            doc: format!("doc{n}.txt"),
            page: Some(2),
            start: 100,
            end: 100 + text.chars().count() as u32,
            score: 1.0,
            text: text.to_string(),
            classification: Classification::Internal,
            teams: vec!["staff".into()],
            injection: None,
            ocr_confidence: None,
            id: n,
            doc_id: n,
        }
    }

    fn sources() -> Vec<Sent> {
        vec![
            Sent::new(1, hit(1, "Trips need approval before booking. Travel above 500 EUR needs approval by the CFO.")),
            Sent::new(2, hit(2, "The canteen opens at 11:30 and serves lunch until 14:00.")),
        ]
    }

    #[test]
    fn valid_citations_point_at_the_supporting_sentence() {
        let v = verify(
            "Travel above 500 EUR needs approval by the CFO [1].",
            &sources(),
            |_| true,
        );
        assert!(v.removed.is_empty() && v.unsupported.is_empty(), "{v:?}");
        let c = &v.citations[0];
        assert_eq!(c.quote, "Travel above 500 EUR needs approval by the CFO.");
        // offset = chunk start + chars before the sentence
        assert_eq!(
            c.start,
            100 + "Trips need approval before booking. ".chars().count() as u32
        );
        assert_eq!(c.end - c.start, c.quote.chars().count() as u32);
    }

    #[test]
    fn fabricated_and_out_of_range_citations_are_removed() {
        let v = verify(
            "The CFO approves travel above 500 EUR [1][7]. Lunch ends at 14:00 [2, 9]. The moon is cheese [42].",
            &sources(),
            |_| true,
        );
        let removed: Vec<usize> = v.removed.iter().map(|r| r.n).collect();
        assert_eq!(removed, vec![7, 9, 42]);
        assert!(
            !v.answer.contains("[7]") && !v.answer.contains("[42]") && v.answer.contains("[2]")
        );
        assert!(v.unsupported.iter().any(|s| s.contains("moon")), "{v:?}");
    }

    #[test]
    fn unsupported_claims_and_false_quotes_are_reported() {
        let v = verify(
            "The CEO personally signs every hotel booking in Munich [1]. The policy says \"travel above 200 EUR needs approval\" [1].",
            &sources(),
            |_| true,
        );
        assert!(v.unsupported.iter().any(|s| s.contains("CEO")), "{v:?}");
        assert_eq!(v.bad_quotes, vec!["travel above 200 EUR needs approval"]);
        let ok = verify(
            "It says \"Travel above 500 EUR needs approval\" [1].",
            &sources(),
            |_| true,
        );
        assert!(ok.bad_quotes.is_empty());
    }

    #[test]
    fn citations_of_invisible_sources_are_removed() {
        let v = verify("Lunch ends at 14:00 [2].", &sources(), |h| h.id != 2);
        assert_eq!(v.removed.len(), 1);
        assert!(v.citations.is_empty());
    }
}
