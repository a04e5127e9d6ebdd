//! Access rule files: `_access.toml` (a folder and everything below it; the
//! nearest one wins) and `<file>.access.toml` (one file; overrides both).
//!
//! ```toml
//! teams = ["finance", "legal"]
//! classification = "confidential"
//! ```
//! Errors name the field, so an operator can fix the file without guessing.

use crate::acl::{AccessRule, Classification, RuleError};

/// The rule file of a folder (applies to everything below it without a closer rule).
pub const DIR_RULE: &str = "_access.toml";
/// The suffix of a file's own rule (`report.pdf.access.toml`).
pub const FILE_RULE_SUFFIX: &str = ".access.toml";

/// Parses the text of a rule file.
pub fn parse_rule(text: &str) -> Result<AccessRule, RuleError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| RuleError {
        field: "(file)".into(),
        message: format!("not valid TOML: {}", e.message()),
    })?;
    for key in table.keys() {
        if key != "teams" && key != "classification" {
            return Err(RuleError {
                field: key.clone(),
                message: "unknown field (expected `teams` and `classification`)".into(),
            });
        }
    }
    let teams = match table.get("teams") {
        None => {
            return Err(RuleError {
                field: "teams".into(),
                message: "missing (a list of at least one team)".into(),
            })
        }
        Some(toml::Value::Array(items)) => {
            let mut teams = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                match v.as_str() {
                    Some(s) => teams.push(s.to_string()),
                    None => {
                        return Err(RuleError {
                            field: "teams".into(),
                            message: format!("entry #{} is not a string", i + 1),
                        })
                    }
                }
            }
            teams
        }
        Some(_) => {
            return Err(RuleError {
                field: "teams".into(),
                message: "must be a list of team names, e.g. [\"finance\"]".into(),
            })
        }
    };
    let classification = match table.get("classification") {
        None => {
            return Err(RuleError {
                field: "classification".into(),
                message: "missing (public, internal, confidential or restricted)".into(),
            })
        }
        Some(toml::Value::String(s)) => {
            // Strict: exactly the four lower-case names.
            Classification::ALL
                .into_iter()
                .find(|c| c.as_str() == s)
                .ok_or_else(|| RuleError {
                    field: "classification".into(),
                    message: format!(
                        "unknown level {s:?} (expected public, internal, confidential or restricted)"
                    ),
                })?
        }
        Some(_) => {
            return Err(RuleError {
                field: "classification".into(),
                message: "must be a string".into(),
            })
        }
    };
    AccessRule::new(&teams, classification)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_rule() {
        let r = parse_rule("teams = [\"legal\", \"finance\"]\nclassification = \"confidential\"\n")
            .unwrap();
        assert_eq!(r.teams, vec!["finance", "legal"]);
        assert_eq!(r.classification, Classification::Confidential);
    }

    #[test]
    fn each_mistake_names_its_field() {
        let cases = [
            (
                "teams = [\"a\"]\nclassification = \"secret\"",
                "classification",
            ),
            (
                "teams = [\"a\"]\nclassification = \"Public\"",
                "classification",
            ),
            ("teams = [\"a\"]", "classification"),
            ("classification = \"public\"", "teams"),
            ("teams = []\nclassification = \"public\"", "teams"),
            ("teams = \"a\"\nclassification = \"public\"", "teams"),
            ("teams = [1]\nclassification = \"public\"", "teams"),
            (
                "team = [\"a\"]\nteams = [\"a\"]\nclassification = \"public\"",
                "team",
            ),
            ("teams = [\"a\"\nclassification", "(file)"),
        ];
        for (text, field) in cases {
            let e = parse_rule(text).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
        }
    }
}
