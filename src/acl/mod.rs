//! Access control: who may see what.
//!
//! A principal sees a chunk iff it shares at least one team with the chunk's
//! document and its clearance is at least the document's classification.
//! A document without an access rule is visible to nobody (fail closed).
//!
//! The rule is kept *as data*: team names are interned to bit positions per
//! index snapshot, so the per-chunk check inside the vector search loop is a
//! few AND instructions and a byte compare, and the same [`Filter`] can be
//! turned into a tantivy query clause for the keyword side.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Classification levels, lowest to highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Everyone in the named teams; nothing secret.
    Public = 0,
    /// For the organisation's own people (the default of most documents).
    Internal = 1,
    /// Business secrets: only teams that need them.
    Confidential = 2,
    /// The most sensitive: named people of named teams.
    Restricted = 3,
}

impl Classification {
    /// Every level, lowest first.
    pub const ALL: [Classification; 4] = [
        Classification::Public,
        Classification::Internal,
        Classification::Confidential,
        Classification::Restricted,
    ];

    /// The name used in configuration and rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
            Classification::Restricted => "restricted",
        }
    }

    /// The level as a number (0 = public … 3 = restricted), for compact tables.
    pub fn level(self) -> u8 {
        self as u8
    }

    /// The level of a number from [`Classification::level`]; `None` outside 0–3.
    pub fn from_level(level: u8) -> Option<Classification> {
        Classification::ALL.get(level as usize).copied()
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a classification name that is not one of the four levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown classification {0:?} (expected one of: public, internal, confidential, restricted)"
)]
pub struct UnknownClassification(pub String);

impl FromStr for Classification {
    type Err = UnknownClassification;

    /// Case-insensitive, so that `--clearance Confidential` on the command line works;
    /// rule files are checked strictly by serde.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Classification::Public),
            "internal" => Ok(Classification::Internal),
            "confidential" => Ok(Classification::Confidential),
            "restricted" => Ok(Classification::Restricted),
            _ => Err(UnknownClassification(s.to_string())),
        }
    }
}

/// The access rule of one document: its teams and its classification.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessRule {
    /// Sorted, de-duplicated, never empty.
    pub teams: Vec<String>,
    /// The lowest clearance that may see the document.
    pub classification: Classification,
}

/// Why an access rule is invalid; `field` names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct RuleError {
    /// The field that is wrong (`teams`, `classification`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl AccessRule {
    /// Builds a rule, normalising the team list. Team names are trimmed; empty
    /// names and an empty list are refused, since a rule nobody can match is
    /// almost certainly a mistake and would hide the document silently.
    pub fn new<S: AsRef<str>>(
        teams: &[S],
        classification: Classification,
    ) -> Result<AccessRule, RuleError> {
        let mut out = Vec::with_capacity(teams.len());
        for (i, t) in teams.iter().enumerate() {
            let t = t.as_ref().trim();
            if t.is_empty() {
                return Err(RuleError {
                    field: "teams".into(),
                    message: format!("team #{} is empty", i + 1),
                });
            }
            if t.len() > 128 || t.chars().any(char::is_control) {
                return Err(RuleError {
                    field: "teams".into(),
                    message: format!("team #{} is not a valid team name", i + 1),
                });
            }
            out.push(t.to_string());
        }
        if out.is_empty() {
            return Err(RuleError {
                field: "teams".into(),
                message: "at least one team is required".into(),
            });
        }
        out.sort();
        out.dedup();
        Ok(AccessRule {
            teams: out,
            classification,
        })
    }
}

/// Someone who asks: a user, a service, an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The name the gateway books requests on (a configured principal, or `jwt:<sub>`).
    pub name: String,
    /// The teams whose documents the principal may see (subject to clearance).
    pub teams: Vec<String>,
    /// The highest classification the principal may see.
    pub clearance: Classification,
}

impl Principal {
    /// A principal from its name, teams and clearance.
    pub fn new<S: AsRef<str>>(name: &str, teams: &[S], clearance: Classification) -> Principal {
        let mut teams: Vec<String> = teams
            .iter()
            .map(|t| t.as_ref().trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        teams.sort();
        teams.dedup();
        Principal {
            name: name.to_string(),
            teams,
            clearance,
        }
    }

    /// The access rule in its plainest form. The index uses [`Filter`]; this is
    /// the reference it is tested against.
    pub fn can_see(&self, rule: Option<&AccessRule>) -> bool {
        match rule {
            None => false,
            Some(r) => {
                self.clearance >= r.classification
                    && r.teams.iter().any(|t| self.teams.iter().any(|p| p == t))
            }
        }
    }
}

/// Team names of one index snapshot, interned to bit positions.
#[derive(Clone, Debug, Default)]
pub struct TeamTable {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl TeamTable {
    /// An empty table.
    pub fn new() -> TeamTable {
        TeamTable::default()
    }

    /// The bit of `team`, added if new.
    pub fn intern(&mut self, team: &str) -> u32 {
        if let Some(&i) = self.index.get(team) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(team.to_string());
        self.index.insert(team.to_string(), i);
        i
    }

    /// The bit of `team`, if any document names it.
    pub fn get(&self, team: &str) -> Option<u32> {
        self.index.get(team).copied()
    }

    /// The team of a bit.
    pub fn name(&self, bit: u32) -> Option<&str> {
        self.names.get(bit as usize).map(String::as_str)
    }

    /// How many teams the table knows.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table knows no team.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of u64 words a team bitset needs for this table (at least one).
    pub fn words(&self) -> usize {
        self.names.len().div_ceil(64).max(1)
    }
}

/// Level byte stored for chunks nobody may see (no rule, or deleted).
pub const INVISIBLE: u8 = u8::MAX;

/// Per-chunk access data in flat arrays: `words` u64 of team bits and one
/// level byte per chunk. Built from the document table when a snapshot opens.
#[derive(Clone, Debug)]
pub struct AclTable {
    words: usize,
    bits: Vec<u64>,
    levels: Vec<u8>,
}

impl AclTable {
    /// A table of `len` entries, all invisible.
    pub fn new(len: usize, words: usize) -> AclTable {
        let words = words.max(1);
        AclTable {
            words,
            bits: vec![0; len * words],
            levels: vec![INVISIBLE; len],
        }
    }

    /// The number of entries (chunks or documents).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Sets entry `i` to the given rule (or to invisible for `None`).
    pub fn set(&mut self, i: usize, teams: &TeamTable, rule: Option<&AccessRule>) {
        let row = &mut self.bits[i * self.words..(i + 1) * self.words];
        row.iter_mut().for_each(|w| *w = 0);
        match rule {
            None => self.levels[i] = INVISIBLE,
            Some(r) => {
                for t in &r.teams {
                    if let Some(bit) = teams.get(t) {
                        row[(bit / 64) as usize] |= 1u64 << (bit % 64);
                    }
                }
                self.levels[i] = r.classification.level();
            }
        }
    }

    /// Copies entry `src` to `dst` (used to fill a document's chunk range).
    pub fn copy_entry(&mut self, src: usize, dst: usize) {
        let w = self.words;
        self.bits.copy_within(src * w..(src + 1) * w, dst * w);
        self.levels[dst] = self.levels[src];
    }

    /// Whether entry `i` has a rule at all (nothing without one is visible).
    pub fn is_visible_to_anyone(&self, i: usize) -> bool {
        self.levels.get(i).is_some_and(|&l| l != INVISIBLE)
    }

    /// The level of entry `i` (`INVISIBLE` if it has no rule).
    pub fn level(&self, i: usize) -> u8 {
        self.levels.get(i).copied().unwrap_or(INVISIBLE)
    }
}

/// A principal's access, compiled against one snapshot's [`TeamTable`].
#[derive(Clone, Debug)]
pub struct Filter {
    words: Vec<u64>,
    max_level: u8,
    /// Team names the principal has that occur in the index (for the keyword clause).
    team_names: Vec<String>,
    any_team: bool,
}

impl Filter {
    /// Compiles `principal`'s teams and clearance against `teams` (teams no document names are dropped).
    pub fn new(principal: &Principal, teams: &TeamTable) -> Filter {
        let mut words = vec![0u64; teams.words()];
        let mut team_names = Vec::new();
        for t in &principal.teams {
            if let Some(bit) = teams.get(t) {
                words[(bit / 64) as usize] |= 1u64 << (bit % 64);
                team_names.push(t.clone());
            }
        }
        Filter {
            any_team: !team_names.is_empty(),
            words,
            max_level: principal.clearance.level(),
            team_names,
        }
    }

    /// True if nothing in the index can match (no shared team at all).
    pub fn is_empty(&self) -> bool {
        !self.any_team
    }

    /// The principal's clearance as a level number.
    pub fn max_level(&self) -> u8 {
        self.max_level
    }

    /// Identifies the filter within the team table it was built against
    /// (the principal's team bits and clearance): two filters with the same
    /// key admit exactly the same chunks of that index generation.
    pub fn cache_key(&self) -> (Vec<u64>, u8) {
        (self.words.clone(), self.max_level)
    }

    /// The principal's teams that occur in the index (for the keyword clause).
    pub fn team_names(&self) -> &[String] {
        &self.team_names
    }

    /// Bit positions of the principal's teams that occur in the index.
    pub fn team_bits(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            (0..64u32)
                .filter(move |b| word & (1u64 << b) != 0)
                .map(move |b| w as u32 * 64 + b)
        })
    }

    /// The check itself, run inside the search loops.
    #[inline]
    pub fn allows(&self, acl: &AclTable, i: usize) -> bool {
        let Some(&level) = acl.levels.get(i) else {
            return false;
        };
        if level > self.max_level {
            return false;
        }
        let row = &acl.bits[i * acl.words..(i + 1) * acl.words];
        row.iter().zip(&self.words).any(|(a, b)| a & b != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(teams: &[&str], c: Classification) -> AccessRule {
        AccessRule::new(teams, c).unwrap()
    }

    #[test]
    fn classification_order_and_parse() {
        assert!(Classification::Public < Classification::Internal);
        assert!(Classification::Confidential < Classification::Restricted);
        assert_eq!(
            "Confidential".parse::<Classification>().unwrap(),
            Classification::Confidential
        );
        assert!("secret".parse::<Classification>().is_err());
        for c in Classification::ALL {
            assert_eq!(Classification::from_level(c.level()), Some(c));
        }
    }

    #[test]
    fn rule_validation() {
        assert!(AccessRule::new::<&str>(&[], Classification::Public).is_err());
        let e = AccessRule::new(&["a", " "], Classification::Public).unwrap_err();
        assert_eq!(e.field, "teams");
        let r = rule(&["b", "a", "b"], Classification::Internal);
        assert_eq!(r.teams, vec!["a", "b"]);
    }

    #[test]
    fn no_rule_is_invisible() {
        let p = Principal::new("root", &["a"], Classification::Restricted);
        assert!(!p.can_see(None));
        let mut t = TeamTable::new();
        t.intern("a");
        let mut acl = AclTable::new(1, t.words());
        acl.set(0, &t, None);
        assert!(!Filter::new(&p, &t).allows(&acl, 0));
    }

    #[test]
    fn filter_matches_reference_with_many_teams() {
        // More than 64 teams forces multi-word bitsets.
        let mut t = TeamTable::new();
        let names: Vec<String> = (0..150).map(|i| format!("team{i}")).collect();
        for n in &names {
            t.intern(n);
        }
        let rules = [
            rule(&["team3"], Classification::Public),
            rule(&["team70", "team149"], Classification::Confidential),
            rule(&["team149"], Classification::Restricted),
        ];
        let mut acl = AclTable::new(rules.len(), t.words());
        for (i, r) in rules.iter().enumerate() {
            acl.set(i, &t, Some(r));
        }
        let principals = [
            Principal::new("p1", &["team3"], Classification::Public),
            Principal::new("p2", &["team149"], Classification::Confidential),
            Principal::new("p3", &["team149", "nope"], Classification::Restricted),
            Principal::new("p4", &["nope"], Classification::Restricted),
        ];
        for p in &principals {
            let f = Filter::new(p, &t);
            for (i, r) in rules.iter().enumerate() {
                assert_eq!(f.allows(&acl, i), p.can_see(Some(r)), "{} rule {i}", p.name);
            }
            assert!(!f.allows(&acl, 99), "out of range is never visible");
        }
    }
}
