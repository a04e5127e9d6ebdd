//! Prompt assembly: the system prompt, the spotlighted and numbered sources
//! within a token budget, and the question; plus the little language
//! knowledge the rest needs (is the question German or English, which words
//! carry meaning).

use super::provider::{estimate_tokens, SourceText};
use crate::sanitize::spotlight::Spotlight;

pub use crate::text::Language;

const STOP: &[&str] = &[
    "the", "and", "is", "are", "was", "were", "be", "been", "of", "to", "in", "on", "at", "for",
    "a", "an", "who", "what", "when", "where", "why", "how", "which", "does", "do", "did", "can",
    "may", "must", "should", "i", "you", "we", "it", "this", "that", "with", "by", "from", "or",
    "about", "there", "my", "our", "your", "me", "need", "needs", "der", "die", "das", "und",
    "ist", "sind", "wer", "was", "wie", "wann", "wo", "warum", "ein", "eine", "einen", "dem",
    "den", "des", "im", "zu", "von", "bei", "für", "mit", "auf", "über", "ich", "sie", "wir", "es",
    "darf", "muss", "kann", "welche", "welcher", "gibt", "nicht", "oder", "auch",
];

/// Lower-cased words that carry meaning (no stop words, no one-letter words).
pub fn content_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(|w| w.to_lowercase())
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

pub use crate::text::sentence_spans;

/// The fixed part of the system prompt (the spotlight instruction is added per request).
pub fn system_prompt(lang: Language, spotlight: &Spotlight) -> String {
    format!(
        "You answer questions about an organisation's documents, using only the numbered \
         sources provided. Rules:\n\
         1. Use only facts stated in the sources. If they do not contain the answer, say so.\n\
         2. After every sentence that uses a source, cite it as [n] (e.g. [1] or [2][3]). \
         Never cite a number that is not a source below.\n\
         3. When you quote, quote exactly.\n\
         4. Answer in {lang}, the language of the question, even if the sources are in another language.\n\
         5. Keep placeholders like [EMAIL_1] or [IBAN_2] exactly as written.\n\
         6. {spot}",
        lang = lang.name(),
        spot = spotlight.instruction()
    )
}

/// Sources numbered from 1 in the order given, as many as fit in
/// `budget_tokens` (always at least one).
pub fn assemble(
    spotlight: &Spotlight,
    sources: Vec<SourceText>,
    question: &str,
    budget_tokens: u32,
) -> (String, Vec<SourceText>) {
    let mut used = estimate_tokens(question) + 50;
    let mut kept = Vec::new();
    let mut blocks = Vec::new();
    for s in sources {
        let block = spotlight.wrap(s.n, &s.label, &s.text);
        let t = estimate_tokens(&block);
        if !kept.is_empty() && used + t > budget_tokens {
            break;
        }
        used += t;
        blocks.push(block);
        kept.push(s);
    }
    let user = format!(
        "Sources:\n\n{}\n\nQuestion: {}",
        blocks.join("\n\n"),
        question.trim()
    );
    (user, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages() {
        assert_eq!(
            Language::detect("Wer genehmigt Reisen über 500 Euro?"),
            Language::German
        );
        assert_eq!(
            Language::detect("Who approves travel above 500 EUR?"),
            Language::English
        );
        assert_eq!(
            Language::detect("Reisekostenrichtlinie Hotel München"),
            Language::German
        );
    }

    #[test]
    fn budget_keeps_at_least_one_source() {
        let s = Spotlight::new();
        let src = |n| SourceText {
            n,
            label: format!("doc{n}"),
            text: "word ".repeat(400),
        };
        let (_, kept) = assemble(&s, vec![src(1), src(2), src(3)], "q?", 10);
        assert_eq!(kept.len(), 1);
        let (user, kept) = assemble(&s, vec![src(1), src(2), src(3)], "q?", 10_000);
        assert_eq!(kept.len(), 3);
        assert!(user.contains(&s.open(3)) && user.ends_with("Question: q?"));
    }
}
