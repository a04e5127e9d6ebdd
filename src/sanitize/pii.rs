//! Personal data: detection and reversible masking.
//!
//! Candidates are found with linear-time regular expressions and confirmed
//! with the checks the formats carry (IBAN mod-97 and country length, card
//! Luhn and issuer prefix, German tax ID ISO 7064 check digit and digit
//! rules, IP address parsing, phone digit counts), so that order numbers,
//! dates and amounts are left alone. Masking replaces each value with a
//! placeholder (`[IBAN_1]`), the same value with the same placeholder, and
//! keeps the map for the one request, so an answer can be restored for the
//! user while a cloud model never sees the raw values.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Kinds of personal data hort finds and masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// E-mail addresses.
    Email,
    /// Phone numbers (international and common national formats).
    Phone,
    /// IBANs with a valid check sum.
    Iban,
    /// Card numbers that pass the Luhn check.
    Card,
    /// IPv4 and IPv6 addresses.
    Ip,
    /// Tax ids (German Steuer-IdNr. with its check digit, US SSN).
    TaxId,
}

impl PiiKind {
    /// Every kind.
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Iban,
        PiiKind::Card,
        PiiKind::TaxId,
        PiiKind::Email,
        PiiKind::Ip,
        PiiKind::Phone,
    ];

    fn tag(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::Iban => "IBAN",
            PiiKind::Card => "CARD",
            PiiKind::Ip => "IP",
            PiiKind::TaxId => "TAX_ID",
        }
    }
}

/// One detected value: byte range in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PiiMatch {
    /// What was found.
    pub kind: PiiKind,
    /// Start in bytes.
    pub start: usize,
    /// End in bytes.
    pub end: usize,
}

fn re(p: &str) -> Regex {
    Regex::new(p).unwrap_or_else(|e| panic!("pii pattern {p}: {e}"))
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)[a-z0-9._%+-]{1,64}@(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24}"));
static IBAN: LazyLock<Regex> = LazyLock::new(|| re(r"\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,32}"));
static CARD: LazyLock<Regex> = LazyLock::new(|| re(r"\b[0-9](?:[ -]?[0-9]){12,18}\b"));
static TAX: LazyLock<Regex> = LazyLock::new(|| re(r"\b[1-9][0-9](?:[ /]?[0-9]){9}\b"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b",
    )
});
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:%[0-9a-z]{1,15})?"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\+|\b00)[1-9][0-9]{0,2}[ ./-]?(?:\(0\)[ ./-]?)?\(?[0-9]{1,5}\)?(?:[ ./-]?[0-9]{1,10}){1,5}|\(?\b0[1-9][0-9]{1,4}\)?[ ./-]?[0-9]{2,10}(?:[ ./-]?[0-9]{1,8}){0,3}|\(?\b[2-9][0-9]{2}\)?[ .-][0-9]{3}[ .-][0-9]{4}\b",
    )
});

fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "DE" => 22,
        "AT" => 20,
        "CH" => 21,
        "LI" => 21,
        "NL" => 18,
        "BE" => 16,
        "LU" => 20,
        "FR" => 27,
        "MC" => 27,
        "IT" => 27,
        "SM" => 27,
        "ES" => 24,
        "PT" => 25,
        "GB" => 22,
        "IE" => 22,
        "DK" => 18,
        "NO" => 15,
        "SE" => 24,
        "FI" => 18,
        "PL" => 28,
        "CZ" => 24,
        "SK" => 24,
        "HU" => 28,
        "SI" => 19,
        "HR" => 21,
        "RO" => 24,
        "BG" => 22,
        "GR" => 27,
        "CY" => 28,
        "MT" => 31,
        "EE" => 20,
        "LV" => 21,
        "LT" => 20,
        "IS" => 26,
        "TR" => 26,
        "SA" => 24,
        "AE" => 23,
        "IL" => 23,
        "UA" => 29,
        "RS" => 22,
        "BA" => 20,
        "ME" => 22,
        "MK" => 19,
        "AL" => 28,
        "AD" => 24,
        "GI" => 23,
        "FO" => 18,
        "GL" => 18,
        "KW" => 30,
        "QA" => 29,
        "BH" => 22,
        "JO" => 30,
        "LB" => 28,
        "MU" => 30,
        "TN" => 24,
        "BR" => 29,
        _ => return None,
    })
}

/// ISO 13616 check: move the first four characters to the end, letters to
/// numbers (A = 10), and the whole number mod 97 must be 1.
pub fn iban_valid(iban: &str) -> bool {
    let s: String = iban.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() < 15 || s.len() > 34 || !s.is_ascii() {
        return false;
    }
    if iban_length(&s[..2]).is_some_and(|l| l != s.len()) {
        return false;
    }
    let rearranged = format!("{}{}", &s[4..], &s[..4]);
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The Luhn checksum of a digit string.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn card_prefix_ok(d: &str) -> bool {
    let n = |k: usize| d.get(..k).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    let len = d.len();
    match d.as_bytes()[0] {
        b'4' => matches!(len, 13 | 16 | 19),
        b'5' => (51..=55).contains(&n(2)) && len == 16,
        b'2' => (2221..=2720).contains(&n(4)) && len == 16,
        b'3' => {
            (matches!(n(2), 34 | 37) && len == 15)
                || (n(2) == 35 && len >= 16)
                || (matches!(n(2), 30 | 36 | 38) && len >= 14)
        }
        b'6' => {
            (n(4) == 6011 || n(2) == 65 || (644..=649).contains(&n(3)) || n(2) == 62) && len >= 16
        }
        _ => false,
    }
}

/// German tax identification number: 11 digits, no leading zero, in the
/// first ten exactly one digit repeated (twice, or three times not all
/// adjacent), the rest distinct, and an ISO 7064 MOD 11,10 check digit.
pub fn tax_id_valid(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[x as usize] += 1;
    }
    let repeated: Vec<usize> = (0..10).filter(|&i| counts[i] >= 2).collect();
    if repeated.len() != 1 || counts[repeated[0]] > 3 {
        return false;
    }
    if counts[repeated[0]] == 3 {
        let r = repeated[0] as u32;
        if d[..10].windows(3).any(|w| w.iter().all(|&x| x == r)) {
            return false;
        }
    }
    let mut product = 10;
    for &x in &d[..10] {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    check == d[10]
}

fn digits_of(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// Not a phone number: dates, times, version-like and money-like strings.
fn looks_like_date_or_amount(s: &str) -> bool {
    let t = s.trim();
    let parts: Vec<&str> = t.split(['.', '-', '/']).collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
    {
        return true; // 25.11.2026, 2026-11-25
    }
    false
}

/// Whether `start..end` is the tail or middle of a longer run of digit
/// groups (an account or card number, "4471 0623 2091 6660"): a neighbouring
/// token, one separator away, that contains digits.
fn inside_longer_number(text: &str, start: usize, end: usize) -> bool {
    let before = &text[..start];
    let mut tokens = before
        .rsplit([' ', '-', '/', '.'])
        .filter(|t| !t.is_empty());
    let near_before = before.ends_with([' ', '-', '/', '.'])
        && before.trim_end_matches([' ', '-', '/', '.']).len() + 1 == before.len();
    if near_before {
        let has_digit = |t: &str| t.chars().any(|c| c.is_ascii_digit());
        let code = |t: &str| {
            t.len() <= 6
                && t.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        };
        match (tokens.next(), tokens.next()) {
            (Some(a), _) if has_digit(a) => return true,
            // "NL91 ABNA 0417 …": a bank code between digit groups.
            (Some(a), Some(b)) if code(a) && has_digit(b) => return true,
            _ => {}
        }
    }
    let after = &text[end..];
    let mut chars = after.chars();
    matches!(chars.next(), Some(' ' | '-' | '/' | '.'))
        && chars.next().is_some_and(|c| c.is_ascii_digit())
}

fn is_word_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// All personal data of the given kinds, non-overlapping, in text order.
pub fn find(text: &str, kinds: &[PiiKind]) -> Vec<PiiMatch> {
    let mut out: Vec<PiiMatch> = Vec::new();
    let taken = |out: &[PiiMatch], s: usize, e: usize| out.iter().any(|m| m.start < e && s < m.end);
    for kind in PiiKind::ALL {
        if !kinds.contains(&kind) {
            continue;
        }
        let mut found: Vec<(usize, usize)> = Vec::new();
        match kind {
            PiiKind::Iban => {
                for m in IBAN.find_iter(text) {
                    let Some(len) = iban_length(&m.as_str()[..2]) else {
                        // Unknown country: the whole candidate must check out.
                        if iban_valid(m.as_str()) {
                            found.push((m.start(), m.end()));
                        }
                        continue;
                    };
                    // Take exactly `len` alphanumerics; the regex may have run on.
                    let mut n = 0;
                    let mut end = m.start();
                    for (i, c) in m.as_str().char_indices() {
                        if c.is_ascii_alphanumeric() {
                            n += 1;
                            if n == len {
                                end = m.start() + i + 1;
                                break;
                            }
                        }
                    }
                    if n == len
                        && iban_valid(&text[m.start()..end])
                        && !is_word_char(text[end..].chars().next())
                    {
                        found.push((m.start(), end));
                    }
                }
            }
            PiiKind::Card => {
                for m in CARD.find_iter(text) {
                    let d = digits_of(m.as_str());
                    if (13..=19).contains(&d.len()) && luhn_valid(&d) && card_prefix_ok(&d) {
                        found.push((m.start(), m.end()));
                    }
                }
            }
            PiiKind::TaxId => {
                for m in TAX.find_iter(text) {
                    if tax_id_valid(&digits_of(m.as_str())) {
                        found.push((m.start(), m.end()));
                    }
                }
            }
            PiiKind::Email => {
                for m in EMAIL.find_iter(text) {
                    found.push((m.start(), m.end()));
                }
            }
            PiiKind::Ip => {
                for m in IPV4.find_iter(text) {
                    // Not part of a longer dotted number (a version "1.2.3.4.5").
                    let before = text[..m.start()].chars().next_back();
                    let after = text[m.end()..].chars().next();
                    if before != Some('.')
                        && !(after == Some('.')
                            && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit()))
                    {
                        found.push((m.start(), m.end()));
                    }
                }
                for m in IPV6.find_iter(text) {
                    let s = m.as_str();
                    let core = s.split('%').next().unwrap_or(s);
                    if core.matches(':').count() >= 2
                        && core.parse::<std::net::Ipv6Addr>().is_ok()
                        && !is_word_char(text[..m.start()].chars().next_back())
                        && (core.contains("::") || core.matches(':').count() == 7)
                    {
                        found.push((m.start(), m.end()));
                    }
                }
            }
            PiiKind::Phone => {
                for m in PHONE.find_iter(text) {
                    let s = m.as_str().trim_end_matches(['.', '-', '/', ' ']);
                    let d = digits_of(s);
                    let intl = s.starts_with('+') || s.starts_with("00");
                    if !(7..=15).contains(&d.len()) || looks_like_date_or_amount(s) {
                        continue;
                    }
                    // A national number has a separator or area-code form; a bare
                    // run of digits is more likely an id or an amount.
                    if !intl && !s.contains([' ', '/', '-', '(', '.']) {
                        continue;
                    }
                    let end = m.start() + s.len();
                    if is_word_char(text[end..].chars().next())
                        || inside_longer_number(text, m.start(), end)
                    {
                        continue;
                    }
                    found.push((m.start(), end));
                }
            }
        }
        for (s, e) in found {
            if !taken(&out, s, e) {
                out.push(PiiMatch {
                    kind,
                    start: s,
                    end: e,
                });
            }
        }
    }
    out.sort_by_key(|m| m.start);
    out
}

/// Reversible masking for one request.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    by_value: HashMap<String, String>,
    by_placeholder: Vec<(String, String)>,
    counters: HashMap<PiiKind, usize>,
}

impl Masker {
    /// A masker with no values yet.
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Replaces personal data in `text`; returns the masked text and how many
    /// values were replaced.
    pub fn mask(&mut self, text: &str, kinds: &[PiiKind]) -> (String, usize) {
        let found = find(text, kinds);
        if found.is_empty() {
            return (text.to_string(), 0);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in &found {
            out.push_str(&text[last..m.start]);
            let value = &text[m.start..m.end];
            let key = format!(
                "{:?}:{}",
                m.kind,
                value.split_whitespace().collect::<String>()
            );
            let ph = match self.by_value.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let n = self.counters.entry(m.kind).or_default();
                    *n += 1;
                    let p = format!("[{}_{}]", m.kind.tag(), n);
                    self.by_value.insert(key, p.clone());
                    self.by_placeholder.push((p.clone(), value.to_string()));
                    p
                }
            };
            out.push_str(&ph);
            last = m.end;
        }
        out.push_str(&text[last..]);
        (out, found.len())
    }

    /// Puts the original values back (placeholders the model invented stay as they are).
    pub fn unmask(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Longest placeholders first, so [EMAIL_10] is not hit by [EMAIL_1].
        let mut pairs: Vec<&(String, String)> = self.by_placeholder.iter().collect();
        pairs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        for (p, v) in pairs {
            out = out.replace(p.as_str(), v);
        }
        out
    }

    /// Values masked so far.
    pub fn len(&self) -> usize {
        self.by_placeholder.len()
    }

    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, String)> {
        find(text, &PiiKind::ALL)
            .into_iter()
            .map(|m| (m.kind, text[m.start..m.end].to_string()))
            .collect()
    }

    #[test]
    fn checksums() {
        assert!(iban_valid("DE89 3704 0044 0532 0130 00"));
        assert!(!iban_valid("DE89 3704 0044 0532 0130 01"));
        assert!(iban_valid("NL91ABNA0417164300"));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(tax_id_valid("86095742719"));
        assert!(!tax_id_valid("86095742718"));
        assert!(!tax_id_valid("12345678901"), "no repeated digit");
    }

    #[test]
    fn finds_values_in_text_and_leaves_numbers_alone() {
        let t = "Pay to IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX. Card 4111 1111 1111 1111. \
                 Mail jonas.weber@nordwind-logistik.example or call +49 40 555 0142 or 040 555 0147. \
                 Server 10.0.12.7 and fe80::1ff:fe23:4567:890a. Steuer-ID 86 095 742 719. \
                 Order 4471, invoice 2291 of 25.11.2026, total 84.5 million EUR, postcode 20457.";
        let k = kinds(t);
        let got: Vec<PiiKind> = k.iter().map(|x| x.0).collect();
        assert_eq!(
            got,
            vec![
                PiiKind::Iban,
                PiiKind::Card,
                PiiKind::Email,
                PiiKind::Phone,
                PiiKind::Phone,
                PiiKind::Ip,
                PiiKind::Ip,
                PiiKind::TaxId
            ],
            "{k:?}"
        );
        assert_eq!(k[0].1, "DE89 3704 0044 0532 0130 00");
    }

    #[test]
    fn masking_round_trip() {
        let mut m = Masker::new();
        let (masked, n) = m.mask(
            "Write to a@x.example and b@y.example; again a@x.example.",
            &PiiKind::ALL,
        );
        assert_eq!(n, 3);
        assert_eq!(masked, "Write to [EMAIL_1] and [EMAIL_2]; again [EMAIL_1].");
        assert_eq!(
            m.unmask("Contact [EMAIL_2], not [EMAIL_1]."),
            "Contact b@y.example, not a@x.example."
        );
    }
}
