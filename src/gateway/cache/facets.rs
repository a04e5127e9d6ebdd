//! What two questions must share, beyond meaning, to share an answer: the
//! numbers, currencies and acronyms they name, and whether they negate or
//! compare. Embeddings of "travel over 500 EUR" and "travel over 5,000
//! EUR" are nearly the same vector; their answers are not. The semantic
//! cache reuses an answer only when the facets agree, so a near miss is a
//! miss. English and German words are known; anything unrecognised simply
//! does not count (the embedding decides), which errs toward a miss only
//! where a facet is present in one question and not the other.

use std::collections::BTreeSet;

const NEGATIONS: &[&str] = &[
    "not",
    "no",
    "never",
    "without",
    "none",
    "nothing",
    "nobody",
    "neither",
    "nor",
    "except",
    "cannot",
    "can't",
    "don't",
    "doesn't",
    "isn't",
    "aren't",
    "won't",
    "shouldn't",
    "mustn't",
    "didn't",
    "wasn't",
    "nicht",
    "kein",
    "keine",
    "keinen",
    "keinem",
    "keiner",
    "keines",
    "nie",
    "niemals",
    "ohne",
    "außer",
    "ausser",
    "weder",
    "nichts",
    "niemand",
];

/// Words that set a direction: more/less, before/after.
const DIRECTIONS: &[(&str, &str)] = &[
    ("over", "gt"),
    ("above", "gt"),
    ("more", "gt"),
    ("greater", "gt"),
    ("exceeding", "gt"),
    ("exceeds", "gt"),
    ("exceed", "gt"),
    ("higher", "gt"),
    ("least", "gt"),
    ("minimum", "gt"),
    ("über", "gt"),
    ("ueber", "gt"),
    ("oberhalb", "gt"),
    ("mehr", "gt"),
    ("größer", "gt"),
    ("höher", "gt"),
    ("mindestens", "gt"),
    ("ab", "gt"),
    ("under", "lt"),
    ("below", "lt"),
    ("less", "lt"),
    ("fewer", "lt"),
    ("lower", "lt"),
    ("most", "lt"),
    ("maximum", "lt"),
    ("within", "lt"),
    ("unter", "lt"),
    ("unterhalb", "lt"),
    ("weniger", "lt"),
    ("niedriger", "lt"),
    ("höchstens", "lt"),
    ("maximal", "lt"),
    ("bis", "lt"),
    ("before", "before"),
    ("earlier", "before"),
    ("prior", "before"),
    ("vor", "before"),
    ("vorher", "before"),
    ("früher", "before"),
    ("after", "after"),
    ("later", "after"),
    ("nach", "after"),
    ("danach", "after"),
    ("später", "after"),
];

/// Stems of inflected direction words ("maximale", "höchsten", "minimalen",
/// "maximum"): a word that starts with one counts as its direction.
const DIRECTION_STEMS: &[(&str, &str)] = &[
    ("maxim", "lt"),
    ("höchst", "lt"),
    ("minim", "gt"),
    ("mindest", "gt"),
    ("niedrig", "lt"),
];

const CURRENCIES: &[(&str, &str)] = &[
    ("€", "eur"),
    ("eur", "eur"),
    ("euro", "eur"),
    ("euros", "eur"),
    ("$", "usd"),
    ("usd", "usd"),
    ("dollar", "usd"),
    ("dollars", "usd"),
    ("£", "gbp"),
    ("gbp", "gbp"),
    ("pound", "gbp"),
    ("pounds", "gbp"),
    ("chf", "chf"),
    ("franken", "chf"),
    ("francs", "chf"),
];

/// A number as written, normalised: thousands separators (`,` `.` `'` or a
/// thin space before groups of three) dropped, a decimal comma made a point,
/// trailing zeros of a fraction dropped ("5,000" = "5.000" = "5000";
/// "2,5" = "2.5" = "2.50").
fn number(raw: &str) -> String {
    let seps: &[char] = &[',', '.', '\'', '\u{2009}', '\u{202f}'];
    let groups: Vec<&str> = raw.split(seps).collect();
    let thousands = groups.len() > 1
        && groups[0].len() <= 3
        && groups[1..].iter().all(|g| g.len() == 3)
        // One separator kind only ("1.234,5" is handled below).
        && raw.chars().filter(|c| seps.contains(c)).collect::<BTreeSet<_>>().len() == 1;
    if thousands {
        return groups.concat();
    }
    // "1.234,56" or "1,234.56": the last separator is the decimal point.
    let (int, frac) = match raw.rfind(seps) {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, ""),
    };
    let int: String = int.chars().filter(|c| c.is_ascii_digit()).collect();
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// The facets of a question, sorted (`n:5000`, `neg`, `dir:gt`, `cur:eur`,
/// `acr:gdpr`).
pub fn facets(question: &str) -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut chars = question.char_indices().peekable();
    // Numbers: digits with inner separators.
    while let Some((i, c)) = chars.next() {
        if !c.is_ascii_digit() {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            let inner = matches!(d, ',' | '.' | '\'' | '\u{2009}' | '\u{202f}')
                && question[j + d.len_utf8()..]
                    .chars()
                    .next()
                    .is_some_and(|n| n.is_ascii_digit());
            if d.is_ascii_digit() || inner {
                end = j + d.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        out.insert(format!("n:{}", number(&question[i..end])));
    }
    for sym in ["€", "$", "£"] {
        if question.contains(sym) {
            if let Some((_, c)) = CURRENCIES.iter().find(|(w, _)| *w == sym) {
                out.insert(format!("cur:{c}"));
            }
        }
    }
    for word in question.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’')) {
        if word.is_empty() {
            continue;
        }
        let w = word.replace('’', "'").to_lowercase();
        if NEGATIONS.contains(&w.as_str()) || w.ends_with("n't") {
            out.insert("neg".to_string());
        }
        if let Some((_, d)) = DIRECTIONS
            .iter()
            .find(|(k, _)| *k == w)
            .or_else(|| DIRECTION_STEMS.iter().find(|(k, _)| w.starts_with(k)))
        {
            out.insert(format!("dir:{d}"));
        }
        if let Some((_, c)) = CURRENCIES.iter().find(|(k, _)| *k == w) {
            out.insert(format!("cur:{c}"));
        }
        // Acronyms and codes name things exactly (HR, CFO, ISO, GDPR).
        let letters = word.chars().filter(|c| c.is_alphabetic()).count();
        if letters >= 2
            && word.chars().all(|c| c.is_uppercase() || c.is_ascii_digit())
            && !CURRENCIES.iter().any(|(k, _)| *k == w)
        {
            out.insert(format!("acr:{w}"));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_agree_across_notations_and_differ_by_value() {
        let a = facets("Who must approve travel over 5,000 EUR?");
        assert_eq!(a, facets("Who approves trips above €5000"));
        assert_eq!(a, facets("Wer genehmigt Reisen über 5.000 Euro?"));
        assert_ne!(a, facets("Who must approve travel over 500 EUR?"));
        assert_ne!(a, facets("Who must approve travel under 5,000 EUR?"));
        assert_eq!(facets("rate 2,5 %"), facets("rate 2.50 %"));
        assert_eq!(facets("1.234,5"), vec!["n:1234.5".to_string()]);
    }

    #[test]
    fn negation_direction_and_acronyms_count() {
        assert_ne!(
            facets("Can interns approve expenses?"),
            facets("Can't interns approve expenses?")
        );
        assert_ne!(
            facets("Darf HR das sehen?"),
            facets("Darf die IT das sehen?")
        );
        assert_eq!(
            facets("Can the HR team see it?"),
            facets("Is HR allowed to see it?")
        );
        assert_ne!(
            facets("expenses before the trip"),
            facets("expenses after the trip")
        );
        assert!(facets("What is the travel policy?").is_empty());
        // Inflected German: the stem decides.
        assert_eq!(
            facets("das maximale Budget"),
            facets("höchstens das Budget")
        );
        assert_ne!(facets("das maximale Budget"), facets("das minimale Budget"));
    }
}
