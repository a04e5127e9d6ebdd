//! The offline default: no model, no network. Picks the sentences of the
//! sources that share the most (weighted) words with the question, keeps
//! their order of relevance, and cites each one. It cannot translate or
//! paraphrase, and it never follows instructions in sources: it only quotes.

use super::prompt::{content_words, sentence_spans, Language};
use super::provider::{ChatRequest, Completion, Provider, ProviderError};
use crate::config::Locality;
use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedSender;

/// The built-in answerer: quotes the source sentences that best match the question, with their citations; offline and deterministic.
pub struct Extractive {
    /// Sentences in the answer at most.
    pub max_sentences: usize,
}

impl Default for Extractive {
    fn default() -> Self {
        Extractive { max_sentences: 3 }
    }
}

/// What the answer says when nothing matches.
pub fn nothing_found(lang: Language) -> &'static str {
    match lang {
        Language::German => {
            "In den Dokumenten, die Sie sehen dürfen, habe ich dazu nichts gefunden."
        }
        Language::English => "I found nothing about this in the documents you may see.",
    }
}

struct Candidate<'a> {
    source: usize,
    order: usize,
    text: &'a str,
    score: f32,
}

/// Scores sentences against the question; used by this provider and by the
/// citation checker (to find the best supporting sentence of a source).
pub fn sentence_score(question_words: &[String], sentence: &str) -> f32 {
    let words = content_words(sentence);
    if words.is_empty() {
        return 0.0;
    }
    let mut score = 0.0;
    let mut matched = 0;
    let mut distinct: Vec<&String> = question_words.iter().collect();
    distinct.dedup();
    for q in &distinct {
        if words.iter().any(|w| same_word(w, q)) {
            matched += 1;
            // Longer words say more than short ones.
            score += (q.chars().count() as f32).min(10.0).sqrt();
        }
    }
    // One shared word out of several is chance, not an answer.
    let needed = if distinct.len() >= 3 { 2 } else { 1 };
    if matched < needed {
        return 0.0;
    }
    // Prefer sentences that are about the question, not long lists that mention it.
    score / (1.0 + (words.len() as f32 / 25.0))
}

/// Like [`sentence_score`], with a weight per question word (its rarity
/// among the candidate sentences).
fn weighted_score(question_words: &[String], weights: &[f32], sentence: &str) -> f32 {
    let words = content_words(sentence);
    if words.is_empty() {
        return 0.0;
    }
    let mut score = 0.0;
    let mut matched = 0;
    let mut seen: Vec<&String> = Vec::new();
    for (q, w) in question_words.iter().zip(weights) {
        if seen.contains(&q) {
            continue;
        }
        seen.push(q);
        if words.iter().any(|x| same_word(x, q)) {
            matched += 1;
            score += w * (q.chars().count() as f32).min(10.0).sqrt();
        }
    }
    let needed = if seen.len() >= 3 { 2 } else { 1 };
    if matched < needed {
        return 0.0;
    }
    score / (1.0 + (words.len() as f32 / 25.0))
}

/// Equal, or the same stem (a shared prefix of all but the last two letters
/// of a word of five or more): "approves"/"approval", "Reisen"/"Reise".
pub fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let n = short.chars().count();
    if n < 5 {
        return false;
    }
    let stem: String = short.chars().take(n - 2).collect();
    long.starts_with(&stem)
}

#[async_trait]
impl Provider for Extractive {
    fn name(&self) -> &str {
        "extractive"
    }

    fn locality(&self) -> Locality {
        Locality::Local
    }

    async fn complete(
        &self,
        req: &ChatRequest,
        deltas: Option<&UnboundedSender<String>>,
    ) -> Result<Completion, ProviderError> {
        let lang = Language::detect(&req.question);
        let q = content_words(&req.question);
        // All sentences first: a question word found in many of them
        // ("meeting" in meeting notes) says less than a rare one ("peak").
        let mut all: Vec<(usize, usize, usize, &str)> = Vec::new(); // (rank, n, order, text)
        for (rank, s) in req.sources.iter().enumerate() {
            for (order, (a, b)) in sentence_spans(&s.text).into_iter().enumerate() {
                let t = &s.text[a..b];
                if t.chars().filter(|c| c.is_alphabetic()).count() >= 12 {
                    all.push((rank, s.n, order, t));
                }
            }
        }
        let words: Vec<Vec<String>> = all.iter().map(|x| content_words(x.3)).collect();
        let idf: Vec<f32> = q
            .iter()
            .map(|w| {
                let df = words
                    .iter()
                    .filter(|s| s.iter().any(|x| same_word(x, w)))
                    .count();
                (1.0 + all.len() as f32 / (1.0 + df as f32)).ln()
            })
            .collect();
        let mut cands: Vec<Candidate<'_>> = Vec::new();
        for &(rank, n, order, t) in &all {
            {
                let score = weighted_score(&q, &idf, t) * (1.0 - 0.03 * rank as f32);
                if score > 0.0 {
                    cands.push(Candidate {
                        source: n,
                        order,
                        text: t,
                        score,
                    });
                }
            }
        }
        cands.sort_by(|a, b| b.score.total_cmp(&a.score));
        let best = cands.first().map(|c| c.score).unwrap_or(0.0);
        // Keep sentences reasonably close to the best one.
        let mut picked: Vec<&Candidate<'_>> = cands
            .iter()
            .filter(|c| c.score >= best * 0.5)
            .take(self.max_sentences)
            .collect();
        picked.sort_by_key(|c| (c.source, c.order));
        picked.dedup_by(|a, b| a.text == b.text);
        let text = if picked.is_empty() {
            nothing_found(lang).to_string()
        } else {
            picked
                .iter()
                .map(|c| {
                    let t = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    // The citation goes before the closing punctuation: "… CFO [1]."
                    match t.char_indices().last() {
                        Some((i, p)) if matches!(p, '.' | '!' | '?' | ':' | ';') => {
                            format!("{} [{}]{}", &t[..i], c.source, p)
                        }
                        _ => format!("{t} [{}]", c.source),
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        if let Some(tx) = deltas {
            let _ = tx.send(text.clone());
        }
        Ok(Completion {
            text,
            prompt_tokens: 0,
            completion_tokens: 0,
            usage_reported: true,
            model: "extractive".into(),
        })
    }
}
