//! `[[content_policy]]`: what questions and answers the gateway refuses,
//! whoever asks and whatever the documents say.

use serde::Deserialize;

use super::{Check, ConfigError};

/// Where a content rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyTarget {
    /// The caller's question (refused before anything is searched).
    Question,
    /// The model's answer (withheld; the caller gets a refusal).
    Answer,
}

/// One deny rule: matches when any pattern or any keyword occurs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRule {
    /// The rule's name (in refusals, the audit log and metrics).
    pub name: String,
    /// Regular expressions (case-insensitive).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Words or phrases of a topic (case-insensitive, whole words).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Where the rule applies (default: both).
    #[serde(default = "both")]
    pub applies_to: Vec<PolicyTarget>,
    /// What the caller is told (default: the rule's name).
    pub message: Option<String>,
}

fn both() -> Vec<PolicyTarget> {
    vec![PolicyTarget::Question, PolicyTarget::Answer]
}

pub(super) fn validate_rules(rules: &[ContentRule], c: &Check) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let f = |n: &str| format!("content_policy[{i}].{n}");
        if r.name.trim().is_empty() || !names.insert(r.name.as_str()) {
            return Err(c.invalid(f("name"), "must be set and unique"));
        }
        if r.patterns.is_empty() && r.keywords.is_empty() {
            return Err(c.invalid(f("patterns"), "a rule needs patterns or keywords"));
        }
        if r.applies_to.is_empty() {
            return Err(c.invalid(f("applies_to"), "must name question and/or answer"));
        }
        for (j, p) in r.patterns.iter().enumerate() {
            if let Err(e) = regex::Regex::new(p) {
                return Err(c.invalid(format!("content_policy[{i}].patterns[{j}]"), e.to_string()));
            }
        }
        for (j, k) in r.keywords.iter().enumerate() {
            if k.trim().is_empty() {
                return Err(c.invalid(
                    format!("content_policy[{i}].keywords[{j}]"),
                    "must not be empty",
                ));
            }
        }
    }
    Ok(())
}
