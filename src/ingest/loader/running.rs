//! Running heads and feet: the lines a paginated document repeats at the
//! top or bottom of every page (a company name, a title, "Seite 3 von 12").
//!
//! Left in, they land in every chunk, match every keyword query about the
//! company and drown the page's own words in the embedding. A line counts as
//! running when, with digits ignored, it is among the first or last three
//! lines of at least half the pages (three at least). It is kept where it
//! first appears, so a document's title stays findable once, and removed
//! from the other pages.

use std::collections::{HashMap, HashSet};

/// Lines from each end of a page that may be a head or a foot.
const EDGE: usize = 3;
/// Longer lines are text, not a head or foot.
const MAX_LEN: usize = 120;

/// Removes running heads and feet from `pages`; returns the lines removed.
pub fn strip(pages: &mut [String]) -> usize {
    let with_text = pages.iter().filter(|p| !p.trim().is_empty()).count();
    if with_text < 3 {
        return 0;
    }
    let need = with_text.div_ceil(2).max(3);
    // (at the top?, shape) → pages it appears on
    let mut seen: HashMap<(bool, String), HashSet<usize>> = HashMap::new();
    for (i, p) in pages.iter().enumerate() {
        for (top, line) in edges(p) {
            seen.entry((top, shape(line))).or_default().insert(i);
        }
    }
    let running: HashMap<(bool, String), usize> = seen
        .into_iter()
        .filter(|(k, on)| on.len() >= need && !k.1.is_empty())
        .map(|(k, on)| {
            let first = on.into_iter().min().unwrap_or(0);
            (k, first)
        })
        .collect();
    if running.is_empty() {
        return 0;
    }
    let mut removed = 0;
    for (i, p) in pages.iter_mut().enumerate() {
        let lines: Vec<&str> = p.lines().collect();
        let nonempty: Vec<usize> = (0..lines.len())
            .filter(|&j| !lines[j].trim().is_empty())
            .collect();
        let mut drop = HashSet::new();
        for (k, &j) in nonempty.iter().enumerate() {
            let top = k < EDGE;
            let bottom = k + EDGE >= nonempty.len();
            for end in [true, false] {
                if (end && !top) || (!end && !bottom) || lines[j].trim().len() > MAX_LEN {
                    continue;
                }
                if running
                    .get(&(end, shape(lines[j])))
                    .is_some_and(|&first| first != i)
                {
                    drop.insert(j);
                }
            }
        }
        if drop.is_empty() {
            continue;
        }
        removed += drop.len();
        let kept: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(j, _)| !drop.contains(j))
            .map(|(_, l)| *l)
            .collect();
        let mut out = String::with_capacity(p.len());
        super::tidy(&kept.join("\n"), &mut out);
        *p = out;
    }
    removed
}

/// The first and last few non-empty lines of a page, marked top or bottom.
fn edges(page: &str) -> Vec<(bool, &str)> {
    let lines: Vec<&str> = page
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim().len() <= MAX_LEN)
        .collect();
    let mut out: Vec<(bool, &str)> = lines.iter().take(EDGE).map(|l| (true, *l)).collect();
    out.extend(lines.iter().rev().take(EDGE).map(|l| (false, *l)));
    out
}

/// A line with digits and spacing ignored (`Seite 3 von 12` = `Seite 4 von 12`).
fn shape(line: &str) -> String {
    let mut s = String::new();
    let mut digits = false;
    for c in line.trim().chars() {
        if c.is_ascii_digit() {
            if !digits {
                s.push('#');
            }
            digits = true;
            continue;
        }
        digits = false;
        if c.is_whitespace() {
            if !s.ends_with(' ') {
                s.push(' ');
            }
        } else {
            s.extend(c.to_lowercase());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: usize, body: &str) -> String {
        format!("Nordwind Logistik GmbH – Interne Richtlinie\n\n{body}\n\nSeite {n} von 4")
    }

    #[test]
    fn heads_and_feet_go_except_where_they_first_appear() {
        let mut pages = vec![
            page(1, "Reisekosten werden binnen 30 Tagen erstattet."),
            page(2, "Übernachtungen bis 120 EUR."),
            page(
                3,
                "Trips abroad need approval.\nSeite 3 von 4 ist keine Fußzeile hier",
            ),
            page(4, "Kontakt: Personalabteilung."),
        ];
        let n = strip(&mut pages);
        assert_eq!(n, 3 + 4 - 1, "{pages:#?}");
        assert_eq!(
            pages[0],
            page(1, "Reisekosten werden binnen 30 Tagen erstattet.")
        );
        assert_eq!(pages[1], "Übernachtungen bis 120 EUR.");
        assert_eq!(
            pages[2],
            "Trips abroad need approval.\nSeite 3 von 4 ist keine Fußzeile hier"
        );
        assert_eq!(pages[3], "Kontakt: Personalabteilung.");
    }

    #[test]
    fn short_documents_and_varied_lines_are_left_alone() {
        let mut two = vec![page(1, "a"), page(2, "b")];
        assert_eq!(strip(&mut two), 0);
        let mut varied: Vec<String> = (0..5)
            .map(|i| {
                let w = ["alpha", "beta", "gamma", "delta", "epsilon"][i];
                format!("Chapter {i}: topic {w}\n\nbody text about {w}")
            })
            .collect();
        let before = varied.clone();
        assert_eq!(strip(&mut varied), 0);
        assert_eq!(varied, before);
    }
}
