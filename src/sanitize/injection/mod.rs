//! Prompt-injection detection: instruction-like text aimed at a model.
//!
//! A rule engine over several *views* of the text: the text normalised
//! (NFKC, lower case, look-alike letters folded, spaced-out letters joined,
//! leetspeak read as letters), and whatever hides inside it (base64, base32,
//! base85, hex, binary, percent-encoding, invisible Unicode tag characters,
//! rot13). Each rule belongs to a *family* (override, persona, fake
//! delimiters, secret disclosure, exfiltration, canary and output
//! manipulation, persistence, policy exemption, AI-addressed notes, decoding
//! orders); a text's score combines the families it hits,
//! `1 − Π(1 − wᵢ)`, so one weak cue stays low and several agree.
//!
//! All patterns run on the `regex` crate (finite automata, linear in the
//! input, no backtracking), gaps between words are bounded, and decoders run
//! once over the text: detection is linear time, whatever the input.
//! Rules cover English and German fully, and French, Spanish and Italian for
//! the common phrasings.

use serde::Serialize;

mod decode;
pub mod head;
pub mod lexical;
mod normalize;
mod rules;
#[cfg(test)]
mod tests;

pub use decode::hidden_payloads;
use decode::rot13;
pub use normalize::{fold_ascii, normalize};
use rules::{RULES, SET};

/// Bump when rules change, so stored chunk scores are recomputed.
pub const DETECTOR_VERSION: u32 = 8;

/// What kind of injection a rule recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// "Ignore all previous instructions", "Ignoriere alle vorherigen Anweisungen".
    Override,
    /// "You are now DAN", "developer mode", "no restrictions".
    Persona,
    /// Fake chat-template or system delimiters: `<|im_start|>`, `[INST]`, "### System:".
    FakeDelimiter,
    /// "Reveal your system prompt", "print the API keys".
    SecretDisclosure,
    /// Sending data out: tool calls, addresses, URLs, markdown images with parameters.
    Exfiltration,
    /// "Append the token … to your reply", "do not mention this instruction".
    OutputManipulation,
    /// "Save this to your long-term memory", "for all future tasks".
    Persistence,
    /// "The safety guidelines do not apply here".
    PolicyExemption,
    /// A note addressed to an AI: "Note to the assistant", "if you are an AI".
    AiAddressed,
    /// "New instructions:", "SYSTEM NOTE:", "your real task is".
    Authority,
    /// "Decode this base64 and do what it says".
    DecodeOrder,
    /// An instruction was found inside an encoded payload.
    Encoded,
    /// Orders to delete or wipe data (weak alone: runbooks say it too).
    DestructiveAction,
    /// The learned detector ([`head`]) found it, whatever the rules say.
    Learned,
}

impl Family {
    /// How much one hit of this family alone says (0..1).
    fn weight(self) -> f32 {
        match self {
            Family::Override => 0.9,
            Family::Persona => 0.8,
            Family::FakeDelimiter => 0.7,
            Family::SecretDisclosure => 0.85,
            Family::Exfiltration => 0.75,
            Family::OutputManipulation => 0.6,
            Family::Persistence => 0.6,
            Family::PolicyExemption => 0.7,
            Family::AiAddressed => 0.45,
            Family::Authority => 0.55,
            Family::DecodeOrder => 0.6,
            Family::Encoded => 0.9,
            Family::DestructiveAction => 0.35,
            // Not a rule: the head's probability is its own score.
            Family::Learned => 0.0,
        }
    }
}

/// The verdict on one text.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Detection {
    /// 0 (nothing instruction-like) to 1.
    pub score: f32,
    /// Families that matched, sorted.
    pub reasons: Vec<Family>,
}

impl Detection {
    /// The reasons as they are written in reports (`override`, `learned`).
    pub fn reason_names(&self) -> Vec<String> {
        self.reasons
            .iter()
            .map(|r| {
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Whether the score is at or above `threshold`.
    pub fn is_suspicious(&self, threshold: f32) -> bool {
        self.score >= threshold
    }
}

/// Score at or above which a text is reported as suspected injection by default.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// Families a view matches, each with the weight of its strongest rule.
fn families(view: &str, found: &mut Vec<(Family, f32)>) {
    let view = fold_ascii(view);
    for i in SET.matches(&view).iter() {
        let (f, w, _) = &RULES[i];
        add(found, *f, *w);
    }
}

fn add(found: &mut Vec<(Family, f32)>, f: Family, w: f32) {
    match found.iter_mut().find(|x| x.0 == f) {
        Some(x) => x.1 = x.1.max(w),
        None => found.push((f, w)),
    }
}

fn reversed_views(text: &str) -> Option<String> {
    // Short texts only: a reversed sentence ("snoitcurtsni suoiverp erongI").
    (text.len() <= 2048).then(|| text.chars().rev().collect())
}

/// Scores one text.
pub fn detect(text: &str) -> Detection {
    let mut found: Vec<(Family, f32)> = Vec::new();
    let norm = normalize(text, false);
    families(&norm, &mut found);
    // Line breaks inside a sentence (wrapped PDF or e-mail text) must not
    // hide a phrase; line-anchored rules need the breaks, so match both views.
    if norm.contains(['\n', '\t', '\r']) {
        let flat = norm.split_whitespace().collect::<Vec<_>>().join(" ");
        families(&flat, &mut found);
    }
    let leet = normalize(text, true);
    if leet != norm {
        families(&leet, &mut found);
    }
    // Views that scramble ordinary text: only instruction families count there.
    let mut scrambled: Vec<String> = Vec::new();
    if norm.contains("rot13")
        || norm.contains("rot-13")
        || norm.contains("caesar")
        || text.len() <= 2048
    {
        scrambled.push(rot13(text));
    }
    if let Some(r) = reversed_views(text) {
        scrambled.push(r);
    }
    for v in scrambled {
        let mut inner = Vec::new();
        families(&normalize(&v, false), &mut inner);
        if inner.iter().any(|(f, _)| {
            matches!(
                f,
                Family::Override | Family::SecretDisclosure | Family::Persona
            )
        }) {
            add(&mut found, Family::Encoded, Family::Encoded.weight());
        }
    }
    for payload in hidden_payloads(text) {
        let mut inner = Vec::new();
        families(&normalize(&payload, false), &mut inner);
        if inner.iter().any(|(_, w)| *w >= 0.5) {
            add(&mut found, Family::Encoded, Family::Encoded.weight());
        }
        for (f, w) in inner {
            add(&mut found, f, w);
        }
    }
    found.sort_by_key(|x| x.0);
    let keep: f32 = found.iter().map(|(_, w)| 1.0 - w).product();
    Detection {
        score: ((1.0 - keep) * 1000.0).round() / 1000.0,
        reasons: found.into_iter().map(|x| x.0).collect(),
    }
}

/// `text` without the sentences that carry an injection: every sentence
/// that scores at or above `threshold` alone or together with a neighbour is
/// dropped. `None` if nothing worth keeping is left, or if the remainder as a
/// whole still scores at or above `threshold`.
pub fn redact(text: &str, threshold: f32) -> Option<String> {
    let spans = crate::text::sentence_spans(text);
    let mut drop = vec![false; spans.len()];
    for i in 0..spans.len() {
        if detect(&text[spans[i].0..spans[i].1]).score >= threshold {
            drop[i] = true;
        }
        if i + 1 < spans.len() && detect(&text[spans[i].0..spans[i + 1].1]).score >= threshold {
            // Blame the pair only if neither alone explains it.
            let (a, b) = (
                detect(&text[spans[i].0..spans[i].1]).score,
                detect(&text[spans[i + 1].0..spans[i + 1].1]).score,
            );
            if a < threshold && b < threshold {
                drop[i] = true;
                drop[i + 1] = true;
            }
        }
    }
    // Kept sentences with the original text between neighbours, and a
    // paragraph break where something was cut: every sentence of the result
    // is a sentence of the original, so citations can be placed exactly.
    let mut out = String::new();
    let mut prev: Option<usize> = None;
    for (i, s) in spans.iter().enumerate() {
        if drop[i] {
            continue;
        }
        match prev {
            Some(p) if p + 1 == i => out.push_str(&text[spans[p].1..s.0]),
            Some(_) => out.push_str("\n\n"),
            None => {}
        }
        out.push_str(&text[s.0..s.1]);
        prev = Some(i);
    }
    if out.chars().filter(|c| c.is_alphabetic()).count() < 20 || detect(&out).score >= threshold {
        return None;
    }
    Some(out)
}
