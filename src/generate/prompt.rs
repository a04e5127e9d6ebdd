//! Prompt assembly: the system prompt, the spotlighted and numbered sources
//! within a token budget, and the question; plus the little language
//! knowledge the rest needs (is the question German or English, which words
//! carry meaning).

use super::provider::{estimate_tokens, SourceText};
use crate::sanitize::spotlight::Spotlight;

/// The language answers are written in (that of the question).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// English.
    English,
    /// German.
    German,
}

const DE_WORDS: &[&str] = &[
    "der", "die", "das", "und", "ist", "nicht", "wie", "wer", "was", "wann", "wo", "warum", "ich",
    "sie", "mit", "für", "über", "auf", "ein", "eine", "den", "dem", "des", "im", "zu", "von",
    "bei", "darf", "muss", "kann", "welche", "welcher", "gibt", "es", "sind", "werden",
];
const EN_WORDS: &[&str] = &[
    "the", "and", "is", "not", "how", "who", "what", "when", "where", "why", "i", "you", "with",
    "for", "about", "on", "a", "an", "of", "to", "in", "at", "may", "must", "can", "which",
    "there", "are", "be", "do", "does",
];

impl Language {
    /// German or English, by function words and German letters.
    pub fn detect(text: &str) -> Language {
        let lower = text.to_lowercase();
        let mut de = lower
            .chars()
            .filter(|c| matches!(c, 'ä' | 'ö' | 'ü' | 'ß'))
            .count() as i32
            * 2;
        let mut en = 0;
        for w in lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            if DE_WORDS.contains(&w) {
                de += 1;
            }
            if EN_WORDS.contains(&w) {
                en += 1;
            }
        }
        if de > en {
            Language::German
        } else {
            Language::English
        }
    }

    /// The language's name in English (for the system prompt).
    pub fn name(self) -> &'static str {
        match self {
            Language::English => "English",
            Language::German => "German",
        }
    }
}

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
