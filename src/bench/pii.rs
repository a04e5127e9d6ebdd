//! `hort bench pii`: precision and recall of personal-data detection per
//! type, on generated data: valid values (correct checksums, national and
//! international formats) in English and German sentences, and look-alikes
//! that must not match (wrong checksums, dates, amounts, order numbers,
//! postcodes, versions, times).

use std::path::Path;

use serde::Serialize;

use super::synth::Rng;
use super::{write_results, Machine};
use crate::sanitize::pii::{find, luhn_valid, tax_id_valid, PiiKind};

/// One generated sentence: its text and the values it contains (byte ranges).
#[derive(Debug, Clone)]
pub struct Sample {
    /// The text.
    pub text: String,
    /// Each personal-data value in it: kind and byte span.
    pub values: Vec<(PiiKind, usize, usize)>,
}

fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

fn group(s: &str, size: usize, sep: &str) -> String {
    s.as_bytes()
        .chunks(size)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(sep)
}

fn iban_check(country: &str, bban: &str) -> String {
    let s = format!("{bban}{country}00");
    let mut rem: u32 = 0;
    for c in s.chars() {
        let v = if c.is_ascii_digit() {
            c as u32 - '0' as u32
        } else {
            c as u32 - 'A' as u32 + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    format!("{:02}", 98 - rem)
}

/// An IBAN (with a valid check sum if `valid`).
pub fn gen_iban(rng: &mut Rng, valid: bool) -> String {
    let (country, bban) = match rng.below(5) {
        0 => ("DE", digits(rng, 18)),
        1 => ("AT", digits(rng, 16)),
        2 => ("CH", digits(rng, 17)),
        3 => ("NL", format!("ABNA{}", digits(rng, 10))),
        _ => ("GB", format!("WEST{}", digits(rng, 14))),
    };
    let mut check = iban_check(country, &bban);
    if !valid {
        let c: u32 = check.parse().unwrap_or(0);
        check = format!("{:02}", (c + 1 + rng.below(90) as u32) % 98 + 2);
        if check == iban_check(country, &bban) {
            check = format!("{:02}", (c + 3) % 98);
        }
    }
    let raw = format!("{country}{check}{bban}");
    if rng.below(2) == 0 {
        group(&raw, 4, " ")
    } else {
        raw
    }
}

/// A card number (Luhn-valid if `valid`).
pub fn gen_card(rng: &mut Rng, valid: bool) -> String {
    let (prefix, len) = match rng.below(3) {
        0 => ("4".to_string(), 16),
        1 => (format!("5{}", 1 + rng.below(5)), 16),
        _ => (if rng.below(2) == 0 { "34" } else { "37" }.to_string(), 15),
    };
    let mut d = format!("{prefix}{}", digits(rng, len - prefix.len() - 1));
    for last in 0..10 {
        let cand = format!("{d}{last}");
        if luhn_valid(&cand) == valid {
            d = cand;
            break;
        }
    }
    match (len, rng.below(3)) {
        (16, 0) => group(&d, 4, " "),
        (16, 1) => group(&d, 4, "-"),
        (15, 0) => format!("{} {} {}", &d[..4], &d[4..10], &d[10..]),
        _ => d,
    }
}

/// A German tax id (valid check digit if `valid`).
pub fn gen_tax_id(rng: &mut Rng, valid: bool) -> String {
    loop {
        let mut ten: Vec<u32> = Vec::new();
        let first = 1 + rng.below(9) as u32;
        ten.push(first);
        let mut pool: Vec<u32> = (0..10).filter(|&x| x != first).collect();
        while ten.len() < 9 {
            let i = rng.below(pool.len());
            ten.push(pool.remove(i));
        }
        let dup = ten[rng.below(9)];
        ten.insert(1 + rng.below(9), dup);
        let s: String = ten.iter().map(|d| char::from(b'0' + *d as u8)).collect();
        for check in 0..10 {
            let cand = format!("{s}{check}");
            if tax_id_valid(&cand) == valid && cand.len() == 11 && !cand.starts_with('0') {
                return if rng.below(2) == 0 {
                    format!(
                        "{} {} {} {}",
                        &cand[..2],
                        &cand[2..5],
                        &cand[5..8],
                        &cand[8..]
                    )
                } else {
                    cand
                };
            }
        }
    }
}

/// A phone number in one of several national formats.
pub fn gen_phone(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 => format!(
            "+49 {} {} {}",
            30 + rng.below(60),
            digits(rng, 3),
            digits(rng, 4)
        ),
        1 => format!(
            "0{} {} {}",
            40 + rng.below(50),
            digits(rng, 3),
            digits(rng, 4)
        ),
        2 => format!(
            "+49 (0){} {}-{}",
            40 + rng.below(50),
            digits(rng, 3),
            digits(rng, 4)
        ),
        3 => format!("0{}/{}", 300 + rng.below(600), digits(rng, 6)),
        4 => format!("01{} {}", 51 + rng.below(29), digits(rng, 7)),
        5 => format!("+1 {} 555 {}", 200 + rng.below(700), digits(rng, 4)),
        6 => format!("+44 20 {} {}", digits(rng, 4), digits(rng, 4)),
        7 => format!(
            "+33 1 {} {} {} {}",
            digits(rng, 2),
            digits(rng, 2),
            digits(rng, 2),
            digits(rng, 2)
        ),
        _ => format!(
            "({}) {}-{}",
            200 + rng.below(700),
            digits(rng, 3),
            digits(rng, 4)
        ),
    }
}

fn gen_email(rng: &mut Rng) -> String {
    const FIRST: [&str; 6] = ["jonas", "ayse", "miriam", "t.brandt", "info", "sabine_k"];
    const DOM: [&str; 5] = [
        "nordwind-logistik.example",
        "mail.example.org",
        "firma.de",
        "acme.co.uk",
        "uni-hamburg.de",
    ];
    format!(
        "{}{}@{}",
        FIRST[rng.below(6)],
        rng.below(100),
        DOM[rng.below(5)]
    )
}

fn gen_ip(rng: &mut Rng) -> String {
    if rng.below(4) == 0 {
        format!("2001:db8:{:x}::{:x}", rng.below(65536), rng.below(65536))
    } else {
        format!(
            "{}.{}.{}.{}",
            1 + rng.below(223),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        )
    }
}

const EN: [&str; 4] = [
    "Please contact {} if anything is unclear.",
    "The value on file is {}, updated last week.",
    "For the record: {} (see the attached form).",
    "Our team noted {} during the review.",
];
const DE: [&str; 4] = [
    "Bitte wenden Sie sich an {}, falls Fragen bestehen.",
    "Hinterlegt ist {}, zuletzt letzte Woche geändert.",
    "Zur Information: {} (siehe Anlage).",
    "Im Termin wurde {} notiert.",
];

fn sentence(rng: &mut Rng, value: &str) -> (String, usize) {
    let t = if rng.below(2) == 0 {
        EN[rng.below(4)]
    } else {
        DE[rng.below(4)]
    };
    let at = t.find("{}").unwrap_or(0);
    (t.replacen("{}", value, 1), at)
}

/// `n` positive samples per kind, and negatives (look-alikes) of similar number.
pub fn generate(n: usize, seed: u64) -> (Vec<Sample>, Vec<String>) {
    let mut rng = Rng::new(seed);
    let mut pos = Vec::new();
    for kind in PiiKind::ALL {
        for _ in 0..n {
            let v = match kind {
                PiiKind::Iban => gen_iban(&mut rng, true),
                PiiKind::Card => gen_card(&mut rng, true),
                PiiKind::TaxId => gen_tax_id(&mut rng, true),
                PiiKind::Email => gen_email(&mut rng),
                PiiKind::Ip => gen_ip(&mut rng),
                PiiKind::Phone => gen_phone(&mut rng),
            };
            let (text, at) = sentence(&mut rng, &v);
            pos.push(Sample {
                values: vec![(kind, at, at + v.len())],
                text,
            });
        }
    }
    let mut neg = Vec::new();
    for _ in 0..n {
        let look_alike = match rng.below(10) {
            0 => gen_iban(&mut rng, false),
            1 => gen_card(&mut rng, false),
            2 => gen_tax_id(&mut rng, false),
            3 => format!(
                "{:02}.{:02}.20{:02}",
                1 + rng.below(28),
                1 + rng.below(12),
                rng.below(40)
            ),
            4 => format!(
                "20{:02}-{:02}-{:02}",
                rng.below(40),
                1 + rng.below(12),
                1 + rng.below(28)
            ),
            5 => {
                let n = 4 + rng.below(3);
                format!("order {}", digits(&mut rng, n))
            }
            6 => format!("{},{:02} EUR", rng.below(99_999), rng.below(100)),
            7 => format!("postcode {} Hamburg", 20000 + rng.below(2000)),
            8 => format!(
                "version {}.{}.{}",
                rng.below(10),
                rng.below(30),
                rng.below(100)
            ),
            _ => format!("{:02}:{:02}", rng.below(24), rng.below(60)),
        };
        neg.push(sentence(&mut rng, &look_alike).0);
    }
    (pos, neg)
}

/// Detection figures of one kind of personal data.
#[derive(Debug, Clone, Serialize)]
pub struct KindScore {
    /// The kind.
    pub kind: PiiKind,
    /// Values of the kind in the samples.
    pub values: usize,
    /// Values found.
    pub found: usize,
    /// Matches that were not values of the kind.
    pub false_pos: usize,
    /// Share of matches that were right.
    pub precision: f64,
    /// Share of values found.
    pub recall: f64,
}

/// Value-level precision and recall per kind.
pub fn evaluate(pos: &[Sample], neg: &[String]) -> Vec<KindScore> {
    let mut out = Vec::new();
    for kind in PiiKind::ALL {
        let (mut values, mut found, mut fp) = (0, 0, 0);
        for s in pos {
            let matches = find(&s.text, &PiiKind::ALL);
            for &(k, a, b) in &s.values {
                if k == kind {
                    values += 1;
                    if matches
                        .iter()
                        .any(|m| m.kind == k && m.start == a && m.end == b)
                    {
                        found += 1;
                    }
                }
            }
            // A match of this kind that is not one of the sample's values.
            fp += matches
                .iter()
                .filter(|m| {
                    m.kind == kind
                        && !s
                            .values
                            .iter()
                            .any(|v| v.0 == m.kind && v.1 == m.start && v.2 == m.end)
                })
                .count();
        }
        for t in neg {
            fp += find(t, &PiiKind::ALL)
                .iter()
                .filter(|m| m.kind == kind)
                .count();
        }
        out.push(KindScore {
            kind,
            values,
            found,
            false_pos: fp,
            precision: if found + fp == 0 {
                1.0
            } else {
                found as f64 / (found + fp) as f64
            },
            recall: if values == 0 {
                1.0
            } else {
                found as f64 / values as f64
            },
        });
    }
    out
}

/// The personal-data detection benchmark.
#[derive(Debug, Serialize)]
pub struct PiiReport {
    /// Where it ran.
    pub machine: Machine,
    /// Generated values per kind.
    pub per_kind: usize,
    /// Texts without personal data.
    pub negatives: usize,
    /// One row per kind.
    pub rows: Vec<KindScore>,
}

/// Generates `n` samples per kind, scores detection, writes the report.
pub fn run(out: &Path, n: usize) -> Result<PiiReport, String> {
    let (pos, neg) = generate(n, 2026);
    let rows = evaluate(&pos, &neg);
    let report = PiiReport {
        machine: Machine::detect(),
        per_kind: n,
        negatives: neg.len(),
        rows,
    };
    let mut md = format!(
        "Personal-data detection on generated data: {n} values per type in EN/DE sentences, {} look-alikes.\n\n| type | values | found | false positives | precision | recall |\n|---|---:|---:|---:|---:|---:|\n",
        report.negatives
    );
    for r in &report.rows {
        md.push_str(&format!(
            "| {:?} | {} | {} | {} | {:.3} | {:.3} |\n",
            r.kind, r.values, r.found, r.false_pos, r.precision, r.recall
        ));
    }
    md.push_str(&format!("\nMachine: {}.\n", report.machine.line()));
    write_results(out, "pii", &report, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_data_is_detected_precisely() {
        let (pos, neg) = generate(300, 7);
        for r in evaluate(&pos, &neg) {
            assert!(r.recall >= 0.97, "{r:?}");
            assert!(r.precision >= 0.97, "{r:?}");
        }
    }
}
