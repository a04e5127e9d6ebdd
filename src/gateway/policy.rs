//! The content policy: deny rules on questions and answers, whoever asks.
//! A question that matches is refused before anything is searched; an
//! answer (or a streamed sentence) that matches is withheld. Both are
//! recorded in the audit log under the rule's name. Rules are patterns
//! (regular expressions) or topics as keyword lists (whole words, any
//! case), so an operator can write "no salary figures" without regex.

use regex::Regex;

use crate::config::{ContentRule, PolicyTarget};

/// A rule that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The rule's name.
    pub rule: String,
    /// What the caller is told.
    pub message: String,
}

struct Rule {
    name: String,
    message: String,
    targets: Vec<PolicyTarget>,
    /// Patterns, and the keyword list as one alternation.
    matchers: Vec<Regex>,
}

/// The configured deny rules, compiled once.
#[derive(Default)]
pub struct ContentPolicy {
    rules: Vec<Rule>,
}

/// Why a rule cannot be compiled (the configuration check catches this first).
#[derive(Debug, thiserror::Error)]
#[error("content_policy {rule:?}: {source}")]
pub struct PolicyError {
    rule: String,
    #[source]
    source: regex::Error,
}

impl ContentPolicy {
    /// Compiles `[[content_policy]]`.
    pub fn new(rules: &[ContentRule]) -> Result<ContentPolicy, PolicyError> {
        let mut out = Vec::with_capacity(rules.len());
        for r in rules {
            let err = |source| PolicyError {
                rule: r.name.clone(),
                source,
            };
            let mut matchers = Vec::new();
            for p in &r.patterns {
                matchers.push(Regex::new(&format!("(?i){p}")).map_err(err)?);
            }
            if !r.keywords.is_empty() {
                // Whole words: a keyword's own spaces match any run of white space.
                let alts: Vec<String> = r
                    .keywords
                    .iter()
                    .map(|k| {
                        k.split_whitespace()
                            .map(regex::escape)
                            .collect::<Vec<_>>()
                            .join(r"\s+")
                    })
                    .collect();
                matchers
                    .push(Regex::new(&format!(r"(?i)\b(?:{})\b", alts.join("|"))).map_err(err)?);
            }
            out.push(Rule {
                name: r.name.clone(),
                message: r
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("refused by the content policy {:?}", r.name)),
                targets: r.applies_to.clone(),
                matchers,
            });
        }
        Ok(ContentPolicy { rules: out })
    }

    /// A policy that refuses everything (its rules could not be compiled:
    /// failing closed).
    pub fn deny_all(why: &str) -> ContentPolicy {
        ContentPolicy {
            rules: vec![Rule {
                name: "unusable-policy".into(),
                message: format!("the content policy cannot be applied ({why})"),
                targets: vec![PolicyTarget::Question, PolicyTarget::Answer],
                matchers: Regex::new("").into_iter().collect(),
            }],
        }
    }

    /// Whether there are rules for `target` at all.
    pub fn covers(&self, target: PolicyTarget) -> bool {
        self.rules.iter().any(|r| r.targets.contains(&target))
    }

    /// The first rule for `target` that `text` matches.
    pub fn check(&self, text: &str, target: PolicyTarget) -> Option<Denied> {
        self.rules
            .iter()
            .filter(|r| r.targets.contains(&target))
            .find(|r| r.matchers.iter().any(|m| m.is_match(text)))
            .map(|r| Denied {
                rule: r.name.clone(),
                message: r.message.clone(),
            })
    }

    /// A fingerprint of the rules (part of the answer cache's key: a changed
    /// policy must not serve answers checked under the old one).
    pub fn fingerprint(&self) -> String {
        let mut s = String::new();
        for r in &self.rules {
            s.push_str(&r.name);
            s.push('\u{1f}');
            for m in &r.matchers {
                s.push_str(m.as_str());
                s.push('\u{1f}');
            }
            s.push_str(&format!("{:?}\u{1e}", r.targets));
        }
        crate::text::sha256_hex(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, patterns: &[&str], keywords: &[&str], to: &[PolicyTarget]) -> ContentRule {
        ContentRule {
            name: name.into(),
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            keywords: keywords.iter().map(|s| s.to_string()).collect(),
            applies_to: to.to_vec(),
            message: None,
        }
    }

    #[test]
    fn keywords_match_whole_words_in_any_case_and_spacing() {
        let p = ContentPolicy::new(&[rule(
            "salaries",
            &[],
            &["salary", "Gehalt", "pay grade"],
            &[PolicyTarget::Question],
        )])
        .unwrap();
        assert!(p
            .check("What is the SALARY of Bob?", PolicyTarget::Question)
            .is_some());
        assert!(p
            .check("Welches gehalt hat sie", PolicyTarget::Question)
            .is_some());
        assert!(p
            .check("which pay\n  grade is that", PolicyTarget::Question)
            .is_some());
        // Not inside other words, not on answers.
        assert!(p
            .check("salaryman stories", PolicyTarget::Question)
            .is_none());
        assert!(p
            .check("Gehaltsabrechnung", PolicyTarget::Question)
            .is_none());
        assert!(p.check("the salary is 5", PolicyTarget::Answer).is_none());
        assert!(!p.covers(PolicyTarget::Answer));
    }

    #[test]
    fn patterns_name_the_rule_and_change_the_fingerprint() {
        let a = ContentPolicy::new(&[rule(
            "cards",
            &[r"\b\d{4} \d{4} \d{4} \d{4}\b"],
            &[],
            &[PolicyTarget::Answer],
        )])
        .unwrap();
        let d = a
            .check("card 4111 1111 1111 1111 ok", PolicyTarget::Answer)
            .unwrap();
        assert_eq!(d.rule, "cards");
        assert!(d.message.contains("cards"));
        let b = ContentPolicy::new(&[]).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(b.check("anything", PolicyTarget::Answer).is_none());
    }
}
